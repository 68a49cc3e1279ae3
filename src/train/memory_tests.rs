//! The training memory model against hand-computed bytes: a tiny model's
//! model states for every ZeRO stage and its activations for every
//! recompute policy, Korthikanti et al.'s GPT-3 numbers, the divisions by
//! tp (with and without sequence parallelism), cp and ep, offload, the
//! transient working memory, and the errors.
//!
//! Every expected number is written out with its arithmetic; none is
//! copied from the code's output.

use super::memory::{DeviceMemory, DeviceShare, MemoryPlan, Optimizer, Recompute, check_fits};
use crate::catalog::{Catalog, Dtype, ModelSpec};
use crate::error::Error;
use crate::scenario::kinds::Kind;

/// 2 layers, h = 64, 4 heads, 2 KV heads, head_dim 16 (q = 64, kv = 32),
/// SwiGLU MLP of width 128, vocabulary 1000, untied embeddings.
///
/// Parameters of one layer: attention 64·(64 + 2·32) + 64·64 = 8192 + 4096
/// = 12288; MLP 3·64·128 = 24576; two norms 2·64 = 128; total 36992.
/// Embedding and LM head 1000·64 = 64000 each, final norm 64.
fn tiny() -> ModelSpec {
    ModelSpec {
        name: "tiny".into(),
        aliases: vec![],
        num_layers: 2,
        hidden_size: 64,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 16,
        intermediate_size: 128,
        vocab_size: 1000,
        num_experts: 1,
        experts_per_token: 1,
        gated_mlp: true,
        tied_embeddings: false,
        dtype: Dtype::Bf16,
        max_context: 4096,
    }
}

/// The tiny model with 4 experts, top-2. Per layer: attention 12288, norms
/// 128, router 64·4 = 256 (dense 12672); each expert 24576.
fn tiny_moe() -> ModelSpec {
    ModelSpec {
        num_experts: 4,
        experts_per_token: 2,
        ..tiny()
    }
}

/// GPT-3 175B's shape (Korthikanti et al., Table 3): h = 12288, a = 96,
/// plain GeLU MLP of 4h, MHA.
fn gpt3() -> ModelSpec {
    ModelSpec {
        name: "GPT-3-175B".into(),
        num_layers: 96,
        hidden_size: 12288,
        num_heads: 96,
        num_kv_heads: 96,
        head_dim: 128,
        intermediate_size: 4 * 12288,
        vocab_size: 51200,
        gated_mlp: false,
        ..tiny()
    }
}

/// dp = 4, everything else 1; micro-batch 2 of 8 tokens (16 rows); no
/// flash attention, no recomputation, ZeRO-0, Adam.
fn plan(model: &ModelSpec) -> MemoryPlan<'_> {
    MemoryPlan {
        model,
        tp: 1,
        cp: 1,
        dp: 4,
        ep: 1,
        sequence_parallel: false,
        flash_attention: false,
        micro_batch: 2,
        seq_len: 8,
        zero_stage: 0,
        recompute: Recompute::None,
        optimizer: Optimizer::Adam,
        offload: false,
        extra_state_bytes_per_param: 0.0,
    }
}

/// The whole model on one pipeline device.
const WHOLE: DeviceShare = DeviceShare {
    layers: 2,
    embedding: true,
    lm_head: true,
    chunks: 1,
};

/// Both layers and the embedding, no LM head (so no logits).
const BODY: DeviceShare = DeviceShare {
    layers: 2,
    embedding: true,
    lm_head: false,
    chunks: 1,
};

#[test]
fn optimizer_state_is_12_bytes_for_adam_and_8_for_sgd() {
    assert_eq!(Optimizer::Adam.state_bytes_per_param(), 12.0);
    assert_eq!(Optimizer::Sgd.state_bytes_per_param(), 8.0);
    let names: Vec<&str> = Recompute::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["none", "selective", "full"]);
    let names: Vec<&str> = Optimizer::ALL.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["adam", "sgd"]);
}

#[test]
fn device_params_count_layers_embedding_and_head() {
    let m = tiny();
    let p = plan(&m);
    // 2·36992 + 64000 + 64000 + 64 (final norm) = 202048.
    assert_eq!(p.device_params(WHOLE), (202048.0, 0.0));
    // 2·36992 + 64000 = 137984.
    assert_eq!(p.device_params(BODY), (137984.0, 0.0));
    // One layer, LM head and final norm: 36992 + 64000 + 64 = 101056.
    let last = DeviceShare {
        layers: 1,
        embedding: false,
        lm_head: true,
        chunks: 1,
    };
    assert_eq!(p.device_params(last), (101056.0, 0.0));
    let none = DeviceShare {
        layers: 1,
        embedding: false,
        lm_head: false,
        chunks: 1,
    };
    assert_eq!(p.device_params(none), (36992.0, 0.0));
}

#[test]
fn tied_embeddings_are_one_matrix_but_the_last_stage_keeps_a_copy() {
    let m = ModelSpec {
        tied_embeddings: true,
        ..tiny()
    };
    let p = plan(&m);
    // Both on one device: 2·36992 + 64000 + 64 = 138048.
    assert_eq!(p.device_params(WHOLE).0, 138048.0);
    // LM head alone still holds the shared matrix: 36992 + 64000 + 64.
    let last = DeviceShare {
        layers: 1,
        embedding: false,
        lm_head: true,
        chunks: 1,
    };
    assert_eq!(p.device_params(last).0, 101056.0);
    // Embedding alone: 36992 + 64000.
    let first = DeviceShare {
        lm_head: false,
        embedding: true,
        ..last
    };
    assert_eq!(p.device_params(first).0, 100992.0);
}

#[test]
fn real_models_whole_share_holds_every_parameter() {
    // A cross-check with the catalog's own count at tp = ep = 1.
    let cat = Catalog::builtin();
    for name in ["Llama-3-8B", "Mixtral-8x7B"] {
        let m = cat.model(name).unwrap();
        let p = MemoryPlan { dp: 1, ..plan(m) };
        let share = DeviceShare {
            layers: m.num_layers,
            ..WHOLE
        };
        let (dense, expert) = p.device_params(share);
        let total = m.total_params();
        assert!(
            ((dense + expert) - total).abs() < 1e-6 * total,
            "{name}: {dense} + {expert} vs {total}"
        );
    }
}

/// The tiny model, whole share, dp = 4, one micro-batch in flight: model
/// states for ZeRO stages 0–3. 202048 params: bf16 weights and gradients
/// 2·202048 = 404096 B unsharded, 404096/4 = 101024 sharded; Adam
/// 12·202048 = 2424576 unsharded, /4 = 606144.
#[test]
fn zero_stages_shard_optimizer_then_gradients_then_weights_over_dp() {
    let m = tiny();
    // (stage, weights, gradients, optimizer, transient). Transient is the
    // logits 4·16 rows·1000 = 64000 until ZeRO-3, where two layers'
    // gathered weights 2·2·36992 = 147968 are larger.
    let want = [
        (0, 404096.0, 404096.0, 2424576.0, 64000.0),
        (1, 404096.0, 404096.0, 606144.0, 64000.0),
        (2, 404096.0, 101024.0, 606144.0, 64000.0),
        (3, 101024.0, 101024.0, 606144.0, 147968.0),
    ];
    for (zero_stage, weights, gradients, optimizer, transient) in want {
        let p = MemoryPlan {
            zero_stage,
            ..plan(&m)
        };
        let mem = p.device_memory(WHOLE, 1.0);
        // Activations: 2 layers · 27648 (see the recompute test) = 55296.
        let total = weights + gradients + optimizer + 55296.0 + transient;
        assert_eq!(
            mem,
            DeviceMemory {
                weights,
                gradients,
                optimizer,
                activations: 55296.0,
                transient,
                host_offloaded: 0.0,
                total,
            },
            "ZeRO-{zero_stage}"
        );
    }
}

#[test]
fn sgd_and_extra_state_change_the_optimizer_bytes() {
    let m = tiny();
    let sgd = MemoryPlan {
        optimizer: Optimizer::Sgd,
        ..plan(&m)
    };
    // 8·202048.
    assert_eq!(sgd.device_memory(WHOLE, 1.0).optimizer, 1616384.0);
    let outer = MemoryPlan {
        zero_stage: 1,
        extra_state_bytes_per_param: 4.0,
        ..plan(&m)
    };
    // (12 + 4)·202048 / 4 = 808192.
    assert_eq!(outer.device_memory(WHOLE, 1.0).optimizer, 808192.0);
}

/// One layer of the tiny model, one micro-batch of 16 rows (b = 2, s = 8):
/// residual stream 4·2·16·64 = 8192 (norm-1 in, QKV in, norm-2 in, MLP in);
/// Q, K, V 2·16·(64 + 2·32) = 4096; attention output 2·16·64 = 2048; gate
/// and up 2·2·16·128 = 8192; SiLU·up output 2·16·128 = 4096; softmax
/// 2·4 heads·8·8·2 = 1024. All: 27648; without the softmax 26624; full
/// recompute stores the input 2·16·64 = 2048.
#[test]
fn activation_bytes_per_layer_per_recompute_policy() {
    let m = tiny();
    for (recompute, flash, want) in [
        (Recompute::None, false, 27648.0),
        (Recompute::Selective, false, 26624.0),
        (Recompute::Full, false, 2048.0),
        // Flash attention never stores the softmax: selective saves nothing.
        (Recompute::None, true, 26624.0),
        (Recompute::Selective, true, 26624.0),
        (Recompute::Full, true, 2048.0),
    ] {
        let p = MemoryPlan {
            recompute,
            flash_attention: flash,
            ..plan(&m)
        };
        assert_eq!(p.activation_bytes_per_layer(), want, "{recompute} flash={flash}");
    }
}

#[test]
fn recompute_policies_on_a_device_without_the_lm_head() {
    let m = tiny();
    // (policy, activations of 3 in flight on 2 layers, transient).
    for (recompute, activations, transient) in [
        // 3·2·27648; nothing transient.
        (Recompute::None, 165888.0, 0.0),
        // 3·2·26624.
        (Recompute::Selective, 159744.0, 0.0),
        // 3·2·2048; one layer rebuilt in full, softmax included: 27648.
        (Recompute::Full, 12288.0, 27648.0),
    ] {
        let p = MemoryPlan {
            recompute,
            ..plan(&m)
        };
        let mem = p.device_memory(BODY, 3.0);
        assert_eq!(mem.activations, activations, "{recompute}");
        assert_eq!(mem.transient, transient, "{recompute}");
        // 137984 params: 2·, 2·, 12· of it.
        let states = 2.0 * 275968.0 + 1655808.0;
        assert_eq!(mem.total, states + activations + transient, "{recompute}");
    }
}

#[test]
fn transient_is_the_larger_of_the_logits_and_the_layer_pass() {
    let m = tiny();
    let full = MemoryPlan {
        recompute: Recompute::Full,
        ..plan(&m)
    };
    // Logits 64000 beat the rebuilt layer's 27648.
    assert_eq!(full.device_memory(WHOLE, 1.0).transient, 64000.0);
    let both = MemoryPlan {
        zero_stage: 3,
        ..full
    };
    // A layer pass under ZeRO-3 and full recompute holds both: the gathered
    // 2·2·36992 = 147968 plus 27648 = 175616, above the logits.
    assert_eq!(both.device_memory(WHOLE, 1.0).transient, 175616.0);
    assert_eq!(both.device_memory(BODY, 1.0).transient, 175616.0);
    // A one-layer device gathers one layer: 2·36992 = 73984, plus 27648.
    let one = DeviceShare {
        layers: 1,
        embedding: false,
        lm_head: false,
        chunks: 1,
    };
    assert_eq!(both.device_memory(one, 1.0).transient, 101632.0);
}

/// Korthikanti et al. §4 for GPT-3 (s = 2048, b = 1, h = 12288, a = 96),
/// sbh = 2048·12288 = 25165824. Their per-layer bytes with tensor
/// parallelism t = 8 are sbh·(10 + 24/t + 5as/(ht)) = sbh·(10 + 3 + 10);
/// dropping the two sbh dropout masks from the 10, and from 5as/(ht) = 10
/// the attention-dropout mask (as²b → 2) and dropout output (2as²b → 4),
/// leaves sbh·(8 + 3 + 4) = 15·sbh.
#[test]
fn korthikanti_gpt3_layer_without_dropout() {
    let m = gpt3();
    let base = MemoryPlan {
        tp: 8,
        dp: 8,
        micro_batch: 1,
        seq_len: 2048,
        ..plan(&m)
    };
    let sbh = 25165824.0;
    assert_eq!(base.activation_bytes_per_layer(), 15.0 * sbh);
    // Sequence parallelism: their sbh·(34/t + 5as/(ht)) → (32/8 + 4)·sbh.
    let sp = MemoryPlan {
        sequence_parallel: true,
        ..base
    };
    assert_eq!(sp.activation_bytes_per_layer(), 8.0 * sbh);
    // Selective recompute with sequence parallelism: their 34/t → 32/8.
    let sel = MemoryPlan {
        recompute: Recompute::Selective,
        ..sp
    };
    assert_eq!(sel.activation_bytes_per_layer(), 4.0 * sbh);
    // No parallelism: 34sbh + 5as²b less 2sbh and 3as²b: 32sbh + 2as²b,
    // and 2as²b = sbh·2·96·2048/12288 = 32sbh.
    let t1 = MemoryPlan { tp: 1, ..base };
    assert_eq!(t1.activation_bytes_per_layer(), 64.0 * sbh);
    // Full recompute stores 2sbh, or 2sbh/t with sequence parallelism.
    let full = MemoryPlan {
        recompute: Recompute::Full,
        ..base
    };
    assert_eq!(full.activation_bytes_per_layer(), 2.0 * sbh);
    let full_sp = MemoryPlan {
        recompute: Recompute::Full,
        ..sp
    };
    assert_eq!(full_sp.activation_bytes_per_layer(), sbh / 4.0);
}

/// The tiny model at tp = 2: q 32, kv one head 16, MLP width 64. Inside
/// the TP region 2·16·((32 + 32) + 32 + 3·64) = 9216, softmax
/// 2·2 heads·8·8·2 = 512; the residual stream 8192 whole, or 4096 split
/// by sequence parallelism.
#[test]
fn sequence_parallelism_splits_the_residual_stream_over_tp() {
    let m = tiny();
    let tp2 = MemoryPlan { tp: 2, ..plan(&m) };
    // 8192 + 9216 + 512.
    assert_eq!(tp2.activation_bytes_per_layer(), 17920.0);
    let sp = MemoryPlan {
        sequence_parallel: true,
        ..tp2
    };
    // 4096 + 9216 + 512.
    assert_eq!(sp.activation_bytes_per_layer(), 13824.0);
    // Full recompute's stored input 2·16·64 = 2048, halved under SP.
    let full = |sequence_parallel| MemoryPlan {
        recompute: Recompute::Full,
        sequence_parallel,
        ..tp2
    };
    assert_eq!(full(false).activation_bytes_per_layer(), 2048.0);
    assert_eq!(full(true).activation_bytes_per_layer(), 1024.0);
    // Parameters per layer at tp = 2: attention 64·(32 + 32) + 32·64 =
    // 6144, MLP 24576/2 = 12288, norms 128 (replicated): 18560. Embedding
    // and head 32000 each, final norm 64: 2·18560 + 64000 + 64 = 101184.
    assert_eq!(tp2.device_params(WHOLE), (101184.0, 0.0));
    // Logits: 4·16·1000/2 = 32000.
    assert_eq!(tp2.device_memory(WHOLE, 0.0).transient, 32000.0);
}

#[test]
fn kv_heads_fewer_than_tp_are_replicated() {
    let m = tiny();
    let p = MemoryPlan { tp: 4, ..plan(&m) };
    // tp = 4 over 2 KV heads: each rank keeps one KV head (16 wide).
    // Attention 64·(16 + 2·16) + 16·64 = 4096, MLP 24576/4 = 6144, norms
    // 128: 10368 per layer. Embedding and head 16000 each: 2·10368 + 32000
    // + 64 = 52800.
    assert_eq!(p.device_params(WHOLE), (52800.0, 0.0));
    // Activations: residual 8192; 2·16·((16 + 32) + 16 + 3·32) = 5120;
    // softmax 2·1 head·8·8·2 = 256. Sum 13568.
    assert_eq!(p.activation_bytes_per_layer(), 13568.0);
}

/// cp = 2: each device holds 8 of the 16 rows. Activations halve (the
/// softmax too: 4 local queries against all 8 keys); dense parameters
/// shard over dp·cp = 8.
#[test]
fn context_parallelism_divides_activations_and_joins_the_zero_group() {
    let m = tiny();
    let p = MemoryPlan {
        cp: 2,
        zero_stage: 3,
        ..plan(&m)
    };
    // 27648 / 2.
    assert_eq!(p.activation_bytes_per_layer(), 13824.0);
    let mem = p.device_memory(WHOLE, 1.0);
    // 2·202048/8 = 50512; 12·202048/8 = 303072.
    assert_eq!(mem.weights, 50512.0);
    assert_eq!(mem.gradients, 50512.0);
    assert_eq!(mem.optimizer, 303072.0);
    // Full recompute's input 2·8·64 = 1024 and logits 4·8·1000 = 32000.
    let full = MemoryPlan {
        recompute: Recompute::Full,
        zero_stage: 0,
        ..p
    };
    assert_eq!(full.activation_bytes_per_layer(), 1024.0);
    assert_eq!(full.device_memory(WHOLE, 1.0).transient, 32000.0);
}

/// Tiny MoE, ep = 2 of dp = 4: each device holds 2 of the 4 experts, whose
/// state shards over dp/ep = 2 ranks; dense parameters over 4.
/// Dense: 2·12672 + 64000 + 64000 + 64 = 153408; expert 2·2·24576 = 98304.
#[test]
fn moe_experts_split_over_ep_and_shard_over_the_expert_data_group() {
    let m = tiny_moe();
    let p = MemoryPlan {
        ep: 2,
        zero_stage: 1,
        ..plan(&m)
    };
    assert_eq!(p.device_params(WHOLE), (153408.0, 98304.0));
    let mem = p.device_memory(WHOLE, 1.0);
    // 2·(153408 + 98304) = 503424 unsharded.
    assert_eq!(mem.weights, 503424.0);
    // 12·(153408/4 + 98304/2) = 12·(38352 + 49152) = 1050048.
    assert_eq!(mem.optimizer, 1050048.0);
    let z3 = MemoryPlan { zero_stage: 3, ..p };
    // 2·87504.
    assert_eq!(z3.device_memory(WHOLE, 1.0).weights, 175008.0);
    // With cp = 2 too: 12·(153408/8 + 98304/(2·2)) = 12·(19176 + 24576).
    let cp = MemoryPlan { cp: 2, ..p };
    assert_eq!(cp.device_memory(WHOLE, 1.0).optimizer, 525024.0);
    // tp = 2 halves each expert's width: 2·2·12288 = 49152.
    let tp = MemoryPlan { tp: 2, ..p };
    assert_eq!(tp.device_params(WHOLE).1, 49152.0);
}

/// The MoE layer's activations: residual stream 8192 plus the 2 dispatched
/// copies of each token 2·2·16·64 = 4096; attention 4096 + 2048; the MLP
/// per routed row, 2 rows per token: 2·(8192 + 4096) = 24576; softmax 1024.
/// Sum 44032.
#[test]
fn moe_mlp_activations_are_per_routed_row() {
    let m = tiny_moe();
    let p = MemoryPlan { ep: 2, ..plan(&m) };
    assert_eq!(p.activation_bytes_per_layer(), 44032.0);
    // ZeRO-3 gathers two layers of dense 12672 and expert 49152:
    // 2·2·61824 = 247296.
    let z3 = MemoryPlan { zero_stage: 3, ..p };
    assert_eq!(z3.device_memory(BODY, 1.0).transient, 247296.0);
}

#[test]
fn offload_keeps_two_chunks_on_the_device() {
    let m = tiny();
    let on = MemoryPlan {
        offload: true,
        ..plan(&m)
    };
    // One unit: 2 layers · 27648 = 55296.
    // 5 in flight, 1 chunk: 2 kept (110592), 3 offloaded (165888).
    let mem = on.device_memory(BODY, 5.0);
    assert_eq!(mem.activations, 110592.0);
    assert_eq!(mem.host_offloaded, 165888.0);
    // The host's share is not in the total: 137984 params' 16 B each.
    assert_eq!(mem.total, 16.0 * 137984.0 + 110592.0);
    // 2 chunks: two chunks are one unit; 4 units offloaded.
    let two = DeviceShare { chunks: 2, ..BODY };
    let mem = on.device_memory(two, 5.0);
    assert_eq!(mem.activations, 55296.0);
    assert_eq!(mem.host_offloaded, 221184.0);
    // Fewer in flight than the cap: all stay.
    let mem = on.device_memory(BODY, 0.5);
    assert_eq!(mem.activations, 27648.0);
    assert_eq!(mem.host_offloaded, 0.0);
    // Without offload all 5 stay.
    let mem = plan(&m).device_memory(BODY, 5.0);
    assert_eq!(mem.activations, 276480.0);
    assert_eq!(mem.host_offloaded, 0.0);
}

#[test]
fn check_fits_lists_every_component_and_names_the_device_share() {
    let gib = (1u64 << 30) as f64;
    let mut device = Catalog::builtin().device("H100-SXM").unwrap().clone();
    device.memory_bytes = 40.0 * gib;
    let mut mem = DeviceMemory {
        weights: 8.0 * gib,
        gradients: 8.5 * gib,
        optimizer: 16.0 * gib,
        activations: 6.0 * gib,
        transient: 1.5 * gib,
        host_offloaded: 0.0,
        total: 40.0 * gib,
    };
    // Exactly full fits.
    check_fits(&mem, &device, "pipeline stage 3").unwrap();
    mem.activations = 8.0 * gib;
    mem.total = 42.0 * gib;
    let err = check_fits(&mem, &device, "pipeline stage 3").unwrap_err();
    assert!(matches!(err, Error::Infeasible(_)), "{err:?}");
    let msg = err.to_string();
    for part in [
        "pipeline stage 3",
        "H100-SXM",
        "42.00 GiB",
        "40.00 GiB",
        "weights 8.00",
        "gradients 8.50",
        "optimizer state 16.00",
        "activations 8.00",
        "transient 1.50",
    ] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
    assert!(!msg.contains("offloaded"), "{msg}");
    mem.host_offloaded = 3.25 * gib;
    let msg = check_fits(&mem, &device, "stage 0").unwrap_err().to_string();
    assert!(msg.contains("3.25 GiB of activations already offloaded"), "{msg}");
}

#[test]
fn validate_accepts_the_test_plans() {
    let (m, moe) = (tiny(), tiny_moe());
    plan(&m).validate().unwrap();
    MemoryPlan {
        tp: 4,
        cp: 2,
        sequence_parallel: true,
        zero_stage: 3,
        ..plan(&m)
    }
    .validate()
    .unwrap();
    MemoryPlan { ep: 4, ..plan(&moe) }.validate().unwrap();
}

#[test]
fn validate_errors_name_the_key_and_show_the_values() {
    let (m, moe) = (tiny(), tiny_moe());
    let odd_kv = ModelSpec {
        num_heads: 8,
        num_kv_heads: 6,
        ..tiny()
    };
    let odd_mlp = ModelSpec {
        intermediate_size: 130,
        ..tiny()
    };
    let cases = [
        (
            MemoryPlan { tp: 0, ..plan(&m) },
            "key `parallel.tp`: must be ≥ 1, found 0",
        ),
        (MemoryPlan { cp: 0, ..plan(&m) }, "key `parallel.cp`: must be ≥ 1"),
        (MemoryPlan { dp: 0, ..plan(&m) }, "key `parallel.dp`: must be ≥ 1"),
        (MemoryPlan { ep: 0, ..plan(&m) }, "key `parallel.ep`: must be ≥ 1"),
        (
            MemoryPlan {
                micro_batch: 0,
                ..plan(&m)
            },
            "key `training.micro_batch`: must be ≥ 1",
        ),
        (
            MemoryPlan {
                seq_len: 0,
                ..plan(&m)
            },
            "key `training.seq_len`: must be ≥ 1",
        ),
        (
            MemoryPlan {
                zero_stage: 4,
                ..plan(&m)
            },
            "key `training.zero_stage`: must be 0, 1, 2 or 3, found 4",
        ),
        (
            MemoryPlan {
                extra_state_bytes_per_param: -1.0,
                ..plan(&m)
            },
            "key `sync.method`: must be a finite number ≥ 0, found -1",
        ),
        (
            MemoryPlan {
                extra_state_bytes_per_param: f64::NAN,
                ..plan(&m)
            },
            "found NaN",
        ),
        (
            MemoryPlan {
                extra_state_bytes_per_param: f64::INFINITY,
                ..plan(&m)
            },
            "found inf",
        ),
        (
            MemoryPlan { tp: 3, ..plan(&m) },
            "key `parallel.tp`: tp=3 does not divide the 4 attention heads of tiny",
        ),
        (
            MemoryPlan {
                tp: 4,
                ..plan(&odd_kv)
            },
            "key `parallel.tp`: tp=4 and the 6 KV heads of tiny divide neither way",
        ),
        (
            MemoryPlan {
                tp: 4,
                ..plan(&odd_mlp)
            },
            "key `parallel.tp`: tp=4 does not divide the MLP intermediate size 130",
        ),
        (
            MemoryPlan {
                ep: 3,
                dp: 6,
                ..plan(&moe)
            },
            "key `parallel.ep`: ep=3 does not divide the 4 experts",
        ),
        (
            MemoryPlan { ep: 2, ..plan(&m) },
            "key `parallel.ep`: ep=2 does not divide the 1 experts",
        ),
        (
            MemoryPlan {
                ep: 2,
                dp: 3,
                ..plan(&moe)
            },
            "key `parallel.ep`: ep=2 does not divide dp=3",
        ),
        (
            MemoryPlan { cp: 3, ..plan(&m) },
            "key `parallel.cp`: cp=3 does not divide the sequence length 8",
        ),
        (
            MemoryPlan {
                tp: 4,
                cp: 4,
                sequence_parallel: true,
                ..plan(&m)
            },
            "key `parallel.sequence_parallel`: sequence parallelism splits each device's 2 tokens \
             (seq_len 8 / cp 4) over tp=4",
        ),
    ];
    for (p, want) in cases {
        let err = p.validate().unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(want), "want `{want}` in: {msg}");
    }
    // Without sequence parallelism 2 tokens on tp = 4 is fine.
    MemoryPlan {
        tp: 4,
        cp: 4,
        ..plan(&m)
    }
    .validate()
    .unwrap();
}
