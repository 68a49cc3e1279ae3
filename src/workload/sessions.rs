//! Closed-loop multi-turn sessions (`[workload.sessions]`).
//!
//! A session is a conversation of `turns` turns. Its first prompt is drawn
//! from `workload.prompt`; turn k + 1 is sent a think time after turn k's
//! answer ended, and its prompt is the whole history (every earlier prompt
//! and answer) plus `new_tokens` new user tokens. Each turn declares the
//! history it will hand on, its prompt *and* its answer, as a prefix of
//! its session ([`Prefix::Group`] with that many tokens), so a replica with
//! prefix caching keeps the full blocks of both (vLLM caches generated
//! blocks too) and the next turn computes only what is new. A rejected
//! turn ends its session (the user gives up).
//!
//! Sessions start open-loop, at the times of `workload.arrivals`
//! (`users = 0`), or closed-loop: `users` users start one session each at
//! 0, and each starts its next session a think time after the last ended.
//! `workload.count` counts turns; no turn is sent after `workload.duration`.
//!
//! Determinism: turns ready at the same time are sent in the order they
//! became ready (completions arrive in the engine's documented order); the
//! request-to-session map is only probed, never iterated. State is bounded
//! by the sessions in progress; nothing allocates once they peak.

use super::arrivals::Arrivals;
use super::feedback::{Completion, Workload};
use super::lengths::{Lengths, lognormal};
use super::{Prefix, RequestSpec, Resolved, cap_output, key_err, length_dist, mix64, pick_client, stream};
use crate::error::Result;
use crate::scenario::kinds::kinds;
use crate::scenario::{DelayConfig, SessionsConfig, WorkloadConfig};
use crate::units::{Nanos, secs_to_nanos};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

kinds! {
    /// A distribution of delays in seconds (`workload.sessions.think_time.kind`).
    pub enum DelayKind {
        /// Always `value`.
        Fixed = "fixed",
        /// Exponential with mean `mean`.
        Exponential = "exponential",
        /// Uniform in `min..max`.
        Uniform = "uniform",
        /// `median · e^(sigma·Z)`, Z standard normal, clamped to `min..max`.
        LogNormal = "lognormal",
    }
}

/// A distribution of delays (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    Fixed(f64),
    Exponential {
        mean: f64,
    },
    Uniform {
        min: f64,
        max: f64,
    },
    LogNormal {
        median: f64,
        sigma: f64,
        min: f64,
        max: f64,
    },
}

impl Delay {
    /// Checks `c` (`key` names it in errors, e.g. `sessions.think_time`).
    pub fn new(key: &str, c: &DelayConfig) -> Result<Delay> {
        let nonneg = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(key_err(
                    &format!("{key}.{name}"),
                    format!("must be ≥ 0 seconds, found {v}"),
                ))
            }
        };
        let bounds = || -> Result<(f64, f64)> {
            let (min, max) = (nonneg("min", c.min)?, nonneg("max", c.max)?);
            if min > max {
                return Err(key_err(
                    key,
                    format!("needs min ≤ max, found min {min} and max {max}"),
                ));
            }
            Ok((min, max))
        };
        Ok(match c.kind {
            DelayKind::Fixed => Delay::Fixed(nonneg("value", c.value)?),
            DelayKind::Exponential => Delay::Exponential {
                mean: nonneg("mean", c.mean)?,
            },
            DelayKind::Uniform => {
                let (min, max) = bounds()?;
                Delay::Uniform { min, max }
            }
            DelayKind::LogNormal => {
                let (min, max) = bounds()?;
                if !(c.median.is_finite() && c.median > 0.0) {
                    return Err(key_err(
                        &format!("{key}.median"),
                        format!("must be > 0, found {}", c.median),
                    ));
                }
                Delay::LogNormal {
                    median: c.median,
                    sigma: nonneg("sigma", c.sigma)?,
                    min,
                    max,
                }
            }
        })
    }

    /// One delay in seconds.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Delay::Fixed(v) => v,
            // Inverse CDF: −mean·ln(U), U in (0, 1].
            Delay::Exponential { mean } => -mean * (1.0 - rng.random::<f64>()).ln(),
            Delay::Uniform { min, max } => min + (max - min) * rng.random::<f64>(),
            Delay::LogNormal {
                median,
                sigma,
                min,
                max,
            } => lognormal(median, sigma, rng).clamp(min, max),
        }
    }
}

/// One conversation in progress.
#[derive(Debug, Clone, Copy)]
struct Session {
    id: u64,
    client: u32,
    /// Turns sent so far, and in all.
    turn: u32,
    turns: u32,
    /// Tokens of the history the next turn extends (earlier prompts and answers).
    history: u32,
    /// Prompt of the turn in flight.
    prompt: u32,
    /// Request id of the last turn sent.
    last: Option<u64>,
}

/// Where new sessions come from.
enum Starts {
    /// `users` users, each starting its next session after the last.
    Users,
    /// Open-loop arrivals: the process, its clock (seconds) and the next start.
    Arrivals {
        process: Arrivals,
        clock: f64,
        next: Option<Nanos>,
    },
}

pub struct ClosedSessions {
    prompt: Lengths,
    output: Lengths,
    new_tokens: Lengths,
    turns: Lengths,
    think: Delay,
    max_tokens: u32,
    client_cdf: Vec<f64>,
    priorities: Vec<u32>,
    starts: Starts,
    limit: u64,
    duration: Option<Nanos>,
    sent: u64,
    next_session: u64,
    /// A session the last completion ended before its planned last turn.
    ended_early: Option<u64>,
    /// Turns ready to be sent: (time, order they became ready, session slot).
    ready: BinaryHeap<Reverse<(Nanos, u64, u32)>>,
    order: u64,
    sessions: Vec<Session>,
    free_slots: Vec<u32>,
    /// Request id of each turn in flight → its session slot.
    in_flight: HashMap<u64, u32>,
    rng: Rngs,
}

/// One stream per random purpose, so changing one distribution leaves the
/// others' draws unchanged.
struct Rngs {
    start: ChaCha8Rng,
    prompt: ChaCha8Rng,
    output: ChaCha8Rng,
    client: ChaCha8Rng,
    turns: ChaCha8Rng,
    think: ChaCha8Rng,
    new_tokens: ChaCha8Rng,
}

impl ClosedSessions {
    /// The sessions `cfg.sessions` describes (`r`: the rest of `cfg`, resolved).
    pub(super) fn new(cfg: &WorkloadConfig, sc: &SessionsConfig, r: Resolved) -> Result<Self> {
        if r.trace.is_some() {
            return Err(key_err(
                "sessions",
                "closed-loop sessions draw their lengths from distributions; remove `workload.trace`",
            ));
        }
        if cfg.concurrency > 0 {
            return Err(key_err(
                "concurrency",
                "closed-loop sessions have their own users (`workload.sessions.users`); set one of the two",
            ));
        }
        let turns = length_dist("sessions.turns", &sc.turns, false)?;
        let new_tokens = length_dist(
            "sessions.new_tokens",
            sc.new_tokens.as_ref().unwrap_or(&cfg.prompt),
            false,
        )?;
        let think = Delay::new("sessions.think_time", &sc.think_time)?;
        let stream = |k| stream(cfg.seed, k);
        let starts = match (sc.users, r.arrivals) {
            (0, Some(process)) => Starts::Arrivals {
                process,
                clock: 0.0,
                next: Some(0),
            },
            (0, None) => {
                return Err(key_err(
                    "sessions.users",
                    "is 0 (sessions start at the arrival process's times) but no arrival process is set",
                ));
            }
            _ => Starts::Users,
        };
        let mut s = ClosedSessions {
            prompt: r.prompt,
            output: r.output,
            new_tokens,
            turns,
            think,
            max_tokens: cfg.max_tokens,
            client_cdf: r.client_cdf,
            priorities: r.priorities,
            starts,
            limit: r.limit,
            duration: r.duration,
            sent: 0,
            next_session: 0,
            ended_early: None,
            ready: BinaryHeap::new(),
            order: 0,
            sessions: Vec::new(),
            free_slots: Vec::new(),
            in_flight: HashMap::new(),
            rng: Rngs {
                start: stream(1),
                prompt: stream(2),
                output: stream(3),
                client: stream(5),
                turns: stream(7),
                think: stream(8),
                new_tokens: stream(9),
            },
        };
        for _ in 0..sc.users {
            let client = s.pick_client();
            let slot = s.open_session(client);
            s.make_ready(0, slot);
        }
        Ok(s)
    }

    fn pick_client(&mut self) -> u32 {
        pick_client(&self.client_cdf, &mut self.rng.client)
    }

    /// Starts a session in a free slot (or a new one); returns the slot.
    fn open_session(&mut self, client: u32) -> u32 {
        let s = Session {
            id: self.next_session,
            client,
            turn: 0,
            turns: self.turns.sample(&mut self.rng.turns),
            history: 0,
            prompt: 0,
            last: None,
        };
        self.next_session += 1;
        match self.free_slots.pop() {
            Some(slot) => {
                self.sessions[slot as usize] = s;
                slot
            }
            None => {
                self.sessions.push(s);
                (self.sessions.len() - 1) as u32
            }
        }
    }

    fn make_ready(&mut self, at: Nanos, slot: u32) {
        self.ready.push(Reverse((at, self.order, slot)));
        self.order += 1;
    }

    fn think_time(&mut self) -> Nanos {
        secs_to_nanos(self.think.sample(&mut self.rng.think))
    }

    /// The next send: a ready turn, or (open-loop) a new session's first.
    fn next(&self) -> Option<(Nanos, bool)> {
        if self.sent >= self.limit {
            return None;
        }
        let turn = self.ready.peek().map(|r| r.0.0);
        let start = match self.starts {
            Starts::Arrivals { next, .. } => next,
            Starts::Users => None,
        };
        let next = match (turn, start) {
            (Some(t), Some(s)) if s < t => (s, true),
            (Some(t), _) => (t, false),
            (None, Some(s)) => (s, true),
            (None, None) => return None,
        };
        (self.duration.is_none_or(|d| next.0 <= d)).then_some(next)
    }

    /// The request of the next turn of the session in `slot`, sent at `at`.
    fn turn_request(&mut self, slot: u32, at: Nanos) -> RequestSpec {
        let output = cap_output(self.output.sample(&mut self.rng.output), self.max_tokens);
        let s = self.sessions[slot as usize];
        let prompt = if s.turn == 0 {
            self.prompt.sample(&mut self.rng.prompt)
        } else {
            s.history
                .saturating_add(self.new_tokens.sample(&mut self.rng.new_tokens))
        };
        let id = self.sent;
        self.sent += 1;
        self.in_flight.insert(id, slot);
        let sess = &mut self.sessions[slot as usize];
        sess.turn += 1;
        sess.prompt = prompt;
        let parent = sess.last.replace(id);
        RequestSpec {
            id,
            arrival: at,
            prompt_tokens: prompt,
            output_tokens: output,
            client: s.client,
            session: Some(s.id),
            ends_session: s.turn + 1 >= s.turns,
            program: None,
            parent,
            priority: self.priorities.get(s.client as usize).copied().unwrap_or(0),
            // The history this turn hands on: its prompt and its answer.
            prefix: Prefix::Group {
                group: mix64(s.id ^ 0x5E55_1015),
                tokens: prompt.saturating_add(output),
            },
        }
    }

    /// The session in `slot` is over, at `at`: a closed-loop user starts
    /// another after a think time; an open-loop slot is freed.
    fn close_session(&mut self, slot: u32, at: Nanos) {
        match self.starts {
            Starts::Users => {
                let client = self.sessions[slot as usize].client;
                self.free_slots.push(slot);
                let slot = self.open_session(client);
                let t = at + self.think_time();
                self.make_ready(t, slot);
            }
            Starts::Arrivals { .. } => self.free_slots.push(slot),
        }
    }
}

impl Workload for ClosedSessions {
    fn next_arrival(&mut self) -> Option<Nanos> {
        self.next().map(|(t, _)| t)
    }

    fn take_request(&mut self) -> Option<RequestSpec> {
        let (t, start) = self.next()?;
        let slot = if start {
            let client = self.pick_client();
            let slot = self.open_session(client);
            if let Starts::Arrivals { process, clock, next } = &mut self.starts {
                *clock += process.gap(&mut self.rng.start);
                *next = Some(secs_to_nanos(*clock));
            }
            slot
        } else {
            self.ready.pop().expect("a ready turn was announced").0.2
        };
        Some(self.turn_request(slot, t))
    }

    fn on_complete(&mut self, c: &Completion) {
        let Some(slot) = self.in_flight.remove(&c.id) else {
            return;
        };
        let s = &mut self.sessions[slot as usize];
        if !c.finished || s.turn >= s.turns {
            if s.turn < s.turns {
                // Refused before its last turn: the router is told here
                // (the planned last turn tells it when routed).
                self.ended_early = Some(s.id);
            }
            self.close_session(slot, c.finish);
            return;
        }
        s.history = s.prompt.saturating_add(c.output_tokens);
        let t = c.finish + self.think_time();
        self.make_ready(t, slot);
    }

    fn listens(&self) -> bool {
        true
    }

    fn take_ended_session(&mut self) -> Option<u64> {
        self.ended_early.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cfg(kind: &str) -> DelayConfig {
        DelayConfig {
            kind: crate::scenario::kinds::Kind::from_name(kind).unwrap(),
            value: 2.0,
            mean: 3.0,
            min: 1.0,
            max: 5.0,
            median: 2.0,
            sigma: 0.5,
        }
    }

    fn samples(kind: &str) -> Vec<f64> {
        let d = Delay::new("sessions.think_time", &cfg(kind)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        (0..40_000).map(|_| d.sample(&mut rng)).collect()
    }

    /// Each delay distribution against its definition (40,000 draws: the
    /// standard error of an exponential mean of 3 s is 0.015 s).
    #[test]
    fn delays_follow_their_definitions() {
        assert!(samples("fixed").iter().all(|&x| x == 2.0));
        let e = samples("exponential");
        let mean = e.iter().sum::<f64>() / e.len() as f64;
        assert!((mean - 3.0).abs() < 0.06, "exponential mean {mean}");
        let frac_above = e.iter().filter(|&&x| x > 3.0).count() as f64 / e.len() as f64;
        assert!(
            (frac_above - (-1.0f64).exp()).abs() < 0.01,
            "P(X > mean) = {frac_above}"
        );
        let u = samples("uniform");
        assert!(u.iter().all(|&x| (1.0..=5.0).contains(&x)));
        let mean = u.iter().sum::<f64>() / u.len() as f64;
        assert!((mean - 3.0).abs() < 0.03, "uniform mean {mean}");
        let mut l = samples("lognormal");
        l.sort_by(f64::total_cmp);
        assert!(
            (l[l.len() / 2] - 2.0).abs() < 0.03,
            "lognormal median {}",
            l[l.len() / 2]
        );
        assert!(l.iter().all(|&x| (1.0..=5.0).contains(&x)));
    }

    #[test]
    fn bad_delays_name_their_key() {
        let err = |c: DelayConfig| Delay::new("sessions.think_time", &c).unwrap_err().to_string();
        assert!(
            err(DelayConfig {
                mean: f64::NAN,
                ..cfg("exponential")
            })
            .contains("think_time.mean")
        );
        assert!(
            err(DelayConfig {
                min: 6.0,
                ..cfg("uniform")
            })
            .contains("min ≤ max")
        );
        assert!(
            err(DelayConfig {
                median: 0.0,
                ..cfg("lognormal")
            })
            .contains("think_time.median")
        );
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use crate::scenario::{LengthConfig, WorkloadConfig};

    use crate::workload::feedback::Completion;

    /// Turns ready at the same instant go out in the order they became
    /// ready, not by session slot: two users, zero think time; session 1's
    /// answer is delivered before session 0's, both ending at 50.
    #[test]
    fn simultaneous_turns_go_in_the_order_they_became_ready() {
        let cfg = WorkloadConfig {
            count: 10,
            sessions: Some(SessionsConfig {
                users: 2,
                think_time: DelayConfig {
                    kind: DelayKind::Fixed,
                    value: 0.0,
                    ..DelayConfig::default()
                },
                ..SessionsConfig::default()
            }),
            prompt: LengthConfig {
                kind: Some(crate::workload::lengths::LengthKind::Fixed),
                value: 8,
                ..LengthConfig::default()
            },
            ..WorkloadConfig::default()
        };
        let mut w = crate::workload::build(&cfg).unwrap();
        let a = w.take_request().unwrap();
        let b = w.take_request().unwrap();
        assert_eq!((a.session, b.session), (Some(0), Some(1)));
        w.on_complete(&Completion::done(b.id, 50));
        w.on_complete(&Completion::done(a.id, 50));
        assert_eq!(w.next_arrival(), Some(50));
        let first = w.take_request().unwrap();
        let second = w.take_request().unwrap();
        assert_eq!((first.session, second.session), (Some(1), Some(0)));
        assert_eq!((first.parent, second.parent), (Some(b.id), Some(a.id)));
    }

    /// Sessions take their tenant from `workload.clients.weights`: 4,000 one-turn open-loop sessions with
    /// weights 3 : 1 give client 0 a share of 0.75 (binomial standard error
    /// 0.007; the margin is 4 of them), with priorities per client.
    #[test]
    fn sessions_draw_their_client_by_weight() {
        let cfg = WorkloadConfig {
            count: 4000,
            sessions: Some(SessionsConfig {
                turns: LengthConfig {
                    kind: Some(crate::workload::lengths::LengthKind::Fixed),
                    value: 1,
                    ..LengthConfig::default()
                },
                ..SessionsConfig::default()
            }),
            clients: crate::scenario::ClientConfig {
                weights: vec![3.0, 1.0],
                priorities: vec![5, 7],
            },
            ..WorkloadConfig::default()
        };
        let mut w = crate::workload::build(&cfg).unwrap();
        let mut zero = 0;
        for _ in 0..4000 {
            w.next_arrival().unwrap();
            let r = w.take_request().unwrap();
            assert_eq!(r.priority, [5, 7][r.client as usize]);
            zero += (r.client == 0) as u32;
            w.on_complete(&Completion::done(r.id, r.arrival));
        }
        let share = zero as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.028, "client 0 share {share}");
    }
}
