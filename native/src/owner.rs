//! The derived `owner_changed` events (`Ledger.set_owner`, `World.drain`): each change of a
//! subject's owner, in a policy with rules or duties on them, becomes an event of its own
//! (the id of the event whose step made the change, the subject, `owner`, `previous`),
//! applied after the step that made it, in order, without joining the history. A derived
//! event (and a tick) is a row appended to the columns; `origin` says whose id it carries.

use crate::eval::{Causes, World};
use crate::fx::{FxMap, FxSet};
use crate::ir::{Interner, Res, Val};
use crate::periodic::Origin;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// More changes than this in one step: the engine's `OWNER_CHANGES_UNSETTLED`.
const GUARD: usize = 10_000;

/// What a policy that emits `owner_changed` events needs to write them.
pub(crate) struct Emit {
    pub(crate) ty: u32,
    pub(crate) owner: Option<usize>, // the column of `owner`, where the rules read it
    pub(crate) previous: Option<usize>, // of `previous`
}

/// `World.emits_owner`: rules or duties on `owner_changed`.
pub(crate) fn emits(
    strings: &mut Interner,
    by_trigger: &FxMap<u32, Vec<usize>>,
    awaited: &FxSet<u32>,
    fields: &[String],
) -> Option<Emit> {
    let ty = strings.sym("owner_changed");
    if !by_trigger.contains_key(&ty) && !awaited.contains(&ty) {
        return None;
    }
    let slot = |name: &str| fields.iter().position(|f| f == name);
    Some(Emit {
        ty,
        owner: slot("owner"),
        previous: slot("previous"),
    })
}

impl World<'_> {
    /// Queue the event of a change of `sid`'s owner, made by a step whose causes are `causes`.
    pub(crate) fn derive_owner(
        &mut self,
        sid: u32,
        owner: Option<u32>,
        previous: Option<u32>,
        causes: Causes,
    ) {
        let Some(emit) = &self.p.owner_changed else {
            return;
        };
        let cause = causes.1.unwrap_or(causes.0);
        let origin = if self.derived(cause) {
            self.origin[self.origin_ix(cause)]
        } else {
            Origin::Event(cause)
        };
        let d = self.ev.len();
        let mut set = vec![(0, Val::Str(sid))]; // the subject field comes first
        if let Some(f) = emit.owner {
            set.push((f, owner.map_or(Val::Null, Val::Str)));
        }
        if let Some(f) = emit.previous {
            set.push((f, previous.map_or(Val::Null, Val::Str)));
        }
        self.ev.derive(emit.ty, self.now, &set);
        self.ids.push(self.ids[cause]);
        self.origin.push(origin);
        self.queue.push(d);
    }

    /// `World.drain`: apply the queued events, and those they make, in order.
    pub(crate) fn drain(&mut self) -> Res<()> {
        let mut guard = 0;
        while !self.queue.is_empty() {
            let batch = std::mem::take(&mut self.queue);
            for d in batch {
                guard += 1;
                if guard > GUARD {
                    return Err(format!(
                        "owner_changed rules keep changing owners (more than {GUARD} changes in one step)"
                    ));
                }
                self.apply(d)?;
            }
        }
        Ok(())
    }
}

/// The id objects of every row, the history's as given, then the derived rows': what the
/// records name events by.
pub(crate) fn all_ids<'py>(
    py: Python<'py>,
    w: &World,
    mut ids: Vec<Bound<'py, PyAny>>,
) -> Vec<Bound<'py, PyAny>> {
    if w.origin.is_empty() {
        return ids;
    }
    // in row order: the history's rows (those added on resume among them) and the derived;
    // the history's ids moved, not copied: a copy would touch every id object twice more
    // (a reference taken, then given back), scattered over a long history's memory
    let late = ids.split_off(w.real.min(ids.len()));
    let mut out = ids;
    let (mut derived, mut late) = (w.origin.iter(), late.into_iter());
    for e in w.real..w.ev.len() {
        let next = if w.derived(e) {
            match derived.next() {
                Some(Origin::Event(e)) => out[*e].clone(),
                Some(Origin::Text(s)) => PyString::new(py, &w.strings.names[*s as usize]).into_any(),
                None => break,
            }
        } else {
            match late.next() {
                Some(id) => id,
                None => break,
            }
        };
        out.push(next);
    }
    out
}
