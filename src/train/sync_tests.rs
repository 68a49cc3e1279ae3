//! Data-parallel synchronisation against hand-computed values.
//!
//! Unless a test says otherwise: a 100 GB/s link without latency and
//! `dp = 4`, so an all-reduce of `S` bytes sends `2·3/4·S = 1.5·S` bytes
//! and takes `1.5·S / 100e9` s; a reduce-scatter or all-gather half that.
//! 50e6 values in bf16 are `S = 100 MB`: four 25 MB buckets, each
//! all-reduced in `1.5·25e6 / 100e9 = 375 µs`.

use super::sync::{SyncConfig, SyncInputs, SyncMethod, SyncOutcome, dp_sync};
use crate::scenario::kinds::Kind;
use crate::timing::collectives::Link;

const FAST: Link = Link {
    bandwidth: 100e9,
    latency: 0.0,
};

/// 50e6 values (100 MB in bf16, 200 MB in fp32) over `dp = 4` on `link`.
fn inputs(link: Link, windows: &[(f64, f64)], compute_end: f64) -> SyncInputs<'_> {
    SyncInputs {
        values: 50e6,
        dp: 4,
        link,
        zero_stage: 0,
        backward_windows: windows,
        compute_end,
        step_compute_s: compute_end,
    }
}

fn method(m: SyncMethod) -> SyncConfig {
    SyncConfig::for_method(m)
}

fn run(cfg: &SyncConfig, inp: &SyncInputs) -> SyncOutcome {
    dp_sync(cfg, inp).unwrap()
}

#[track_caller]
fn close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12 + 1e-12 * want.abs(),
        "got {got}, want {want}"
    );
}

#[test]
fn ring_bytes_are_two_s_times_n_minus_1_over_n() {
    // S = 100 MB (bf16). dp 2: 2·1/2·S = 100 MB; dp 4: 2·3/4·S = 150 MB;
    // dp 8: 2·7/8·S = 175 MB.
    for (dp, want) in [(2, 100e6), (4, 150e6), (8, 175e6)] {
        let w = [(0.0, 0.01)];
        let inp = SyncInputs {
            dp,
            ..inputs(FAST, &w, 0.01)
        };
        let out = run(&SyncConfig::default(), &inp);
        close(out.bytes_per_step, want);
        close(out.peak_bytes, want);
        close(out.syncs_per_step, 1.0);
    }
}

#[test]
fn ddp_buckets_under_a_long_backward_leave_only_the_last_exposed() {
    // One 10 ms backward window: buckets ready at 2.5, 5, 7.5, 10 ms; each
    // 375 µs all-reduce ends long before the next bucket is full, so only
    // the last one, starting at 10 ms, sticks out: 375 µs.
    let w = [(0.0, 0.010)];
    let out = run(&SyncConfig::default(), &inputs(FAST, &w, 0.010));
    close(out.exposed_s, 375e-6);
    // Four buckets of 375 µs.
    close(out.comm_s, 1.5e-3);
}

#[test]
fn a_bucket_is_hidden_exactly_when_the_backward_after_it_outlasts_its_all_reduce() {
    // 50 MB (25e6 bf16 values): two 25 MB buckets of 375 µs each, one
    // backward window [0, T]. Bucket 0 is full at T/2 and leaves T/2 of
    // backward after it; bucket 1 is full at T and always sticks out by
    // its 375 µs. Bucket 0 adds max(0, 375 µs − T/2) on top.
    for (t, want) in [
        // T/2 = 500 µs > 375 µs: hidden, only bucket 1's 375 µs.
        (1.0e-3, 375e-6),
        // T/2 = 375 µs: just hidden.
        (0.75e-3, 375e-6),
        // T/2 = 250 µs: bucket 0 ends at 250 + 375 = 625 µs, bucket 1 runs
        // 625..1000 µs, 500 µs past T = 500 µs: exposed by 125 µs more.
        (0.5e-3, 500e-6),
        // T/2 = 100 µs: bucket 0 ends at 475 µs, bucket 1 at 850 µs; 650 µs
        // past T = 200 µs (275 µs more).
        (0.2e-3, 650e-6),
    ] {
        let w = [(0.0, t)];
        let inp = SyncInputs {
            values: 25e6,
            ..inputs(FAST, &w, t)
        };
        close(run(&SyncConfig::default(), &inp).exposed_s, want);
    }
}

#[test]
fn ddp_buckets_queue_on_one_stream_when_the_link_is_slow() {
    // 10 GB/s: each 25 MB bucket takes 1.5·25e6/10e9 = 3.75 ms, longer than
    // the 2.5 ms between buckets. Bucket 0: 2.5..6.25; 1: 6.25..10;
    // 2: 10..13.75; 3: 13.75..17.5 ms. Exposed 17.5 − 10 = 7.5 ms.
    let slow = Link {
        bandwidth: 10e9,
        latency: 0.0,
    };
    let w = [(0.0, 0.010)];
    let out = run(&SyncConfig::default(), &inputs(slow, &w, 0.010));
    close(out.exposed_s, 7.5e-3);
    close(out.comm_s, 15e-3);
}

#[test]
fn gaps_between_backward_windows_produce_no_gradients() {
    // 25 GB/s: each 25 MB bucket 1.5·25e6/25e9 = 1.5 ms. Windows [0, 2] and
    // [6, 8] ms hold 4 ms of backward; buckets are full after 1, 2, 3, 4 ms
    // of it: at 1, 2 (the first window's end, not 6), 7 and 8 ms.
    // Bucket 0: 1..2.5; 1: 2.5..4; 2: 7..8.5; 3: 8.5..10 ms. Exposed 2 ms.
    let link = Link {
        bandwidth: 25e9,
        latency: 0.0,
    };
    let w = [(0.0, 0.002), (0.006, 0.008)];
    close(
        run(&SyncConfig::default(), &inputs(link, &w, 0.008)).exposed_s,
        2e-3,
    );
}

#[test]
fn a_partial_last_bucket_is_full_when_its_bytes_are() {
    // 60 MB (30e6 bf16 values) in 25 MB buckets: 25, 25 and 10 MB, full
    // after 25/60, 50/60 and 60/60 of a 60 ms backward: at 25, 50, 60 ms.
    // At 1.25 GB/s a bucket takes 1.5·25e6/1.25e9 = 30 ms and the last
    // 1.5·10e6/1.25e9 = 12 ms. Bucket 0: 25..55; 1: 55..85; 2: 85..97 ms.
    // Exposed 97 − 60 = 37 ms.
    let link = Link {
        bandwidth: 1.25e9,
        latency: 0.0,
    };
    let w = [(0.0, 0.060)];
    let inp = SyncInputs {
        values: 30e6,
        ..inputs(link, &w, 0.060)
    };
    let out = run(&SyncConfig::default(), &inp);
    close(out.exposed_s, 37e-3);
    close(out.comm_s, 72e-3);
}

#[test]
fn without_backward_windows_every_bucket_starts_at_compute_end() {
    // All four 375 µs buckets after compute ends: 1.5 ms exposed.
    let out = run(&SyncConfig::default(), &inputs(FAST, &[], 0.010));
    close(out.exposed_s, 1.5e-3);
}

#[test]
fn every_bucket_pays_the_latency() {
    // 1 µs per hop, ⌈log2 4⌉ = 2 hops: each of the four buckets takes
    // 375 + 2 µs, 1508 µs in all (one 100 MB all-reduce would be 1502 µs).
    let link = Link {
        latency: 1e-6,
        ..FAST
    };
    let w = [(0.0, 0.010)];
    let out = run(&SyncConfig::default(), &inputs(link, &w, 0.010));
    close(out.comm_s, 1508e-6);
    close(out.exposed_s, 377e-6);
}

#[test]
fn zero_reduce_scatters_buckets_then_all_gathers_the_parameters_exposed() {
    // Each 25 MB bucket reduce-scattered in 0.75·25e6/100e9 = 187.5 µs,
    // the last from 10 ms to 10.1875 ms; then the 100 MB all-gather,
    // 0.75·100e6/100e9 = 750 µs, ends at 10.9375 ms: 937.5 µs exposed.
    // Same bytes as the all-reduce (150 MB), same bandwidth time (1.5 ms).
    let w = [(0.0, 0.010)];
    for stage in [1, 3] {
        let inp = SyncInputs {
            zero_stage: stage,
            ..inputs(FAST, &w, 0.010)
        };
        let out = run(&SyncConfig::default(), &inp);
        close(out.exposed_s, 937.5e-6);
        close(out.comm_s, 1.5e-3);
        close(out.bytes_per_step, 150e6);
    }
}

#[test]
fn local_sgd_all_reduces_the_parameters_every_h_steps_blocking() {
    // H = 16, bf16: one 100 MB all-reduce of 1.5 ms every 16 steps, none
    // hidden: 1.5/16 ms = 93.75 µs a step; 150 MB / 16 = 9.375 MB a step.
    let cfg = method(SyncMethod::LocalSgd);
    assert_eq!(cfg.inner_steps, 16);
    let w = [(0.0, 0.010)];
    let out = run(&cfg, &inputs(FAST, &w, 0.010));
    close(out.exposed_s, 93.75e-6);
    close(out.comm_s, 1.5e-3);
    close(out.bytes_per_step, 9.375e6);
    close(out.peak_bytes, 150e6);
    close(out.syncs_per_step, 1.0 / 16.0);
}

#[test]
fn diloco_sends_fp32_pseudo_gradients_every_500_steps_and_keeps_outer_state() {
    // fp32: S = 200 MB, all-reduced in 1.5·200e6/100e9 = 3 ms every 500
    // steps: 6 µs a step; 300 MB / 500 = 600 kB a step.
    let cfg = method(SyncMethod::Diloco);
    assert_eq!(cfg.inner_steps, 500);
    let w = [(0.0, 0.010)];
    let out = run(&cfg, &inputs(FAST, &w, 0.010));
    close(out.exposed_s, 6e-6);
    close(out.comm_s, 3e-3);
    close(out.bytes_per_step, 600e3);
    close(out.peak_bytes, 300e6);
    close(out.syncs_per_step, 1.0 / 500.0);
}

#[test]
fn streaming_diloco_overlaps_each_fragment_with_tau_steps() {
    // fp32 S = 200 MB in K = 4 fragments of 50 MB, each all-reduced in
    // 1.5·50e6/100e9 = 750 µs, one every H/K = 25 of H = 100 steps.
    let base = method(SyncMethod::StreamingDiloco);
    assert_eq!(
        (base.inner_steps, base.fragments, base.overlap_steps),
        (100, 4, 1)
    );
    for (tau, step, want) in [
        // τ = 1 step of 500 µs hides 500 of 750 µs: 250 µs per fragment,
        // 4 fragments per 100 steps: 10 µs a step.
        (1, 0.5e-3, 10e-6),
        // A 1 ms step hides the whole fragment.
        (1, 1e-3, 0.0),
        // τ = 2 steps of 500 µs hide it too.
        (2, 0.5e-3, 0.0),
        // τ = 0 blocks: 4·750 µs / 100 = 30 µs a step.
        (0, 0.5e-3, 30e-6),
    ] {
        let cfg = SyncConfig {
            overlap_steps: tau,
            ..base
        };
        let w = [(0.0, step)];
        let out = run(&cfg, &inputs(FAST, &w, step));
        close(out.exposed_s, want);
        close(out.comm_s, 750e-6);
        // Ring bytes of all of S (300 MB) over H = 100 steps: 3 MB a step;
        // the busiest step sends one fragment's 75 MB.
        close(out.bytes_per_step, 3e6);
        close(out.peak_bytes, 75e6);
        close(out.syncs_per_step, 0.04);
    }
}

#[test]
fn co2_is_hidden_iff_the_all_reduce_fits_in_one_steps_compute() {
    // bf16 S = 100 MB: 1.5 ms all-reduce against the next step's compute.
    for (step, want) in [(2e-3, 0.0), (1.5e-3, 0.0), (1e-3, 0.5e-3), (0.25e-3, 1.25e-3)] {
        let inp = SyncInputs {
            step_compute_s: step,
            ..inputs(FAST, &[], step)
        };
        let out = run(&method(SyncMethod::Co2), &inp);
        close(out.exposed_s, want);
        close(out.comm_s, 1.5e-3);
        close(out.bytes_per_step, 150e6);
        close(out.peak_bytes, 150e6);
        close(out.syncs_per_step, 1.0);
    }
}

#[test]
fn at_low_bandwidth_ddp_stalls_while_local_methods_send_less() {
    // 1 GB/s: a 25 MB bucket takes 1.5·25e6/1e9 = 37.5 ms; buckets at
    // 2.5, 5, 7.5, 10 ms queue: bucket 0 ends at 40 ms, then 77.5, 115,
    // 152.5 ms: 142.5 ms exposed, against 375 µs at 100 GB/s.
    let slow = Link {
        bandwidth: 1e9,
        latency: 0.0,
    };
    let w = [(0.0, 0.010)];
    let ddp_fast = run(&SyncConfig::default(), &inputs(FAST, &w, 0.010));
    let ddp = run(&SyncConfig::default(), &inputs(slow, &w, 0.010));
    close(ddp_fast.exposed_s, 375e-6);
    close(ddp.exposed_s, 142.5e-3);
    // Local SGD (H = 16, bf16 too): 150 MB / 16 a step, 1/16 of DDP's 150 MB.
    let local = run(&method(SyncMethod::LocalSgd), &inputs(slow, &w, 0.010));
    close(ddp.bytes_per_step, 150e6);
    close(local.bytes_per_step, 9.375e6);
    // Streaming DiLoCo's busiest step: one of K = 4 fragments, 75 MB,
    // against DiLoCo's 300 MB (both fp32).
    let diloco = run(&method(SyncMethod::Diloco), &inputs(slow, &w, 0.010));
    let streaming = run(&method(SyncMethod::StreamingDiloco), &inputs(slow, &w, 0.010));
    close(diloco.peak_bytes, 300e6);
    close(streaming.peak_bytes, 75e6);
}

#[test]
fn one_replica_or_nothing_to_send_costs_nothing() {
    // A latency that would show if any collective ran.
    let link = Link {
        latency: 1e-3,
        ..FAST
    };
    let w = [(0.0, 0.010)];
    for &m in SyncMethod::ALL {
        for dp in [0, 1] {
            let inp = SyncInputs {
                dp,
                zero_stage: 1,
                ..inputs(link, &w, 0.010)
            };
            assert_eq!(run(&method(m), &inp), SyncOutcome::default(), "{m} dp={dp}");
        }
        let inp = SyncInputs {
            values: 0.0,
            ..inputs(link, &w, 0.010)
        };
        assert_eq!(run(&method(m), &inp), SyncOutcome::default(), "{m} no values");
    }
}

#[test]
fn bits_override_the_methods_default() {
    assert_eq!(SyncMethod::Ddp.default_bits(), 16);
    assert_eq!(SyncMethod::Co2.default_bits(), 16);
    assert_eq!(SyncMethod::LocalSgd.default_bits(), 16);
    assert_eq!(SyncMethod::Diloco.default_bits(), 32);
    assert_eq!(SyncMethod::StreamingDiloco.default_bits(), 32);
    // 4-bit Streaming DiLoCo: S = 25 MB, peak one 6.25 MB fragment's
    // 1.5·6.25 = 9.375 MB.
    let cfg = SyncConfig {
        bits: Some(4),
        ..method(SyncMethod::StreamingDiloco)
    };
    assert_eq!(cfg.value_bits(), 4);
    let w = [(0.0, 0.010)];
    close(run(&cfg, &inputs(FAST, &w, 0.010)).peak_bytes, 9.375e6);
}

#[test]
fn defaults_are_ddp_with_25_mb_buckets() {
    let d = SyncConfig::default();
    assert_eq!(d, SyncConfig::for_method(SyncMethod::Ddp));
    assert_eq!(d.bucket_mb, 25.0);
    assert_eq!(d.bits, None);
    assert_eq!(d.value_bits(), 16);
    for &m in SyncMethod::ALL {
        assert!(method(m).validate().is_ok(), "{m}");
    }
    assert_eq!(
        SyncMethod::from_name("streaming-diloco"),
        Some(SyncMethod::StreamingDiloco)
    );
    assert_eq!(SyncMethod::LocalSgd.name(), "local-sgd");
}

#[test]
fn diloco_keeps_8_bytes_of_outer_state_per_parameter() {
    for (m, want) in [
        (SyncMethod::Ddp, 0.0),
        (SyncMethod::LocalSgd, 0.0),
        (SyncMethod::Co2, 0.0),
        (SyncMethod::Diloco, 8.0),
        (SyncMethod::StreamingDiloco, 8.0),
    ] {
        assert_eq!(method(m).extra_state_bytes_per_param(), want, "{m}");
    }
}

/// The error's text, which names the key.
fn error_of(cfg: SyncConfig) -> String {
    let w = [(0.0, 0.010)];
    let via_sync = dp_sync(&cfg, &inputs(FAST, &w, 0.010)).unwrap_err().to_string();
    assert_eq!(cfg.validate().unwrap_err().to_string(), via_sync);
    via_sync
}

#[test]
fn validate_names_the_key() {
    let ddp = SyncConfig::default();
    let streaming = method(SyncMethod::StreamingDiloco);
    for bucket_mb in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = error_of(SyncConfig { bucket_mb, ..ddp });
        assert!(e.starts_with("key `sync.bucket_mb`:"), "{e}");
    }
    let e = error_of(SyncConfig {
        inner_steps: 0,
        ..ddp
    });
    assert!(e.starts_with("key `sync.inner_steps`:"), "{e}");
    let e = error_of(SyncConfig { fragments: 0, ..ddp });
    assert!(e.starts_with("key `sync.fragments`:"), "{e}");
    // 3 fragments do not divide H = 100.
    let e = error_of(SyncConfig {
        fragments: 3,
        ..streaming
    });
    assert!(
        e.starts_with("key `sync.fragments`:") && e.contains("divide"),
        "{e}"
    );
    // τ at most H/K = 25.
    let e = error_of(SyncConfig {
        overlap_steps: 26,
        ..streaming
    });
    assert!(e.starts_with("key `sync.overlap_steps`:"), "{e}");
    for bits in [0, 33] {
        let e = error_of(SyncConfig {
            bits: Some(bits),
            ..ddp
        });
        assert!(e.starts_with("key `sync.bits`:"), "{e}");
    }
    // The limits themselves pass.
    for ok in [
        SyncConfig {
            overlap_steps: 25,
            ..streaming
        },
        SyncConfig {
            fragments: 100,
            overlap_steps: 1,
            ..streaming
        },
        SyncConfig { bits: Some(1), ..ddp },
        SyncConfig {
            bits: Some(32),
            ..ddp
        },
        // Fragments and overlap mean nothing to the other methods.
        SyncConfig {
            fragments: 3,
            overlap_steps: 1000,
            ..method(SyncMethod::Diloco)
        },
    ] {
        assert!(ok.validate().is_ok(), "{ok:?}");
    }
}

#[test]
fn ddp_refuses_more_than_a_million_buckets() {
    // 1 MB buckets: 1e12 bytes (5e11 bf16 values) is a million buckets,
    // the most; one value more needs another bucket and is refused under
    // `sync.bucket_mb`.
    let cfg = SyncConfig {
        bucket_mb: 1.0,
        ..SyncConfig::default()
    };
    let w = [(0.0, 0.010)];
    let at_limit = SyncInputs {
        values: 5e11,
        ..inputs(FAST, &w, 0.010)
    };
    assert!(dp_sync(&cfg, &at_limit).is_ok());
    let over = SyncInputs {
        values: 5e11 + 1.0,
        ..at_limit
    };
    let e = dp_sync(&cfg, &over).unwrap_err().to_string();
    assert!(e.starts_with("key `sync.bucket_mb`:"), "{e}");
}
