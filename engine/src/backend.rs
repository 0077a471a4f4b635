//! The backend is a run setting, not a code fork: training code is generic over Burn's
//! `AutodiffBackend`, and [`dispatch`] picks the concrete backend at run time. [`probe`] says
//! what a backend would run on here, or why it cannot.

#[cfg(not(all(feature = "wgpu", feature = "cuda")))]
use crate::error::Error;
use crate::error::Result;
use crate::ops::TrainBackend;
pub use ltlab_types::{BackendChoice, BackendKind, DeviceClass};

pub type Flex = burn::backend::Flex;

/// The device `kind` would use on this machine, or why it has none.
pub fn probe(kind: BackendKind) -> Result<BackendChoice> {
    match kind {
        BackendKind::Flex => Ok(BackendChoice { kind, device: cpu_name(), class: DeviceClass::Cpu }),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => wgpu_adapter::best().map(|a| a.choice),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => cuda_device::first().map(|name| BackendChoice { kind, device: name, class: DeviceClass::Gpu }),
        #[cfg(not(all(feature = "wgpu", feature = "cuda")))]
        _ => Err(not_built(kind)),
    }
}

/// Every backend that this binary has and this machine can run, flex first.
pub fn available() -> Vec<BackendChoice> {
    BackendKind::ALL.into_iter().filter_map(|k| probe(k).ok()).collect()
}

fn cpu_name() -> String {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("CPU, {threads} threads")
}

/// Work that runs on whichever backend the user chose.
pub trait WithBackend {
    type Output;
    fn run<B: TrainBackend>(self, device: B::Device, device_name: String) -> Self::Output;
}

#[cfg(not(all(feature = "wgpu", feature = "cuda")))]
fn not_built(kind: BackendKind) -> Error {
    let feature = kind.name();
    Error::option("backend", format!("this binary was built without the `{feature}` feature; rebuild with `cargo build --release --features {feature}`"))
}

pub fn dispatch<W: WithBackend>(kind: BackendKind, work: W) -> Result<W::Output> {
    match kind {
        BackendKind::Flex => Ok(work.run::<burn::backend::Autodiff<Flex>>(Default::default(), cpu_name())),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            let adapter = wgpu_adapter::best()?;
            configure_cubecl();
            let name = format!("{} ({})", adapter.choice.device, adapter.api);
            Ok(work.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(adapter.device, name))
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            let name = cuda_device::first()?;
            configure_cubecl();
            Ok(work.run::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default(), format!("{name} (cuda:0)")))
        }
        #[cfg(not(all(feature = "wgpu", feature = "cuda")))]
        _ => Err(not_built(kind)),
    }
}

/// CubeCL keeps its autotune results (which kernel variant is fastest for each shape, found by
/// timing them) in the nearest Cargo project's `target/`, that is wherever ltlab happens to run;
/// ltlab keeps them in the user's cache, `$XDG_CACHE_HOME/ltlab/cubecl` (or `~/.cache/…`), so
/// that a GPU run tunes once per machine. The rest of a `cubecl.toml` (and its cache, if it names
/// a file) and CubeCL's environment variables (`CUBECL_AUTOTUNE_LEVEL`) still apply.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn configure_cubecl() {
    use burn::cubecl::config::cache::CacheConfig;
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
        let Some(cache) = env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache"))) else { return };
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if matches!(config.autotune.cache, CacheConfig::Target) {
            config.autotune.cache = CacheConfig::File(cache.join("ltlab").join("cubecl"));
        }
        // Only if CubeCL has not read its configuration yet (it is read once, then fixed).
        let mut stored = CubeClRuntimeConfig::storage().lock();
        if stored.is_none() {
            *stored = Some(std::sync::Arc::new(config));
        }
    });
}

/// The adapter wgpu would train on. CubeCL panics on its own thread when asked for an adapter
/// that is not there, so ltlab looks first and picks one explicitly.
#[cfg(feature = "wgpu")]
mod wgpu_adapter {
    use super::{BackendChoice, BackendKind, DeviceClass};
    use crate::error::{Error, Result};
    use burn::backend::wgpu::WgpuDevice;
    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    use wgpu::DeviceType;

    pub struct Adapter {
        pub choice: BackendChoice,
        pub device: WgpuDevice,
        /// The graphics API CubeCL drives it through (Vulkan here, Metal on macOS).
        pub api: wgpu::Backend,
    }

    /// Best first: a discrete GPU, an integrated one, a virtual one, then a software one.
    fn rank(t: DeviceType) -> u8 {
        match t {
            DeviceType::DiscreteGpu => 0,
            DeviceType::IntegratedGpu => 1,
            DeviceType::VirtualGpu => 2,
            DeviceType::Other => 3,
            DeviceType::Cpu => 4,
        }
    }

    pub fn best() -> Result<Adapter> {
        let api = AutoGraphicsApi::backend();
        // CubeCL's own override of its default device: honoured, and named as such.
        if let Some(chosen) = std::env::var("CUBECL_WGPU_DEFAULT_DEVICE").ok().filter(|v| !v.is_empty()) {
            let class = if chosen == "Cpu" { DeviceClass::Software } else { DeviceClass::Gpu };
            let choice = BackendChoice { kind: BackendKind::Wgpu, device: format!("{chosen} (CUBECL_WGPU_DEFAULT_DEVICE)"), class };
            return Ok(Adapter { choice, device: WgpuDevice::DefaultDevice, api });
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor { backends: api.into(), ..wgpu::InstanceDescriptor::new_without_display_handle() });
        let adapters = pollster::block_on(instance.enumerate_adapters(api.into()));
        let best = adapters.iter().map(|a| a.get_info()).enumerate().min_by_key(|(i, a)| (rank(a.device_type), *i));
        let Some((_, info)) = best else {
            return Err(Error::option(
                "backend",
                format!(
                    "wgpu: no {api:?} adapter on this machine (looked for discrete, integrated and virtual GPUs, and software ones such as lavapipe); \
                     install the GPU's {api:?} driver (or mesa-vulkan-drivers for lavapipe), or use --backend flex"
                ),
            ));
        };
        // CubeCL numbers adapters within their type, in enumeration order, and the best is the
        // first of its type. An adapter of type `Other` ranks first only without a discrete GPU,
        // and CubeCL's discrete GPU 0 is then the first `Other`.
        let device = match info.device_type {
            DeviceType::DiscreteGpu | DeviceType::Other => WgpuDevice::DiscreteGpu(0),
            DeviceType::IntegratedGpu => WgpuDevice::IntegratedGpu(0),
            DeviceType::VirtualGpu => WgpuDevice::VirtualGpu(0),
            DeviceType::Cpu => WgpuDevice::Cpu,
        };
        let class = if info.device_type == DeviceType::Cpu { DeviceClass::Software } else { DeviceClass::Gpu };
        Ok(Adapter { choice: BackendChoice { kind: BackendKind::Wgpu, device: info.name, class }, device, api })
    }
}

/// The first CUDA device, asked of the driver itself (once per process): CubeCL panics on its own
/// thread when the driver or the device is missing.
#[cfg(feature = "cuda")]
mod cuda_device {
    use crate::error::{Error, Result};
    use std::ffi::{CStr, c_char, c_int, c_uint};
    use std::sync::OnceLock;

    type CuInit = unsafe extern "C" fn(c_uint) -> c_int;
    type CuDeviceGetCount = unsafe extern "C" fn(*mut c_int) -> c_int;
    type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
    type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;

    /// The driver library stays loaded, as CubeCL's own copy of it does.
    static DRIVER: OnceLock<std::result::Result<libloading::Library, String>> = OnceLock::new();
    static FIRST: OnceLock<std::result::Result<String, String>> = OnceLock::new();

    pub fn first() -> Result<String> {
        FIRST.get_or_init(ask).clone().map_err(|what| {
            Error::option("backend", format!("cuda: {what}; this needs a machine with an NVIDIA GPU and its driver, or use --backend wgpu or flex"))
        })
    }

    fn ask() -> std::result::Result<String, String> {
        let lib = DRIVER
            .get_or_init(|| {
                // SAFETY: loading the driver library runs only its initialisers, as CubeCL would.
                unsafe { libloading::Library::new("libcuda.so.1") }.map_err(|e| format!("the NVIDIA driver library libcuda.so.1 cannot be loaded ({e})"))
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let missing = |name: &str, e: libloading::Error| format!("libcuda.so.1 lacks {name} ({e})");
        // SAFETY: these entry points have these C signatures in every CUDA driver API since 2.0;
        // the name buffer is longer than the length passed, so it ends in a NUL.
        unsafe {
            let init = lib.get::<CuInit>(b"cuInit\0").map_err(|e| missing("cuInit", e))?;
            let count = lib.get::<CuDeviceGetCount>(b"cuDeviceGetCount\0").map_err(|e| missing("cuDeviceGetCount", e))?;
            let get = lib.get::<CuDeviceGet>(b"cuDeviceGet\0").map_err(|e| missing("cuDeviceGet", e))?;
            let name = lib.get::<CuDeviceGetName>(b"cuDeviceGetName\0").map_err(|e| missing("cuDeviceGetName", e))?;
            let status = init(0);
            if status != 0 {
                return Err(format!("the driver did not start (cuInit error {status})"));
            }
            let mut n: c_int = 0;
            if count(&mut n) != 0 || n < 1 {
                return Err("the driver sees no CUDA device".into());
            }
            let mut device: c_int = 0;
            if get(&mut device, 0) != 0 {
                return Err("the driver cannot open CUDA device 0".into());
            }
            let mut buf = [0u8; 256];
            if name(buf.as_mut_ptr().cast(), buf.len() as c_int - 1, device) != 0 {
                return Ok("CUDA device 0".into());
            }
            Ok(CStr::from_bytes_until_nul(&buf).map_or_else(|_| "CUDA device 0".into(), |n| n.to_string_lossy().into_owned()))
        }
    }
}
