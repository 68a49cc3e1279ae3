//! Prefill/decode hand-off between replicas (disaggregated serving and
//! semi-PD; see `cluster::disagg`), built from the replica's own
//! operations: a request is detached from the prefill replica's decoding
//! set with its KV (`ReplicaState::detach_decoding`) and attached to the
//! decode replica's (`ReplicaState::attach_decoding`); nothing here reaches
//! into the replica's parts.
//!
//! - A *prefill* replica runs its scheduler as usual; when an iteration ends,
//!   [`ReplicaState::take_handoffs`] removes every request whose prefill just
//!   completed (and so just joined the decoding set) and returns it as a
//!   [`Handoff`]: its first token is produced at the iteration's end and
//!   becomes visible by the same rule as on a co-located replica (with
//!   async output processing, when this replica's next iteration has been
//!   scheduled and launched, or at once when it idles: the engine tells the
//!   hand-off with [`Handoff::set_first_token`], or the decode replica with
//!   [`ReplicaState::set_handoff_first_token`] if it already took it); its
//!   own KV blocks are freed here (the transfer reads them from a staging
//!   copy); its prompt prefix stays in this replica's prefix cache.
//! - A *decode* replica receives it with [`ReplicaState::accept_handoff`]
//!   once the KV has arrived: the request joins the decoding set directly
//!   with its prompt's KV, as if this replica had prefilled it; its next
//!   inter-token gap counts from its first token, so the transfer shows in
//!   TPOT and the ITL histogram. (Its prefix is not published into this
//!   replica's prefix cache: the cache serves prefills, which happen on the
//!   prefill replicas.)

use super::state::{Detached, ReplicaState};
use crate::metrics::Metrics;
use crate::units::Nanos;

/// A prefilled request on its way to a decode replica.
#[derive(Debug, Clone)]
pub struct Handoff {
    request: Detached,
    /// When the first token was produced (the prefill iteration's end).
    produced: Nanos,
}

/// "Not yet visible" for a first token.
const PENDING: Nanos = Nanos::MAX;

impl Handoff {
    pub fn id(&self) -> u64 {
        self.request.meta.id
    }
    /// KV entries it carries (the prompt; the first token's KV is written by
    /// the first decode step).
    pub fn kv_tokens(&self) -> u32 {
        self.request.kv_tokens
    }
    /// When its first token became visible, `None` while still pending.
    pub fn first_token(&self) -> Option<Nanos> {
        (self.request.first_token != PENDING).then_some(self.request.first_token)
    }
    /// Makes a pending first token visible at `t` (and tells `metrics`).
    pub fn set_first_token(&mut self, t: Nanos, metrics: &mut Metrics) {
        if self.request.first_token == PENDING {
            self.request.first_token = t;
            metrics.record_first_token(self.request.meta.id, self.request.meta.client, t);
        }
    }
}

impl ReplicaState {
    /// Removes the requests whose prefill completed in the batch that just
    /// ended (at `now`) and appends them to `out`. Call right after the
    /// iteration's completion. Their prompt prefix stays in this replica's
    /// prefix cache (if on); their own blocks are freed.
    pub(crate) fn take_handoffs(&mut self, now: Nanos, out: &mut Vec<Handoff>) {
        for i in 0..self.batch_prefill_count() {
            let Some(slot) = self.just_prefilled(i, now) else {
                continue;
            };
            let mut request = self.detach_decoding(slot);
            // Pending (async output processing) unless already visible or
            // produced synchronously.
            if request.first_token == PENDING && !self.options().async_output {
                request.first_token = now;
            }
            out.push(Handoff {
                request,
                produced: now,
            });
        }
    }

    /// KV blocks a hand-off needs on arrival.
    pub(crate) fn handoff_blocks(&self, h: &Handoff) -> u64 {
        self.blocks_on_arrival(h.request.kv_tokens)
    }

    /// Whether this replica can take `h` into its decoding set now: not in
    /// the middle of an iteration, and enough free (or evictable cached)
    /// blocks above the watermark.
    pub(crate) fn can_accept_handoff(&self, h: &Handoff) -> bool {
        self.can_take(self.handoff_blocks(h))
    }

    /// Admits a hand-off straight into the decoding set at `now` (the caller
    /// checked [`ReplicaState::can_accept_handoff`]). Its last token is its
    /// first token, so the next inter-token gap spans the transfer.
    pub(crate) fn accept_handoff(&mut self, h: Handoff, now: Nanos) {
        debug_assert!(self.can_accept_handoff(&h));
        debug_assert!(h.request.meta.output_tokens > h.request.generated && h.produced <= now);
        self.attach_decoding(h.request, h.produced);
    }

    /// Makes the pending first token of hand-off `id`, admitted here at this
    /// instant, visible at `t` (semi-PD hand-offs land at once, before
    /// their prefill worker launches its next iteration). No-op if `id` is
    /// not pending here.
    pub(crate) fn set_handoff_first_token(&mut self, id: u64, t: Nanos, metrics: &mut Metrics) {
        if let Some(client) = self.set_first_token_of(id, t) {
            metrics.record_first_token(id, client, t);
        }
    }
}
