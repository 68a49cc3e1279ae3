//! The profile model on synthetic tables whose answers are known.

use super::*;
use crate::catalog::Catalog;
use crate::timing::analytical::ParallelConfig;
use crate::timing::{BatchShape, Calibration, TimeModel};
use std::fmt::Write as _;

const OPS: [&str; 10] = vidur::MLP_OPS;

fn stats(ms: f64) -> String {
    format!("{ms},{ms},{ms},{ms},0")
}

pub(super) fn mlp_header() -> String {
    let mut h = String::new();
    for name in OPS {
        for s in ["min", "max", "mean", "median", "std"] {
            write!(h, "time_stats.{name}.{s},").unwrap();
        }
    }
    h + "n_head,n_kv_head,n_embd,n_expanded_embd,vocab_size,use_gated_mlp,num_tokens,num_tensor_parallel_workers\n"
}

/// Operator `i`'s synthetic time (ms) at `t` tokens: a power law, which
/// log–log interpolation reproduces exactly between nodes.
fn op_ms(i: usize, t: f64) -> f64 {
    (i + 1) as f64 * 1e-3 * t.powf(0.5)
}

const TOKENS: [u32; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

pub(super) fn write_mlp(dir: &Path, arch: &str, tps: &[u32], ms: impl Fn(u32, usize, f64) -> f64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = mlp_header();
    for &tp in tps {
        for t in TOKENS.iter().chain(&[256, 512, 1024, 2048, 4096]) {
            let cols: Vec<String> = (0..10).map(|i| stats(ms(tp, i, *t as f64))).collect();
            writeln!(text, "{},{arch},{t},{tp}", cols.join(",")).unwrap();
        }
    }
    std::fs::write(dir.join("mlp.csv"), text).unwrap();
}

/// Prefill: `1e-6·c·(k + c/2)` ms; decode: `1e-3 + 1e-7·b·kv` ms (bilinear); KV save
/// `save`·tokens ms (1e-4 in `setup`).
fn write_attention(dir: &Path, tp: u32, save: f64) {
    let mut text = String::from(
        "time_stats.attn_prefill.median,time_stats.attn_decode.median,time_stats.attn_kv_cache_save.median,n_embd,n_q_head,n_kv_head,block_size,num_tensor_parallel_workers,max_model_len,batch_size,prefill_chunk_size,kv_cache_size,is_prefill\n",
    );
    for c in [64u32, 128, 256] {
        for k in [0u32, 256, 512] {
            let ms = 1e-6 * c as f64 * (k as f64 + c as f64 / 2.0);
            writeln!(
                text,
                "{ms},,{},8192,64,8,16,{tp},4096,1,{c},{k},True",
                save * c as f64
            )
            .unwrap();
        }
    }
    for b in [1u32, 2, 4, 8] {
        for kv in [128u32, 256, 512] {
            let ms = 1e-3 + 1e-7 * (b * kv) as f64;
            writeln!(
                text,
                ",{ms},{},8192,64,8,16,{tp},4096,{b},0,{kv},False",
                save * b as f64
            )
            .unwrap();
        }
    }
    std::fs::write(dir.join("attention.csv"), text).unwrap();
}

/// All-reduce `0.01 + bytes/1e8` ms at 2 and 4 GPUs, sizes 16 KiB · 2^i.
fn write_all_reduce(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::from(
        ",time_stats.all_reduce.median,rank,num_workers,size,collective,devices_per_node,max_devices_per_node\n",
    );
    let mut i = 0;
    for n in [2u32, 4] {
        for p in 0..12 {
            let bytes = 16384u64 << p;
            writeln!(
                text,
                "{i},{},0,{n},{bytes},all_reduce,{n},8",
                0.01 + bytes as f64 / 1e8
            )
            .unwrap();
            i += 1;
        }
    }
    std::fs::write(dir.join("all_reduce.csv"), text).unwrap();
}

pub(super) const LLAMA70B_ARCH: &str = "64,8,8192,28672,32768,True";

fn setup() -> (tempfile::TempDir, ModelSpec, DeviceSpec) {
    let root = tempfile::tempdir().unwrap();
    let model_dir = root.path().join("vidur/compute/h100/meta-llama/Llama-2-70b-hf");
    write_mlp(&model_dir, LLAMA70B_ARCH, &[1, 2, 4], |_, i, t| op_ms(i, t));
    write_attention(&model_dir, 4, 1e-4);
    write_all_reduce(&root.path().join("vidur/network/h100_dgx"));
    // Another architecture first in name order, which must not be picked.
    write_mlp(
        &root.path().join("vidur/compute/h100/aaa/Other"),
        "32,32,4096,11008,32000,True",
        &[1],
        |_, i, t| op_ms(i, t),
    );
    let cat = Catalog::builtin();
    let model = cat.model("Llama-3-70B").unwrap().clone();
    let device = cat.device("H100-SXM").unwrap().clone();
    (root, model, device)
}

fn build(root: &Path, model: &ModelSpec, device: &DeviceSpec, tp: u32, pp: u32) -> Result<ProfileModel> {
    let base = AnalyticalModel::new(
        model,
        device,
        Dtype::Bf16,
        Dtype::Bf16,
        ParallelConfig::new(tp, pp, 8),
        Calibration::default(),
    )?;
    ProfileModel::new(root, model, device, Dtype::Bf16, base)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

#[test]
fn locates_the_table_by_architecture_not_name() {
    let (root, model, device) = setup();
    let files = locate(root.path(), &device, &model).unwrap();
    assert!(
        files.mlp.ends_with("meta-llama/Llama-2-70b-hf/mlp.csv"),
        "{files:?}"
    );
    assert!(files.attention.is_some() && files.all_reduce.is_some() && files.send_recv.is_none());
}

/// Without KV-save times in the attention table, the KV write falls back
/// to the analytical kernel: per layer and device, read the new K and V
/// rows (2 × 2 KV heads × 128 × 2 bytes at TP 4) and write them to the
/// cache (as much again): 2,048 bytes a token at the H100's 3.35 TB/s
/// (some of it, by the memory efficiency). From 3,000 to 6,000 tokens that
/// is 3,000 × 2,048 B / 3.35e12 B/s = 1.83 µs more per layer at full
/// bandwidth, at most twice that at half of it. The write is isolated by
/// comparing with a table whose KV-save times are negligible (1e-12 ms a
/// token), everything else the same.
#[test]
fn a_table_without_kv_save_times_falls_back_to_the_analytical_kv_write() {
    let (root, model, device) = setup();
    let dir = root.path().join("vidur/compute/h100/meta-llama/Llama-2-70b-hf");
    let rope_kv = |save: f64, t: u32| {
        write_attention(&dir, 4, save);
        let m = build(root.path(), &model, &device, 4, 1).unwrap();
        let b = BatchShape {
            decode_seqs: t,
            decode_kv_tokens: t as u64 * 256,
            ..Default::default()
        };
        m.breakdown(&b).rope_kv_write / model.num_layers as f64
    };
    let kv_write = |t: u32| rope_kv(0.0, t) - rope_kv(1e-12, t);
    let full_bandwidth = 3000.0 * 2048.0 / 3.35e12;
    let grew = kv_write(6000) - kv_write(3000);
    assert!(grew >= full_bandwidth && grew <= 2.0 * full_bandwidth, "{grew}");
}

/// Every time a breakdown lists, CPU overhead included.
fn sum_of_parts(br: &Breakdown) -> f64 {
    br.embedding
        + br.qkv_proj
        + br.rope_kv_write
        + br.prefill_attention
        + br.decode_attention
        + br.o_proj
        + br.mlp
        + br.norms
        + br.residual_adds
        + br.lm_head
        + br.sampling
        + br.tp_comm
        + br.pp_comm
        + br.cpu_overhead
}

#[test]
fn operator_times_are_the_tables_at_and_between_nodes() {
    let (root, model, device) = setup();
    let m = build(root.path(), &model, &device, 4, 1).unwrap();
    let layers = model.num_layers as f64;
    for t in [16u32, 24, 100, 3000] {
        let b = BatchShape {
            decode_seqs: t,
            decode_kv_tokens: t as u64 * 256,
            ..Default::default()
        };
        let br = m.breakdown(&b);
        let tf = t as f64;
        assert!(close(br.qkv_proj, layers * op_ms(op::QKV, tf) * 1e-3), "t={t}");
        assert!(close(br.o_proj, layers * op_ms(op::O_PROJ, tf) * 1e-3), "t={t}");
        let mlp = (op_ms(op::UP, tf) + op_ms(op::ACT, tf) + op_ms(op::DOWN, tf)) * 1e-3;
        assert!(close(br.mlp, layers * mlp), "t={t}");
        assert!(close(br.embedding, op_ms(op::EMB, tf) * 1e-3));
        // Two norms a layer and the final one.
        let norm = op_ms(op::INPUT_NORM, tf) * 1e-3;
        assert!(close(
            br.norms,
            layers * (norm + op_ms(op::POST_NORM, tf) * 1e-3) + norm
        ));
        // The total is the sum of its parts plus the CPU overhead.
        let parts = sum_of_parts(&br);
        assert!(close(br.total, parts), "{} vs {parts}", br.total);
        assert_eq!(m.iteration(&b).duration, crate::units::secs_to_nanos(br.total));
    }
}

/// Llama-3-70B's 80 layers over pp = 2 (tp 4, one node): 40 a stage, the
/// first with the embedding and the hand-off, the second with the LM head
/// and sampling; the stages add up to the profiled GPU time.
#[test]
fn profiled_stage_times_add_up_to_the_gpu_time() {
    let (root, model, device) = setup();
    let m = build(root.path(), &model, &device, 4, 2).unwrap();
    let b = BatchShape {
        decode_seqs: 24,
        decode_kv_tokens: 24 * 256,
        ..Default::default()
    };
    let br = m.breakdown(&b);
    let mut s = Vec::new();
    m.stage_times(&b, &mut s);
    assert_eq!(s.len(), 2);
    assert!(close(s[0] + s[1], br.gpu()), "{s:?} vs {}", br.gpu());
    // Stage 0 − stage 1 = (embedding + its all-reduce + the hand-off) −
    // (final norm + LM head + gather + sampling): the layers cancel.
    let embedding = op_ms(op::EMB, 24.0) * 1e-3;
    let first_minus_last = embedding + br.pp_comm - br.lm_head - br.sampling;
    let rest = (s[0] - s[1]) - first_minus_last;
    // What remains is the all-reduce of the embedding minus the final norm
    // and the logits gather: small next to a stage.
    assert!(rest.abs() < 0.01 * s[0], "{rest} of {}", s[0]);
}

#[test]
fn decode_attention_is_bilinear_in_batch_and_context() {
    let (root, model, device) = setup();
    let m = build(root.path(), &model, &device, 4, 1).unwrap();
    let layers = model.num_layers as f64;
    // (4, 256) is a node; (3, 384) is inside the grid: 1e-3 + 1e-7·b·kv exactly.
    for (b, kv) in [(4u32, 256u64), (3, 384), (6, 200)] {
        let shape = BatchShape {
            decode_seqs: b,
            decode_kv_tokens: b as u64 * kv,
            ..Default::default()
        };
        let want = (1e-3 + 1e-7 * (b as f64) * kv as f64) * 1e-3;
        let got = m.breakdown(&shape).decode_attention / layers;
        assert!(close(got, want), "b={b} kv={kv}: {got} vs {want}");
    }
}

#[test]
fn prefill_attention_uses_the_chunk_and_cached_length() {
    let (root, model, device) = setup();
    let m = build(root.path(), &model, &device, 4, 1).unwrap();
    let layers = model.num_layers as f64;
    let want = |c: f64, k: f64| 1e-6 * c * (k + c / 2.0) * 1e-3;
    // A node, a point between kv nodes, and two equal chunks (priced as 2 × one).
    let mut one = BatchShape::default();
    one.add_prefill_chunk(256, 128);
    assert!(close(
        m.breakdown(&one).prefill_attention / layers,
        want(128.0, 256.0)
    ));
    let mut mid = BatchShape::default();
    mid.add_prefill_chunk(384, 128);
    assert!(close(
        m.breakdown(&mid).prefill_attention / layers,
        want(128.0, 384.0)
    ));
    let mut two = BatchShape::default();
    two.add_prefill_chunk(512, 64);
    two.add_prefill_chunk(512, 64);
    assert!(close(
        m.breakdown(&two).prefill_attention / layers,
        2.0 * want(64.0, 512.0)
    ));
}

#[test]
fn all_reduce_comes_from_the_network_table() {
    let (root, model, device) = setup();
    let m = build(root.path(), &model, &device, 4, 1).unwrap();
    let layers = model.num_layers as f64;
    let b = BatchShape {
        decode_seqs: 4,
        decode_kv_tokens: 4 * 128,
        ..Default::default()
    };
    let bytes = 4.0 * 8192.0 * 2.0; // 64 KiB: a node of the table
    let per_call = (0.01 + bytes / 1e8) * 1e-3;
    let br = m.breakdown(&b);
    // tp_comm = (2L + 1) all-reduces + the (analytical) logits gather.
    assert!(br.tp_comm >= (2.0 * layers + 1.0) * per_call);
    assert!(br.tp_comm < (2.0 * layers + 1.0) * per_call * 1.05);
}

#[test]
fn unprofiled_cases_are_clear_errors() {
    let (root, model, device) = setup();
    let msg = build(root.path(), &model, &device, 8, 1).unwrap_err().to_string();
    assert!(
        msg.contains("no rows for TP 8") && msg.contains("[1, 2, 4]"),
        "{msg}"
    );
    let cat = Catalog::builtin();
    let small = cat.model("Llama-3-8B").unwrap();
    let msg = build(root.path(), small, &device, 1, 1).unwrap_err().to_string();
    assert!(
        msg.contains("Llama-3-8B") && msg.contains("hidden 4096") && msg.contains("Llama-2-70b-hf"),
        "{msg}"
    );
    let base = AnalyticalModel::new(
        &model,
        &device,
        Dtype::Fp8,
        Dtype::Fp8,
        ParallelConfig::new(4, 1, 8),
        Calibration::default(),
    )
    .unwrap();
    let msg = ProfileModel::new(root.path(), &model, &device, Dtype::Fp8, base)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("FP16"), "{msg}");
    let a40 = cat.device("L40S").unwrap();
    let msg = locate(root.path(), a40, &model).unwrap_err().to_string();
    assert!(msg.contains("profile_names"), "{msg}");
}

#[test]
fn pipeline_hops_inside_and_across_nodes() {
    assert_eq!(pp_hops(4, 1, 8), (0.0, 0.0));
    assert_eq!(pp_hops(4, 2, 8), (1.0, 0.0));
    assert_eq!(pp_hops(4, 4, 8), (2.0, 1.0));
    assert_eq!(pp_hops(8, 3, 8), (0.0, 2.0));
}

/// APEX+'s collective tables come before Vidur's (by their own file names,
/// `sendrecv.csv` against `send_recv.csv`); without them Vidur's are used;
/// a device naming neither folder has none.
#[test]
fn comm_tables_prefer_apex_then_fall_back_to_vidur() {
    let (root, _model, device) = setup();
    let apex = root
        .path()
        .join("apex/comm")
        .join(&device.profile_names.apex_comm);
    let net = root
        .path()
        .join("vidur/network")
        .join(&device.profile_names.vidur_network);
    std::fs::write(net.join("send_recv.csv"), "x\n").unwrap();
    assert_eq!(
        comm_tables(root.path(), &device),
        (Some(net.join("all_reduce.csv")), Some(net.join("send_recv.csv")))
    );
    std::fs::create_dir_all(&apex).unwrap();
    std::fs::write(apex.join("all_reduce.csv"), "x\n").unwrap();
    assert_eq!(
        comm_tables(root.path(), &device),
        (Some(apex.join("all_reduce.csv")), Some(net.join("send_recv.csv")))
    );
    std::fs::write(apex.join("sendrecv.csv"), "x\n").unwrap();
    assert_eq!(
        comm_tables(root.path(), &device).1,
        Some(apex.join("sendrecv.csv"))
    );
    let mut bare = device.clone();
    (bare.profile_names.apex_comm, bare.profile_names.vidur_network) = (String::new(), String::new());
    assert_eq!(comm_tables(root.path(), &bare), (None, None));
}

/// APEX+'s shared tables are single-node: asked for GPUs spread over nodes
/// they give no samples; Vidur's rows are picked by workers and node size.
#[test]
fn collective_samples_pick_their_layout() {
    let dir = tempfile::tempdir().unwrap();
    let apex = dir.path().join("apex/comm/H100-SXM-80GB");
    std::fs::create_dir_all(&apex).unwrap();
    let a = apex.join("all_reduce.csv");
    std::fs::write(
        &a,
        "gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\nH100,1,4,half,1,10\nH100,1,8,half,1,20\n",
    )
    .unwrap();
    assert_eq!(collective_samples(&a, 4, 4).unwrap(), vec![(1024.0, 10.0 * 1e-6)]);
    assert!(collective_samples(&a, 4, 2).unwrap().is_empty());
    let v = dir.path().join("send_recv.csv");
    std::fs::write(
        &v,
        "time_stats.send_recv.median,num_workers,size,devices_per_node\n1,2,2048,2\n3,2,2048,1\n",
    )
    .unwrap();
    assert_eq!(collective_samples(&v, 2, 2).unwrap(), vec![(2048.0, 1e-3)]);
    assert_eq!(collective_samples(&v, 2, 1).unwrap(), vec![(2048.0, 3.0 * 1e-3)]);
    assert!(collective_samples(&v, 4, 4).unwrap().is_empty());
}

/// `vidur_root` is `root/vidur` when that folder exists, else the root.
#[test]
fn the_vidur_root_may_be_the_root_itself() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(vidur_root(dir.path()), dir.path());
    std::fs::create_dir(dir.path().join("vidur")).unwrap();
    assert_eq!(vidur_root(dir.path()), dir.path().join("vidur"));
}

/// A PP hand-off (`2·T·h·2` bytes) is priced from the send/recv table's
/// intra-node rows for a hop inside a node, and from the other kind's rows
/// when the table has only those. TP 4 × PP 2 on one 8-GPU node: one intra
/// hop; 24 decode tokens of Llama-3-70B hand off 24 · 8192 · 4 = 786,432 B.
#[test]
fn pipeline_hand_offs_come_from_the_send_recv_rows_of_their_hop() {
    let (root, model, device) = setup();
    let net = root.path().join("vidur/network/h100_dgx");
    let b = BatchShape {
        decode_seqs: 24,
        decode_kv_tokens: 24 * 256,
        ..Default::default()
    };
    let bytes = 786_432.0;
    let intra_ms = |x: f64| 0.01 + x / 1e9;
    let inter_ms = |x: f64| 0.05 + x / 1e8;
    let table = |kinds: &[u32]| {
        let mut text = String::from("time_stats.send_recv.median,num_workers,size,devices_per_node\n");
        for &dpn in kinds {
            for x in [bytes / 2.0, bytes, bytes * 2.0] {
                let ms = if dpn == 2 { intra_ms(x) } else { inter_ms(x) };
                writeln!(text, "{ms},2,{x},{dpn}").unwrap();
            }
        }
        std::fs::write(net.join("send_recv.csv"), text).unwrap();
        build(root.path(), &model, &device, 4, 2)
            .unwrap()
            .breakdown(&b)
            .pp_comm
    };
    assert!(close(table(&[2, 1]), intra_ms(bytes) * 1e-3));
    assert!(close(table(&[1]), inter_ms(bytes) * 1e-3));
    assert!(close(table(&[2]), intra_ms(bytes) * 1e-3));
}

/// Every architecture column must match, not some: tables differing from
/// Llama-3-8B (32 heads, 8 KV heads, hidden 4,096, MLP 14,336, gated) in one
/// column each come first in name order and are all passed over.
#[test]
fn locate_needs_every_architecture_column_to_match() {
    let root = tempfile::tempdir().unwrap();
    let compute = root.path().join("vidur/compute/h100");
    for (name, arch) in [
        ("a/OtherHidden", "32,8,5120,14336,128256,True"),
        ("b/OtherHeads", "40,8,4096,14336,128256,True"),
        ("c/OtherKvHeads", "32,32,4096,14336,128256,True"),
        ("d/OtherMlp", "32,8,4096,11008,128256,True"),
        ("e/Ungated", "32,8,4096,14336,128256,False"),
        ("f/Llama-3-8B", "32,8,4096,14336,128256,True"),
    ] {
        write_mlp(&compute.join(name), arch, &[1], |_, i, t| op_ms(i, t));
    }
    let cat = Catalog::builtin();
    let model = cat.model("Llama-3-8B").unwrap();
    let device = cat.device("H100-SXM").unwrap();
    let files = locate(root.path(), device, model).unwrap();
    assert!(files.mlp.ends_with("f/Llama-3-8B/mlp.csv"), "{files:?}");
}

/// A pipeline of three TP-4 stages on 8-GPU nodes has one hop inside a node
/// and one across: the hand-off costs one intra-node and one inter-node
/// transfer from their own rows of the send/recv table.
#[test]
fn a_pipeline_with_both_kinds_of_hop_pays_for_each() {
    let (root, model, device) = setup();
    let bytes = 786_432.0;
    let intra_ms = |x: f64| 0.01 + x / 1e9;
    let inter_ms = |x: f64| 0.05 + x / 1e8;
    let mut text = String::from("time_stats.send_recv.median,num_workers,size,devices_per_node\n");
    for x in [bytes / 2.0, bytes, bytes * 2.0] {
        writeln!(text, "{},2,{x},2\n{},2,{x},1", intra_ms(x), inter_ms(x)).unwrap();
    }
    std::fs::write(root.path().join("vidur/network/h100_dgx/send_recv.csv"), text).unwrap();
    let base = AnalyticalModel::new(
        &model,
        &device,
        Dtype::Bf16,
        Dtype::Bf16,
        ParallelConfig::new(4, 3, 8),
        Calibration::default(),
    )
    .unwrap();
    assert_eq!(pp_hops(4, 3, 8), (1.0, 1.0));
    let m = ProfileModel::new(root.path(), &model, &device, Dtype::Bf16, base).unwrap();
    let b = BatchShape {
        decode_seqs: 24,
        decode_kv_tokens: 24 * 256,
        ..Default::default()
    };
    let want = (intra_ms(bytes) + inter_ms(bytes)) * 1e-3;
    assert!(
        close(m.breakdown(&b).pp_comm, want),
        "{} vs {want}",
        m.breakdown(&b).pp_comm
    );
}

/// What the tables do not price is the analytical model's, exactly: without
/// an attention table both attentions are the analytical ones; the TP
/// communication is the profiled all-reduces plus the analytical logits
/// gather (a real cost at TP 4, not dropped).
#[test]
fn unprofiled_parts_are_the_analytical_models() {
    let (root, model, device) = setup();
    let dir = root.path().join("vidur/compute/h100/meta-llama/Llama-2-70b-hf");
    std::fs::remove_file(dir.join("attention.csv")).unwrap();
    let m = build(root.path(), &model, &device, 4, 1).unwrap();
    let mut b = BatchShape {
        decode_seqs: 4,
        decode_kv_tokens: 4 * 300,
        ..Default::default()
    };
    b.add_prefill_chunk(200, 100);
    let (br, base) = (m.breakdown(&b), m.base.breakdown(&b));
    assert!(
        close(br.total, sum_of_parts(&br)),
        "{} vs {}",
        br.total,
        sum_of_parts(&br)
    );
    assert!(close(br.prefill_attention, base.prefill_attention) && base.prefill_attention > 0.0);
    assert!(close(br.decode_attention, base.decode_attention) && base.decode_attention > 0.0);
    let layers = model.num_layers as f64;
    let t = b.total_tokens() as f64;
    let ar = m
        .all_reduce
        .as_ref()
        .expect("profiled all-reduce")
        .eval(t * 8192.0 * 2.0);
    let gather = base.tp_comm - (2.0 * layers + 1.0) * m.base.all_reduce_time(t);
    assert!(gather > 1e-7, "{gather}");
    assert!(close(br.tp_comm, (2.0 * layers + 1.0) * ar + gather));
}

/// The profile model says which tables it used and what it priced analytically.
#[test]
fn the_description_names_each_table_and_each_fallback() {
    let (root, model, device) = setup();
    let m = build(root.path(), &model, &device, 4, 1).unwrap();
    let d = m.description();
    assert!(
        d.contains("operators from") && d.contains("Llama-2-70b-hf/mlp.csv"),
        "{d}"
    );
    assert!(
        d.contains("attention from") && d.contains("all-reduce from"),
        "{d}"
    );
    let m = build(root.path(), &model, &device, 2, 1).unwrap();
    assert!(
        m.description().contains("attention analytical ("),
        "{}",
        m.description()
    );
}

/// Vidur's prefill table is triangular and its decode grid may be ragged: a
/// row measured at one context inherits the nearest multi-node row's slope
/// in the context, scaled by its chunk (or batch) over that row's (attention
/// work is `c·k`, `b·kv`). On `f = 1e-6·c·(k + c/2)` ms and `1e-3 +
/// 1e-7·b·kv` ms that scaling is exact: chunk 256, measured only at k = 0,
/// costs f(256, 256) at 256 cached tokens; batch 16, measured only at
/// kv = 128, costs its formula at kv = 512.
#[test]
fn single_context_rows_inherit_the_scaled_slope_of_their_neighbour() {
    let (root, model, device) = setup();
    let dir = root.path().join("vidur/compute/h100/meta-llama/Llama-2-70b-hf");
    let mut text = String::from(
        "time_stats.attn_prefill.median,time_stats.attn_decode.median,n_embd,n_q_head,n_kv_head,block_size,num_tensor_parallel_workers,max_model_len,batch_size,prefill_chunk_size,kv_cache_size,is_prefill\n",
    );
    let prefill = |c: f64, k: f64| 1e-6 * c * (k + c / 2.0);
    let decode = |b: f64, kv: f64| 1e-3 + 1e-7 * b * kv;
    for (c, ks) in [(64u32, &[0u32, 64, 128][..]), (128, &[0, 128]), (256, &[0])] {
        for &k in ks {
            writeln!(
                text,
                "{},,8192,64,8,16,4,512,1,{c},{k},True",
                prefill(c as f64, k as f64)
            )
            .unwrap();
        }
    }
    for (b, kvs) in [(4u32, &[128u32, 256][..]), (8, &[128, 256]), (16, &[128])] {
        for &kv in kvs {
            writeln!(
                text,
                ",{},8192,64,8,16,4,512,{b},0,{kv},False",
                decode(b as f64, kv as f64)
            )
            .unwrap();
        }
    }
    std::fs::write(dir.join("attention.csv"), text).unwrap();
    let m = build(root.path(), &model, &device, 4, 1).unwrap();
    let layers = model.num_layers as f64;
    let mut p = BatchShape::default();
    p.add_prefill_chunk(256, 256);
    let got = m.breakdown(&p).prefill_attention / layers;
    assert!(close(got, prefill(256.0, 256.0) * 1e-3), "{got}");
    let d = BatchShape {
        decode_seqs: 16,
        decode_kv_tokens: 16 * 512,
        ..Default::default()
    };
    let got = m.breakdown(&d).decode_attention / layers;
    assert!(close(got, decode(16.0, 512.0) * 1e-3), "{got}");
}

/// Peak rates (for MFU) are the device's, as the analytical model states them.
#[test]
fn peak_rates_are_the_analytical_models() {
    let (root, model, device) = setup();
    let m = build(root.path(), &model, &device, 4, 1).unwrap();
    let (flops, bytes) = m.peak_rates();
    assert_eq!((flops, bytes), m.base.peak_rates());
    assert!(flops > 1e14 && bytes > 1e12, "{flops} {bytes}");
}
