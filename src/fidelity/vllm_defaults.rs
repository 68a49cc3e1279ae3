//! How vLLM 0.6.0 configures its engine when the user sets nothing but the
//! model, TP, `--gpu-memory-utilization` and `--max-model-len` — the way the
//! ground-truth cases were run. Each default is stated with where it comes
//! from; what cannot be known is a named, documented parameter elsewhere
//! (the time model's `Calibration`, the memory plan's runtime overhead).
//!
//! - **Chunked prefill** is switched on automatically when `max_model_len`
//!   exceeds 32K tokens (vLLM PR #6666, "Enable chunked prefill by default
//!   for long context models", July 2024, in every release since v0.5.3), to
//!   keep the memory-profiling pass small. With chunked prefill on and no
//!   `--max-num-batched-tokens`, vLLM 0.6 uses a 512-token budget per step
//!   (`SchedulerConfig`: "the values that have the best balance between ITL
//!   and TTFT on A100"). fleetsim models that engine with its `sarathi`
//!   scheduler (decodes first, then chunks, within the budget).
//! - Without chunked prefill, `max_num_batched_tokens = max(max_model_len, 2048)`
//!   and the v0 prefill-first scheduler (`vllm`).
//! - `max_num_seqs = 256`, `block_size = 16`, a 1% admission watermark and
//!   recompute preemption for single-sequence requests (vLLM 0.6 `EngineArgs`,
//!   `BlockSpaceManager`).
//! - `max_model_len` defaults to the model's `max_position_embeddings`.

/// The scheduler settings vLLM 0.6.0 would pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineDefaults {
    /// fleetsim scheduler kind: "sarathi" when chunked prefill is on, else "vllm".
    pub scheduler: &'static str,
    pub max_num_batched_tokens: u32,
    pub max_num_seqs: u32,
    pub block_size: u32,
}

/// Above this `max_model_len`, vLLM 0.6 turns chunked prefill on by default.
pub const LONG_CONTEXT_THRESHOLD: u32 = 32 * 1024;
/// vLLM 0.6's default token budget when chunked prefill is on.
pub const CHUNKED_PREFILL_BUDGET: u32 = 512;

/// vLLM 0.6.0's defaults for a given `max_model_len`.
pub fn vllm_060(max_model_len: u32) -> EngineDefaults {
    if max_model_len > LONG_CONTEXT_THRESHOLD {
        EngineDefaults {
            scheduler: "sarathi",
            max_num_batched_tokens: CHUNKED_PREFILL_BUDGET,
            max_num_seqs: 256,
            block_size: 16,
        }
    } else {
        EngineDefaults {
            scheduler: "vllm",
            max_num_batched_tokens: max_model_len.max(2048),
            max_num_seqs: 256,
            block_size: 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_context_turns_chunked_prefill_on() {
        assert_eq!(vllm_060(131072).scheduler, "sarathi");
        assert_eq!(vllm_060(131072).max_num_batched_tokens, 512);
        assert_eq!(vllm_060(24272).scheduler, "vllm");
        assert_eq!(vllm_060(24272).max_num_batched_tokens, 24272);
        assert_eq!(vllm_060(1024).max_num_batched_tokens, 2048);
        assert_eq!(vllm_060(32768).scheduler, "vllm");
    }
}
