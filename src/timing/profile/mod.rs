//! Profile-table time model (`hardware.time_model = "profile"`): operator
//! times interpolated from measured tables instead of computed from rooflines.
//!
//! # Where the tables come from
//!
//! `hardware.profile_dir` is a folder laid out like `../shared/profiles`
//! (formats documented in [`vidur`] and [`apex`]):
//!
//! - `vidur/compute/<gpu>/<org>/<model>/mlp.csv` — per-layer operator times
//!   (required). `<gpu>` is the device's `profile_names.vidur_compute` in the
//!   catalog; the model folder is the first (in name order) whose
//!   architecture columns (`n_head`, `n_kv_head`, `n_embd`,
//!   `n_expanded_embd`, `use_gated_mlp`) equal the scenario model's — the
//!   vocabulary is not compared, since it only changes the embedding lookup
//!   (profiled per token) and the LM head (not profiled). So Llama-3-70B
//!   uses the `Llama-2-70b-hf` tables, whose layers are identical.
//! - `attention.csv` beside it (optional): prefill and decode attention and
//!   the KV-cache write, when its head counts match the model.
//! - `apex/comm/<GPU>/all_reduce.csv` and `sendrecv.csv` (`<GPU>` =
//!   `profile_names.apex_comm`), else `vidur/network/<node>/all_reduce.csv`
//!   and `send_recv.csv` (`profile_names.vidur_network`). APEX+'s tables
//!   come first: they were measured on the testbed of the vLLM ground truth
//!   and their small-message all-reduce (14 µs on 8 H100s) is close to what
//!   vLLM's custom all-reduce achieves, where Vidur's NCCL table (37 µs)
//!   makes TP 8 decode steps ~35% too slow (see docs/fidelity.md).
//!
//! Whatever is missing is priced by the analytical model (and
//! [`ProfileModel::description`] says which parts), so a profile folder with
//! only `mlp.csv` still works. FP16/BF16 weights only: the public profiles
//! are FP16, so an FP8 plan is an error rather than a silent mismatch;
//! mixture-of-experts models are not covered by Vidur's tables either.
//!
//! # Interpolation (see [`interp`])
//!
//! - MLP-table operators: one curve per operator over `num_tokens`
//!   (log–log), for the scenario's TP degree (which must be in the table).
//! - Decode attention: a 2-D table, batch size (outer, linear) × KV tokens
//!   per request (inner, linear), bilinear — Vidur measures a full grid.
//!   A batch is priced at its mean context `K_d / D`.
//! - Prefill attention: a 2-D table, chunk size (outer, log) × tokens already
//!   cached (inner, linear). Vidur measures one request per row, triangular
//!   (chunk + cached ≤ `max_model_len`); beyond a row's last node the time
//!   grows linearly in the cached tokens with the slope of the nearest
//!   multi-node row scaled by the chunk ratio (attention work is `c·k`). A
//!   batch of `n` chunks is priced as `n` chunks of the mean size `c̄ = T_p/n`
//!   at the cached length `k̄` that gives the batch's causal pair count
//!   (`c̄·k̄ + c̄(c̄+1)/2 = P/n`), exact for uniform batches.
//! - Collectives: a curve over message bytes (log–log): an all-reduce of
//!   `T·h·2` bytes at the plan's TP (rows with `num_workers = tp` and
//!   `devices_per_node = min(tp, node size)`), a send/recv of the PP hand-off
//!   (`2·T·h·2` bytes; intra-node rows for hops inside a node, inter-node rows otherwise).
//!
//! # Composition
//!
//! Same structure as the analytical model (see its module docs): per layer
//! `QKV + RoPE + KV write + attention + O + MLP (up, act, down) + 2 norms +
//! add + 2 all-reduces`, times `L`; plus the embedding, one more all-reduce,
//! the final norm, the LM head, logits gather and sampling (analytical: not
//! profiled), PP hand-offs, the eager-launch floor of prefill iterations and
//! the per-iteration CPU overhead (engine properties from the device's
//! calibration, not operator times). The analytical model's fitted per-layer
//! overheads are *not* added: profiled operator times already contain what
//! the kernels cost. FLOPs and bytes (for MFU) are the analytical counts.

pub mod apex;
pub mod fit;
pub mod interp;
pub mod vidur;

use super::analytical::{AnalyticalModel, Breakdown};
use super::{BatchShape, IterationCost, TimeModel};
use crate::catalog::{DeviceSpec, Dtype, ModelSpec};
use crate::error::{Error, Result};
use interp::{Curve, Scale, Table2d};
use std::path::{Path, PathBuf};
use vidur::op;

/// The profile files found for one (device, model).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileFiles {
    pub mlp: PathBuf,
    pub attention: Option<PathBuf>,
    pub all_reduce: Option<PathBuf>,
    pub send_recv: Option<PathBuf>,
}

fn not_found(msg: String) -> Error {
    Error::Infeasible(format!("profile time model: {msg}"))
}

/// The `vidur` folder of a profile root: `root/vidur` when it exists, else `root` itself.
pub fn vidur_root(root: &Path) -> PathBuf {
    let v = root.join("vidur");
    if v.is_dir() { v } else { root.to_path_buf() }
}

/// Sorted subdirectories of `dir` (empty if it cannot be read).
pub fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Every `compute/<gpu>/<org>/<model>/mlp.csv` under a device's folder, in name order.
pub fn mlp_tables(root: &Path, device: &DeviceSpec) -> Result<Vec<PathBuf>> {
    let key = &device.profile_names.vidur_compute;
    if key.is_empty() {
        return Err(not_found(format!(
            "device {} has no `profile_names.vidur_compute` in the catalog, so its compute profiles cannot be found",
            device.name
        )));
    }
    let dir = vidur_root(root).join("compute").join(key);
    if !dir.is_dir() {
        return Err(not_found(format!(
            "no folder {} (compute profiles of {})",
            dir.display(),
            device.name
        )));
    }
    Ok(subdirs(&dir)
        .iter()
        .flat_map(|org| subdirs(org))
        .map(|m| m.join("mlp.csv"))
        .filter(|p| p.is_file())
        .collect())
}

/// Finds the tables for `model` on `device` under `root`.
pub fn locate(root: &Path, device: &DeviceSpec, model: &ModelSpec) -> Result<ProfileFiles> {
    let mut seen = Vec::new();
    let mut mlp = None;
    for path in mlp_tables(root, device)? {
        if let Some(row) = vidur::peek_mlp(&path)? {
            let a = row.arch;
            if a.n_head == model.num_heads
                && a.n_kv_head == model.num_kv_heads
                && a.n_embd == model.hidden_size
                && a.n_expanded_embd == model.intermediate_size
                && a.gated == model.gated_mlp
            {
                mlp = Some(path);
                break;
            }
            seen.push(format!(
                "{} (heads {}, kv heads {}, hidden {}, mlp {})",
                path.parent().map(|p| p.display().to_string()).unwrap_or_default(),
                a.n_head,
                a.n_kv_head,
                a.n_embd,
                a.n_expanded_embd
            ));
        }
    }
    let Some(mlp) = mlp else {
        return Err(not_found(format!(
            "no mlp.csv for {} on {} matches its architecture (heads {}, kv heads {}, hidden {}, mlp {}); found: {}",
            model.name,
            device.name,
            model.num_heads,
            model.num_kv_heads,
            model.hidden_size,
            model.intermediate_size,
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join("; ")
            }
        )));
    };
    let attention = mlp.with_file_name("attention.csv");
    let (all_reduce, send_recv) = comm_tables(root, device);
    Ok(ProfileFiles {
        attention: attention.is_file().then_some(attention),
        mlp,
        all_reduce,
        send_recv,
    })
}

/// The device's all-reduce and send/recv tables: APEX+'s comm folder first, then Vidur's network folder.
pub fn comm_tables(root: &Path, device: &DeviceSpec) -> (Option<PathBuf>, Option<PathBuf>) {
    let names = &device.profile_names;
    let vidur_net = (!names.vidur_network.is_empty())
        .then(|| vidur_root(root).join("network").join(&names.vidur_network));
    let apex = (!names.apex_comm.is_empty()).then(|| root.join("apex").join("comm").join(&names.apex_comm));
    let pick = |vidur_name: &str, apex_name: &str| {
        apex.as_ref()
            .map(|d| d.join(apex_name))
            .filter(|p| p.is_file())
            .or_else(|| {
                vidur_net
                    .as_ref()
                    .map(|d| d.join(vidur_name))
                    .filter(|p| p.is_file())
            })
    };
    (
        pick("all_reduce.csv", "all_reduce.csv"),
        pick("send_recv.csv", "sendrecv.csv"),
    )
}

/// `(bytes, seconds)` samples of a collective for `workers` GPUs laid out
/// `per_node` to a node, from a Vidur or APEX+ table (detected by name).
pub fn collective_samples(path: &Path, workers: u32, per_node: u32) -> Result<Vec<(f64, f64)>> {
    let is_apex = path.components().any(|c| c.as_os_str() == "apex");
    if is_apex {
        let p = apex::read_comm(path)?;
        if per_node != workers {
            return Ok(Vec::new()); // APEX+'s shared tables are single-node only.
        }
        Ok(p.single_node_half(workers))
    } else {
        let p = vidur::read_collective(path)?;
        Ok(p.rows
            .iter()
            .filter(|r| r.num_workers == workers && r.devices_per_node == per_node)
            .map(|r| (r.bytes, r.secs))
            .collect())
    }
}

fn curve(samples: &[(f64, f64)], path: &Path, what: &str) -> Result<Curve> {
    Curve::new(samples, Scale::Log, Scale::Log)
        .map_err(|e| not_found(format!("{}: {what}: {e}", path.display())))
}

/// The profile-table time model for one replica configuration.
#[derive(Debug, Clone)]
pub struct ProfileModel {
    base: AnalyticalModel,
    /// Per-layer operator curves over tokens (None: the operator is absent, 0 s).
    ops: [Option<Curve>; 10],
    prefill_attn: Option<Table2d>,
    decode_attn: Option<Table2d>,
    kv_save: Option<Curve>,
    all_reduce: Option<Curve>,
    /// PP hand-off curves over bytes, and how many hops of each kind.
    send_intra: Option<Curve>,
    send_inter: Option<Curve>,
    hops: (f64, f64),
    /// Bytes of one token's hidden state (`h · 2`).
    hidden_bytes: f64,
    description: String,
}

impl ProfileModel {
    /// Loads the tables under `root` for `model` on `device` and builds the
    /// interpolators. `base` prices what the tables do not cover.
    pub fn new(
        root: &Path,
        model: &ModelSpec,
        device: &DeviceSpec,
        weight_dtype: Dtype,
        base: AnalyticalModel,
    ) -> Result<ProfileModel> {
        if weight_dtype.bytes() < 2.0 {
            return Err(not_found(format!(
                "the operator profiles are FP16; {} weights are not profiled (use the analytical model)",
                weight_dtype.name()
            )));
        }
        if model.is_moe() {
            return Err(not_found(format!(
                "{} is a mixture-of-experts model; Vidur's MLP tables cover dense layers only",
                model.name
            )));
        }
        let files = locate(root, device, model)?;
        let par = base.parallel();
        let tp = par.tp;
        let mut notes = vec![format!("operators from {}", files.mlp.display())];

        let mlp = vidur::read_mlp(&files.mlp)?;
        let rows: Vec<_> = mlp.rows.iter().filter(|r| r.tp == tp).collect();
        if rows.is_empty() {
            let mut tps: Vec<u32> = mlp.rows.iter().map(|r| r.tp).collect();
            tps.sort();
            tps.dedup();
            return Err(not_found(format!(
                "{} has no rows for TP {tp} (profiled: {tps:?})",
                files.mlp.display()
            )));
        }
        let mut ops: [Option<Curve>; 10] = Default::default();
        for (i, slot) in ops.iter_mut().enumerate() {
            let samples: Vec<(f64, f64)> = rows.iter().map(|r| (r.tokens as f64, r.ops[i])).collect();
            if samples.iter().any(|s| s.1 > 0.0) {
                *slot = Some(curve(&samples, &files.mlp, vidur::MLP_OPS[i])?);
            }
        }

        let (mut prefill_attn, mut decode_attn, mut kv_save) = (None, None, None);
        match &files.attention {
            Some(path) => {
                let att = vidur::read_attention(path)?;
                let q_heads = model.num_heads;
                let mine: Vec<_> = att
                    .rows
                    .iter()
                    .filter(|r| {
                        r.tp == tp
                            && r.n_q_head == q_heads
                            && r.n_kv_head == model.num_kv_heads
                            && r.n_embd == model.hidden_size
                    })
                    .collect();
                if mine.is_empty() {
                    notes.push(format!(
                        "attention analytical ({} has no rows for these heads at TP {tp})",
                        path.display()
                    ));
                } else {
                    let (p, d, k) =
                        attention_tables(&mine).map_err(|e| not_found(format!("{}: {e}", path.display())))?;
                    prefill_attn = p;
                    decode_attn = d;
                    kv_save = k;
                    notes.push(format!("attention from {}", path.display()));
                }
            }
            None => notes.push("attention analytical (no attention.csv)".into()),
        }

        let node = par.devices_per_node.max(1);
        let mut all_reduce = None;
        if tp > 1 {
            if let Some(path) = &files.all_reduce {
                let s = collective_samples(path, tp, tp.min(node))?;
                if !s.is_empty() {
                    all_reduce = Some(curve(&s, path, "all_reduce")?);
                    notes.push(format!("all-reduce from {}", path.display()));
                }
            }
            if all_reduce.is_none() {
                notes.push(format!("all-reduce analytical (no profile for {tp} GPUs)"));
            }
        }
        let hops = pp_hops(par.tp, par.pp, node);
        let (mut send_intra, mut send_inter) = (None, None);
        if par.pp > 1
            && let Some(path) = &files.send_recv
        {
            let intra = collective_samples(path, 2, 2)?;
            let inter = collective_samples(path, 2, 1)?;
            if !intra.is_empty() {
                send_intra = Some(curve(&intra, path, "send_recv")?);
            }
            if !inter.is_empty() {
                send_inter = Some(curve(&inter, path, "send_recv")?);
            }
            notes.push(format!("pipeline hand-offs from {}", path.display()));
        }
        Ok(ProfileModel {
            base,
            ops,
            prefill_attn,
            decode_attn,
            kv_save,
            all_reduce,
            send_intra,
            send_inter,
            hops,
            hidden_bytes: model.hidden_size as f64 * 2.0,
            description: notes.join("; "),
        })
    }

    /// Which tables were used and what fell back to the analytical model.
    pub fn description(&self) -> &str {
        &self.description
    }

    #[inline]
    fn op(&self, i: usize, tokens: f64) -> f64 {
        self.ops[i].as_ref().map_or(0.0, |c| c.eval(tokens))
    }

    /// Time of one forward pass broken down by operator (same fields and
    /// meaning as the analytical model's [`Breakdown`]).
    pub fn breakdown(&self, b: &BatchShape) -> Breakdown {
        if b.is_empty() {
            return Breakdown::default();
        }
        let base = self.base.breakdown(b);
        let layers = self.base.layers();
        let t = b.total_tokens() as f64;

        let qkv = self.op(op::QKV, t);
        let o = self.op(op::O_PROJ, t);
        let mlp = self.op(op::UP, t) + self.op(op::ACT, t) + self.op(op::DOWN, t);
        let norm = self.op(op::INPUT_NORM, t);
        let norms = norm + self.op(op::POST_NORM, t);
        let add = self.op(op::ADD, t);
        let kv_write = match &self.kv_save {
            Some(c) => c.eval(t),
            None => self.base.kv_write_time(t),
        };
        let rope_kv = self.op(op::ROPE, t) + kv_write;

        let pre_attn = match (&self.prefill_attn, b.prefill_seqs) {
            (_, 0) => 0.0,
            (Some(tab), n) => {
                let n = n as f64;
                let c = b.prefill_tokens as f64 / n;
                let k = ((b.prefill_attn_pairs / n - c * (c + 1.0) / 2.0) / c).max(0.0);
                n * tab.eval(c, k)
            }
            (None, _) => base.prefill_attention / layers,
        };
        let dec_attn = match (&self.decode_attn, b.decode_seqs) {
            (_, 0) => 0.0,
            (Some(tab), d) => tab.eval(d as f64, b.decode_kv_tokens as f64 / d as f64),
            (None, _) => base.decode_attention / layers,
        };
        let ar_base = self.base.all_reduce_time(t);
        let all_reduce = match &self.all_reduce {
            Some(c) => c.eval(t * self.hidden_bytes),
            None => ar_base,
        };
        let gather = (base.tp_comm - (2.0 * layers + 1.0) * ar_base).max(0.0);
        let hand_off = 2.0 * t * self.hidden_bytes;
        let pp_comm = if self.hops.0 + self.hops.1 == 0.0 {
            0.0
        } else if self.send_intra.is_some() || self.send_inter.is_some() {
            let per = |c: &Option<Curve>, other: &Option<Curve>| {
                c.as_ref().or(other.as_ref()).map_or(0.0, |c| c.eval(hand_off))
            };
            self.hops.0 * per(&self.send_intra, &self.send_inter)
                + self.hops.1 * per(&self.send_inter, &self.send_intra)
        } else {
            base.pp_comm
        };

        let layer_time = qkv + rope_kv + pre_attn + dec_attn + o + mlp + norms + add + 2.0 * all_reduce;
        let embedding = self.op(op::EMB, t);
        let first_extra = embedding + all_reduce;
        let last_extra = norm + base.lm_head + gather + base.sampling;
        let (gpu, critical_stage) = self.base.compose(b, layer_time, first_extra, last_extra, pp_comm);
        Breakdown {
            embedding,
            qkv_proj: layers * qkv,
            rope_kv_write: layers * rope_kv,
            prefill_attention: layers * pre_attn,
            decode_attention: layers * dec_attn,
            o_proj: layers * o,
            mlp: layers * mlp,
            norms: layers * norms + norm,
            residual_adds: layers * add,
            lm_head: base.lm_head,
            sampling: base.sampling,
            tp_comm: (2.0 * layers + 1.0) * all_reduce + gather,
            pp_comm,
            cpu_overhead: base.cpu_overhead,
            total: gpu + base.cpu_overhead,
            critical_stage,
            per_layer: layer_time,
            first_stage_extra: first_extra,
            last_stage_extra: last_extra,
            active_experts: base.active_experts,
            flops: base.flops,
            hbm_bytes: base.hbm_bytes,
        }
    }
}

/// Intra-node and inter-node pipeline hops of `pp` stages of `tp` devices
/// laid out contiguously on nodes of `node` devices.
pub fn pp_hops(tp: u32, pp: u32, node: u32) -> (f64, f64) {
    let (mut intra, mut inter) = (0.0, 0.0);
    for i in 0..pp.saturating_sub(1) {
        let first = i * tp;
        let last = (i + 2) * tp - 1;
        if first / node == last / node {
            intra += 1.0;
        } else {
            inter += 1.0;
        }
    }
    (intra, inter)
}

type AttentionTables = (Option<Table2d>, Option<Table2d>, Option<Curve>);

/// Builds the prefill and decode attention tables and the KV-write curve
/// from the rows of one TP degree.
fn attention_tables(rows: &[&vidur::AttentionRow]) -> Result<AttentionTables, String> {
    type Pick<'a> = &'a dyn Fn(&vidur::AttentionRow) -> Option<(f64, f64, f64)>;
    let group = |pick: Pick| {
        let mut v: Vec<(f64, Vec<(f64, f64)>)> = Vec::new();
        let mut pts: Vec<(f64, f64, f64)> = rows.iter().filter_map(|r| pick(r)).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        for (o, k, y) in pts {
            match v.last_mut() {
                Some(last) if last.0 == o => last.1.push((k, y)),
                _ => v.push((o, vec![(k, y)])),
            }
        }
        v
    };
    let prefill_rows = group(&|r| r.is_prefill.then_some((r.chunk as f64, r.kv as f64, r.attn)));
    let decode_rows = group(&|r| (!r.is_prefill).then_some((r.batch_size as f64, r.kv as f64, r.attn)));
    // Attention work of a chunk c over k cached tokens grows as c·k: a row
    // measured at a single context inherits the nearest row's slope × c/c_ref.
    let prefill = if prefill_rows.is_empty() {
        None
    } else {
        Some(Table2d::new(
            prefill_rows,
            Scale::Log,
            Scale::Linear,
            Scale::Linear,
            |o, o_ref, s| s * o / o_ref,
        )?)
    };
    let decode = if decode_rows.is_empty() {
        None
    } else {
        Some(Table2d::new(
            decode_rows,
            Scale::Linear,
            Scale::Linear,
            Scale::Linear,
            |o, o_ref, s| s * o / o_ref,
        )?)
    };
    // KV-cache write by new tokens: a chunk writes c tokens, a decode batch b.
    let kv: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.kv_save > 0.0)
        .map(|r| {
            let tokens = if r.is_prefill { r.chunk } else { r.batch_size } as f64;
            (tokens, r.kv_save)
        })
        .collect();
    let kv_save = if kv.is_empty() {
        None
    } else {
        Some(Curve::new(&kv, Scale::Log, Scale::Log)?)
    };
    Ok((prefill, decode, kv_save))
}

impl TimeModel for ProfileModel {
    fn iteration(&self, batch: &BatchShape) -> IterationCost {
        self.breakdown(batch).cost()
    }

    fn stage_times(&self, batch: &BatchShape, out: &mut Vec<f64>) {
        let b = self.breakdown(batch);
        self.base.stage_times_of(&b, batch.total_tokens() as f64, out);
    }

    fn peak_rates(&self) -> (f64, f64) {
        self.base.peak_rates()
    }
}

#[cfg(test)]
mod tests;
