//! A plan's capacity: the highest arrival rate at which it meets the SLO.
//!
//! # The workload at a rate
//!
//! Every probe of every plan replays the *same* requests (same count, same
//! seed, same lengths); only the arrival times change with the rate. The
//! requests are generated once from the base scenario's workload
//! ([`RateWorkload::prepare`]) at its own rate `r₀`, and a probe at rate `r`
//! multiplies every arrival time by `r₀ / r`. This is exactly what setting
//! the rate does with the same seed: Poisson and gamma gaps are the seed's
//! unit draws divided by the rate, constant gaps are `1/r`, and a trace's
//! timestamps are divided by `workload.rate_scale` (so a trace's rate is its
//! mean rate `(n−1)/span` × `rate_scale`). Arrival times agree with a run of
//! the scenario at rate `r` (what `best.toml` holds) to within rounding to
//! a few nanoseconds (base arrivals are whole nanoseconds, scaled by `r₀/r`).
//! Requests are generated once and traces read once.
//!
//! # Meeting the SLO
//!
//! A plan meets the SLO at rate `r` when the run's `slo_met` holds (every set
//! `[slo]` threshold holds at `slo.percentile`, rejected requests counting
//! as infinitely slow; see `metrics::summary`) and, if `search.min_attainment`
//! is set, at least that fraction of requests met every threshold.
//!
//! A finite probe can only show that a rate is *sustained* if it lasts long
//! enough for the plan to reach a steady state: with `n` requests arriving
//! over a window `T ≈ n/r`, a plan holding `L = r·W` requests at once (Little's
//! law, `W` the mean end-to-end latency) fills up only after about `W`
//! seconds, and an overload shows only once the batch has grown to its limit
//! and a queue builds. A window of a few `W` shows the fill-up, not the
//! steady state: an overloaded plan with large batches can look fine (1,000
//! requests arriving in 8 s, all admitted into 512 batch slots). So a probe
//! also requires `T ≥ min_window_latencies × W` (default 5). A plan whose
//! first failing probe failed only this check is flagged `count_limited`:
//! its capacity is bounded by the request count rather than measured at a
//! steady state, and more requests per probe (`workload.count`) would
//! measure it properly.
//!
//! # The search
//!
//! Bracketing, then bisection ([`search`]): probe `low`; if it fails the plan
//! "fails_at_low" (capacity 0). Otherwise multiply the rate by 4 until a
//! probe fails (or `high` passes: "above_high", capacity = `high`) — a probe
//! costs about `1/rate` (low rates mean small batches and many iterations
//! per token), so big steps away from `low` save the expensive probes and
//! the extra bisection steps near capacity are cheap. Then bisect between
//! the last passing rate `lo` and the first failing rate `hi` at the
//! geometric midpoint `√(lo·hi)` until `hi ≤ lo·(1 + tolerance)`. The
//! capacity is `lo`: a rate the plan was seen to sustain, within `tolerance`
//! (relative) of the lowest rate it was seen to fail. With a finite request
//! count, latency is not strictly monotone in rate, so the boundary found is
//! *a* pass/fail boundary the search brackets; the probes are all recorded.

use super::space::RateConfig;
use crate::engine::{self, Simulation};
use crate::error::{Error, Result};
use crate::metrics::summary::percentile_sorted;
use crate::scenario::{ArrivalKind, Scenario, validate::Plan};
use crate::units::{Nanos, nanos_to_secs};
use crate::workload::{self, RequestSource, RequestSpec};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The base workload's requests, ready to be replayed at any rate.
#[derive(Debug, Clone)]
pub struct RateWorkload {
    specs: Arc<Vec<RequestSpec>>,
    /// The rate the specs were generated at, requests/s.
    pub base_rate: f64,
    /// Arrivals come from a trace's timestamps (rate set via `rate_scale`).
    trace_arrivals: bool,
    /// For trace arrivals: the trace's own mean rate (at rate_scale 1).
    native_rate: f64,
}

impl RateWorkload {
    /// Generates the base scenario's requests once (reading any trace).
    pub fn prepare(base: &Scenario) -> Result<RateWorkload> {
        let w = &base.workload;
        if w.concurrency > 0 {
            return Err(Error::config(
                "key `workload.concurrency`",
                format!(
                    "is {}: a capacity search varies the arrival rate, and closed-loop clients \
                     have none (set it to 0 to search open-loop arrivals)",
                    w.concurrency
                ),
            ));
        }
        let trace_arrivals = w.arrivals.kind_or_default(w.trace.is_some()) == ArrivalKind::Trace;
        let mut cfg = w.clone();
        cfg.rate_scale = 1.0;
        let mut source = workload::build_source(&cfg)?;
        let mut specs = Vec::new();
        while let Some(r) = source.next_request() {
            specs.push(r);
        }
        if specs.len() < 2 {
            return Err(Error::config(
                "key `workload.count`",
                format!(
                    "a capacity search needs at least 2 requests, the workload has {}",
                    specs.len()
                ),
            ));
        }
        let (base_rate, native_rate) = if trace_arrivals {
            let span = nanos_to_secs(specs[specs.len() - 1].arrival - specs[0].arrival);
            if span <= 0.0 {
                return Err(Error::config(
                    "key `workload.trace`",
                    "the trace's timestamps span no time, so it has no rate to scale",
                ));
            }
            let native = (specs.len() - 1) as f64 / span;
            (native, native)
        } else {
            (w.arrivals.rate, 0.0)
        };
        Ok(RateWorkload {
            specs: Arc::new(specs),
            base_rate,
            trace_arrivals,
            native_rate,
        })
    }

    /// The workload's own rate × `rate_scale` (the default `search.rate.low`).
    pub fn scenario_rate(&self, base: &Scenario) -> f64 {
        if self.trace_arrivals {
            self.native_rate * base.workload.rate_scale
        } else {
            self.base_rate
        }
    }

    /// Sets the scenario's arrival rate to `rate` (requests/s): the
    /// arrival rate, or for trace arrivals the rate scale.
    pub fn set_rate(&self, s: &mut Scenario, rate: f64) {
        if self.trace_arrivals {
            s.workload.rate_scale = rate / self.native_rate;
        } else {
            s.workload.arrivals.rate = rate;
        }
    }

    /// The requests with arrival times scaled to `rate`.
    pub fn source(&self, rate: f64) -> ScaledSource {
        ScaledSource {
            specs: Arc::clone(&self.specs),
            factor: self.base_rate / rate,
            next: 0,
        }
    }

    /// Requests per probe.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

/// Replays pre-generated requests with arrival times multiplied by `factor`.
pub struct ScaledSource {
    specs: Arc<Vec<RequestSpec>>,
    factor: f64,
    next: usize,
}

impl RequestSource for ScaledSource {
    fn next_request(&mut self) -> Option<RequestSpec> {
        let mut r = self.specs.get(self.next)?.clone();
        self.next += 1;
        r.arrival = (r.arrival as f64 * self.factor).round() as Nanos;
        Some(r)
    }
}

/// One simulation of a plan at one rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Arrival rate, requests/s.
    pub rate: f64,
    /// The plan met the SLO at this rate.
    pub met: bool,
    /// TTFT and TPOT at `slo.percentile` over completed requests, ms.
    pub ttft_ms: f64,
    pub tpot_ms: f64,
    /// Fraction of all requests that completed within every threshold.
    pub attainment: f64,
    /// The SLO checks (and the attainment target) held.
    pub slo_ok: bool,
    /// The arrival window was long enough to show a steady state (see the
    /// module docs); `met = slo_ok && steady`.
    pub steady: bool,
}

/// What a probe must show to count as meeting the SLO.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criteria {
    /// `search.min_attainment`.
    pub min_attainment: f64,
    /// `search.rate.min_window_latencies`.
    pub min_window_latencies: f64,
}

/// Simulates `plan` serving `w` at `rate` and judges the SLO.
pub fn probe(plan: &Plan, w: &RateWorkload, rate: f64, crit: &Criteria) -> Result<Probe> {
    let mut plan = plan.clone();
    w.set_rate(&mut plan.scenario, rate);
    let model = engine::time_model(&plan)?;
    let sim = Simulation::with_source(&plan, model, Box::new(w.source(rate)));
    let report = sim.run(&mut |_| {});
    let s = &report.summary;
    let pct = plan.scenario.slo.percentile;
    let (mut ttft, mut tpot) = (Vec::new(), Vec::new());
    for r in &report.requests {
        if let Some(t) = r.ttft_ns() {
            ttft.push(t as f64 / 1e6);
        }
        if let Some(t) = r.tpot_ns() {
            tpot.push(t / 1e6);
        }
    }
    crate::metrics::summary::sort_values(&mut ttft);
    crate::metrics::summary::sort_values(&mut tpot);
    let (first, last) = (report.requests.first(), report.requests.last());
    let window_s = match (first, last) {
        (Some(a), Some(b)) => nanos_to_secs(b.arrival.saturating_sub(a.arrival)),
        _ => 0.0,
    };
    let slo_ok = s.slo_met && s.slo_attainment >= crit.min_attainment;
    let steady = window_s >= crit.min_window_latencies * s.e2el.mean / 1e3;
    Ok(Probe {
        rate,
        met: slo_ok && steady,
        slo_ok,
        steady,
        ttft_ms: percentile_sorted(&ttft, pct),
        tpot_ms: percentile_sorted(&tpot, pct),
        attainment: s.slo_attainment,
    })
}

/// How a plan's capacity search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Bracketed to within the tolerance.
    Ok,
    /// Missed the SLO at the lowest rate: capacity 0.
    FailsAtLow,
    /// Met the SLO at the highest rate: capacity ≥ `high`.
    AboveHigh,
    /// `max_probes` ran out before the bracket reached the tolerance.
    ProbeLimit,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::FailsAtLow => "fails_at_low",
            Status::AboveHigh => "above_high",
            Status::ProbeLimit => "probe_limit",
        }
    }
}

/// The result of one plan's rate search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub status: Status,
    /// Highest rate seen to meet the SLO (0 when none), requests/s.
    pub capacity: f64,
    /// Lowest rate seen to miss it (`None` when none did).
    pub first_fail: Option<f64>,
    /// Every probe, in the order run.
    pub probes: Vec<Probe>,
}

impl Capacity {
    /// The first failing rate failed only the steady-state check: the
    /// capacity is bounded by the request count, not measured at a steady state.
    pub fn count_limited(&self) -> bool {
        let ff = self.first_fail;
        self.probes
            .iter()
            .find(|p| Some(p.rate) == ff)
            .is_some_and(|p| p.slo_ok && !p.steady)
    }
}

impl Capacity {
    /// The probe at the capacity (the last passing one).
    pub fn at_capacity(&self) -> Option<&Probe> {
        self.probes
            .iter()
            .filter(|p| p.met)
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
    }

    /// The first probe (at `low`).
    pub fn at_low(&self) -> Option<&Probe> {
        self.probes.first()
    }
}

/// The rate-search limits with defaults resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    pub low: f64,
    pub high: f64,
    pub tolerance: f64,
    pub max_probes: u32,
}

impl Bracket {
    /// `[search.rate]` with `low` defaulting to `default_low` and `high` to 4096 × low.
    pub fn resolve(c: &RateConfig, default_low: f64) -> Bracket {
        let low = if c.low > 0.0 { c.low } else { default_low };
        Bracket {
            low,
            high: if c.high > 0.0 { c.high } else { 4096.0 * low },
            tolerance: c.tolerance,
            max_probes: c.max_probes,
        }
    }
}

/// Factor between bracketing probes.
const BRACKET_STEP: f64 = 4.0;

/// Bracketing then bisection (see the module docs). `run` simulates one rate.
pub fn search(b: &Bracket, mut run: impl FnMut(f64) -> Result<Probe>) -> Result<Capacity> {
    let mut probes = Vec::new();
    let mut go = |rate: f64, probes: &mut Vec<Probe>| -> Result<bool> {
        let p = run(rate)?;
        probes.push(p);
        Ok(p.met)
    };
    if !go(b.low, &mut probes)? {
        return Ok(Capacity {
            status: Status::FailsAtLow,
            capacity: 0.0,
            first_fail: Some(b.low),
            probes,
        });
    }
    let mut lo = b.low;
    let mut hi = loop {
        if lo >= b.high {
            return Ok(Capacity {
                status: Status::AboveHigh,
                capacity: lo,
                first_fail: None,
                probes,
            });
        }
        if probes.len() as u32 >= b.max_probes {
            return Ok(Capacity {
                status: Status::ProbeLimit,
                capacity: lo,
                first_fail: None,
                probes,
            });
        }
        let r = (BRACKET_STEP * lo).min(b.high);
        if go(r, &mut probes)? {
            lo = r;
        } else {
            break r;
        }
    };
    while hi > lo * (1.0 + b.tolerance) && (probes.len() as u32) < b.max_probes {
        let mid = (lo * hi).sqrt();
        if go(mid, &mut probes)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let status = if hi > lo * (1.0 + b.tolerance) {
        Status::ProbeLimit
    } else {
        Status::Ok
    };
    Ok(Capacity {
        status,
        capacity: lo,
        first_fail: Some(hi),
        probes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(cap: f64) -> impl FnMut(f64) -> Result<Probe> {
        move |rate| {
            Ok(Probe {
                rate,
                met: rate <= cap,
                ttft_ms: 0.0,
                tpot_ms: 0.0,
                attainment: 1.0,
                slo_ok: rate <= cap,
                steady: true,
            })
        }
    }

    fn bracket(low: f64, high: f64) -> Bracket {
        Bracket {
            low,
            high,
            tolerance: 0.01,
            max_probes: 60,
        }
    }

    /// A capacity is count-limited when its first failing rate met every
    /// SLO check and failed only the steady-state one.
    #[test]
    fn count_limited_is_the_first_fail_missing_only_the_steady_state() {
        let probe = |rate, slo_ok, steady| Probe {
            rate,
            met: slo_ok && steady,
            ttft_ms: 0.0,
            tpot_ms: 0.0,
            attainment: 1.0,
            slo_ok,
            steady,
        };
        let cap = |first_fail, probes| Capacity {
            status: Status::Ok,
            capacity: 1.0,
            first_fail,
            probes,
        };
        let pass = probe(1.0, true, true);
        assert!(cap(Some(2.0), vec![pass, probe(2.0, true, false)]).count_limited());
        assert!(!cap(Some(2.0), vec![pass, probe(2.0, false, false)]).count_limited());
        assert!(!cap(Some(2.0), vec![pass, probe(2.0, false, true)]).count_limited());
        // Only the first failing rate counts, not another unsteady probe.
        let other = vec![probe(3.0, true, false), pass, probe(2.0, false, true)];
        assert!(!cap(Some(2.0), other).count_limited());
        assert!(!cap(None, vec![pass]).count_limited());
    }

    /// The search stops as soon as the bracket is within tolerance. Step at
    /// 3.7 from low 1, tolerance 1%: probes at 1 (pass) and 4 (fail), then
    /// geometric bisection of a ratio of 4 needs k halvings of its log with
    /// ln 4 / 2^k ≤ ln 1.01, i.e. 2^k ≥ 139.3: k = 8, 10 probes in all. With
    /// max_probes = 9 the bracket is not reached: probe_limit.
    #[test]
    fn bisection_stops_at_the_tolerance_and_at_max_probes() {
        let c = search(&bracket(1.0, 1e4), step(3.7)).unwrap();
        assert_eq!((c.status, c.probes.len()), (Status::Ok, 10));
        let limited = |max_probes| Bracket {
            max_probes,
            ..bracket(1.0, 1e4)
        };
        let c = search(&limited(10), step(3.7)).unwrap();
        assert_eq!((c.status, c.probes.len()), (Status::Ok, 10));
        let c = search(&limited(9), step(3.7)).unwrap();
        assert_eq!((c.status, c.probes.len()), (Status::ProbeLimit, 9));
    }

    /// `low` defaults to the workload's rate and `high` to 4096 × low.
    #[test]
    fn the_bracket_defaults_to_the_workload_rate_and_4096_times_it() {
        let rc = |low, high| RateConfig {
            low,
            high,
            ..RateConfig::default()
        };
        let b = Bracket::resolve(&rc(0.0, 0.0), 2.0);
        assert_eq!((b.low, b.high), (2.0, 8192.0));
        let b = Bracket::resolve(&rc(3.0, 0.0), 2.0);
        assert_eq!((b.low, b.high), (3.0, 12288.0));
        let b = Bracket::resolve(&rc(0.0, 5.0), 2.0);
        assert_eq!((b.low, b.high), (2.0, 5.0));
    }

    #[test]
    fn bisection_brackets_a_step_within_tolerance() {
        for cap in [0.13, 1.0, 3.7, 99.0, 1234.5] {
            let c = search(&bracket(0.1, 1e4), step(cap)).unwrap();
            assert_eq!(c.status, Status::Ok);
            assert!(c.capacity <= cap && cap < c.first_fail.unwrap(), "{cap}: {c:?}");
            assert!(c.first_fail.unwrap() <= c.capacity * 1.01 + 1e-12);
            assert_eq!(c.at_capacity().unwrap().rate, c.capacity);
        }
    }

    #[test]
    fn fails_at_low_and_above_high() {
        let c = search(&bracket(1.0, 100.0), step(0.5)).unwrap();
        assert_eq!(
            (c.status, c.capacity, c.probes.len()),
            (Status::FailsAtLow, 0.0, 1)
        );
        let c = search(&bracket(1.0, 100.0), step(500.0)).unwrap();
        assert_eq!((c.status, c.capacity), (Status::AboveHigh, 100.0));
        // Exactly at low: passes, then brackets.
        let c = search(&bracket(1.0, 100.0), step(1.0)).unwrap();
        assert_eq!((c.status, c.capacity), (Status::Ok, 1.0));
    }

    #[test]
    fn probe_limit_is_reported() {
        let b = Bracket {
            max_probes: 4,
            ..bracket(1.0, 1e6)
        };
        let c = search(&b, step(1000.0)).unwrap();
        assert_eq!(c.status, Status::ProbeLimit);
        assert_eq!(c.probes.len(), 4);
        // 1, 4, 16, 64: all pass, the limit stops the bracketing.
        assert_eq!(c.capacity, 64.0);
    }

    #[test]
    fn scaled_replay_matches_generating_at_the_rate() {
        let mut s = Scenario::default();
        s.workload.count = 300;
        s.workload.seed = 5;
        let w = RateWorkload::prepare(&s).unwrap();
        for rate in [0.5, 7.0, 40.0] {
            let mut s2 = s.clone();
            w.set_rate(&mut s2, rate);
            let mut direct = workload::build_source(&s2.workload).unwrap();
            let mut scaled = w.source(rate);
            while let Some(d) = direct.next_request() {
                let x = scaled.next_request().unwrap();
                assert_eq!(
                    (d.id, d.prompt_tokens, d.output_tokens),
                    (x.id, x.prompt_tokens, x.output_tokens)
                );
                // Base arrivals are whole nanoseconds, so scaling by r₀/r
                // can move them by up to r₀/r / 2 ns.
                let slack = 1.0 + w.base_rate / rate;
                assert!(
                    d.arrival.abs_diff(x.arrival) as f64 <= slack,
                    "{} vs {}",
                    d.arrival,
                    x.arrival
                );
            }
            assert!(scaled.next_request().is_none());
        }
    }
}
