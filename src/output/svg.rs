//! Small hand-written SVG charts for the HTML report: an XY chart (lines,
//! steps, markers — used for CDFs, time series and the Pareto plot) and a
//! grouped bar chart, each with axes, "nice" ticks, axis labels with units,
//! a title and a legend.
//!
//! The output is an inline `<svg class="chart" data-chart="ID">` element
//! (HTML5 needs no `xmlns`), styled by classes the report's stylesheet
//! defines and by explicit colours, so it renders without scripts. Numbers
//! are formatted with fixed decimals, so the same data gives the same bytes.

use std::fmt::Write as _;

/// Chart size in SVG user units (the element scales to its container).
const W: f64 = 640.0;
const H: f64 = 360.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 52.0;

/// Series colours (colour-blind-safe Okabe–Ito order, then greys).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999",
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Straight segments between points.
    Line,
    /// Markers only.
    Markers,
    /// Segments and markers.
    LineMarkers,
}

/// One named series of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    /// Colour; `None` picks from [`PALETTE`] by position.
    pub color: Option<&'static str>,
}

impl Series {
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            style: Style::Line,
            color: None,
        }
    }
}

/// An XY chart.
#[derive(Debug, Clone)]
pub struct XyChart {
    /// The `data-chart` attribute (stable identifier, e.g. "ttft-cdf").
    pub id: String,
    pub title: String,
    /// Axis labels, with units, e.g. "TTFT (ms)".
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Start the y axis at 0 even if the data do not reach it.
    pub y_from_zero: bool,
    /// Start the x axis at 0 even if the data do not reach it.
    pub x_from_zero: bool,
    /// Fixed y range (e.g. 0..1 for a CDF); overrides the data's range.
    pub y_range: Option<(f64, f64)>,
}

/// A grouped bar chart: one group per category, one bar per series.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub categories: Vec<String>,
    /// (name, one value per category).
    pub series: Vec<(String, Vec<f64>)>,
}

/// Escapes text for XML/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A "nice" axis: range widened to multiples of a 1/2/2.5/5 × 10^k step,
/// about `target` intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    pub values: Vec<f64>,
}

/// Nice ticks covering `[lo, hi]`.
pub fn ticks(lo: f64, hi: f64, target: usize) -> Ticks {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    if hi - lo < 1e-12 * hi.abs().max(1e-300) || hi == lo {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        let non_negative = lo >= 0.0;
        lo -= pad;
        hi += pad;
        if non_negative && lo < 0.0 {
            lo = 0.0;
        }
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let a = (lo / step + 1e-9).floor() * step;
    let b = (hi / step - 1e-9).ceil() * step;
    let n = ((b - a) / step).round() as usize;
    let values = (0..=n).map(|i| clean(a + i as f64 * step)).collect();
    Ticks {
        lo: clean(a),
        hi: clean(b),
        step,
        values,
    }
}

/// Rounds away binary noise (0.30000000000000004 → 0.3).
fn clean(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let p = 10f64.powi(12 - x.abs().log10().floor() as i32);
    if p.is_finite() && p > 0.0 {
        (x * p).round() / p
    } else {
        x
    }
}

/// A tick label: enough decimals for `step`, thousands as k / M.
pub fn tick_label(v: f64, step: f64) -> String {
    let (v, step, suffix) = if step >= 1e6 {
        (v / 1e6, step / 1e6, "M")
    } else if step >= 1e3 {
        (v / 1e3, step / 1e3, "k")
    } else {
        (v, step, "")
    };
    let mut decimals = 0usize;
    let mut s = step;
    while decimals < 9 && (s - s.round()).abs() > 1e-9 * s.abs().max(1.0) {
        s *= 10.0;
        decimals += 1;
    }
    if v.abs() < step * 1e-9 {
        return "0".into();
    }
    format!("{v:.decimals$}{suffix}")
}

fn color(i: usize, c: Option<&'static str>) -> &'static str {
    c.unwrap_or(PALETTE[i % PALETTE.len()])
}

/// Opening tag, title and frame shared by both chart kinds.
fn open(out: &mut String, id: &str, title: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" data-chart=\"{}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">\
         <title>{}</title>\
         <rect class=\"bg\" x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\
         <text class=\"title\" x=\"{:.1}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"600\">{}</text>\
         <text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\
         <text class=\"axis-label\" transform=\"translate(16,{:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
        esc(id),
        esc(title),
        esc(title),
        W / 2.0,
        esc(title),
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 10.0,
        esc(x_label),
        TOP + (H - TOP - BOTTOM) / 2.0,
        esc(y_label),
    );
}

/// Legend entries in a row under the title.
fn legend(out: &mut String, items: &[(String, &'static str, bool)]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(out, "<g class=\"legend\" font-size=\"11\">");
    let mut x = LEFT;
    let mut y = 38.0;
    for (name, col, marker) in items {
        let width = 22.0 + 6.5 * name.chars().count() as f64 + 14.0;
        if x + width > W - RIGHT && x > LEFT {
            x = LEFT;
            y += 14.0;
        }
        if *marker {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{col}\"/>",
                x + 8.0,
                y - 4.0
            );
        } else {
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"16\" height=\"4\" fill=\"{col}\"/>",
                x,
                y - 6.0
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 20.0,
            y,
            esc(name)
        );
        x += width;
    }
    out.push_str("</g>");
}

/// Axes, grid lines and tick labels for the plot area.
fn axes(out: &mut String, xt: Option<&Ticks>, yt: &Ticks, sx: &dyn Fn(f64) -> f64, sy: &dyn Fn(f64) -> f64) {
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    out.push_str("<g class=\"grid\" stroke=\"#e3e3e3\" stroke-width=\"1\">");
    for &v in &yt.values {
        let _ = write!(
            out,
            "<line x1=\"{x0:.1}\" x2=\"{x1:.1}\" y1=\"{0:.1}\" y2=\"{0:.1}\"/>",
            sy(v)
        );
    }
    if let Some(xt) = xt {
        for &v in &xt.values {
            let _ = write!(
                out,
                "<line y1=\"{y0:.1}\" y2=\"{y1:.1}\" x1=\"{0:.1}\" x2=\"{0:.1}\"/>",
                sx(v)
            );
        }
    }
    out.push_str("</g><g class=\"axis\" font-size=\"11\" fill=\"#333333\">");
    let _ = write!(
        out,
        "<line x1=\"{x0:.1}\" x2=\"{x1:.1}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#333333\"/>\
         <line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{y0:.1}\" y2=\"{y1:.1}\" stroke=\"#333333\"/>"
    );
    for &v in &yt.values {
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 - 6.0,
            sy(v) + 4.0,
            tick_label(v, yt.step)
        );
    }
    if let Some(xt) = xt {
        for &v in &xt.values {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                sx(v),
                y0 + 16.0,
                tick_label(v, xt.step)
            );
        }
    }
    out.push_str("</g>");
}

fn bounds(it: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    it.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((a, b)) => Some((a.min(v), b.max(v))),
    })
}

/// Renders an XY chart. Non-finite points are skipped; a chart with no data
/// says so in its plot area.
pub fn xy_chart(c: &XyChart) -> String {
    let mut out = String::new();
    open(&mut out, &c.id, &c.title, &c.x_label, &c.y_label);
    let pts = || c.series.iter().flat_map(|s| s.points.iter());
    let (mut xlo, mut xhi) = bounds(pts().map(|p| p.0)).unwrap_or((0.0, 1.0));
    let (mut ylo, mut yhi) = bounds(pts().map(|p| p.1)).unwrap_or((0.0, 1.0));
    if c.x_from_zero {
        xlo = xlo.min(0.0);
        xhi = xhi.max(0.0);
    }
    if c.y_from_zero {
        ylo = ylo.min(0.0);
        yhi = yhi.max(0.0);
    }
    if let Some((a, b)) = c.y_range {
        (ylo, yhi) = (a, b);
    }
    let xt = ticks(xlo, xhi, 6);
    let yt = ticks(ylo, yhi, 5);
    let sx = |x: f64| LEFT + (x - xt.lo) / (xt.hi - xt.lo) * (W - LEFT - RIGHT);
    let sy = |y: f64| H - BOTTOM - (y - yt.lo) / (yt.hi - yt.lo) * (H - TOP - BOTTOM);
    axes(&mut out, Some(&xt), &yt, &sx, &sy);
    let items: Vec<(String, &'static str, bool)> = c
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), color(i, s.color), s.style == Style::Markers))
        .collect();
    if c.series.len() > 1 || c.series.iter().any(|s| !s.name.is_empty()) {
        legend(&mut out, &items);
    }
    if pts().next().is_none() {
        let _ = write!(
            out,
            "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\" fill=\"#777777\">no data</text>",
            W / 2.0,
            H / 2.0
        );
    }
    for (i, s) in c.series.iter().enumerate() {
        let col = color(i, s.color);
        let finite: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let _ = write!(out, "<g class=\"series\" data-series=\"{}\">", esc(&s.name));
        if s.style != Style::Markers && finite.len() > 1 {
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{col}\" stroke-width=\"1.8\" points=\""
            );
            for (k, &(x, y)) in finite.iter().enumerate() {
                if k > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{:.1},{:.1}", sx(x), sy(y));
            }
            out.push_str("\"/>");
        }
        if s.style != Style::Line || finite.len() == 1 {
            for &(x, y) in &finite {
                let _ = write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{col}\"/>",
                    sx(x),
                    sy(y)
                );
            }
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

/// Renders a grouped bar chart (the y axis starts at 0).
pub fn bar_chart(c: &BarChart) -> String {
    let mut out = String::new();
    open(&mut out, &c.id, &c.title, &c.x_label, &c.y_label);
    let (lo, hi) = bounds(c.series.iter().flat_map(|s| s.1.iter().copied())).unwrap_or((0.0, 1.0));
    let yt = ticks(lo.min(0.0), hi.max(0.0), 5);
    let sy = |y: f64| H - BOTTOM - (y - yt.lo) / (yt.hi - yt.lo) * (H - TOP - BOTTOM);
    let none = |_: f64| 0.0;
    axes(&mut out, None, &yt, &none, &sy);
    let items: Vec<(String, &'static str, bool)> = c
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.0.clone(), color(i, None), false))
        .collect();
    legend(&mut out, &items);
    let n = c.categories.len().max(1) as f64;
    let group = (W - LEFT - RIGHT) / n;
    let k = c.series.len().max(1) as f64;
    let bar = (group * 0.8 / k).max(0.5);
    // Label every category when they fit, else about 20 of them.
    let every = (c.categories.len() as f64 / 20.0).ceil().max(1.0) as usize;
    for (j, cat) in c.categories.iter().enumerate() {
        let gx = LEFT + j as f64 * group;
        if j % every == 0 {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333333\">{}</text>",
                gx + group / 2.0,
                H - BOTTOM + 16.0,
                esc(cat)
            );
        }
    }
    for (i, (name, vals)) in c.series.iter().enumerate() {
        let col = color(i, None);
        let _ = write!(
            out,
            "<g class=\"series\" data-series=\"{}\" fill=\"{col}\">",
            esc(name)
        );
        for (j, &v) in vals.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let x = LEFT + j as f64 * group + group * 0.1 + i as f64 * bar;
            let (ya, yb) = (sy(v.max(0.0)), sy(v.min(0.0)));
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{ya:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"><title>{}: {}</title></rect>",
                (yb - ya).max(0.0),
                esc(&c.categories.get(j).cloned().unwrap_or_default()),
                tick_label(v, yt.step / 100.0)
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks() {
        let t = ticks(0.0, 97.0, 5);
        assert_eq!((t.lo, t.hi, t.step), (0.0, 100.0, 20.0));
        assert_eq!(t.values.len(), 6);
        let t = ticks(0.0, 1.0, 5);
        assert_eq!(t.values, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        let t = ticks(3.0, 3.0, 5);
        assert!(t.lo <= 3.0 && t.hi >= 3.0 && t.hi > t.lo);
        let t = ticks(0.0, 0.0, 5);
        assert_eq!((t.lo, t.hi), (0.0, 1.0));
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(25000.0, 5000.0), "25k");
        assert_eq!(tick_label(2.5, 2.5), "2.5");
        assert_eq!(tick_label(40.0, 20.0), "40");
    }

    #[test]
    fn charts_are_deterministic_svg() {
        let c = XyChart {
            id: "x".into(),
            title: "T <1>".into(),
            x_label: "time (s)".into(),
            y_label: "n".into(),
            series: vec![Series::line("a&b", vec![(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN)])],
            y_from_zero: true,
            x_from_zero: false,
            y_range: None,
        };
        let s = xy_chart(&c);
        assert!(s.starts_with("<svg class=\"chart\" data-chart=\"x\""));
        assert!(s.contains("T &lt;1&gt;") && s.contains("a&amp;b"));
        assert!(!s.contains("NaN") && !s.contains("inf"));
        assert_eq!(s, xy_chart(&c));
        let b = bar_chart(&BarChart {
            id: "b".into(),
            title: "B".into(),
            x_label: "replica".into(),
            y_label: "%".into(),
            categories: vec!["0".into(), "1".into()],
            series: vec![("busy".into(), vec![50.0, 100.0])],
        });
        assert_eq!(b.matches("<rect x=").count(), 3); // two bars + the legend swatch
        let empty = xy_chart(&XyChart { series: vec![], ..c });
        assert!(empty.contains("no data"));
    }
}
