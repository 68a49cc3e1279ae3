//! `fleetsim calibrate PROFILE_DIR`: fits the analytical model's efficiency
//! constants ([`Calibration`]) of one device to its operator profiles.
//!
//! # What is fitted to what
//!
//! The predictor is the analytical model itself (`AnalyticalModel`), built
//! for each profiled architecture and TP degree with a candidate calibration,
//! so the fitted constants mean exactly what they mean at run time. Each
//! group of constants is fitted to the measurements that isolate it,
//! minimising the mean absolute log error `mean |ln(predicted / measured)|`
//! (symmetric in over/under-prediction and not dominated by the large
//! operators): from the best point of a coarse log grid over the group's
//! ranges (`grid_start`), then by multiplicative coordinate descent (each
//! constant scaled by `1 ± step`, the step halved when no move helps;
//! deterministic):
//!
//! | group | constants | measurements |
//! |---|---|---|
//! | GEMMs | `gemm_efficiency`, `gemm_half_tokens`, `memory_efficiency`, `min_kernel_time` | `mlp.csv`: QKV, O and MLP (up + act + down) times of every profiled model and TP degree |
//! | prefill attention | `prefill_attention_efficiency` | `attention.csv` prefill rows (chunk × cached tokens) |
//! | decode attention | `decode_attention_memory_efficiency`, `decode_attention_compute_efficiency` | `attention.csv` decode rows (batch × context) |
//! | collectives | `intra_node_link_efficiency`, `collective_latency` | single-node all-reduce rows (Vidur network or APEX+ comm tables) |
//!
//! The RMSNorm columns are not fitted: Vidur's norm timings sit far from the
//! bandwidth bound (launch-dominated at small token counts, 2–3× the
//! bandwidth time at large ones), and fitting them with the GEMMs drags the
//! weight-streaming efficiency down to ~0.4, which the decode GEMM rows
//! contradict. Element-wise kernels use the GEMM-fitted `memory_efficiency`.
//!
//! # What is not fitted
//!
//! The per-iteration CPU overhead, the eager-launch and per-layer overheads
//! and FP8 efficiencies are properties of the serving engine (or of FP8
//! kernels) that operator profiles do not contain; they keep the device's
//! catalog values (fitted end to end by `fleetsim fidelity` where ground
//! truth exists) and the output says so. Inter-node links: the shared
//! profiles have no multi-node all-reduce for most devices, so
//! `inter_node_link_efficiency` is kept too.

use super::{collective_samples, comm_tables, mlp_tables, vidur};
use crate::catalog::{DeviceSpec, Dtype, ModelSpec};
use crate::error::{Error, Result};
use crate::timing::analytical::{AnalyticalModel, ParallelConfig};
use crate::timing::{BatchShape, Calibration};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One fitted group of constants.
#[derive(Debug, Clone, Serialize)]
pub struct FitGroup {
    pub name: String,
    /// Measurements the group was fitted to.
    pub samples: usize,
    /// Mean absolute percentage error with the starting (catalog) constants.
    pub mape_before: f64,
    /// The same with the fitted constants.
    pub mape_after: f64,
    /// `(constant, fitted value)`.
    pub fitted: Vec<(String, f64)>,
}

/// The outcome of `fleetsim calibrate` for one device.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationFit {
    pub device: String,
    /// Files the fit read.
    pub sources: Vec<String>,
    pub groups: Vec<FitGroup>,
    /// The device's calibration with the fitted constants substituted.
    pub calibration: Calibration,
    /// Constants left at their catalog values, and why.
    pub not_fitted: Vec<String>,
}

/// The layer shape of Llama-2/3-70B (every TP degree up to 8 divides it).
pub(super) const LLAMA_70B_LAYER: vidur::MlpArch = vidur::MlpArch {
    n_head: 64,
    n_kv_head: 8,
    n_embd: 8192,
    n_expanded_embd: 28672,
    vocab_size: 32768,
    gated: true,
};

/// A one-layer model with a profiled layer shape (the architecture columns of one `mlp.csv`).
pub(super) fn spec_for(arch: &vidur::MlpArch) -> ModelSpec {
    ModelSpec {
        name: "profiled".into(),
        aliases: Vec::new(),
        num_layers: 1,
        hidden_size: arch.n_embd,
        num_heads: arch.n_head,
        num_kv_heads: arch.n_kv_head,
        head_dim: arch.n_embd / arch.n_head.max(1),
        intermediate_size: arch.n_expanded_embd,
        vocab_size: arch.vocab_size,
        num_experts: 1,
        experts_per_token: 1,
        gated_mlp: arch.gated,
        tied_embeddings: false,
        dtype: Dtype::Bf16,
        max_context: u32::MAX,
    }
}

/// Measurements of one (architecture, TP) configuration.
struct Config {
    spec: ModelSpec,
    tp: u32,
    /// (batch, measured seconds, which breakdown field).
    points: Vec<(BatchShape, f64, Field)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Qkv,
    O,
    Mlp,
    PrefillAttn,
    DecodeAttn,
}

/// One operator's time: the models are one layer deep ([`spec_for`]), so
/// the breakdown's totals are the layer's.
fn predict(m: &AnalyticalModel, b: &BatchShape, f: Field) -> f64 {
    let br = m.breakdown(b);
    match f {
        Field::Qkv => br.qkv_proj,
        Field::O => br.o_proj,
        Field::Mlp => br.mlp,
        Field::PrefillAttn => br.prefill_attention,
        Field::DecodeAttn => br.decode_attention,
    }
}

/// Mean |ln(pred/meas)| and the MAPE (percent) of `configs` under `cal`.
fn score(configs: &[Config], device: &DeviceSpec, cal: &Calibration) -> (f64, f64) {
    let (mut log_err, mut ape, mut n) = (0.0, 0.0, 0usize);
    for c in configs {
        let par = ParallelConfig::new(c.tp, 1, device.devices_per_node.max(c.tp));
        let Ok(m) = AnalyticalModel::new(&c.spec, device, Dtype::Bf16, Dtype::Bf16, par, *cal) else {
            continue;
        };
        for (b, meas, f) in &c.points {
            let p = predict(&m, b, *f);
            log_err += (p / meas).ln().abs();
            ape += ((p - meas) / meas).abs();
            n += 1;
        }
    }
    if n == 0 {
        return (f64::INFINITY, f64::INFINITY);
    }
    (log_err / n as f64, 100.0 * ape / n as f64)
}

type Setter = fn(&mut Calibration) -> &mut f64;

/// Most objective evaluations the starting grid of [`descend`] may spend.
const GRID_BUDGET: f64 = 256.0;

/// Moves `cal` to the best point of a log-spaced grid over the boxes of
/// `params` (`G` values per constant, ends included, `G^n ≤` [`GRID_BUDGET`]),
/// if one beats it. Coordinate descent alone cannot leave a plateau: an
/// efficiency that enters only through a `max` (decode attention's compute
/// rate, hidden behind its memory rate at the generic defaults) changes
/// nothing until it has moved by a large factor, and the descent then settles
/// on a worse value of the other constant (on the shared profiles it never
/// moved the decode compute efficiency off its default).
fn grid_start(
    cal: &mut Calibration,
    params: &[(&str, Setter, f64, f64)],
    objective: &dyn Fn(&Calibration) -> f64,
) -> f64 {
    let mut best = objective(cal);
    let n = params.len() as i32;
    if n == 0 {
        return best;
    }
    let per_axis = (GRID_BUDGET.powf(1.0 / n as f64).floor() as usize).clamp(3, 17);
    let total = per_axis.pow(n as u32);
    let mut start = *cal;
    for index in 0..total {
        let mut trial = start;
        let mut rest = index;
        for (_, get, lo, hi) in params {
            let k = rest % per_axis;
            rest /= per_axis;
            *get(&mut trial) = lo * (hi / lo).powf(k as f64 / (per_axis - 1) as f64);
        }
        let s = objective(&trial);
        if s < best - 1e-12 {
            best = s;
            start = trial;
        }
    }
    *cal = start;
    best
}

/// Multiplicative coordinate descent on `params` (each kept in `[lo, hi]`),
/// from the better of `cal` and the best point of [`grid_start`]'s grid.
fn descend(
    cal: &mut Calibration,
    params: &[(&str, Setter, f64, f64)],
    objective: &dyn Fn(&Calibration) -> f64,
) {
    let mut best = grid_start(cal, params, objective);
    let mut step = 0.4;
    while step > 1e-3 {
        let mut improved = false;
        for (_, get, lo, hi) in params {
            for dir in [1.0 + step, 1.0 / (1.0 + step)] {
                let mut trial = *cal;
                let v = get(&mut trial);
                *v = (*v * dir).clamp(*lo, *hi);
                let s = objective(&trial);
                if s < best - 1e-12 {
                    best = s;
                    *cal = trial;
                    improved = true;
                }
            }
        }
        if !improved {
            step /= 2.0;
        }
    }
}

/// Fits `params` of `cal` (which start from the generic defaults, so a
/// rerun gives the same constants whatever the catalog holds) by minimising
/// `score(c).0`; `score(c).1` is the MAPE reported before (with the
/// catalog's constants `catalog`) and after.
fn fit(
    name: &str,
    samples: usize,
    catalog: &Calibration,
    cal: &mut Calibration,
    params: &[(&str, Setter, f64, f64)],
    score: &dyn Fn(&Calibration) -> (f64, f64),
) -> FitGroup {
    let before = score(catalog).1;
    descend(cal, params, &|c| score(c).0);
    FitGroup {
        name: name.into(),
        samples,
        mape_before: before,
        mape_after: score(cal).1,
        fitted: params
            .iter()
            .map(|(n, get, _, _)| (n.to_string(), *get(&mut cal.clone())))
            .collect(),
    }
}

/// [`fit`] over the operator measurements of `configs` (None when there are none).
fn fit_group(
    name: &str,
    configs: &[Config],
    device: &DeviceSpec,
    catalog: &Calibration,
    cal: &mut Calibration,
    params: &[(&str, Setter, f64, f64)],
) -> Option<FitGroup> {
    let samples: usize = configs.iter().map(|c| c.points.len()).sum();
    (samples > 0).then(|| {
        fit(name, samples, catalog, cal, params, &|c| {
            score(configs, device, c)
        })
    })
}

/// Keeps every `k`-th element so that at most `max` remain (deterministic thinning).
fn thin<T>(v: Vec<T>, max: usize) -> Vec<T> {
    let k = v.len().div_ceil(max.max(1)).max(1);
    v.into_iter().step_by(k).collect()
}

/// Fits `device`'s calibration to the profiles under `root`, starting from `start`.
pub fn calibrate(root: &Path, device: &DeviceSpec, start: Calibration) -> Result<CalibrationFit> {
    let mut sources: Vec<String> = Vec::new();
    let mut gemm_cfgs: Vec<Config> = Vec::new();
    let mut prefill_cfgs: Vec<Config> = Vec::new();
    let mut decode_cfgs: Vec<Config> = Vec::new();
    for path in mlp_tables(root, device)? {
        let mlp = vidur::read_mlp(&path)?;
        sources.push(path.display().to_string());
        let mut keys: Vec<(vidur::MlpArch, u32)> = mlp.rows.iter().map(|r| (r.arch, r.tp)).collect();
        keys.sort();
        keys.dedup();
        for (arch, tp) in keys {
            if arch.n_head % tp != 0 {
                continue;
            }
            let mut points = Vec::new();
            for r in mlp.rows.iter().filter(|r| r.arch == arch && r.tp == tp) {
                let b = BatchShape {
                    decode_seqs: r.tokens,
                    decode_kv_tokens: r.tokens as u64,
                    ..Default::default()
                };
                let mlp_t = r.ops[vidur::op::UP] + r.ops[vidur::op::ACT] + r.ops[vidur::op::DOWN];
                for (meas, f) in [
                    (r.ops[vidur::op::QKV], Field::Qkv),
                    (r.ops[vidur::op::O_PROJ], Field::O),
                    (mlp_t, Field::Mlp),
                ] {
                    if meas > 0.0 {
                        points.push((b, meas, f));
                    }
                }
            }
            gemm_cfgs.push(Config {
                spec: spec_for(&arch),
                tp,
                points,
            });
        }
        let att_path: PathBuf = path.with_file_name("attention.csv");
        if att_path.is_file() {
            let att = vidur::read_attention(&att_path)?;
            sources.push(att_path.display().to_string());
            let arch = mlp.rows.first().map(|r| r.arch);
            let mut tps: Vec<u32> = att.rows.iter().map(|r| r.tp).collect();
            tps.sort();
            tps.dedup();
            for tp in tps {
                let Some(arch) = arch else { continue };
                let (mut pre, mut dec) = (Vec::new(), Vec::new());
                for r in att.rows.iter().filter(|r| r.tp == tp && r.attn > 0.0) {
                    let mut b = BatchShape::default();
                    if r.is_prefill {
                        b.add_prefill_chunk(r.kv as u64, r.chunk as u64);
                        pre.push((b, r.attn, Field::PrefillAttn));
                    } else {
                        b.decode_seqs = r.batch_size;
                        b.decode_kv_tokens = r.batch_size as u64 * r.kv as u64;
                        dec.push((b, r.attn, Field::DecodeAttn));
                    }
                }
                let spec = ModelSpec {
                    num_heads: att.rows[0].n_q_head,
                    num_kv_heads: att.rows[0].n_kv_head,
                    hidden_size: att.rows[0].n_embd,
                    head_dim: att.rows[0].n_embd / att.rows[0].n_q_head.max(1),
                    ..spec_for(&arch)
                };
                prefill_cfgs.push(Config {
                    spec: spec.clone(),
                    tp,
                    points: pre,
                });
                decode_cfgs.push(Config {
                    spec,
                    tp,
                    points: thin(dec, 4000),
                });
            }
        }
    }

    // Fitted constants start from the generic defaults; the rest keep the catalog's.
    let mut cal = start;
    let d = Calibration::default();
    cal.gemm_efficiency = d.gemm_efficiency;
    cal.gemm_half_tokens = d.gemm_half_tokens;
    cal.memory_efficiency = d.memory_efficiency;
    cal.min_kernel_time = d.min_kernel_time;
    cal.prefill_attention_efficiency = d.prefill_attention_efficiency;
    cal.decode_attention_memory_efficiency = d.decode_attention_memory_efficiency;
    cal.decode_attention_compute_efficiency = d.decode_attention_compute_efficiency;
    cal.intra_node_link_efficiency = d.intra_node_link_efficiency;
    cal.collective_latency = d.collective_latency;
    let mut groups = Vec::new();
    groups.extend(fit_group(
        "gemm",
        &gemm_cfgs,
        device,
        &start,
        &mut cal,
        &[
            ("gemm_efficiency", |c| &mut c.gemm_efficiency, 0.05, 1.0),
            ("gemm_half_tokens", |c| &mut c.gemm_half_tokens, 1.0, 2048.0),
            ("memory_efficiency", |c| &mut c.memory_efficiency, 0.05, 1.0),
            ("min_kernel_time", |c| &mut c.min_kernel_time, 1e-7, 1e-4),
        ],
    ));
    groups.extend(fit_group(
        "prefill attention",
        &prefill_cfgs,
        device,
        &start,
        &mut cal,
        &[(
            "prefill_attention_efficiency",
            |c| &mut c.prefill_attention_efficiency,
            0.02,
            1.0,
        )],
    ));
    groups.extend(fit_group(
        "decode attention",
        &decode_cfgs,
        device,
        &start,
        &mut cal,
        &[
            (
                "decode_attention_memory_efficiency",
                |c| &mut c.decode_attention_memory_efficiency,
                0.02,
                1.0,
            ),
            (
                "decode_attention_compute_efficiency",
                |c| &mut c.decode_attention_compute_efficiency,
                0.005,
                1.0,
            ),
        ],
    ));

    // Collectives: single-node all-reduce, message bytes → seconds.
    let (ar_path, _) = comm_tables(root, device);
    let mut ar_points: Vec<(u32, f64, f64)> = Vec::new();
    if let Some(path) = &ar_path {
        for n in [2u32, 4, 8, 16] {
            if n > device.devices_per_node {
                break;
            }
            for (bytes, secs) in collective_samples(path, n, n)? {
                if secs > 0.0 {
                    ar_points.push((n, bytes, secs));
                }
            }
        }
        if !ar_points.is_empty() {
            sources.push(path.display().to_string());
        }
    }
    if !ar_points.is_empty() {
        // The analytical model's own all-reduce (a layer shape every TP
        // degree divides), for a message of `bytes` = tokens · h · 2.
        let shape = spec_for(&LLAMA_70B_LAYER);
        let bytes_per_token = shape.hidden_size as f64 * crate::timing::analytical::ACTIVATION_BYTES;
        let ar_score = |c: &Calibration| {
            let (mut le, mut ape) = (0.0, 0.0);
            for &(n, bytes, secs) in &ar_points {
                let par = ParallelConfig::new(n, 1, device.devices_per_node.max(n));
                let Ok(m) = AnalyticalModel::new(&shape, device, Dtype::Bf16, Dtype::Bf16, par, *c) else {
                    return (f64::INFINITY, f64::INFINITY);
                };
                let p = m.all_reduce_time(bytes / bytes_per_token);
                le += (p / secs).ln().abs();
                ape += ((p - secs) / secs).abs();
            }
            let n = ar_points.len() as f64;
            (le / n, 100.0 * ape / n)
        };
        let params: [(&str, Setter, f64, f64); 2] = [
            (
                "intra_node_link_efficiency",
                |c| &mut c.intra_node_link_efficiency,
                0.02,
                1.0,
            ),
            ("collective_latency", |c| &mut c.collective_latency, 1e-7, 1e-3),
        ];
        groups.push(fit(
            "all-reduce",
            ar_points.len(),
            &start,
            &mut cal,
            &params,
            &ar_score,
        ));
    }
    if groups.is_empty() {
        return Err(Error::Infeasible(format!(
            "calibrate: no usable profiles of {} under {}",
            device.name,
            root.display()
        )));
    }
    let mut not_fitted = vec![
        "cpu_overhead_base, cpu_overhead_per_seq, sampling_per_seq, layer_overhead, eager_layer_overhead, eager_launch_per_layer: engine overheads, not in operator profiles (fit them end to end with `fleetsim fidelity` against served latencies)".to_string(),
        "quantized_gemm_efficiency, quantized_layer_overhead, quantized_launch_per_layer: the profiles are FP16 only".to_string(),
        "inter_node_link_efficiency: no multi-node all-reduce in the tables used".to_string(),
    ];
    if prefill_cfgs.is_empty() {
        not_fitted.push("prefill/decode attention efficiencies: no attention.csv for this device".into());
    }
    if ar_points.is_empty() {
        not_fitted.push(
            "intra_node_link_efficiency, collective_latency: no all-reduce table for this device".into(),
        );
    }
    Ok(CalibrationFit {
        device: device.name.clone(),
        sources,
        groups,
        calibration: cal,
        not_fitted,
    })
}

impl CalibrationFit {
    /// The fitted constants as a catalog `[device.calibration]` snippet, with
    /// a comment saying what they were fitted to and how well.
    pub fn to_toml(&self, command: &str) -> String {
        let mut s = format!(
            "# {}: analytical time-model constants fitted by `{command}` to\n",
            self.device
        );
        for src in &self.sources {
            s.push_str(&format!("#   {src}\n"));
        }
        s.push_str("# mean absolute % error, catalog constants -> fitted:\n");
        for g in &self.groups {
            s.push_str(&format!(
                "#   {:<32} {:>6} samples  {:>7.1}% -> {:>5.1}%\n",
                g.name, g.samples, g.mape_before, g.mape_after
            ));
        }
        s.push_str("# Not fitted (kept from the catalog):\n");
        for n in &self.not_fitted {
            s.push_str(&format!("#   {n}\n"));
        }
        s.push_str("[device.calibration]\n");
        for g in &self.groups {
            for (name, v) in &g.fitted {
                s.push_str(&format!("{name} = {}\n", fmt_sig(*v)));
            }
        }
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("calibration fit serializes")
    }
}

/// Four significant digits, as TOML.
fn fmt_sig(v: f64) -> String {
    if v == 0.0 {
        return "0.0".into();
    }
    let e = v.abs().log10().floor() as i32;
    if (-3..4).contains(&e) {
        let decimals = (3 - e).max(1) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests;
