//! OC's transfer probability without a model (SPEC §4.2).
//!
//! P(t) = mean over anchors of Σ_{j≠i, accepted} p_sel(j|i): the exact expectation over the
//! selection draw, averaged over real batches (the run's sampler) and one ε per anchor.
//! The same ε serves every t of a batch (common random numbers: each P(t) stays unbiased and
//! the curve is smooth), which lets ‖c_i − x₀,j‖² = D_ij + 2σ·E_ij + σ²‖ε_i‖² be computed from
//! D_ij = ‖x₀,i − x₀,j‖² and E_ij = ε_i·(x₀,i − x₀,j) once per batch; the last term is the
//! same for every j and leaves the softmax.

use crate::data::Dataset;
use crate::data::sampler::{BatchSampler, DrawBatches};
use crate::diffusion::Schedule;
use crate::methods::oc::{Gate, sigma2};
use crate::rng::{self, Stream};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct TransferSetup {
    pub gate: Gate,
    pub sampler: BatchSampler,
    pub batch: usize,
    pub batches: usize,
    /// The t grid: 0, step, 2·step, … < T.
    pub t_step: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransferCurve {
    pub t: Vec<usize>,
    /// P(t) over all anchors.
    pub p_transfer: Vec<f64>,
    /// P(t) per anchor class (`per_class[k][c]`); `None` where no anchor of c was drawn.
    pub per_class: Vec<Vec<Option<f64>>>,
    /// Anchors seen per class over all batches.
    pub anchors: Vec<usize>,
}

/// One batch's images, ε and the t-independent parts of the distances.
struct BatchTerms {
    labels: Vec<usize>,
    d: Vec<f64>,
    e: Vec<f64>,
}

fn batch_terms(data: &Dataset, idx: &[usize], seed: u64, batch_no: u64) -> BatchTerms {
    let len = data.image_len();
    let n = idx.len();
    let mut x0 = Vec::with_capacity(n * len);
    for &i in idx {
        data.image_f32(i, false, &mut x0);
    }
    let eps = rng::normal_vec(&mut rng::rng(seed, Stream::Analysis, batch_no), n * len);
    let (mut d, mut e) = (vec![0.0; n * n], vec![0.0; n * n]);
    for i in 0..n {
        let (xi, ei) = (&x0[i * len..(i + 1) * len], &eps[i * len..(i + 1) * len]);
        for j in 0..n {
            let xj = &x0[j * len..(j + 1) * len];
            let (mut dd, mut ee) = (0.0f64, 0.0f64);
            for k in 0..len {
                let diff = (xi[k] - xj[k]) as f64;
                dd += diff * diff;
                ee += ei[k] as f64 * diff;
            }
            d[i * n + j] = dd;
            e[i * n + j] = ee;
        }
    }
    BatchTerms { labels: idx.iter().map(|&i| data.labels[i]).collect(), d, e }
}

/// For anchor i at time t: p_sel(·|i) and which j the gate accepts; calls `f(j, p)` for every
/// accepted j ≠ i.
fn accepted_mass(b: &BatchTerms, i: usize, t: usize, schedule: &Schedule, gate: &Gate, q: &[f64], mut f: impl FnMut(usize, f64)) {
    let n = b.labels.len();
    let s2 = sigma2(schedule, t);
    let s = s2.sqrt();
    let logits: Vec<f64> = (0..n)
        .map(|j| {
            let l = -(b.d[i * n + j] + 2.0 * s * b.e[i * n + j]) / (2.0 * s2);
            l + gate.beta.map_or(0.0, |beta| beta * q[b.labels[j]].ln())
        })
        .collect();
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = logits.iter().map(|l| (l - max).exp()).sum();
    let yi = b.labels[i];
    // Picking the anchor, or an image equal to it (D_ij = 0: a sampler with replacement can
    // draw it twice), changes nothing: not a transfer.
    for j in (0..n).filter(|&j| j != i && b.d[i * n + j] != 0.0) {
        if gate.accepts(q[yi], q[b.labels[j]], t) {
            f(j, (logits[j] - max).exp() / z);
        }
    }
}

fn batches(data: &Dataset, setup: &TransferSetup) -> Vec<BatchTerms> {
    let by_class = data.indices_by_class();
    (0..setup.batches as u64)
        .map(|k| {
            let idx = setup.sampler.batch(&data.labels, &by_class, setup.batch, setup.seed, k);
            batch_terms(data, &idx, setup.seed, k)
        })
        .collect()
}

fn class_q(data: &Dataset) -> Vec<f64> {
    let counts = data.counts();
    let total: usize = counts.iter().sum();
    counts.iter().map(|&c| c as f64 / total as f64).collect()
}

/// P(t) on the grid, overall and per class. `progress(done, total)` after each t.
pub fn transfer_curve(data: &Dataset, schedule: &Schedule, setup: &TransferSetup, progress: &mut dyn FnMut(usize, usize)) -> TransferCurve {
    let q = class_q(data);
    let c = data.num_classes();
    let bs = batches(data, setup);
    let grid: Vec<usize> = (0..schedule.len()).step_by(setup.t_step.max(1)).collect();
    let mut anchors = vec![0usize; c];
    for b in &bs {
        for &y in &b.labels {
            anchors[y] += 1;
        }
    }
    let (mut overall, mut per_class) = (Vec::new(), Vec::new());
    for (k, &t) in grid.iter().enumerate() {
        let mut sums = vec![0.0f64; c];
        for b in &bs {
            for i in 0..b.labels.len() {
                let mut p = 0.0;
                accepted_mass(b, i, t, schedule, &setup.gate, &q, |_, m| p += m);
                sums[b.labels[i]] += p;
            }
        }
        let n: usize = anchors.iter().sum();
        overall.push(sums.iter().sum::<f64>() / n as f64);
        per_class.push((0..c).map(|y| (anchors[y] > 0).then(|| sums[y] / anchors[y] as f64)).collect());
        progress(k + 1, grid.len());
    }
    TransferCurve { t: grid, p_transfer: overall, per_class, anchors }
}

/// The class→class matrix at t: row a = mean over anchors of class a of the accepted mass that
/// goes to images of each class b (row sums = P_a(t)). `None` rows: no anchor of that class.
pub fn transfer_matrix(data: &Dataset, schedule: &Schedule, setup: &TransferSetup, t: usize) -> Vec<Option<Vec<f64>>> {
    let q = class_q(data);
    let c = data.num_classes();
    let mut sums = vec![vec![0.0f64; c]; c];
    let mut anchors = vec![0usize; c];
    for b in &batches(data, setup) {
        for i in 0..b.labels.len() {
            let yi = b.labels[i];
            anchors[yi] += 1;
            accepted_mass(b, i, t, schedule, &setup.gate, &q, |j, m| sums[yi][b.labels[j]] += m);
        }
    }
    (0..c).map(|a| (anchors[a] > 0).then(|| sums[a].iter().map(|s| s / anchors[a] as f64).collect())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataConfig, DatasetKind};
    use crate::methods::oc::{OcMode, noisy_anchor, selection_row};

    fn data() -> Dataset {
        let mut c = DataConfig::new(DatasetKind::Synthetic, 0.1);
        c.image_size = Some(8);
        c.synthetic_per_class = 20;
        c.load().unwrap()
    }

    fn setup(mode: OcMode) -> TransferSetup {
        TransferSetup { gate: Gate { mode, beta: None, cutoff: None }, sampler: BatchSampler::Balanced, batch: 16, batches: 3, t_step: 100, seed: 4 }
    }

    /// The decomposed distances give the accepted mass of the direct formula of training, for
    /// the plain gate, the β prior (p ∝ q(y_j)^β·e^{ℓ_ij}, no gate) and T2H with a cutoff (no
    /// transfer from t_cut on): Σ p_sel(j|i) over the j that are another image and accepted.
    #[test]
    fn matches_the_direct_selection_probabilities() {
        let d = data();
        let s = Schedule::ddpm();
        let st = setup(OcMode::Full);
        let by_class = d.indices_by_class();
        let idx = st.sampler.batch(&d.labels, &by_class, st.batch, st.seed, 0);
        let b = batch_terms(&d, &idx, st.seed, 0);
        let len = d.image_len();
        let mut x0 = Vec::new();
        for &i in &idx {
            d.image_f32(i, false, &mut x0);
        }
        let eps = rng::normal_vec(&mut rng::rng(st.seed, Stream::Analysis, 0), idx.len() * len);
        let q = class_q(&d);
        let y: Vec<usize> = idx.iter().map(|&i| d.labels[i]).collect();
        let log_prior: Vec<f64> = y.iter().map(|&c| 1.5 * q[c].ln()).collect();
        let gates = [
            Gate { mode: OcMode::Full, beta: None, cutoff: None },
            Gate { mode: OcMode::Full, beta: Some(1.5), cutoff: None },
            Gate { mode: OcMode::T2h, beta: None, cutoff: Some(800) },
        ];
        let mut nonzero = [0; 3];
        for (g, gate) in gates.iter().enumerate() {
            for (i, t) in [(0, 300), (5, 600), (9, 900), (3, 799), (4, 800)] {
                let s2 = sigma2(&s, t);
                let c = noisy_anchor(&x0[i * len..(i + 1) * len], &eps[i * len..(i + 1) * len], s2.sqrt());
                let row = selection_row(&c, &x0, len, s2, gate.beta.map(|_| log_prior.as_slice()));
                let other = |j: usize| j != i && x0[j * len..(j + 1) * len] != x0[i * len..(i + 1) * len];
                let passes = |j: usize| match (gate.mode, gate.cutoff) {
                    (OcMode::T2h, Some(cut)) => t < cut && q[y[j]] >= q[y[i]],
                    _ => true,
                };
                let want: f64 = (0..idx.len()).filter(|&j| other(j) && passes(j)).map(|j| row[j]).sum();
                let mut got = 0.0;
                accepted_mass(&b, i, t, &s, gate, &q, |_, m| got += m);
                assert!((got - want).abs() < 1e-6, "gate {g}, t {t}: {got} vs {want}");
                nonzero[g] += usize::from(want > 1e-3);
            }
        }
        assert!(nonzero.iter().all(|&k| k >= 2), "each gate moves some mass: {nonzero:?}");
    }

    #[test]
    fn curve_rises_with_t_and_gates_order() {
        let d = data();
        let s = Schedule::ddpm();
        let full = transfer_curve(&d, &s, &setup(OcMode::Full), &mut |_, _| {});
        let t2h = transfer_curve(&d, &s, &setup(OcMode::T2h), &mut |_, _| {});
        assert_eq!(full.t, (0..1000).step_by(100).collect::<Vec<_>>());
        assert!(full.p_transfer[0] < 1e-6, "no transfer at t = 0: {:?}", full.p_transfer);
        assert!(full.p_transfer[9] > 0.5, "{:?}", full.p_transfer);
        for k in 0..full.t.len() {
            assert!(t2h.p_transfer[k] <= full.p_transfer[k] + 1e-12);
        }
        // The head class (0) can only move within itself under T2H; the tail class most.
        let (head, tail) = (t2h.per_class[9][0].unwrap(), t2h.per_class[9][9].unwrap());
        assert!(tail > head, "{head} vs {tail}");
        // Matrix rows sum to the per-class curve; T2H never sends mass to a rarer class.
        let m = transfer_matrix(&d, &s, &setup(OcMode::T2h), 900);
        let counts = d.counts();
        for (a, row) in m.iter().enumerate() {
            let row = row.as_ref().unwrap();
            assert!((row.iter().sum::<f64>() - t2h.per_class[9][a].unwrap()).abs() < 1e-9);
            for (b, &v) in row.iter().enumerate() {
                if counts[b] < counts[a] {
                    assert_eq!(v, 0.0, "{a}→{b}");
                }
            }
        }
    }
}
