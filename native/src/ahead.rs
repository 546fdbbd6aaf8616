//! Look-ahead: the whole history is read before it is applied, so while one event is applied
//! the memory a later one will wait on can be asked for (a prefetch: it reads no value, never
//! faults, and changes nothing but the caches).
//!
//! On a long history an event's subject and its awaited duties lie anywhere in memory, and
//! what the event reads is a chain of reads each waiting on the one before: the subject's
//! place, its state, then its flags, claims and spans; the key's list of duties, each duty's
//! state and `Pend`, then its trigger event, its fixed fields and its obligation. Out of the
//! caches each read is a trip to memory; a processor overlaps independent reads, not a chain.
//! So the chains are started ahead, in two stages: `LEAD` events ahead, the event's subject
//! and list are looked up, and the subject's state and the first `WIDE` duties' state and
//! `Pend` fetched, their places noted; `LAG` events later (those in the caches by then) the
//! subject's vectors and the duties' trigger events, fields and obligations are fetched. A
//! noted duty may be met, cancelled or joined by others before its event comes: its place
//! stays valid (duties and subjects are only appended), and fetching memory no longer needed
//! costs a little bandwidth, never a decision.
//!
//! Measured with builds alternated in fresh processes: the huixiao pack's 10x history
//! (362,263 events) at 344k-359k events/s in `benchmarks/native.py --packs` against 323k
//! before, the ownership policy's (1,174,027 events) 5% faster, the small histories unchanged.
//! The README's "The Rust core" has the runs, and what was tried and not kept (the timers'
//! next duties: slower; the cancelling duties: no gain).

use crate::eval::World;
use crate::ir::Val;

const LEAD: usize = 16; // how many events ahead an event's subject and list are looked up
const LAG: usize = 8; // events between the two stages
const WIDE: usize = 4; // an event's duties fetched: most keys list one or two
const NONE: u32 = u32::MAX;

/// What the first stage noted, per event of the last `LAG`: its duties and its subject.
pub(crate) struct Ahead {
    duties: [[u32; WIDE]; LAG],
    subject: [u32; LAG],
}

impl Ahead {
    pub(crate) fn new() -> Ahead {
        Ahead {
            duties: [[NONE; WIDE]; LAG],
            subject: [NONE; LAG],
        }
    }

    /// Called before event `e` is applied: the second stage for what was noted `LAG` events
    /// ago, then the first for event `e + LEAD`.
    #[inline]
    pub(crate) fn fetch(&mut self, w: &World, e: usize) {
        let (duties, subject) = (&mut self.duties[e % LAG], &mut self.subject[e % LAG]);
        for &p in duties.iter() {
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
        if let Some(s) = w.subjects.get(*subject as usize) {
            prefetch(s.flags.as_ptr());
            prefetch(s.claims.as_ptr());
            prefetch(s.counters.as_ptr());
            if let Some(last) = s.spans.last() {
                prefetch(last); // `set_owner` reads the last span
            }
        }
        (*duties, *subject) = ([NONE; WIDE], NONE);
        let f = e + LEAD;
        if f >= w.real {
            return;
        }
        let (ty, sv) = (w.ev.ty(f), w.ev.subject(f));
        if let Some(&s) = match sv {
            Val::Str(sym) => w.subject_ix.get(&sym),
            _ => None,
        } {
            whole(&w.subjects[s]);
            *subject = u32::try_from(s).unwrap_or(NONE);
        }
        if !w.p.awaited.contains(&ty) {
            return;
        }
        let Some(list) = w.waiting.get(&(ty, sv)) else {
            return;
        };
        for (noted, &p) in duties.iter_mut().zip(list) {
            prefetch(&w.duty_state[p]);
            whole(&w.pend[p]);
            *noted = u32::try_from(p).unwrap_or(NONE);
        }
    }
}

/// Asks for every cache line of `value`.
#[inline]
fn whole<T>(value: &T) {
    let at = value as *const T as *const u8;
    for line in 0..std::mem::size_of::<T>().div_ceil(64) {
        prefetch(at.wrapping_add(64 * line));
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
