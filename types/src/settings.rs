//! The settings the views ask the host to compute with (a latent map, a transfer analysis, a
//! grid sampled at view time), persisted with the lab's state, and which stored result each
//! setting matches. The engine's options in them are the engine's own types (`ltlab-types`), so
//! the host computes with them as they are.

use crate::{BatchSampler, EmbedMethod, LatentMap, OcMode, SamplerKind, TransferAnalysis};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How the grids panel samples a checkpoint at view time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleSettings {
    /// DDPM or DDIM with its steps, clipping x̂₀ or not (the panel's controls).
    #[serde(with = "spelled")]
    pub sampler: SamplerKind,
    /// Guidance ω.
    pub omega: f64,
    /// Fixed-noise images per class.
    pub per_class: usize,
}

impl Default for SampleSettings {
    fn default() -> Self {
        Self { sampler: SamplerKind::LAB_DEFAULT, omega: 0.0, per_class: 8 }
    }
}

/// The settings of the transfer view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransferSettings {
    /// OC's gate.
    #[serde(with = "spelled")]
    pub mode: OcMode,
    /// How the batches the swaps happen in are drawn.
    #[serde(with = "spelled")]
    pub sampler: BatchSampler,
    pub batch: usize,
    /// t of the class→class matrix.
    pub matrix_t: usize,
}

impl Default for TransferSettings {
    fn default() -> Self {
        Self { mode: OcMode::LAB_DEFAULT, sampler: BatchSampler::LAB_DEFAULT, batch: 128, matrix_t: 300 }
    }
}

impl TransferSettings {
    /// The settings an analysis was made with.
    pub fn of(a: &TransferAnalysis) -> Self {
        Self { mode: a.mode, sampler: a.sampler, batch: a.batch, matrix_t: a.matrix_t }
    }

    pub fn matches(&self, a: &TransferAnalysis) -> bool {
        a.mode == self.mode && a.sampler == self.sampler && a.batch == self.batch && a.matrix_t == self.matrix_t
    }
}

/// The settings of a latent map (besides run and step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatentSettings {
    /// The 2-D layout.
    #[serde(with = "spelled")]
    pub method: EmbedMethod,
    pub t: usize,
    pub per_class: usize,
    pub k: usize,
    pub conditional: bool,
}

impl Default for LatentSettings {
    fn default() -> Self {
        Self { method: EmbedMethod::LAB_DEFAULT, t: 100, per_class: 100, k: 10, conditional: true }
    }
}

impl LatentSettings {
    /// The settings a map was made with.
    pub fn of(m: &LatentMap) -> Self {
        Self { method: m.method, t: m.t, per_class: m.per_class, k: m.entanglement.k, conditional: m.conditional }
    }

    pub fn matches(&self, m: &LatentMap) -> bool {
        m.method == self.method && m.t == self.t && m.conditional == self.conditional && m.entanglement.k == self.k && m.per_class == self.per_class
    }
}

/// An engine option as the lab's state file keeps it: its CLI spelling (`ddim:50:clip`, `t2h`,
/// `brs:0.5`, `umap`), so the file reads like the command line and does not follow the engine's
/// config layout. A spelling this build does not read (an older lab's, e.g. `ddim` without its
/// steps) becomes the lab's default instead of failing the whole state.
pub(crate) trait Spelled: Sized {
    /// What the lab starts with.
    const LAB_DEFAULT: Self;
    fn parse_spelling(s: &str) -> Option<Self>;
    fn spelling(&self) -> String;
}

impl Spelled for SamplerKind {
    /// Clipped like the demo presets' grids: a young model's samples stay in range.
    const LAB_DEFAULT: Self = SamplerKind::Ddim { steps: 50, final_x0: true, clip_x0: true };
    fn parse_spelling(s: &str) -> Option<Self> {
        Self::parse(s).ok()
    }
    fn spelling(&self) -> String {
        self.label()
    }
}

impl Spelled for OcMode {
    const LAB_DEFAULT: Self = OcMode::T2h;
    fn parse_spelling(s: &str) -> Option<Self> {
        Self::parse(s).ok()
    }
    fn spelling(&self) -> String {
        self.name().into()
    }
}

impl Spelled for BatchSampler {
    const LAB_DEFAULT: Self = BatchSampler::Balanced;
    fn parse_spelling(s: &str) -> Option<Self> {
        Self::parse(s).ok()
    }
    fn spelling(&self) -> String {
        self.label()
    }
}

impl Spelled for EmbedMethod {
    const LAB_DEFAULT: Self = EmbedMethod::Umap;
    fn parse_spelling(s: &str) -> Option<Self> {
        Self::parse(s).ok()
    }
    fn spelling(&self) -> String {
        self.name().into()
    }
}

/// `#[serde(with = "spelled")]`: a [`Spelled`] option as its CLI spelling.
mod spelled {
    use super::*;

    pub fn serialize<T: Spelled, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.spelling())
    }

    pub fn deserialize<'de, T: Spelled, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        Ok(T::parse_spelling(&String::deserialize(d)?).unwrap_or(T::LAB_DEFAULT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_settings_round_trip_as_cli_spellings() {
        let s = SampleSettings { sampler: SamplerKind::Ddim { steps: 20, final_x0: false, clip_x0: true }, omega: 1.5, per_class: 4 };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"sampler":"ddim:20:ref:clip","omega":1.5,"per_class":4}"#);
        assert_eq!(serde_json::from_str::<SampleSettings>(&json).unwrap(), s);
        let t = TransferSettings { mode: OcMode::Full, sampler: BatchSampler::Brs { f: 0.25 }, batch: 64, matrix_t: 100 };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"mode":"full","sampler":"brs:0.25","batch":64,"matrix_t":100}"#);
        assert_eq!(serde_json::from_str::<TransferSettings>(&json).unwrap(), t);
        for method in EmbedMethod::ALL {
            let l = LatentSettings { method, conditional: false, ..Default::default() };
            assert_eq!(serde_json::from_str::<LatentSettings>(&serde_json::to_string(&l).unwrap()).unwrap(), l);
        }
    }

    #[test]
    fn settings_of_an_older_lab_still_load() {
        // Before the typed settings: the sampler's kind, steps and clipping apart.
        let old = r#"{"sampler": "ddim", "ddim_steps": 20, "clip": false, "omega": 2.0, "per_class": 4}"#;
        assert_eq!(serde_json::from_str::<SampleSettings>(old).unwrap(), SampleSettings { omega: 2.0, per_class: 4, ..Default::default() });
        let old = r#"{"mode": "h2t", "sampler": "brs:0.5", "batch": 32}"#;
        let t = serde_json::from_str::<TransferSettings>(old).unwrap();
        assert_eq!((t.mode, t.sampler, t.batch, t.matrix_t), (OcMode::H2t, BatchSampler::Brs { f: 0.5 }, 32, 300));
        assert_eq!(serde_json::from_str::<LatentSettings>(r#"{"method": "t-SNE"}"#).unwrap().method, EmbedMethod::Tsne);
        assert_eq!(serde_json::from_str::<LatentSettings>(r#"{"method": "isomap", "t": 5}"#).unwrap(), LatentSettings { t: 5, ..Default::default() });
    }
}
