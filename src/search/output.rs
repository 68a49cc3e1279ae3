//! What a search writes: `plans.jsonl` (one [`PlanResult`] per line, in plan
//! order once the search ends), `pareto.csv` (both frontiers), `best.toml`
//! (the best plan's scenario at its capacity, runnable with `fleetsim run`),
//! and the terminal table / JSON summary.
//!
//! Files are written to a temporary name and renamed, so an interrupted
//! search never leaves a half-written `pareto.csv` or `best.toml`; the
//! streamed `plans.jsonl` may end with a cut line, which a rerun discards.

use super::Outcome;
use super::rank::PlanResult;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One `plans.jsonl` line, newline included.
pub fn jsonl_line(r: &PlanResult) -> String {
    let mut s = serde_json::to_string(r).expect("plan results serialize");
    s.push('\n');
    s
}

/// Reads an existing `plans.jsonl`: results with space fingerprint `fp`
/// by key, and the number of other lines (other fingerprint or unreadable).
/// A missing file is empty.
pub fn read_jsonl(path: &Path, fp: &str) -> Result<(BTreeMap<String, PlanResult>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((BTreeMap::new(), 0)),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = BTreeMap::new();
    let mut discarded = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<PlanResult>(line) {
            Ok(r) if r.space == fp && r.key == r.params.key() => {
                out.insert(r.key.clone(), r);
            }
            _ => discarded += 1,
        }
    }
    Ok((out, discarded))
}

/// Writes `text` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    crate::output::atomic::write_bytes(path, text.as_bytes())
}

/// Rewrites `plans.jsonl` with `results` (in the given order).
pub fn write_jsonl(path: &Path, results: &[PlanResult]) -> Result<()> {
    let text: String = results.iter().map(jsonl_line).collect();
    write_atomic(path, &text)
}

/// `pareto.csv`: one row per plan on a frontier.
pub fn pareto_csv(o: &Outcome) -> String {
    let mut s = String::from(
        "frontier,plan,device,tp,pp,replicas,gpus,scheduler,cost_per_hour,capacity_rps,ttft_ms_at_low,tpot_ms_at_low\n",
    );
    let find = |k: &String| o.results.iter().find(|r| &r.key == k);
    for (name, keys) in [
        ("cost_capacity", &o.pareto_cost_capacity),
        ("ttft_tpot", &o.pareto_latency),
    ] {
        for r in keys.iter().filter_map(find) {
            let p = &r.params;
            let _ = writeln!(
                s,
                "{name},{},{},{},{},{},{},{},{:.4},{:.6},{:.3},{:.3}",
                r.key,
                p.device,
                p.tp,
                p.pp,
                p.replicas,
                r.gpus,
                p.scheduler,
                r.cost_per_hour,
                r.capacity_rps,
                r.ttft_ms_at_low,
                r.tpot_ms_at_low
            );
        }
    }
    s
}

/// `best.toml`: a comment header and the best plan's scenario.
pub fn best_toml(o: &Outcome) -> Option<String> {
    let (r, sc) = (o.best()?, o.best_scenario.as_ref()?);
    let body = toml::to_string(sc).ok()?;
    Some(format!(
        "# The best plan of `fleetsim search {}` ({}), at its capacity of {} requests/s\n\
         # (SLO met there; the first rate seen to miss it: {}).\n\
         #   fleetsim run best.toml\n{body}",
        o.space,
        if o.target_rate > 0.0 {
            format!("cheapest reaching {} req/s", o.target_rate)
        } else {
            format!("objective {}", o.objective)
        },
        r.capacity_rps,
        r.first_fail_rps
            .map_or_else(|| "none".to_string(), |f| format!("{f} requests/s")),
    ))
}

/// Writes the final `plans.jsonl` (sorted), `pareto.csv` and `best.toml`
/// (removing a stale `best.toml` when no plan has capacity).
pub fn write_all(dir: &Path, o: &Outcome) -> Result<()> {
    let [plans, pareto, best] = super::output_files(dir);
    write_jsonl(&plans, &o.results)?;
    write_atomic(&pareto, &pareto_csv(o))?;
    match best_toml(o) {
        Some(t) => write_atomic(&best, &t),
        None => match std::fs::remove_file(&best) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&best, e)),
            _ => Ok(()),
        },
    }
}

/// The terminal summary: counts, pruning reasons, the top plans, frontiers.
pub fn table(o: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} candidate plans, {} pruned, {} searched ({} simulated, {} reused from plans.jsonl)",
        o.space,
        o.considered,
        o.considered - o.results.len(),
        o.results.len(),
        o.simulated,
        o.reused
    );
    for p in &o.pruned {
        let _ = writeln!(
            s,
            "  pruned {:>5}: {} (e.g. {}: {})",
            p.count, p.reason, p.example, p.example_reason
        );
    }
    let _ = writeln!(
        s,
        "rate search: {} requests per probe, from {:.4} to {:.4} req/s, tolerance {}%",
        o.requests_per_probe,
        o.rate_low,
        o.rate_high,
        o.tolerance * 100.0
    );
    let failing = o.results.iter().filter(|r| r.capacity_rps == 0.0).count();
    if failing > 0 {
        let _ = writeln!(
            s,
            "{failing} plans miss the SLO even at {:.4} req/s (status fails_at_low)",
            o.rate_low
        );
    }
    let limited = o.results.iter().filter(|r| r.count_limited).count();
    if limited > 0 {
        let _ = writeln!(
            s,
            "{limited} plans are count_limited: {} requests arrive too fast at their first failing rate to \
             show a steady state: their capacity is bounded by the request count, not measured (raise workload.count)",
            o.requests_per_probe
        );
    }
    let ranking: Vec<&PlanResult> = o
        .ranking
        .iter()
        .filter_map(|k| o.results.iter().find(|r| &r.key == k))
        .collect();
    let order = if o.target_rate > 0.0 {
        format!("cheapest with capacity ≥ {} req/s", o.target_rate)
    } else {
        format!("by {}", o.objective)
    };
    let _ = writeln!(s, "\ntop plans ({order}):");
    let _ = writeln!(
        s,
        "{:>3}  {:<10} {:>3} {:>3} {:>3} {:>4}  {:<8} {:>5} {:>6} {:>5}  {:>10} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9}  status",
        "#",
        "device",
        "tp",
        "pp",
        "dp",
        "gpus",
        "sched",
        "seqs",
        "tokens",
        "chunk",
        "cap req/s",
        "req/s/GPU",
        "req/$",
        "req/kWh",
        "$/h",
        "TTFT ms",
        "TPOT ms",
    );
    for (i, r) in ranking.iter().take(o.top).enumerate() {
        let p = &r.params;
        let _ = writeln!(
            s,
            "{:>3}  {:<10} {:>3} {:>3} {:>3} {:>4}  {:<8} {:>5} {:>6} {:>5}  {:>10.3} {:>9.3} {:>9.0} {:>9.0} {:>8.2} {:>9.1} {:>9.2}  {}",
            i + 1,
            p.device,
            p.tp,
            p.pp,
            if p.prefill_replicas > 0 {
                format!("{}P{}D", p.prefill_replicas, p.replicas - p.prefill_replicas)
            } else {
                p.replicas.to_string()
            },
            r.gpus,
            p.scheduler,
            p.max_num_seqs
                .map_or_else(|| "auto".to_string(), |q| q.to_string()),
            p.max_num_batched_tokens
                .map_or_else(|| "auto".to_string(), |t| t.to_string()),
            p.chunk_size,
            r.capacity_rps,
            r.capacity_per_gpu,
            r.requests_per_dollar,
            r.requests_per_kwh,
            r.cost_per_hour,
            r.ttft_ms_at_capacity.unwrap_or(0.0),
            r.tpot_ms_at_capacity.unwrap_or(0.0),
            if r.count_limited {
                "count_limited"
            } else {
                r.status.name()
            }
        );
    }
    if ranking.is_empty() {
        let _ = writeln!(s, "  (no plan meets the SLO)");
    }
    let _ = writeln!(s, "\nPareto frontier, cost vs capacity:");
    for k in &o.pareto_cost_capacity {
        if let Some(r) = o.results.iter().find(|r| &r.key == k) {
            let _ = writeln!(
                s,
                "  {:>8.2} $/h  {:>10.3} req/s  {}",
                r.cost_per_hour, r.capacity_rps, k
            );
        }
    }
    let _ = writeln!(s, "Pareto frontier, TTFT vs TPOT at {:.4} req/s:", o.rate_low);
    for k in &o.pareto_latency {
        if let Some(r) = o.results.iter().find(|r| &r.key == k) {
            let _ = writeln!(
                s,
                "  TTFT {:>9.1} ms  TPOT {:>8.2} ms  {}",
                r.ttft_ms_at_low, r.tpot_ms_at_low, k
            );
        }
    }
    if let Some(b) = o.best() {
        let _ = writeln!(
            s,
            "\nbest: {} — {:.3} req/s{}",
            b.key,
            b.capacity_rps,
            if b.count_limited {
                " (count_limited: a lower bound set by workload.count, not a measured capacity; raise workload.count)"
            } else {
                ""
            }
        );
    }
    s
}

/// The JSON summary printed by `--format json`.
pub fn to_json(o: &Outcome) -> String {
    serde_json::to_string_pretty(o).expect("search outcome serializes")
}

/// The data of the search's HTML report (`--report`): ranked plans best
/// first (then the plans without capacity), Pareto membership on cost vs capacity.
pub fn report_input(o: &Outcome) -> crate::output::report::SearchInput {
    use crate::output::report::{SearchInput, SearchPlan};
    let front: std::collections::BTreeSet<&str> = o.pareto_cost_capacity.iter().map(String::as_str).collect();
    let mut order: Vec<&PlanResult> = o
        .ranking
        .iter()
        .filter_map(|k| o.results.iter().find(|r| &r.key == k))
        .collect();
    order.extend(o.results.iter().filter(|r| !o.ranking.contains(&r.key)));
    SearchInput {
        title: format!("fleetsim search: {}", o.space),
        facts: vec![
            ("Plans considered".into(), o.considered.to_string()),
            (
                "Pruned".into(),
                o.pruned.iter().map(|p| p.count).sum::<usize>().to_string(),
            ),
            (
                "Simulated / reused".into(),
                format!("{} / {}", o.simulated, o.reused),
            ),
            ("Requests per probe".into(), o.requests_per_probe.to_string()),
            (
                "Rate bracket".into(),
                format!(
                    "{} – {} req/s, tolerance {}",
                    o.rate_low, o.rate_high, o.tolerance
                ),
            ),
            ("Objective".into(), o.objective.to_string()),
        ],
        cost_unit: "USD/h".into(),
        plans: order
            .iter()
            .map(|r| SearchPlan {
                name: r.key.clone(),
                gpus: r.gpus,
                cost: r.cost_per_hour,
                capacity_rps: r.capacity_rps,
                ttft_ms: r.ttft_ms_at_capacity.unwrap_or(r.ttft_ms_at_low),
                tpot_ms: r.tpot_ms_at_capacity.unwrap_or(r.tpot_ms_at_low),
                pareto: front.contains(r.key.as_str()),
            })
            .collect(),
        top: o.top,
    }
}
