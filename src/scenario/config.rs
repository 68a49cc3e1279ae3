//! The scenario schema: every section and key of a scenario TOML file, with
//! its documentation and default. Unknown keys are rejected (see
//! `scenario::load` for the "did you mean" hint). A key that takes one of a
//! fixed list of names has an enum type, documented variant by variant
//! where the choice is implemented (re-exported here; see `scenario::kinds`).

use crate::catalog::Dtype;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use crate::cluster::disagg::{ClusterMode, DecodeRouter, KvLink};
pub use crate::replica::scheduler::OutputEstimate;
pub use crate::replica::swap::Preemption;
pub use crate::scenario::engine_profile::{EngineConfig, EngineKind};
pub use crate::workload::PrefixKind;
pub use crate::workload::arrivals::ArrivalKind;
pub use crate::workload::lengths::LengthKind;
pub use crate::workload::sessions::DelayKind;
pub use crate::workload::trace::TraceFormatChoice;

/// A whole scenario. Every section is optional; an empty file is the default
/// scenario (Llama-3-8B on one H100-SXM, vLLM scheduler, 2,000 Poisson
/// requests with conversation-like lengths).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Free-text name shown in outputs.
    pub name: String,
    /// Extra catalog file (same format as `catalog/*.toml`) whose models and
    /// devices extend or replace the built-in ones.
    pub catalog: Option<PathBuf>,
    pub model: ModelConfig,
    pub hardware: HardwareConfig,
    pub cluster: ClusterConfig,
    /// The serving engine (`[engine]`: kind and version); unset, the engine
    /// follows `scheduler.kind`.
    #[serde(skip_serializing_if = "EngineConfig::is_unset")]
    pub engine: EngineConfig,
    pub scheduler: SchedulerConfig,
    pub workload: WorkloadConfig,
    pub slo: SloConfig,
    pub metrics: MetricsConfig,
}

/// `[model]`: which model, and in which numeric formats.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Catalog name or alias (`fleetsim catalog models`).
    pub name: String,
    /// Weight dtype; defaults to the checkpoint's native dtype.
    pub dtype: Option<Dtype>,
    /// KV-cache dtype; defaults to the weight dtype (fp8 weights keep a bf16 KV cache unless set).
    pub kv_dtype: Option<Dtype>,
    /// Longest prompt + output accepted (vLLM's max_model_len); defaults to the model's max context.
    pub max_model_len: Option<u32>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "Llama-3-8B".into(),
            dtype: None,
            kv_dtype: None,
            max_model_len: None,
        }
    }
}

/// `[hardware]`: the device every replica runs on and how devices are wired.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HardwareConfig {
    /// Catalog name or alias (`fleetsim catalog devices`).
    pub device: String,
    /// Devices per node; defaults to the device's typical node size. TP and
    /// PP groups larger than a node communicate over the inter-node network.
    pub devices_per_node: Option<u32>,
    /// Overrides of the device's link numbers.
    pub interconnect: InterconnectConfig,
    /// Which time model prices iterations: "analytical" (built in, needs no
    /// files) or "profile" (interpolates measured operator profiles).
    pub time_model: String,
    /// Folder of operator profiles for `time_model = "profile"`, laid out like
    /// `../shared/profiles` (`vidur/compute/<gpu>/<org>/<model>/{mlp,attention}.csv`,
    /// `vidur/network/<node>/{all_reduce,send_recv}.csv`, `apex/comm/<GPU>/*.csv`).
    /// Relative paths are relative to the scenario file.
    pub profile_dir: Option<PathBuf>,
    /// Overrides of the analytical time model's calibrated constants, applied
    /// over the device's fitted calibration from the catalog (see
    /// `timing::Calibration` for each key's meaning). Unknown keys are errors.
    pub calibration: toml::Table,
}

impl Default for HardwareConfig {
    fn default() -> Self {
        HardwareConfig {
            device: "H100-SXM".into(),
            devices_per_node: None,
            interconnect: InterconnectConfig::default(),
            time_model: "analytical".into(),
            profile_dir: None,
            calibration: toml::Table::new(),
        }
    }
}

/// `[hardware.interconnect]`: replaces the catalog's link numbers when set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InterconnectConfig {
    /// Intra-node bandwidth per device per direction, GB/s (1e9 bytes/s).
    pub intra_node_gbps: Option<f64>,
    /// Intra-node latency, microseconds.
    pub intra_node_latency_us: Option<f64>,
    /// Inter-node bandwidth per device per direction, GB/s.
    pub inter_node_gbps: Option<f64>,
    /// Inter-node latency, microseconds.
    pub inter_node_latency_us: Option<f64>,
}

/// `[cluster]`: how many replicas, how each is parallelised, and the router.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Number of identical replicas (data parallelism).
    pub replicas: u32,
    /// Tensor-parallel degree of each replica.
    pub tp: u32,
    /// Pipeline-parallel degree of each replica.
    pub pp: u32,
    /// With pp > 1, run `pp` micro-batches in flight as vLLM's virtual
    /// engines do: each replica has `pp` schedulers, each with 1/pp of the
    /// KV blocks (vLLM divides `num_gpu_blocks` by pp), whose iterations
    /// interleave in the pipeline. Colocated mode only. false: one batch at a
    /// time (PP then gains memory, not throughput).
    pub pp_virtual_engines: bool,
    /// Request router (see `cluster` module docs for each one's source):
    /// "random", "round-robin", "least-outstanding", "least-kv",
    /// "power-of-two", "prefix-affinity", "dualmap", "predictive",
    /// "session-affinity". In disaggregated and semi-PD mode it picks the
    /// prefill replica.
    pub router: String,
    /// How old the replica state the router sees is, seconds: reports of
    /// queue lengths and KV use are refreshed every `router_staleness`
    /// seconds (0 = the router sees the exact current state).
    pub router_staleness: f64,
    /// How the replicas divide the work ([`ClusterMode`]; default
    /// "colocated"). Colocated: `replicas`, `tp`, `pp` and `hardware.device`
    /// describe them; disaggregated: `[cluster.prefill]` and
    /// `[cluster.decode]` (DistServe/Splitwise); semi-pd: each of `replicas`
    /// instances splits its compute between a prefill and a decode worker.
    pub mode: ClusterMode,
    /// Disaggregated: how the decode replica of a prefilled request is
    /// chosen ([`DecodeRouter`]; default "least-kv"). Semi-PD always hands
    /// off to the instance's own decode worker.
    pub decode_router: DecodeRouter,
    /// Disaggregated: which link KV transfers use ([`KvLink`]; default "auto").
    pub kv_link: KvLink,
    /// `[cluster.prefill]`: the prefill pool (disaggregated mode).
    pub prefill: PoolConfig,
    /// `[cluster.decode]`: the decode pool (disaggregated mode).
    pub decode: PoolConfig,
    /// `[cluster.semi_pd]`: compute split of semi-PD instances.
    pub semi_pd: SemiPdConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            replicas: 1,
            tp: 1,
            pp: 1,
            pp_virtual_engines: true,
            router: "round-robin".into(),
            router_staleness: 0.0,
            mode: ClusterMode::Colocated,
            decode_router: DecodeRouter::LeastKv,
            kv_link: KvLink::Auto,
            prefill: PoolConfig::default(),
            decode: PoolConfig::default(),
            semi_pd: SemiPdConfig::default(),
        }
    }
}

/// `[cluster.prefill]` / `[cluster.decode]`: one pool of identical replicas
/// in disaggregated mode. Pools may use different device types
/// (heterogeneous clusters); each replica's KV capacity is planned for its
/// own device, TP and PP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Catalog device name; defaults to `hardware.device`.
    pub device: Option<String>,
    /// Replicas in the pool.
    pub replicas: u32,
    /// Tensor-parallel degree of each replica of the pool.
    pub tp: u32,
    /// Pipeline-parallel degree of each replica of the pool.
    pub pp: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            device: None,
            replicas: 1,
            tp: 1,
            pp: 1,
        }
    }
}

/// `[cluster.semi_pd]`: semi-PD (Hong et al. 2025): the SM share of each
/// instance's prefill worker; the decode worker gets the rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SemiPdConfig {
    /// Initial fraction of the compute (SMs) given to prefill, in (0, 1).
    pub prefill_fraction: f64,
    /// Adapt the fraction to keep the TTFT and TPOT SLOs (`[slo]`): every
    /// `adapt_interval` seconds it moves by `adapt_step` towards the phase
    /// whose latency is closer to (or further over) its threshold.
    pub adaptive: bool,
    /// Seconds between adaptations.
    pub adapt_interval: f64,
    /// Change of the fraction per adaptation.
    pub adapt_step: f64,
    /// Bounds of the adapted fraction, within (0, 1).
    pub min_fraction: f64,
    pub max_fraction: f64,
}

impl Default for SemiPdConfig {
    fn default() -> Self {
        SemiPdConfig {
            prefill_fraction: 0.5,
            adaptive: false,
            adapt_interval: 0.5,
            adapt_step: 0.05,
            min_fraction: 0.1,
            max_fraction: 0.9,
        }
    }
}

/// `[scheduler]`: the replica-level batching policy and memory settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// The batching policy: "vllm" (v0: prefill-prioritising, no chunking),
    /// "sarathi" (Sarathi-Serve: decode-first, chunked prefill within a
    /// token budget), "vllm-v1" (vLLM V1's scheduler: one 8,192-token
    /// budget, blocks allocated per chunk, recompute only, prefix caching on,
    /// V1's host costs where the device states them), "orca" (iteration-level
    /// batching, maximum length reserved per request), "fastertransformer"
    /// (static request-level batching), "lightllm" (admission by an estimate
    /// of future KV use), "sglang" (SGLang's scheduler: prefill-first
    /// unmixed batches, admission reserving future decode tokens, retraction,
    /// longest cached prefix first), "laps" (short prefills ahead of long ones), "vtc" (Virtual
    /// Token Counter fair sharing between clients). Default: the `[engine]`'s
    /// own scheduler, else "vllm".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Most sequences in one batch (vLLM max_num_seqs). Default: the
    /// engine's (vLLM V1: 1,024 on a device of ≥ 70 GiB that is not an
    /// A100, else 256, at most the token budget), else 256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<u32>,
    /// Most tokens in one batch (vLLM max_num_batched_tokens). Defaults to
    /// max(max_model_len, 2048) for vllm, to `chunk_size` for sarathi, and
    /// to the engine's per-device default for vllm-v1 (8,192 on a device of
    /// ≥ 70 GiB that is not an A100, else 2,048) and sglang (2,048 below
    /// 35 GiB, 8,192 below 160 GiB, else 16,384).
    pub max_num_batched_tokens: Option<u32>,
    /// Sarathi token budget per iteration (prefill chunks plus decodes).
    pub chunk_size: u32,
    /// Tokens per KV-cache block (vLLM block_size).
    pub block_size: u32,
    /// Fraction of device memory the engine may use (weights + KV + activations).
    pub gpu_memory_utilization: f64,
    /// Memory reserved for activations and runtime buffers per device, GiB.
    /// Default: the size of one forward pass's activations at the batch
    /// token limit (see `replica::memory`).
    pub activation_reserve_gib: Option<f64>,
    /// What happens to a running request when KV blocks run out
    /// ([`Preemption`]: "recompute", the default, or "swap").
    pub preemption: Preemption,
    /// Host memory for swapped-out KV per device, GiB (vLLM `swap_space`, default 4).
    pub swap_space_gib: f64,
    /// Fixed cost of one host↔device copy call, seconds (vLLM copies each
    /// block of each layer separately; see `replica::swap`).
    pub swap_call_overhead: f64,
    /// FastSwitch: block-group swap transfers, swaps overlapped with
    /// compute, and reuse of host copies (needs preemption = "swap").
    pub fastswitch: bool,
    /// FastSwitch: blocks per contiguous group (one copy call per group).
    pub fastswitch_group_blocks: u32,
    /// Automatic prefix caching (default: on for vllm-v1 and sglang, and for
    /// any paged scheduler when `[engine]` names vLLM V1 or SGLang; off otherwise).
    pub prefix_caching: Option<bool>,
    /// Admit by priority class (0 first; `workload.clients.priorities`) and
    /// preempt the least urgent first, instead of first-come-first-served.
    pub priority: bool,
    /// How many waiting requests a non-FCFS policy (priority, sglang, laps,
    /// vtc) looks at when choosing the next one (SGLang uses 128).
    pub window: u32,
    /// laps: prompts longer than this many tokens are "long".
    pub laps_threshold: u32,
    /// laps: hold short prefills up to this many seconds so they batch together (0 = no wait).
    pub laps_window: f64,
    /// lightllm: the output length admission assumes ([`OutputEstimate`]:
    /// "max", the default, or "oracle").
    pub output_estimate: OutputEstimate,
    /// vtc: cost of one prompt token and of one output token in a client's counter.
    pub vtc_input_weight: f64,
    pub vtc_output_weight: f64,
    /// Fraction of KV blocks kept free when admitting prefills (vLLM's 1% watermark).
    pub watermark: f64,
    /// Process each iteration's outputs while the next one runs, as vLLM ≥ 0.6
    /// does by default ("async output processing"): a token becomes visible
    /// (and is timestamped) once the following iteration has been scheduled
    /// and launched (its start plus its host time), or at the end of its own
    /// iteration when the replica then idles. This adds about one host phase
    /// to TTFT and E2E and shifts every token alike, so inter-token gaps keep
    /// their length.
    pub async_output: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            kind: None,
            max_num_seqs: None,
            max_num_batched_tokens: None,
            chunk_size: 512,
            block_size: 16,
            gpu_memory_utilization: 0.9,
            activation_reserve_gib: None,
            preemption: Preemption::Recompute,
            swap_space_gib: 4.0,
            swap_call_overhead: 4e-6,
            fastswitch: false,
            fastswitch_group_blocks: 32,
            prefix_caching: None,
            priority: false,
            window: 128,
            laps_threshold: 4096,
            laps_window: 0.0,
            output_estimate: OutputEstimate::Max,
            vtc_input_weight: 1.0,
            vtc_output_weight: 2.0,
            watermark: 0.01,
            async_output: true,
        }
    }
}

/// `[workload]`: where requests come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// Number of requests (for a trace: at most this many rows; 0 = all rows).
    pub count: u64,
    /// Stop generating arrivals after this many simulated seconds (0 = no limit).
    pub duration: f64,
    /// Seed of every random stream of the run (arrivals, lengths, routing ties).
    pub seed: u64,
    /// Clamp on output tokens per request (0 = none).
    pub max_tokens: u32,
    /// A trace file (relative paths are relative to the scenario file).
    pub trace: Option<PathBuf>,
    /// The trace's format ([`TraceFormatChoice`]; default "auto": detected
    /// from the header).
    pub trace_format: TraceFormatChoice,
    /// Replay a trace's timestamps k× faster (2.0 = twice the rate).
    pub rate_scale: f64,
    pub arrivals: ArrivalConfig,
    /// Prompt length distribution.
    pub prompt: LengthConfig,
    /// Output length distribution.
    pub output: LengthConfig,
    /// Shared prompt prefixes (what prefix caching can reuse).
    pub prefix: PrefixConfig,
    /// Clients (tenants): their shares of the requests and their priorities.
    pub clients: ClientConfig,
    /// Fixed-concurrency clients (vLLM `benchmark_serving.py
    /// --max-concurrency`): this many clients start at 0 and each sends its
    /// next request when its previous one ends; 0 = open loop. Paced by
    /// `workload.arrivals` only when `arrivals.kind` is set.
    pub concurrency: u32,
    /// Closed-loop multi-turn sessions (`[workload.sessions]`; absent = none).
    pub sessions: Option<SessionsConfig>,
}

/// `[workload.sessions]`: closed-loop multi-turn conversations. A user's
/// next turn is sent a think time after the previous answer ended; its
/// prompt is the whole history (every earlier prompt and answer) plus new
/// user tokens, and it shares that history as a prefix. The first turn's
/// prompt is drawn from `workload.prompt`, every answer from
/// `workload.output`; `workload.count` counts turns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Closed-loop users: each starts a new session a think time after its
    /// previous one ended (all start at 0). 0 = sessions start open-loop, at
    /// the times of `workload.arrivals`.
    pub users: u32,
    /// Turns per session (a length distribution; default: 4).
    pub turns: LengthConfig,
    /// New user tokens of every turn after the first (default: `workload.prompt`).
    pub new_tokens: Option<LengthConfig>,
    /// Time between an answer and the user's next turn, seconds.
    pub think_time: DelayConfig,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            users: 0,
            turns: LengthConfig {
                kind: Some(LengthKind::Fixed),
                value: 4,
                min: 1,
                max: 16,
                median: 4.0,
                sigma: 0.5,
                exponent: 1.0,
            },
            new_tokens: None,
            think_time: DelayConfig::default(),
        }
    }
}

/// A distribution of delays in seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DelayConfig {
    /// The distribution ([`DelayKind`]: "fixed" uses `value`, "exponential"
    /// `mean`, "uniform" `min`..`max`, "lognormal" `median`, `sigma` clamped
    /// to `min`..`max`).
    pub kind: DelayKind,
    pub value: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub median: f64,
    pub sigma: f64,
}

impl Default for DelayConfig {
    /// Exponential with a 5 s mean. An assumption, not a measurement: none
    /// of the public traces we have records think times (ShareGPT has no
    /// timestamps; Azure and Mooncake do not link turns to users), so set
    /// `think_time` from your own traffic when it matters.
    fn default() -> Self {
        DelayConfig {
            kind: DelayKind::Exponential,
            value: 5.0,
            mean: 5.0,
            min: 0.0,
            max: 600.0,
            median: 5.0,
            sigma: 1.0,
        }
    }
}

/// `[workload.prefix]`: which prompts share leading tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrefixConfig {
    /// Which prompts share prefixes ([`PrefixKind`]: "auto", the default,
    /// "none", "system", "sessions" or "trace"; the keys below are each
    /// kind's parameters).
    pub kind: PrefixKind,
    /// system: length of the system prompt, tokens (added to each prompt).
    pub tokens: u32,
    /// system: fraction of requests whose system prompt is shared, in [0, 1].
    pub share: f64,
    /// system: number of distinct shared system prompts (picked uniformly).
    pub prompts: u32,
    /// sessions: turns per conversation.
    pub turns: u32,
    /// sessions: conversations in progress at once. Each request continues
    /// one of them at random, so a conversation's next turn comes about
    /// `sessions` arrivals later — the user's think time.
    pub sessions: u32,
    /// trace: tokens per `hash_ids` block (512 in Mooncake's traces).
    pub unit_tokens: u32,
}

impl Default for PrefixConfig {
    fn default() -> Self {
        PrefixConfig {
            kind: PrefixKind::Auto,
            tokens: 1024,
            share: 1.0,
            prompts: 1,
            turns: 4,
            sessions: 16,
            unit_tokens: 512,
        }
    }
}

/// `[workload.clients]`: tenants sharing the service.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Relative share of the requests sent by each client (ids 0, 1, …);
    /// empty = one client. E.g. `[10, 1]`: client 0 sends 10× client 1's load.
    pub weights: Vec<f64>,
    /// Priority class of each client's requests (0 = most urgent; default 0).
    pub priorities: Vec<u32>,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            count: 2000,
            duration: 0.0,
            seed: 0,
            max_tokens: 0,
            trace: None,
            trace_format: TraceFormatChoice::Auto,
            rate_scale: 1.0,
            arrivals: ArrivalConfig::default(),
            prompt: LengthConfig::conversation_prompt(),
            output: LengthConfig::conversation_output(),
            prefix: PrefixConfig::default(),
            clients: ClientConfig::default(),
            concurrency: 0,
            sessions: None,
        }
    }
}

/// `[workload.arrivals]`: the arrival process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ArrivalConfig {
    /// The arrival process ([`ArrivalKind`]: "poisson", "gamma", "constant"
    /// or "trace"). Default: "trace" when a trace is given, else "poisson"
    /// ([`ArrivalConfig::kind_or_default`]).
    pub kind: Option<ArrivalKind>,
    /// Mean arrival rate, requests per second.
    pub rate: f64,
    /// Coefficient of variation of inter-arrival times (gamma only; 1 = Poisson).
    pub cv: f64,
}

impl ArrivalConfig {
    /// The arrival process: `kind`, else the trace's timestamps when the
    /// workload has a trace, else Poisson.
    pub fn kind_or_default(&self, has_trace: bool) -> ArrivalKind {
        self.kind.unwrap_or(if has_trace {
            ArrivalKind::Trace
        } else {
            ArrivalKind::Poisson
        })
    }
}

impl Default for ArrivalConfig {
    fn default() -> Self {
        ArrivalConfig {
            kind: None,
            rate: 4.0,
            cv: 1.0,
        }
    }
}

/// `[workload.prompt]` / `[workload.output]`: a token-length distribution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LengthConfig {
    /// The distribution ([`LengthKind`]: "fixed", "uniform", "lognormal",
    /// "zipf" or "trace"). Default: "trace" when a trace is given, else
    /// lognormal ([`LengthConfig::kind_or_default`]).
    pub kind: Option<LengthKind>,
    /// fixed: the length.
    pub value: u32,
    /// uniform / zipf: inclusive bounds. lognormal: clamp bounds.
    pub min: u32,
    pub max: u32,
    /// lognormal: median length.
    pub median: f64,
    /// lognormal: sigma of the underlying normal.
    pub sigma: f64,
    /// zipf: exponent s (> 0).
    pub exponent: f64,
}

impl LengthConfig {
    /// The distribution: `kind`, else the trace's lengths when the workload
    /// has a trace, else lognormal.
    pub fn kind_or_default(&self, has_trace: bool) -> LengthKind {
        self.kind.unwrap_or(if has_trace {
            LengthKind::Trace
        } else {
            LengthKind::LogNormal
        })
    }

    /// Prompt lengths resembling the Azure 2023 conversation trace
    /// (lognormal, median 1020, sigma 1.0; clamped to 4..6144).
    pub(crate) fn conversation_prompt() -> Self {
        LengthConfig {
            kind: None,
            value: 1024,
            min: 4,
            max: 6144,
            median: 1020.0,
            sigma: 1.0,
            exponent: 1.0,
        }
    }

    /// Output lengths resembling the Azure 2023 conversation trace
    /// (lognormal, median 129, sigma 1.0; clamped to 1..2048).
    pub(crate) fn conversation_output() -> Self {
        LengthConfig {
            kind: None,
            value: 128,
            min: 1,
            max: 2048,
            median: 129.0,
            sigma: 1.0,
            exponent: 1.0,
        }
    }
}

impl Default for LengthConfig {
    fn default() -> Self {
        LengthConfig::conversation_prompt()
    }
}

/// `[slo]`: latency objectives. A request meets the SLO when each of its set
/// thresholds holds; the run meets it when the `percentile` of each metric
/// is within its threshold. 0 disables a threshold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SloConfig {
    /// Time to first token, seconds.
    pub ttft: f64,
    /// Time per output token, seconds.
    pub tpot: f64,
    /// End-to-end latency, seconds.
    pub e2e: f64,
    /// Percentile the thresholds apply to (e.g. 90 or 99).
    pub percentile: f64,
}

impl Default for SloConfig {
    fn default() -> Self {
        SloConfig {
            ttft: 2.0,
            tpot: 0.1,
            e2e: 0.0,
            percentile: 90.0,
        }
    }
}

/// `[metrics]`: what is recorded over time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Interval between rows of `timeseries.csv`, simulated seconds.
    pub sample_interval: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { sample_interval: 1.0 }
    }
}
