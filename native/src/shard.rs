//! What a shard of `evaluate_many` records for phase 2 (`Core.run_shard`), as the Python
//! engine's `ShardHooks` records it: every step's place in the global order (an event: its
//! row; a deadline: its heap key, the step that pushed it and its order among that step's
//! pushes), the records' lengths at the start of every step, and which trace rows are the
//! penalties and the party counters' increments. Only steps of subjects are recorded: a tick,
//! a metric period's end or a recurring duty's renewal raises `Unsupported` (the caller then
//! evaluates its shards with the Python engine).

use crate::eval::{Ctx, World};
use crate::fx::FxMap;
use crate::ir::Res;
use crate::ledger::PenRow;

#[derive(Default)]
pub(crate) struct Steps {
    pub(crate) key: Vec<i64>,  // 2*at for an event, the heap key for a deadline
    pub(crate) refs: Vec<i64>, // the event's row; the pushing step (-1: none)
    pub(crate) j: Vec<u32>,    // a deadline's order among its pusher's pushes
    pub(crate) event: Vec<bool>,
    pub(crate) marks: Vec<u32>, // the records' lengths at the start of each step (`MARKS`)
    pub(crate) pens: Vec<(u32, u32, u32)>, // per penalty row: its trace row, key, the ladder's steps
    pub(crate) adds: Vec<u32>,  // per increment of a party counter: its trace row
    // every other step of a ladder, as the penalty would have taken it: (its row, the step)
    pub(crate) alts: Vec<(u32, PenRow)>,
    pushed: FxMap<u64, (i64, u32)>, // a pending deadline's seq -> (pusher step, j)
    pushes: u32,                    // pushes in the current step
}

/// How many lengths a step records, in the order of the engine's `STEPPED`: subjects, trace,
/// obligations, penalties, credits (none in the core), violations, rejections,
/// classifications, conflicts.
pub(crate) const MARKS: usize = 9;

impl<'p> World<'p> {
    fn begin(&mut self, key: i64, r: i64, j: u32, event: bool) {
        let marks: [usize; MARKS] = [
            self.subjects.len(),
            self.trace.len(),
            self.obligations.len(),
            self.penalties.len(),
            0,
            self.violations.len(),
            self.rejections.len(),
            self.classified.len(),
            self.conflicts.len(),
        ];
        let Some(s) = self.steps.as_deref_mut() else { return };
        s.key.push(key);
        s.refs.push(r);
        s.j.push(j);
        s.event.push(event);
        s.marks.extend(marks.iter().map(|&n| n as u32));
        s.pushes = 0;
    }

    /// An event of the history starts a step.
    pub(crate) fn shard_event(&mut self, e: usize) {
        if self.steps.is_some() {
            self.begin(2 * self.ev.at(e), e as i64, 0, true);
        }
    }

    /// A deadline fires: a step ordered after the step that pushed it.
    pub(crate) fn shard_timer(&mut self, key: i64, seq: u64) {
        let Some(s) = self.steps.as_deref_mut() else { return };
        let (pusher, j) = s.pushed.remove(&seq).unwrap_or((-1, 0));
        self.begin(key, pusher, j, false);
    }

    /// A deadline pushed in the current step.
    pub(crate) fn shard_push(&mut self, seq: u64) {
        let Some(s) = self.steps.as_deref_mut() else { return };
        let cur = s.key.len() as i64 - 1;
        s.pushed.insert(seq, (cur, s.pushes));
        s.pushes += 1;
    }

    /// A timer phase 2 cannot order yet (a tick, a period's end, a renewal).
    pub(crate) fn shard_refuse(&self, what: &str) -> Result<(), String> {
        match self.steps {
            Some(_) => Err(format!("a shard on the core holds {what}")),
            None => Ok(()),
        }
    }

    /// The trace row just written is a penalty's: with a ladder, every other step is taken
    /// as well (phase 2 numbers the offences across shards and picks one); a step whose
    /// amount cannot be looked up is left out (phase 2 then hands back, if it picks it).
    pub(crate) fn shard_penalty(&mut self, c: &Ctx) -> Res<()> {
        if self.steps.is_none() {
            return Ok(());
        }
        let n = self.trace.len() as u32 - 1;
        let row = self.penalties.len() - 1;
        let prog = self.p;
        let r = &self.penalties[row];
        let pen = &prog.penalties[r.pen];
        let steps = if pen.ladder { pen.steps.len() as u32 } else { 1 };
        let mut alts = Vec::new();
        if pen.ladder {
            let (party, ix, units, offence, subject, at, rule, causes, taken) =
                (r.party, r.pen, r.units, r.offence, r.subject, r.at, r.rule, r.causes, r.step);
            for (i, step) in pen.steps.iter().enumerate() {
                if i == taken {
                    continue;
                }
                if let Ok(amount) = self.amount_of(step, c) {
                    let alt = PenRow { party, pen: ix, step: i, units, offence, subject, at, rule, causes, amount };
                    alts.push((row as u32, alt));
                }
            }
        }
        if let Some(s) = self.steps.as_deref_mut() {
            s.pens.push((n, pen.key, steps));
            s.alts.extend(alts);
        }
        Ok(())
    }

    /// The trace row just written is a party counter's increment.
    pub(crate) fn shard_add(&mut self) {
        let n = self.trace.len() as u32 - 1;
        if let Some(s) = self.steps.as_deref_mut() {
            s.adds.push(n);
        }
    }
}

impl Steps {
    /// `(keys, refs, js, kinds, marks, penalties, increments' trace rows, other steps)`:
    /// plain lists (kinds as bytes, 1 an event, 0 a deadline; marks `MARKS` per step; a
    /// penalty as its trace row, ladder key and the number of steps its ladder has, 1 without
    /// one; per other step taken, its penalty's row and the step, in the order `run_shard`
    /// appends them to the penalties).
    pub(crate) fn out<'py>(&self, py: pyo3::Python<'py>, names: &[String], alts: &[(u32, PenRow)]) -> pyo3::PyResult<pyo3::Bound<'py, pyo3::types::PyTuple>> {
        use pyo3::types::{PyBytes, PyList, PyTuple};
        use pyo3::IntoPyObject;
        let kinds: Vec<u8> = self.event.iter().map(|&e| u8::from(e)).collect();
        let alts: Vec<(u32, usize)> = alts.iter().map(|(row, alt)| (*row, alt.step)).collect();
        let items: [pyo3::Bound<'py, pyo3::PyAny>; 8] = [
            PyList::new(py, &self.key)?.into_any(),
            PyList::new(py, &self.refs)?.into_any(),
            PyList::new(py, &self.j)?.into_any(),
            PyBytes::new(py, &kinds).into_any(),
            PyList::new(py, &self.marks)?.into_any(),
            PyList::new(py, self.pens.iter().map(|&(t, key, n)| (t, names[key as usize].as_str(), n)))?.into_any(),
            self.adds.clone().into_pyobject(py)?.into_any(),
            alts.into_pyobject(py)?.into_any(),
        ];
        PyTuple::new(py, items)
    }
}
