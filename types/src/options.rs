//! The engine's options that the lab's panels set and hand back to the host: samplers, OC's gate,
//! batch samplers and the latent map's layouts, each with its CLI spelling (`parse` and
//! `label`/`name`) and its serde form (the engine's config files).

use serde::{Deserialize, Serialize};

/// An option's text that does not parse; the engine turns it into its `Error::Option`, with the
/// same message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The option as the CLI names it (`sampler`, `mode`, `method`).
    pub option: &'static str,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "option `{}`: {}", self.option, self.message)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    fn new(option: &'static str, message: String) -> Self {
        Self { option, message }
    }
}

/// Where a run's tensors live: the CPU (flex) or a GPU through wgpu or CUDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Pure-Rust CPU backend (rayon + SIMD, deterministic).
    #[default]
    Flex,
    /// Any GPU through wgpu (Vulkan, Metal, DX12); cargo feature `wgpu` (on by default).
    Wgpu,
    /// NVIDIA GPUs; cargo feature `cuda`.
    Cuda,
}

impl BackendKind {
    pub const ALL: [Self; 3] = [Self::Flex, Self::Wgpu, Self::Cuda];

    /// The `--backend` spelling (`cpu` is flex too).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "flex" | "cpu" => Ok(Self::Flex),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(ParseError::new("backend", format!("unknown backend `{other}`; expected flex, wgpu or cuda"))),
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

/// What kind of processor a backend's device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceClass {
    Cpu,
    Gpu,
    /// A CPU implementing a GPU API (lavapipe/llvmpipe, SwiftShader): correct, but slower than
    /// flex on the same CPU.
    Software,
}

/// A backend this machine can train on, and the device it would use (`ltlab backends`, the run
/// controls' backend choice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendChoice {
    pub kind: BackendKind,
    /// The device as its driver names it, e.g. `NVIDIA H200`, `llvmpipe (LLVM 19.1.7, 256 bits)`.
    pub device: String,
    pub class: DeviceClass,
}

impl BackendChoice {
    /// `flex · CPU, 2 threads`, `cuda · NVIDIA H200 · GPU`,
    /// `wgpu · llvmpipe (LLVM 19.1.7, 256 bits) · software`.
    pub fn label(&self) -> String {
        match self.class {
            DeviceClass::Cpu => format!("{} · {}", self.kind.name(), self.device),
            DeviceClass::Gpu => format!("{} · {} · GPU", self.kind.name(), self.device),
            DeviceClass::Software => format!("{} · {} · software", self.kind.name(), self.device),
        }
    }

    /// What a new run should default to: a real GPU (through CUDA where there is the choice:
    /// its kernels are the faster ones on NVIDIA), else the CPU.
    pub fn preferred(choices: &[Self]) -> BackendKind {
        let gpu = |kind| choices.iter().any(|c| c.kind == kind && c.class == DeviceClass::Gpu);
        [BackendKind::Cuda, BackendKind::Wgpu].into_iter().find(|&k| gpu(k)).unwrap_or(BackendKind::Flex)
    }
}

/// How a grid or an evaluation samples: DDPM's ancestral steps or DDIM's deterministic ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SamplerKind {
    /// T ancestral steps.
    Ddpm {
        /// Clip x̂₀ to [−1, 1] at every step (improved-diffusion's `clip_denoised`); off in the
        /// reference code, which clips only the output. Keeps young models from drifting.
        #[serde(default)]
        clip_x0: bool,
    },
    /// `steps` deterministic DDIM steps (η = 0) at t = T − T/k, …, T/k, 0. With `final_x0` the
    /// last step goes to the x̂₀ prediction (ltlab's default); without it the result is x at
    /// t = 0 (the reference code).
    Ddim {
        steps: usize,
        final_x0: bool,
        #[serde(default)]
        clip_x0: bool,
    },
}

impl SamplerKind {
    /// Parses `ddpm[:clip]` or `ddim:K[:ref][:clip]` (`ref`: the reference code's ending
    /// without the final x̂₀ step; `clip`: clip x̂₀ at every step).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::new("sampler", format!("`{s}`: expected ddpm[:clip] or ddim:K[:ref][:clip] with K ≥ 1"));
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or_default();
        let steps = match kind {
            "ddpm" => None,
            "ddim" => Some(parts.next().and_then(|k| k.parse::<usize>().ok()).filter(|&k| k >= 1).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        let (mut reference, mut clip_x0) = (false, false);
        for flag in parts {
            match flag {
                "ref" if steps.is_some() && !reference => reference = true,
                "clip" if !clip_x0 => clip_x0 = true,
                _ => return Err(bad()),
            }
        }
        Ok(match steps {
            None => Self::Ddpm { clip_x0 },
            Some(steps) => Self::Ddim { steps, final_x0: !reference, clip_x0 },
        })
    }

    /// The CLI spelling, read back by [`SamplerKind::parse`].
    pub fn label(&self) -> String {
        let clip = |c: bool| if c { ":clip" } else { "" };
        match *self {
            Self::Ddpm { clip_x0 } => format!("ddpm{}", clip(clip_x0)),
            Self::Ddim { steps, final_x0, clip_x0 } => {
                format!("ddim:{steps}{}{}", if final_x0 { "" } else { ":ref" }, clip(clip_x0))
            }
        }
    }

    /// Model evaluations per image.
    pub fn evaluations(&self, t: usize) -> usize {
        match *self {
            Self::Ddpm { .. } => t,
            Self::Ddim { steps, final_x0, .. } => steps.min(t) - usize::from(!final_x0),
        }
    }
}

/// Which direction of transfer OC's gate lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcMode {
    /// Tail-to-head: accept j when q(y_j) ≥ q(y_i).
    T2h,
    /// Head-to-tail: accept j when q(y_j) ≤ q(y_i).
    H2t,
    /// Always accept.
    Full,
}

impl OcMode {
    pub const ALL: [OcMode; 3] = [OcMode::T2h, OcMode::H2t, OcMode::Full];

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "t2h" => Ok(Self::T2h),
            "h2t" => Ok(Self::H2t),
            "full" => Ok(Self::Full),
            _ => Err(ParseError::new("mode", format!("`{s}`: expected t2h, h2t or full"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::T2h => "t2h",
            Self::H2t => "h2t",
            Self::Full => "full",
        }
    }
}

/// Which images make up a training batch (the sampling itself is the engine's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum BatchSampler {
    /// Epochs of a seeded shuffle of the whole set (the reference default).
    Uniform,
    /// A class uniformly, then an image of it uniformly, with replacement.
    Balanced,
    /// CCUA's re-sampling: class c with probability ∝ f^(c/(C−1)).
    Brs { f: f64 },
}

impl BatchSampler {
    /// Parses `uniform`, `balanced` or `brs:F`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "balanced" => Ok(Self::Balanced),
            _ => {
                let f = s.strip_prefix("brs:").and_then(|f| f.parse::<f64>().ok()).filter(|f| *f > 0.0 && *f <= 1.0);
                match f {
                    Some(f) => Ok(Self::Brs { f }),
                    None => Err(ParseError::new("sampler", format!("`{s}`: expected uniform, balanced or brs:F with F in (0, 1]"))),
                }
            }
        }
    }

    /// The CLI spelling: `uniform`, `balanced` or `brs:F`.
    pub fn label(&self) -> String {
        match self {
            Self::Uniform => "uniform".into(),
            Self::Balanced => "balanced".into(),
            Self::Brs { f } => format!("brs:{f}"),
        }
    }
}

/// The 2-D layout of a latent map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedMethod {
    Pca,
    Tsne,
    Umap,
}

impl EmbedMethod {
    pub const ALL: [EmbedMethod; 3] = [EmbedMethod::Pca, EmbedMethod::Tsne, EmbedMethod::Umap];

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s.to_ascii_lowercase().as_str() {
            "pca" => Ok(Self::Pca),
            "tsne" | "t-sne" => Ok(Self::Tsne),
            "umap" => Ok(Self::Umap),
            _ => Err(ParseError::new("method", format!("`{s}` is not one of pca, tsne, umap"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pca => "pca",
            Self::Tsne => "tsne",
            Self::Umap => "umap",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse_and_a_real_gpu_is_preferred() {
        for k in BackendKind::ALL {
            assert_eq!(BackendKind::parse(k.name()).unwrap(), k);
        }
        assert_eq!(BackendKind::parse("cpu").unwrap(), BackendKind::Flex);
        assert_eq!(BackendKind::parse("metal").unwrap_err().to_string(), "option `backend`: unknown backend `metal`; expected flex, wgpu or cuda");
        let choice = |kind, class| BackendChoice { kind, device: "d".into(), class };
        let cpu = choice(BackendKind::Flex, DeviceClass::Cpu);
        let lavapipe = choice(BackendKind::Wgpu, DeviceClass::Software);
        assert_eq!(BackendChoice::preferred(&[cpu.clone(), lavapipe.clone()]), BackendKind::Flex);
        assert_eq!(
            BackendChoice::preferred(&[cpu.clone(), choice(BackendKind::Wgpu, DeviceClass::Gpu), choice(BackendKind::Cuda, DeviceClass::Gpu)]),
            BackendKind::Cuda
        );
        assert_eq!(BackendChoice::preferred(&[cpu.clone(), choice(BackendKind::Wgpu, DeviceClass::Gpu)]), BackendKind::Wgpu);
        assert_eq!(BackendChoice::preferred(&[]), BackendKind::Flex);
        assert_eq!(lavapipe.label(), "wgpu · d · software");
        assert_eq!(cpu.label(), "flex · d");
    }

    #[test]
    fn parse_samplers() {
        assert_eq!(SamplerKind::parse("ddpm").unwrap(), SamplerKind::Ddpm { clip_x0: false });
        assert_eq!(SamplerKind::parse("ddpm:clip").unwrap(), SamplerKind::Ddpm { clip_x0: true });
        assert_eq!(SamplerKind::parse("ddim:50").unwrap(), SamplerKind::Ddim { steps: 50, final_x0: true, clip_x0: false });
        assert_eq!(SamplerKind::parse("ddim:10:ref").unwrap(), SamplerKind::Ddim { steps: 10, final_x0: false, clip_x0: false });
        assert_eq!(SamplerKind::parse("ddim:10:ref:clip").unwrap(), SamplerKind::Ddim { steps: 10, final_x0: false, clip_x0: true });
        for s in ["ddim:10:clip", "ddim:7:ref", "ddpm:clip", "ddim:3"] {
            assert_eq!(SamplerKind::parse(s).unwrap().label(), s);
        }
        for bad in ["ddim:0", "euler", "ddim", "ddpm:ref", "ddim:5:clip:clip", "ddim:5:x"] {
            assert!(SamplerKind::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SamplerKind::parse("euler").unwrap_err().to_string(), "option `sampler`: `euler`: expected ddpm[:clip] or ddim:K[:ref][:clip] with K ≥ 1");
    }

    #[test]
    fn parse_oc_modes() {
        for m in OcMode::ALL {
            assert_eq!(OcMode::parse(m.name()), Ok(m));
        }
        assert_eq!(OcMode::parse("both").unwrap_err().to_string(), "option `mode`: `both`: expected t2h, h2t or full");
    }

    #[test]
    fn parse_batch_samplers() {
        assert!(BatchSampler::parse("brs:0").is_err());
        assert!(BatchSampler::parse("brs:x").is_err());
        assert!(BatchSampler::parse("random").is_err());
        assert_eq!(BatchSampler::parse("brs:0.1").unwrap(), BatchSampler::Brs { f: 0.1 });
        for s in [BatchSampler::Uniform, BatchSampler::Balanced, BatchSampler::Brs { f: 0.5 }] {
            assert_eq!(BatchSampler::parse(&s.label()), Ok(s));
        }
        assert_eq!(BatchSampler::parse("brs:2").unwrap_err().to_string(), "option `sampler`: `brs:2`: expected uniform, balanced or brs:F with F in (0, 1]");
    }

    #[test]
    fn parse_embed_methods() {
        assert_eq!(EmbedMethod::parse("t-SNE").unwrap(), EmbedMethod::Tsne);
        for m in EmbedMethod::ALL {
            assert_eq!(EmbedMethod::parse(m.name()), Ok(m));
        }
        let e = EmbedMethod::parse("isomap").unwrap_err();
        assert_eq!((e.option, e.to_string().as_str()), ("method", "option `method`: `isomap` is not one of pca, tsne, umap"));
    }
}
