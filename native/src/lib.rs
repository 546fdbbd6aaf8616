//! The policy engine's native core: runs a compiled policy's intermediate form (written by
//! `policyengine.language.ir`, version `IR_VERSION`) over prepared events (`Core.run`), or
//! over the caller's raw event mappings, which it checks and orders itself as `prepare` does
//! wherever it is sure to agree with it (`Core.run_raw`; "not sure" otherwise).
//!
//! Modules: `ir` (the IR read once), `input` (events as columns, and the raw events' checks),
//! `eval` (the engine's steps), `ledger` (penalties and counters), `cal` (calendar months), `bulk` (actions on every subject), `out` (the records handed back), `fx` (the maps' hash),
//! `label` (labels and invariants), `owner` (the derived `owner_changed` events), `periodic`
//! (rules with `every:`), `metric` (the metric periods' clock), `saved` (an evaluation's
//! state as bytes, and continued from them: `Core.run_saved`, `Core.resume`).
//!
//! The Python engine (`policyengine.runtime.engine`) is the reference: this core takes the same
//! steps in the same order (deadlines before the events after them, rules matched on the state
//! before an event, duties settled before the remaining actions) and returns the same records,
//! in bulk, so that the same Python code builds the decision. Strings are interned, instants
//! are i64 microseconds, the timer heap and every subject's state live here, off the Python
//! heap. What the core cannot decide exactly as the engine would (a value of an unexpected
//! type, a deadline out of range, a step the engine refuses) raises `Unsupported`: the caller
//! then runs the Python engine, which decides or raises the located error.


mod ahead;
mod bulk;
mod cal;
mod counters;
mod dates;
mod decimal;
mod dense;
mod duty;
mod eval;
mod fields;
mod fx;
mod input;
mod ir;
mod label;
mod ledger;
mod metric;
mod lists;
mod numbers;
mod subjects;
mod out;
mod rows;
mod value;
mod workcal;
mod owner;
mod periodic;
mod saved;
mod shard;
mod timers;
mod workhours;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyList, PyTuple, PyType};
use serde_json::Value as J;

use eval::World;
use input::Events;
use ir::{load, Program, Val, IR_VERSION};
use out::{records, RowTypes};

create_exception!(policyengine_native, Unsupported, PyException);

/// One value of a prepared event's field the rules read: text or a yes/no (any other type
/// fails to convert, and the caller runs the Python engine).
enum Cell {
    Yes(bool),
    Int(i64),
    Text(String),
    Texts(Vec<String>),
    Dec(Val), // a `decimal.Decimal`, as its text reads
}

impl<'a, 'py> FromPyObject<'a, 'py> for Cell {
    type Error = PyErr;

    fn extract(v: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        // tested before converting: a failed conversion costs an exception per cell
        match v.cast::<PyBool>() {
            Ok(b) => Ok(Cell::Yes(b.is_true())),
            Err(_) if v.is_exact_instance_of::<PyInt>() => Ok(Cell::Int(v.extract()?)),
            Err(_) if v.is_exact_instance_of::<PyList>() => Ok(Cell::Texts(v.extract()?)),
            Err(_) if !v.is_instance_of::<pyo3::types::PyString>() && v.hasattr("as_tuple")? => {
                let text: String = v.str()?.extract()?;
                decimal::parse(&text)
                    .map(Cell::Dec)
                    .ok_or_else(|| pyo3::exceptions::PyTypeError::new_err("a decimal the core does not hold"))
            }
            Err(_) => Ok(Cell::Text(v.extract()?)),
        }
    }
}

// ---------------------------------------------------------------- the Python side

/// A policy's intermediate form, read once; `run` evaluates one history against it.
#[pyclass(frozen)]
struct Core {
    program: Program,
    types: RowTypes,
    fingerprint: u64, // of the IR text: a saved state is continued by the same IR only
}

fn unsupported(why: String) -> PyErr {
    Unsupported::new_err(why)
}

#[pymethods]
impl Core {
    /// `ir`: the IR as JSON; `trace_row`, `span_record`, `obligation_record`, `penalty_row`:
    /// the classes of `runtime.records` the records are made as (`TraceRow`, `ObligationRow`
    /// and `PenaltyRow` tuple subclasses).
    #[new]
    fn new(
        ir: &str,
        trace_row: &Bound<'_, PyType>,
        span_record: &Bound<'_, PyAny>,
        obligation_record: &Bound<'_, PyAny>,
        penalty_row: &Bound<'_, PyType>,
    ) -> PyResult<Self> {
        let value: J = serde_json::from_str(ir).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let program = load(&value).map_err(unsupported)?;
        let named = |t: &Bound<'_, PyAny>| t.cast::<PyType>().map_or(Ok(false), |t| t.is_subclass_of::<PyTuple>());
        if !trace_row.is_subclass_of::<PyTuple>()? || !penalty_row.is_subclass_of::<PyTuple>()? || !named(obligation_record)? {
            return Err(PyValueError::new_err("trace_row, obligation_record and penalty_row must be tuple subclasses"));
        }
        let types = RowTypes {
            trace: trace_row.clone().unbind(),
            span: span_record.clone().unbind(),
            obligation: obligation_record.clone().unbind(),
            penalty: penalty_row.clone().unbind(),
        };
        Ok(Core { program, types, fingerprint: saved::fingerprint(ir) })
    }

    /// The event fields `run` takes as columns, in order: the subject field first.
    fn fields(&self) -> Vec<String> {
        self.program.fields.clone()
    }

    /// Evaluate prepared events (time-ordered, up to the horizon): ids, types, instants and one
    /// column per field of `fields()` (text, a yes/no, a whole number or None). Returns the records as tuples, with the
    /// rule references of `refs` (one per rule, in the IR's order) and the ids as given:
    /// `(subjects, trace, obligations, fired, conflicts, penalties, party_counters, rejections,
    /// labels, metric periods, classifications, broken invariants)`.
    #[pyo3(signature = (ids, types, ats, columns, horizon, refs))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<Bound<'py, PyAny>>,
        types: Vec<String>,
        ats: Vec<i64>,
        columns: Vec<Vec<Option<Cell>>>,
        horizon: Option<i64>,
        refs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let p = &self.program;
        let n = ids.len();
        let k = p.fields.len();
        if types.len() != n || ats.len() != n || columns.len() != k || columns.iter().any(|c| c.len() != n) {
            return Err(PyValueError::new_err("columns of different lengths"));
        }
        self.check_refs(&refs)?;
        let mut strings = p.strings.clone();
        let mut ev = Events::new(k, n);
        input::append(p, &mut strings, &mut ev, &types, &ats, &columns).map_err(unsupported)?;
        // `$event.id` is read through the interner: ids as text, interned once where a rule
        // reads them; the records name events by the id objects given
        let id_syms: Vec<u32> = if p.reads_id {
            ids.iter().map(|i| Ok(strings.sym(&i.extract::<String>()?))).collect::<PyResult<_>>()?
        } else {
            for i in &ids {
                i.cast::<pyo3::types::PyString>()?.to_str()?; // text, as the interner takes it
            }
            vec![input::NO_ID; n]
        };
        let w = py.detach(|| World::replay(p, strings, ev, id_syms, horizon)).map_err(unsupported)?;
        records(py, &w, owner::all_ids(py, &w, ids), &refs, &self.types)
    }

    /// Check, order and evaluate the caller's raw event mappings in one step, as `prepare`
    /// and then `run` would. None where the core is not sure `prepare` would accept the
    /// history as it reads it (any problem, or a form it does not read): the caller then runs
    /// `prepare`, which accepts it or raises the located errors. `derive(raw, index)` gives
    /// the id of an event sent without one. Returns `(records, duplicates, ignored,
    /// horizon)`: the records as `run` returns them, the ids of identical repeats, the
    /// `(id, type)` of events of undeclared types under `unknown_events: ignore`, and the
    /// horizon (`horizon`, or the last event's instant). Raises `Unsupported` where `run`
    /// would.
    #[pyo3(signature = (events, horizon, max_span_years, refs, derive))]
    fn run_raw<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyList>,
        horizon: Option<i64>,
        max_span_years: Option<i64>,
        refs: Vec<Bound<'py, PyAny>>,
        derive: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let p = &self.program;
        self.check_refs(&refs)?;
        let Ok(raw) = input::read(py, p, events, horizon, max_span_years, derive) else {
            return Ok(None);
        };
        let input::Raw { strings, ev, ids, id_objs, duplicates, ignored, horizon } = raw;
        let w = py.detach(|| World::replay(p, strings, ev, ids, horizon)).map_err(unsupported)?;
        let rows = records(py, &w, owner::all_ids(py, &w, id_objs), &refs, &self.types)?;
        let ignored = ignored.into_iter().map(|pair| PyTuple::new(py, [pair.0, pair.1])).collect::<PyResult<Vec<_>>>()?;
        let out: [Bound<'py, PyAny>; 4] = [
            rows.into_any(),
            PyList::new(py, duplicates)?.into_any(),
            PyList::new(py, ignored)?.into_any(),
            horizon.into_pyobject(py)?.into_any(),
        ];
        Ok(Some(PyTuple::new(py, out)?))
    }

    /// `run`, also returning the evaluation's state before the horizon's deadlines and
    /// measures (`saved.rs`), for `resume`: `(records, state)`.
    #[pyo3(signature = (ids, types, ats, columns, horizon, refs))]
    #[allow(clippy::too_many_arguments)]
    fn run_saved<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<Bound<'py, PyAny>>,
        types: Vec<String>,
        ats: Vec<i64>,
        columns: Vec<Vec<Option<Cell>>>,
        horizon: Option<i64>,
        refs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let texts = ids.iter().map(|i| i.extract::<String>()).collect::<PyResult<Vec<_>>>()?;
        let p = &self.program;
        let go = || -> ir::Res<(World<'_>, Vec<u8>)> {
            let mut strings = p.strings.clone();
            let mut ev = Events::new(p.fields.len(), types.len());
            input::append(p, &mut strings, &mut ev, &types, &ats, &columns)?;
            let syms = texts.iter().map(|t| strings.sym(t)).collect();
            let mut w = World::applied(p, strings, ev, syms, horizon.is_some())?;
            let state = saved::save(&w, self.fingerprint)?;
            if let Some(h) = horizon {
                w.finish(h)?;
            }
            Ok((w, state))
        };
        self.finish_saved(py, go, &ids, &refs)
    }

    /// `run` for a shard of `evaluate_many`: `(records, steps)`, the steps as `shard.rs`
    /// records them (`Steps::out`). Raises `Unsupported` where `run` would, and for a step
    /// phase 2 cannot place yet (a tick, a period's end, a renewal).
    #[pyo3(signature = (ids, types, ats, columns, horizon, refs))]
    #[allow(clippy::too_many_arguments)]
    fn run_shard<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<Bound<'py, PyAny>>,
        types: Vec<String>,
        ats: Vec<i64>,
        columns: Vec<Vec<Option<Cell>>>,
        horizon: Option<i64>,
        refs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        self.check_refs(&refs)?;
        let texts = ids.iter().map(|i| i.extract::<String>()).collect::<PyResult<Vec<_>>>()?;
        let p = &self.program;
        let go = || -> ir::Res<World<'_>> {
            let mut strings = p.strings.clone();
            let mut ev = Events::new(p.fields.len(), types.len());
            input::append(p, &mut strings, &mut ev, &types, &ats, &columns)?;
            let syms = texts.iter().map(|t| strings.sym(t)).collect();
            let steps = Some(Box::default());
            let mut w = World::applied_with(p, strings, ev, syms, horizon.is_some(), steps)?;
            if let Some(h) = horizon {
                w.finish(h)?;
            }
            Ok(w)
        };
        let mut w = py.detach(go).map_err(unsupported)?;
        let (rows, steps) = self.shard_records(py, &mut w, &ids, &refs)?;
        let out: [Bound<'py, PyAny>; 2] = [rows.into_any(), steps];
        PyTuple::new(py, out)
    }

    /// `run_shard` from the caller's raw event mappings, checked and ordered as `run_raw`
    /// does: `(records, steps, ids)`, the ids in the order the steps' rows name them; None
    /// where the core is not sure `prepare` would accept them (the caller then prepares
    /// them and calls `run_shard`).
    #[pyo3(signature = (events, horizon, max_span_years, refs, derive))]
    fn run_shard_raw<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyList>,
        horizon: Option<i64>,
        max_span_years: Option<i64>,
        refs: Vec<Bound<'py, PyAny>>,
        derive: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let p = &self.program;
        self.check_refs(&refs)?;
        let Ok(raw) = input::read(py, p, events, horizon, max_span_years, derive) else {
            return Ok(None);
        };
        let input::Raw { strings, ev, ids, id_objs, horizon, .. } = raw;
        let go = || -> ir::Res<World<'_>> {
            let mut w = World::applied_with(p, strings, ev, ids, horizon.is_some(), Some(Box::default()))?;
            if let Some(h) = horizon {
                w.finish(h)?;
            }
            Ok(w)
        };
        let mut w = py.detach(go).map_err(unsupported)?;
        let (rows, steps) = self.shard_records(py, &mut w, &id_objs, &refs)?;
        let out: [Bound<'py, PyAny>; 4] = [
            rows.into_any(),
            steps,
            PyList::new(py, &id_objs)?.into_any(),
            horizon.into_pyobject(py)?.into_any(),
        ];
        Ok(Some(PyTuple::new(py, out)?))
    }

    /// Continue a state of `run_saved` (or of `resume`) with the events after it (as `run`
    /// takes them), finishing at `horizon`. `ids`: every event's id, the stored ones and then
    /// the new ones, in order (the records name events by them). Returns `(records, state)`;
    /// raises `Unsupported` for a state of another format, IR version or IR.
    #[pyo3(signature = (state, ids, types, ats, columns, horizon, refs))]
    #[allow(clippy::too_many_arguments)]
    fn resume<'py>(
        &self,
        py: Python<'py>,
        state: &[u8],
        ids: Vec<Bound<'py, PyAny>>,
        types: Vec<String>,
        ats: Vec<i64>,
        columns: Vec<Vec<Option<Cell>>>,
        horizon: Option<i64>,
        refs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let new = ids.len().checked_sub(types.len()).ok_or_else(|| PyValueError::new_err("fewer ids than events"))?;
        let texts = ids[new..].iter().map(|i| i.extract::<String>()).collect::<PyResult<Vec<_>>>()?;
        let p = &self.program;
        let go = || -> ir::Res<(World<'_>, Vec<u8>)> {
            let mut w = saved::load(p, state, self.fingerprint)?;
            w.resume(&types, &ats, &columns, &texts, horizon.is_some())?;
            let state = saved::save(&w, self.fingerprint)?;
            if let Some(h) = horizon {
                w.finish(h)?;
            }
            Ok((w, state))
        };
        self.finish_saved(py, go, &ids, &refs)
    }
}

impl Core {
    /// One rule reference per rule, in the IR's order: the records name rules by them.
    fn check_refs(&self, refs: &[Bound<'_, PyAny>]) -> PyResult<()> {
        if refs.len() != self.program.rules.len() {
            return Err(PyValueError::new_err("one rule reference per rule"));
        }
        Ok(())
    }

    /// A shard's records and its steps (`Steps::out`): a ladder's other steps become penalty
    /// rows after the penalties (`shard.rs`), which the caller splits off again.
    fn shard_records<'py>(
        &self,
        py: Python<'py>,
        w: &mut World<'_>,
        ids: &[Bound<'py, PyAny>],
        refs: &[Bound<'py, PyAny>],
    ) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyAny>)> {
        let alts = w.steps.as_deref_mut().map(|s| std::mem::take(&mut s.alts)).unwrap_or_default();
        let steps = w.steps.as_deref().map(|s| s.out(py, &w.strings.names, &alts)).transpose()?;
        w.penalties.extend(alts.into_iter().map(|(_, alt)| alt));
        let rows = records(py, w, owner::all_ids(py, w, ids.to_vec()), refs, &self.types)?;
        Ok((rows, steps.into_pyobject(py)?.into_any()))
    }

    fn finish_saved<'py, 'c>(
        &'c self,
        py: Python<'py>,
        go: impl Send + FnOnce() -> ir::Res<(World<'c>, Vec<u8>)>,
        ids: &[Bound<'py, PyAny>],
        refs: &[Bound<'py, PyAny>],
    ) -> PyResult<Bound<'py, PyTuple>> {
        self.check_refs(refs)?;
        let (w, state) = py.detach(go).map_err(unsupported)?;
        if w.real + w.late.len() != ids.len() {
            return Err(unsupported("one id per event of the history".into()));
        }
        let rows = records(py, &w, owner::all_ids(py, &w, ids.to_vec()), refs, &self.types)?;
        let out: [Bound<'py, PyAny>; 2] = [rows.into_any(), pyo3::types::PyBytes::new(py, &state).into_any()];
        PyTuple::new(py, out)
    }
}


#[pymodule]
fn policyengine_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Core>()?;
    m.add("Unsupported", m.py().get_type::<Unsupported>())?;
    m.add("IR_VERSION", IR_VERSION)?;
    m.add("STATE_VERSION", saved::STATE_VERSION)?;
    keep_freed_memory();
    Ok(())
}

// The core's memory from mimalloc rather than the C library's malloc: a long history's
// evaluation grows vectors of tens of megabytes, which glibc maps afresh on every call and the
// system zeroes page by page (on this project's virtual machines, a quarter of the time of a
// 360,000-event history); mimalloc keeps and reuses its pages, in huge pages where the system
// allows them. Measured in the README (Speed: flat cost).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // mimalloc's own (linked by the `mimalloc` crate, which does not declare it)
    fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::os::raw::c_int) -> std::os::raw::c_long;
}

/// `mi_option_purge_delay` and `mi_option_purge_decommits` in mimalloc.h's `mi_option_t`
/// (the same places in its v2 and v3).
const MI_OPTION_PURGE_DELAY: std::os::raw::c_int = 15;
const MI_OPTION_PURGE_DECOMMITS: std::os::raw::c_int = 5;

/// How long memory an evaluation freed stays with the process before mimalloc purges it:
/// jemalloc's default decay. With mimalloc's own 1 s, a history whose evaluation takes longer
/// than a second finds the memory of the one before returned, and faults its pages in afresh.
/// On virtual machines that report free pages to their host (this project's do), a page
/// faulted in again costs the host's fault too, about 2 ms per MB: 13% of a
/// 1.2-million-event evaluation's time. The price is a higher peak (README, "Freed memory
/// kept for 10 s").
const KEEP_FREED_MS: std::os::raw::c_long = 10_000;

/// Whether a purge decommits (`MADV_DONTNEED`: the pages go at once, and the next touch
/// faults in zeroed ones) or resets (`MADV_FREE`: the kernel takes the pages when it needs
/// memory, and until then a page touched again is simply the process's still). Reset: a
/// caller that evaluates a long history every half minute (a service, `make bench`'s rounds)
/// found every evaluation past the 10 s delay faulting its 560 MB in again. The memory is
/// still the system's to take; `top` shows it in the process's RSS until it does.
const PURGE_DECOMMITS: std::os::raw::c_long = 0;

/// The environment variables (today's name, then the older one) by which a caller sets each.
const DELAY_VARS: [&str; 2] = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"];
const DECOMMITS_VARS: [&str; 2] = ["MIMALLOC_PURGE_DECOMMITS", "MIMALLOC_RESET_DECOMMITS"];

/// Sets the purge delay and how a purge returns memory, each unless the caller chose it
/// (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_PURGE_DECOMMITS`, or their older names): mimalloc has
/// read those at start, and they win.
fn keep_freed_memory() {
    let unset = |names: [&str; 2]| names.iter().all(|n| std::env::var_os(n).is_none());
    if unset(DELAY_VARS) {
        // SAFETY: sets one of mimalloc's options, which it reads atomically; any thread may
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, KEEP_FREED_MS) }
    }
    if unset(DECOMMITS_VARS) {
        // SAFETY: as above
        unsafe { mi_option_set(MI_OPTION_PURGE_DECOMMITS, PURGE_DECOMMITS) }
    }
}

#[cfg(test)]
mod memory_tests {
    /// The options set are the purge delay and the purge's kind: they hold mimalloc v3's
    /// documented defaults (1000 ms, decommit) before, and ours after; where the caller names
    /// one in the environment, ours leaves that one as it was. One test, since it sets the
    /// process's environment, which tests on other threads would see.
    #[test]
    fn freed_memory_is_kept_longer_and_reset_unless_the_caller_chose() {
        use super::{DECOMMITS_VARS, DELAY_VARS, MI_OPTION_PURGE_DECOMMITS, MI_OPTION_PURGE_DELAY};
        let named = |names: [&str; 2]| names.iter().any(|n| std::env::var_os(n).is_some());
        if named(DELAY_VARS) || named(DECOMMITS_VARS) {
            return; // the caller's own options stand: nothing of ours to check
        }
        // SAFETY: reads and sets mimalloc's options
        let get = |o| unsafe { super::mi_option_get(o) };
        let set = |o, v| unsafe { super::mi_option_set(o, v) };
        assert_eq!(get(MI_OPTION_PURGE_DELAY), 1000);
        assert_eq!(get(MI_OPTION_PURGE_DECOMMITS), 1);
        super::keep_freed_memory();
        assert_eq!(get(MI_OPTION_PURGE_DELAY), super::KEEP_FREED_MS);
        assert_eq!(get(MI_OPTION_PURGE_DECOMMITS), super::PURGE_DECOMMITS);
        // each option's variable, by either of its names, keeps that option alone as it is
        for (i, name) in DELAY_VARS.iter().chain(DECOMMITS_VARS.iter()).enumerate() {
            set(MI_OPTION_PURGE_DELAY, 7);
            set(MI_OPTION_PURGE_DECOMMITS, 7);
            std::env::set_var(name, "7");
            super::keep_freed_memory();
            std::env::remove_var(name);
            let delay_named = i < 2;
            assert_eq!(get(MI_OPTION_PURGE_DELAY), if delay_named { 7 } else { super::KEEP_FREED_MS }, "{name}");
            assert_eq!(get(MI_OPTION_PURGE_DECOMMITS), if delay_named { super::PURGE_DECOMMITS } else { 7 }, "{name}");
        }
    }
}
