//! A saved evaluation: the World stopped before `finish` (every event applied, the deadlines
//! up to the horizon not yet fired, nothing measured there), as bytes, and continued from them
//! with the events that came after (`Core.run_saved`, `Core.resume`). A resumed World applies
//! the new events and finishes at the new horizon exactly as one evaluation of the whole
//! history would: the state is everything the World holds but the program it runs.
//!
//! The bytes: `MAGIC`, then (postcard) the state format `STATE_VERSION`, the `IR_VERSION`
//! and a fingerprint of the IR text the core was built from, then the state. A state of
//! another format, IR version or IR is refused (`Unsupported`): the caller evaluates the whole
//! history instead. The state's maps are only ever looked up, never iterated, so the order
//! they come back in (their insertion order differs) changes no record.
//!
//! The rows of new events are appended after the stored rows, derived rows among those
//! (`World::late` says which rows are the history's): the indexes the state holds (causes,
//! the history's lists, duties' triggers) stay valid, and the records name a row by the id
//! the caller passes for it (every id of the history, stored and new, in order).

use crate::eval::*;
use crate::fx::FxMap;
use crate::input::Events;
use crate::ir::*;
use crate::ledger::PenRow;
use crate::Cell;
use serde::{Deserialize, Serialize};

/// Bumped whenever the World's fields (or their meaning) change: older states are refused.
pub(crate) const STATE_VERSION: u32 = 3; // 2: the events' values compact; 3: their heads together (`input::Events`)
const MAGIC: &[u8; 4] = b"PEs\x01";

/// The IR text's fingerprint (FxHash: stable across runs and builds of the core).
pub(crate) fn fingerprint(ir: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = crate::fx::FxHasher::default();
    h.write(ir.as_bytes());
    h.write_usize(ir.len());
    h.finish()
}

// `World::p` is a borrow of the program the core was built from: it is no part of the state,
// and cannot be read back from bytes. So the state is the World's other fields, listed once
// here: written by reference (`Ref`, no copy of the World) and read as owned values (`Owned`)
// that become a World again with the core's own program. A field added to `World` and not
// here fails to compile (`into_world` names every field). The strings are the program's
// (`Program::strings`, the same for the same IR) and those added since: only those are
// written, and interned again after the program's in the same order, to the same numbers.
macro_rules! state {
    ($($f:ident: $t:ty,)*) => {
        #[derive(Serialize)]
        struct Ref<'a> { $($f: &'a $t,)* }

        #[derive(Deserialize)]
        struct Owned { $($f: $t,)* }

        fn by_ref<'a>(w: &'a World<'_>) -> Ref<'a> {
            Ref { $($f: &w.$f,)* }
        }

        impl Owned {
            fn into_world(self, p: &Program, strings: Interner) -> World<'_> {
                World { p, strings, steps: None, $($f: self.$f,)* }
            }
        }
    };
}

state! {
    ev: Events,
    ids: Vec<u32>,
    now: i64,
    subjects: Vec<Subj>,
    subject_ix: crate::dense::SymIx,
    pend: Vec<Pend>,
    duty_state: Vec<u8>,
    duty_fields: Vec<(usize, Val)>,
    duty_cancels: Vec<(Val, crate::eval::Run)>,
    obligations: Vec<Obl>,
    trace: Vec<Row>,
    conflicts: Vec<Conflict>,
    fired: Vec<(usize, i64)>,
    fired_ix: FxMap<usize, usize>,
    timers: crate::timers::Timers,
    seq: u64,
    waiting: FxMap<(u32, Val), Vec<usize>>,
    overdue: FxMap<(u32, Val), Vec<usize>>,
    cancels: FxMap<(u32, Val), Vec<usize>>,
    live_keys: FxMap<(i64, Val), crate::duty::Live>,
    chains: Vec<crate::duty::Chain>,
    hist_subj: FxMap<(u32, u32), Vec<usize>>,
    hist_type: FxMap<u32, Vec<usize>>,
    step_owner: FxMap<u32, (Option<u32>, usize)>,
    penalties: Vec<PenRow>,
    rejected: bool,
    rejections: Vec<(Option<usize>, i64, usize, u32)>,
    ladders: FxMap<(u32, u32), i64>,
    party_counters: Vec<(u32, Vec<(u32, i64)>)>,
    party_ix: FxMap<u32, usize>,
    violations: Vec<crate::value::Breach>,
    labels: Vec<Vec<Option<u32>>>,
    real: usize,
    late: Vec<usize>,
    origin: Vec<crate::periodic::Origin>,
    queue: Vec<usize>,
    counter_log: Vec<(u32, u32, i64, i64, bool)>,
    joined: Vec<usize>,
    closes: Vec<crate::metric::Close>,
    event_labels: Vec<(u32, crate::label::Found)>,
    event_label_ix: FxMap<u32, usize>,
    classified: Vec<crate::label::Classified>,
    horizon_reached: bool,
    broken: Vec<(u32, Vec<u32>)>,
    tuples: FxMap<Vec<Val>, u32>,
    counter_exp: FxMap<crate::counters::ExpKey, i32>,
}

/// The World's state as bytes (before `finish`: a finished World is not continued).
pub(crate) fn save(w: &World, fp: u64) -> Res<Vec<u8>> {
    if w.horizon_reached || !w.queue.is_empty() {
        return Err("a World is saved before it finishes".into());
    }
    let mut out = MAGIC.to_vec();
    let head = postcard::to_stdvec(&(STATE_VERSION, IR_VERSION, fp)).map_err(|e| e.to_string())?;
    out.extend(head);
    let base = w.p.strings.names.len();
    let added = w.strings.names.get(base..).ok_or("strings lost")?;
    out.extend(postcard::to_stdvec(&(base, added, by_ref(w))).map_err(|e| e.to_string())?);
    Ok(out)
}

/// A World again from `save`'s bytes, for the program of IR fingerprint `fp`.
pub(crate) fn load<'p>(p: &'p Program, bytes: &[u8], fp: u64) -> Res<World<'p>> {
    let body = bytes.strip_prefix(MAGIC).ok_or("not a saved state of the core")?;
    let ((version, ir, found), rest): ((u32, i64, u64), _) =
        postcard::take_from_bytes(body).map_err(|e| format!("a damaged saved state ({e})"))?;
    if version != STATE_VERSION || ir != IR_VERSION {
        return Err(format!(
            "a saved state of format {version} for IR version {ir}; this core reads format \
             {STATE_VERSION}, IR version {IR_VERSION}"
        ));
    }
    if found != fp {
        return Err("a saved state of another policy's IR".into());
    }
    let ((base, added, owned), tail): ((usize, Vec<String>, Owned), _) =
        postcard::take_from_bytes(rest).map_err(|e| format!("a damaged saved state ({e})"))?;
    let mut strings = p.strings.clone();
    if !tail.is_empty() || base != strings.names.len() || owned.ev.k != p.fields.len() || owned.horizon_reached {
        return Err("a damaged saved state".into());
    }
    strings.reserve(added.len());
    for (i, name) in added.iter().enumerate() {
        if strings.sym(name) as usize != base + i {
            return Err("a damaged saved state (a string twice)".into());
        }
    }
    Ok(owned.into_world(p, strings))
}

impl World<'_> {
    /// Apply events after those of a loaded World (time-ordered, none before the last one it
    /// applied): their rows appended, `ids` their ids, interned.
    pub(crate) fn resume(
        &mut self,
        types: &[String],
        ats: &[i64],
        columns: &[Vec<Option<Cell>>],
        ids: &[String],
        clock: bool,
    ) -> Res<()> {
        let last = (0..self.ev.len()).rev().find(|&e| !self.derived(e)).map(|e| self.ev.at(e));
        if ats.windows(2).any(|w| w[0] > w[1]) || matches!((last, ats.first()), (Some(l), Some(&a)) if a < l) {
            return Err("new events before those the saved state applied".into());
        }
        if ids.len() != types.len() {
            return Err("one id per new event".into());
        }
        let first = self.ev.len();
        let p = self.p;
        crate::input::append(p, &mut self.strings, &mut self.ev, types, ats, columns)?;
        for id in ids {
            let s = self.strings.sym(id);
            self.ids.push(s);
        }
        let rows = first..self.ev.len();
        if first == self.real {
            self.real += rows.len(); // no derived row yet: the history's rows stay first
        } else {
            self.late.extend(rows.clone());
        }
        if first == 0 && clock && !rows.is_empty() {
            self.schedule_clock(self.ev.at(0))?; // the saved World had no event
        }
        for e in rows {
            self.step(e)?;
        }
        Ok(())
    }
}
