//! The human-readable summary table printed at the end of a run.

use super::{LatencyStats, Report, Summary};
use std::fmt::Write;

const WIDTH: usize = 86;
/// Replicas listed one by one; above this, only min / max are shown.
const LIST_REPLICAS: usize = 8;

fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{label:<24}{value}");
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn latency_row(out: &mut String, label: &str, s: &LatencyStats) {
    if s.count == 0 {
        let na = "n/a";
        let _ = writeln!(
            out,
            "{label:<12}{na:>11}{na:>11}{na:>11}{na:>11}{na:>11}{na:>11}{na:>11}"
        );
        return;
    }
    let _ = writeln!(
        out,
        "{label:<12}{:>11.2}{:>11.2}{:>11.2}{:>11.2}{:>11.2}{:>11.2}{:>11.2}",
        s.mean, s.median, s.p90, s.p95, s.p99, s.max, s.std
    );
}

fn slo_line(s: &Summary) -> String {
    if s.slo_checks.is_empty() {
        return "no thresholds set".into();
    }
    s.slo_checks
        .iter()
        .map(|c| {
            let value = match c.value_ms {
                Some(v) => format!("{v:.2} ms"),
                None if c.has_no_value(s.rejected) => "n/a (no values)".into(),
                None => "inf (rejections)".into(),
            };
            format!(
                "{} <= {} ms: p{} {} {}",
                c.metric.to_uppercase(),
                c.threshold_ms,
                s.slo_percentile,
                value,
                if c.met { "ok" } else { "MISSED" }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Report {
    /// The summary as a plain-text table for the terminal (ASCII only,
    /// deterministic).
    pub fn table(&self) -> String {
        let s = &self.summary;
        let r = &s.run;
        let mut out = String::new();
        let title = format!(" fleetsim: {} ", r.scenario);
        let _ = writeln!(out, "{title:=^WIDTH$}");
        line(&mut out, "Model / device", format!("{} on {}", r.model, r.device));
        line(
            &mut out,
            "Cluster",
            format!(
                "{}{}; scheduler {}, router {}, seed {}",
                r.cluster,
                if r.virtual_engines > 1 {
                    format!(
                        " ({} virtual engines each, listed as replicas below)",
                        r.virtual_engines
                    )
                } else {
                    String::new()
                },
                r.scheduler,
                r.router,
                r.seed
            ),
        );
        line(&mut out, "Duration (s)", format!("{:.3}", s.duration_s));
        line(&mut out, "Requests", s.requests_line());
        let m = &s.memory;
        if m.prefix_hit_tokens > 0 || m.preemptions_swap > 0 {
            line(&mut out, "KV memory", m.line());
        }
        if let Some(k) = &s.kv_transfer {
            line(&mut out, "KV transfers", k.line());
        }
        line(
            &mut out,
            "Tokens",
            format!("{} input, {} output", s.total_input_tokens, s.total_output_tokens),
        );
        line(
            &mut out,
            "Request throughput",
            format!("{:.3} req/s", s.request_throughput),
        );
        line(
            &mut out,
            "Token throughput",
            format!(
                "output {:.1} tok/s, input {:.1} tok/s, total {:.1} tok/s",
                s.output_throughput, s.input_throughput, s.total_token_throughput
            ),
        );
        let _ = writeln!(out, "{:-<WIDTH$}", "");
        let _ = writeln!(
            out,
            "{:<12}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
            "Latency (ms)", "mean", "median", "p90", "p95", "p99", "max", "std"
        );
        latency_row(&mut out, "TTFT", &s.ttft);
        latency_row(&mut out, "TPOT", &s.tpot);
        latency_row(&mut out, "ITL", &s.itl);
        latency_row(&mut out, "E2EL", &s.e2el);
        latency_row(&mut out, "Queue delay", &s.queue_delay);
        let _ = writeln!(out, "{:-<WIDTH$}", "");
        line(&mut out, "SLO", slo_line(s));
        line(
            &mut out,
            "SLO attainment",
            format!(
                "{}, goodput {:.3} req/s, SLO met: {}",
                pct(s.slo_attainment),
                s.request_goodput,
                if s.slo_met { "yes" } else { "no" }
            ),
        );
        line(
            &mut out,
            "Utilisation",
            format!(
                "MFU {}, MBU {}, busy {}, {} iterations",
                pct(s.mfu),
                pct(s.mbu),
                pct(s.busy_fraction),
                s.iterations
            ),
        );
        line(
            &mut out,
            "Mean batch",
            format!(
                "{:.2} seqs, {:.1} tokens (time-weighted)",
                s.mean_batch_seqs, s.mean_batch_tokens
            ),
        );
        line(
            &mut out,
            "KV cache utilisation",
            format!(
                "mean {}, max {}",
                s.mean_kv_utilization.map_or("n/a".into(), pct),
                s.max_kv_utilization.map_or("n/a".into(), pct)
            ),
        );
        let reps = &s.per_replica;
        if reps.len() <= LIST_REPLICAS {
            for p in reps {
                line(
                    &mut out,
                    &format!("Replica {}", p.replica),
                    format!(
                        "{} completed, {} output tokens, busy {}",
                        p.completed,
                        p.output_tokens,
                        pct(p.busy_fraction)
                    ),
                );
            }
        } else {
            let (mut cmin, mut cmax) = (u64::MAX, 0);
            let (mut bmin, mut bmax) = (f64::INFINITY, 0.0f64);
            for p in reps {
                cmin = cmin.min(p.completed);
                cmax = cmax.max(p.completed);
                bmin = bmin.min(p.busy_fraction);
                bmax = bmax.max(p.busy_fraction);
            }
            line(
                &mut out,
                "Replica balance",
                format!(
                    "completed {cmin}..{cmax} per replica, busy {}..{}",
                    pct(bmin),
                    pct(bmax)
                ),
            );
        }
        for w in &s.warnings {
            line(&mut out, "Warning", w);
        }
        let _ = writeln!(out, "{:=<WIDTH$}", "");
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::test_util::small_report;

    #[test]
    fn table_mentions_key_metrics() {
        let t = small_report().table();
        for needle in [
            "fleetsim: test",
            "Llama-3-8B",
            "H100-SXM",
            "4 completed",
            "1 rejected",
            "req/s",
            "tok/s",
            "TTFT",
            "TPOT",
            "ITL",
            "E2EL",
            "Queue delay",
            "p99",
            "SLO attainment",
            "goodput",
            "MFU",
            "MBU",
            "busy",
            "KV cache",
            "Replica 1",
        ] {
            assert!(t.contains(needle), "table lacks {needle:?}:\n{t}");
        }
        assert!(t.is_ascii());
        assert_eq!(t, small_report().table());
    }

    /// The table states the hand example's figures (worked in
    /// `summary::tests::hand_example_throughput_latency_slo`): TTFT 100, 200,
    /// 300 and 900 ms (mean 375, p95 300 + 0.85 × 600 = 810, p99 882, std
    /// √96,875 = 311.25); both SLO percentiles land on the rejected request;
    /// 3 of 5 requests meet the SLO; MFU 4·10^15 / (2·10^15 × 10 s), MBU
    /// 4·10^12 / (6.7·10^12 × 10 s).
    #[test]
    fn the_table_states_the_hand_examples_figures() {
        let t = small_report().table();
        for row in [
            "TTFT             375.00     250.00     720.00     810.00     882.00     900.00     311.25",
            "SLO                     TTFT <= 500 ms: p90 inf (rejections) MISSED; \
             TPOT <= 50 ms: p90 inf (rejections) MISSED",
            "SLO attainment          60.00%, goodput 0.300 req/s, SLO met: no",
            "Utilisation             MFU 20.00%, MBU 5.97%, busy 10.00%, 4 iterations",
            "KV cache utilisation    mean 30.00%, max 60.00%",
            "Replica 0               2 completed, 62 output tokens, busy 10.00%",
        ] {
            assert!(t.lines().any(|l| l == row), "no row {row:?} in:\n{t}");
        }
        assert!(
            !t.contains("KV memory"),
            "no prefix hits or swaps: no KV memory row"
        );
    }

    /// The KV memory row appears when the prefix cache hit or a request was
    /// swapped, either one alone.
    #[test]
    fn the_kv_memory_row_shows_with_prefix_hits_or_swaps() {
        for (hits, swaps) in [(10, 0), (0, 1), (10, 1)] {
            let mut r = small_report();
            r.summary.memory.prefix_hit_tokens = hits;
            r.summary.memory.preemptions_swap = swaps;
            let row = format!("KV memory               {}", r.summary.memory.line());
            assert!(r.table().lines().any(|l| l == row), "{hits} hits, {swaps} swaps");
        }
    }

    /// A run without completions shows n/a rows and no thresholds.
    #[test]
    fn an_empty_run_shows_na_latencies_and_no_thresholds() {
        use crate::metrics::{Metrics, MetricsConfig, test_util::info};
        use crate::scenario::config::SloConfig;
        let none = SloConfig {
            ttft: 0.0,
            tpot: 0.0,
            e2e: 0.0,
            ..SloConfig::default()
        };
        let m = Metrics::new(1, &MetricsConfig::default(), &none);
        let t = m.finish(info(), 1_000_000_000).table();
        let na = "TTFT                n/a        n/a        n/a        n/a        n/a        n/a        n/a";
        assert!(t.lines().any(|l| l == na), "{t}");
        assert!(
            t.lines()
                .any(|l| l == "SLO                     no thresholds set"),
            "{t}"
        );
    }

    /// A threshold with no value to judge says so, neither "0.00 ms ok"
    /// nor "inf": nothing completed and nothing was rejected.
    #[test]
    fn an_empty_run_shows_its_threshold_unjudged_and_missed() {
        use crate::metrics::{Metrics, MetricsConfig, test_util::info};
        use crate::scenario::config::SloConfig;
        let ttft = SloConfig {
            ttft: 0.5,
            tpot: 0.0,
            e2e: 0.0,
            percentile: 90.0,
        };
        let m = Metrics::new(1, &MetricsConfig::default(), &ttft);
        let t = m.finish(info(), 1_000_000_000).table();
        let row = "SLO                     TTFT <= 500 ms: p90 n/a (no values) MISSED";
        assert!(t.lines().any(|l| l == row), "{t}");
    }
}
