//! Long series drawn fast: the debiased EMA kept per series and extended as steps arrive,
//! decimation to the plot's width (the min and max of every pixel column, so spikes stay; every
//! point once zoomed in that far), and the point nearest the pointer by binary search.

/// Debiased exponential smoothing (TensorBoard's): s_k = β·s_{k−1} + (1−β)·x_k from s_0 = 0,
/// divided by 1 − β^k so that early points are not pulled towards zero. Non-finite values are
/// skipped (they keep the previous value). Extended in place as the series grows.
#[derive(Debug, Clone, PartialEq)]
pub struct Smoothed {
    beta: f64,
    sum: f64,
    weight: f64,
    pub values: Vec<f32>,
}

impl Smoothed {
    pub fn new(beta: f64) -> Self {
        Self { beta: beta.clamp(0.0, 0.9999), sum: 0.0, weight: 0.0, values: Vec::new() }
    }

    /// Brings the smoothing up to `series`: extends it when `series` grew, restarts when its β
    /// changed or the series is shorter than what was smoothed (a resume dropped steps).
    pub fn update(&mut self, series: &[f32], beta: f64) {
        if self.beta != beta.clamp(0.0, 0.9999) || series.len() < self.values.len() {
            *self = Self::new(beta);
        }
        for &x in &series[self.values.len()..] {
            if x.is_finite() {
                self.sum = self.beta * self.sum + (1.0 - self.beta) * x as f64;
                self.weight = self.beta * self.weight + (1.0 - self.beta);
            }
            self.values.push(if self.weight > 0.0 { (self.sum / self.weight) as f32 } else { f32::NAN });
        }
    }
}

/// The points of `(xs, ys)` to draw over `x_range` on a plot `columns` pixels wide: all of them
/// (and one beyond each end, so lines reach the edges) when there are at most two per column;
/// else, per column, the lowest and the highest point, in step order, so every spike and the
/// line's envelope stay. Non-finite values are left out. `xs` ascending.
pub fn decimate(xs: &[u64], ys: &[f32], x_range: [f64; 2], columns: usize) -> Vec<[f64; 2]> {
    let columns = columns.max(1);
    let start = xs.partition_point(|&x| (x as f64) < x_range[0]).saturating_sub(1);
    let end = (xs.partition_point(|&x| (x as f64) <= x_range[1]) + 1).min(xs.len());
    let point = |i: usize| [xs[i] as f64, ys[i] as f64];
    let finite = |i: &usize| ys[*i].is_finite();
    if end <= start {
        return Vec::new();
    }
    if end - start <= 2 * columns {
        return (start..end).filter(finite).map(point).collect();
    }
    let width = (x_range[1] - x_range[0]).max(f64::MIN_POSITIVE) / columns as f64;
    let mut out = Vec::with_capacity(2 * columns + 4);
    let mut i = start;
    // Column c holds the steps below x_range[0] + (c + 1)·width; the points beyond either end
    // fall in the first and last columns.
    for c in 0..columns {
        let bound = x_range[0] + (c + 1) as f64 * width;
        let j = if c + 1 == columns { end } else { i + xs[i..end].partition_point(|&x| (x as f64) < bound) };
        out.extend(extremes(&ys[i..j]).into_iter().map(|k| point(i + k)));
        i = j;
    }
    out
}

/// The lowest and highest finite values of a column, as indices in step order.
fn extremes(ys: &[f32]) -> Vec<usize> {
    let (mut lo, mut hi) = (usize::MAX, usize::MAX);
    let (mut lo_v, mut hi_v) = (f32::INFINITY, f32::NEG_INFINITY);
    for (k, &y) in ys.iter().enumerate() {
        if !y.is_finite() {
            continue;
        }
        if y < lo_v {
            (lo, lo_v) = (k, y);
        }
        if y > hi_v {
            (hi, hi_v) = (k, y);
        }
    }
    match (lo, hi) {
        (usize::MAX, _) => Vec::new(),
        (lo, hi) if lo == hi => vec![lo],
        (lo, hi) => vec![lo.min(hi), lo.max(hi)],
    }
}

/// The index of the step nearest `x` (ties to the earlier one), by binary search.
pub fn nearest(xs: &[u64], x: f64) -> Option<usize> {
    if xs.is_empty() {
        return None;
    }
    let i = xs.partition_point(|&s| (s as f64) < x);
    let candidates = [i.checked_sub(1), (i < xs.len()).then_some(i)];
    candidates.into_iter().flatten().min_by(|&a, &b| (xs[a] as f64 - x).abs().total_cmp(&(xs[b] as f64 - x).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-series EMA by its definition, in f64.
    fn ema_by_definition(values: &[f32], beta: f64) -> Vec<f64> {
        let (mut s, mut w) = (0.0, 0.0);
        values
            .iter()
            .map(|&x| {
                if x.is_finite() {
                    s = beta * s + (1.0 - beta) * x as f64;
                    w = beta * w + (1.0 - beta);
                }
                if w > 0.0 { s / w } else { f64::NAN }
            })
            .collect()
    }

    #[test]
    fn smoothing_by_hand_and_incremental_equals_rebuilt() {
        // β = ½: s₁ = x₁; then (¼x₁ + ½x₂) / ¾.
        let mut s = Smoothed::new(0.5);
        s.update(&[4.0, 8.0], 0.5);
        assert_eq!(s.values, [4.0, ((1.0 + 4.0) / 0.75) as f32]);
        // A constant series stays constant; a NaN is skipped.
        let mut c = Smoothed::new(0.99);
        c.update(&[3.0; 50], 0.99);
        assert!(c.values.iter().all(|v| (v - 3.0).abs() < 1e-5));
        // Extended in 37 uneven appends, it equals the series smoothed at once and the definition.
        let series: Vec<f32> = (0..1000).map(|i| if i % 97 == 5 { f32::NAN } else { ((i * 7919) % 113) as f32 / 10.0 }).collect();
        let mut inc = Smoothed::new(0.9);
        let mut n = 0;
        for k in 0..37 {
            n = (n + k * 3 + 1).min(series.len());
            inc.update(&series[..n], 0.9);
        }
        inc.update(&series, 0.9);
        let mut whole = Smoothed::new(0.9);
        whole.update(&series, 0.9);
        assert_eq!(inc, whole);
        for (a, b) in inc.values.iter().zip(ema_by_definition(&series, 0.9)) {
            assert!((*a as f64 - b).abs() < 1e-5 * b.abs().max(1.0));
        }
        // A shorter series (resume) or a new β restarts.
        inc.update(&series[..10], 0.9);
        assert_eq!(inc.values.len(), 10);
        inc.update(&series[..10], 0.5);
        assert_eq!(inc.values[1], ema_by_definition(&series[..2], 0.5)[1] as f32);
    }

    #[test]
    fn decimation_keeps_every_columns_extremes() {
        let xs: Vec<u64> = (1..=100_000).collect();
        let ys: Vec<f32> = xs.iter().map(|&x| ((x * 2_654_435_761) % 1000) as f32 / 1000.0 + if x == 55_555 { 50.0 } else { 0.0 }).collect();
        let columns = 300;
        let range = [1.0, 100_000.0];
        let drawn = decimate(&xs, &ys, range, columns);
        assert!(drawn.len() <= 2 * columns + 4, "{} points", drawn.len());
        assert!(drawn.windows(2).all(|w| w[0][0] < w[1][0]), "in step order");
        // Every pixel column's min and max, computed independently, is among the drawn points.
        let width = (range[1] - range[0]) / columns as f64;
        let mut by_column: std::collections::BTreeMap<i64, (f32, f32)> = Default::default();
        for (&x, &y) in xs.iter().zip(&ys) {
            let c = ((x as f64 - range[0]) / width).floor().min((columns - 1) as f64) as i64;
            let e = by_column.entry(c).or_insert((f32::INFINITY, f32::NEG_INFINITY));
            *e = (e.0.min(y), e.1.max(y));
        }
        for (c, (lo, hi)) in by_column {
            let in_column = |p: &&[f64; 2]| ((p[0] - range[0]) / width).floor().min((columns - 1) as f64) as i64 == c;
            let ys_drawn: Vec<f64> = drawn.iter().filter(in_column).map(|p| p[1]).collect();
            assert!(ys_drawn.contains(&(lo as f64)) && ys_drawn.contains(&(hi as f64)), "column {c}");
        }
        assert!(drawn.iter().any(|p| p[1] > 49.0), "the spike is drawn");
        // Zoomed in to 500 steps on 300 columns: every point, plus one beyond each end.
        let zoomed = decimate(&xs, &ys, [1000.0, 1499.0], columns);
        assert_eq!(zoomed.len(), 502);
        assert_eq!((zoomed[0][0], zoomed[501][0]), (999.0, 1500.0));
        // NaNs are left out; an empty range draws nothing.
        assert!(decimate(&[1, 2, 3], &[1.0, f32::NAN, 3.0], [0.0, 4.0], 10).iter().all(|p| p[1].is_finite()));
        assert!(decimate(&[], &[], [0.0, 1.0], 10).is_empty());
    }

    #[test]
    fn nearest_step_by_binary_search() {
        let xs = [10, 20, 30, 1000];
        assert_eq!(nearest(&xs, 14.0), Some(0));
        assert_eq!(nearest(&xs, 15.0), Some(0)); // a tie goes to the earlier step
        assert_eq!(nearest(&xs, 16.0), Some(1));
        assert_eq!(nearest(&xs, -5.0), Some(0));
        assert_eq!(nearest(&xs, 600.0), Some(3));
        assert_eq!(nearest(&xs, 1e9), Some(3));
        assert_eq!(nearest(&[], 1.0), None);
        // Against a scan over 10,000 uneven steps.
        let many: Vec<u64> = (0..10_000u64).map(|i| i * 3 + (i * i) % 7).collect();
        for x in [0.5, 17.2, 12_345.6, 29_999.0, 40_000.0] {
            let scan = (0..many.len()).min_by(|&a, &b| (many[a] as f64 - x).abs().total_cmp(&(many[b] as f64 - x).abs())).unwrap();
            assert_eq!(many[nearest(&many, x).unwrap()], many[scan], "x = {x}");
        }
    }
}
