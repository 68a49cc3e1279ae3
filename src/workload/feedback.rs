//! The workload's side of the engine ↔ workload conversation.
//!
//! A [`Workload`] announces its next arrival, hands the request over when
//! the engine reaches that time, and, if it [listens](Workload::listens),
//! is told of every request's end ([`Completion`]): its first-token and
//! finish times; if it [listens to first tokens](Workload::listens_first_tokens),
//! it also hears when each request's first token appears ([`FirstToken`]). Closed-loop workloads (fixed-concurrency clients,
//! multi-turn sessions whose next turn waits for the answer) schedule their
//! next requests from these; open-loop sources ([`RequestSource`], wrapped
//! in [`OpenLoop`]) ignore them.
//!
//! Invariants the engine relies on:
//! - [`Workload::next_arrival`] never goes back in time: it is never earlier
//!   than the engine's clock when it is asked (a completion's `finish` is
//!   never earlier than the clock either, so "finish + think time" is safe);
//! - requests are taken in non-decreasing arrival time with ids 0, 1, 2, …
//!   in that order;
//! - first tokens, then completions, are delivered in the order the engine
//!   recorded them (one
//!   instant's: iteration ends by replica index, then rejections at
//!   arrival), after that instant's batches were formed: a request sent at
//!   the instant its predecessor finished waits for the next batch, as a
//!   client's next HTTP request does.

use super::{RequestSource, RequestSpec};
use crate::units::Nanos;

/// How a request the workload sent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub id: u64,
    pub client: u32,
    pub session: Option<u64>,
    pub program: Option<u64>,
    /// When its first token was visible (equals `finish` when rejected).
    pub first_token: Nanos,
    /// When its last token was visible, or when it was rejected.
    pub finish: Nanos,
    /// Tokens generated (0 when rejected).
    pub output_tokens: u32,
    /// False when the request was rejected.
    pub finished: bool,
}

#[cfg(test)]
impl Completion {
    /// A one-token request `id` of no session that ended at `finish` (for tests).
    pub(crate) fn done(id: u64, finish: Nanos) -> Completion {
        Completion {
            id,
            client: 0,
            session: None,
            program: None,
            first_token: finish,
            finish,
            output_tokens: 1,
            finished: true,
        }
    }
}

/// A request's first token became visible (streaming clients see it then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstToken {
    pub id: u64,
    pub client: u32,
    /// When it was visible (may lie after the instant it is delivered at:
    /// with async output processing, tokens are visible once the next
    /// iteration has been launched).
    pub at: Nanos,
}

/// A source of requests that may listen to how they end.
pub trait Workload {
    /// Arrival time of the next request, if one is pending. Closed-loop
    /// workloads may have none pending now and more after a completion.
    fn next_arrival(&mut self) -> Option<Nanos>;
    /// Takes the request [`next_arrival`](Workload::next_arrival) announced.
    fn take_request(&mut self) -> Option<RequestSpec>;
    /// A request it sent finished or was rejected.
    fn on_complete(&mut self, _c: &Completion) {}
    /// Whether the engine should deliver completions (it collects them only then).
    fn listens(&self) -> bool {
        false
    }
    /// The first token of a request it sent became visible. Delivered
    /// before that instant's completions, so a request's first token
    /// always reaches the workload before its end.
    fn on_first_token(&mut self, _t: &FirstToken) {}
    /// Whether the engine should deliver first tokens (collected only then).
    fn listens_first_tokens(&self) -> bool {
        false
    }
    /// A session that the completion just delivered ended before its
    /// planned last turn (`RequestSpec::ends_session` covers the planned
    /// end): the engine asks after each completion and tells the router
    /// (`Router::session_over`), which may forget the session.
    fn take_ended_session(&mut self) -> Option<u64> {
        None
    }
    /// Warnings about how the workload was built, for the summary.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// An open-loop [`RequestSource`] as a [`Workload`]: one request of look-ahead.
pub struct OpenLoop {
    source: Box<dyn RequestSource>,
    next: Option<RequestSpec>,
    pulled: bool,
}

impl OpenLoop {
    pub fn new(source: Box<dyn RequestSource>) -> Self {
        OpenLoop {
            source,
            next: None,
            pulled: false,
        }
    }

    fn fill(&mut self) {
        if !self.pulled {
            self.next = self.source.next_request();
            self.pulled = true;
        }
    }
}

impl Workload for OpenLoop {
    fn next_arrival(&mut self) -> Option<Nanos> {
        self.fill();
        self.next.as_ref().map(|r| r.arrival)
    }

    fn take_request(&mut self) -> Option<RequestSpec> {
        self.fill();
        self.pulled = false;
        self.next.take()
    }

    fn notes(&self) -> Vec<String> {
        self.source.notes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two(u64);
    impl RequestSource for Two {
        fn next_request(&mut self) -> Option<RequestSpec> {
            (self.0 < 2).then(|| {
                self.0 += 1;
                RequestSpec::new(self.0 - 1, self.0 * 10, 5, 1)
            })
        }
    }

    /// A workload that states only what it must (as a user's may) asks the
    /// engine for nothing: no completions, no first tokens, no ended
    /// sessions, no notes — so the engine collects none for it.
    #[test]
    fn a_minimal_workload_listens_to_nothing_and_notes_nothing() {
        struct Bare;
        impl Workload for Bare {
            fn next_arrival(&mut self) -> Option<Nanos> {
                None
            }
            fn take_request(&mut self) -> Option<RequestSpec> {
                None
            }
        }
        let mut w = Bare;
        assert!(!w.listens() && !w.listens_first_tokens());
        assert_eq!(w.take_ended_session(), None);
        assert!(w.notes().is_empty());
    }

    /// An open loop passes on its source's warnings.
    #[test]
    fn open_loop_passes_on_its_sources_notes() {
        let w = OpenLoop::new(Box::new(crate::workload::tests::Noted));
        assert_eq!(w.notes(), ["cut short"]);
    }

    #[test]
    fn open_loop_announces_then_hands_over_each_request_once() {
        let mut w = OpenLoop::new(Box::new(Two(0)));
        assert!(!w.listens());
        assert_eq!(w.next_arrival(), Some(10));
        assert_eq!(w.next_arrival(), Some(10), "asking again pulls nothing");
        assert_eq!(w.take_request().map(|r| r.id), Some(0));
        assert_eq!(w.next_arrival(), Some(20));
        assert_eq!(w.take_request().map(|r| r.id), Some(1));
        assert_eq!(w.next_arrival(), None);
        assert_eq!(w.take_request(), None);
    }
}
