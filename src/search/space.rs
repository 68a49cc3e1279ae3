//! The search-space file (`SPACE.toml`) and the candidate plans it spans.
//!
//! # File format
//!
//! A search-space file is a scenario file (the same keys as `fleetsim run`
//! takes: `[model]`, `[hardware]`, `[cluster]`, `[scheduler]`, `[workload]`,
//! `[slo]`, ...) plus one `[search]` section. The scenario is the *base*:
//! every candidate plan is the base with its device, `cluster.tp`,
//! `cluster.pp`, `cluster.replicas` and scheduler knobs replaced, and its
//! arrival rate varied by the capacity search. `[slo]` is the objective every
//! plan must meet. The `[search]` keys (all optional) are those of
//! [`SearchConfig`]; an unknown key is an error naming it with the closest
//! valid key.
//!
//! ```toml
//! [model]
//! name = "Llama-3-70B"
//! [slo]
//! ttft = 2.0
//! tpot = 0.1
//! percentile = 90
//! [search]
//! gpu_budget = 8
//! tp = [1, 2, 4, 8]
//! pp = [1, 2, 4]
//! [[search.devices]]
//! name = "H100-SXM"
//! price_per_hour = 2.5       # default: the catalog's price
//! [[search.schedulers]]
//! kind = "vllm"
//! max_num_seqs = [64, 128, 256]
//! [search.rate]
//! tolerance = 0.02
//! ```
//!
//! # Candidates and pruning
//!
//! Candidates are the Cartesian product devices × tp × pp × replicas ×
//! scheduler settings (each `[[search.schedulers]]` entry is the product of
//! its knob lists), deduplicated. A candidate is *pruned* (not simulated)
//! when it uses more devices than `gpu_budget`, when `tp` does not divide the
//! model's attention heads or neither divides the KV heads, when `pp` does
//! not divide the layers (we only model even pipeline stages for planning),
//! or when [`validate::plan`] rejects it (the model does not fit in memory,
//! an impossible scheduler setting, ...). Pruned candidates are counted by
//! reason.

use super::rank::Objective;
use crate::catalog::{Catalog, ModelSpec};
use crate::error::{Error, Result};
use crate::scenario::{self, ClusterMode, Scenario, validate};
use crate::units::did_you_mean;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `[search]` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Device types to try (default: the base scenario's `hardware.device`
    /// at its catalog price and power).
    pub devices: Vec<DeviceChoice>,
    /// Most devices a plan may use (tp × pp × replicas); 0 = no limit.
    pub gpu_budget: u32,
    /// Tensor-parallel degrees to try (default: the base `cluster.tp`).
    pub tp: Vec<u32>,
    /// Pipeline-parallel degrees to try (default: the base `cluster.pp`).
    pub pp: Vec<u32>,
    /// Replica counts to try. Default: every count from 1 to
    /// `gpu_budget / (tp × pp)` (needs `gpu_budget`).
    pub replicas: Vec<u32>,
    /// Scheduler settings to try (default: the base `[scheduler]`).
    pub schedulers: Vec<SchedulerChoice>,
    /// Ranking ([`Objective`]: "per_dollar", capacity per $/h, the
    /// default; "per_gpu", "per_watt" or "capacity").
    pub objective: Objective,
    /// When > 0 (requests/s): the best plan is the cheapest one (lowest $/h)
    /// whose capacity reaches this rate, instead of the best by `objective`.
    pub target_rate: f64,
    /// Goodput target: when > 0, a plan meets the SLO at a rate only if this
    /// fraction of all requests (0–1] met every `[slo]` threshold
    /// (DistServe's SLO attainment), in addition to the percentile checks.
    pub min_attainment: f64,
    /// Rows in the printed table of top plans.
    pub top: usize,
    /// The rate search of every plan.
    pub rate: RateConfig,
    /// Prefill/decode splits to try: each entry `k` > 0 makes a plan's
    /// replicas `k` prefill replicas and `replicas − k` decode replicas
    /// (`cluster.mode = "disaggregated"`, both pools with the plan's device,
    /// TP and PP; DistServe's placement question); 0 = co-located. Default:
    /// co-located only.
    pub prefill_replicas: Vec<u32>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            devices: Vec::new(),
            gpu_budget: 0,
            tp: Vec::new(),
            pp: Vec::new(),
            replicas: Vec::new(),
            schedulers: Vec::new(),
            objective: Objective::PerDollar,
            target_rate: 0.0,
            min_attainment: 0.0,
            top: 10,
            rate: RateConfig::default(),
            prefill_replicas: Vec::new(),
        }
    }
}

/// One `[[search.devices]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceChoice {
    /// Catalog name or alias.
    pub name: String,
    /// USD per device-hour (default: the catalog's indicative price).
    pub price_per_hour: Option<f64>,
    /// Watts per device (default: the catalog's board power).
    pub power_watts: Option<f64>,
}

/// One `[[search.schedulers]]` entry: a kind and lists of knob values (an
/// empty or absent list keeps the base scenario's value).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerChoice {
    /// "vllm" or "sarathi" (default: the base `scheduler.kind`).
    pub kind: Option<String>,
    pub max_num_seqs: Vec<u32>,
    pub max_num_batched_tokens: Vec<u32>,
    pub chunk_size: Vec<u32>,
}

/// `[search.rate]`: how each plan's capacity is searched (see `capacity`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateConfig {
    /// First (lowest) rate probed, requests/s. 0 = the base workload's own
    /// rate (`workload.arrivals.rate`, or a trace's mean rate × `rate_scale`).
    pub low: f64,
    /// Highest rate probed; a plan still meeting the SLO there is reported
    /// as "above_high". 0 = 4096 × `low`.
    pub high: f64,
    /// Bisection stops when the first failing rate is within this relative
    /// distance of the last passing one (0.02 = 2 %).
    pub tolerance: f64,
    /// Most simulations per plan (bracketing plus bisection).
    pub max_probes: u32,
    /// A probe meets the SLO only if its arrivals span at least this many
    /// mean end-to-end latencies, so it shows a steady state (see `capacity`).
    pub min_window_latencies: f64,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            low: 0.0,
            high: 0.0,
            tolerance: 0.02,
            max_probes: 40,
            min_window_latencies: 5.0,
        }
    }
}

/// A search-space file, loaded: the base scenario and the search settings.
#[derive(Debug, Clone)]
pub struct Space {
    /// Where it came from (for messages).
    pub origin: String,
    pub base: Scenario,
    pub search: SearchConfig,
}

/// Loads a search-space file. `overrides` are `--set key=value`
/// assignments: keys under `search.` change the `[search]` section, all
/// others the base scenario.
pub fn load(path: &Path, overrides: &[String]) -> Result<Space> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    from_text(&text, &path.display().to_string(), &dir, overrides)
}

/// Like [`load`] for search-space text from `origin`, with relative paths
/// taken relative to `dir` (`fleetsim bench` uses it for built-in spaces).
pub fn from_text(text: &str, origin: &str, dir: &Path, overrides: &[String]) -> Result<Space> {
    let (text, origin) = (text.to_string(), origin.to_string());
    // Syntax errors (with a line number) come from the scenario parser below
    // for the scenario part; parse the whole file first for the rest.
    let whole: toml::Table = crate::scenario::load::parse_toml(&text, &origin)?;
    let (base_sets, search_sets): (Vec<String>, Vec<String>) = overrides
        .iter()
        .cloned()
        .partition(|o| !o.trim_start().starts_with("search."));

    // The scenario part: the text with the [search] section blanked out (so
    // line numbers still match), checked by the scenario loader.
    let blanked = blank_search_sections(&text);
    let base_table: toml::Table = toml::from_str(&blanked).unwrap_or_default();
    if base_table.contains_key("search") {
        return Err(Error::config(
            &origin,
            "write the search space as a `[search]` section (with `[search.rate]`, \
             `[[search.devices]]`... sub-tables), not as dotted `search.` keys or an inline table",
        ));
    }
    let table = scenario::load::parse_text(&blanked, &origin)?;
    let mut base = scenario::load::load_table(table, &origin, dir, &base_sets)?;
    absolute_paths(&mut base);

    let search = parse_search(&text, &whole, &origin, &search_sets)?;
    check(&search, &base)?;
    Ok(Space { origin, base, search })
}

/// Replaces every line of `[search]`, `[search.*]` and `[[search.*]]`
/// sections with an empty line.
fn blank_search_sections(text: &str) -> String {
    let mut in_search = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            let name = t.trim_start_matches('[').trim_start();
            in_search = name
                .strip_prefix("search")
                .is_some_and(|rest| rest.trim_start().starts_with(['.', ']']));
        }
        if !in_search {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Makes the base scenario's file paths absolute so `best.toml` (written
/// elsewhere) still finds them.
fn absolute_paths(s: &mut Scenario) {
    let abs = |p: &mut PathBuf| {
        if let Ok(a) = std::path::absolute(&*p) {
            *p = a;
        }
    };
    if let Some(p) = s.catalog.as_mut() {
        abs(p);
    }
    if let Some(p) = s.workload.trace.as_mut() {
        abs(p);
    }
    if let Some(p) = s.hardware.profile_dir.as_mut() {
        abs(p);
    }
}

/// Deserialises `[search]`: from the text when there are no overrides (so
/// errors carry line numbers), else from the overridden table.
fn parse_search(text: &str, whole: &toml::Table, origin: &str, sets: &[String]) -> Result<SearchConfig> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Only {
        search: SearchConfig,
    }
    let mut table = match whole.get("search") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t.clone(),
        Some(other) => {
            return Err(Error::config(
                origin,
                format!("`search` must be a section, found a {}", other.type_str()),
            ));
        }
    };
    if sets.is_empty() {
        return toml::from_str::<Only>(text).map(|o| o.search).map_err(|e| {
            let key = e.span().and_then(|s| scenario::load::key_at(text, s.start));
            Error::config(
                origin,
                format!(
                    "{}{}",
                    crate::scenario::load::location(text, e.span()),
                    explain(e.message(), key)
                ),
            )
        });
    }
    for s in sets {
        let rest = s.trim_start().trim_start_matches("search.");
        scenario::load::apply_override(&mut table, rest).map_err(|_| {
            Error::config(
                format!("--set {s}"),
                "expected search.KEY=VALUE, e.g. --set search.gpu_budget=8",
            )
        })?;
    }
    toml::Value::Table(table.clone())
        .try_into::<SearchConfig>()
        .map_err(|e| {
            let key = scenario::load::failing_key::<SearchConfig>(&table).map(|k| format!("search.{k}"));
            let context = scenario::load::set_by(key.as_deref(), sets)
                .unwrap_or_else(|| format!("{origin} with --set overrides"));
            Error::config(context, explain(e.message(), key))
        })
}

/// serde's "unknown field `x`, expected one of `a`, `b`" → our wording with
/// a hint; another message is prefixed with the dotted key it is about
/// (when known).
fn explain(message: &str, key: Option<String>) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        let message = crate::error::in_user_words(message);
        return match key {
            Some(k) => format!("key `{k}`: {message}"),
            None => format!("in [search]: {message}"),
        };
    };
    let Some(end) = rest.find('`') else {
        return message.to_string();
    };
    let name = &rest[..end];
    let expected: Vec<&str> = rest[end + 1..].split('`').skip(1).step_by(2).collect();
    format!(
        "unknown key `{name}` in [search]{}; valid keys there are: {}",
        did_you_mean(name, expected.iter().copied()),
        expected.join(", ")
    )
}

fn key_error(key: &str, message: impl Into<String>) -> Error {
    Error::config(format!("key `search.{key}`"), message)
}

/// The largest `search.gpu_budget` (a 64k-device fleet).
pub const MAX_GPU_BUDGET: u32 = 1 << 16;
/// The most plans a space may span before pruning: each is validated and
/// held in memory, and each that survives is simulated several times.
pub const MAX_PLANS: u64 = 100_000;

/// Checks values the schema cannot.
fn check(s: &SearchConfig, base: &Scenario) -> Result<()> {
    if s.gpu_budget > MAX_GPU_BUDGET {
        return Err(key_error(
            "gpu_budget",
            format!(
                "is {}, more than the {MAX_GPU_BUDGET} devices a search may span; search a slice of the fleet \
                 (throughput scales with replicas under a load-balancing router)",
                s.gpu_budget
            ),
        ));
    }
    if let Some(r) = s
        .replicas
        .iter()
        .find(|&&r| r > crate::scenario::validate::MAX_REPLICAS)
    {
        return Err(key_error(
            "replicas",
            format!(
                "lists {r}, more than the {} replicas a plan may have",
                crate::scenario::validate::MAX_REPLICAS
            ),
        ));
    }
    let plans = space_size(s, base);
    if plans > MAX_PLANS {
        return Err(key_error(
            "replicas",
            format!(
                "the space spans {plans} plans (devices × tp × pp × replica counts × scheduler settings × \
                 prefill splits), more than the {MAX_PLANS} a search may; list search.replicas or narrow \
                 the other lists"
            ),
        ));
    }
    for (key, list) in [("tp", &s.tp), ("pp", &s.pp), ("replicas", &s.replicas)] {
        if list.contains(&0) {
            return Err(key_error(key, "values must be at least 1, found 0"));
        }
    }
    if s.replicas.is_empty() && s.gpu_budget == 0 {
        return Err(key_error(
            "replicas",
            "is empty and there is no gpu_budget to derive it from: set search.gpu_budget \
             (replica counts 1..budget/(tp·pp) are tried) or list search.replicas",
        ));
    }
    let registry = crate::registry::Registry::builtin();
    for (i, sc) in s.schedulers.iter().enumerate() {
        if let Some(k) = &sc.kind {
            registry.scheduler(&format!("search.schedulers[{i}].kind"), k)?;
        }
    }
    for (i, d) in s.devices.iter().enumerate() {
        for (what, v) in [
            ("price_per_hour", d.price_per_hour),
            ("power_watts", d.power_watts),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(key_error(
                    &format!("devices[{i}].{what}"),
                    format!("must be > 0, found {v}"),
                ));
            }
        }
    }
    if !(s.target_rate.is_finite() && s.target_rate >= 0.0) {
        return Err(key_error(
            "target_rate",
            format!("must be ≥ 0 requests/s, found {}", s.target_rate),
        ));
    }
    if !(0.0..=1.0).contains(&s.min_attainment) {
        return Err(key_error(
            "min_attainment",
            format!("must be in [0, 1], found {}", s.min_attainment),
        ));
    }
    let r = &s.rate;
    for (key, v) in [("rate.low", r.low), ("rate.high", r.high)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(key_error(
                key,
                format!("must be ≥ 0 requests/s (0 = default), found {v}"),
            ));
        }
    }
    if r.high > 0.0 && r.low > 0.0 && r.high < r.low {
        return Err(key_error(
            "rate.high",
            format!("{} is below rate.low ({})", r.high, r.low),
        ));
    }
    if !(r.tolerance > 0.0 && r.tolerance < 1.0) {
        return Err(key_error(
            "rate.tolerance",
            format!("must be in (0, 1), found {}", r.tolerance),
        ));
    }
    if !(r.min_window_latencies.is_finite() && r.min_window_latencies >= 0.0) {
        return Err(key_error(
            "rate.min_window_latencies",
            format!("must be ≥ 0, found {}", r.min_window_latencies),
        ));
    }
    if r.max_probes < 2 {
        return Err(key_error(
            "rate.max_probes",
            format!("must be at least 2, found {}", r.max_probes),
        ));
    }
    if base.workload.duration > 0.0 {
        return Err(Error::config(
            "key `workload.duration`",
            "a capacity search keeps the request count fixed across rates: set workload.duration = 0 \
             and use workload.count",
        ));
    }
    Ok(())
}

/// The parameters that distinguish one candidate plan from another. The
/// derived order (device, tp, pp, replicas, scheduler, knobs) is the order
/// of every output file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PlanParams {
    /// Canonical catalog name.
    pub device: String,
    pub tp: u32,
    pub pp: u32,
    pub replicas: u32,
    pub scheduler: String,
    /// `None`: the engine's default (see `scenario::engine_profile`).
    pub max_num_seqs: Option<u32>,
    /// `None`: the scheduler's default.
    pub max_num_batched_tokens: Option<u32>,
    pub chunk_size: u32,
    /// Prefill replicas of a disaggregated plan (the rest decode); 0 = co-located.
    #[serde(default)]
    pub prefill_replicas: u32,
}

impl PlanParams {
    /// Devices the plan uses.
    pub fn gpus(&self) -> u32 {
        self.tp * self.pp * self.replicas
    }

    /// The canonical key of the plan (what `plans.jsonl` is keyed by), e.g.
    /// `H100-SXM tp=4 pp=1 dp=2 vllm seqs=128 tokens=auto chunk=512`.
    pub fn key(&self) -> String {
        format!(
            "{} tp={} pp={} dp={} {} seqs={} tokens={} chunk={}",
            self.device,
            self.tp,
            self.pp,
            self.replicas,
            self.scheduler,
            self.max_num_seqs
                .map_or_else(|| "auto".to_string(), |q| q.to_string()),
            self.max_num_batched_tokens
                .map_or_else(|| "auto".to_string(), |t| t.to_string()),
            self.chunk_size
        ) + &self.split_suffix()
    }

    /// " pd=P+D" for a disaggregated plan (empty when co-located, so the keys
    /// of co-located plans are unchanged).
    fn split_suffix(&self) -> String {
        if self.prefill_replicas > 0 {
            format!(
                " pd={}+{}",
                self.prefill_replicas,
                // A pruned split may leave no decode replica: "pd=3+0".
                self.replicas.saturating_sub(self.prefill_replicas)
            )
        } else {
            String::new()
        }
    }

    /// The base scenario with this plan's settings.
    pub fn scenario(&self, base: &Scenario) -> Scenario {
        let mut s = base.clone();
        s.hardware.device = self.device.clone();
        s.cluster.tp = self.tp;
        s.cluster.pp = self.pp;
        s.cluster.replicas = self.replicas;
        s.scheduler.kind = Some(self.scheduler.clone());
        s.scheduler.max_num_seqs = self.max_num_seqs;
        s.scheduler.max_num_batched_tokens = self.max_num_batched_tokens;
        s.scheduler.chunk_size = self.chunk_size;
        if self.prefill_replicas > 0 {
            s.cluster.mode = ClusterMode::Disaggregated;
            let pool = |replicas| crate::scenario::PoolConfig {
                device: Some(self.device.clone()),
                replicas,
                tp: self.tp,
                pp: self.pp,
            };
            s.cluster.prefill = pool(self.prefill_replicas);
            s.cluster.decode = pool(self.replicas - self.prefill_replicas);
        }
        s
    }
}

/// A candidate that survived pruning: ready to simulate.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub params: PlanParams,
    pub plan: validate::Plan,
    /// USD per device-hour and watts per device used for ranking.
    pub price_per_hour: f64,
    pub power_watts: f64,
}

/// The enumerated space: candidates to simulate and what was pruned.
#[derive(Debug, Clone)]
pub struct Enumerated {
    pub candidates: Vec<Candidate>,
    /// Candidates considered before pruning.
    pub considered: usize,
    /// Pruned counts by reason (digits replaced by `#` so that plans
    /// failing the same check group together), with the first plan key of
    /// each reason and that plan's reason in full.
    pub pruned: BTreeMap<String, (usize, String, String)>,
    /// The first pruned plan (in plan order): its key and full reason.
    pub first_pruned: Option<(String, String)>,
}

impl Enumerated {
    pub fn pruned_total(&self) -> usize {
        self.pruned.values().map(|(n, _, _)| n).sum()
    }
}

/// Enumerates and prunes the candidates of a space.
pub fn enumerate(space: &Space) -> Result<Enumerated> {
    let base = &space.base;
    let s = &space.search;
    let mut catalog = Catalog::builtin();
    if let Some(p) = &base.catalog {
        catalog.merge_file(p)?;
    }
    let model = catalog.model(&base.model.name)?.clone();
    let devices: Vec<(String, f64, f64)> = if s.devices.is_empty() {
        let d = catalog.device(&base.hardware.device)?;
        vec![(d.name.clone(), d.price_per_hour, d.power_watts)]
    } else {
        let mut v = Vec::new();
        for c in &s.devices {
            let d = catalog.device(&c.name)?;
            let price = c.price_per_hour.unwrap_or(d.price_per_hour);
            if price.is_nan() || price <= 0.0 {
                return Err(Error::config(
                    "key `search.devices`",
                    format!(
                        "device `{}` has no price in the catalog: set price_per_hour",
                        d.name
                    ),
                ));
            }
            v.push((d.name.clone(), price, c.power_watts.unwrap_or(d.power_watts)));
        }
        v
    };
    let or_base = |list: &[u32], b: u32| if list.is_empty() { vec![b] } else { list.to_vec() };
    let tps = or_base(&s.tp, base.cluster.tp);
    let pps = or_base(&s.pp, base.cluster.pp);
    let schedulers = scheduler_settings(s, base);
    let splits = if s.prefill_replicas.is_empty() {
        vec![0]
    } else {
        s.prefill_replicas.clone()
    };

    // Params → (price, power); BTreeMap deduplicates and fixes the order.
    let mut all: BTreeMap<PlanParams, (f64, f64)> = BTreeMap::new();
    for (device, price, power) in &devices {
        for &tp in &tps {
            for &pp in &pps {
                let reps: Vec<u32> = if s.replicas.is_empty() {
                    (1..=s.gpu_budget / (tp * pp).max(1)).collect()
                } else {
                    s.replicas.clone()
                };
                for &replicas in &reps {
                    for (kind, seqs, tokens, chunk) in &schedulers {
                        for &prefill_replicas in &splits {
                            let p = PlanParams {
                                device: device.clone(),
                                tp,
                                pp,
                                replicas,
                                scheduler: kind.clone(),
                                max_num_seqs: *seqs,
                                max_num_batched_tokens: *tokens,
                                chunk_size: *chunk,
                                prefill_replicas,
                            };
                            all.entry(p).or_insert((*price, *power));
                        }
                    }
                }
            }
        }
    }
    let considered = all.len();
    let mut pruned: BTreeMap<String, (usize, String, String)> = BTreeMap::new();
    let mut first_pruned = None;
    let mut candidates = Vec::new();
    for (params, (price, power)) in all {
        let reason = match structural(&params, &model, s.gpu_budget) {
            Some(r) => Some((r.clone(), r)),
            None => match validate::plan(&params.scenario(base)) {
                Ok(plan) => {
                    candidates.push(Candidate {
                        params: params.clone(),
                        plan,
                        price_per_hour: price,
                        power_watts: power,
                    });
                    None
                }
                Err(e) => Some((prune_reason(&e), e.to_string())),
            },
        };
        if let Some((group, full)) = reason {
            first_pruned.get_or_insert_with(|| (params.key(), full.clone()));
            let entry = pruned.entry(group).or_insert_with(|| (0, params.key(), full));
            entry.0 += 1;
        }
    }
    Ok(Enumerated {
        candidates,
        considered,
        pruned,
        first_pruned,
    })
}

/// Plans the space spans before deduplication and pruning (saturating).
fn space_size(s: &SearchConfig, base: &Scenario) -> u64 {
    let or_base = |list: &[u32], b: u32| if list.is_empty() { vec![b] } else { list.to_vec() };
    let mut shapes = 0u64;
    for &tp in &or_base(&s.tp, base.cluster.tp) {
        for &pp in &or_base(&s.pp, base.cluster.pp) {
            let reps = if s.replicas.is_empty() {
                u64::from(s.gpu_budget) / (u64::from(tp) * u64::from(pp)).max(1)
            } else {
                s.replicas.len() as u64
            };
            shapes = shapes.saturating_add(reps);
        }
    }
    shapes
        .saturating_mul(s.devices.len().max(1) as u64)
        .saturating_mul(scheduler_settings(s, base).len() as u64)
        .saturating_mul(s.prefill_replicas.len().max(1) as u64)
}

/// Every (kind, max_num_seqs, max_num_batched_tokens, chunk_size) the
/// `[[search.schedulers]]` entries span, in file order.
fn scheduler_settings(s: &SearchConfig, base: &Scenario) -> Vec<(String, Option<u32>, Option<u32>, u32)> {
    let b = &base.scheduler;
    let default = [SchedulerChoice::default()];
    let entries: &[SchedulerChoice] = if s.schedulers.is_empty() {
        &default
    } else {
        &s.schedulers
    };
    let mut out = Vec::new();
    for e in entries {
        // The base's scheduler, else its engine's own (a bad [engine] section
        // fails when the plan is validated).
        let engine_scheduler = base.engine.profile().ok().flatten().map(|p| p.scheduler);
        let kind = e.kind.clone().or_else(|| b.kind.clone()).unwrap_or_else(|| {
            engine_scheduler
                .unwrap_or(crate::scenario::engine_profile::DEFAULT_SCHEDULER)
                .to_string()
        });
        let seqs: Vec<Option<u32>> = if e.max_num_seqs.is_empty() {
            vec![b.max_num_seqs]
        } else {
            e.max_num_seqs.iter().map(|&q| Some(q)).collect()
        };
        let tokens: Vec<Option<u32>> = if e.max_num_batched_tokens.is_empty() {
            vec![b.max_num_batched_tokens]
        } else {
            e.max_num_batched_tokens.iter().map(|&t| Some(t)).collect()
        };
        let chunks = if e.chunk_size.is_empty() {
            vec![b.chunk_size]
        } else {
            e.chunk_size.clone()
        };
        for &q in &seqs {
            for &t in &tokens {
                for &c in &chunks {
                    out.push((kind.clone(), q, t, c));
                }
            }
        }
    }
    out
}

/// Cheap checks before `validate::plan`: budget and divisibility.
fn structural(p: &PlanParams, m: &ModelSpec, budget: u32) -> Option<String> {
    if budget > 0 && p.gpus() > budget {
        return Some(format!("uses more than the gpu_budget of {budget} devices"));
    }
    if p.prefill_replicas > 0 && p.prefill_replicas >= p.replicas {
        return Some("a prefill/decode split needs at least one decode replica".into());
    }
    if !m.num_heads.is_multiple_of(p.tp) {
        return Some(format!("tp does not divide the {} attention heads", m.num_heads));
    }
    if !m.num_kv_heads.is_multiple_of(p.tp) && !p.tp.is_multiple_of(m.num_kv_heads) {
        return Some(format!(
            "tp and the {} KV heads divide neither way",
            m.num_kv_heads
        ));
    }
    if !m.num_layers.is_multiple_of(p.pp) {
        return Some(format!("pp does not divide the {} layers", m.num_layers));
    }
    None
}

/// A short reason for a plan `validate::plan` rejected: messages with
/// per-plan numbers are grouped into one reason.
fn prune_reason(e: &Error) -> String {
    match e {
        Error::Infeasible(m) if m.contains("does not fit") => {
            "model does not fit: no room left for the KV cache".to_string()
        }
        Error::Infeasible(m) => m.split(':').next().unwrap_or(m).trim().to_string(),
        Error::Config { context, message } => {
            let first = message.split(['(', ';']).next().unwrap_or(message);
            let generic: String = first
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect();
            format!("{context}: {}", generic.trim())
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
