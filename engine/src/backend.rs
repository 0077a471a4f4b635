//! The backend is a run setting, not a code fork: training code is generic over Burn's
//! `AutodiffBackend`, and [`dispatch`] picks the concrete backend at run time.

use crate::error::{Error, Result};
use crate::ops::TrainBackend;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Pure-Rust CPU backend (rayon + SIMD, deterministic).
    #[default]
    Flex,
    /// Any GPU through wgpu (Vulkan/Metal/DX12); cargo feature `wgpu`.
    Wgpu,
    /// NVIDIA GPUs; cargo feature `cuda`.
    Cuda,
}

impl BackendKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "flex" | "cpu" => Ok(Self::Flex),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(Error::option("backend", format!("unknown backend `{other}`; expected flex, wgpu or cuda"))),
        }
    }

    /// Whether this binary was built with the backend's cargo feature.
    pub fn compiled(self) -> bool {
        match self {
            Self::Flex => true,
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

pub type Flex = burn::backend::Flex;

/// Work that runs on whichever backend the user chose.
pub trait WithBackend {
    type Output;
    fn run<B: TrainBackend>(self, device: B::Device, device_name: String) -> Self::Output;
}

#[cfg(not(all(feature = "wgpu", feature = "cuda")))]
fn not_built(feature: &str) -> Error {
    Error::option("backend", format!("this binary was built without the `{feature}` feature; rebuild with `cargo build --release --features {feature}`"))
}

/// CubeCL panics on a background thread when the driver is missing; say so clearly instead.
#[cfg(feature = "cuda")]
fn check_cuda_driver() -> Result<()> {
    // SAFETY: loading the driver library runs only its initialisers, as CubeCL would.
    match unsafe { libloading::Library::new("libcuda.so.1") } {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::option(
            "backend",
            format!("cuda: the NVIDIA driver library libcuda.so.1 cannot be loaded ({e}); this needs a machine with an NVIDIA GPU and driver"),
        )),
    }
}

pub fn dispatch<W: WithBackend>(kind: BackendKind, work: W) -> Result<W::Output> {
    match kind {
        BackendKind::Flex => {
            let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            Ok(work.run::<burn::backend::Autodiff<Flex>>(Default::default(), format!("cpu ({threads} threads)")))
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(work.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(Default::default(), "wgpu default device".into())),
        #[cfg(not(feature = "wgpu"))]
        BackendKind::Wgpu => Err(not_built("wgpu")),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            check_cuda_driver()?;
            Ok(work.run::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default(), "cuda:0".into()))
        }
        #[cfg(not(feature = "cuda"))]
        BackendKind::Cuda => Err(not_built("cuda")),
    }
}
