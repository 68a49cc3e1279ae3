//! The schedules executed with equal, hand-picked pass times and free
//! communication against their closed forms, and the orders' invariants.

use super::pipeline::{Timeline, execute};
use super::schedule::{Layout, Pass, PassTimes, ScheduleKind, lists};
use crate::scenario::kinds::Kind;

/// Times per virtual stage: a stage's F, B, W split evenly over its `v` chunks.
fn times(layout: &Layout, f: f64, b: f64, w: f64, split: bool, send: f64) -> PassTimes {
    let n = layout.stages() as usize;
    let v = layout.v as f64;
    let (b, w) = if split { (b, w) } else { (b + w, 0.0) };
    PassTimes {
        f: vec![f / v; n],
        b: vec![b / v; n],
        w: vec![w / v; n],
        send: vec![send; n],
    }
}

fn run(kind: ScheduleKind, p: u32, vpp: u32, m: u32, send: f64) -> (Layout, Timeline) {
    let layout = kind.layout(p, vpp, m).unwrap();
    let t = times(&layout, 1.0, 1.0, 1.0, kind.splits_backward(), send);
    let l = lists(kind, layout, &t);
    let timeline = execute(&layout, &l, &t, kind.splits_backward()).unwrap();
    (layout, timeline)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn one_f_one_b_bubble_is_p_minus_1_over_m_plus_p_minus_1() {
    for (p, m) in [(2, 2), (4, 8), (8, 16), (8, 5), (3, 1)] {
        let (_, t) = run(ScheduleKind::OneFOneB, p, 1, m, 0.0);
        let want = (p - 1) as f64 / (m + p - 1) as f64;
        assert!(
            close(t.bubble_fraction(), want),
            "p={p} m={m}: {} vs {want}",
            t.bubble_fraction()
        );
        // Span: (m + p − 1) slots of F + B (= 1 + 2).
        assert!(close(t.span, 3.0 * (m + p - 1) as f64), "span {}", t.span);
    }
}

#[test]
fn gpipe_has_1f1bs_bubble_but_holds_every_micro_batch() {
    let (p, m) = (4, 8);
    let (_, g) = run(ScheduleKind::Gpipe, p, 1, m, 0.0);
    let (_, o) = run(ScheduleKind::OneFOneB, p, 1, m, 0.0);
    assert!(close(g.bubble_fraction(), 3.0 / 11.0), "{}", g.bubble_fraction());
    // GPipe's first stage holds all m activations; 1F1B's device d at most p − d.
    assert_eq!(g.peak_activations[0], m as f64);
    for d in 0..p as usize {
        assert_eq!(o.peak_activations[d], (p as usize - d) as f64, "device {d}");
    }
}

#[test]
fn interleaved_bubble_is_p_minus_1_over_v_m_plus_p_minus_1() {
    for (p, v, m) in [(4, 2, 8), (4, 4, 8), (2, 3, 4), (8, 2, 16)] {
        let (_, t) = run(ScheduleKind::Interleaved, p, v, m, 0.0);
        let want = (p - 1) as f64 / (v * m + p - 1) as f64;
        assert!(
            close(t.bubble_fraction(), want),
            "p={p} v={v} m={m}: {} vs {want}",
            t.bubble_fraction()
        );
    }
    // Device 0 of p = 4, v = 2 warms up with (p−1)·2 + (v−1)·p = 10 chunk
    // forwards and one more before its first backward: 11 half-stage chunks.
    let (_, t) = run(ScheduleKind::Interleaved, 4, 2, 8, 0.0);
    assert_eq!(t.peak_activations[0], 5.5);
    // One chunk per device is plain 1F1B.
    let (_, a) = run(ScheduleKind::Interleaved, 4, 1, 8, 0.0);
    let (_, b) = run(ScheduleKind::OneFOneB, 4, 1, 8, 0.0);
    assert_eq!(a, b);
}

#[test]
fn zb_h1_cuts_1f1bs_bubble_to_about_a_third_within_its_memory() {
    let (p, m) = (8, 16);
    let (_, h1) = run(ScheduleKind::ZbH1, p, 1, m, 0.0);
    let (_, o) = run(ScheduleKind::OneFOneB, p, 1, m, 0.0);
    let ratio = h1.bubble_fraction() / o.bubble_fraction();
    // Qi et al.: (p−1)(F+B−W) against (p−1)(F+B+W), a third with F = B = W.
    assert!(
        (0.25..0.45).contains(&ratio),
        "ZB-H1 {} vs 1F1B {}",
        h1.bubble_fraction(),
        o.bubble_fraction()
    );
    // The same peak over the pipeline as 1F1B (its first device's p).
    let peak = |t: &Timeline| t.peak_activations.iter().copied().fold(0.0, f64::max);
    assert_eq!(peak(&h1), peak(&o));
    assert_eq!(peak(&o), p as f64);
    // Exactly the paper's (p − 1)(F + B − W) of idle per device here.
    assert!(
        close(h1.span, 3.0 * m as f64 + (p - 1) as f64),
        "span {}",
        h1.span
    );
}

#[test]
fn zero_bubble_ordering_and_memory() {
    let (p, m) = (8, 16);
    let bubble = |k| run(k, p, if k == ScheduleKind::Interleaved { 2 } else { 1 }, m, 0.0).1;
    let [g, o, i, h1, h2, zbv] = [
        ScheduleKind::Gpipe,
        ScheduleKind::OneFOneB,
        ScheduleKind::Interleaved,
        ScheduleKind::ZbH1,
        ScheduleKind::ZbH2,
        ScheduleKind::Zbv,
    ]
    .map(bubble);
    let b = |t: &Timeline| t.bubble_fraction();
    eprintln!(
        "gpipe {} 1f1b {} interleaved {} zb-h1 {} zb-h2 {} zbv {}",
        b(&g),
        b(&o),
        b(&i),
        b(&h1),
        b(&h2),
        b(&zbv)
    );
    assert!(b(&h2) < b(&h1) && b(&zbv) < b(&h1));
    assert!(b(&h1) < b(&i) && b(&i) < b(&o) && b(&o) <= b(&g));
    // ZB-H2 trades about twice 1F1B's memory on the first device.
    let ratio = h2.peak_activations[0] / o.peak_activations[0];
    assert!((1.5..=2.0).contains(&ratio), "ZB-H2 holds {ratio}× 1F1B");
}

#[test]
fn every_bubble_shrinks_as_micro_batches_grow() {
    for &kind in ScheduleKind::ALL {
        let vpp = if kind == ScheduleKind::Interleaved { 2 } else { 1 };
        let mut last = f64::INFINITY;
        for m in [4, 8, 16, 32] {
            let b = run(kind, 4, vpp, m, 0.0).1.bubble_fraction();
            assert!(b < last || b < 1e-9, "{kind}: m={m} bubble {b} not below {last}");
            last = b;
        }
    }
}

#[test]
fn transfers_delay_the_pipeline_by_one_hop_per_stage_boundary() {
    // 1F1B, one micro-batch: F down p stages and B back up, each boundary
    // crossed twice: span = p·(F + B) + 2(p − 1)·send.
    let (p, send) = (4, 0.25);
    let (_, t) = run(ScheduleKind::OneFOneB, p, 1, 1, send);
    assert!(
        close(t.span, p as f64 * 3.0 + 2.0 * (p - 1) as f64 * send),
        "{}",
        t.span
    );
}

#[test]
fn every_pass_runs_once_on_its_device_after_its_inputs() {
    for kind in [
        ScheduleKind::Interleaved,
        ScheduleKind::ZbH2,
        ScheduleKind::Zbv,
        ScheduleKind::Gpipe,
    ] {
        let vpp = if kind == ScheduleKind::Interleaved { 2 } else { 1 };
        let (layout, t) = run(kind, 4, vpp, 8, 0.1);
        let mut end = std::collections::BTreeMap::new();
        for (d, ran) in t.devices.iter().enumerate() {
            let mut free = 0.0;
            for r in ran {
                assert_eq!(layout.device(r.task.stage) as usize, d);
                assert!(
                    r.start >= free - 1e-12,
                    "{kind}: overlapping passes on device {d}"
                );
                free = r.end;
                assert!(
                    end.insert((r.task.pass, r.task.micro_batch, r.task.stage), (r.start, r.end))
                        .is_none()
                );
            }
        }
        let stages = layout.stages();
        for (&(pass, mb, s), &(start, _)) in &end {
            let dep = match pass {
                Pass::F if s > 0 => end.get(&(Pass::F, mb, s - 1)),
                Pass::B if s + 1 < stages => end.get(&(Pass::B, mb, s + 1)),
                Pass::B => end.get(&(Pass::F, mb, s)),
                Pass::W => end.get(&(Pass::B, mb, s)),
                Pass::F => None,
            };
            if let Some(&(_, dep_end)) = dep {
                assert!(
                    start >= dep_end - 1e-12,
                    "{kind}: {pass:?} of {mb} at {s} before its input"
                );
            }
        }
        let passes = if kind.splits_backward() { 3 } else { 2 };
        assert_eq!(end.len(), (passes * 8 * stages) as usize);
    }
}

#[test]
fn invalid_orders_and_layouts_are_explained() {
    let layout = ScheduleKind::OneFOneB.layout(2, 1, 2).unwrap();
    let t = times(&layout, 1.0, 1.0, 1.0, false, 0.0);
    let mut l = lists(ScheduleKind::OneFOneB, layout, &t);
    // Device 0 runs B of micro-batch 0 before any forward: waits on itself.
    l[0].rotate_right(1);
    let e = execute(&layout, &l, &t, false).unwrap_err().to_string();
    assert!(e.contains("waits on itself"), "{e}");
    let mut l = lists(ScheduleKind::OneFOneB, layout, &t);
    l[1].pop();
    let e = execute(&layout, &l, &t, false).unwrap_err().to_string();
    assert!(e.contains("misses a pass"), "{e}");
    let e = ScheduleKind::Interleaved.layout(4, 2, 6).unwrap_err().to_string();
    assert!(e.contains("multiple of `parallel.pp`"), "{e}");
    let e = ScheduleKind::OneFOneB.layout(4, 2, 8).unwrap_err().to_string();
    assert!(e.contains("vpp = 2"), "{e}");
}

#[test]
fn a_pass_on_the_wrong_device_or_out_of_range_is_refused() {
    let layout = ScheduleKind::OneFOneB.layout(2, 1, 2).unwrap();
    let t = times(&layout, 1.0, 1.0, 1.0, false, 0.0);
    let good = lists(ScheduleKind::OneFOneB, layout, &t);
    for (d, k, bad) in [
        (
            0,
            0,
            super::schedule::Task {
                pass: Pass::F,
                micro_batch: 0,
                stage: 1,
            },
        ),
        (
            0,
            0,
            super::schedule::Task {
                pass: Pass::F,
                micro_batch: 2,
                stage: 0,
            },
        ),
        (
            1,
            0,
            super::schedule::Task {
                pass: Pass::F,
                micro_batch: 0,
                stage: 2,
            },
        ),
    ] {
        let mut l = good.clone();
        l[d][k] = bad;
        let e = execute(&layout, &l, &t, false).unwrap_err().to_string();
        assert!(e.contains(&format!("listed on device {d}")), "{e}");
    }
}
