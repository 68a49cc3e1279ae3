//! Cache prefetch hints for the event loop and the replica state it visits.
//!
//! At fleet scale a replica's state has left the cache by the time its
//! next iteration ends (a thousand other replicas ran in between), so the
//! first touches of its state wait on memory, one after another. The loop
//! knows which replica comes next before it finishes the current event: it
//! asks the CPU to start loading that replica's state meanwhile, and, once
//! it gets to it, to load the fronts of all its buffers at once rather
//! than one dependent miss at a time. A prefetch is only a hint: it reads
//! nothing the program sees and cannot fault, so it cannot change a result
//! — only when the data arrives.

/// Starts loading the cache lines of `*value` (a hint; a no-op off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    prefetch_bytes(value as *const T as *const u8, std::mem::size_of::<T>());
}

/// Starts loading the cache line holding `items[i]`, if there is one.
#[inline(always)]
pub(crate) fn prefetch_at<T>(items: &[T], i: usize) {
    if let Some(x) = items.get(i) {
        prefetch_bytes(x as *const T as *const u8, 1);
    }
}

#[inline(always)]
fn prefetch_bytes(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let mut offset = 0;
        while offset < len {
            // SAFETY: SSE is part of the x86-64 baseline, and a prefetch
            // never dereferences its address nor faults on one; callers
            // pass the address and size of a live borrow.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset) as *const i8) };
            offset += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_past_the_end_or_on_empty_buffers_do_nothing() {
        let v = vec![1u64, 2, 3];
        prefetch_at(&v, 0);
        prefetch_at(&v, 3);
        prefetch_at::<u64>(&[], 0);
        // A value larger than a cache line is hinted line by line.
        let big = [0u8; 1000];
        prefetch(&big);
        prefetch(&());
        assert_eq!(v, [1, 2, 3]);
    }
}
