//! A run's per-step log in compact columns: one f32 per term per step (NaN where a step did not
//! log the term), the loss per t-bucket as f32 rows, throughput, and OC's transfer counts only on
//! the steps that have them, flat. A 300,000-step run is ≈ 20 MB here, not a parsed record per
//! step, and it travels to a page as these columns (`encode_columns`).

use crate::{StepRecord, T_BUCKETS};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    steps: Vec<u64>,
    /// (name, value per step), in the order the terms first appeared.
    terms: Vec<(String, Vec<f32>)>,
    loss_by_t: Vec<[f32; T_BUCKETS]>,
    images_per_s: Vec<f32>,
    transfers: Transfers,
}

/// OC's swap counts of the steps that logged them, without an allocation per step: the rows
/// (ascending), each row's samples and swaps per t-bucket, and where its (from, to, count) pairs
/// end in `pairs`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Transfers {
    rows: Vec<u32>,
    samples: Vec<[u32; T_BUCKETS]>,
    swaps: Vec<[u32; T_BUCKETS]>,
    pairs_end: Vec<u32>,
    pairs: Vec<[u32; 3]>,
}

impl Transfers {
    fn truncate(&mut self, n: usize) {
        let pairs = self.pairs_end.get(n.wrapping_sub(1)).map_or(0, |&e| e as usize);
        self.rows.truncate(n);
        self.samples.truncate(n);
        self.swaps.truncate(n);
        self.pairs_end.truncate(n);
        self.pairs.truncate(pairs);
    }
}

/// One step's swap counts, as `Metrics` holds them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransferRow<'a> {
    pub samples_by_t: &'a [u32; T_BUCKETS],
    pub swaps_by_t: &'a [u32; T_BUCKETS],
    /// (from class, to class, count).
    pub pairs: &'a [[u32; 3]],
}

fn buckets(v: &[u32]) -> [u32; T_BUCKETS] {
    let mut out = [0; T_BUCKETS];
    out.iter_mut().zip(v).for_each(|(o, &x)| *o = x);
    out
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
            let tr = &mut self.transfers;
            tr.rows.push(row as u32);
            tr.samples.push(buckets(&t.samples_by_t));
            tr.swaps.push(buckets(&t.swaps_by_t));
            tr.pairs.extend(t.pairs.iter().map(|&(a, b, n)| [a as u32, b as u32, n]));
            tr.pairs_end.push(tr.pairs.len() as u32);
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
        let transfers = self.transfers.rows.partition_point(|&r| (r as usize) < keep);
        self.transfers.truncate(transfers);
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
    pub fn transfers_until(&self, step: u64) -> impl Iterator<Item = TransferRow<'_>> {
        let end = self.steps.partition_point(|&s| s <= step);
        let tr = &self.transfers;
        let n = tr.rows.partition_point(|&r| (r as usize) < end);
        (0..n).map(move |k| {
            let from = if k == 0 { 0 } else { tr.pairs_end[k - 1] as usize };
            TransferRow { samples_by_t: &tr.samples[k], swaps_by_t: &tr.swaps[k], pairs: &tr.pairs[from..tr.pairs_end[k] as usize] }
        })
    }

    pub fn has_transfers(&self) -> bool {
        !self.transfers.rows.is_empty()
    }
}

/// The columns as the server sends them to a page (`GET /api/runs/ID/columns`): a page draws a
/// 300,000-step run from ≈ 20 MB of little-endian numbers read column by column, instead of
/// parsing 100 MB of JSON lines. After the 8-byte magic (its last two bytes the version):
/// `rows, terms, buckets, transfers, pairs, detail, consecutive: u32`; each term's name (`u32`
/// length + UTF-8); the steps (`u64`; with `consecutive` 1 only the first, the rest count up by
/// one, as they do in a run that never resumed); each term's column and images/s, `f32`; then, with `detail` 1,
/// the loss by t (`buckets` per row, `f32`) and the transfers' rows, samples and swaps
/// (`buckets` per row), pair ends, and pairs (three per pair), all `u32`. Without the detail
/// (what the loss curves need, a third of the bytes) the loss by t is NaN and there are no
/// transfers.
const MAGIC: &[u8; 8] = b"LTCOLS03";

impl Metrics {
    pub fn encode_columns(&self, detail: bool) -> Vec<u8> {
        let (rows, empty) = (self.steps.len(), Transfers::default());
        let tr = if detail { &self.transfers } else { &empty };
        let mut out =
            Vec::with_capacity(64 + rows * (8 + 4 * (self.terms.len() + 1 + T_BUCKETS)) + tr.rows.len() * 4 * (2 + 2 * T_BUCKETS) + tr.pairs.len() * 12);
        out.extend_from_slice(MAGIC);
        let consecutive = self.steps.windows(2).all(|w| w[1] == w[0] + 1);
        for n in [rows, self.terms.len(), T_BUCKETS, tr.rows.len(), tr.pairs.len(), detail as usize, consecutive as usize] {
            put_u32(&mut out, n);
        }
        for (name, _) in &self.terms {
            put_u32(&mut out, name.len());
            out.extend_from_slice(name.as_bytes());
        }
        let steps = if consecutive { &self.steps[..rows.min(1)] } else { &self.steps[..] };
        steps.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        let by_t = self.loss_by_t.iter().flatten().take(if detail { usize::MAX } else { 0 });
        let f32s = self.terms.iter().flat_map(|(_, v)| v.iter()).chain(&self.images_per_s).chain(by_t);
        f32s.for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        let u32s = tr.rows.iter().chain(tr.samples.iter().flatten()).chain(tr.swaps.iter().flatten()).chain(&tr.pairs_end).chain(tr.pairs.iter().flatten());
        u32s.for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        out
    }

    /// Reads what [`Metrics::encode_columns`] wrote; anything else is an error that says what
    /// was wrong (every length is checked against the bytes that are there before it is used).
    pub fn decode_columns(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(8, "the magic")? != MAGIC {
            return Err("not ltlab's metric columns of this version (wrong magic)".into());
        }
        let (rows, terms, buckets, transfers, pairs) = (r.u32("rows")?, r.u32("terms")?, r.u32("buckets")?, r.u32("transfers")?, r.u32("pairs")?);
        let (detail, consecutive) = (r.flag("detail")?, r.flag("consecutive")?);
        if !detail && transfers + pairs > 0 {
            return Err(format!("{transfers} transfers without the detail"));
        }
        // Every row has at least its images/s: nothing is sized by a count the bytes cannot hold.
        if rows.saturating_mul(4) > bytes.len() {
            return Err(format!("{rows} rows: only {} bytes there (cut short?)", bytes.len()));
        }
        if buckets != T_BUCKETS {
            return Err(format!("{buckets} t-buckets per row, this build has {T_BUCKETS}"));
        }
        let mut names = Vec::new();
        for k in 0..terms {
            let len = r.u32("a term's name length")?;
            let name = std::str::from_utf8(r.take(len, "a term's name")?).map_err(|_| format!("term {k}: its name is not UTF-8"))?;
            names.push(name.to_string());
        }
        let explicit = if consecutive { rows.min(1) } else { rows };
        let mut steps: Vec<u64> = r.column(explicit, 8, "the steps")?.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        if let (true, Some(&first)) = (consecutive, steps.first()) {
            steps = (first..first + rows as u64).collect();
        }
        if steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err("the steps are not ascending".into());
        }
        let mut m = Metrics { steps, ..Default::default() };
        for name in names {
            let values = r.f32s(rows, "a term's column")?;
            m.terms.push((name, values));
        }
        m.images_per_s = r.f32s(rows, "images/s")?;
        m.loss_by_t = if detail {
            r.f32s(rows.saturating_mul(T_BUCKETS), "the loss by t")?.chunks_exact(T_BUCKETS).map(|c| c.try_into().expect("a row")).collect()
        } else {
            vec![[f32::NAN; T_BUCKETS]; m.steps.len()]
        };
        let tr = &mut m.transfers;
        tr.rows = r.u32s(transfers, "the transfers' rows")?;
        if tr.rows.windows(2).any(|w| w[0] >= w[1]) || tr.rows.last().is_some_and(|&l| l as usize >= rows) {
            return Err(format!("the transfers' rows do not ascend below {rows}"));
        }
        let row = |c: &[u32]| -> [u32; T_BUCKETS] { c.try_into().expect("a row") };
        tr.samples = r.u32s(transfers.saturating_mul(T_BUCKETS), "the transfers' samples")?.chunks_exact(T_BUCKETS).map(row).collect();
        tr.swaps = r.u32s(transfers.saturating_mul(T_BUCKETS), "the transfers' swaps")?.chunks_exact(T_BUCKETS).map(row).collect();
        tr.pairs_end = r.u32s(transfers, "the transfers' pair ends")?;
        if tr.pairs_end.windows(2).any(|w| w[0] > w[1]) || tr.pairs_end.last().is_some_and(|&l| l as usize != pairs) {
            return Err(format!("the transfers' pair ends do not ascend to {pairs}"));
        }
        tr.pairs = r.u32s(pairs.saturating_mul(3), "the transfers' pairs")?.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
        if r.at != bytes.len() {
            return Err(format!("{} bytes after the last column", bytes.len() - r.at));
        }
        Ok(m)
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).expect("counts of a run's log fit in u32").to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("{what}: {n} bytes at offset {}, only {} there (cut short?)", self.at, self.bytes.len() - self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")) as usize)
    }

    /// A `u32` that must be 0 or 1.
    fn flag(&mut self, what: &str) -> Result<bool, String> {
        match self.u32(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("{what} {v}: expected 0 or 1")),
        }
    }

    /// `count` values of `width` bytes.
    fn column(&mut self, count: usize, width: usize, what: &str) -> Result<&'a [u8], String> {
        self.take(count.checked_mul(width).ok_or_else(|| format!("{what}: {count} values do not fit in memory"))?, what)
    }

    fn f32s(&mut self, count: usize, what: &str) -> Result<Vec<f32>, String> {
        Ok(self.column(count, 4, what)?.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
    }

    fn u32s(&mut self, count: usize, what: &str) -> Result<Vec<u32>, String> {
        Ok(self.column(count, 4, what)?.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransferCounts;

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

    #[test]
    fn columns_travel_as_bytes_and_come_back_equal_and_bad_bytes_are_named_errors() {
        let mut m = Metrics::default();
        m.push(&record(3, &[("mse", 1.0)]));
        m.push(&record(4, &[("mse", 0.5), ("coral", 0.1)]));
        let mut with_pairs = record(7, &[("coral", 0.2)]);
        with_pairs.transfers = Some(TransferCounts { samples_by_t: vec![3, 1], swaps_by_t: vec![2, 0], pairs: vec![(0, 2, 1), (1, 0, 1)] });
        m.push(&with_pairs);
        let bytes = m.encode_columns(true);
        // By hand: header 8 + 28, names 4+3 + 4+5, steps 3×8, two terms and images/s 3×3×4,
        // loss by t 3×10×4; two transfer rows: rows 2×4, samples and swaps 2×2×10×4, pair
        // ends 2×4, pairs 2×12.
        assert_eq!(bytes.len(), 36 + 16 + 24 + 36 + 120 + 8 + 160 + 8 + 24);
        let back = Metrics::decode_columns(&bytes).unwrap();
        // NaN ≠ NaN: compare the bits.
        let bits = |m: &Metrics| {
            format!(
                "{:?} {:?}",
                m.terms.iter().map(|(n, v)| (n.clone(), v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())).collect::<Vec<_>>(),
                m.loss_by_t.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>()
            )
        };
        assert_eq!(bits(&back), bits(&m));
        assert_eq!((back.steps(), back.images_per_s(), &back.transfers), (m.steps(), m.images_per_s(), &m.transfers));
        let last = back.transfers_until(7).last().unwrap();
        assert_eq!((&last.samples_by_t[..3], &last.swaps_by_t[..3], last.pairs), (&[3, 1, 0][..], &[2, 0, 0][..], &[[0, 2, 1], [1, 0, 1]][..]));
        assert_eq!(back.transfers_until(6).map(|t| t.pairs.len()).collect::<Vec<_>>(), [0], "step 4's row, without pairs");

        // Without the detail: the curves alone, the loss by t unknown, no transfers.
        let curves = m.encode_columns(false);
        assert_eq!(curves.len(), 36 + 16 + 24 + 36);
        let light = Metrics::decode_columns(&curves).unwrap();
        assert_eq!((light.steps(), light.term("coral").unwrap()[2], light.has_transfers()), (m.steps(), 0.2, false));
        assert!(light.loss_by_t(2).iter().all(|v| v.is_nan()) && m.loss_by_t(2)[0] == 7.0);

        // A run that never resumed counts its steps up by one: only the first travels.
        let mut run = Metrics::default();
        (5..=7).for_each(|s| run.push(&record(s, &[("mse", 0.1)])));
        let counted = run.encode_columns(false);
        assert_eq!(counted.len(), 36 + 7 + 8 + 2 * 3 * 4);
        assert_eq!(Metrics::decode_columns(&counted).unwrap().steps(), [5, 6, 7]);

        let err = |b: &[u8]| Metrics::decode_columns(b).unwrap_err();
        assert!(err(&bytes[..bytes.len() - 1]).contains("cut short"), "{}", err(&bytes[..bytes.len() - 1]));
        assert!(err(b"{\"step\":1}").contains("magic"));
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&huge).contains("only"), "a row count larger than the bytes is refused before anything is allocated: {}", err(&huge));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(err(&extra).contains("1 bytes after"));
        let mut descending = bytes;
        let steps_at = 36 + 16;
        descending[steps_at..steps_at + 8].copy_from_slice(&9u64.to_le_bytes());
        assert!(err(&descending).contains("ascending"));
    }
}
