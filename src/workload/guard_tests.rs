//! Tests of the workload's input guards and request identity: each bad
//! `[workload]` value is refused by the key the user wrote, each edge value
//! that is valid is accepted, and the ids and hashes that keep requests
//! apart stay distinct. Shared helpers live in `tests.rs`.

use super::tests::{all, cfg};
use super::*;
use crate::scenario::LengthConfig;

/// A length range needs 1 ≤ max and min ≤ max, both ends included: [1, 1]
/// and [5, 5] are valid (every prompt that long), max 0 is not.
#[test]
fn length_bounds_include_their_ends() {
    let with_prompt = |min: u32, max: u32| {
        let mut c = cfg("poisson", 1.0, 1.0, 10);
        c.prompt.kind = Some(LengthKind::Uniform);
        (c.prompt.min, c.prompt.max) = (min, max);
        c
    };
    for (min, max) in [(1, 1), (5, 5), (0, 1)] {
        let v = all(&with_prompt(min, max));
        assert!(v.iter().all(|r| r.prompt_tokens == max), "[{min}, {max}]");
    }
    let e = validate(&with_prompt(0, 0)).unwrap_err().to_string();
    assert!(
        e.contains("workload.prompt") && e.contains("found min 0 and max 0"),
        "{e}"
    );
}

/// Length parameters out of range are errors naming the key (mutation
/// survivors of `length_dist`): a log-normal median ≤ 0, a σ < 0, a Zipf
/// exponent ≤ 0; σ = 0 is a valid (degenerate) log-normal.
#[test]
fn length_parameters_out_of_range_name_their_key() {
    let with = |kind: LengthKind, set: &dyn Fn(&mut LengthConfig)| {
        let mut c = cfg("poisson", 1.0, 1.0, 10);
        c.prompt = LengthConfig {
            kind: Some(kind),
            min: 1,
            max: 100,
            median: 10.0,
            sigma: 0.5,
            exponent: 1.0,
            ..LengthConfig::default()
        };
        set(&mut c.prompt);
        validate(&c).err().map(|e| e.to_string())
    };
    for m in [0.0, -1.0, f64::INFINITY] {
        let e = with(LengthKind::LogNormal, &|p| p.median = m).expect("median refused");
        assert!(e.contains("workload.prompt.median"), "{m}: {e}");
    }
    for s in [-1.0, f64::INFINITY] {
        let e = with(LengthKind::LogNormal, &|p| p.sigma = s).expect("sigma refused");
        assert!(e.contains("workload.prompt.sigma"), "{s}: {e}");
    }
    assert_eq!(with(LengthKind::LogNormal, &|p| p.sigma = 0.0), None);
    for x in [0.0, -1.0, f64::INFINITY] {
        let e = with(LengthKind::Zipf, &|p| p.exponent = x).expect("exponent refused");
        assert!(e.contains("workload.prompt.exponent"), "{x}: {e}");
    }
}

/// A Zipf length covers exactly `[min, max]`: every value appears, none outside.
#[test]
fn zipf_lengths_cover_their_whole_range() {
    let mut c = cfg("poisson", 1.0, 1.0, 2000);
    c.prompt = LengthConfig {
        kind: Some(LengthKind::Zipf),
        min: 3,
        max: 6,
        exponent: 0.5,
        ..LengthConfig::default()
    };
    let mut seen: Vec<u32> = all(&c).iter().map(|r| r.prompt_tokens).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, vec![3, 4, 5, 6]);
}

/// A negative duration is refused by name.
#[test]
fn a_negative_duration_is_refused() {
    let mut c = cfg("poisson", 1.0, 1.0, 10);
    c.duration = -1.0;
    let e = validate(&c).unwrap_err().to_string();
    assert!(e.contains("workload.duration"), "{e}");
}

/// Client weights must be ≥ 0 each and sum to more than 0.
#[test]
fn client_weights_need_a_positive_sum_and_no_negative() {
    for w in [vec![-1.0, 2.0], vec![0.0, 0.0]] {
        let mut c = cfg("poisson", 1.0, 1.0, 10);
        c.clients.weights = w.clone();
        let e = validate(&c).unwrap_err().to_string();
        assert!(e.contains("workload.clients.weights"), "{w:?}: {e}");
    }
}

/// A cumulative-weight table that rounds below 1 still picks the last client
/// (never one past it).
#[test]
fn a_draw_beyond_the_rounded_cdf_is_the_last_client() {
    let mut rng = stream(1, 1);
    for _ in 0..100 {
        assert_eq!(pick_client(&[0.0, 0.0, 0.0], &mut rng), 2);
    }
}

/// Distinct seeds give distinct streams for every purpose (a seed is mixed
/// in, not masked by the purpose's constant).
#[test]
fn distinct_seeds_give_distinct_streams_for_each_purpose() {
    use rand::Rng;
    for k in 0..8 {
        let firsts: Vec<u64> = (0..4).map(|s| stream(s, k).next_u64()).collect();
        let mut d = firsts.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), 4, "purpose {k}: {firsts:?}");
    }
}

/// Fixed-concurrency clients with neither a count nor a duration would send
/// forever: refused by `workload.count`, in the clients' words.
#[test]
fn clients_without_count_or_duration_are_refused() {
    let mut c = cfg("poisson", 1.0, 1.0, 0);
    c.concurrency = 4;
    let e = validate(&c).unwrap_err().to_string();
    assert!(
        e.contains("workload.count") && e.contains("fixed-concurrency clients and no duration"),
        "{e}"
    );
    // A duration alone bounds them.
    c.duration = 10.0;
    assert!(validate(&c).is_ok());
}

/// With a duration, the clients' error about a missing count does not mask
/// another key's error: a bad prompt median is reported as itself.
#[test]
fn clients_with_a_duration_report_their_own_length_errors() {
    let mut c = cfg("poisson", 1.0, 1.0, 0);
    (c.concurrency, c.duration) = (4, 10.0);
    c.prompt = LengthConfig {
        kind: Some(LengthKind::LogNormal),
        min: 1,
        max: 100,
        median: -1.0,
        sigma: 0.5,
        ..LengthConfig::default()
    };
    let e = validate(&c).unwrap_err().to_string();
    assert!(e.contains("workload.prompt.median"), "{e}");
}

/// One-turn conversations are each their own session: 600 of them carry 600
/// distinct prefix groups (ids 0 and 512 differ only in bits the sessions'
/// salt sets, so a salt that is OR-ed instead of XOR-ed merges them).
#[test]
fn every_session_has_its_own_prefix_group() {
    let mut c = cfg("poisson", 10.0, 1.0, 600);
    c.prefix.kind = PrefixKind::Sessions;
    (c.prefix.turns, c.prefix.sessions) = (1, 1);
    let v = all(&c);
    let mut groups: Vec<u64> = v
        .iter()
        .map(|r| match r.prefix {
            Prefix::Group { group, .. } => group,
            _ => panic!("session requests carry a group prefix"),
        })
        .collect();
    assert_eq!(groups.len(), 600);
    groups.sort_unstable();
    groups.dedup();
    assert_eq!(groups.len(), 600);
}

/// Distinct Mooncake block ids name distinct units, even ids that differ
/// only in the bits of the salt that keeps block hashes apart from the
/// other prefix kinds' (0 and the salt itself), or small ids (8 and 3).
#[test]
fn distinct_block_ids_hash_apart() {
    let salt_bits = 0x5EED_0000_0000_0000;
    let p = Prefix::Blocks {
        ids: std::sync::Arc::from([0, salt_bits, 8, 3]),
        unit_tokens: 16,
    };
    let h: Vec<u64> = (0..4).map(|j| p.unit_hash(j)).collect();
    for i in 0..4 {
        for j in 0..i {
            assert_ne!(h[i], h[j], "units {j} and {i}");
        }
    }
}
