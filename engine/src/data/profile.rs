//! The long-tailed profile (SPEC §1): how many images each class keeps, and which.

use super::{Dataset, Profile};
use crate::error::{Error, Result};
use crate::rng::{self, Stream};
use rand::seq::SliceRandom;

/// Images kept per class for a dataset whose largest class has `n_max` images.
/// Class 0 is the head. `floor` gets a tiny tolerance so that e.g. 5000·0.01 is 50, not 49.
pub fn class_counts(n_max: usize, classes: usize, rho: f64, profile: Profile) -> Vec<usize> {
    let floor = |x: f64| (x + 1e-9).floor() as usize;
    match profile {
        Profile::Exp if classes == 1 => vec![n_max],
        Profile::Exp => (0..classes).map(|i| floor(n_max as f64 * rho.powf(i as f64 / (classes - 1) as f64))).collect(),
        // With an odd number of classes the middle one counts as head.
        Profile::Step => {
            let head = classes.div_ceil(2);
            (0..classes).map(|i| if i < head { n_max } else { floor(n_max as f64 * rho) }).collect()
        }
    }
}

/// Keeps, per class, the first n_i images of a seeded shuffle of that class's indices (in
/// dataset order, shuffled with `rng(seed, Stream::Profile, class)`), so a larger ρ keeps a
/// superset. A class with fewer images than its quota keeps all it has. The result is in
/// dataset order.
pub fn apply(full: &Dataset, rho: f64, profile: Profile, seed: u64) -> Result<Dataset> {
    let by_class = full.indices_by_class();
    let n_max = by_class.iter().map(Vec::len).max().unwrap_or(0);
    if let Some(empty) = by_class.iter().position(Vec::is_empty) {
        return Err(Error::Other(format!("{}: class {} (`{}`) has no images", full.name, empty, full.class_names[empty])));
    }
    let quota = class_counts(n_max, full.num_classes(), rho, profile);
    let mut keep = Vec::new();
    for (c, idx) in by_class.iter().enumerate() {
        if quota[c] == 0 {
            return Err(Error::option(
                "imbalance",
                format!("ρ = {rho} leaves class {c} (`{}`) empty: floor({n_max}·ρ^…) = 0; use a larger ρ", full.class_names[c]),
            ));
        }
        let mut idx = idx.clone();
        idx.shuffle(&mut rng::rng(seed, Stream::Profile, c as u64));
        idx.truncate(quota[c]);
        idx.sort_unstable();
        keep.extend(idx);
    }
    keep.sort_unstable();
    Ok(full.subset(&keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cifar10_counts_match_spec() {
        let c = class_counts(5000, 10, 0.01, Profile::Exp);
        assert_eq!(c, vec![5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
        assert_eq!(c.iter().sum::<usize>(), 12_406);
        assert_eq!(class_counts(5000, 10, 0.001, Profile::Exp).iter().sum::<usize>(), 9_324);
    }

    #[test]
    fn cifar100_and_fashion_totals_match_spec() {
        assert_eq!(class_counts(500, 100, 0.01, Profile::Exp).iter().sum::<usize>(), 10_847);
        assert_eq!(class_counts(6000, 10, 0.01, Profile::Exp).iter().sum::<usize>(), 14_886);
    }

    #[test]
    fn step_profile_halves() {
        assert_eq!(class_counts(100, 4, 0.1, Profile::Step), vec![100, 100, 10, 10]);
        assert_eq!(class_counts(100, 3, 0.1, Profile::Step), vec![100, 100, 10]);
    }

    /// 4 classes of 20 images, interleaved (image i has class i mod 4 and pixel value i, so
    /// the kept images can be told apart).
    fn interleaved() -> Dataset {
        Dataset {
            name: "toy".into(),
            class_names: (0..4).map(|c| format!("c{c}")).collect(),
            channels: 1,
            size: 1,
            pixels: (0..80u8).collect(),
            labels: (0..80).map(|i| i % 4).collect(),
            resembles: Vec::new(),
        }
    }

    /// The kept original indices per class.
    fn kept(d: &Dataset) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); 4];
        for (&p, &y) in d.pixels.iter().zip(&d.labels) {
            assert_eq!(p as usize % 4, y, "an image keeps its label");
            by[y].push(p as usize);
        }
        by
    }

    #[test]
    fn apply_keeps_the_first_n_of_each_seeded_class_shuffle() {
        let full = interleaved();
        // ρ = 0.1, C = 4: 20·0.1^(i/3) = 20, 9.28, 4.31, 2.00 → 20, 9, 4, 2.
        let want_counts = [20, 9, 4, 2];
        let by_seed: Vec<Vec<Vec<usize>>> = [3u64, 4]
            .iter()
            .map(|&seed| {
                let out = apply(&full, 0.1, Profile::Exp, seed).unwrap();
                assert_eq!(out.counts(), want_counts);
                // Dataset order is kept.
                assert!(out.pixels.windows(2).all(|w| w[0] < w[1]));
                let got = kept(&out);
                for c in 0..4 {
                    // The documented stream: class c's indices in dataset order, shuffled with
                    // rng(seed, Profile, c), the first n_c kept.
                    let mut perm: Vec<usize> = (0..20).map(|k| 4 * k + c).collect();
                    perm.shuffle(&mut rng::rng(seed, Stream::Profile, c as u64));
                    let mut want = perm[..want_counts[c]].to_vec();
                    want.sort_unstable();
                    assert_eq!(got[c], want, "seed {seed}, class {c}");
                }
                got
            })
            .collect();
        // Another seed keeps other images (class 0 keeps all 20 either way).
        assert_eq!(by_seed[0][0], by_seed[1][0]);
        for (c, (a, b)) in by_seed[0].iter().zip(&by_seed[1]).enumerate().skip(1) {
            assert_ne!(a, b, "class {c}");
        }
        // Same seed, ρ = 0.5 (20, 15.87, 12.60, 10.0 → 20, 15, 12, 10): a superset, as both
        // take a prefix of the same permutation.
        let wide = apply(&full, 0.5, Profile::Exp, 3).unwrap();
        assert_eq!(wide.counts(), [20, 15, 12, 10]);
        for (small, big) in by_seed[0].iter().zip(kept(&wide)) {
            assert!(small.iter().all(|i| big.contains(i)), "{small:?} ⊄ {big:?}");
        }
        // The same seed again gives the same images.
        assert_eq!(apply(&full, 0.1, Profile::Exp, 3).unwrap().pixels, apply(&full, 0.1, Profile::Exp, 3).unwrap().pixels);
    }

    #[test]
    fn rho_one_is_balanced() {
        assert_eq!(class_counts(7, 5, 1.0, Profile::Exp), vec![7; 5]);
    }
}
