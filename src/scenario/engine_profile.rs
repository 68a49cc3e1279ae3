//! Serving-engine profiles: the scenario's `[engine]` section (`kind`,
//! `version`) and what choosing an engine decides — which engine's host
//! costs the time model uses (a catalog device's `[device.engines.<id>]`
//! table), which scheduler runs when `scheduler.kind` is not given, the
//! engine's own defaults for the batch limits and prefix caching, and which
//! schedulers and preemption modes the engine cannot run.
//!
//! | `[engine]` | engine id | default scheduler | defaults |
//! |---|---|---|---|
//! | `kind = "vllm"`, `version` < 0.8 (or `"v0"`) | `vllm-v0` | `vllm` | 256 sequences; budget `max(max_model_len, 2048)`; no prefix caching |
//! | `kind = "vllm"`, `version` ≥ 0.8 (or `"v1"`, or no version) | `vllm-v1` | `vllm-v1` | 1,024 sequences and 8,192 tokens on a device of ≥ 70 GiB that is not an A100, else 256 and 2,048; prefix caching on |
//! | `kind = "sglang"` | `sglang` | `sglang` | `chunked_prefill_size` 2,048 below 35 GiB, 8,192 below 160 GiB, else 16,384; 256 sequences (fleetsim's, see [`default_max_num_seqs`]); prefix caching (the radix cache) on |
//!
//! Sources: vLLM `EngineArgs` (0.8–0.11: V1 by default from 0.8; the
//! per-device batch defaults of the OpenAI server with the note that a large
//! budget lowers A100 throughput, vLLM PR #17885; `max_num_seqs` capped at
//! the token budget), vLLM 0.6 `EngineArgs` and `SchedulerConfig` (see
//! `fidelity::vllm_defaults`), SGLang `ServerArgs` (chunked prefill size by
//! GPU memory).
//!
//! Invariants:
//! - without an `[engine]` section nothing changes: the scheduler names its
//!   engine (`SchedulerSpec::engine`) and the old defaults hold, so every
//!   scenario written before the section existed runs as it did;
//! - a key the user set always wins over an engine default;
//! - a scheduler that is one engine's own (`vllm` and `sarathi` are vLLM
//!   V0's, `vllm-v1` is V1's, `sglang` is SGLang's) cannot run on another
//!   engine; the other policies (orca, lightllm, laps, vtc, …) are research
//!   schedulers and run on whichever engine's host costs the section names.

use super::validate::key_error;
use crate::catalog::DeviceSpec;
use crate::error::Result;
use crate::registry::BASE_ENGINE;
use crate::scenario::kinds::kinds;
use serde::{Deserialize, Serialize};

kinds! {
    /// The serving engine a replica runs (`engine.kind`).
    pub enum EngineKind {
        /// vLLM: the V0 engine before 0.8, the V1 engine from 0.8 on.
        Vllm = "vllm",
        /// SGLang.
        Sglang = "sglang",
    }
}

/// `[engine]`: the serving engine and its version. Unset: the engine
/// follows `scheduler.kind` (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// "vllm" or "sglang".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<EngineKind>,
    /// The release, e.g. "0.6.3" or "0.10.2" for vLLM (V0 before 0.8, V1
    /// from 0.8; "v0" and "v1" also work; default: V1). Recorded for SGLang.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What an engine decides; see the module docs for the table.
#[derive(Debug, PartialEq, Eq)]
pub struct EngineProfile {
    /// The key of a catalog device's `[device.engines.*]` host-cost table.
    pub id: &'static str,
    /// The scheduler that runs when `scheduler.kind` is not given.
    pub scheduler: &'static str,
    /// The schedulers that are this engine's own.
    pub own_schedulers: &'static [&'static str],
    /// Whether the engine can swap KV to host memory on preemption.
    pub can_swap: bool,
    /// Whether prefix caching is on when `scheduler.prefix_caching` is unset.
    pub prefix_caching: bool,
}

/// vLLM before 0.8 (the V0 engine).
pub const VLLM_V0: EngineProfile = EngineProfile {
    // The engine the devices' base calibrations were fitted with.
    id: BASE_ENGINE,
    scheduler: "vllm",
    own_schedulers: &["vllm", "sarathi"],
    can_swap: true,
    prefix_caching: false,
};

/// vLLM from 0.8 on (the V1 engine).
pub const VLLM_V1: EngineProfile = EngineProfile {
    id: "vllm-v1",
    scheduler: "vllm-v1",
    own_schedulers: &["vllm-v1"],
    can_swap: false,
    prefix_caching: true,
};

/// SGLang.
pub const SGLANG: EngineProfile = EngineProfile {
    id: "sglang",
    scheduler: "sglang",
    own_schedulers: &["sglang"],
    can_swap: false,
    prefix_caching: true,
};

/// The scheduler when neither `scheduler.kind` nor `[engine]` names one.
pub const DEFAULT_SCHEDULER: &str = "vllm";

const PROFILES: [&EngineProfile; 3] = [&VLLM_V0, &VLLM_V1, &SGLANG];

/// The first vLLM release whose default engine is V1.
const FIRST_V1_MINOR: u32 = 8;

impl EngineConfig {
    /// No engine named (the section is absent or empty).
    pub fn is_unset(&self) -> bool {
        self.kind.is_none() && self.version.is_none()
    }

    /// The profile the section names, `None` when it names no engine;
    /// an error naming `engine.version` when a vLLM version is not one.
    pub fn profile(&self) -> Result<Option<&'static EngineProfile>> {
        let Some(kind) = self.kind else {
            if let Some(v) = &self.version {
                return Err(key_error(
                    "engine.version",
                    format!("`{v}` is given without engine.kind (\"vllm\" or \"sglang\")"),
                ));
            }
            return Ok(None);
        };
        Ok(Some(match kind {
            EngineKind::Sglang => &SGLANG,
            EngineKind::Vllm => match self.version.as_deref() {
                None => &VLLM_V1,
                Some(v) => vllm_generation(v)?,
            },
        }))
    }
}

/// V0 or V1 for a vLLM release string ("0.6.3", "v0.10.2", "0.11", "v1").
fn vllm_generation(version: &str) -> Result<&'static EngineProfile> {
    let v = version.trim();
    match v.to_ascii_lowercase().as_str() {
        "v0" => return Ok(&VLLM_V0),
        "v1" => return Ok(&VLLM_V1),
        _ => {}
    }
    let bad = || {
        key_error(
            "engine.version",
            format!(
                "expected a vLLM release like \"0.6.3\" or \"0.10.2\" (or \"v0\" / \"v1\"), found `{version}`"
            ),
        )
    };
    let numbers = v.strip_prefix('v').unwrap_or(v);
    let mut parts = numbers.split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let minor: u32 = match parts.next() {
        None => 0,
        Some(p) => p.parse().map_err(|_| bad())?,
    };
    Ok(if major >= 1 || minor >= FIRST_V1_MINOR {
        &VLLM_V1
    } else {
        &VLLM_V0
    })
}

/// The engine whose own scheduler `scheduler` is (`None`: a research policy
/// that runs on any engine).
pub fn owner_of(scheduler: &str) -> Option<&'static EngineProfile> {
    PROFILES
        .into_iter()
        .find(|p| p.own_schedulers.contains(&scheduler))
}

/// Checks that `scheduler` and the preemption mode can run on `engine`.
pub fn check_scheduler(engine: &EngineProfile, scheduler: &str, swap: bool) -> Result<()> {
    if let Some(owner) = owner_of(scheduler)
        && owner != engine
    {
        let owned: Vec<String> = PROFILES
            .iter()
            .map(|p| format!("{} ({})", p.own_schedulers.join(", "), p.id))
            .collect();
        return Err(key_error(
            "scheduler.kind",
            format!(
                "`{scheduler}` is the {} engine's own scheduler and cannot run on the {} engine \
                 ([engine]); use `{}`, leave scheduler.kind unset, or pick a policy that is no \
                 engine's own (engines' own: {})",
                owner.id,
                engine.id,
                engine.scheduler,
                owned.join("; ")
            ),
        ));
    }
    if swap && !engine.can_swap {
        return Err(key_error(
            "scheduler.preemption",
            format!(
                "the {} engine preempts by recompute only; \"swap\" needs vLLM before 0.8 (engine.version)",
                engine.id
            ),
        ));
    }
    Ok(())
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The engine's token budget per step when `scheduler.max_num_batched_tokens`
/// is unset, for the engines whose default depends on the device (`None`:
/// the scheduler's own default holds).
pub fn default_token_budget(engine_id: &str, device: &DeviceSpec) -> Option<u32> {
    let gib = device.memory_bytes / GIB;
    match engine_id {
        id if id == VLLM_V1.id => Some(if large_v1_device(device) { 8192 } else { 2048 }),
        id if id == SGLANG.id => Some(if gib < 35.0 {
            2048
        } else if gib < 160.0 {
            8192
        } else {
            16384
        }),
        _ => None,
    }
}

/// The engine's `max_num_seqs` when `scheduler.max_num_seqs` is unset.
pub fn default_max_num_seqs(engine_id: &str, device: &DeviceSpec, token_budget: u32) -> u32 {
    match engine_id {
        // vLLM V1 caps its default at the token budget.
        id if id == VLLM_V1.id => (if large_v1_device(device) { 1024 } else { 256 }).min(token_budget),
        // vLLM V0's default. SGLang's own limit, min(pool tokens / 2, 4096)
        // running requests, is not applied: the memory plan sizes the
        // logits buffer by max_num_seqs, which SGLang does not (its CUDA
        // graphs hold 256–512); set scheduler.max_num_seqs to raise it.
        _ => 256,
    }
}

/// vLLM V1's test for its larger defaults: at least 70 GiB, and not an A100
/// (vLLM PR #17885: the larger budget lowers A100 throughput).
fn large_v1_device(device: &DeviceSpec) -> bool {
    device.memory_bytes >= 70.0 * GIB && !device.name.to_ascii_lowercase().contains("a100")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: Option<EngineKind>, version: Option<&str>) -> EngineConfig {
        EngineConfig {
            kind,
            version: version.map(str::to_string),
        }
    }

    #[test]
    fn vllm_releases_before_0_8_are_v0_and_later_ones_v1() {
        let id = |v: &str| {
            cfg(Some(EngineKind::Vllm), Some(v))
                .profile()
                .unwrap()
                .unwrap()
                .id
        };
        assert_eq!(id("0.6.3"), "vllm-v0");
        assert_eq!(id("0.7.3"), "vllm-v0");
        assert_eq!(id("0.8"), "vllm-v1");
        assert_eq!(id("v0.10.2"), "vllm-v1");
        assert_eq!(id("1.0.0"), "vllm-v1");
        assert_eq!(id("V0"), "vllm-v0");
        assert_eq!(id("v1"), "vllm-v1");
        assert_eq!(id("V1"), "vllm-v1");
        let latest = cfg(Some(EngineKind::Vllm), None).profile().unwrap().unwrap();
        assert_eq!(latest.id, "vllm-v1");
        let sglang = cfg(Some(EngineKind::Sglang), Some("0.4.9"))
            .profile()
            .unwrap()
            .unwrap();
        assert_eq!(sglang.id, "sglang");
        assert_eq!(cfg(None, None).profile().unwrap(), None);
    }

    #[test]
    fn a_version_that_is_not_one_names_the_key_and_what_was_found() {
        for v in ["latest", "0.x", "", "x.10"] {
            let e = cfg(Some(EngineKind::Vllm), Some(v))
                .profile()
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("engine.version") && e.contains(&format!("`{v}`")),
                "{e}"
            );
        }
        let e = cfg(None, Some("0.6")).profile().unwrap_err().to_string();
        assert!(e.contains("engine.version") && e.contains("engine.kind"), "{e}");
    }

    #[test]
    fn sglang_chunk_size_steps_at_35_and_160_gib() {
        let mut d = crate::catalog::Catalog::builtin()
            .device("H100-SXM")
            .unwrap()
            .clone();
        for (gib, tokens) in [
            (24.0, 2048),
            (34.9, 2048),
            (35.0, 8192),
            (159.9, 8192),
            (160.0, 16384),
        ] {
            d.memory_bytes = gib * GIB;
            assert_eq!(default_token_budget("sglang", &d), Some(tokens), "{gib} GiB");
        }
        // vLLM V1's step is at 70 GiB, and any device named A100 stays small.
        d.memory_bytes = 70.0 * GIB;
        assert_eq!(default_token_budget("vllm-v1", &d), Some(8192));
        d.memory_bytes = 69.9 * GIB;
        assert_eq!(default_token_budget("vllm-v1", &d), Some(2048));
        assert_eq!(default_token_budget("vllm-v0", &d), None);
    }

    #[test]
    fn an_engines_own_scheduler_runs_only_on_that_engine() {
        assert!(check_scheduler(&VLLM_V1, "vllm-v1", false).is_ok());
        assert!(check_scheduler(&VLLM_V0, "sarathi", true).is_ok());
        assert!(check_scheduler(&SGLANG, "vtc", false).is_ok());
        let e = check_scheduler(&SGLANG, "vllm-v1", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("scheduler.kind") && e.contains("`sglang`"), "{e}");
        let e = check_scheduler(&VLLM_V1, "sarathi", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vllm-v0") && e.contains("vllm-v1"), "{e}");
        let e = check_scheduler(&VLLM_V1, "lightllm", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("scheduler.preemption"), "{e}");
        assert!(check_scheduler(&VLLM_V0, "lightllm", true).is_ok());
    }
}
