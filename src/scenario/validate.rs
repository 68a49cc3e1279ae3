//! Turning a scenario into a runnable [`Plan`]: names resolved against the
//! catalog, defaults filled in, every impossible value explained with its
//! numbers (TP not dividing heads, zero replicas, a model that does not fit).

use super::engine_profile;
use super::{Preemption, PrefixKind, Scenario, SchedulerConfig};
use crate::catalog::{Catalog, DeviceSpec, Dtype, ModelSpec};
use crate::error::{Error, Result};
use crate::registry::{
    Batching, Caching, DefaultBudget, KvLayout, Registry, RouterSpec, SchedulerSpec, TimeModelSpec,
};
use crate::replica::memory::{self, MemoryInputs, MemoryPlan};
use crate::replica::scheduler::{Limits, Policy};
use crate::replica::state::{KvMode, StateOptions, Victim};
use crate::replica::swap::SwapModel;
use crate::timing::{AnalyticalModel, Calibration, ParallelConfig};
use crate::units::did_you_mean;
use std::sync::Arc;

/// A scenario with every name resolved and every default decided.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub model: ModelSpec,
    /// The device, with `[hardware.interconnect]` overrides applied.
    pub device: DeviceSpec,
    pub weight_dtype: Dtype,
    pub kv_dtype: Dtype,
    pub max_model_len: u32,
    pub devices_per_node: u32,
    pub limits: Limits,
    /// The replica scheduler and its settings.
    pub policy: Policy,
    /// The scheduler's registry entry (its defaults and constructor).
    pub scheduler: Arc<SchedulerSpec>,
    /// The router's registry entry.
    pub router: Arc<RouterSpec>,
    /// The time model's registry entry.
    pub time_model: Arc<TimeModelSpec>,
    /// How each replica manages KV memory (paging, caching, swapping).
    pub replica_options: StateOptions,
    pub memory: MemoryPlan,
    /// The time model's constants: the device's fitted calibration with the
    /// scenario's `[hardware.calibration]` overrides applied.
    pub calibration: Calibration,
    /// The replica pools, in replica-index order: one colocated pool, or a
    /// prefill and a decode pool (disaggregated and semi-PD modes).
    pub pools: Vec<crate::cluster::disagg::PoolPlan>,
}

impl Plan {
    /// Devices in the whole cluster (semi-PD workers share their instance's devices).
    pub fn total_devices(&self) -> u32 {
        crate::cluster::disagg::total_devices(&self.pools)
    }

    /// The cluster's shape in words, pool by pool, with its device count:
    /// "2 replica(s) x TP4 x PP1 on H100-SXM = 8 device(s)", or for pools
    /// "2 prefill x TP4 x PP1 on H100-SXM + 2 decode x TP8 x PP1 on
    /// A100-80GB = 24 device(s)" (semi-PD decode workers share their
    /// instance's devices and add none).
    pub fn shape(&self) -> String {
        use crate::cluster::disagg::Role;
        let pools: Vec<String> = self
            .pools
            .iter()
            .map(|p| {
                let role = match p.role {
                    Role::Colocated => "replica(s)",
                    Role::Prefill => "prefill",
                    Role::Decode if p.shares_devices => {
                        return format!("{} decode worker(s) sharing those devices", p.replicas);
                    }
                    Role::Decode => "decode",
                };
                format!(
                    "{} {role} x TP{} x PP{} on {}",
                    p.replicas, p.tp, p.pp, p.device.name
                )
            })
            .collect();
        format!("{} = {} device(s)", pools.join(" + "), self.total_devices())
    }
}

pub(crate) fn key_error(key: &str, message: impl Into<String>) -> Error {
    Error::config(format!("key `{key}`"), message)
}

/// The error for `value` at `key` not being one of `names`, with the closest suggested.
pub(crate) fn unknown_name(key: &str, value: &str, names: &[&str]) -> Error {
    key_error(key, unknown_value(value, names))
}

/// "unknown value `x` (did you mean `y`?); expected one of: a, b": the
/// message of [`unknown_name`] without the key, also used by the enums of
/// `scenario::kinds` (the loader adds where the value was).
pub(crate) fn unknown_value(value: &str, names: &[&str]) -> String {
    format!(
        "unknown value `{value}`{}; expected one of: {}",
        did_you_mean(value, names.iter().copied()),
        names.join(", ")
    )
}

/// The most replicas a pool may have (each costs ≈ 30 KB of state and a
/// share of every router decision; 16k replicas ≈ 0.5 GB).
pub const MAX_REPLICAS: u32 = 1 << 14;

/// `v` replicas at `key`: at least 1 and at most [`MAX_REPLICAS`].
pub(crate) fn replica_count(key: &str, v: u32) -> Result<()> {
    positive(key, v)?;
    if v > MAX_REPLICAS {
        return Err(key_error(
            key,
            format!(
                "is {v}, more than the {MAX_REPLICAS} replicas fleetsim simulates in one pool; \
                 simulate a slice of the fleet (its load scaled to match)"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn positive(key: &str, v: u32) -> Result<()> {
    if v == 0 {
        return Err(key_error(key, "must be at least 1, found 0"));
    }
    Ok(())
}

/// Resolves and checks a scenario (the workload's trace is checked
/// separately by `workload::validate`, which reads it).
pub fn plan(s: &Scenario) -> Result<Plan> {
    plan_with(s, &Registry::builtin())
}

/// [`plan`] with the policies of `registry` (built-in ones plus a library
/// user's own), which the scenario's names are looked up in.
pub fn plan_with(s: &Scenario, registry: &Registry) -> Result<Plan> {
    // Disaggregated: the top-level shape is the prefill pool's.
    let adjusted = crate::cluster::disagg::top_level(s)?;
    let s = adjusted.as_ref().unwrap_or(s);
    let mut catalog = Catalog::builtin();
    if let Some(path) = &s.catalog {
        catalog.merge_file(path)?;
    }
    let model = catalog.model(&s.model.name)?.clone();
    let mut device = catalog
        .device(&s.hardware.device)
        .map_err(|e| match (&adjusted, &s.cluster.prefill.device) {
            (Some(_), Some(_)) => key_error("cluster.prefill.device", e.to_string()),
            _ => e,
        })?
        .clone();
    apply_interconnect(&mut device, &s.hardware.interconnect)?;
    let time_model = registry.time_model("hardware.time_model", &s.hardware.time_model)?;
    if s.hardware.time_model == "profile" {
        match &s.hardware.profile_dir {
            None => {
                return Err(Error::config(
                    "key `hardware.profile_dir`",
                    "time_model = \"profile\" needs the folder of operator profiles (laid out like ../shared/profiles)",
                ));
            }
            Some(dir) if !dir.is_dir() => {
                return Err(Error::config(
                    "key `hardware.profile_dir`",
                    format!("{} is not a folder", dir.display()),
                ));
            }
            Some(_) => {}
        }
    }
    let devices_per_node = s.hardware.devices_per_node.unwrap_or(device.devices_per_node);
    positive("hardware.devices_per_node", devices_per_node)?;

    let c = &s.cluster;
    replica_count("cluster.replicas", c.replicas)?;
    positive("cluster.tp", c.tp)?;
    positive("cluster.pp", c.pp)?;
    let router = registry.router("cluster.router", &c.router)?;
    let shape_key = if adjusted.is_some() {
        "cluster.prefill"
    } else {
        "cluster"
    };
    check_parallel(shape_key, &model, c.tp, c.pp)?;

    let weight_dtype = s.model.dtype.unwrap_or(model.dtype);
    let kv_dtype = s.model.kv_dtype.unwrap_or(match weight_dtype {
        Dtype::Fp32 => Dtype::Fp32,
        Dtype::Fp16 => Dtype::Fp16,
        _ => Dtype::Bf16,
    });
    let max_model_len = s.model.max_model_len.unwrap_or(model.max_context);
    positive("model.max_model_len", max_model_len)?;
    if max_model_len > model.max_context {
        return Err(key_error(
            "model.max_model_len",
            format!(
                "{max_model_len} exceeds the {} tokens {} supports",
                model.max_context, model.name
            ),
        ));
    }

    let (resolved, spec, token_budget) = with_engine_defaults(s, registry, &device, max_model_len)?;
    let s = &resolved;
    let sc = &s.scheduler;
    let max_num_seqs = sc.max_num_seqs.expect("with_engine_defaults sets max_num_seqs");
    positive("scheduler.block_size", sc.block_size)?;
    positive("scheduler.chunk_size", sc.chunk_size)?;
    if !(sc.gpu_memory_utilization > 0.0 && sc.gpu_memory_utilization <= 1.0) {
        return Err(key_error(
            "scheduler.gpu_memory_utilization",
            format!("must be in (0, 1], found {}", sc.gpu_memory_utilization),
        ));
    }
    if !(0.0..1.0).contains(&sc.watermark) {
        return Err(key_error(
            "scheduler.watermark",
            format!("must be in [0, 1), found {}", sc.watermark),
        ));
    }
    if token_budget < max_num_seqs {
        return Err(key_error(
            "scheduler.max_num_batched_tokens",
            format!(
                "the token budget ({token_budget}) must be at least max_num_seqs ({max_num_seqs}) so every running sequence can decode"
            ),
        ));
    }
    if let Some(a) = sc.activation_reserve_gib
        && !(a.is_finite() && a >= 0.0)
    {
        return Err(key_error(
            "scheduler.activation_reserve_gib",
            format!("must be ≥ 0, found {a}"),
        ));
    }

    let slo = &s.slo;
    for (key, v) in [
        ("slo.ttft", slo.ttft),
        ("slo.tpot", slo.tpot),
        ("slo.e2e", slo.e2e),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(key_error(
                key,
                format!("must be ≥ 0 seconds (0 = no threshold), found {v}"),
            ));
        }
    }
    if !(slo.percentile > 0.0 && slo.percentile <= 100.0) {
        return Err(key_error(
            "slo.percentile",
            format!("must be in (0, 100], found {}", slo.percentile),
        ));
    }
    if !(s.metrics.sample_interval.is_finite() && s.metrics.sample_interval > 0.0) {
        return Err(key_error(
            "metrics.sample_interval",
            format!("must be > 0 seconds, found {}", s.metrics.sample_interval),
        ));
    }

    let memory = memory::plan(&MemoryInputs {
        model: &model,
        device: &device,
        weight_dtype,
        kv_dtype,
        tp: c.tp,
        pp: c.pp,
        block_size: sc.block_size,
        gpu_memory_utilization: sc.gpu_memory_utilization,
        max_batch_tokens: token_budget,
        max_batch_seqs: max_num_seqs,
        activation_reserve: sc.activation_reserve_gib.map(|g| g * 1024.0 * 1024.0 * 1024.0),
    })?;

    let (policy, replica_options) =
        replica_policy(s, &spec, &memory, &device, &model, max_model_len, token_budget)?;

    let calibration = resolve_calibration(&device, &spec.engine, &s.hardware.calibration)?;
    // The time model checks what it needs (TP dividing the MLP width).
    AnalyticalModel::new(
        &model,
        &device,
        weight_dtype,
        kv_dtype,
        ParallelConfig {
            tp: c.tp,
            pp: c.pp,
            devices_per_node,
        },
        calibration,
    )?;

    let limits = Limits {
        max_num_seqs,
        token_budget,
    };
    let pools = crate::cluster::disagg::plan_pools(
        s,
        &catalog,
        &crate::cluster::disagg::PoolInputs {
            model: &model,
            device: &device,
            weight_dtype,
            kv_dtype,
            devices_per_node,
            memory,
            calibration,
            engine: &spec.engine,
            token_budget,
            max_model_len,
        },
    )?;
    Ok(Plan {
        scenario: s.clone(),
        model,
        device,
        weight_dtype,
        kv_dtype,
        max_model_len,
        devices_per_node,
        limits,
        memory,
        calibration,
        pools,
        policy,
        scheduler: spec,
        router,
        time_model,
        replica_options,
    })
}

/// The scenario with the serving engine's defaults filled in (see
/// [`super::engine_profile`]): `scheduler.kind`, `max_num_seqs` and
/// `prefix_caching` are set, and the returned scheduler runs on the engine's
/// host costs (its `engine` is the engine's id). Also returns the token
/// budget per step.
fn with_engine_defaults(
    s: &Scenario,
    registry: &Registry,
    device: &DeviceSpec,
    max_model_len: u32,
) -> Result<(Scenario, Arc<SchedulerSpec>, u32)> {
    let section = s.engine.profile()?;
    let sc = &s.scheduler;
    let kind = match (&sc.kind, section) {
        (Some(k), _) => k.clone(),
        (None, Some(p)) => p.scheduler.to_string(),
        (None, None) => engine_profile::DEFAULT_SCHEDULER.to_string(),
    };
    let mut spec = registry.scheduler("scheduler.kind", &kind)?;
    if let Some(p) = section {
        engine_profile::check_scheduler(p, &kind, sc.preemption == Preemption::Swap)?;
        let mut on_engine = (*spec).clone();
        on_engine.engine = p.id.to_string();
        spec = Arc::new(on_engine);
    }
    let token_budget = token_budget(&spec, sc, device, max_model_len)?;
    let max_num_seqs = match sc.max_num_seqs {
        Some(n) => n,
        None => engine_profile::default_max_num_seqs(&spec.engine, device, token_budget),
    };
    positive("scheduler.max_num_seqs", max_num_seqs)?;
    // An engine named by [engine] brings its caching default to research
    // policies too, unless they reserve contiguous memory per request.
    let engine_caches = section.is_some_and(|p| p.prefix_caching) && spec.kv != KvLayout::ReserveMaxLen;
    let caching = sc
        .prefix_caching
        .unwrap_or(spec.caching != Caching::Off || engine_caches);
    let mut resolved = s.clone();
    resolved.scheduler.kind = Some(kind);
    resolved.scheduler.max_num_seqs = Some(max_num_seqs);
    resolved.scheduler.prefix_caching = Some(caching);
    Ok((resolved, spec, token_budget))
}

/// Tokens per step: `scheduler.max_num_batched_tokens`, else the
/// scheduler's default, which for vLLM V1 and SGLang is their engine's
/// per-device default ([`engine_profile::default_token_budget`]).
fn token_budget(
    spec: &SchedulerSpec,
    sc: &SchedulerConfig,
    device: &DeviceSpec,
    max_model_len: u32,
) -> Result<u32> {
    Ok(match spec.batching {
        Batching::Chunked(DefaultBudget::Tokens(default)) => {
            let engine_default = engine_profile::default_token_budget(&spec.engine, device);
            let budget = sc
                .max_num_batched_tokens
                .unwrap_or(engine_default.unwrap_or(default));
            positive("scheduler.max_num_batched_tokens", budget)?;
            budget
        }
        Batching::Chunked(DefaultBudget::ChunkSize) => {
            // Name the key the user wrote: a zero chunk is not a zero budget.
            positive("scheduler.chunk_size", sc.chunk_size)?;
            let budget = sc
                .max_num_batched_tokens
                .map_or(sc.chunk_size, |m| m.min(sc.chunk_size));
            positive("scheduler.max_num_batched_tokens", budget)?;
            budget
        }
        Batching::WholePrompt => {
            let budget = sc.max_num_batched_tokens.unwrap_or(max_model_len.max(2048));
            if budget < max_model_len {
                return Err(key_error(
                    "scheduler.max_num_batched_tokens",
                    format!(
                        "{budget} is smaller than max_model_len ({max_model_len}); without chunked \
                         prefill a whole prompt must fit in one batch (use scheduler.kind = \"sarathi\" \
                         or lower model.max_model_len)"
                    ),
                ));
            }
            budget
        }
    })
}

/// The scheduler policy and the replicas' memory options a scenario asks for.
fn replica_policy(
    s: &Scenario,
    spec: &SchedulerSpec,
    memory: &memory::MemoryPlan,
    device: &DeviceSpec,
    model: &ModelSpec,
    max_model_len: u32,
    token_budget: u32,
) -> Result<(Policy, StateOptions)> {
    let sc = &s.scheduler;
    let kind = spec.name.as_str();
    let reserved = spec.kv == KvLayout::ReserveMaxLen;
    let caching = sc
        .prefix_caching
        .expect("with_engine_defaults sets prefix_caching");
    if spec.caching == Caching::Required && !caching {
        return Err(key_error(
            "scheduler.prefix_caching",
            format!(
                "{kind} orders requests by their match in the prefix cache; it needs prefix_caching = true"
            ),
        ));
    }
    if reserved && caching {
        return Err(key_error(
            "scheduler.prefix_caching",
            format!("{kind} reserves contiguous memory per request and cannot share prefix blocks"),
        ));
    }
    let w = &s.workload;
    let trace_units = match w.prefix.kind {
        PrefixKind::Trace => true,
        PrefixKind::Auto => w.trace.is_some(),
        PrefixKind::None | PrefixKind::System | PrefixKind::Sessions => false,
    };
    if caching && trace_units && !w.prefix.unit_tokens.is_multiple_of(sc.block_size) {
        return Err(key_error(
            "workload.prefix.unit_tokens",
            format!(
                "trace prefix blocks of {} tokens are not a whole number of KV blocks of {} tokens \
                 (scheduler.block_size), so prefix caching could not share them",
                w.prefix.unit_tokens, sc.block_size
            ),
        ));
    }
    positive("scheduler.window", sc.window)?;
    positive("scheduler.laps_threshold", sc.laps_threshold)?;
    if !(sc.laps_window.is_finite() && sc.laps_window >= 0.0) {
        return Err(key_error(
            "scheduler.laps_window",
            format!("must be ≥ 0 seconds, found {}", sc.laps_window),
        ));
    }
    for (key, w) in [
        ("scheduler.vtc_input_weight", sc.vtc_input_weight),
        ("scheduler.vtc_output_weight", sc.vtc_output_weight),
    ] {
        if !(w.is_finite() && w >= 0.0) {
            return Err(key_error(key, format!("must be ≥ 0, found {w}")));
        }
    }
    let swap = match sc.preemption {
        Preemption::Swap if !spec.can_swap => {
            return Err(key_error(
                "scheduler.preemption",
                format!(
                    "{kind} preempts by recompute only (its engine has no swap space); use \"recompute\""
                ),
            ));
        }
        Preemption::Swap => {
            if !(sc.swap_space_gib.is_finite() && sc.swap_space_gib > 0.0) {
                return Err(key_error(
                    "scheduler.swap_space_gib",
                    format!(
                        "swap preemption needs host swap space > 0 GiB, found {}",
                        sc.swap_space_gib
                    ),
                ));
            }
            if !(sc.swap_call_overhead.is_finite() && sc.swap_call_overhead >= 0.0) {
                return Err(key_error(
                    "scheduler.swap_call_overhead",
                    format!("must be ≥ 0 seconds, found {}", sc.swap_call_overhead),
                ));
            }
            positive("scheduler.fastswitch_group_blocks", sc.fastswitch_group_blocks)?;
            Some(SwapModel {
                block_bytes: memory.block_bytes,
                host_bandwidth: device.host_link_bandwidth,
                layers: memory::max_layers_per_stage(model, s.cluster.pp),
                call_overhead: sc.swap_call_overhead,
                group_blocks: if sc.fastswitch {
                    sc.fastswitch_group_blocks
                } else {
                    1
                },
                overlap: sc.fastswitch,
                reuse: sc.fastswitch,
                host_blocks: (sc.swap_space_gib * 1024.0 * 1024.0 * 1024.0 / memory.block_bytes) as u64,
            })
        }
        Preemption::Recompute => {
            if sc.fastswitch {
                return Err(key_error(
                    "scheduler.fastswitch",
                    "FastSwitch speeds up swapping; it needs scheduler.preemption = \"swap\"",
                ));
            }
            None
        }
    };
    let policy = Policy {
        kind: kind.to_string(),
        limits: Limits {
            max_num_seqs: sc.max_num_seqs.expect("with_engine_defaults sets max_num_seqs"),
            token_budget,
        },
        priority: sc.priority,
        window: sc.window as usize,
        max_model_len,
        max_tokens: s.workload.max_tokens,
        laps_threshold: sc.laps_threshold,
        laps_window: crate::units::secs_to_nanos(sc.laps_window),
        output_estimate: sc.output_estimate,
        vtc_weights: (sc.vtc_input_weight, sc.vtc_output_weight),
    };
    let options = StateOptions {
        block_size: sc.block_size,
        watermark: sc.watermark,
        async_output: sc.async_output,
        kv_mode: match spec.kv {
            KvLayout::Paged | KvLayout::PagedPerChunk => KvMode::Paged,
            KvLayout::ReserveMaxLen => KvMode::Reserve {
                tokens: max_model_len,
            },
        },
        blocks_per_chunk: spec.kv == KvLayout::PagedPerChunk,
        prefix_caching: caching,
        swap,
        static_batch: spec.static_batch,
        victim: if sc.priority {
            Victim::LowestPriority
        } else {
            Victim::Newest
        },
    };
    Ok((policy, options))
}

/// The device's catalog calibration (or the generic default), with the
/// host keys of `engine`'s table of the device applied (when it has one),
/// then the scenario's overrides, key by key.
#[doc(hidden)]
pub fn resolve_calibration(
    device: &DeviceSpec,
    engine: &str,
    overrides: &toml::Table,
) -> Result<Calibration> {
    let base = device.calibration.unwrap_or_default();
    let mut table = toml::Table::try_from(base).expect("a calibration serializes to a table");
    // Catalog loading checked that an engine table holds host keys only.
    if let Some(host) = device.engines.get(engine) {
        for (k, v) in host {
            table.insert(k.clone(), as_float(v));
        }
    }
    for (k, v) in overrides {
        if !matches!(v, toml::Value::Float(_) | toml::Value::Integer(_)) {
            return Err(key_error(
                &format!("hardware.calibration.{k}"),
                format!("expected a number, found `{v}`"),
            ));
        }
        if !table.contains_key(k) {
            return Err(key_error(
                &format!("hardware.calibration.{k}"),
                format!(
                    "unknown calibration constant{}; valid keys are: {}",
                    did_you_mean(k, table.keys().map(String::as_str)),
                    table.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        table.insert(k.clone(), as_float(v));
    }
    let cal: Calibration = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            key_error("hardware.calibration", crate::error::in_user_words(e.message()))
        })?;
    cal.validate()?;
    Ok(cal)
}

/// TOML integers read as floats (`cpu_overhead_base = 0`).
fn as_float(v: &toml::Value) -> toml::Value {
    match v {
        toml::Value::Integer(i) => toml::Value::Float(*i as f64),
        other => other.clone(),
    }
}

/// Applies `[hardware.interconnect]` overrides to a device's link numbers.
pub(crate) fn apply_interconnect(
    device: &mut DeviceSpec,
    ic: &crate::scenario::InterconnectConfig,
) -> Result<()> {
    // A link moves bytes at a positive rate; its latency may be zero.
    for (key, v, zero_ok) in [
        ("hardware.interconnect.intra_node_gbps", ic.intra_node_gbps, false),
        (
            "hardware.interconnect.intra_node_latency_us",
            ic.intra_node_latency_us,
            true,
        ),
        ("hardware.interconnect.inter_node_gbps", ic.inter_node_gbps, false),
        (
            "hardware.interconnect.inter_node_latency_us",
            ic.inter_node_latency_us,
            true,
        ),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)))
        {
            let expected = if zero_ok {
                "a number ≥ 0 µs"
            } else {
                "a positive number of GB/s"
            };
            return Err(key_error(key, format!("must be {expected}, found {v}")));
        }
    }
    if let Some(v) = ic.intra_node_gbps {
        device.intra_node_bandwidth = v * 1e9;
    }
    if let Some(v) = ic.intra_node_latency_us {
        device.intra_node_latency = v * 1e-6;
    }
    if let Some(v) = ic.inter_node_gbps {
        device.inter_node_bandwidth = v * 1e9;
    }
    if let Some(v) = ic.inter_node_latency_us {
        device.inter_node_latency = v * 1e-6;
    }
    Ok(())
}

/// Checks that `tp` and `pp` (keys `{pool}.tp` / `{pool}.pp`) suit the model.
pub(crate) fn check_parallel(pool: &str, model: &ModelSpec, tp: u32, pp: u32) -> Result<()> {
    if !model.num_heads.is_multiple_of(tp) {
        return Err(key_error(
            &format!("{pool}.tp"),
            format!(
                "tp={} does not divide the {} attention heads of {}; valid tp values divide {}",
                tp, model.num_heads, model.name, model.num_heads
            ),
        ));
    }
    if !model.num_kv_heads.is_multiple_of(tp) && !tp.is_multiple_of(model.num_kv_heads) {
        return Err(key_error(
            &format!("{pool}.tp"),
            format!(
                "tp={} neither divides nor is a multiple of the {} KV heads of {}",
                tp, model.num_kv_heads, model.name
            ),
        ));
    }
    if pp > model.num_layers {
        return Err(key_error(
            &format!("{pool}.pp"),
            format!(
                "pp={} exceeds the {} layers of {}",
                pp, model.num_layers, model.name
            ),
        ));
    }
    Ok(())
}
