//! A run's per-step log in compact columns: one f32 per term per step (NaN where a step did not
//! log the term), the loss per t-bucket as f32 rows, throughput, and OC's transfer counts only on
//! the steps that have them. A 300,000-step run is ≈ 20 MB here, not a parsed record per step.

use ltlab_types::{StepRecord, T_BUCKETS, TransferCounts};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    steps: Vec<u64>,
    /// (name, value per step), in the order the terms first appeared.
    terms: Vec<(String, Vec<f32>)>,
    loss_by_t: Vec<[f32; T_BUCKETS]>,
    images_per_s: Vec<f32>,
    /// (index into `steps`, counts), ascending.
    transfers: Vec<(usize, TransferCounts)>,
}

impl Metrics {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn steps(&self) -> &[u64] {
        &self.steps
    }

    pub fn first_step(&self) -> Option<u64> {
        self.steps.first().copied()
    }

    pub fn last_step(&self) -> Option<u64> {
        self.steps.last().copied()
    }

    /// Appends a step; a step at or before the last one first drops the steps from it on (a
    /// resumed run redoing them).
    pub fn push(&mut self, r: &StepRecord) {
        if self.last_step().is_some_and(|l| l >= r.step) {
            self.truncate_after(r.step.saturating_sub(1));
        }
        let row = self.steps.len();
        self.steps.push(r.step);
        for (name, &v) in &r.losses {
            if !self.terms.iter().any(|(n, _)| n == name) {
                self.terms.push((name.clone(), vec![f32::NAN; row]));
            }
            let (_, values) = self.terms.iter_mut().find(|(n, _)| n == name).expect("added above");
            values.push(v as f32);
        }
        for (_, values) in &mut self.terms {
            if values.len() == row {
                values.push(f32::NAN);
            }
        }
        let mut by_t = [f32::NAN; T_BUCKETS];
        for (b, v) in by_t.iter_mut().zip(&r.loss_by_t) {
            *b = v.map_or(f32::NAN, |v| v as f32);
        }
        self.loss_by_t.push(by_t);
        self.images_per_s.push(r.images_per_s as f32);
        if let Some(t) = &r.transfers {
            self.transfers.push((row, t.clone()));
        }
    }

    /// Keeps the steps up to `step`.
    pub fn truncate_after(&mut self, step: u64) {
        let keep = self.steps.partition_point(|&s| s <= step);
        self.steps.truncate(keep);
        for (_, v) in &mut self.terms {
            v.truncate(keep);
        }
        self.loss_by_t.truncate(keep);
        self.images_per_s.truncate(keep);
        self.transfers.retain(|(row, _)| *row < keep);
    }

    /// Term names in the order they first appeared.
    pub fn term_names(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|(n, _)| n.as_str())
    }

    /// One term's value per step (NaN where not logged).
    pub fn term(&self, name: &str) -> Option<&[f32]> {
        self.terms.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// The rows of the steps in `from..=to`.
    pub fn rows(&self, from: u64, to: u64) -> std::ops::Range<usize> {
        self.steps.partition_point(|&s| s < from)..self.steps.partition_point(|&s| s <= to)
    }

    pub fn loss_by_t(&self, row: usize) -> &[f32; T_BUCKETS] {
        &self.loss_by_t[row]
    }

    pub fn images_per_s(&self) -> &[f32] {
        &self.images_per_s
    }

    /// OC's transfer counts of the steps up to `step`.
    pub fn transfers_until(&self, step: u64) -> impl Iterator<Item = &TransferCounts> {
        let end = self.steps.partition_point(|&s| s <= step);
        self.transfers.iter().take_while(move |(row, _)| *row < end).map(|(_, t)| t)
    }

    pub fn has_transfers(&self) -> bool {
        !self.transfers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: u64, terms: &[(&str, f64)]) -> StepRecord {
        StepRecord {
            step,
            losses: terms.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            loss_by_t: vec![Some(step as f64); T_BUCKETS],
            lr: 1e-3,
            grad_norm: 0.1,
            images_per_s: 10.0 * step as f64,
            uncond_batch: false,
            loss_by_class: Vec::new(),
            transfers: step.is_multiple_of(2).then(TransferCounts::default),
        }
    }

    #[test]
    fn columns_hold_every_term_with_gaps_and_resumes_drop_redone_steps() {
        let mut m = Metrics::default();
        m.push(&record(1, &[("mse", 1.0)]));
        m.push(&record(2, &[("mse", 0.5), ("coral", 0.1)]));
        m.push(&record(3, &[("coral", 0.2)]));
        assert_eq!(m.term_names().collect::<Vec<_>>(), ["mse", "coral"]);
        let mse = m.term("mse").unwrap();
        assert_eq!((mse[0], mse[1], mse[2].is_nan()), (1.0, 0.5, true));
        let coral = m.term("coral").unwrap();
        assert!(coral[0].is_nan() && coral[1] == 0.1 && coral[2] == 0.2);
        assert_eq!(m.rows(2, 3), 1..3);
        assert_eq!(m.transfers_until(3).count(), 1);
        // Step 2 again (a resume from checkpoint 1): steps 2 and 3 are replaced.
        m.push(&record(2, &[("mse", 0.7)]));
        assert_eq!(m.steps(), [1, 2]);
        assert_eq!(m.term("mse").unwrap(), [1.0, 0.7]);
        assert!(m.term("coral").unwrap()[1].is_nan());
        assert_eq!((m.images_per_s(), m.loss_by_t(1)[0]), (&[10.0, 20.0][..], 2.0));
        assert_eq!(m.transfers_until(2).count(), 1);
    }
}
