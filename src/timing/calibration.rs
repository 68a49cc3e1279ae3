//! Every tunable constant of the analytical time model, in one place.
//!
//! The defaults are *placeholders* chosen from public measurements (cited
//! per field) so that the uncalibrated model lands in the right range; the
//! fidelity work is expected to fit them against measured vLLM iteration
//! times per (device, engine version). All times are in seconds and all
//! efficiencies are fractions of a datasheet peak, in (0, 1].
//!
//! A calibration is plain data: it deserializes from TOML/JSON with every
//! field optional (missing fields take the defaults below) and unknown
//! fields rejected, so a typo in a calibration file is an error rather than
//! a silently ignored setting.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Tunable constants of `AnalyticalModel`.
/// See the module documentation of `timing::analytical` for where each one
/// enters the formulas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calibration {
    /// `eff_max`: fraction of peak tensor FLOP/s a large GEMM reaches.
    /// Default 0.70: cuBLAS BF16 GEMMs of LLM layer shapes sustain about
    /// 650–750 TFLOP/s of the H100-SXM's 989 (0.66–0.76) and about 250–280 of
    /// the A100's 312 (0.80–0.90); the lower, H100-like value is the default.
    pub gemm_efficiency: f64,
    /// `t_half`: GEMM row count (tokens) at which compute efficiency is half
    /// of `gemm_efficiency`: `eff(M) = eff_max · M / (M + t_half)`.
    /// Equivalently every GEMM pays for `t_half` extra rows of work, the
    /// padding waste of 64–128-row tensor-core tiles at small M.
    /// Default 64 tokens (half of a 128-row tile).
    pub gemm_half_tokens: f64,
    /// `eff_mem`: fraction of peak HBM bandwidth reached by weight streaming
    /// and element-wise kernels. Default 0.80: STREAM-like copy kernels
    /// measure 80–90% of peak HBM bandwidth on A100/H100, and skinny
    /// decode GEMMs sit at the low end of that range.
    pub memory_efficiency: f64,
    /// `eff_attn_prefill`: fraction of peak BF16 FLOP/s reached by prefill
    /// (FlashAttention-style) attention. Default 0.50: FlashAttention-2
    /// forward reaches 50–73% of peak on A100 (Dao 2023) and 35–50% on H100;
    /// FlashAttention-3 ~75% on H100 (Shah et al. 2024).
    pub prefill_attention_efficiency: f64,
    /// `eff_attn_decode_mem`: fraction of peak HBM bandwidth reached by decode
    /// (paged) attention reading the KV cache. Default 0.70: paged decode
    /// kernels read scattered 16-token blocks and reach less bandwidth than
    /// contiguous streaming.
    pub decode_attention_memory_efficiency: f64,
    /// `eff_attn_decode_flops`: fraction of peak BF16 tensor FLOP/s reached
    /// by decode attention's arithmetic (CUDA-core dot products). Default
    /// 0.25; decode attention stays memory-bound for any realistic value.
    pub decode_attention_compute_efficiency: f64,
    /// `t_kernel`: shortest time any kernel takes (launch gap + ramp-up);
    /// each kernel's roofline time is at least this. Default 2 µs, the
    /// typical duration of tiny kernels inside a CUDA graph.
    pub min_kernel_time: f64,
    /// `eff_link_intra`: fraction of `intra_node_bandwidth` that collectives
    /// reach. Default 0.80: NCCL all-reduce bus bandwidth on NVLink (DGX
    /// A100 ~230 of 300 GB/s, DGX H100 ~360 of 450 GB/s without NVLS).
    pub intra_node_link_efficiency: f64,
    /// `eff_link_inter`: fraction of `inter_node_bandwidth` that collectives
    /// and pipeline sends reach. Default 0.80 (NCCL over InfiniBand typically
    /// reaches 80–95% of line rate for large messages).
    pub inter_node_link_efficiency: f64,
    /// `cpu_base`: per-iteration CPU time not overlapped with the GPU
    /// (scheduler step, input preparation, output processing) for a
    /// synchronous engine such as vLLM v0. Default 1 ms: vLLM's v0.6.0
    /// performance post (2024-09-05) profiles Llama-3-8B on one H100 and
    /// finds scheduling + input preparation ≈ 29% of execution time under
    /// load; at batch 1 measured per-token latency leaves ~1 ms above the
    /// weight-read time.
    pub cpu_overhead_base: f64,
    /// `cpu_seq`: additional CPU time per scheduled sequence (Python-side
    /// per-sequence bookkeeping, block tables, detokenisation). Default
    /// 25 µs: with `cpu_base` this gives ~7 ms at batch 256, i.e. a ~25–30%
    /// share at high load as in the vLLM profile above.
    pub cpu_overhead_per_seq: f64,
    /// `t_sample`: GPU time of the sampler per sampled sequence (softmax,
    /// top-k/top-p over the vocabulary). Default 2 µs: a 128k-entry FP32
    /// logit row is 0.5 MB, read a few times at ~2.7 TB/s.
    pub sampling_per_seq: f64,
    /// `eff_gemm_q`: like `gemm_efficiency`, for GEMMs with 8-bit (or
    /// narrower) weights, as a fraction of the device's FP8 peak. FP8 GEMMs
    /// reach a smaller share of their (doubled) peak than BF16 ones at
    /// serving shapes. Default 0.70, the BF16 default.
    pub quantized_gemm_efficiency: f64,
    /// `t_layer`: fixed time per decoder layer of an iteration beyond the
    /// operators' rooflines — the gaps between a layer's dozen kernels
    /// (norms, RoPE, KV write, attention, activation) that even a CUDA graph
    /// does not hide. Applies to decode-only iterations, which vLLM replays
    /// from CUDA graphs.
    pub layer_overhead: f64,
    /// `t_layer_eager`: the same for iterations that contain prefill tokens,
    /// which vLLM 0.6 runs eagerly (no CUDA graph), so every kernel launch
    /// goes through Python and the PyTorch dispatcher.
    pub eager_layer_overhead: f64,
    /// `t_launch`: host time to launch one layer's kernels in eager mode
    /// (Python, PyTorch dispatch). An eager iteration lasts at least
    /// `layers × t_launch` however little the GPU has to do: for a large
    /// model with a small batch, eager iterations are CPU-bound.
    pub eager_launch_per_layer: f64,
    /// `o_launch`: fraction of the shorter of an eager iteration's host
    /// launch time and its GPU time that is hidden under the longer:
    /// `t = launch + gpu − o_launch · min(launch, gpu)`. 1 (the default) is
    /// a host that runs ahead of the GPU whenever it can (`max`); 0 is a
    /// host that waits for the GPU (launch + GPU). vLLM 0.6's eager prefill
    /// sits between: host-side work between layers (Python, PyTorch
    /// dispatch, FP8 scale computations) waits on results, so prompt
    /// length shows through the launch time (the 80- vs 356-token
    /// Mistral-Large prefills, +25 ms measured).
    pub eager_launch_overlap: f64,
    /// `t_launch_q`: extra launch time per layer with 8-bit weights (the
    /// quantisation kernels are launched too).
    pub quantized_launch_per_layer: f64,
    /// `t_quant`: extra time per layer when weights are 8-bit (FP8/INT8
    /// W8A8): the per-token activation-quantisation kernels in front of the
    /// four linear layers.
    pub quantized_layer_overhead: f64,
    /// `t_coll`: fixed cost of one collective call (kernel launch and
    /// cross-device synchronisation), added to the ring's per-step link
    /// latency. NCCL all-reduce of a tiny message on DGX H100 takes 8, 10
    /// and 14 µs on 2, 4 and 8 GPUs (APEX+ `profile/comm/H100-SXM-80GB`).
    pub collective_latency: f64,
}

impl Calibration {
    /// The constants an engine's host side sets (scheduling, input
    /// preparation, kernel launches, the gaps between a layer's kernels
    /// that its graph capture and kernel fusion decide), as opposed to the
    /// device's GPU efficiencies: a catalog device's `[device.engines.*]`
    /// tables may set only these.
    pub const HOST_KEYS: &'static [&'static str] = &[
        "cpu_overhead_base",
        "cpu_overhead_per_seq",
        "layer_overhead",
        "eager_layer_overhead",
        "eager_launch_per_layer",
        "eager_launch_overlap",
        "quantized_launch_per_layer",
        "quantized_layer_overhead",
    ];
}

impl Calibration {
    /// The largest value `key` may take, as `Calibration::validate`
    /// accepts it: 1 for the fractions (the efficiencies and
    /// `eager_launch_overlap`), `MAX_FIXED_COST_S` (1 s) for the times, unbounded
    /// for `gemm_half_tokens` (a token count). The end-to-end fit keeps its
    /// trials within it.
    pub fn upper_bound(key: &str) -> f64 {
        if key.ends_with("_efficiency") || key == "eager_launch_overlap" {
            1.0
        } else if key == "gemm_half_tokens" {
            f64::INFINITY
        } else {
            MAX_FIXED_COST_S
        }
    }
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            gemm_efficiency: 0.70,
            gemm_half_tokens: 64.0,
            memory_efficiency: 0.80,
            prefill_attention_efficiency: 0.50,
            decode_attention_memory_efficiency: 0.70,
            decode_attention_compute_efficiency: 0.25,
            min_kernel_time: 2e-6,
            intra_node_link_efficiency: 0.80,
            inter_node_link_efficiency: 0.80,
            cpu_overhead_base: 1e-3,
            cpu_overhead_per_seq: 25e-6,
            sampling_per_seq: 2e-6,
            quantized_gemm_efficiency: 0.70,
            layer_overhead: 0.0,
            eager_layer_overhead: 0.0,
            quantized_layer_overhead: 0.0,
            eager_launch_per_layer: 0.0,
            eager_launch_overlap: 1.0,
            quantized_launch_per_layer: 0.0,
            collective_latency: 0.0,
        }
    }
}

/// The largest fixed time cost a calibration may state, seconds.
pub const MAX_FIXED_COST_S: f64 = 1.0;

impl Calibration {
    /// Checks that efficiencies are in (0, 1] and times/sizes are finite and ≥ 0.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.eager_launch_overlap) {
            return Err(Error::config(
                "time-model calibration",
                format!(
                    "`eager_launch_overlap` must be in [0, 1], found {}",
                    self.eager_launch_overlap
                ),
            ));
        }
        let fractions = [
            ("gemm_efficiency", self.gemm_efficiency),
            ("memory_efficiency", self.memory_efficiency),
            ("prefill_attention_efficiency", self.prefill_attention_efficiency),
            (
                "decode_attention_memory_efficiency",
                self.decode_attention_memory_efficiency,
            ),
            (
                "decode_attention_compute_efficiency",
                self.decode_attention_compute_efficiency,
            ),
            ("quantized_gemm_efficiency", self.quantized_gemm_efficiency),
            ("intra_node_link_efficiency", self.intra_node_link_efficiency),
            ("inter_node_link_efficiency", self.inter_node_link_efficiency),
        ];
        for (key, v) in fractions {
            if !(v > 0.0 && v <= 1.0) {
                return Err(Error::config(
                    "time-model calibration",
                    format!("`{key}` must be in (0, 1], found {v}"),
                ));
            }
        }
        let non_negative = [
            ("gemm_half_tokens", self.gemm_half_tokens),
            ("min_kernel_time", self.min_kernel_time),
            ("cpu_overhead_base", self.cpu_overhead_base),
            ("cpu_overhead_per_seq", self.cpu_overhead_per_seq),
            ("sampling_per_seq", self.sampling_per_seq),
            ("layer_overhead", self.layer_overhead),
            ("eager_layer_overhead", self.eager_layer_overhead),
            ("quantized_layer_overhead", self.quantized_layer_overhead),
            ("eager_launch_per_layer", self.eager_launch_per_layer),
            ("quantized_launch_per_layer", self.quantized_launch_per_layer),
            ("collective_latency", self.collective_latency),
        ];
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(
                    "time-model calibration",
                    format!("`{key}` must be a finite number ≥ 0, found {v}"),
                ));
            }
            // Every one but gemm_half_tokens (tokens) is a time in seconds:
            // kernel floors, host costs and latencies of microseconds to
            // milliseconds. A second is beyond any engine; more would push
            // the clock towards its 584-year end and nonsense.
            if key != "gemm_half_tokens" && v > MAX_FIXED_COST_S {
                return Err(Error::config(
                    "time-model calibration",
                    format!(
                        "`{key}` is {v} s, more than the {MAX_FIXED_COST_S} s a fixed per-kernel, per-step or \
                         per-sequence cost may be (real ones are microseconds to milliseconds)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fit keeps the fractions at most 1, the times at most a second
    /// (each bound the largest value `validate` accepts), token counts open.
    #[test]
    fn the_fits_bounds_are_the_largest_valid_values() {
        assert_eq!(Calibration::upper_bound("gemm_efficiency"), 1.0);
        assert_eq!(Calibration::upper_bound("eager_launch_overlap"), 1.0);
        assert_eq!(Calibration::upper_bound("layer_overhead"), MAX_FIXED_COST_S);
        assert_eq!(Calibration::upper_bound("gemm_half_tokens"), f64::INFINITY);
        let at_bounds = Calibration {
            gemm_efficiency: 1.0,
            eager_launch_overlap: 1.0,
            layer_overhead: MAX_FIXED_COST_S,
            cpu_overhead_base: MAX_FIXED_COST_S,
            gemm_half_tokens: 1e9,
            ..Calibration::default()
        };
        assert!(at_bounds.validate().is_ok());
        let beyond = Calibration {
            cpu_overhead_base: MAX_FIXED_COST_S * 1.01,
            ..Calibration::default()
        };
        assert!(beyond.validate().is_err());
    }

    #[test]
    fn empty_toml_gives_defaults() {
        let c: Calibration = toml::from_str("").unwrap();
        assert_eq!(c, Calibration::default());
        c.validate().unwrap();
    }

    #[test]
    fn partial_toml_overrides_only_named_fields() {
        let c: Calibration = toml::from_str("memory_efficiency = 0.9\ncpu_overhead_base = 0.004").unwrap();
        assert_eq!(c.memory_efficiency, 0.9);
        assert_eq!(c.cpu_overhead_base, 0.004);
        assert_eq!(c.gemm_efficiency, Calibration::default().gemm_efficiency);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let e = toml::from_str::<Calibration>("memory_eficiency = 0.9").unwrap_err();
        assert!(e.to_string().contains("memory_eficiency"), "{e}");
    }

    #[test]
    fn roundtrips_through_toml() {
        let c = Calibration::default();
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<Calibration>(&text).unwrap(), c);
    }

    #[test]
    fn validate_rejects_bad_values() {
        let c = Calibration {
            gemm_efficiency: 1.2,
            ..Calibration::default()
        };
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains("gemm_efficiency") && msg.contains("1.2"), "{msg}");
        let c = Calibration {
            min_kernel_time: -1.0,
            ..Calibration::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("min_kernel_time"));
        // A time cost of a second is the most allowed; more is an error.
        let at = |v: f64| Calibration {
            min_kernel_time: v,
            cpu_overhead_per_seq: v,
            ..Calibration::default()
        };
        assert!(at(1.0).validate().is_ok());
        let msg = at(1.5).validate().unwrap_err().to_string();
        assert!(msg.contains("min_kernel_time") && msg.contains("1.5 s"), "{msg}");
        let tokens = Calibration {
            gemm_half_tokens: 4096.0,
            ..Calibration::default()
        };
        assert!(
            tokens.validate().is_ok(),
            "gemm_half_tokens is tokens, not seconds"
        );
        let c = Calibration {
            memory_efficiency: f64::NAN,
            ..Calibration::default()
        };
        assert!(c.validate().is_err());
    }
}
