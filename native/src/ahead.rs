//! Look-ahead: the whole history is read before it is applied, so while one event is applied
//! the memory a later one will wait on can be asked for (a prefetch: it reads no value, never
//! faults, and changes nothing but the caches).
//!
//! On a long history an awaited event's duties lie anywhere in memory, and finding whether the
//! event meets one is a chain of reads each waiting on the one before: the key's list, each
//! duty's state and `Pend`, then its trigger event, its fixed fields and its obligation. Out of
//! the caches each read is a trip to memory; a processor overlaps independent reads, not a
//! chain. So the chain is started ahead, in two stages: `LEAD` events ahead, the event's list is
//! looked up and its first `WIDE` duties' state and `Pend` fetched, their places noted;
//! `LAG` events later (each `Pend` in the caches by then) their trigger events, fields and
//! obligations are fetched. A noted duty may be met, cancelled or joined by others before its
//! event comes: its place stays valid (duties are only appended), and fetching memory no
//! longer needed costs a little bandwidth, never a decision.
//!
//! Measured on the huixiao pack (`policy.evaluate`, five interleaved rounds, best of each):
//! the 10x history (362,263 events) 5% faster, the small one (36,527) unchanged; the README's
//! "The Rust core" has the runs.

use crate::eval::{Pend, World};

const LEAD: usize = 16; // how many events ahead an event's list is looked up
const LAG: usize = 8; // events between the two stages
const WIDE: usize = 4; // an event's duties fetched: most keys list one or two

/// The duties noted by the first stage, per event of the last `LAG`.
pub(crate) struct Ahead {
    noted: [[u32; WIDE]; LAG],
}

impl Ahead {
    pub(crate) fn new() -> Ahead {
        Ahead { noted: [[u32::MAX; WIDE]; LAG] }
    }

    /// Called before event `e` is applied: the second stage for the duties noted `LAG` events
    /// ago, then the first for event `e + LEAD`.
    #[inline]
    pub(crate) fn fetch(&mut self, w: &World, e: usize) {
        let slot = &mut self.noted[e % LAG];
        for &p in slot.iter() {
            let Some(pe) = w.pend.get(p as usize) else {
                continue; // none noted
            };
            w.ev.prefetch(pe.trigger);
            if let Some(f) = w.duty_fields.get(pe.matches.range().start) {
                prefetch(f);
            }
            if let Some(o) = pe.obligation.and_then(|o| w.obligations.get(o)) {
                prefetch(o);
            }
        }
        *slot = [u32::MAX; WIDE];
        let f = e + LEAD;
        if f >= w.real {
            return;
        }
        let key = (w.ev.ty(f), w.ev.subject(f));
        if !w.p.awaited.contains(&key.0) {
            return;
        }
        let Some(list) = w.waiting.get(&key) else {
            return;
        };
        for (noted, &p) in slot.iter_mut().zip(list) {
            prefetch(&w.duty_state[p]);
            let at = &w.pend[p] as *const Pend as *const u8;
            for line in 0..std::mem::size_of::<Pend>().div_ceil(64) {
                prefetch(at.wrapping_add(64 * line));
            }
            *noted = u32::try_from(p).unwrap_or(u32::MAX);
        }
    }
}

/// Asks for the cache line holding `at` (into all levels); a no-op off x86-64.
#[inline]
pub(crate) fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64's baseline, and a prefetch reads nothing: any address,
    // mapped or not, is allowed.
    unsafe {
        std::arch::x86_64::_mm_prefetch(at as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
