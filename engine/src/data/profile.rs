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
        Profile::Exp => (0..classes)
            .map(|i| floor(n_max as f64 * rho.powf(i as f64 / (classes - 1) as f64)))
            .collect(),
        // With an odd number of classes the middle one counts as head.
        Profile::Step => {
            let head = classes.div_ceil(2);
            (0..classes).map(|i| if i < head { n_max } else { floor(n_max as f64 * rho) }).collect()
        }
    }
}

/// Keeps, per class, the first n_i images of a seeded shuffle of that class's indices.
/// A class with fewer images than its quota keeps all it has.
pub fn apply(full: &Dataset, rho: f64, profile: Profile, seed: u64) -> Result<Dataset> {
    let by_class = full.indices_by_class();
    let n_max = by_class.iter().map(Vec::len).max().unwrap_or(0);
    if let Some(empty) = by_class.iter().position(Vec::is_empty) {
        return Err(Error::Other(format!(
            "{}: class {} (`{}`) has no images",
            full.name, empty, full.class_names[empty]
        )));
    }
    let quota = class_counts(n_max, full.num_classes(), rho, profile);
    let mut keep = Vec::new();
    for (c, idx) in by_class.iter().enumerate() {
        if quota[c] == 0 {
            return Err(Error::option(
                "imbalance",
                format!(
                    "ρ = {rho} leaves class {c} (`{}`) empty: floor({n_max}·ρ^…) = 0; use a larger ρ",
                    full.class_names[c]
                ),
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

    #[test]
    fn rho_one_is_balanced() {
        assert_eq!(class_counts(7, 5, 1.0, Profile::Exp), vec![7; 5]);
    }
}
