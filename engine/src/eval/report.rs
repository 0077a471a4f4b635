//! One evaluation for every method (SPEC §5): overall FID/KID/IS/precision/recall/PRD,
//! per-class FID/KID, Many/Medium/Few and tail splits, and with the domain network the
//! per-class accuracy of generated samples and the borrowing matrix.

use super::metrics::{self, GaussianStats};
use crate::error::{Error, Result};
use crate::geometry::Features;
use ltlab_types::Resemblance;
use ltlab_types::class_splits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The metrics' own settings (SPEC §5 defaults).
#[derive(Debug, Clone)]
pub struct MetricOptions {
    pub kid_subsets: usize,
    /// KID subsets: `None` → min(1000, n/2) vectors (SPEC), `Some(m)` → min(m, n); n the
    /// smaller set. With m = n the subset is the whole set and KID is deterministic.
    pub kid_subset_size: Option<usize>,
    pub pr_k: usize,
    /// PRD clusters per class (20·C in all).
    pub prd_clusters_per_class: usize,
    pub prd_runs: usize,
    /// k-means starts per PRD clustering, the best kept (the reference's n_init = 10).
    pub prd_inits: usize,
    pub prd_angles: usize,
    pub is_splits: usize,
    pub seed: u64,
}

impl Default for MetricOptions {
    fn default() -> Self {
        Self {
            kid_subsets: 100,
            kid_subset_size: None,
            pr_k: 3,
            prd_clusters_per_class: 20,
            prd_runs: 10,
            prd_inits: 10,
            prd_angles: 1001,
            is_splits: 10,
            seed: 0,
        }
    }
}

/// What is known about the classes being evaluated.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    pub names: Vec<String>,
    /// Training images per class (the long-tailed counts); splits need them.
    pub train_counts: Option<Vec<usize>>,
    /// The synthetic set's recorded resemblances (tail class → head class).
    pub resembles: Vec<Resemblance>,
}

/// A feature set with the class of every vector (`None`: unlabelled images).
#[derive(Debug, Clone)]
pub struct LabelledSet<'a> {
    pub features: &'a Features,
    pub labels: Option<&'a [usize]>,
}

/// FID and KID of one pair of sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetScores {
    pub n_real: usize,
    pub n_fake: usize,
    pub fid: f64,
    pub kid: f64,
    pub kid_std: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub class: usize,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// `None` when a class has fewer than two generated or real images.
    pub scores: Option<SetScores>,
    /// Fraction of this class's samples the domain classifier assigns to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitScores {
    /// Many, Medium, Few or Tail (the last 30 % of classes by training count).
    pub name: String,
    pub classes: Vec<usize>,
    /// The split's samples against the split's real images.
    pub scores: Option<SetScores>,
    /// Mean of the per-class FIDs of the split's classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_class_fid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
}

/// Which class the domain classifier assigns each class's samples to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Borrowing {
    /// `matrix[c][j]`: fraction of the samples generated as class c classified as j.
    pub matrix: Vec<Vec<f64>>,
    /// The classes whose rows matter most (the Few split, or all classes without counts).
    pub tail_classes: Vec<usize>,
    /// Against the synthetic set's recorded resemblances.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ground_truth: Vec<BorrowingCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BorrowingCheck {
    pub class: usize,
    pub head_class: usize,
    pub shared: Vec<String>,
    /// P(classified as the resembled head class).
    pub p_head: f64,
    /// P(head | misclassified); chance would be 1/(C − 1).
    pub p_head_given_wrong: Option<f64>,
    pub chance_given_wrong: f64,
    /// The class it is most often mistaken for.
    pub most_borrowed: Option<usize>,
    pub agrees: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The feature network every number below was computed with.
    pub features: String,
    pub overall: SetScores,
    pub precision: f64,
    pub recall: f64,
    pub f8: f64,
    pub f1_8: f64,
    /// IS over the feature network's classifier (Inception's 1008 classes or the domain's).
    pub inception_score: Option<f64>,
    pub inception_score_std: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_class: Vec<ClassScores>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<SplitScores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub borrowing: Option<Borrowing>,
    /// Where the numbers came from: run, step, sampler, ω, sample count, cache files …
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// Wall time of each phase in seconds.
    #[serde(default)]
    pub seconds: BTreeMap<String, f64>,
}

fn select(f: &Features, idx: &[usize]) -> Features {
    let mut data = Vec::with_capacity(idx.len() * f.d);
    for &i in idx {
        data.extend_from_slice(f.row(i));
    }
    Features { n: idx.len(), d: f.d, data }
}

fn rows_of(labels: &[usize], classes: &[usize]) -> Vec<usize> {
    labels.iter().enumerate().filter(|(_, y)| classes.contains(y)).map(|(i, _)| i).collect()
}

/// FID and KID of two sets; `None` if either has fewer than two vectors.
pub fn set_scores(real: &Features, fake: &Features, o: &MetricOptions) -> Result<Option<SetScores>> {
    if real.n < 2 || fake.n < 2 {
        return Ok(None);
    }
    let fid = metrics::fid(&GaussianStats::of(real)?, &GaussianStats::of(fake)?)?;
    let n = real.n.min(fake.n);
    let m = o.kid_subset_size.map_or(1000.min(n / 2), |m| m.min(n)).max(2);
    let (kid, kid_std) = metrics::kid(real, fake, o.kid_subsets, m, o.seed)?;
    Ok(Some(SetScores { n_real: real.n, n_fake: fake.n, fid, kid, kid_std }))
}

/// The last 30 % of classes by training count (at least one): FID_tail's classes.
pub fn tail_classes(counts: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let k = ((counts.len() as f64 * 0.3).round() as usize).max(1).min(counts.len());
    order[counts.len() - k..].to_vec()
}

/// `matrix[c][j]`: fraction of class-c samples predicted as j (rows of classes without
/// samples stay zero).
pub fn confusion(labels: &[usize], predicted: &[usize], classes: usize) -> Vec<Vec<f64>> {
    let mut m = vec![vec![0.0; classes]; classes];
    let mut n = vec![0usize; classes];
    for (&y, &p) in labels.iter().zip(predicted) {
        m[y][p] += 1.0;
        n[y] += 1;
    }
    for (row, &k) in m.iter_mut().zip(&n) {
        row.iter_mut().for_each(|v| *v /= k.max(1) as f64);
    }
    m
}

/// The borrowing of each recorded resemblance read off the confusion matrix.
pub fn check_borrowing(matrix: &[Vec<f64>], resembles: &[Resemblance]) -> Vec<BorrowingCheck> {
    let c = matrix.len();
    resembles
        .iter()
        .map(|r| {
            let row = &matrix[r.class];
            let wrong = 1.0 - row[r.class];
            let most = (0..c).filter(|&j| j != r.class && row[j] > 0.0).max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)));
            BorrowingCheck {
                class: r.class,
                head_class: r.head_class,
                shared: r.shared.clone(),
                p_head: row[r.head_class],
                p_head_given_wrong: (wrong > 1e-12).then(|| row[r.head_class] / wrong),
                chance_given_wrong: 1.0 / (c.max(2) - 1) as f64,
                most_borrowed: most,
                agrees: most == Some(r.head_class),
            }
        })
        .collect()
}

/// Class logits of the generated images (N × `classes`, row-major), which feed IS.
#[derive(Debug, Clone, Copy)]
pub struct FakeLogits<'a> {
    pub values: &'a [f32],
    pub classes: usize,
    /// The domain classifier's logits over the dataset's own classes: they also give accuracy
    /// and borrowing.
    pub of_dataset_classes: bool,
}

impl FakeLogits<'_> {
    /// No logits (features made elsewhere): no IS.
    pub const NONE: FakeLogits<'static> = FakeLogits { values: &[], classes: 0, of_dataset_classes: false };
}

/// Everything SPEC §5 reports. `per_class` adds per-class scores and the splits.
pub fn evaluate(
    real: &LabelledSet,
    fake: &LabelledSet,
    logits: &FakeLogits,
    classes: &ClassInfo,
    per_class: bool,
    features: &str,
    o: &MetricOptions,
) -> Result<EvalReport> {
    let (fake_logits, logit_classes, classifies_classes) = (logits.values, logits.classes, logits.of_dataset_classes);
    let (r, f) = (real.features, fake.features);
    if r.d != f.d {
        return Err(Error::Other(format!("feature dimensions differ: real {} vs generated {}", r.d, f.d)));
    }
    let mut seconds = BTreeMap::new();
    let clock = std::time::Instant::now();
    let overall = set_scores(r, f, o)?.ok_or_else(|| Error::Other(format!("need at least 2 real and 2 generated images (have {} and {})", r.n, f.n)))?;
    seconds.insert("fid_kid".into(), clock.elapsed().as_secs_f64());

    // Precision/recall and PRD on equally many real vectors (a seeded subset of the reference).
    let clock = std::time::Instant::now();
    let real_sub = if r.n > f.n {
        let mut rng = crate::rng::rng(o.seed, crate::rng::Stream::Analysis, 91);
        let mut idx = rand::seq::index::sample(&mut rng, r.n, f.n).into_vec();
        idx.sort_unstable();
        select(r, &idx)
    } else {
        r.clone()
    };
    let (precision, recall) = metrics::precision_recall(&real_sub, f, o.pr_k)?;
    seconds.insert("precision_recall".into(), clock.elapsed().as_secs_f64());
    let clock = std::time::Instant::now();
    let clusters = (o.prd_clusters_per_class * classes.names.len().max(1)).min((real_sub.n + f.n) / 2).max(1);
    let (f8, f1_8) = metrics::prd(&real_sub, f, clusters, o.prd_runs, o.prd_inits, o.prd_angles, o.seed)?;
    seconds.insert("prd".into(), clock.elapsed().as_secs_f64());

    let is = if f.n >= o.is_splits && logit_classes > 0 && fake_logits.len() == f.n * logit_classes {
        Some(metrics::inception_score(fake_logits, logit_classes, o.is_splits, o.seed)?)
    } else {
        None
    };
    let c = classes.names.len();
    let predicted = (classifies_classes && logit_classes == c).then(|| super::domain::argmax_rows(fake_logits, c));
    let conf = match (&predicted, fake.labels) {
        (Some(p), Some(y)) => Some(confusion(y, p, c)),
        _ => None,
    };
    let accuracy = match (&predicted, fake.labels) {
        (Some(p), Some(y)) => Some(p.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len().max(1) as f64),
        _ => None,
    };

    let mut per = Vec::new();
    let mut split_rows = Vec::new();
    if per_class {
        let (Some(rl), Some(fl)) = (real.labels, fake.labels) else {
            return Err(Error::option("per-class", "per-class metrics need class labels for both the real and the generated images"));
        };
        let clock = std::time::Instant::now();
        let split_of = classes.train_counts.as_ref().map(|counts| {
            let s = class_splits(counts);
            let mut of = vec![""; c];
            for (name, cls) in ["Many", "Medium", "Few"].iter().zip(&s) {
                for &k in cls {
                    of[k] = name;
                }
            }
            (s, of)
        });
        for k in 0..c {
            let scores = set_scores(&select(r, &rows_of(rl, &[k])), &select(f, &rows_of(fl, &[k])), o)?;
            per.push(ClassScores {
                class: k,
                name: classes.names[k].clone(),
                train_count: classes.train_counts.as_ref().map(|t| t[k]),
                split: split_of.as_ref().map(|(_, of)| of[k].to_string()),
                scores,
                accuracy: conf.as_ref().map(|m| m[k][k]),
            });
        }
        if let (Some((s, _)), Some(counts)) = (&split_of, &classes.train_counts) {
            let groups = ["Many", "Medium", "Few"].iter().map(|n| n.to_string()).zip(s.iter().cloned()).chain([("Tail".to_string(), tail_classes(counts))]);
            for (name, cls) in groups {
                let scores = set_scores(&select(r, &rows_of(rl, &cls)), &select(f, &rows_of(fl, &cls)), o)?;
                let fids: Vec<f64> = cls.iter().filter_map(|&k| per[k].scores.as_ref().map(|s| s.fid)).collect();
                let acc = conf.as_ref().map(|_| {
                    let rows = rows_of(fl, &cls);
                    let p = predicted.as_ref().expect("confusion implies predictions");
                    rows.iter().filter(|&&i| p[i] == fl[i]).count() as f64 / rows.len().max(1) as f64
                });
                split_rows.push(SplitScores {
                    name,
                    classes: cls,
                    scores,
                    mean_class_fid: (!fids.is_empty()).then(|| fids.iter().sum::<f64>() / fids.len() as f64),
                    accuracy: acc,
                });
            }
        }
        seconds.insert("per_class".into(), clock.elapsed().as_secs_f64());
    }
    let borrowing = conf.map(|matrix| Borrowing {
        tail_classes: classes.train_counts.as_ref().map(|t| class_splits(t)[2].clone()).unwrap_or_else(|| (0..c).collect()),
        ground_truth: check_borrowing(&matrix, &classes.resembles),
        matrix,
    });
    Ok(EvalReport {
        features: features.to_string(),
        overall,
        precision,
        recall,
        f8,
        f1_8,
        inception_score: is.map(|v| v.0),
        inception_score_std: is.map(|v| v.1),
        per_class: per,
        splits: split_rows,
        accuracy,
        borrowing,
        context: BTreeMap::new(),
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{self, Stream};

    fn cloud(n: usize, centre: f32, seed: u64) -> Features {
        let z = rng::normal_vec(&mut rng::rng(seed, Stream::Analysis, 3), n * 2);
        Features::new(n, 2, z.iter().enumerate().map(|(i, v)| v + if i % 2 == 0 { centre } else { 0.0 }).collect()).unwrap()
    }

    fn concat(parts: &[&Features]) -> Features {
        Features::new(parts.iter().map(|p| p.n).sum(), 2, parts.iter().flat_map(|p| p.data.iter().copied()).collect()).unwrap()
    }

    #[test]
    fn tail_is_the_last_thirty_percent() {
        let c10: Vec<usize> = (0..10).map(|i| 100 - i).collect();
        assert_eq!(tail_classes(&c10), vec![7, 8, 9]);
        let c100: Vec<usize> = (0..100).map(|i| 1000 - i).collect();
        assert_eq!(tail_classes(&c100), (70..100).collect::<Vec<_>>());
        assert_eq!(tail_classes(&[3, 50, 7]), vec![0]);
    }

    #[test]
    fn confusion_and_borrowing_by_hand() {
        // Class 2 (tail) resembles head 0: 4 samples → 1 right, 2 as class 0, 1 as class 1.
        let labels = [0, 0, 1, 2, 2, 2, 2];
        let pred = [0, 0, 1, 2, 0, 0, 1];
        let m = confusion(&labels, &pred, 3);
        assert_eq!(m[2], vec![0.5, 0.25, 0.25]);
        assert_eq!(m[0], vec![1.0, 0.0, 0.0]);
        let r = Resemblance { class: 2, head_class: 0, shared: vec!["shape".into()] };
        let c = &check_borrowing(&m, std::slice::from_ref(&r))[0];
        assert_eq!((c.p_head, c.p_head_given_wrong, c.chance_given_wrong), (0.5, Some(2.0 / 3.0), 0.5));
        assert_eq!((c.most_borrowed, c.agrees), (Some(0), true));
        let r1 = Resemblance { head_class: 1, ..r };
        assert!(!check_borrowing(&m, &[r1])[0].agrees);
    }

    #[test]
    fn per_class_and_split_scores_follow_the_classes() {
        // Three classes at x = 0, 10, 20; the generator gets classes 0 and 1 right and draws
        // class 2 at class 0's place (borrowing from the head).
        let o = MetricOptions { kid_subsets: 5, prd_runs: 2, prd_angles: 101, is_splits: 2, ..Default::default() };
        let real = concat(&[&cloud(200, 0.0, 1), &cloud(200, 10.0, 2), &cloud(200, 20.0, 3)]);
        let fake = concat(&[&cloud(100, 0.0, 4), &cloud(100, 10.0, 5), &cloud(100, 0.0, 6)]);
        let rl: Vec<usize> = (0..600).map(|i| i / 200).collect();
        let fl: Vec<usize> = (0..300).map(|i| i / 100).collect();
        // Domain logits: the classifier sees where a sample is.
        let logits: Vec<f32> = (0..300)
            .flat_map(|i| {
                let x = fake.row(i)[0];
                (0..3).map(move |k| -(x - 10.0 * k as f32).powi(2))
            })
            .collect();
        let info = ClassInfo {
            names: vec!["a".into(), "b".into(), "c".into()],
            train_counts: Some(vec![500, 50, 5]),
            resembles: vec![Resemblance { class: 2, head_class: 0, shared: vec![] }],
        };
        let rep = evaluate(
            &LabelledSet { features: &real, labels: Some(&rl) },
            &LabelledSet { features: &fake, labels: Some(&fl) },
            &FakeLogits { values: &logits, classes: 3, of_dataset_classes: true },
            &info,
            true,
            "test",
            &o,
        )
        .unwrap();
        let fid = |k: usize| rep.per_class[k].scores.as_ref().unwrap().fid;
        assert!(fid(0) < 0.2 && fid(1) < 0.2, "{} {}", fid(0), fid(1));
        // Class 2 drawn 20 away: FID ≈ 400.
        assert!((fid(2) - 400.0).abs() < 30.0, "{}", fid(2));
        assert_eq!(
            rep.splits.iter().map(|s| (s.name.as_str(), s.classes.clone())).collect::<Vec<_>>(),
            vec![("Many", vec![0]), ("Medium", vec![1]), ("Few", vec![2]), ("Tail", vec![2])]
        );
        assert_eq!(rep.per_class[2].split.as_deref(), Some("Few"));
        let acc = rep.accuracy.unwrap();
        assert!((acc - 2.0 / 3.0).abs() < 0.02, "{acc}");
        let b = rep.borrowing.as_ref().unwrap();
        assert!(b.matrix[2][0] > 0.95 && b.ground_truth[0].agrees);
        assert_eq!(b.tail_classes, vec![2]);
        // One third of the real mass is never generated: recall drops, precision stays.
        assert!(rep.precision > 0.9 && rep.recall < 0.8, "{} {}", rep.precision, rep.recall);
        // Mismatched dimensions are refused by name.
        let bad = Features::new(2, 3, vec![0.0; 6]).unwrap();
        let e =
            evaluate(&LabelledSet { features: &real, labels: None }, &LabelledSet { features: &bad, labels: None }, &FakeLogits::NONE, &info, false, "t", &o)
                .unwrap_err();
        assert!(e.to_string().contains("dimensions differ"), "{e}");
    }

    /// The wiring of the overall scores: KID on subsets of min(1000, n/2) vectors (n the
    /// smaller set) or min(m, n) when given; precision/recall and PRD on a seeded subset of the
    /// real set as large as the generated one; PRD with min(20·C, (n_real + n_fake)/2) clusters.
    /// Each against the metric called directly with the sizes worked out by hand.
    #[test]
    fn subset_sizes_and_cluster_count_by_hand() {
        let o = MetricOptions { kid_subsets: 4, prd_runs: 2, prd_inits: 2, prd_angles: 101, is_splits: 1, ..Default::default() };
        // 40 real vectors in two clouds, 12 generated in one of them.
        let real = concat(&[&cloud(20, 0.0, 1), &cloud(20, 6.0, 2)]);
        let fake = cloud(12, 0.0, 3);
        let info = ClassInfo { names: vec!["a".into(), "b".into()], train_counts: None, resembles: vec![] };
        let rep =
            evaluate(&LabelledSet { features: &real, labels: None }, &LabelledSet { features: &fake, labels: None }, &FakeLogits::NONE, &info, false, "t", &o)
                .unwrap();
        // KID: n = 12, subsets of 6.
        let (kid, _) = metrics::kid(&real, &fake, 4, 6, 0).unwrap();
        assert_eq!(rep.overall.kid, kid);
        assert_ne!(metrics::kid(&real, &fake, 4, 12, 0).unwrap().0, kid, "the size matters");
        // Given m: min(m, n) = 12, the whole smaller set.
        let whole = set_scores(&real, &fake, &MetricOptions { kid_subset_size: Some(100), ..o.clone() }).unwrap().unwrap();
        assert_eq!(whole.kid, metrics::kid(&real, &fake, 4, 12, 0).unwrap().0);
        // P/R and PRD on 12 of the 40 real vectors (stream Analysis/91, sorted indices).
        let mut r = rng::rng(0, Stream::Analysis, 91);
        let mut idx = rand::seq::index::sample(&mut r, 40, 12).into_vec();
        idx.sort_unstable();
        let sub = select(&real, &idx);
        assert_eq!(sub.n, 12);
        assert_eq!((rep.precision, rep.recall), metrics::precision_recall(&sub, &fake, 3).unwrap());
        assert_ne!((rep.precision, rep.recall), metrics::precision_recall(&real, &fake, 3).unwrap(), "the whole real set would differ");
        // Clusters: min(20·2, (12 + 12)/2) = 12.
        assert_eq!((rep.f8, rep.f1_8), metrics::prd(&sub, &fake, 12, 2, 2, 101, 0).unwrap());
        assert_ne!((rep.f8, rep.f1_8), metrics::prd(&sub, &fake, 40, 2, 2, 101, 0).unwrap(), "20·C clusters would differ");
    }
}
