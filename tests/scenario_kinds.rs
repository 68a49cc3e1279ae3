//! Every scenario key that takes one of a fixed list of names (the enums of
//! `scenario::kinds`): each name loads, from a file and from `--set`, and
//! writes back as the same text; a misspelled name fails when the scenario
//! is *loaded* (not planned), naming the key, suggesting the intended name
//! and listing every name. The names are written out here on purpose: they
//! are user interface, so renaming, dropping or adding one must fail a test.

use fleetsim::scenario::kinds::Kind;
use fleetsim::scenario::{self, Scenario};
use fleetsim::search::space;

/// One key: its dotted name, every valid name in order, how to read it back
/// from a loaded scenario, and a misspelling with the name it should suggest.
struct Key {
    key: &'static str,
    names: &'static [&'static str],
    get: fn(&Scenario) -> Option<&'static str>,
    typo: &'static str,
    meant: &'static str,
}

const LENGTHS: &[&str] = &["fixed", "uniform", "lognormal", "zipf", "trace"];

fn keys() -> Vec<Key> {
    vec![
        Key {
            key: "cluster.mode",
            names: &["colocated", "disaggregated", "semi-pd"],
            get: |s| Some(s.cluster.mode.name()),
            typo: "disagregated",
            meant: "disaggregated",
        },
        Key {
            key: "cluster.decode_router",
            names: &["least-kv", "least-outstanding"],
            get: |s| Some(s.cluster.decode_router.name()),
            typo: "least-kvv",
            meant: "least-kv",
        },
        Key {
            key: "cluster.kv_link",
            names: &["auto", "intra-node", "inter-node"],
            get: |s| Some(s.cluster.kv_link.name()),
            typo: "intra_node",
            meant: "intra-node",
        },
        Key {
            key: "scheduler.preemption",
            names: &["recompute", "swap"],
            get: |s| Some(s.scheduler.preemption.name()),
            typo: "swapp",
            meant: "swap",
        },
        Key {
            key: "scheduler.output_estimate",
            names: &["max", "oracle"],
            get: |s| Some(s.scheduler.output_estimate.name()),
            typo: "oracel",
            meant: "oracle",
        },
        Key {
            key: "workload.trace_format",
            names: &["auto", "vidur", "apex", "azure", "mooncake", "burstgpt"],
            get: |s| Some(s.workload.trace_format.name()),
            typo: "moncake",
            meant: "mooncake",
        },
        Key {
            key: "workload.arrivals.kind",
            names: &["poisson", "gamma", "constant", "trace"],
            get: |s| s.workload.arrivals.kind.map(Kind::name),
            typo: "poison",
            meant: "poisson",
        },
        Key {
            key: "workload.prompt.kind",
            names: LENGTHS,
            get: |s| s.workload.prompt.kind.map(Kind::name),
            typo: "lognormall",
            meant: "lognormal",
        },
        Key {
            key: "workload.output.kind",
            names: LENGTHS,
            get: |s| s.workload.output.kind.map(Kind::name),
            typo: "zipff",
            meant: "zipf",
        },
        Key {
            key: "workload.sessions.turns.kind",
            names: LENGTHS,
            get: |s| s.workload.sessions.as_ref()?.turns.kind.map(Kind::name),
            typo: "fixd",
            meant: "fixed",
        },
        Key {
            key: "workload.sessions.new_tokens.kind",
            names: LENGTHS,
            get: |s| {
                let n = s.workload.sessions.as_ref()?.new_tokens.as_ref()?;
                n.kind.map(Kind::name)
            },
            typo: "unifrom",
            meant: "uniform",
        },
        Key {
            key: "workload.sessions.think_time.kind",
            names: &["fixed", "exponential", "uniform", "lognormal"],
            get: |s| Some(s.workload.sessions.as_ref()?.think_time.kind.name()),
            typo: "expo",
            meant: "exponential",
        },
        Key {
            key: "workload.prefix.kind",
            names: &["auto", "none", "system", "sessions", "trace"],
            get: |s| Some(s.workload.prefix.kind.name()),
            typo: "sytem",
            meant: "system",
        },
    ]
}

fn load(sets: &[String]) -> fleetsim::Result<Scenario> {
    scenario::load(None, sets)
}

/// The value at a dotted key of a TOML table.
fn lookup<'a>(t: &'a toml::Table, dotted: &str) -> Option<&'a toml::Value> {
    let (head, rest) = dotted.split_once('.').unwrap_or((dotted, ""));
    let v = t.get(head)?;
    if rest.is_empty() {
        Some(v)
    } else {
        lookup(v.as_table()?, rest)
    }
}

#[test]
fn every_name_loads_from_a_file_and_from_set_and_writes_back_the_same() {
    let d = tempfile::tempdir().unwrap();
    for k in keys() {
        for &name in k.names {
            let from_set = load(&[format!("{}={name}", k.key)])
                .unwrap_or_else(|e| panic!("--set {}={name}: {e}", k.key));
            assert_eq!((k.get)(&from_set), Some(name), "--set {}={name}", k.key);

            // A dotted key at the top of a file is the same key.
            let f = d.path().join("s.toml");
            std::fs::write(&f, format!("{} = \"{name}\"\n", k.key)).unwrap();
            let from_file = scenario::load(Some(&f), &[]).unwrap_or_else(|e| panic!("{}: {e}", k.key));
            assert_eq!((k.get)(&from_file), Some(name), "{} in a file", k.key);

            // Written out (as best.toml is), the key holds the same string,
            // and the text reads back as the same scenario.
            let text = toml::to_string(&from_set).unwrap();
            let table: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(
                lookup(&table, k.key).and_then(|v| v.as_str()),
                Some(name),
                "{} written as {text}",
                k.key
            );
            let back: Scenario = toml::from_str(&text).unwrap();
            assert_eq!(back, from_set, "{}={name} round trip", k.key);
        }
    }
}

#[test]
fn a_misspelled_name_set_on_the_command_line_fails_at_load_naming_the_override() {
    for k in keys() {
        let set = format!("{}={}", k.key, k.typo);
        let e = load(std::slice::from_ref(&set)).expect_err(&set).to_string();
        assert_eq!(
            e,
            format!(
                "--set {set}: key `{}`: unknown value `{}` (did you mean `{}`?); expected one of: {}",
                k.key,
                k.typo,
                k.meant,
                k.names.join(", ")
            )
        );
    }
}

#[test]
fn a_misspelled_name_in_a_file_fails_at_load_with_file_line_and_key() {
    let d = tempfile::tempdir().unwrap();
    for k in keys() {
        // The key's last part under its section's header, on line 3.
        let (section, leaf) = k.key.rsplit_once('.').expect("every key is in a section");
        let text = format!("name = \"typo\"\n[{section}]\n{leaf} = \"{}\"\n", k.typo);
        let f = d.path().join("typo.toml");
        std::fs::write(&f, &text).unwrap();
        let e = scenario::load(Some(&f), &[]).expect_err(&text).to_string();
        assert_eq!(
            e,
            format!(
                "{}: line 3: key `{}`: unknown value `{}` (did you mean `{}`?); expected one of: {}",
                f.display(),
                k.key,
                k.typo,
                k.meant,
                k.names.join(", ")
            )
        );
    }
}

/// The other shapes of a bad value: nothing close (no suggestion), a value
/// that is not a string, and a bad name in an inline table; an override on
/// top of a file whose own key is wrong is blamed on the file.
#[test]
fn far_names_non_strings_and_inline_tables_are_reported_too() {
    let e = load(&["cluster.kv_link=xyz".into()]).unwrap_err().to_string();
    assert_eq!(
        e,
        "--set cluster.kv_link=xyz: key `cluster.kv_link`: unknown value `xyz`; \
         expected one of: auto, intra-node, inter-node"
    );
    let e = load(&["scheduler.preemption=3".into()]).unwrap_err().to_string();
    assert_eq!(
        e,
        "--set scheduler.preemption=3: key `scheduler.preemption`: expected one of: recompute, swap, \
         found the number 3"
    );
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("inline.toml");
    std::fs::write(
        &f,
        "[workload]\ncount = 5\narrivals = { rate = 2.0, kind = \"gama\" }\n",
    )
    .unwrap();
    let e = scenario::load(Some(&f), &["workload.count=7".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: line 3: key `workload.arrivals.kind`: unknown value `gama` (did you mean `gamma`?); \
             expected one of: poisson, gamma, constant, trace",
            f.display()
        )
    );
}

/// The default scenario writes each of these keys exactly as before they
/// were enums (what `best.toml` and the search fingerprint contain).
#[test]
fn the_default_scenario_writes_its_defaults_by_name() {
    let text = toml::to_string(&Scenario::default()).unwrap();
    for line in [
        "mode = \"colocated\"",
        "decode_router = \"least-kv\"",
        "kv_link = \"auto\"",
        "preemption = \"recompute\"",
        "output_estimate = \"max\"",
        "trace_format = \"auto\"",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
    }
    let table: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        lookup(&table, "workload.prefix.kind").and_then(|v| v.as_str()),
        Some("auto")
    );
    // Unset kinds (`None`: chosen by whether there is a trace) stay unwritten.
    assert!(lookup(&table, "workload.arrivals.kind").is_none());
    assert!(lookup(&table, "workload.prompt.kind").is_none());
    let sessions = load(&["workload.sessions.users=1".into()]).unwrap();
    let table: toml::Table = toml::from_str(&toml::to_string(&sessions).unwrap()).unwrap();
    assert_eq!(
        lookup(&table, "workload.sessions.think_time.kind").and_then(|v| v.as_str()),
        Some("exponential")
    );
    assert_eq!(
        lookup(&table, "workload.sessions.turns.kind").and_then(|v| v.as_str()),
        Some("fixed")
    );
}

/// `search.objective` (in a search-space file): every name loads; a
/// misspelling names the key, in the file and with `--set`.
#[test]
fn search_objectives_load_by_name_and_misspellings_name_the_key() {
    let d = tempfile::tempdir().unwrap();
    let names = ["per_dollar", "per_gpu", "per_watt", "capacity"];
    for name in names {
        let text = format!("[search]\ngpu_budget = 1\nobjective = \"{name}\"\n");
        let sp = space::from_text(&text, "space.toml", d.path(), &[]).unwrap();
        assert_eq!(sp.search.objective.name(), name);
        let sp = space::from_text(
            "[search]\ngpu_budget = 1\n",
            "space.toml",
            d.path(),
            &[format!("search.objective={name}")],
        )
        .unwrap();
        assert_eq!(sp.search.objective.name(), name);
    }
    let listed = names.join(", ");
    let e = space::from_text(
        "[search]\ngpu_budget = 1\nobjective = \"per_gpus\"\n",
        "space.toml",
        d.path(),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        format!(
            "space.toml: line 3: key `search.objective`: unknown value `per_gpus` \
             (did you mean `per_gpu`?); expected one of: {listed}"
        )
    );
    let e = space::from_text(
        "[search]\ngpu_budget = 1\n",
        "space.toml",
        d.path(),
        &["search.objective=per_gpus".into()],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        format!(
            "--set search.objective=per_gpus: key `search.objective`: unknown value `per_gpus` \
             (did you mean `per_gpu`?); expected one of: {listed}"
        )
    );
}
