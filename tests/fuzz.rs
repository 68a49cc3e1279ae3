//! Fuzzing: generated and mutated inputs through every user-facing reader
//! — `--set` overrides, scenario files, the five trace formats, search
//! spaces — then planning and a short simulation of whatever is valid.
//! Every input must give `Ok` or an `Err` with a message: no panic (proptest
//! catches it and shrinks the input), no abort, no hang.
//!
//! Mutation-based, not coverage-guided: each target starts from the seed
//! corpus in `fuzz/corpus/` (and `examples/`) and applies random edits
//! (byte flips, inserted tokens chosen to hit boundaries — huge and negative
//! numbers, `nan`, impossible dates, separators, a BOM — deleted, duplicated
//! and truncated lines, values replaced by generated ones).
//!
//! `FLEETSIM_FUZZ_CASES` sets the cases per target (default 200: the CI
//! smoke, seconds). The long run of docs/testing.md:
//!
//! ```text
//! FLEETSIM_FUZZ_CASES=250000 cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! Each target prints its case count, the share of inputs that were valid
//! all the way to a simulation, and its slowest input's time.

use fleetsim::scenario::{self, Scenario, validate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// An input taking longer than this is reported as a hang.
const HANG: Duration = Duration::from_secs(60);

fn cases() -> u32 {
    std::env::var("FLEETSIM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Counters of one target: cases, cases valid up to a simulation, and the
/// slowest input (its time and a description).
#[derive(Default)]
struct Tally {
    cases: AtomicU64,
    simulated: AtomicU64,
    slowest: Mutex<(Duration, String)>,
}

impl Tally {
    fn timed<T>(&self, input: &dyn Fn() -> String, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        let e = t.elapsed();
        assert!(e < HANG, "an input took {e:?}: a hang: {}", input());
        self.cases.fetch_add(1, Ordering::Relaxed);
        let mut slowest = self.slowest.lock().unwrap();
        if e > slowest.0 {
            *slowest = (e, input());
        }
        out
    }

    fn report(&self, target: &str) {
        let slowest = self.slowest.lock().unwrap();
        let shown: String = slowest.1.chars().take(600).collect();
        eprintln!(
            "fuzz {target}: {} inputs, {} simulated, slowest {:.1} ms: {shown}",
            self.cases.load(Ordering::Relaxed),
            self.simulated.load(Ordering::Relaxed),
            slowest.0.as_secs_f64() * 1e3,
        );
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    })
}

/// Keeps a valid scenario small enough to simulate in milliseconds: at most
/// 16 requests, 30 s of workload, 16 clients, 8 replicas per pool.
fn shrink_to_a_quick_run(s: &mut Scenario) {
    let w = &mut s.workload;
    w.count = if w.count == 0 { 16 } else { w.count.min(16) };
    w.duration = w.duration.min(30.0);
    w.concurrency = w.concurrency.min(16);
    if let Some(sessions) = w.sessions.as_mut() {
        sessions.users = sessions.users.min(16);
    }
    let c = &mut s.cluster;
    c.replicas = c.replicas.min(8);
    c.prefill.replicas = c.prefill.replicas.min(8);
    c.decode.replicas = c.decode.replicas.min(8);
}

/// Plans and, when valid, simulates `s`: every failure must be an error.
fn plan_and_run(mut s: Scenario, tally: &Tally) {
    shrink_to_a_quick_run(&mut s);
    let Ok(plan) = validate::plan(&s) else { return };
    if fleetsim::workload::validate(&s.workload).is_err() {
        return;
    }
    if fleetsim::run_plan(&plan, &mut |_| {}).is_ok() {
        tally.simulated.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every dotted key of the built-in scenario's leaves, plus a few that do
/// not exist (their errors are exercised too).
fn keys() -> Vec<String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let s = scenario::load(None, &[]).unwrap();
    let mut out = Vec::new();
    walk("", &toml::Value::try_from(&s).unwrap(), &mut out);
    for extra in [
        "workload.trace",
        "workload.sessions.users",
        "hardware.calibration.min_kernel_time",
        "hardware.calibration.cpu_overhead_base",
        "cluster.prefill.device",
        "clustr.replicas",
        "workload",
        "",
    ] {
        out.push(extra.to_string());
    }
    out
}

/// Values chosen to sit on boundaries, names the keys take, and random ones.
fn value() -> impl Strategy<Value = String> {
    let fixed: Vec<&str> = vec![
        "0",
        "-1",
        "1",
        "2",
        "3",
        "7",
        "64",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "-9223372036854775808",
        "1e308",
        "-1e308",
        "1e-300",
        "5e-324",
        "nan",
        "inf",
        "-inf",
        "-0.0",
        "0.5",
        "1.5",
        "0.999999",
        "true",
        "false",
        "\"\"",
        "\"x\"",
        "[]",
        "[0]",
        "[1, 2]",
        "{}",
        "{ kind = \"fixed\", value = 0 }",
        "\"vllm\"",
        "\"vllm-v1\"",
        "\"sglang\"",
        "\"sarathi\"",
        "\"orca\"",
        "\"lightllm\"",
        "\"laps\"",
        "\"vtc\"",
        "\"fastertransformer\"",
        "\"round-robin\"",
        "\"least-kv\"",
        "\"power-of-two\"",
        "\"predictive\"",
        "\"session-affinity\"",
        "\"disaggregated\"",
        "\"semi-pd\"",
        "\"colocated\"",
        "\"H100-SXM\"",
        "\"A100-40GB\"",
        "\"H200\"",
        "\"Llama-3-70B\"",
        "\"Mixtral-8x7B\"",
        "\"sessions\"",
        "\"system\"",
        "\"trace\"",
        "\"gamma\"",
        "\"zipf\"",
        "\"lognormal\"",
        "\"uniform\"",
        "\"profile\"",
        "\"swap\"",
        "\"/dev/zero\"",
        "\"/nonexistent.csv\"",
        "\"fp8\"",
        "\"int4\"",
    ];
    prop_oneof![
        3 => proptest::sample::select(fixed).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => (-1e6f64..1e6).prop_map(|v| format!("{v}")),
        1 => "\"[a-z0-9.-]{0,10}\"",
    ]
}

/// `--set` overrides on the built-in scenario.
#[test]
fn fuzz_set_overrides() {
    let keys = keys();
    let tally = Tally::default();
    let strategy = proptest::collection::vec((proptest::sample::select(keys), value()), 1..4);
    runner()
        .run(&strategy, |sets| {
            let sets: Vec<String> = sets.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            tally.timed(&|| format!("{sets:?}"), || {
                if let Ok(s) = scenario::load(None, &sets) {
                    plan_and_run(s, &tally);
                }
            });
            Ok(())
        })
        .unwrap();
    tally.report("set_overrides");
}

/// One edit of a text input.
#[derive(Debug, Clone)]
enum Edit {
    /// Flip bits of the byte at a fraction of the length.
    Flip(f64, u8),
    /// Insert a boundary token at a fraction of the length.
    Insert(f64, &'static str),
    /// Delete a range (start fraction, length).
    Delete(f64, usize),
    /// Duplicate the line at a fraction of the line count.
    DuplicateLine(f64),
    /// Replace the value after `=` on a line with a generated one.
    Value(f64, String),
    /// Keep only a prefix.
    Truncate(f64),
}

const TOKENS: &[&str] = &[
    "-1",
    "0",
    "1e9",
    "1e400",
    "9999999999999999999",
    "-0",
    "nan",
    ",",
    ",,",
    "\n",
    "\r\n",
    "\"",
    "{",
    "}",
    "[",
    "]",
    ":",
    "=",
    "2023-02-31",
    "-1:-1:-1",
    " 24:00:00",
    "\u{feff}",
    "\u{0}",
    "é",
    "[[model]]\n",
    "[search]\n",
    "count = 0\n",
    "hash_ids",
    "null",
    "true",
];

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let frac = 0.0f64..1.0;
    let edit = prop_oneof![
        (frac.clone(), any::<u8>()).prop_map(|(f, b)| Edit::Flip(f, b)),
        (frac.clone(), proptest::sample::select(TOKENS)).prop_map(|(f, t)| Edit::Insert(f, t)),
        (frac.clone(), 1usize..40).prop_map(|(f, n)| Edit::Delete(f, n)),
        frac.clone().prop_map(Edit::DuplicateLine),
        (frac.clone(), value()).prop_map(|(f, v)| Edit::Value(f, v)),
        frac.prop_map(Edit::Truncate),
    ];
    // No edit at all (the seed itself) now and then: valid inputs reach the
    // simulation too.
    proptest::collection::vec(edit, 0..5)
}

fn at(f: f64, len: usize) -> usize {
    ((f * len as f64) as usize).min(len)
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        match e {
            Edit::Flip(f, x) => {
                if !b.is_empty() {
                    let i = at(*f, b.len() - 1);
                    b[i] ^= x | 1;
                }
            }
            Edit::Insert(f, t) => {
                let i = at(*f, b.len());
                b.splice(i..i, t.bytes());
            }
            Edit::Delete(f, n) => {
                let i = at(*f, b.len());
                b.drain(i..(i + n).min(b.len()));
            }
            Edit::DuplicateLine(f) | Edit::Value(f, _) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                if lines.is_empty() {
                    continue;
                }
                let i = at(*f, lines.len() - 1);
                match e {
                    Edit::Value(_, v) => {
                        if let Some((k, _)) = lines[i].split_once('=') {
                            lines[i] = format!("{k}= {v}");
                        }
                    }
                    _ => {
                        let l = lines[i].clone();
                        lines.insert(i, l);
                    }
                }
                b = (lines.join("\n") + "\n").into_bytes();
            }
            Edit::Truncate(f) => b.truncate(at(*f, b.len())),
        }
    }
    b
}

/// Writes `seed` with `edits` applied into `dir` under the seed's name;
/// returns (the seed's path, the mutant's path).
fn write_mutant<'a>(seed: &'a (PathBuf, Vec<u8>), dir: &Path, edits: &[Edit]) -> (&'a Path, PathBuf) {
    let file = dir.join(seed.0.file_name().unwrap());
    std::fs::write(&file, apply(&seed.1, edits)).unwrap();
    (&seed.0, file)
}

fn seeds(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| keep(p))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seeds in {}", dir.display());
    v
}

/// Mutated traces of every format, read and replayed on the built-in scenario.
#[test]
fn fuzz_trace_readers() {
    let corpus = seeds(&Path::new(ROOT).join("fuzz/corpus/traces"), |_| true);
    let formats = ["auto", "vidur", "azure", "burstgpt", "apex", "mooncake"];
    let dir = tempfile::tempdir().unwrap();
    let tally = Tally::default();
    let strategy = (0..corpus.len(), edits(), 0..formats.len(), any::<bool>());
    runner()
        .run(&strategy, |(seed, edits, format, forced)| {
            let (path, file) = write_mutant(&corpus[seed], dir.path(), &edits);
            let mut sets = vec![format!("workload.trace=\"{}\"", file.display())];
            if forced {
                sets.push(format!("workload.trace_format={}", formats[format]));
            }
            let input = || format!("{sets:?} on {}: {edits:?}", path.display());
            tally.timed(&input, || {
                if let Ok(s) = scenario::load(None, &sets) {
                    plan_and_run(s, &tally);
                }
            });
            Ok(())
        })
        .unwrap();
    tally.report("trace_readers");
}

/// Mutated scenario files (the examples, search spaces left to the next
/// target), loaded, planned and run.
#[test]
fn fuzz_scenario_files() {
    let corpus = seeds(&Path::new(ROOT).join("examples"), |p| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.ends_with(".toml") && !name.contains("search")
    });
    let dir = tempfile::tempdir().unwrap();
    let tally = Tally::default();
    runner()
        .run(&(0..corpus.len(), edits()), |(seed, edits)| {
            let (path, file) = write_mutant(&corpus[seed], dir.path(), &edits);
            let input = || format!("{}: {edits:?}", path.display());
            tally.timed(&input, || {
                if let Ok(s) = scenario::load(Some(&file), &[]) {
                    plan_and_run(s, &tally);
                }
            });
            Ok(())
        })
        .unwrap();
    tally.report("scenario_files");
}

/// Mutated training scenarios (`examples/train`), loaded, planned and
/// simulated: an error or a report, never a panic or a hang.
#[test]
fn fuzz_training_files() {
    let corpus = seeds(&Path::new(ROOT).join("examples/train"), |p| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.ends_with(".toml") && !name.contains("search") && !name.contains("catalog")
    });
    let dir = tempfile::tempdir().unwrap();
    let tally = Tally::default();
    runner()
        .run(&(0..corpus.len(), edits()), |(seed, edits)| {
            let (path, file) = write_mutant(&corpus[seed], dir.path(), &edits);
            let input = || format!("{}: {edits:?}", path.display());
            tally.timed(&input, || {
                if let Ok(s) = fleetsim::scenario::load::load_training(Some(&file), &[])
                    && let Ok(plan) = fleetsim::train::run::plan(&s)
                    && fleetsim::train::run::simulate(&plan).is_ok()
                {
                    tally.simulated.fetch_add(1, Ordering::Relaxed);
                }
            });
            Ok(())
        })
        .unwrap();
    tally.report("training_files");
}

/// Mutated search spaces, loaded and enumerated (every plan validated and
/// pruned with a reason); the smallest are searched.
#[test]
fn fuzz_search_spaces() {
    let mut corpus = seeds(&Path::new(ROOT).join("fuzz/corpus/spaces"), |_| true);
    corpus.extend(seeds(&Path::new(ROOT).join("examples"), |p| {
        p.file_name().unwrap().to_string_lossy().contains("search")
    }));
    let dir = tempfile::tempdir().unwrap();
    let tally = Tally::default();
    let searched = AtomicU64::new(0);
    runner()
        .run(&(0..corpus.len(), edits()), |(seed, edits)| {
            let (path, file) = write_mutant(&corpus[seed], dir.path(), &edits);
            let input = || format!("{}: {edits:?}", path.display());
            tally.timed(&input, || {
                let Ok(mut space) = fleetsim::search::load(&file, &[]) else {
                    return;
                };
                let Ok(en) = fleetsim::search::space::enumerate(&space) else {
                    return;
                };
                if en.candidates.len() <= 8 && space.base.workload.trace.is_none() {
                    space.base.workload.count = space.base.workload.count.clamp(1, 40);
                    space.search.rate.tolerance = space.search.rate.tolerance.max(0.2);
                    if fleetsim::search::run(&space, None, &|_| {}).is_ok() {
                        searched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            Ok(())
        })
        .unwrap();
    tally
        .simulated
        .store(searched.load(Ordering::Relaxed), Ordering::Relaxed);
    tally.report("search_spaces");
}
