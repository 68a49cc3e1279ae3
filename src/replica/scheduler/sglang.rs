//! SGLang's waiting-queue order (Zheng et al. 2024, "SGLang: Efficient
//! Execution of Structured Language Model Programs", §3 RadixAttention
//! scheduling; `python/sglang/srt/managers/schedule_policy.py`): the request
//! with the longest prefix already in the radix cache goes first, which
//! raises the hit rate because requests sharing a prefix run while it is
//! still cached. SGLang computes prefix matches only while at most 128
//! requests wait (beyond that it uses FCFS, as matching every request each
//! step costs too much); the window here is `scheduler.window`.

use super::{Policy, promote_min_by};
use crate::replica::state::ReplicaState;
use std::cmp::Reverse;

/// Moves the waiting request with the most cached prompt tokens (ties: the
/// earliest) to the head, when the queue is within the window.
pub fn longest_prefix_first(st: &mut ReplicaState, p: &Policy) {
    if st.waiting().len() > p.window {
        return;
    }
    promote_min_by(st, p.window, |st, slot| Reverse(st.cached_prefix_tokens(slot)));
}
