//! `fleetsim calibrate` on tables the analytical model generated with known
//! constants: each group recovers its constants, the measurements it may not
//! use are left out, and the catalog snippet says what was fitted and how well.

use super::super::tests::{LLAMA70B_ARCH, write_mlp};
use super::*;
use crate::catalog::Catalog;
use crate::timing::profile::vidur::op;
use std::fmt::Write as _;

/// Constants every fitted one of which differs from [`Calibration::default`].
/// The decode-attention compute efficiency is low enough that long contexts
/// are compute-bound while short ones (whose q/o rows weigh more) are
/// memory-bound, so both decode constants are identifiable.
fn truth() -> Calibration {
    Calibration {
        gemm_efficiency: 0.6,
        gemm_half_tokens: 80.0,
        memory_efficiency: 0.7,
        min_kernel_time: 5e-6,
        prefill_attention_efficiency: 0.4,
        decode_attention_memory_efficiency: 0.55,
        decode_attention_compute_efficiency: 0.012,
        intra_node_link_efficiency: 0.6,
        collective_latency: 2e-5,
        ..Calibration::default()
    }
}

fn h100() -> DeviceSpec {
    Catalog::builtin().device("H100-SXM").unwrap().clone()
}

/// `spec` at TP `tp` on `device` with `cal`, in BF16 (as the profiles are).
fn model_of(spec: &ModelSpec, device: &DeviceSpec, tp: u32, cal: Calibration) -> AnalyticalModel {
    AnalyticalModel::new(
        spec,
        device,
        Dtype::Bf16,
        Dtype::Bf16,
        ParallelConfig::new(tp, 1, 8),
        cal,
    )
    .unwrap()
}

fn model(device: &DeviceSpec, tp: u32, cal: Calibration) -> AnalyticalModel {
    model_of(&spec_for(&LLAMA_70B_LAYER), device, tp, cal)
}

/// `mlp.csv` from `cal` at TP 1, 2, 4, 8, plus TP 3 rows (64 heads do not
/// split three ways, so the fit must skip them: their times are nonsense).
/// At TP 8 the O projection is missing (0 ms), which the fit must skip too.
fn write_model_mlp(dir: &Path, device: &DeviceSpec, cal: Calibration) {
    write_mlp(dir, LLAMA70B_ARCH, &[1, 2, 3, 4, 8], |tp, i, t| {
        if tp == 3 {
            return 1e3;
        }
        let br = model(device, tp, cal).breakdown(&BatchShape {
            decode_seqs: t as u32,
            decode_kv_tokens: t as u64,
            ..Default::default()
        });
        1e3 * match i {
            op::QKV => br.qkv_proj,
            op::O_PROJ if tp == 8 => 0.0,
            op::O_PROJ => br.o_proj,
            // Vidur times the MLP in three kernels; the fit adds them up.
            op::UP => 0.5 * br.mlp,
            op::ACT => 0.2 * br.mlp,
            op::DOWN => 0.3 * br.mlp,
            _ => 0.0,
        }
    });
}

const PREFILL_CHUNKS: [u32; 3] = [128, 512, 2048];
const PREFILL_CACHED: [u32; 3] = [0, 1024, 4096];
const DECODE_BATCHES: [u32; 3] = [1, 256, 4096];
const DECODE_CONTEXTS: [u32; 4] = [8, 16, 1024, 4096];

/// The attention tables' own layer shape (hidden 2048, 32 query heads of
/// 64, 4 KV heads), unlike the MLP's in every column: the fit must price
/// attention with the shape its rows state.
fn attention_model(device: &DeviceSpec, tp: u32, cal: Calibration) -> AnalyticalModel {
    let spec = ModelSpec {
        hidden_size: 2048,
        num_heads: 32,
        num_kv_heads: 4,
        head_dim: 64,
        ..spec_for(&LLAMA_70B_LAYER)
    };
    model_of(&spec, device, tp, cal)
}

/// `attention.csv` from `cal` at TP 2 and 4 for [`attention_model`], with
/// one prefill row of 0 ms (a failed measurement the fit must skip).
fn write_model_attention(dir: &Path, device: &DeviceSpec, cal: Calibration) {
    let mut text = String::from(
        "time_stats.attn_prefill.median,time_stats.attn_decode.median,n_embd,n_q_head,n_kv_head,block_size,num_tensor_parallel_workers,max_model_len,batch_size,prefill_chunk_size,kv_cache_size,is_prefill\n",
    );
    for tp in [2u32, 4] {
        let m = attention_model(device, tp, cal);
        for c in PREFILL_CHUNKS {
            for k in PREFILL_CACHED {
                let mut b = BatchShape::default();
                b.add_prefill_chunk(k as u64, c as u64);
                let ms = 1e3 * m.breakdown(&b).prefill_attention;
                writeln!(text, "{ms},,2048,32,4,16,{tp},8192,1,{c},{k},True").unwrap();
            }
        }
        writeln!(text, "0,,2048,32,4,16,{tp},8192,1,64,0,True").unwrap();
        for bs in DECODE_BATCHES {
            for kv in DECODE_CONTEXTS {
                let b = BatchShape {
                    decode_seqs: bs,
                    decode_kv_tokens: (bs * kv) as u64,
                    ..Default::default()
                };
                let ms = 1e3 * m.breakdown(&b).decode_attention;
                writeln!(text, ",{ms},2048,32,4,16,{tp},8192,{bs},0,{kv},False").unwrap();
            }
        }
    }
    std::fs::write(dir.join("attention.csv"), text).unwrap();
}

/// A Vidur `all_reduce.csv` from `cal` at 2, 4 and 8 GPUs in one node, with
/// one 0 ms row, plus 16-GPU rows (more than a node holds: never fitted).
fn write_model_all_reduce(dir: &Path, device: &DeviceSpec, cal: Calibration) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::from(
        ",time_stats.all_reduce.median,rank,num_workers,size,collective,devices_per_node,max_devices_per_node\n",
    );
    let bytes_per_token = 8192.0 * crate::timing::analytical::ACTIVATION_BYTES;
    let mut i = 0;
    for n in [2u32, 4, 8, 16] {
        let m = model(device, n.min(8), cal);
        for p in 0..10 {
            let bytes = 16384u64 << p;
            let ms = if n == 16 {
                1e3
            } else if p == 0 && n == 2 {
                0.0
            } else {
                1e3 * m.all_reduce_time(bytes as f64 / bytes_per_token)
            };
            writeln!(text, "{i},{ms},0,{n},{bytes},all_reduce,{n},8").unwrap();
            i += 1;
        }
    }
    std::fs::write(dir.join("all_reduce.csv"), text).unwrap();
}

/// A profile root with every table `calibrate` reads, generated from `cal`.
fn full_root(device: &DeviceSpec, cal: Calibration) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("vidur/compute/h100/org/m");
    write_model_mlp(&dir, device, cal);
    write_model_attention(&dir, device, cal);
    write_model_all_reduce(&root.path().join("vidur/network/h100_dgx"), device, cal);
    root
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b
}

/// Every fitted group, in order, with the number of measurements it may use:
/// GEMMs 13 token counts × (3 operators at TP 1, 2, 4; 2 at TP 8, whose O
/// projection is missing), TP 3 skipped; 9 prefill and 12 decode rows at each
/// of two TP degrees (the 0 ms row skipped); 9 all-reduce sizes at 2 GPUs
/// (one is 0 ms) and 10 at 4 and 8 (16 GPUs do not fit in a node).
#[test]
fn every_group_recovers_the_constants_that_generated_its_tables() {
    let device = h100();
    let t = truth();
    let root = full_root(&device, t);
    let fit = calibrate(root.path(), &device, Calibration::default()).unwrap();
    let groups: Vec<(&str, usize)> = fit.groups.iter().map(|g| (g.name.as_str(), g.samples)).collect();
    assert_eq!(
        groups,
        [
            ("gemm", 13 * (3 * 3 + 2)),
            ("prefill attention", 2 * 9),
            ("decode attention", 2 * 12),
            ("all-reduce", 9 + 10 + 10)
        ]
    );
    let c = fit.calibration;
    for (name, got, want, tol) in [
        ("gemm_efficiency", c.gemm_efficiency, t.gemm_efficiency, 0.02),
        ("gemm_half_tokens", c.gemm_half_tokens, t.gemm_half_tokens, 0.05),
        (
            "memory_efficiency",
            c.memory_efficiency,
            t.memory_efficiency,
            0.02,
        ),
        ("min_kernel_time", c.min_kernel_time, t.min_kernel_time, 0.05),
        (
            "prefill_attention_efficiency",
            c.prefill_attention_efficiency,
            t.prefill_attention_efficiency,
            0.02,
        ),
        (
            "decode_attention_memory_efficiency",
            c.decode_attention_memory_efficiency,
            t.decode_attention_memory_efficiency,
            0.02,
        ),
        (
            "decode_attention_compute_efficiency",
            c.decode_attention_compute_efficiency,
            t.decode_attention_compute_efficiency,
            0.02,
        ),
        (
            "intra_node_link_efficiency",
            c.intra_node_link_efficiency,
            t.intra_node_link_efficiency,
            0.02,
        ),
        (
            "collective_latency",
            c.collective_latency,
            t.collective_latency,
            0.05,
        ),
    ] {
        assert!(
            rel(got, want) < tol,
            "{name}: fitted {got}, generated with {want}"
        );
    }
    for g in &fit.groups {
        assert!(g.mape_after < 1.0, "{g:?}");
        assert!(g.mape_before > 5.0, "the defaults are not the truth: {g:?}");
    }
    let fitted: Vec<Vec<&str>> = fit
        .groups
        .iter()
        .map(|g| g.fitted.iter().map(|(n, _)| n.as_str()).collect())
        .collect();
    assert_eq!(
        fitted,
        [
            vec![
                "gemm_efficiency",
                "gemm_half_tokens",
                "memory_efficiency",
                "min_kernel_time"
            ],
            vec!["prefill_attention_efficiency"],
            vec![
                "decode_attention_memory_efficiency",
                "decode_attention_compute_efficiency"
            ],
            vec!["intra_node_link_efficiency", "collective_latency"],
        ]
    );
    // The reported values are the calibration's.
    assert_eq!(
        fit.groups[0].fitted[0],
        ("gemm_efficiency".to_string(), c.gemm_efficiency)
    );
    assert_eq!(
        fit.groups[3].fitted[1],
        ("collective_latency".to_string(), c.collective_latency)
    );
    let files: Vec<String> = fit
        .sources
        .iter()
        .map(|s| Path::new(s).file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["mlp.csv", "attention.csv", "all_reduce.csv"]);
    assert_eq!(fit.not_fitted.len(), 3, "{:?}", fit.not_fitted);
}

/// Fitted constants start from the generic defaults, whatever the catalog
/// holds (so a rerun gives the same answer); the others keep the catalog's.
/// "Before" errors are those of the catalog's constants.
#[test]
fn fitted_constants_ignore_the_catalog_and_the_rest_keep_it() {
    let device = h100();
    let t = truth();
    let root = full_root(&device, t);
    let from_default = calibrate(root.path(), &device, Calibration::default()).unwrap();
    let catalog = Calibration {
        cpu_overhead_base: 7e-3,
        inter_node_link_efficiency: 0.33,
        ..t
    };
    let from_catalog = calibrate(root.path(), &device, catalog).unwrap();
    let (a, b) = (from_default.calibration, from_catalog.calibration);
    assert_eq!(a.gemm_efficiency, b.gemm_efficiency);
    assert_eq!(
        a.decode_attention_compute_efficiency,
        b.decode_attention_compute_efficiency
    );
    assert_eq!(a.collective_latency, b.collective_latency);
    assert_eq!((b.cpu_overhead_base, b.inter_node_link_efficiency), (7e-3, 0.33));
    assert_eq!(a.cpu_overhead_base, Calibration::default().cpu_overhead_base);
    // The catalog here is the truth, so its "before" errors vanish.
    for g in &from_catalog.groups {
        assert!(g.mape_before < 1e-6, "{g:?}");
    }
}

/// Without attention or all-reduce tables only the GEMMs are fitted, the
/// other constants stay at the defaults the fit starts from, and the output
/// says which tables were missing.
#[test]
fn missing_tables_leave_their_constants_and_say_so() {
    let device = h100();
    let root = tempfile::tempdir().unwrap();
    write_model_mlp(&root.path().join("vidur/compute/h100/org/m"), &device, truth());
    let start = Calibration {
        prefill_attention_efficiency: 0.9,
        collective_latency: 1e-4,
        ..Calibration::default()
    };
    let fit = calibrate(root.path(), &device, start).unwrap();
    let names: Vec<&str> = fit.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["gemm"]);
    let d = Calibration::default();
    assert_eq!(
        fit.calibration.prefill_attention_efficiency,
        d.prefill_attention_efficiency
    );
    assert_eq!(fit.calibration.collective_latency, d.collective_latency);
    assert_eq!(fit.sources.len(), 1);
    assert_eq!(fit.not_fitted.len(), 5, "{:?}", fit.not_fitted);
    assert!(
        fit.not_fitted[3].contains("no attention.csv"),
        "{:?}",
        fit.not_fitted
    );
    assert!(
        fit.not_fitted[4].contains("no all-reduce table"),
        "{:?}",
        fit.not_fitted
    );
}

/// A compute folder without any `mlp.csv` is an error naming the device and the folder.
#[test]
fn no_usable_profile_is_an_error_naming_device_and_folder() {
    let device = h100();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("vidur/compute/h100/org/m")).unwrap();
    let err = calibrate(root.path(), &device, Calibration::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no usable profiles of H100-SXM under"), "{err}");
    assert!(err.contains(&root.path().display().to_string()), "{err}");
}

/// Every `k`-th element, `k = ⌈len / max⌉`.
#[test]
fn thinning_keeps_every_kth_element() {
    assert_eq!(thin((0..10).collect::<Vec<i32>>(), 4), [0, 3, 6, 9]);
    assert_eq!(thin((0..10).collect::<Vec<i32>>(), 5), [0, 2, 4, 6, 8]);
    assert_eq!(thin((0..3).collect::<Vec<i32>>(), 4), [0, 1, 2]);
    assert_eq!(thin((0..3).collect::<Vec<i32>>(), 0), [0]);
    assert!(thin(Vec::<i32>::new(), 4).is_empty());
}

/// Four significant digits; scientific notation outside [0.001, 10000).
#[test]
fn constants_print_with_four_significant_digits() {
    assert_eq!(fmt_sig(0.0), "0.0");
    assert_eq!(fmt_sig(0.6), "0.6000");
    assert_eq!(fmt_sig(-0.5), "-0.5000");
    assert_eq!(fmt_sig(80.0), "80.00");
    assert_eq!(fmt_sig(1234.5), "1234.5");
    assert_eq!(fmt_sig(12346.0), "1.235e4");
    assert_eq!(fmt_sig(0.001), "0.001000");
    assert_eq!(fmt_sig(0.0001234), "1.234e-4");
}

/// The catalog snippet: a header naming the command and sources, one line of
/// errors per group, the constants left alone, then `[device.calibration]`
/// with every fitted constant, which parses back.
#[test]
fn the_snippet_is_a_commented_calibration_table() {
    let fit = CalibrationFit {
        device: "X1".into(),
        sources: vec!["a/mlp.csv".into()],
        groups: vec![FitGroup {
            name: "gemm".into(),
            samples: 12,
            mape_before: 25.04,
            mape_after: 1.26,
            fitted: vec![
                ("gemm_efficiency".into(), 0.61234),
                ("min_kernel_time".into(), 4.5e-6),
            ],
        }],
        calibration: Calibration::default(),
        not_fitted: vec!["cpu_overhead_base: engine".into()],
    };
    let text = fit.to_toml("fleetsim calibrate P");
    let want = "# X1: analytical time-model constants fitted by `fleetsim calibrate P` to\n\
                #   a/mlp.csv\n\
                # mean absolute % error, catalog constants -> fitted:\n\
                #   gemm                                 12 samples     25.0% ->   1.3%\n\
                # Not fitted (kept from the catalog):\n\
                #   cpu_overhead_base: engine\n\
                [device.calibration]\n\
                gemm_efficiency = 0.6123\n\
                min_kernel_time = 4.500e-6\n";
    assert_eq!(text, want);
    let table: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        table["device"]["calibration"]["min_kernel_time"].as_float(),
        Some(4.5e-6)
    );
    let json: serde_json::Value = serde_json::from_str(&fit.to_json()).unwrap();
    assert_eq!(json["groups"][0]["samples"], 12);
    assert_eq!(json["device"], "X1");
}

/// The starting grid: `G` log-spaced values per constant, ends included,
/// `G = ⌊256^(1/n)⌋` within [3, 17] (17 for one constant, 16 for two, 4 for
/// four), so at most 256 points plus the start; it moves to the best node.
#[test]
fn the_starting_grid_spends_its_budget_on_log_spaced_nodes() {
    use std::cell::{Cell, RefCell};
    let setters: [(&str, Setter, f64, f64); 4] = [
        ("gemm_efficiency", |c| &mut c.gemm_efficiency, 0.01, 1.0),
        ("memory_efficiency", |c| &mut c.memory_efficiency, 0.01, 1.0),
        ("min_kernel_time", |c| &mut c.min_kernel_time, 1e-7, 1e-4),
        ("gemm_half_tokens", |c| &mut c.gemm_half_tokens, 1.0, 1000.0),
    ];
    for (n, per_axis) in [(1usize, 17usize), (2, 16), (4, 4)] {
        let calls = Cell::new(0usize);
        let seen = RefCell::new(Vec::new());
        let mut cal = Calibration::default();
        // Best at gemm_efficiency = 0.11: the grid moves to its nearest node.
        let objective = |c: &Calibration| {
            calls.set(calls.get() + 1);
            seen.borrow_mut().push(c.gemm_efficiency);
            (c.gemm_efficiency / 0.11).ln().abs()
        };
        grid_start(&mut cal, &setters[..n], &objective);
        assert_eq!(calls.get(), 1 + per_axis.pow(n as u32), "{n} constant(s)");
        let mut values = seen.borrow()[1..].to_vec();
        values.sort_by(f64::total_cmp);
        values.dedup();
        assert_eq!(values.len(), per_axis);
        assert!((values[0] - 0.01).abs() < 1e-15 && (values[per_axis - 1] - 1.0).abs() < 1e-12);
        let ratio = (100f64).powf(1.0 / (per_axis - 1) as f64);
        for w in values.windows(2) {
            assert!((w[1] / w[0] / ratio - 1.0).abs() < 1e-9, "{values:?}");
        }
        let best = values
            .iter()
            .copied()
            .min_by(|a, b| (a / 0.11).ln().abs().total_cmp(&(b / 0.11).ln().abs()))
            .unwrap();
        assert_eq!(cal.gemm_efficiency, best, "{n} constant(s)");
    }
    // A start better than every node stays.
    let mut cal = Calibration {
        gemm_efficiency: 0.123,
        ..Calibration::default()
    };
    grid_start(&mut cal, &setters[..1], &|c: &Calibration| {
        (c.gemm_efficiency / 0.123).ln().abs()
    });
    assert_eq!(cal.gemm_efficiency, 0.123);
}
