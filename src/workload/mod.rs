//! Workloads: where requests come from. Synthetic arrival processes
//! (`arrivals`) and length distributions (`lengths`), and readers for
//! public traces (`trace`), behind one [`RequestSource`] interface that
//! yields requests lazily in arrival order.
//!
//! Every random purpose has its own stream derived from `workload.seed`
//! (arrival gaps, prompt lengths, output lengths, trace-row sampling), so
//! changing the length distribution leaves arrival times unchanged.

pub(crate) mod arrivals;
pub(crate) mod concurrency;
pub mod feedback;
pub(crate) mod lengths;
pub(crate) mod sessions;
pub(crate) mod trace;

use crate::error::{Error, Result};
use crate::scenario::kinds::kinds;
use crate::scenario::{LengthConfig, WorkloadConfig};
use crate::units::{Nanos, secs_to_nanos};
use arrivals::{ArrivalKind, Arrivals};
use lengths::{LengthKind, Lengths};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Gamma, Zipf};
use std::sync::Arc;
use trace::Trace;

/// One request as the workload defines it, before any simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// 0, 1, 2, ... in arrival order.
    pub id: u64,
    /// Arrival time since the start of the run.
    pub arrival: Nanos,
    /// Prompt (context) tokens, ≥ 1.
    pub prompt_tokens: u32,
    /// Tokens to generate, ≥ 1 (the first comes from the prefill).
    pub output_tokens: u32,
    /// Client / tenant id (0 when the workload has none).
    pub client: u32,
    /// The conversation this request is a turn of (multi-turn sessions).
    pub session: Option<u64>,
    /// This is its session's last turn: no later request has the same
    /// `session` (routers that remember sessions forget it once routed).
    pub ends_session: bool,
    /// The program (agent run) this request belongs to.
    pub program: Option<u64>,
    /// The request whose answer this one follows from (the previous turn of
    /// a session, the call that spawned it in a program).
    pub parent: Option<u64>,
    /// Priority class: 0 is the most urgent (used by `scheduler.priority`).
    pub priority: u32,
    /// Which leading tokens of the prompt other prompts share (prefix caching).
    pub prefix: Prefix,
}

impl RequestSpec {
    /// A request with no client, priority or shared prefix.
    pub fn new(id: u64, arrival: Nanos, prompt_tokens: u32, output_tokens: u32) -> Self {
        RequestSpec {
            id,
            arrival,
            prompt_tokens,
            output_tokens,
            client: 0,
            session: None,
            ends_session: false,
            program: None,
            parent: None,
            priority: 0,
            prefix: Prefix::None,
        }
    }
}

/// The identity of a prompt's leading tokens, cut into *units* (prefix-cache
/// granularity): two prompts with the same unit hashes up to unit `j` have
/// identical tokens up to the end of unit `j`. Only whole units are shared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Prefix {
    /// Nothing shared.
    #[default]
    None,
    /// The first `tokens` tokens equal those of every other prompt of
    /// `group` that is at least as long (a system prompt, or the history of
    /// a multi-turn session). Units are KV blocks.
    Group { group: u64, tokens: u32 },
    /// Mooncake-style block ids of `unit_tokens`-token units, each id
    /// naming its unit *and* everything before it.
    Blocks { ids: Arc<[u64]>, unit_tokens: u32 },
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Prefix {
    /// Tokens per unit (`block_size` for groups).
    pub fn unit_tokens(&self, block_size: u32) -> u32 {
        match self {
            Prefix::Blocks { unit_tokens, .. } => *unit_tokens,
            _ => block_size,
        }
    }

    /// Whole shareable units of a prompt of `prompt_tokens` tokens.
    pub fn units(&self, prompt_tokens: u32, block_size: u32) -> u32 {
        match self {
            Prefix::None => 0,
            Prefix::Group { tokens, .. } => (*tokens).min(prompt_tokens) / block_size,
            Prefix::Blocks { ids, unit_tokens } => (ids.len() as u32).min(prompt_tokens / unit_tokens),
        }
    }

    /// Whole shareable units of a sequence whose KV holds `kv_tokens`
    /// tokens, the first `prompt_tokens` of them its prompt: a group shares
    /// whatever of its declared tokens were computed (a session turn
    /// declares its answer too, which the next turn's prompt repeats);
    /// trace block ids name prompt units only.
    pub fn sequence_units(&self, prompt_tokens: u32, kv_tokens: u32, block_size: u32) -> u32 {
        match self {
            Prefix::Group { tokens, .. } => (*tokens).min(kv_tokens.max(prompt_tokens)) / block_size,
            _ => self.units(prompt_tokens, block_size),
        }
    }

    /// Hash of unit `j` (chained: it identifies units `0..=j`).
    pub fn unit_hash(&self, j: u32) -> u64 {
        match self {
            Prefix::None => 0,
            Prefix::Group { group, .. } => mix64(mix64(*group) ^ j as u64),
            Prefix::Blocks { ids, .. } => mix64(ids[j as usize] ^ 0x5EED_0000_0000_0000),
        }
    }
}

/// Yields requests in non-decreasing arrival order, lazily.
/// The longest workload span, seconds: 10^10 s ≈ 317 years, half of what
/// the u64-nanosecond clock holds (584 years), so requests can still be
/// served after the last arrival.
pub const MAX_SPAN_S: f64 = 1e10;

pub trait RequestSource {
    fn next_request(&mut self) -> Option<RequestSpec>;
    /// Warnings about how the stream was built (e.g. a trace cut short by
    /// `workload.count`); the run reports them on stderr and in the summary.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

fn key_err(key: &str, msg: impl Into<String>) -> Error {
    Error::config(format!("key `workload.{key}`"), msg)
}

fn length_dist(key: &str, c: &LengthConfig, has_trace: bool) -> Result<Lengths> {
    let bounds = || -> Result<()> {
        if c.max < 1 || c.min > c.max {
            return Err(key_err(
                key,
                format!(
                    "needs 1 ≤ max and min ≤ max, found min {} and max {}",
                    c.min, c.max
                ),
            ));
        }
        Ok(())
    };
    Ok(match c.kind_or_default(has_trace) {
        LengthKind::Fixed => {
            if c.value == 0 {
                return Err(key_err(
                    &format!("{key}.value"),
                    "must be at least 1 token, found 0",
                ));
            }
            Lengths::Fixed(c.value)
        }
        LengthKind::Uniform => {
            bounds()?;
            Lengths::Uniform {
                min: c.min.max(1),
                max: c.max,
            }
        }
        LengthKind::LogNormal => {
            bounds()?;
            if !(c.median.is_finite() && c.median > 0.0) {
                return Err(key_err(
                    &format!("{key}.median"),
                    format!("must be > 0, found {}", c.median),
                ));
            }
            if !(c.sigma.is_finite() && c.sigma >= 0.0) {
                return Err(key_err(
                    &format!("{key}.sigma"),
                    format!("must be ≥ 0, found {}", c.sigma),
                ));
            }
            Lengths::LogNormal {
                median: c.median,
                sigma: c.sigma,
                min: c.min.max(1),
                max: c.max,
            }
        }
        LengthKind::Zipf => {
            bounds()?;
            if !(c.exponent.is_finite() && c.exponent > 0.0) {
                return Err(key_err(
                    &format!("{key}.exponent"),
                    format!("must be > 0, found {}", c.exponent),
                ));
            }
            let min = c.min.max(1);
            let n = (c.max - min + 1) as f64;
            let dist = Zipf::new(n, c.exponent)
                .map_err(|e| key_err(key, format!("invalid zipf parameters: {e}")))?;
            Lengths::Zipf { min, dist }
        }
        LengthKind::Trace => {
            if !has_trace {
                return Err(key_err(
                    &format!("{key}.kind"),
                    "`trace` lengths need `workload.trace` to be set",
                ));
            }
            Lengths::Trace
        }
    })
}

/// A workload configuration checked and resolved (trace read).
struct Resolved {
    prefix: Sharing,
    /// Cumulative client weights (empty: one client) and per-client priorities.
    client_cdf: Vec<f64>,
    priorities: Vec<u32>,
    trace: Option<Trace>,
    arrivals: Option<Arrivals>,
    prompt: Lengths,
    output: Lengths,
    limit: u64,
    duration: Option<Nanos>,
    /// Warnings for the summary (see `RequestSource::notes`).
    notes: Vec<String>,
}

fn resolve(cfg: &WorkloadConfig) -> Result<Resolved> {
    let trace = match &cfg.trace {
        Some(p) => Some(trace::read(p, cfg.trace_format)?),
        None => None,
    };
    let has_trace = trace.is_some();
    let a = &cfg.arrivals;
    let kind = a.kind_or_default(has_trace);
    if !(cfg.rate_scale.is_finite() && cfg.rate_scale > 0.0) {
        return Err(key_err(
            "rate_scale",
            format!("must be > 0, found {}", cfg.rate_scale),
        ));
    }
    if !(cfg.duration.is_finite() && cfg.duration >= 0.0) {
        return Err(key_err(
            "duration",
            format!("must be ≥ 0 seconds, found {}", cfg.duration),
        ));
    }
    // A synthetic process's rate, checked where one is used.
    let rate = || {
        if a.rate.is_finite() && a.rate > 0.0 {
            Ok(a.rate)
        } else {
            Err(key_err(
                "arrivals.rate",
                format!("must be > 0 requests/s, found {}", a.rate),
            ))
        }
    };
    let arrivals = match kind {
        ArrivalKind::Trace => match &trace {
            None => {
                return Err(key_err(
                    "arrivals.kind",
                    "`trace` arrivals need `workload.trace` to be set",
                ));
            }
            Some(t) if !t.has_timestamps() => {
                return Err(Error::Trace {
                    path: t.path.clone(),
                    line: Some(1),
                    message: "this trace has no timestamps (no arrived_at column); use synthetic \
                              arrivals (workload.arrivals.kind = \"poisson\") with its lengths"
                        .into(),
                });
            }
            Some(_) => None,
        },
        ArrivalKind::Poisson => Some(Arrivals::Poisson { rate: rate()? }),
        ArrivalKind::Constant => Some(Arrivals::Constant { gap: 1.0 / rate()? }),
        ArrivalKind::Gamma => {
            let rate = rate()?;
            if !(a.cv.is_finite() && a.cv > 0.0) {
                return Err(key_err("arrivals.cv", format!("must be > 0, found {}", a.cv)));
            }
            let shape = 1.0 / (a.cv * a.cv);
            let g = Gamma::new(shape, 1.0 / (rate * shape))
                .map_err(|e| key_err("arrivals", format!("invalid gamma parameters: {e}")))?;
            Some(Arrivals::Gamma(g))
        }
    };
    let prompt = length_dist("prompt", &cfg.prompt, has_trace)?;
    let output = length_dist("output", &cfg.output, has_trace)?;
    let rows = trace.as_ref().map_or(0, |t| t.rows.len() as u64);
    let limit = match (cfg.count, arrivals.is_none()) {
        (0, true) => rows,
        (c, true) => c.min(rows),
        (0, false) if cfg.duration > 0.0 => u64::MAX,
        (0, false) if has_trace => rows,
        (0, false) => {
            return Err(key_err(
                "count",
                "is 0 with synthetic arrivals and no duration: set workload.count or workload.duration",
            ));
        }
        (c, false) => c,
    };
    let duration = (cfg.duration > 0.0).then(|| secs_to_nanos(cfg.duration));
    // The clock is u64 nanoseconds (584 years): a workload must fit well
    // inside it, or times saturate and every figure is meaningless.
    // Synthetic arrivals stop at the count or the duration, whichever
    // comes first (the count's span at the mean rate).
    let by_count = if limit < u64::MAX {
        limit as f64 / a.rate
    } else {
        f64::INFINITY
    };
    let by_duration = if duration.is_some() {
        cfg.duration
    } else {
        f64::INFINITY
    };
    let synthetic_span = by_count.min(by_duration);
    let span_s = match (&arrivals, &trace) {
        // Neither bounds them here when fixed-concurrency clients pass an
        // unbounded count and apply the duration themselves.
        (Some(_), _) if synthetic_span.is_finite() => synthetic_span,
        (None, Some(t)) => {
            let times = || t.rows.iter().filter_map(|r| r.time_s);
            let (lo, hi) = (times().fold(f64::INFINITY, f64::min), times().fold(0.0, f64::max));
            (hi - lo).max(0.0) / cfg.rate_scale
        }
        _ => 0.0,
    };
    if span_s > MAX_SPAN_S {
        let key = match arrivals {
            Some(_) if by_duration <= by_count => "duration",
            Some(_) => "arrivals.rate",
            None => "rate_scale",
        };
        return Err(key_err(
            key,
            format!(
                "the workload would span {span_s:.3e} s, more than the {MAX_SPAN_S:.0e} s (≈ 317 years) \
                 fleetsim's clock can hold with room to serve them; raise the rate, lower the count or \
                 the duration"
            ),
        ));
    }
    let mut notes = Vec::new();
    if arrivals.is_none() && cfg.count > 0 && cfg.count < rows {
        notes.push(format!(
            "workload.count = {} replays the first {} of the trace's {} requests; \
             set workload.count = 0 to replay the whole trace",
            cfg.count, cfg.count, rows
        ));
    }
    let prefix = sharing(cfg, trace.as_ref())?;
    let (client_cdf, priorities) = clients(cfg)?;
    Ok(Resolved {
        prefix,
        client_cdf,
        priorities,
        trace,
        arrivals,
        prompt,
        output,
        limit,
        duration,
        notes,
    })
}

kinds! {
    /// Which prompts share leading tokens (`workload.prefix.kind`).
    pub enum PrefixKind {
        /// The trace's `hash_ids` when it has them, else none.
        Auto = "auto",
        /// No prompt shares a prefix.
        None = "none",
        /// Every prompt starts with a `tokens`-token system prompt; a fraction
        /// `share` of requests use one of `prompts` shared ones, the rest a
        /// prompt of their own.
        System = "system",
        /// Open-loop multi-turn conversations of `turns` turns: turn k+1's
        /// prompt is turn k's prompt + its output + new user tokens drawn
        /// from `workload.prompt`; `sessions` conversations run interleaved.
        Sessions = "sessions",
        /// Mooncake `hash_ids` blocks of `unit_tokens` tokens.
        Trace = "trace",
    }
}

/// How prompts share prefixes, resolved (see `PrefixConfig`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sharing {
    None,
    System { tokens: u32, share: f64, prompts: u32 },
    Sessions { turns: u32, sessions: u32 },
    Trace { unit_tokens: u32 },
}

fn sharing(cfg: &WorkloadConfig, trace: Option<&Trace>) -> Result<Sharing> {
    let p = &cfg.prefix;
    let has_ids = trace.is_some_and(|t| t.has_prefix_ids());
    Ok(match p.kind {
        PrefixKind::None => Sharing::None,
        PrefixKind::Auto if !has_ids => Sharing::None,
        PrefixKind::Auto | PrefixKind::Trace => {
            if !has_ids {
                return Err(key_err(
                    "prefix.kind",
                    "`trace` prefixes need a trace with `hash_ids` (Mooncake JSONL)",
                ));
            }
            if p.unit_tokens == 0 {
                return Err(key_err("prefix.unit_tokens", "must be at least 1 token, found 0"));
            }
            Sharing::Trace {
                unit_tokens: p.unit_tokens,
            }
        }
        PrefixKind::System => {
            if p.tokens == 0 {
                return Err(key_err("prefix.tokens", "must be at least 1 token, found 0"));
            }
            if !(0.0..=1.0).contains(&p.share) {
                return Err(key_err(
                    "prefix.share",
                    format!("must be in [0, 1], found {}", p.share),
                ));
            }
            if p.prompts == 0 {
                return Err(key_err("prefix.prompts", "must be at least 1, found 0"));
            }
            Sharing::System {
                tokens: p.tokens,
                share: p.share,
                prompts: p.prompts,
            }
        }
        PrefixKind::Sessions => {
            if p.turns == 0 {
                return Err(key_err("prefix.turns", "must be at least 1, found 0"));
            }
            if p.sessions == 0 {
                return Err(key_err("prefix.sessions", "must be at least 1, found 0"));
            }
            Sharing::Sessions {
                turns: p.turns,
                sessions: p.sessions,
            }
        }
    })
}

fn clients(cfg: &WorkloadConfig) -> Result<(Vec<f64>, Vec<u32>)> {
    let c = &cfg.clients;
    if c.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
        || (!c.weights.is_empty() && c.weights.iter().sum::<f64>() <= 0.0)
    {
        return Err(key_err(
            "clients.weights",
            format!("must be ≥ 0 with a positive sum, found {:?}", c.weights),
        ));
    }
    if c.priorities.len() > c.weights.len().max(1) {
        return Err(key_err(
            "clients.priorities",
            format!(
                "has {} entries for {} client(s) (one per entry of clients.weights)",
                c.priorities.len(),
                c.weights.len().max(1)
            ),
        ));
    }
    let total: f64 = c.weights.iter().sum();
    let mut acc = 0.0;
    let cdf = c
        .weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    Ok((cdf, c.priorities.clone()))
}

/// The random stream of purpose `k` of a run seeded with `seed` (each
/// purpose its own stream, so changing one distribution leaves the others' draws alone).
fn stream(seed: u64, k: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A client drawn by weight (`cdf`: cumulative weights; empty or one: client 0).
fn pick_client(cdf: &[f64], rng: &mut ChaCha8Rng) -> u32 {
    match cdf.len() {
        0 | 1 => 0,
        n => {
            let u: f64 = rng.random();
            cdf.iter().position(|&c| u < c).unwrap_or(n - 1) as u32
        }
    }
}

/// An output length under `workload.max_tokens` (0 = no cap), at least 1.
fn cap_output(output: u32, max_tokens: u32) -> u32 {
    if max_tokens > 0 {
        output.min(max_tokens)
    } else {
        output
    }
    .max(1)
}

/// Checks a workload configuration (reading its trace) without generating requests.
#[doc(hidden)]
pub fn validate(cfg: &WorkloadConfig) -> Result<()> {
    build(cfg).map(|_| ())
}

/// Builds the workload `[workload]` describes: open-loop arrivals or a
/// trace, or closed-loop clients (`workload.concurrency`).
pub fn build(cfg: &WorkloadConfig) -> Result<Box<dyn feedback::Workload>> {
    if let Some(sc) = &cfg.sessions {
        if cfg.prefix.kind == PrefixKind::Sessions {
            return Err(key_err(
                "prefix.kind",
                "is \"sessions\" (open-loop turns) while [workload.sessions] asks for closed-loop ones; keep one",
            ));
        }
        return Ok(Box::new(sessions::ClosedSessions::new(cfg, sc, resolve(cfg)?)?));
    }
    if cfg.concurrency == 0 {
        return Ok(Box::new(feedback::OpenLoop::new(build_source(cfg)?)));
    }
    // The clients apply the duration to send times; the source only
    // supplies lengths (and pacing times when an arrival kind is set).
    let mut inner = cfg.clone();
    inner.duration = 0.0;
    if cfg.count == 0 && cfg.duration > 0.0 {
        inner.count = u64::MAX;
    }
    let source = build_source(&inner).map_err(|e| match (cfg.count, cfg.duration) {
        (0, d) if d <= 0.0 => key_err(
            "count",
            "is 0 with fixed-concurrency clients and no duration: set workload.count or workload.duration",
        ),
        _ => e,
    })?;
    let duration = (cfg.duration > 0.0).then(|| secs_to_nanos(cfg.duration));
    Ok(Box::new(concurrency::FixedConcurrency::new(
        source,
        cfg.concurrency,
        cfg.arrivals.kind.is_some(),
        duration,
    )))
}

/// Builds the open-loop request stream of `[workload]` (ignoring
/// `workload.concurrency`).
pub fn build_source(cfg: &WorkloadConfig) -> Result<Box<dyn RequestSource>> {
    let r = resolve(cfg)?;
    let stream = |k| stream(cfg.seed, k);
    let t0 = r
        .trace
        .as_ref()
        .and_then(|t| t.rows.first())
        .and_then(|row| row.time_s)
        .unwrap_or(0.0);
    Ok(Box::new(Source {
        r,
        rate_scale: cfg.rate_scale,
        max_tokens: cfg.max_tokens,
        t0,
        next: 0,
        clock: 0.0,
        arrival_rng: stream(1),
        prompt_rng: stream(2),
        output_rng: stream(3),
        row_rng: stream(4),
        client_rng: stream(5),
        prefix_rng: stream(6),
        sessions: Vec::new(),
        next_session: 0,
    }))
}

/// A multi-turn conversation in progress: its id, turns so far, the
/// tokens of its last turn (prompt + output), which the next turn's prompt
/// extends, and that turn's request id.
#[derive(Debug, Clone, Copy, Default)]
struct Conversation {
    id: u64,
    turn: u32,
    tokens: u32,
    last: Option<u64>,
}

struct Source {
    r: Resolved,
    rate_scale: f64,
    max_tokens: u32,
    t0: f64,
    next: u64,
    clock: f64,
    arrival_rng: ChaCha8Rng,
    prompt_rng: ChaCha8Rng,
    output_rng: ChaCha8Rng,
    row_rng: ChaCha8Rng,
    client_rng: ChaCha8Rng,
    prefix_rng: ChaCha8Rng,
    /// Sessions: the conversation in progress in each slot, and the next conversation id.
    sessions: Vec<Conversation>,
    next_session: u64,
}

impl RequestSource for Source {
    fn notes(&self) -> Vec<String> {
        self.r.notes.clone()
    }

    fn next_request(&mut self) -> Option<RequestSpec> {
        if self.next >= self.r.limit {
            return None;
        }
        let i = self.next;
        let arrival_s = match &self.r.arrivals {
            Some(a) => {
                if i > 0 {
                    self.clock += a.gap(&mut self.arrival_rng);
                }
                self.clock
            }
            None => {
                let row = self.r.trace.as_ref()?.rows.get(i as usize)?;
                (row.time_s.unwrap_or(0.0) - self.t0).max(0.0) / self.rate_scale
            }
        };
        let arrival = secs_to_nanos(arrival_s);
        if self.r.duration.is_some_and(|d| arrival > d) {
            return None;
        }
        // Trace lengths: exact replay with trace arrivals, else a sampled row
        // (one row for both prompt and output, keeping their correlation).
        let row = match (&self.r.trace, &self.r.prompt, &self.r.output) {
            (Some(t), Lengths::Trace, _) | (Some(t), _, Lengths::Trace) => {
                let idx = if self.r.arrivals.is_none() {
                    i as usize
                } else {
                    self.row_rng.random_range(0..t.rows.len())
                };
                Some(&t.rows[idx])
            }
            _ => None,
        };
        let prompt = match (&self.r.prompt, row) {
            (Lengths::Trace, Some(row)) => row.prompt_tokens,
            (d, _) => d.sample(&mut self.prompt_rng),
        };
        let output = match (&self.r.output, row) {
            (Lengths::Trace, Some(row)) => row.output_tokens,
            (d, _) => d.sample(&mut self.output_rng),
        };
        let output = cap_output(output, self.max_tokens);
        let mut prompt = prompt;
        let (mut session, mut parent, mut ends_session) = (None, None, false);
        let prefix = match self.r.prefix {
            Sharing::None => Prefix::None,
            Sharing::Trace { unit_tokens } => match row.and_then(|r| r.hash_ids.clone()) {
                Some(ids) => Prefix::Blocks { ids, unit_tokens },
                None => Prefix::None,
            },
            Sharing::System {
                tokens,
                share,
                prompts,
            } => {
                // The system prompt comes before the sampled user prompt.
                prompt = prompt.saturating_add(tokens);
                let shared = self.prefix_rng.random::<f64>() < share;
                let pick = self.prefix_rng.random_range(0..prompts) as u64;
                let group = if shared { pick } else { mix64(u64::MAX - i) };
                Prefix::Group { group, tokens }
            }
            Sharing::Sessions { turns, sessions } => {
                // Each request continues one of the conversations in
                // progress, picked at random (so turn gaps vary, with mean
                // `sessions` arrivals); a slot starts a new conversation
                // after `turns` turns.
                let slot = self.prefix_rng.random_range(0..sessions) as usize;
                if self.sessions.len() <= slot {
                    self.sessions.resize(slot + 1, Conversation::default());
                }
                let next_id = self.next_session;
                let c = &mut self.sessions[slot];
                if c.turn == 0 || c.turn >= turns {
                    *c = Conversation {
                        id: next_id,
                        turn: 0,
                        tokens: 0,
                        last: None,
                    };
                    self.next_session += 1;
                }
                prompt = prompt.saturating_add(c.tokens);
                c.tokens = prompt.saturating_add(output);
                c.turn += 1;
                (session, parent) = (Some(c.id), c.last.replace(i));
                ends_session = c.turn >= turns;
                Prefix::Group {
                    group: mix64(c.id ^ 0xC0FF_EE00),
                    tokens: prompt,
                }
            }
        };
        let client = pick_client(&self.r.client_cdf, &mut self.client_rng);
        self.next += 1;
        Some(RequestSpec {
            id: i,
            arrival,
            prompt_tokens: prompt,
            output_tokens: output,
            client,
            session,
            ends_session,
            program: None,
            parent,
            priority: self.r.priorities.get(client as usize).copied().unwrap_or(0),
            prefix,
        })
    }
}

#[cfg(test)]
mod guard_tests;
#[cfg(test)]
pub(crate) mod tests;
