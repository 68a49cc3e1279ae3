//! Tests of the workload: distributions against their definitions, trace
//! readers on fixtures written here, determinism of the random streams.

use super::trace::{self, TraceFormat, TraceFormatChoice};
use super::*;
use crate::scenario::kinds::Kind;
use crate::scenario::{ArrivalConfig, LengthConfig};
use std::io::Write;

/// A source that yields nothing and warns "cut short": for the workloads
/// that must pass their source's notes on.
pub(crate) struct Noted;
impl RequestSource for Noted {
    fn next_request(&mut self) -> Option<RequestSpec> {
        None
    }
    fn notes(&self) -> Vec<String> {
        vec!["cut short".into()]
    }
}

pub(super) fn fixed(v: u32) -> LengthConfig {
    LengthConfig {
        kind: Some(LengthKind::Fixed),
        value: v,
        ..LengthConfig::default()
    }
}

pub(super) fn cfg(kind: &str, rate: f64, cv: f64, count: u64) -> WorkloadConfig {
    WorkloadConfig {
        count,
        seed: 7,
        arrivals: ArrivalConfig {
            kind: Some(ArrivalKind::from_name(kind).unwrap()),
            rate,
            cv,
        },
        prompt: fixed(10),
        output: fixed(5),
        ..WorkloadConfig::default()
    }
}

pub(super) fn all(c: &WorkloadConfig) -> Vec<RequestSpec> {
    let mut s = build_source(c).unwrap();
    let mut v = Vec::new();
    while let Some(r) = s.next_request() {
        v.push(r);
    }
    v
}

fn gaps(v: &[RequestSpec]) -> Vec<f64> {
    v.windows(2)
        .map(|w| (w[1].arrival - w[0].arrival) as f64 * 1e-9)
        .collect()
}

fn mean_cv(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
    (m, var.sqrt() / m)
}

#[test]
fn poisson_gaps_have_mean_one_over_rate_and_cv_one() {
    let v = all(&cfg("poisson", 4.0, 1.0, 100_001));
    assert_eq!(v[0].arrival, 0);
    let (m, cv) = mean_cv(&gaps(&v));
    assert!((m * 4.0 - 1.0).abs() < 0.02, "mean gap {m}");
    assert!((cv - 1.0).abs() < 0.03, "cv {cv}");
}

#[test]
fn gamma_gaps_have_the_requested_cv() {
    let v = all(&cfg("gamma", 2.0, 3.0, 100_001));
    let (m, cv) = mean_cv(&gaps(&v));
    assert!((m * 2.0 - 1.0).abs() < 0.05, "mean gap {m}");
    assert!((cv / 3.0 - 1.0).abs() < 0.05, "cv {cv}");
}

#[test]
fn constant_gaps_are_exact() {
    let v = all(&cfg("constant", 4.0, 1.0, 100));
    assert!(gaps(&v).iter().all(|g| (g - 0.25).abs() < 1e-9));
}

#[test]
fn lognormal_median_and_bounds() {
    let mut c = cfg("poisson", 1.0, 1.0, 50_000);
    c.prompt = LengthConfig {
        kind: Some(LengthKind::LogNormal),
        median: 500.0,
        sigma: 0.8,
        min: 1,
        max: 100_000,
        ..LengthConfig::default()
    };
    let mut p: Vec<u32> = all(&c).iter().map(|r| r.prompt_tokens).collect();
    p.sort();
    let median = p[p.len() / 2] as f64;
    assert!((median / 500.0 - 1.0).abs() < 0.02, "median {median}");
}

#[test]
fn uniform_and_zipf_stay_in_bounds_and_zipf_favours_min() {
    let mut c = cfg("poisson", 1.0, 1.0, 20_000);
    c.prompt = LengthConfig {
        kind: Some(LengthKind::Uniform),
        min: 10,
        max: 20,
        ..LengthConfig::default()
    };
    c.output = LengthConfig {
        kind: Some(LengthKind::Zipf),
        min: 5,
        max: 50,
        exponent: 1.2,
        ..LengthConfig::default()
    };
    let v = all(&c);
    assert!(v.iter().all(|r| (10..=20).contains(&r.prompt_tokens)));
    assert!(v.iter().all(|r| (5..=50).contains(&r.output_tokens)));
    let count = |x: u32| v.iter().filter(|r| r.output_tokens == x).count();
    assert!(count(5) > count(6) && count(6) > count(10));
}

#[test]
fn same_seed_same_sequence_and_lengths_do_not_move_arrivals() {
    let a = all(&cfg("poisson", 3.0, 1.0, 1000));
    let b = all(&cfg("poisson", 3.0, 1.0, 1000));
    assert_eq!(a, b);
    let mut c = cfg("poisson", 3.0, 1.0, 1000);
    c.prompt = LengthConfig::conversation_prompt();
    let d = all(&c);
    assert!(a.iter().zip(&d).all(|(x, y)| x.arrival == y.arrival));
    assert!(a.iter().zip(&d).any(|(x, y)| x.prompt_tokens != y.prompt_tokens));
}

#[test]
fn max_tokens_count_and_duration() {
    let mut c = cfg("constant", 10.0, 1.0, 50);
    c.output = fixed(500);
    c.max_tokens = 64;
    let v = all(&c);
    assert_eq!(v.len(), 50);
    assert!(v.iter().all(|r| r.output_tokens == 64));
    c.count = 0;
    c.duration = 2.0;
    let v = all(&c);
    assert_eq!(v.len(), 21, "arrivals at 0, 0.1, ..., 2.0 s");
    c.count = 5;
    assert_eq!(all(&c).len(), 5, "whichever ends first");
}

#[test]
fn bad_parameters_name_their_key() {
    let check = |c: WorkloadConfig, key: &str| {
        let e = validate(&c).unwrap_err().to_string();
        assert!(e.contains(key), "`{e}` should name {key}");
    };
    check(cfg("poisson", -1.0, 1.0, 10), "workload.arrivals.rate");
    // 0 requests/s is no process at all (the boundary of `rate > 0`).
    let e = validate(&cfg("poisson", 0.0, 1.0, 10)).unwrap_err().to_string();
    assert!(
        e.contains("workload.arrivals.rate") && e.contains("must be > 0 requests/s, found 0"),
        "{e}"
    );
    check(cfg("gamma", 1.0, 0.0, 10), "workload.arrivals.cv");
    check(cfg("poisson", 1.0, 1.0, 0), "workload.count");
    let mut c = cfg("poisson", 1.0, 1.0, 10);
    c.prompt.kind = Some(LengthKind::Uniform);
    c.prompt.min = 9;
    c.prompt.max = 3;
    check(c, "workload.prompt");
    let mut c = cfg("poisson", 1.0, 1.0, 10);
    c.rate_scale = 0.0;
    check(c, "workload.rate_scale");
    check(cfg("trace", 1.0, 1.0, 10), "workload.trace");
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

#[test]
fn each_trace_format_is_detected_and_parsed() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        (
            "v.csv",
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,100,10\n0.5,200,20\n",
            TraceFormat::Vidur,
        ),
        (
            "a.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,100,10\n2023-11-16 18:15:47.1805900,200,20\n",
            TraceFormat::Azure,
        ),
        (
            "x.jsonl",
            "{\"StartTimeOffset\": 0, \"ContextTokens\": 100, \"GeneratedTokens\": 10}\n{\"StartTimeOffset\": 500000000, \"ContextTokens\": 200, \"GeneratedTokens\": 20}\n",
            TraceFormat::Apex,
        ),
        (
            "m.jsonl",
            "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 10, \"hash_ids\": [0, 1]}\n{\"timestamp\": 500, \"input_length\": 200, \"output_length\": 20, \"hash_ids\": [0, 2]}\n",
            TraceFormat::Mooncake,
        ),
        (
            "b.csv",
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5.0,ChatGPT,100,10,110,Conversation log\n5.5,GPT-4,200,20,220,Conversation log\n",
            TraceFormat::BurstGpt,
        ),
    ];
    for (name, text, fmt) in cases {
        let p = write(&d, name, text);
        let t = trace::read(&p, TraceFormatChoice::Auto).unwrap();
        assert_eq!(t.format, fmt, "{name}");
        assert_eq!(t.rows.len(), 2);
        let c = WorkloadConfig {
            trace: Some(p),
            count: 0,
            ..WorkloadConfig::default()
        };
        let v = all(&c);
        assert_eq!(v.len(), 2, "{name}");
        assert_eq!(
            (v[0].arrival, v[0].prompt_tokens, v[0].output_tokens),
            (0, 100, 10),
            "{name}"
        );
        assert_eq!(
            (v[1].arrival, v[1].prompt_tokens, v[1].output_tokens),
            (500_000_000, 200, 20),
            "{name}"
        );
    }
}

/// Detection needs both length columns of a CSV format, but one APEX+ key
/// is enough (the parser then names the missing one).
#[test]
fn detection_needs_both_length_columns_of_a_csv_and_one_apex_key() {
    let d = tempfile::tempdir().unwrap();
    let read = |name: &str, text: &str| {
        let p = write(&d, name, text);
        trace::read(&p, TraceFormatChoice::Auto).map(|t| t.format)
    };
    for (name, header) in [
        ("v.csv", "arrived_at,num_prefill_tokens,tokens_out"),
        ("v2.csv", "arrived_at,tokens_in,num_decode_tokens"),
        ("a.csv", "TIMESTAMP,ContextTokens,tokens_out"),
        ("a2.csv", "TIMESTAMP,tokens_in,GeneratedTokens"),
        ("b.csv", "Timestamp,Request tokens,tokens_out"),
        ("b2.csv", "Timestamp,tokens_in,Response tokens"),
    ] {
        let e = read(name, &format!("{header}\n0,100,10\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot tell the trace format"), "{name}: {e}");
    }
    for (name, line) in [
        ("x.jsonl", "{\"ContextTokens\": 100, \"GeneratedTokens\": 10}"),
        ("y.jsonl", "{\"StartTimeOffset\": 0, \"prompt\": 100}"),
    ] {
        let e = read(name, &format!("{line}\n")).unwrap_err().to_string();
        assert!(!e.contains("cannot tell"), "{name}: {e}");
        assert!(e.contains("StartTimeOffset (ns), ContextTokens"), "{name}: {e}");
    }
}

/// `prefix.kind = "trace"` with a trace that has no `hash_ids` is an error
/// naming the key; `auto` then shares nothing.
#[test]
fn trace_prefixes_need_hash_ids_in_the_trace_itself() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        &d,
        "v.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,1100,10\n0.5,1100,10\n",
    );
    let mut c = with_prefix("trace", |_| {});
    c.trace = Some(p);
    c.count = 0;
    let e = build_source(&c).err().unwrap().to_string();
    assert!(e.contains("prefix.kind") && e.contains("hash_ids"), "{e}");
    c.prefix.kind = PrefixKind::Auto;
    let v = all(&c);
    assert!(v.iter().all(|r| r.prefix == Prefix::None));
}

#[test]
fn rate_scale_divides_timestamps() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        &d,
        "v.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens\n10.0,1,1\n12.0,1,1\n16.0,1,1\n",
    );
    let c = WorkloadConfig {
        trace: Some(p),
        count: 0,
        rate_scale: 2.0,
        ..WorkloadConfig::default()
    };
    let t: Vec<Nanos> = all(&c).iter().map(|r| r.arrival).collect();
    assert_eq!(t, vec![0, 1_000_000_000, 3_000_000_000]);
}

#[test]
fn malformed_rows_report_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        &d,
        "bad.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,5\n0.5,abc,5\n",
    );
    let e = trace::read(&p, TraceFormatChoice::Auto).unwrap_err().to_string();
    assert!(
        e.contains("bad.csv") && e.contains("line 3") && e.contains("abc"),
        "{e}"
    );
    let p = write(
        &d,
        "bad.jsonl",
        "{\"StartTimeOffset\": 0, \"ContextTokens\": 1, \"GeneratedTokens\": 1}\n{oops\n",
    );
    let e = trace::read(&p, TraceFormatChoice::Auto).unwrap_err().to_string();
    assert!(e.contains("line 2"), "{e}");
    let p = write(
        &d,
        "zero.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,0,5\n",
    );
    assert!(
        trace::read(&p, TraceFormatChoice::Auto)
            .unwrap_err()
            .to_string()
            .contains("line 2")
    );
    let p = write(&d, "what.csv", "a,b,c\n1,2,3\n");
    let e = trace::read(&p, TraceFormatChoice::Auto).unwrap_err().to_string();
    assert!(e.contains("cannot tell the trace format"), "{e}");
    assert!(trace::read(&d.path().join("missing.csv"), TraceFormatChoice::Auto).is_err());
}

/// A count may be written as a whole float ("44.0"), never as a fraction
/// or a negative number; a time must be finite and ≥ 0.
#[test]
fn csv_counts_and_times_refuse_what_is_not_a_count_or_a_time() {
    let d = tempfile::tempdir().unwrap();
    let read = |text: &str| {
        let head = "arrived_at,num_prefill_tokens,num_decode_tokens\n";
        let p = write(&d, "t.csv", &format!("{head}{text}\n"));
        trace::read(&p, TraceFormatChoice::Auto)
    };
    let t = read("0.25,44.0,3").unwrap();
    assert_eq!((t.rows[0].time_s, t.rows[0].prompt_tokens), (Some(0.25), 44));
    for bad in ["44.5", "-1.0", "-0.5", "1e400"] {
        let e = read(&format!("0,{bad},3")).unwrap_err().to_string();
        assert!(
            e.contains("expected a token count") && e.contains(bad),
            "{bad}: {e}"
        );
    }
    for bad in ["-1", "inf", "NaN"] {
        let e = read(&format!("{bad},44,3")).unwrap_err().to_string();
        assert!(e.contains("`arrived_at`: expected seconds"), "{bad}: {e}");
    }
}

#[test]
fn length_only_traces_feed_synthetic_arrivals() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        &d,
        "l.csv",
        "num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n100,10,110,10\n300,30,330,10\n",
    );
    let mut c = WorkloadConfig {
        trace: Some(p.clone()),
        count: 200,
        ..WorkloadConfig::default()
    };
    assert!(validate(&c).unwrap_err().to_string().contains("no timestamps"));
    c.arrivals.kind = Some(ArrivalKind::Poisson);
    let v = all(&c);
    assert_eq!(v.len(), 200);
    // Prompt and output come from the same row.
    assert!(v.iter().all(|r| r.prompt_tokens == 10 * r.output_tokens));
    assert!(v.iter().any(|r| r.prompt_tokens == 100) && v.iter().any(|r| r.prompt_tokens == 300));
}

#[test]
fn azure_timestamps_parse() {
    let a = trace::parse_timestamp("2023-11-16 18:15:46.6805900").unwrap();
    let b = trace::parse_timestamp("2023-11-16 18:15:47.1805900").unwrap();
    assert!((b - a - 0.5).abs() < 1e-6);
    assert_eq!(trace::parse_timestamp("1970-01-02 00:00:00"), Some(86400.0));
    // Each field's weight: 1 h 2 min 3 s, then a date past 2000's leap day
    // (`date -u -d '2000-03-01 00:00:00' +%s`) and one in year 1.
    assert_eq!(trace::parse_timestamp("1970-01-01 01:02:03"), Some(3723.0));
    assert_eq!(trace::parse_timestamp("1970-01-01 00:00:59.5"), Some(59.5));
    assert_eq!(trace::parse_timestamp("2000-03-01 00:00:00"), Some(951_868_800.0));
    assert_eq!(
        trace::parse_timestamp("0001-01-01 00:00:00"),
        Some(-62_135_596_800.0)
    );
    assert!(trace::parse_timestamp("2023-13-01 00:00:00").is_none());
    // Each calendar field at its boundary: the last valid value parses,
    // the first invalid one does not.
    assert!(trace::parse_timestamp("2023-02-28 00:00:00").is_some());
    assert!(trace::parse_timestamp("2023-02-29 00:00:00").is_none());
    assert!(trace::parse_timestamp("2024-02-29 00:00:00").is_some()); // leap year
    assert!(trace::parse_timestamp("1900-02-29 00:00:00").is_none()); // century
    assert!(trace::parse_timestamp("2000-02-29 00:00:00").is_some()); // 400 years
    assert!(trace::parse_timestamp("2023-04-30 00:00:00").is_some());
    assert!(trace::parse_timestamp("2023-04-31 00:00:00").is_none());
    assert!(trace::parse_timestamp("2023-12-31 23:59:60").is_some());
    // Year 1 is the first (0000 is refused below): 719,162 days before 1970.
    assert_eq!(
        trace::parse_timestamp("0001-01-01 00:00:00"),
        Some(-719_162.0 * 86400.0)
    );
    assert_eq!(
        trace::parse_timestamp("2023-01-31 00:00:00"),
        Some(trace::parse_timestamp("2023-01-30 00:00:00").unwrap() + 86400.0)
    );
    for bad in [
        "2023-02-31 00:00:00",
        "2023-00-10 00:00:00",
        "2023-01-00 00:00:00",
        "0000-01-01 00:00:00",
        "2023-01-01 24:00:00",
        "2023-01-01 00:60:00",
        "2023-01-01 00:00:61",
        "2023-01-01 -1:-1:-1",
        "2023-01-01 +1:00:00",
        "-2023-01-01 00:00:00",
        "99999999999999-01-01 00:00:00",
        "2023-01-01 00:00:00.5e3",
    ] {
        assert!(trace::parse_timestamp(bad).is_none(), "{bad} was accepted");
    }
}

/// Inputs that would read until memory runs out are errors naming the
/// line: a line past `MAX_LINE_BYTES` (what `/dev/zero` gives), bytes that
/// are not text.
#[test]
fn runaway_and_binary_files_are_errors_naming_the_line() {
    let d = tempfile::tempdir().unwrap();
    let header = "arrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n";
    let long = format!("{header}{}\n", "9".repeat(trace::MAX_LINE_BYTES as usize + 1));
    let p = write(&d, "long.csv", &long);
    let e = trace::read(&p, TraceFormatChoice::Auto).unwrap_err().to_string();
    assert!(
        e.contains("long.csv") && e.contains("line 3") && e.contains("longer than 1 MiB"),
        "{e}"
    );
    // Exactly the limit is still a line (here a bad row, not a guard).
    let edge = format!("{header}{}\n", "9".repeat(trace::MAX_LINE_BYTES as usize));
    let p = write(&d, "edge.csv", &edge);
    let e = trace::read(&p, TraceFormatChoice::Auto).unwrap_err().to_string();
    assert!(!e.contains("longer than"), "{e}");
    let p = d.path().join("bin.csv");
    std::fs::write(&p, [header.as_bytes(), b"1,2,3\n", &[0xff, 0xfe, b'\n']].concat()).unwrap();
    let e = trace::read(&p, TraceFormatChoice::Auto).unwrap_err().to_string();
    assert!(e.contains("line 4") && e.contains("not UTF-8"), "{e}");
    #[cfg(unix)]
    {
        let e = trace::read(std::path::Path::new("/dev/zero"), TraceFormatChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero") && e.contains("line 1"), "{e}");
    }
}

/// JSONL rows are checked field by field in the format's own words (no
/// Rust type names), and negative or non-finite times are refused.
#[test]
fn jsonl_errors_name_the_field_in_the_formats_words() {
    let d = tempfile::tempdir().unwrap();
    let apex = |name: &str, row: &str| {
        let p = write(&d, name, &format!("{row}\n"));
        trace::read(&p, TraceFormatChoice::Apex).unwrap_err().to_string()
    };
    let e = apex(
        "a1.jsonl",
        r#"{"StartTimeOffset": "soon", "ContextTokens": 1, "GeneratedTokens": 1}"#,
    );
    assert!(
        e.contains("line 1") && e.contains("`StartTimeOffset`") && e.contains("\"soon\""),
        "{e}"
    );
    let e = apex(
        "a2.jsonl",
        r#"{"StartTimeOffset": -5, "ContextTokens": 1, "GeneratedTokens": 1}"#,
    );
    assert!(e.contains("`StartTimeOffset`") && e.contains("-5"), "{e}");
    let e = apex("a3.jsonl", r#"{"StartTimeOffset": 0, "GeneratedTokens": 1}"#);
    assert!(e.contains("missing `ContextTokens`"), "{e}");
    let e = apex("a4.jsonl", "[1, 2]");
    assert!(e.contains("not a JSON object"), "{e}");
    // The error says what an APEX line holds.
    assert!(
        e.contains("StartTimeOffset (ns), ContextTokens, GeneratedTokens"),
        "{e}"
    );
    // A count must convert to a whole number: 1.8e19 is past the bound.
    let e = apex(
        "a5.jsonl",
        r#"{"StartTimeOffset": 0, "ContextTokens": 1.8e19, "GeneratedTokens": 1}"#,
    );
    assert!(e.contains("`ContextTokens`: expected a whole number"), "{e}");
    let mooncake = |name: &str, row: &str| {
        let p = write(&d, name, &format!("{row}\n"));
        trace::read(&p, TraceFormatChoice::Mooncake).map(|t| t.rows)
    };
    let e = mooncake(
        "m1.jsonl",
        r#"{"timestamp": -1, "input_length": 5, "output_length": 1}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`timestamp`") && e.contains("milliseconds ≥ 0"), "{e}");
    let e = mooncake(
        "m2.jsonl",
        r#"{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [1, "x"]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`hash_ids`"), "{e}");
    let rows = mooncake(
        "m3.jsonl",
        r#"{"timestamp": 1500, "input_length": 5, "output_length": 2.0, "hash_ids": [7]}"#,
    )
    .unwrap();
    assert_eq!((rows[0].time_s, rows[0].output_tokens), (Some(1.5), 2));
    assert_eq!(rows[0].hash_ids.as_deref(), Some(&[7u64][..]));
    for e in [
        &e,
        &apex(
            "a5.jsonl",
            r#"{"StartTimeOffset": 1.5, "ContextTokens": 1, "GeneratedTokens": 1}"#,
        ),
    ] {
        for rust in ["u64", "f64", "struct", "Row", "invalid type"] {
            assert!(!e.contains(rust), "{rust} in {e}");
        }
    }
}

/// `workload.count` below a trace's length is a warning naming both
/// numbers and the way to replay it whole; 0 replays it whole, silently.
#[test]
fn a_count_that_cuts_a_trace_short_says_so() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        &d,
        "t.csv",
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n1,1,1\n2,1,1\n",
    );
    let notes = |count: u64| {
        let c = WorkloadConfig {
            trace: Some(p.clone()),
            count,
            ..WorkloadConfig::default()
        };
        build(&c).unwrap().notes()
    };
    let n = notes(2);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].contains("workload.count = 2") && n[0].contains("3 requests") && n[0].contains("= 0"),
        "{n:?}"
    );
    assert!(notes(0).is_empty());
    assert!(notes(3).is_empty());
    assert!(notes(5).is_empty());
}

#[test]
fn real_traces_parse_when_shared_is_present() {
    let shared = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/traces"));
    if !shared.is_dir() {
        let test = std::thread::current().name().unwrap_or("").to_string();
        eprintln!("skipping {test}: ../shared/traces is not present");
        return;
    }
    let expect = [
        ("azure-2023/AzureLLMInferenceTrace_conv.csv", 19_366),
        ("azure-2023/AzureLLMInferenceTrace_code.csv", 8_819),
    ];
    for (f, n) in expect {
        let t = trace::read(&shared.join(f), TraceFormatChoice::Auto).unwrap();
        assert_eq!(t.rows.len(), n, "{f}");
    }
    for f in [
        "vidur/splitwise_conv.csv",
        "vidur/arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
        "apex/llama/lmsys_05.jsonl",
        "mooncake/conversation_trace.jsonl",
    ] {
        let p = shared.join(f);
        if p.exists() {
            let t = trace::read(&p, TraceFormatChoice::Auto).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert!(!t.rows.is_empty());
        }
    }
}

fn with_prefix(kind: &str, f: impl FnOnce(&mut crate::scenario::PrefixConfig)) -> WorkloadConfig {
    let mut c = cfg("poisson", 10.0, 1.0, 400);
    c.prefix.kind = PrefixKind::from_name(kind).unwrap();
    f(&mut c.prefix);
    c
}

#[test]
fn system_prompts_are_prepended_and_shared_by_the_requested_fraction() {
    let c = with_prefix("system", |p| {
        p.tokens = 256;
        p.share = 0.9;
        p.prompts = 2;
    });
    let v = all(&c);
    assert!(
        v.iter().all(|r| r.prompt_tokens == 256 + 10),
        "system prompt + user prompt"
    );
    let shared = v
        .iter()
        .filter(|r| matches!(r.prefix, Prefix::Group { group, tokens: 256 } if group < 2))
        .count();
    let frac = shared as f64 / v.len() as f64;
    assert!((frac - 0.9).abs() < 0.05, "shared fraction {frac}");
    // Unshared requests have groups of their own.
    let mut groups: Vec<u64> = v
        .iter()
        .filter_map(|r| match r.prefix {
            Prefix::Group { group, .. } if group >= 2 => Some(group),
            _ => None,
        })
        .collect();
    let n = groups.len();
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), n);
    // Same lengths with share 0: only the sharing changes.
    let c0 = with_prefix("system", |p| {
        p.tokens = 256;
        p.share = 0.0;
    });
    let v0 = all(&c0);
    assert!(
        v0.iter()
            .zip(&v)
            .all(|(a, b)| a.prompt_tokens == b.prompt_tokens && a.arrival == b.arrival)
    );
}

#[test]
fn session_turns_extend_the_previous_turn() {
    let c = with_prefix("sessions", |p| {
        p.turns = 3;
        p.sessions = 4;
    });
    let v = all(&c);
    let group = |r: &RequestSpec| match r.prefix {
        Prefix::Group { group, tokens } => {
            assert_eq!(tokens, r.prompt_tokens);
            group
        }
        _ => panic!("session requests carry a group prefix"),
    };
    // Requests of one conversation, in arrival order: each turn's prompt is
    // the previous turn's prompt + output + 10 new tokens; at most 3 turns.
    let mut by_group: std::collections::BTreeMap<u64, Vec<&RequestSpec>> = Default::default();
    for r in &v {
        by_group.entry(group(r)).or_default().push(r);
    }
    assert!(by_group.len() >= v.len() / 3);
    assert!(by_group.values().any(|c| c.len() == 3));
    for conv in by_group.values() {
        assert!(conv.len() <= 3);
        assert_eq!(conv[0].prompt_tokens, 10);
        for k in 1..conv.len() {
            assert_eq!(
                conv[k].prompt_tokens,
                conv[k - 1].prompt_tokens + conv[k - 1].output_tokens + 10
            );
        }
    }
    // Conversations interleave: the next turn is usually not the next request.
    let adjacent = v.windows(2).filter(|w| group(&w[0]) == group(&w[1])).count();
    assert!(adjacent < v.len() / 3, "{adjacent} adjacent turns");
}

#[test]
fn clients_follow_their_weights_and_carry_their_priority() {
    let mut c = cfg("poisson", 10.0, 1.0, 2000);
    c.clients.weights = vec![10.0, 1.0];
    c.clients.priorities = vec![1, 0];
    let v = all(&c);
    let light = v.iter().filter(|r| r.client == 1).count() as f64 / v.len() as f64;
    assert!((light - 1.0 / 11.0).abs() < 0.02, "light client share {light}");
    assert!(v.iter().all(|r| r.priority == if r.client == 1 { 0 } else { 1 }));
    c.clients.priorities = vec![0, 0, 0];
    assert!(
        build_source(&c)
            .err()
            .unwrap()
            .to_string()
            .contains("clients.priorities")
    );
    c.clients.priorities.clear();
    c.clients.weights = vec![-1.0];
    assert!(
        build_source(&c)
            .err()
            .unwrap()
            .to_string()
            .contains("clients.weights")
    );
}

#[test]
fn mooncake_hash_ids_become_block_prefixes() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        &d,
        "m.jsonl",
        "{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 10, \"hash_ids\": [7, 8, 9]}\n\
         {\"timestamp\": 5, \"input_length\": 600, \"output_length\": 10, \"hash_ids\": [7, 3]}\n",
    );
    let c = WorkloadConfig {
        trace: Some(p),
        count: 0,
        ..WorkloadConfig::default()
    };
    let v = all(&c);
    let (a, b) = (&v[0].prefix, &v[1].prefix);
    // 1100 tokens hold two whole 512-token units; 600 hold one.
    assert_eq!((a.units(1100, 16), b.units(600, 16)), (2, 1));
    assert_eq!(a.unit_hash(0), b.unit_hash(0));
    assert_ne!(a.unit_hash(1), Prefix::None.unit_hash(1));
    let mut bad = with_prefix("trace", |_| {});
    bad.count = 3;
    assert!(build_source(&bad).err().unwrap().to_string().contains("hash_ids"));
}

/// `mix64` is SplitMix64's output function: from state 0 the generator's
/// first three outputs are Vigna's reference values (prefix-unit and
/// session hashes rely on its mixing to keep distinct prefixes apart).
#[test]
fn mix64_is_splitmix64() {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let outputs: Vec<u64> = (0..3u64).map(|i| mix64(i.wrapping_mul(GAMMA))).collect();
    assert_eq!(
        outputs,
        [
            16_294_208_416_658_607_535,
            7_960_286_522_194_355_700,
            487_617_019_471_545_679
        ]
    );
}

/// A source that says nothing about itself adds no warning to the run.
#[test]
fn a_source_without_notes_has_none() {
    struct Silent;
    impl RequestSource for Silent {
        fn next_request(&mut self) -> Option<RequestSpec> {
            None
        }
    }
    assert!(Silent.notes().is_empty());
}
