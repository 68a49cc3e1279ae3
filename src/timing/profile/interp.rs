//! Interpolation of measured tables: 1-D piecewise-linear curves and 2-D
//! tables built from rows of 1-D curves.
//!
//! # 1-D ([`Curve`])
//!
//! A curve is built from `(x, y)` samples (time `y` ≥ 0 against a size `x`):
//!
//! 1. **Duplicates** (same `x`) are replaced by the mean of their `y`.
//! 2. **Isolated spikes** are clipped: an interior sample more than 1.25×
//!    the larger of its two neighbours is lowered to that neighbour's value.
//!    A monotone sequence is left unchanged (no sample exceeds its right
//!    neighbour); a single outlier is replaced by one of its neighbours' values. Vidur's per-operator medians contain such spikes
//!    (e.g. one 96-token QKV GEMM measured 60% slower than its neighbours) and
//!    step 3 alone would carry a spike forward over hundreds of tokens.
//! 3. **Monotone repair**: `y_i ← max_{j ≤ i} y_j` (running maximum over
//!    increasing `x`). Every time here grows with its size, so a measured
//!    decrease is noise; the repair makes the interpolant non-decreasing.
//!
//! Between nodes the curve is linear in the chosen space: with
//! `X = ln x` for a [`Scale::Log`] axis (else `X = x`) and likewise `Y`,
//! `Y(x) = Y_i + (X − X_i)/(X_{i+1} − X_i) · (Y_{i+1} − Y_i)`. Log–log is used
//! where the samples span decades (tokens, bytes, batch sizes): a power law
//! `y = a·x^p` is then reproduced exactly and no segment dominates the error.
//! Values are exact at the nodes in either space.
//!
//! Outside the table:
//! - **below the first node** the first value is returned (clamped: a smaller
//!   input never takes less time than the smallest measured one, which is the
//!   kernel-launch floor);
//! - **above the last node** the curve continues as a straight line in
//!   *linear* space with the slope of the secant from the anchor node (the
//!   first node at `x ≥ x_last / 2`) to the last node, so one noisy last
//!   segment cannot set the slope. Beyond the tables every profiled quantity
//!   (GEMM time vs tokens, collective time vs bytes, attention time vs batch
//!   or context) is in its linear, throughput-bound regime, where time is
//!   affine in size. The slope is ≥ 0 by the monotone repair.
//!
//! # 2-D ([`Table2d`])
//!
//! Rows keyed by an outer coordinate (e.g. decode batch size or prefill chunk
//! size), each row a [`Curve`] over the inner coordinate (context length).
//! A query `(o, k)` evaluates the two rows bracketing `o` at `k` and
//! interpolates between them along the outer axis, linearly in the outer
//! scales — i.e. bilinear interpolation when the grid is rectangular and both
//! axes are linear (in the chosen spaces). Outside the outer range: clamp to
//! the first row below, and the same secant extrapolation as in 1-D (anchor
//! row at `o ≥ o_last/2`) above. Rows need not share inner nodes (Vidur's
//! prefill table is triangular: a chunk `c` is measured at contexts
//! `0, c, 2c, …` below `max_model_len`).
//!
//! Monotonicity across rows is repaired at construction: processing rows by
//! increasing `o`, each node of a row is raised to at least the previous
//! row's value at that node's inner coordinate. A query additionally uses
//! `max(lower row, upper row)` for the upper value.
//!
//! Evaluation does no allocation: a binary search per axis and a few
//! `ln`/`exp` per point.

/// How an axis (or the value) is spaced for interpolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Natural logarithm; values must be > 0 (times are floored at
    /// [`MIN_LOG_VALUE`], sizes must be positive).
    Log,
}

/// Smallest value represented on a log axis (1 ps): a measured time of 0 is
/// stored as this so it stays representable.
pub const MIN_LOG_VALUE: f64 = 1e-12;

impl Scale {
    #[inline(always)]
    fn fwd(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => v.max(MIN_LOG_VALUE).ln(),
        }
    }

    #[inline(always)]
    fn inv(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => v.exp(),
        }
    }
}

/// A monotone piecewise-linear curve `y(x)`; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    xs: Scale,
    ys: Scale,
    /// Node sizes (ascending, distinct) and repaired values, untransformed.
    x: Vec<f64>,
    y: Vec<f64>,
    /// The same, transformed by `xs` / `ys`.
    tx: Vec<f64>,
    ty: Vec<f64>,
    /// Slope (dy/dx, linear space) used above the last node.
    slope: f64,
}

/// An interior sample above both neighbours by more than this factor is a spike.
const SPIKE_FACTOR: f64 = 1.25;

/// Clips isolated spikes: an interior value more than [`SPIKE_FACTOR`] ×
/// the larger of its two neighbours is lowered to that neighbour's value
/// (decided on the original values, so a spike does not move its neighbours).
fn despike(y: &mut [f64]) {
    if y.len() < 3 {
        return;
    }
    let orig = y.to_vec();
    for i in 1..y.len() - 1 {
        let neighbours = orig[i - 1].max(orig[i + 1]);
        if orig[i] > SPIKE_FACTOR * neighbours {
            y[i] = neighbours;
        }
    }
}

impl Curve {
    /// Builds a curve from samples (any order, duplicates allowed). Errors when
    /// there is no sample, a value is not finite, a time is negative, or a
    /// size on a log axis is not positive.
    pub fn new(samples: &[(f64, f64)], xs: Scale, ys: Scale) -> Result<Curve, String> {
        Self::build(samples, xs, ys, true)
    }

    fn build(samples: &[(f64, f64)], xs: Scale, ys: Scale, despike_first: bool) -> Result<Curve, String> {
        if samples.is_empty() {
            return Err("no samples to interpolate".into());
        }
        for &(x, y) in samples {
            if !x.is_finite() || !y.is_finite() {
                return Err(format!("non-finite sample ({x}, {y})"));
            }
            if y < 0.0 {
                return Err(format!("negative time {y} at size {x}"));
            }
            if xs == Scale::Log && x <= 0.0 {
                return Err(format!("size {x} must be > 0 on a logarithmic axis"));
            }
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut x: Vec<f64> = Vec::with_capacity(sorted.len());
        let mut y: Vec<f64> = Vec::with_capacity(sorted.len());
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i;
            let mut sum = 0.0;
            while j < sorted.len() && sorted[j].0 == sorted[i].0 {
                sum += sorted[j].1;
                j += 1;
            }
            x.push(sorted[i].0);
            y.push(sum / (j - i) as f64);
            i = j;
        }
        if despike_first {
            despike(&mut y);
        }
        for i in 1..y.len() {
            y[i] = y[i].max(y[i - 1]);
        }
        Ok(Self::from_repaired(x, y, xs, ys, None))
    }

    /// From sorted, distinct, monotone nodes.
    fn from_repaired(x: Vec<f64>, y: Vec<f64>, xs: Scale, ys: Scale, slope: Option<f64>) -> Curve {
        let n = x.len();
        let slope = slope.unwrap_or_else(|| {
            if n < 2 {
                0.0
            } else {
                let last = n - 1;
                let half = x[last] / 2.0;
                let a = x.iter().position(|&v| v >= half).unwrap_or(last).min(last - 1);
                ((y[last] - y[a]) / (x[last] - x[a])).max(0.0)
            }
        });
        Curve {
            tx: x.iter().map(|&v| xs.fwd(v)).collect(),
            ty: y.iter().map(|&v| ys.fwd(v)).collect(),
            x,
            y,
            xs,
            ys,
            slope,
        }
    }

    /// The same curve with another extrapolation slope above the last node.
    pub fn with_slope(self, slope: f64) -> Curve {
        Curve {
            slope: slope.max(0.0),
            ..self
        }
    }

    /// Node sizes (ascending).
    pub fn xs(&self) -> &[f64] {
        &self.x
    }

    /// Repaired node values.
    pub fn ys(&self) -> &[f64] {
        &self.y
    }

    /// Slope used above the last node.
    pub fn slope(&self) -> f64 {
        self.slope
    }

    /// Interpolated value at `x`.
    #[inline]
    pub fn eval(&self, x: f64) -> f64 {
        let n = self.x.len();
        if x <= self.x[0] {
            return self.y[0];
        }
        let last = n - 1;
        if x >= self.x[last] {
            return self.y[last] + self.slope * (x - self.x[last]);
        }
        // First node with size > x; 1 ≤ hi ≤ last.
        let hi = self.x.partition_point(|&v| v <= x);
        let lo = hi - 1;
        let t = (self.xs.fwd(x) - self.tx[lo]) / (self.tx[hi] - self.tx[lo]);
        self.ys.inv(self.ty[lo] + t * (self.ty[hi] - self.ty[lo]))
    }
}

/// Rows of [`Curve`]s along an outer axis; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Table2d {
    outer_scale: Scale,
    value_scale: Scale,
    outer: Vec<f64>,
    t_outer: Vec<f64>,
    rows: Vec<Curve>,
    /// Index of the anchor row for extrapolation above the last row.
    anchor: usize,
}

impl Table2d {
    /// Builds a table from `(outer, samples)` rows (any order; rows with the
    /// same outer value are merged). `inner`/`outer` give the axis scales and
    /// `value` the scale of the values. A row with a single inner node gets the
    /// extrapolation slope `slope_for_single(outer, nearest multi-node row's
    /// outer, its slope)` (callers scale it physically; see the attention
    /// tables in `profile::mod`).
    pub fn new(
        rows: Vec<(f64, Vec<(f64, f64)>)>,
        outer: Scale,
        inner: Scale,
        value: Scale,
        slope_for_single: impl Fn(f64, f64, f64) -> f64,
    ) -> Result<Table2d, String> {
        if rows.is_empty() {
            return Err("no rows to interpolate".into());
        }
        let mut rows = rows;
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, Vec<(f64, f64)>)> = Vec::with_capacity(rows.len());
        for (o, s) in rows {
            if !o.is_finite() || (outer == Scale::Log && o <= 0.0) {
                return Err(format!("bad outer coordinate {o}"));
            }
            match merged.last_mut() {
                Some(last) if last.0 == o => last.1.extend(s),
                _ => merged.push((o, s)),
            }
        }
        let mut curves: Vec<Curve> = Vec::with_capacity(merged.len());
        let mut last_multi: Option<(f64, f64)> = None;
        for (o, samples) in &merged {
            let mut c = Curve::build(samples, inner, value, true).map_err(|e| format!("row {o}: {e}"))?;
            if c.x.len() >= 2 {
                last_multi = Some((*o, c.slope));
            } else if let Some((o_ref, s_ref)) = last_multi {
                c = c.with_slope(slope_for_single(*o, o_ref, s_ref));
            }
            if let Some(prev) = curves.last() {
                // Raise this row to at least the previous row, node by node.
                let y: Vec<f64> = c.x.iter().zip(&c.y).map(|(&x, &y)| y.max(prev.eval(x))).collect();
                let mut y = y;
                for i in 1..y.len() {
                    y[i] = y[i].max(y[i - 1]);
                }
                let slope = c.slope.max(if c.x.len() < 2 { prev.slope } else { 0.0 });
                let explicit = (c.x.len() < 2).then_some(slope);
                c = Curve::from_repaired(c.x.clone(), y, inner, value, explicit);
            }
            curves.push(c);
        }
        let outer_v: Vec<f64> = merged.iter().map(|r| r.0).collect();
        let last = outer_v.len() - 1;
        let anchor = if last == 0 {
            0
        } else {
            outer_v
                .iter()
                .position(|&v| v >= outer_v[last] / 2.0)
                .unwrap_or(last)
                .min(last - 1)
        };
        Ok(Table2d {
            outer_scale: outer,
            value_scale: value,
            t_outer: outer_v.iter().map(|&v| outer.fwd(v)).collect(),
            outer: outer_v,
            rows: curves,
            anchor,
        })
    }

    /// The rows' curves, in ascending order of their outer coordinate.
    pub fn rows(&self) -> &[Curve] {
        &self.rows
    }

    /// Interpolated value at outer coordinate `o`, inner coordinate `k`.
    #[inline]
    pub fn eval(&self, o: f64, k: f64) -> f64 {
        let n = self.outer.len();
        if n == 1 || o <= self.outer[0] {
            return self.rows[0].eval(k);
        }
        let last = n - 1;
        if o >= self.outer[last] {
            let y_last = self.rows[last].eval(k);
            let y_a = self.rows[self.anchor].eval(k);
            let slope = ((y_last - y_a) / (self.outer[last] - self.outer[self.anchor])).max(0.0);
            return y_last + slope * (o - self.outer[last]);
        }
        let hi = self.outer.partition_point(|&v| v <= o);
        let lo = hi - 1;
        let y_lo = self.rows[lo].eval(k);
        let y_hi = self.rows[hi].eval(k).max(y_lo);
        let t = (self.outer_scale.fwd(o) - self.t_outer[lo]) / (self.t_outer[hi] - self.t_outer[lo]);
        let vs = self.value_scale;
        vs.inv(vs.fwd(y_lo) + t * (vs.fwd(y_hi) - vs.fwd(y_lo)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn linear_curve_exact_at_nodes_and_linear_between() {
        let pts = [(0.0, 1.0), (10.0, 3.0), (20.0, 4.0), (40.0, 8.0)];
        let c = Curve::new(&pts, Scale::Linear, Scale::Linear).unwrap();
        for &(x, y) in &pts {
            assert_eq!(c.eval(x), y);
        }
        assert!(close(c.eval(5.0), 2.0, 1e-12));
        assert!(close(c.eval(15.0), 3.5, 1e-12));
        assert!(close(c.eval(30.0), 6.0, 1e-12));
        // Samples given out of order give the same curve.
        let mut rev = pts.to_vec();
        rev.reverse();
        assert_eq!(Curve::new(&rev, Scale::Linear, Scale::Linear).unwrap(), c);
    }

    #[test]
    fn log_log_curve_reproduces_power_laws() {
        // y = 3·x^0.5 at powers of two: log–log interpolation is exact anywhere inside.
        let pts: Vec<(f64, f64)> = (0..12)
            .map(|i| 2f64.powi(i))
            .map(|x| (x, 3.0 * x.sqrt()))
            .collect();
        let c = Curve::new(&pts, Scale::Log, Scale::Log).unwrap();
        for &(x, y) in &pts {
            assert!(close(c.eval(x), y, 1e-12));
        }
        for x in [1.5, 3.0, 100.0, 1000.0, 2047.0] {
            assert!(close(c.eval(x), 3.0 * f64::sqrt(x), 1e-12), "{x}");
        }
        // Between 1 and 2 it is linear in (ln x, ln y), not in (x, y).
        let lin = Curve::new(&pts, Scale::Linear, Scale::Linear).unwrap();
        assert!((lin.eval(1.5) - c.eval(1.5)).abs() > 1e-3);
    }

    #[test]
    fn duplicates_are_averaged() {
        let c = Curve::new(
            &[(1.0, 1.0), (2.0, 2.0), (2.0, 4.0), (3.0, 5.0)],
            Scale::Linear,
            Scale::Linear,
        )
        .unwrap();
        assert_eq!(c.xs(), &[1.0, 2.0, 3.0]);
        assert_eq!(c.eval(2.0), 3.0);
    }

    #[test]
    fn monotone_repair_removes_spikes_and_dips() {
        // An isolated spike at x=3 is clipped to its larger neighbour...
        let c = Curve::new(
            &[(1.0, 1.0), (2.0, 2.0), (3.0, 9.0), (4.0, 4.0), (5.0, 5.0)],
            Scale::Linear,
            Scale::Linear,
        )
        .unwrap();
        assert_eq!(c.ys(), &[1.0, 2.0, 4.0, 4.0, 5.0]);
        // ...and a dip is raised by the running maximum.
        let c = Curve::new(
            &[
                (1.0, 1.0),
                (2.0, 3.0),
                (3.0, 3.5),
                (4.0, 2.0),
                (5.0, 1.9),
                (6.0, 6.0),
            ],
            Scale::Linear,
            Scale::Linear,
        )
        .unwrap();
        for w in c.ys().windows(2) {
            assert!(w[1] >= w[0], "{:?}", c.ys());
        }
        assert_eq!(c.ys(), &[1.0, 3.0, 3.5, 3.5, 3.5, 6.0]);
        // A monotone table is left unchanged.
        let pts = [(1.0, 1.0), (2.0, 1.0), (3.0, 2.5), (4.0, 7.0)];
        let c = Curve::new(&pts, Scale::Log, Scale::Log).unwrap();
        assert_eq!(c.ys(), &[1.0, 1.0, 2.5, 7.0]);
        // The interpolant is non-decreasing everywhere.
        let mut prev = 0.0;
        for i in 0..400 {
            let v = c.eval(0.5 + i as f64 * 0.01);
            assert!(v >= prev);
            prev = v;
        }
    }

    #[test]
    fn extrapolation_clamps_below_and_follows_the_half_table_secant_above() {
        // Nodes at 1,2,4,8,16 with y = 1 + x, plus noise in the last segment.
        let pts = [(1.0, 2.0), (2.0, 3.0), (4.0, 5.0), (8.0, 9.0), (16.0, 17.0)];
        let c = Curve::new(&pts, Scale::Log, Scale::Log).unwrap();
        assert_eq!(c.eval(0.25), 2.0);
        assert_eq!(c.eval(0.0), 2.0);
        // Anchor = first node ≥ 16/2 = 8: slope (17 − 9)/(16 − 8) = 1.
        assert!(close(c.slope(), 1.0, 1e-12));
        assert!(close(c.eval(32.0), 33.0, 1e-12));
        assert!(close(c.eval(1000.0), 1001.0, 1e-12));
        // On a curved table the anchor matters: nodes 1, 10, 12, 16 of y = x²
        // anchor at 10 (the first ≥ 16/2), slope (256 − 100)/6 = 26 — not
        // the last segment's 28 nor the whole table's 17.
        let sq: Vec<(f64, f64)> = [1.0, 10.0, 12.0, 16.0]
            .iter()
            .map(|&x: &f64| (x, x * x))
            .collect();
        let c = Curve::new(&sq, Scale::Log, Scale::Log).unwrap();
        assert!(close(c.slope(), 26.0, 1e-12), "{}", c.slope());
        assert!(close(c.eval(20.0), 256.0 + 4.0 * 26.0, 1e-12));
        // A single node: constant everywhere.
        let one = Curve::new(&[(4.0, 2.0)], Scale::Log, Scale::Log).unwrap();
        assert_eq!((one.eval(1.0), one.eval(100.0)), (2.0, 2.0));
        assert_eq!(one.clone().with_slope(0.5).eval(6.0), 3.0);
    }

    #[test]
    fn bad_samples_are_errors() {
        assert!(Curve::new(&[], Scale::Linear, Scale::Linear).is_err());
        assert!(Curve::new(&[(0.0, 1.0)], Scale::Log, Scale::Log).is_err());
        assert!(Curve::new(&[(1.0, -1.0)], Scale::Linear, Scale::Linear).is_err());
        assert!(Curve::new(&[(1.0, f64::NAN)], Scale::Linear, Scale::Linear).is_err());
        assert!(Curve::new(&[(f64::INFINITY, 1.0)], Scale::Linear, Scale::Linear).is_err());
        // A measured 0 is a time (below the timer's resolution), also on a
        // log value axis, where it is floored only inside the curve; a size
        // of 0 is fine on a linear axis.
        let c = Curve::new(&[(1.0, 0.0), (2.0, 1.0)], Scale::Log, Scale::Log).unwrap();
        assert_eq!(c.eval(1.0), 0.0);
        assert!(Curve::new(&[(0.0, 1.0), (1.0, 2.0)], Scale::Linear, Scale::Log).is_ok());
    }

    #[test]
    fn table2d_is_bilinear_on_a_rectangular_grid() {
        // f(b, k) = 2 + 0.5·b + 0.1·k + 0.01·b·k is bilinear: exact everywhere inside.
        let f = |b: f64, k: f64| 2.0 + 0.5 * b + 0.1 * k + 0.01 * b * k;
        let rows: Vec<(f64, Vec<(f64, f64)>)> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&b| (b, [0.0, 100.0, 300.0].iter().map(|&k| (k, f(b, k))).collect()))
            .collect();
        let t = Table2d::new(rows, Scale::Linear, Scale::Linear, Scale::Linear, |_, _, s| s).unwrap();
        for (b, k) in [
            (1.0, 0.0),
            (2.0, 100.0),
            (3.0, 50.0),
            (5.5, 250.0),
            (8.0, 300.0),
            (1.5, 7.0),
        ] {
            assert!(
                close(t.eval(b, k), f(b, k), 1e-12),
                "{b} {k}: {} vs {}",
                t.eval(b, k),
                f(b, k)
            );
        }
        // Above the last row: secant from the anchor row (b = 4) to the last (b = 8).
        assert!(close(t.eval(16.0, 100.0), f(16.0, 100.0), 1e-12));
        // Below the first row: the first row.
        assert!(close(t.eval(0.5, 100.0), f(1.0, 100.0), 1e-12));
        // On a curved outer axis the anchor row matters: rows at 1, 10, 12,
        // 16 of o² anchor at 10 (the first ≥ 16/2), so at 20 the table gives
        // 256 + 4 · (256 − 100)/6 = 360 — not 368 from the last two rows,
        // nor 324 from the first.
        let rows: Vec<(f64, Vec<(f64, f64)>)> = [1.0, 10.0, 12.0, 16.0]
            .iter()
            .map(|&o: &f64| (o, vec![(0.0, o * o), (1.0, o * o)]))
            .collect();
        let t = Table2d::new(rows, Scale::Linear, Scale::Linear, Scale::Linear, |_, _, s| s).unwrap();
        assert!(close(t.eval(20.0, 0.5), 360.0, 1e-12), "{}", t.eval(20.0, 0.5));
        // One row: that row everywhere along the outer axis.
        let one = Table2d::new(
            vec![(4.0, vec![(0.0, 1.0), (2.0, 3.0)])],
            Scale::Linear,
            Scale::Linear,
            Scale::Linear,
            |_, _, s| s,
        )
        .unwrap();
        assert_eq!((one.eval(1.0, 1.0), one.eval(9.0, 1.0)), (2.0, 2.0));
    }

    #[test]
    fn table2d_log_outer_axis_and_triangular_rows() {
        // Rows at chunk c = 1, 2, 4 with value c² + c·k/1000; log outer and value axes
        // reproduce the c² dependence at k = 0 exactly; rows have different inner nodes.
        let f = |c: f64, k: f64| c * c + c * k / 1000.0;
        let rows = vec![
            (
                1.0,
                vec![
                    (0.0, f(1.0, 0.0)),
                    (1000.0, f(1.0, 1000.0)),
                    (2000.0, f(1.0, 2000.0)),
                ],
            ),
            (2.0, vec![(0.0, f(2.0, 0.0)), (2000.0, f(2.0, 2000.0))]),
            (4.0, vec![(0.0, f(4.0, 0.0))]),
        ];
        let t = Table2d::new(rows, Scale::Log, Scale::Linear, Scale::Log, |o, o_ref, s| {
            s * o / o_ref
        })
        .unwrap();
        assert!(close(t.eval(2.0f64.sqrt(), 0.0), f(2.0f64.sqrt(), 0.0), 1e-12));
        assert!(close(t.eval(3.0, 0.0), 9.0, 1e-12));
        // The single-node row borrowed the slope of row c=2 (∂f/∂k = 2/1000), scaled by 4/2.
        assert!(close(t.rows()[2].slope(), 4.0 / 1000.0, 1e-12));
        assert!(close(t.eval(4.0, 500.0), f(4.0, 500.0), 1e-12));
    }

    #[test]
    fn table2d_repairs_monotonicity_across_rows() {
        let rows = vec![
            (1.0, vec![(0.0, 5.0), (10.0, 10.0)]),
            (2.0, vec![(0.0, 4.0), (10.0, 12.0)]),
        ];
        let t = Table2d::new(rows, Scale::Linear, Scale::Linear, Scale::Linear, |_, _, s| s).unwrap();
        assert_eq!(t.rows()[1].ys(), &[5.0, 12.0]);
        let mut prev = 0.0;
        for i in 0..=20 {
            let v = t.eval(1.0 + i as f64 / 20.0, 0.0);
            assert!(v >= prev && v >= 5.0);
            prev = v;
        }
    }

    /// The smallest table with an interior sample (three) is despiked too;
    /// two samples have none.
    #[test]
    fn three_samples_are_despiked_two_are_not() {
        let three = Curve::new(
            &[(1.0, 1.0), (2.0, 10.0), (3.0, 1.0)],
            Scale::Linear,
            Scale::Linear,
        )
        .unwrap();
        assert_eq!(three.ys(), &[1.0, 1.0, 1.0]);
        let two = Curve::new(&[(1.0, 1.0), (2.0, 10.0)], Scale::Linear, Scale::Linear).unwrap();
        assert_eq!(two.ys(), &[1.0, 10.0]);
        // The threshold is a factor: 2× a neighbour of 1 is a spike, exactly
        // 1.25× is not.
        let ys = |mid: f64| {
            Curve::new(
                &[(1.0, 1.0), (2.0, mid), (3.0, 1.0)],
                Scale::Linear,
                Scale::Linear,
            )
            .unwrap()
        };
        assert_eq!(ys(2.0).ys(), &[1.0, 1.0, 1.0]);
        assert_eq!(ys(1.25).ys(), &[1.0, 1.25, 1.25]);
    }
}
