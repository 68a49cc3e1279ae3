//! Simulated time. The clock is an integer count of nanoseconds (`Nanos`):
//! exact, totally ordered and identical on every machine, so event order
//! never depends on floating-point rounding.

/// Simulated time or duration in nanoseconds.
pub type Nanos = u64;

pub const NANOS_PER_SEC: f64 = 1e9;

/// Seconds (f64) to nanoseconds, rounded to nearest; negative values clamp to 0.
#[inline]
pub fn secs_to_nanos(s: f64) -> Nanos {
    if s <= 0.0 {
        0
    } else {
        // floor(x + 0.5) = round(x) for x ≥ 0, without the libm call on the hot path.
        (s * NANOS_PER_SEC + 0.5) as Nanos
    }
}

/// Nanoseconds to seconds.
#[inline]
pub fn nanos_to_secs(n: Nanos) -> f64 {
    n as f64 / NANOS_PER_SEC
}

/// The closest name in `candidates` to `name` (Jaro-Winkler ≥ 0.7), for
/// "did you mean" hints in error messages.
pub(crate) fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// " (did you mean `x`?)" or "" — appended to error messages.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}
