//! 2-D maps of feature vectors for the lab's latent map: PCA (instant), t-SNE (Barnes–Hut,
//! f64) and UMAP (ltlab's own, as umap-learn defines it). Every method reports progress with a
//! snapshot of the layout and stops early when told to.

pub mod pca;
pub mod tsne;
pub mod umap;

use crate::error::{Error, Result};
use crate::geometry::Features;

/// The layout's name and its CLI spelling live in `ltlab-types` (the lab's latent view sets it).
pub use ltlab_types::EmbedMethod;

/// Progress of an embedding: the fraction done and, now and then, the current layout
/// (n × 2, row-major). Returning `false` cancels the job.
pub type Progress<'a> = dyn FnMut(f32, Option<&[f32]>) -> bool + 'a;

/// Settings of the iterative layouts.
#[derive(Debug, Clone, Default)]
pub struct EmbedConfig {
    pub tsne: tsne::TsneConfig,
    pub umap: umap::UmapConfig,
}

/// The 2-D layout (n × 2, row-major) of `f` by `method`.
pub fn embed(f: &Features, method: EmbedMethod, cfg: &EmbedConfig, seed: u64, progress: &mut Progress) -> Result<Vec<f32>> {
    if f.n < 3 {
        return Err(Error::Other(format!("a {} map needs at least 3 points (got {})", method.name(), f.n)));
    }
    let xy = match method {
        EmbedMethod::Pca => pca::pca_2d(f)?,
        EmbedMethod::Tsne => tsne::tsne(f, &cfg.tsne, seed, progress)?,
        EmbedMethod::Umap => umap::umap(f, &cfg.umap, seed, progress)?,
    };
    progress(1.0, Some(&xy));
    Ok(xy)
}

/// Mean over points of the fraction of their k nearest neighbours in the map that are also
/// among their k nearest neighbours in the input: how well a layout keeps local structure
/// (the figure reported next to umap-learn and openTSNE).
pub fn knn_preservation(input: &Features, layout: &[f32], k: usize) -> Result<f64> {
    let map = Features::new(input.n, 2, layout.to_vec())?;
    let (a, b) = (crate::geometry::knn(input, k), crate::geometry::knn(&map, k));
    let kept: usize = a.iter().zip(&b).map(|(ra, rb)| ra.iter().filter(|(i, _)| rb.iter().any(|(j, _)| j == i)).count()).sum();
    Ok(kept as f64 / (input.n * k.min(input.n - 1)).max(1) as f64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::{self, Stream};

    /// `per` points around each of `centres` (d-dimensional, σ = 1) with their labels.
    pub fn clusters(centres: &[Vec<f32>], per: usize, seed: u64) -> (Features, Vec<usize>) {
        let d = centres[0].len();
        let mut r = rng::rng(seed, Stream::Analysis, 0);
        let noise = rng::normal_vec(&mut r, centres.len() * per * d);
        let mut data = Vec::with_capacity(noise.len());
        let mut labels = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for p in 0..per {
                let base = (c * per + p) * d;
                data.extend((0..d).map(|j| centre[j] + noise[base + j]));
                labels.push(c);
            }
        }
        (Features::new(centres.len() * per, d, data).unwrap(), labels)
    }

    /// 1-NN accuracy of the layout: the fraction of points whose nearest map neighbour has
    /// their label.
    pub fn nn_accuracy(xy: &[f32], labels: &[usize]) -> f64 {
        let map = Features::new(labels.len(), 2, xy.to_vec()).unwrap();
        let nn = crate::geometry::knn(&map, 1);
        nn.iter().enumerate().filter(|(i, r)| labels[r[0].0] == labels[*i]).count() as f64 / labels.len() as f64
    }

    #[test]
    fn knn_preservation_by_hand() {
        // Identity layout of 2-D input keeps everything; a permuted layout keeps what it keeps.
        let input = Features::new(4, 2, vec![0.0, 0.0, 1.0, 0.0, 5.0, 0.0, 7.0, 0.0]).unwrap();
        assert_eq!(knn_preservation(&input, &input.data, 1).unwrap(), 1.0);
        // Layout order 0, 5, 1, 7 on a line: NN in input 0→1, 1→0, 2→3, 3→2;
        // NN in map: p0 (0) → p2 (1); p1 (5) → p3 (7); p2 (1) → p0; p3 (7) → p1. Kept: none.
        let layout = [0.0, 0.0, 5.0, 0.0, 1.0, 0.0, 7.0, 0.0];
        assert_eq!(knn_preservation(&input, &layout, 1).unwrap(), 0.0);
    }

    #[test]
    fn methods_parse_and_errors_name_the_option() {
        assert_eq!(EmbedMethod::parse("t-SNE").unwrap(), EmbedMethod::Tsne);
        // The engine's error says the same as the parser's.
        let e = Error::from(EmbedMethod::parse("isomap").unwrap_err());
        assert!(matches!(&e, Error::Option { option, .. } if option == "method"), "{e:?}");
        assert_eq!(e.to_string(), "option `method`: `isomap` is not one of pca, tsne, umap");
    }
}
