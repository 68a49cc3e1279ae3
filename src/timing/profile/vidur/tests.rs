//! Tests of the Vidur table readers: each format read into seconds on
//! fixtures written here, and each malformed cell refused by file, line and column.

use super::*;
use std::io::Write;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

fn stats(v: f64) -> String {
    format!("{v},{v},{v},{v},0")
}

fn mlp_header(with_post_norm: bool) -> String {
    let mut h = String::new();
    for name in MLP_OPS {
        if name == "post_attention_layernorm" && !with_post_norm {
            continue;
        }
        for s in ["min", "max", "mean", "median", "std"] {
            h.push_str(&format!("time_stats.{name}.{s},"));
        }
    }
    h + "n_head,n_kv_head,n_embd,n_expanded_embd,vocab_size,use_gated_mlp,num_tokens,num_tensor_parallel_workers\n"
}

#[test]
fn reads_mlp_rows_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let ops: Vec<String> = (1..=10).map(|i| stats(i as f64 * 0.01)).collect();
    let text = format!(
        "{}{},64,8,8192,28672,32768,True,16,4\n",
        mlp_header(true),
        ops.join(",")
    );
    let p = write(dir.path(), "mlp.csv", &text);
    let prof = read_mlp(&p).unwrap();
    assert_eq!(prof.rows.len(), 1);
    let r = prof.rows[0];
    assert_eq!((r.tp, r.tokens, r.line), (4, 16, 2));
    assert_eq!(
        r.arch,
        MlpArch {
            n_head: 64,
            n_kv_head: 8,
            n_embd: 8192,
            n_expanded_embd: 28672,
            vocab_size: 32768,
            gated: true
        }
    );
    for i in 0..10 {
        assert!((r.ops[i] - (i + 1) as f64 * 1e-5).abs() < 1e-15, "{i}");
    }
    assert_eq!(peek_mlp(&p).unwrap(), Some(r));
}

#[test]
fn mlp_missing_optional_op_is_zero_and_missing_gemm_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ops: Vec<String> = (0..9).map(|_| stats(0.5)).collect();
    let text = format!(
        "{}{},32,32,2560,10240,51200,False,8,1\n",
        mlp_header(false),
        ops.join(",")
    );
    let p = write(dir.path(), "phi/mlp.csv", &text);
    let r = read_mlp(&p).unwrap().rows[0];
    assert_eq!(r.ops[op::POST_NORM], 0.0);
    assert!(!r.arch.gated);
    let bad = text.replace("time_stats.mlp_up_proj.median", "time_stats.mlp_up.median");
    let p = write(dir.path(), "bad/mlp.csv", &bad);
    let msg = read_mlp(&p).unwrap_err().to_string();
    assert!(
        msg.contains("mlp_up_proj") && msg.contains("bad/mlp.csv"),
        "{msg}"
    );
}

#[test]
fn mlp_bad_value_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let ops: Vec<String> = (0..10).map(|_| stats(0.5)).collect();
    let good = format!("{},64,8,8192,28672,32768,True,16,4\n", ops.join(","));
    let bad = good.replace(",16,4", ",sixteen,4");
    let p = write(dir.path(), "mlp.csv", &format!("{}{good}{bad}", mlp_header(true)));
    let msg = read_mlp(&p).unwrap_err().to_string();
    assert!(
        msg.contains("mlp.csv, line 3") && msg.contains("num_tokens"),
        "{msg}"
    );
    let neg = good.replace("0.5,0.5,0.5,0.5,0,64", "0.5,0.5,0.5,-0.5,0,64");
    let p = write(dir.path(), "neg.csv", &format!("{}{neg}", mlp_header(true)));
    let msg = read_mlp(&p).unwrap_err().to_string();
    assert!(msg.contains("line 2") && msg.contains("negative"), "{msg}");
}

#[test]
fn reads_attention_rows() {
    let dir = tempfile::tempdir().unwrap();
    let header = "time_stats.attn_input_reshape.min,time_stats.attn_input_reshape.max,time_stats.attn_input_reshape.mean,time_stats.attn_input_reshape.median,time_stats.attn_input_reshape.std,time_stats.attn_kv_cache_save.min,time_stats.attn_kv_cache_save.max,time_stats.attn_kv_cache_save.mean,time_stats.attn_kv_cache_save.median,time_stats.attn_kv_cache_save.std,time_stats.attn_prefill.min,time_stats.attn_prefill.max,time_stats.attn_prefill.mean,time_stats.attn_prefill.median,time_stats.attn_prefill.std,time_stats.attn_decode.min,time_stats.attn_decode.max,time_stats.attn_decode.mean,time_stats.attn_decode.median,time_stats.attn_decode.std,time_stats.attn_output_reshape.min,time_stats.attn_output_reshape.max,time_stats.attn_output_reshape.mean,time_stats.attn_output_reshape.median,time_stats.attn_output_reshape.std,n_embd,n_q_head,n_kv_head,block_size,num_tensor_parallel_workers,max_model_len,batch_size,prefill_chunk_size,kv_cache_size,is_prefill,attention_backend\n";
    let z = stats(0.0);
    let text = format!(
        "{header}{z},{},{},{z},{z},8192,64,8,16,4,4096,1,512,1024,True,AttentionBackend.FLASHINFER\n\
         {z},{},{z},{},{},8192,64,8,16,4,4096,32,0,2048,False,AttentionBackend.FLASHINFER\n",
        stats(0.02),
        stats(0.03),
        stats(0.018),
        stats(0.05),
        stats(0.001),
    );
    let p = write(dir.path(), "attention.csv", &text);
    let a = read_attention(&p).unwrap();
    assert_eq!(a.rows.len(), 2);
    let pre = a.rows[0];
    assert!(pre.is_prefill && pre.chunk == 512 && pre.kv == 1024 && pre.tp == 4);
    assert!((pre.attn - 3e-5).abs() < 1e-15 && (pre.kv_save - 2e-5).abs() < 1e-15);
    let dec = a.rows[1];
    assert!(!dec.is_prefill && dec.batch_size == 32 && dec.kv == 2048);
    // Decode time includes the (here nonzero) output reshape.
    assert!((dec.attn - 5.1e-5).abs() < 1e-15, "{}", dec.attn);
    assert_eq!(peek_attention(&p).unwrap(), Some(pre));
    let bad = text.replace(",True,", ",yes,");
    let p = write(dir.path(), "bad.csv", &bad);
    let msg = read_attention(&p).unwrap_err().to_string();
    assert!(
        msg.contains("bad.csv, line 2") && msg.contains("is_prefill"),
        "{msg}"
    );
}

#[test]
fn reads_collectives_with_sizes_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let text = ",time_stats.all_reduce.min,time_stats.all_reduce.max,time_stats.all_reduce.mean,time_stats.all_reduce.median,time_stats.all_reduce.std,rank,num_workers,size,collective,devices_per_node,max_devices_per_node\n\
        0,0.015,0.038,0.03,0.037,0.01,0,8,2048,all_reduce,8,8\n\
        1,0.018,0.036,0.025,0.023,0.007,0,4,10240,all_reduce,4,8\n";
    let p = write(dir.path(), "all_reduce.csv", text);
    let c = read_collective(&p).unwrap();
    assert_eq!(c.collective, "all_reduce");
    assert_eq!(c.rows.len(), 2);
    assert_eq!((c.rows[0].num_workers, c.rows[0].devices_per_node), (8, 8));
    assert_eq!(c.rows[0].bytes, 2048.0);
    assert!((c.rows[0].secs - 37e-6).abs() < 1e-15);
    let p = write(dir.path(), "short.csv", &text.replace(",8,2048,", ",8,,"));
    let msg = read_collective(&p).unwrap_err().to_string();
    assert!(msg.contains("line 2") && msg.contains("size"), "{msg}");
    let p = write(dir.path(), "none.csv", "a,b\n1,2\n");
    assert!(read_collective(&p).unwrap_err().to_string().contains("median"));
}

/// Integers must be whole, ≥ 0 and fit in 32 bits; booleans are
/// True/False in any of Vidur's spellings; 0 ms is a time.
#[test]
fn integer_boolean_and_time_cells_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ops: Vec<String> = (0..10).map(|_| stats(0.5)).collect();
    let row = |tail: &str| format!("{}{},{tail}\n", mlp_header(true), ops.join(","));
    let read = |tail: &str| read_mlp(&write(dir.path(), "m.csv", &row(tail)));
    for bad in ["-64", "64.5", "4294967296"] {
        let msg = read(&format!("{bad},8,8192,28672,32768,True,16,4"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 2") && msg.contains("`n_head`: expected a non-negative integer"),
            "{bad}: {msg}"
        );
    }
    assert_eq!(
        read("4294967295,8,8192,28672,32768,True,16,4").unwrap().rows[0]
            .arch
            .n_head,
        u32::MAX
    );
    for (cell, gated) in [
        ("true", true),
        ("1", true),
        ("False", false),
        ("false", false),
        ("0", false),
    ] {
        let r = read(&format!("64,8,8192,28672,32768,{cell},16,4")).unwrap().rows[0];
        assert_eq!(r.arch.gated, gated, "{cell}");
    }
    for tail in [
        "64,8,8192,28672,32768,True,0,4",
        "64,8,8192,28672,32768,True,16,0",
    ] {
        let msg = read(tail).unwrap_err().to_string();
        assert!(msg.contains("must be ≥ 1"), "{tail}: {msg}");
    }
    let zero = ops.join(",").replacen("0.5,0.5,0.5,0.5,0", "0,0,0,0,0", 1);
    let p = write(
        dir.path(),
        "z.csv",
        &format!("{}{zero},64,8,8192,28672,32768,True,16,4\n", mlp_header(true)),
    );
    assert_eq!(read_mlp(&p).unwrap().rows[0].ops[op::EMB], 0.0);
    for cell in ["inf", "NaN"] {
        let bad = ops
            .join(",")
            .replacen("0.5,0.5,0.5,0.5,0", &format!("0.5,0.5,0.5,{cell},0"), 1);
        let p = write(
            dir.path(),
            "inf.csv",
            &format!("{}{bad},64,8,8192,28672,32768,True,16,4\n", mlp_header(true)),
        );
        let msg = read_mlp(&p).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("`emb`: expected a finite number, found `{cell}`")),
            "{msg}"
        );
    }
}

/// An empty optional operator cell is 0 ms; an empty GEMM cell is an error.
#[test]
fn empty_cells_count_only_for_optional_operators() {
    let dir = tempfile::tempdir().unwrap();
    let mut ops: Vec<String> = (0..10).map(|_| stats(0.5)).collect();
    ops[op::ACT] = ",,,,".into();
    let text = format!(
        "{}{},64,8,8192,28672,32768,True,16,4\n",
        mlp_header(true),
        ops.join(",")
    );
    let r = read_mlp(&write(dir.path(), "a.csv", &text)).unwrap().rows[0];
    assert_eq!(r.ops[op::ACT], 0.0);
    assert_eq!(r.ops[op::UP], 0.5e-3);
    ops[op::ACT] = stats(0.5);
    ops[op::UP] = ",,,,".into();
    let text = format!(
        "{}{},64,8,8192,28672,32768,True,16,4\n",
        mlp_header(true),
        ops.join(",")
    );
    let msg = read_mlp(&write(dir.path(), "b.csv", &text))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("`mlp_up_proj`: expected a finite number"), "{msg}");
}

/// Peeking reads the first row only: a broken second row does not matter.
#[test]
fn peeking_stops_after_the_first_row() {
    let dir = tempfile::tempdir().unwrap();
    let ops: Vec<String> = (0..10).map(|_| stats(0.5)).collect();
    let good = format!("{},64,8,8192,28672,32768,True,16,4\n", ops.join(","));
    let bad = good.replace(",16,4", ",x,4");
    let p = write(dir.path(), "mlp.csv", &format!("{}{good}{bad}", mlp_header(true)));
    assert!(read_mlp(&p).is_err());
    assert_eq!(peek_mlp(&p).unwrap().map(|r| r.tokens), Some(16));
    let empty = write(dir.path(), "e.csv", &mlp_header(true));
    assert_eq!(peek_mlp(&empty).unwrap(), None);
}

/// Attention rows need TP ≥ 1, a batch ≥ 1 and, for prefill, a chunk ≥ 1;
/// a decode row's chunk is 0; without a KV-save column the save is 0.
#[test]
fn attention_rows_check_their_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let header = "time_stats.attn_prefill.median,time_stats.attn_decode.median,n_embd,n_q_head,n_kv_head,block_size,num_tensor_parallel_workers,max_model_len,batch_size,prefill_chunk_size,kv_cache_size,is_prefill\n";
    let read = |row: &str| read_attention(&write(dir.path(), "a.csv", &format!("{header}{row}\n")));
    let dec = read("0.1,0.2,8192,64,8,16,4,4096,8,0,512,False").unwrap().rows[0];
    assert!((dec.attn - 2e-4).abs() < 1e-15 && dec.kv_save == 0.0);
    let pre = read("0.1,0.2,8192,64,8,16,4,4096,1,64,0,True").unwrap().rows[0];
    assert!((pre.attn - 1e-4).abs() < 1e-15);
    for row in [
        "0.1,0.2,8192,64,8,16,0,4096,8,0,512,False",
        "0.1,0.2,8192,64,8,16,4,4096,0,0,512,False",
        "0.1,0.2,8192,64,8,16,4,4096,1,0,0,True",
    ] {
        let msg = read(row).unwrap_err().to_string();
        assert!(
            msg.contains("line 2") && msg.contains("must be ≥ 1"),
            "{row}: {msg}"
        );
    }
    let peek = write(
        dir.path(),
        "p.csv",
        &format!(
            "{header}0.1,0.2,8192,64,8,16,4,4096,8,0,512,False\n0.1,0.2,8192,64,8,16,0,4096,8,0,512,False\n"
        ),
    );
    assert!(read_attention(&peek).is_err());
    assert_eq!(peek_attention(&peek).unwrap().map(|r| r.batch_size), Some(8));
}

/// A collective's size must be > 0 bytes; two median columns are ambiguous.
#[test]
fn collective_sizes_are_positive_and_the_collective_unique() {
    let dir = tempfile::tempdir().unwrap();
    let header = "time_stats.send_recv.median,num_workers,size,devices_per_node\n";
    let p = write(dir.path(), "s.csv", &format!("{header}0.5,2,1,2\n"));
    let c = read_collective(&p).unwrap();
    assert_eq!((c.collective.as_str(), c.rows[0].bytes), ("send_recv", 1.0));
    for size in ["0", "-2048"] {
        let p = write(dir.path(), "s.csv", &format!("{header}0.5,2,{size},2\n"));
        let msg = read_collective(&p).unwrap_err().to_string();
        assert!(
            msg.contains("line 2") && msg.contains("`size`: must be > 0"),
            "{size}: {msg}"
        );
    }
    let two = "time_stats.a.median,time_stats.b.median,num_workers,size,devices_per_node\n1,1,2,8,2\n";
    let msg = read_collective(&write(dir.path(), "t.csv", two))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("found 2"), "{msg}");
}
