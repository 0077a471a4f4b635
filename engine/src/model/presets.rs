//! Model presets: `paper` is the reference CIFAR configuration (SPEC §2); `small` and `tiny` are
//! the same network with fewer channels, levels and blocks, for CPU runs; `micro` (one level, 16
//! channels) checks a backend or a set-up in seconds.

use super::UNetConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Paper,
    Small,
    Tiny,
    Micro,
}

impl Preset {
    pub const NAMES: &'static str = "paper, small, tiny, micro";

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "paper" => Ok(Self::Paper),
            "small" => Ok(Self::Small),
            "tiny" => Ok(Self::Tiny),
            "micro" => Ok(Self::Micro),
            other => Err(Error::option("preset", format!("unknown model preset `{other}`; expected one of {}", Self::NAMES))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Small => "small",
            Self::Tiny => "tiny",
            Self::Micro => "micro",
        }
    }

    /// The U-Net for `classes` classes of `image_channels`-channel images of side `image_size`
    /// (attention levels are chosen by resolution: 16×16 in the reference).
    pub fn config(self, image_channels: usize, classes: usize, image_size: usize) -> Result<UNetConfig> {
        let mut cfg = match self {
            // ch 128, mults [1,2,2,2], 2 blocks, attention at 16×16 (level 1 for 32×32), dropout 0.1.
            Self::Paper => UNetConfig::new(image_channels, classes, 128, vec![1, 2, 2, 2], 2, vec![]).with_dropout(0.1),
            Self::Small => UNetConfig::new(image_channels, classes, 64, vec![1, 2, 2], 1, vec![]).with_dropout(0.1),
            Self::Tiny => UNetConfig::new(image_channels, classes, 32, vec![1, 2, 2], 1, vec![]).with_dropout(0.0),
            Self::Micro => UNetConfig::new(image_channels, classes, 16, vec![1], 1, vec![]).with_dropout(0.0),
        };
        cfg.check_image_size(image_size).map_err(|m| Error::option("image-size", format!("preset `{}`: {m}", self.name())))?;
        // Attention at the level whose resolution is 16 (paper), or at the lowest level for the
        // CPU presets (cheap there); never at full resolution.
        let levels = cfg.channel_mults.len();
        let attn_level = match self {
            Self::Paper => (0..levels).find(|&l| image_size >> l == 16),
            Self::Small => Some(levels - 1),
            Self::Tiny | Self::Micro => None,
        };
        cfg.attn_levels = attn_level.into_iter().collect();
        Ok(cfg)
    }
}
