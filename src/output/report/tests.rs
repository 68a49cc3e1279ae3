//! The run report's pieces checked on the hand example (`small_report`).

use super::*;
use crate::metrics::test_util::small_report;

#[test]
fn run_report_small_is_self_contained_and_deterministic() {
    let r = small_report();
    let sc = Scenario::default();
    let html = run_report(&r, &sc);
    assert_eq!(html, run_report(&r, &sc));
    assert!(!html.contains("http://") && !html.contains("https://"));
    for id in [
        "ttft-cdf",
        "tpot-cdf",
        "e2el-cdf",
        "throughput",
        "queue",
        "kv-util",
        "batch",
        "replica-load",
    ] {
        assert!(
            html.contains(&format!("data-chart=\"{id}\"")),
            "missing chart {id}"
        );
    }
    assert!(!html.contains("NaN"));
}

#[test]
fn slo_checks_read_as_value_threshold_and_verdict() {
    use crate::metrics::summary::SloCheck;
    let mut s = small_report().summary;
    s.slo_percentile = 90.0;
    s.rejected = 0;
    let check = |metric, value_ms, samples, met| SloCheck {
        metric,
        threshold_ms: 500.0,
        value_ms,
        samples,
        met,
    };
    s.slo_checks = vec![
        check("ttft", Some(123.4), 3, true),
        check("tpot", None, 0, true),
        check("e2el", None, 2, false),
    ];
    assert_eq!(
        slo_checks_text(&s),
        "ttft p90 123.40 ms vs 500.0 ms met; tpot p90 n/a vs 500.0 ms met; \
         e2el p90 ∞ ms vs 500.0 ms missed"
    );
    // With a rejection, no value is +∞, not "no value".
    s.rejected = 1;
    assert!(slo_checks_text(&s).contains("tpot p90 ∞ ms vs 500.0 ms met"));
    s.slo_checks.clear();
    assert_eq!(slo_checks_text(&s), "");
}

#[test]
fn bins_are_whole_sample_intervals() {
    assert_eq!(bin_width(10_000_000_000, 1_000_000_000), 1_000_000_000);
    assert_eq!(bin_width(1_000_000_000_000, 1_000_000_000), 4_000_000_000);
    assert_eq!(bin_width(0, 1), 1);
}
