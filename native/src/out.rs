//! The records handed back to Python, in bulk.

use crate::eval::*;
use crate::ir::*;
use pyo3::prelude::*;
use pyo3::ffi;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};
use crate::fx::FxMap;

pub(crate) struct Out<'py, 'a> {
    pub(crate) py: Python<'py>,
    pub(crate) names: &'a [String],
    pub(crate) cache: Vec<Option<Bound<'py, PyString>>>,
}

impl<'py, 'a> Out<'py, 'a> {
    pub(crate) fn s(&mut self, sym: u32) -> Bound<'py, PyAny> {
        let i = sym as usize;
        if self.cache[i].is_none() {
            self.cache[i] = Some(PyString::new(self.py, &self.names[i]));
        }
        self.cache[i].clone().unwrap().into_any()
    }

    pub(crate) fn opt(&mut self, sym: Option<u32>) -> Bound<'py, PyAny> {
        match sym {
            Some(s) => self.s(s),
            None => self.py.None().into_bound(self.py),
        }
    }

    pub(crate) fn val(&mut self, v: Val) -> PyResult<Bound<'py, PyAny>> {
        Ok(match v {
            Val::Null => self.py.None().into_bound(self.py),
            Val::Bool(b) => b.into_pyobject(self.py)?.to_owned().into_any(),
            Val::Int(i) => i.into_pyobject(self.py)?.into_any(),
            Val::Str(s) => self.s(s),
            // the IR reads a list only as the items of a `for_each`: it is never recorded
            Val::List(_) => return Err(pyo3::exceptions::PyTypeError::new_err("a list in a record")),
        })
    }
}

/// The Python classes the records are made as (`runtime.records`): built here, so that no
/// intermediate tuple is unpacked in Python.
pub(crate) struct RowTypes {
    pub(crate) trace: Py<PyType>,      // TraceRow, a NamedTuple
    pub(crate) span: Py<PyAny>,        // SpanRecord
    pub(crate) obligation: Py<PyAny>,  // ObligationRecord
    pub(crate) penalty: Py<PyType>,    // PenaltyRow, a NamedTuple
}

/// Take the object off the cyclic collector's lists. Every record holds only text, numbers,
/// None, tuples of those and the shared rule references, and nothing ever stores a record in
/// one of them: none can be part of a cycle, so the collector could never free one, and
/// would only walk tens of thousands of them once it is enabled again (CPython untracks such
/// tuples itself, but only at its next pass over them).
fn untrack(obj: &Bound<'_, PyAny>) {
    // SAFETY: a live object of ours; untracking an untracked object does nothing
    unsafe { ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) }
}

fn tuple<'py, const N: usize>(py: Python<'py>, items: [Bound<'py, PyAny>; N]) -> PyResult<Bound<'py, PyAny>> {
    let t = PyTuple::new(py, items)?.into_any();
    untrack(&t);
    Ok(t)
}

/// An instance of the tuple subclass `cls` (a NamedTuple) holding `items`, as `tuple.__new__`
/// makes it, without the plain tuple it would copy.
fn named<'py, const N: usize>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    items: [Bound<'py, PyAny>; N],
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `cls` is a subclass of tuple (checked by the caller once); tp_alloc of a tuple
    // subclass is PyType_GenericAlloc, which gives an object of N empty slots and refcount 1,
    // which PyTuple_SetItem fills (stealing each reference)
    unsafe {
        let obj = ffi::PyType_GenericAlloc(cls.as_ptr().cast(), N as ffi::Py_ssize_t);
        let obj = Bound::from_owned_ptr_or_err(py, obj)?;
        for (i, item) in items.into_iter().enumerate() {
            if ffi::PyTuple_SetItem(obj.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        untrack(&obj);
        Ok(obj)
    }
}

pub(crate) fn records<'py>(
    py: Python<'py>,
    w: &World,
    ids: &[Bound<'py, PyAny>],
    refs: &[Bound<'py, PyAny>],
    types: &RowTypes,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut o = Out { py, names: &w.strings.names, cache: vec![None; w.strings.names.len()] };
    let none = py.None().into_bound(py);
    let trace_row = types.trace.bind(py);
    let span_record = types.span.bind(py);
    let obligation_record = types.obligation.bind(py);
    let causes = |c: Causes| -> PyResult<Bound<'py, PyAny>> {
        match c.1 {
            None => tuple(py, [ids[c.0].clone()]),
            Some(b) => tuple(py, [ids[c.0].clone(), ids[b].clone()]),
        }
    };
    let decimal = py.import("decimal")?.getattr("Decimal")?;
    let mut decimals: FxMap<u32, Bound<'py, PyAny>> = FxMap::default();
    let mut dec = |sym: u32| -> PyResult<Bound<'py, PyAny>> {
        if let Some(d) = decimals.get(&sym) {
            return Ok(d.clone());
        }
        let d = decimal.call1((w.strings.names[sym as usize].as_str(),))?;
        decimals.insert(sym, d.clone());
        Ok(d)
    };
    let counters = |o: &mut Out<'py, '_>, table: &[(u32, i64)]| -> PyResult<Bound<'py, PyAny>> {
        let d = PyDict::new(py);
        for (name, v) in table {
            d.set_item(o.s(*name), decimal.call1((*v,))?)?;
        }
        Ok(d.into_any())
    };
    // the penalties first: the trace's penalty rows give the same amounts as text
    let penalty_row = types.penalty.bind(py);
    let penalties = PyList::empty(py);
    let mut details = Vec::with_capacity(w.penalties.len());
    for r in &w.penalties {
        let pen = &w.p.penalties[r.pen];
        let step = &pen.steps[r.step];
        let (mut low, mut high) = match step.amount {
            Some((l, h)) => (Some(dec(l)?), Some(dec(h)?)),
            None => (None, None),
        };
        if let (Some((l, h)), Some(units)) = (pen.per_unit, r.units) {
            low = Some(dec(l)?.mul(units)?);
            high = Some(dec(h)?.mul(units)?);
        }
        let days = match step.salary_days {
            Some(d) => Some(dec(d)?),
            None => None,
        };
        let currency = if low.is_some() { o.opt(w.p.currency) } else { none.clone() };
        let or_none = |v: &Option<Bound<'py, PyAny>>| v.clone().unwrap_or_else(|| none.clone());
        let text = |v: &Option<Bound<'py, PyAny>>| -> PyResult<Bound<'py, PyAny>> {
            Ok(match v {
                Some(d) => d.str()?.into_any(),
                None => none.clone(),
            })
        };
        let units = match r.units {
            Some(u) => u.into_pyobject(py)?.into_any(),
            None => none.clone(),
        };
        let offence = r.offence.into_pyobject(py)?.into_any();
        let items: [Bound<'py, PyAny>; 12] = [
            o.s(r.party),
            o.s(step.sanction),
            or_none(&low),
            or_none(&high),
            currency,
            units.clone(),
            or_none(&days),
            offence.clone(),
            o.opt(r.subject),
            r.at.into_pyobject(py)?.into_any(),
            refs[r.rule].clone(),
            causes(r.causes)?,
        ];
        penalties.append(named(py, penalty_row, items)?)?;
        let detail = PyDict::new(py);
        detail.set_item("sanction", o.s(step.sanction))?;
        detail.set_item("amount_min", text(&low)?)?;
        detail.set_item("amount_max", text(&high)?)?;
        detail.set_item("units", units)?;
        detail.set_item("salary_days", text(&days)?)?;
        detail.set_item("offence", offence)?;
        details.push(Some(detail));
    }
    let rejections = PyList::empty(py); // (event, at, rule, reason): `RejectionRow`'s fields
    for (e, at, rule, reason) in &w.rejections {
        let event = match e {
            Some(e) => ids[*e].clone(),
            None => PyString::new(py, "?").into_any(),
        };
        rejections.append(tuple(py, [event, at.into_pyobject(py)?.into_any(), refs[*rule].clone(), o.s(*reason)])?)?;
    }
    let party_counters = PyList::empty(py);
    for (party, table) in &w.party_counters {
        party_counters.append(tuple(py, [o.s(*party), counters(&mut o, table)?])?)?;
    }
    let subjects = PyList::empty(py);
    for s in &w.subjects {
        let spans = PyList::empty(py);
        for sp in &s.spans {
            let end = match sp.end {
                Some(e) => e.into_pyobject(py)?.into_any(),
                None => none.clone(),
            };
            let args = (o.s(sp.owner), sp.start, end, refs[sp.rule].clone(), causes(sp.causes)?);
            let record = span_record.call1(args)?;
            untrack(&record);
            spans.append(record)?;
        }
        let flags = PyDict::new(py);
        for (name, v) in &s.flags {
            flags.set_item(o.s(*name), o.val(*v)?)?;
        }
        let own = counters(&mut o, &s.counters)?;
        subjects.append(tuple(py, [o.s(s.id), spans.into_any(), flags.into_any(), own])?)?;
    }
    let k_claim = PyString::intern(py, "claim");
    let k_owner = PyString::intern(py, "owner");
    let k_expectation = PyString::intern(py, "expectation");
    let k_flag = PyString::intern(py, "flag");
    let k_status = PyString::intern(py, "status");
    let k_previous = PyString::intern(py, "previous");
    let k_awaits = PyString::intern(py, "awaits");
    let k_due = PyString::intern(py, "due");
    let k_value = PyString::intern(py, "value");
    let k_penalty = PyString::intern(py, "penalty");
    let k_counter = PyString::intern(py, "counter");
    let k_obligation = PyString::intern(py, "obligation");
    let k_reject = PyString::intern(py, "reject");
    let statuses: Vec<Bound<'py, PyString>> = CLAIM_STATUS.iter().map(|s| PyString::intern(py, s)).collect();
    let mut awaits: FxMap<usize, Bound<'py, PyAny>> = FxMap::default();
    let trace = PyList::empty(py);
    for row in &w.trace {
        let mut detail = PyDict::new(py);
        let (kind, subject, party) = match &row.tr {
            Tr::Claim { subject, party, status } => {
                detail.set_item(&k_status, &statuses[*status as usize])?;
                (&k_claim, o.s(*subject), o.s(*party))
            }
            Tr::Owner { subject, owner, previous } => {
                detail.set_item(&k_owner, o.opt(*owner))?;
                detail.set_item(&k_previous, o.opt(*previous))?;
                (&k_owner, o.s(*subject), none.clone())
            }
            Tr::Expectation { subject, party, spec, due } => {
                let types = match awaits.get(spec) {
                    Some(t) => t.clone(),
                    None => {
                        let names: Vec<Bound<'py, PyAny>> =
                            w.p.specs[*spec].types.iter().map(|t| o.s(*t)).collect();
                        let t = PyTuple::new(py, names)?.into_any();
                        untrack(&t);
                        awaits.insert(*spec, t.clone());
                        t
                    }
                };
                detail.set_item(&k_awaits, types)?;
                detail.set_item(&k_due, *due)?;
                (&k_expectation, o.opt(*subject), o.val(*party)?)
            }
            Tr::Flag { subject, flag, value } => {
                detail.set_item(&k_flag, o.s(*flag))?;
                detail.set_item(&k_value, o.val(*value)?)?;
                (&k_flag, o.s(*subject), none.clone())
            }
            Tr::Cancelled { pend, by } => {
                let pe = &w.pend[*pend];
                let what = pe.obligation.map(|o| w.obligations[o].what);
                detail.set_item(&k_status, "cancelled")?;
                detail.set_item("what", o.opt(what))?;
                detail.set_item("by", ids[*by].clone())?;
                (&k_obligation, o.opt(pe.subject), o.val(pe.party)?)
            }
            Tr::Reject { subject, text } => {
                detail.set_item("reason", o.s(*text))?;
                (&k_reject, o.opt(*subject), none.clone())
            }
            Tr::Penalty(i) => {
                let r = &w.penalties[*i];
                if let Some(d) = details[*i].take() {
                    detail = d;
                }
                (&k_penalty, o.opt(r.subject), o.s(r.party))
            }
            Tr::Counter { subject, party, name, value } => {
                detail.set_item(&k_counter, o.s(*name))?;
                detail.set_item(&k_value, value.to_string())?;
                (&k_counter, o.opt(*subject), o.s(*party))
            }
        };
        let items: [Bound<'py, PyAny>; 7] = [
            row.at.into_pyobject(py)?.into_any(),
            kind.clone().into_any(),
            subject,
            party,
            refs[row.rule].clone(),
            causes(row.causes)?,
            detail.into_any(),
        ];
        trace.append(named(py, trace_row, items)?)?;
    }
    let obligations = PyList::empty(py);
    for ob in &w.obligations {
        let opt_int = |v: Option<i64>| -> PyResult<Bound<'py, PyAny>> {
            Ok(match v {
                Some(i) => i.into_pyobject(py)?.into_any(),
                None => py.None().into_bound(py),
            })
        };
        let met_by = match ob.met_by {
            Some(e) => ids[e].clone(),
            None => none.clone(),
        };
        let items: [Bound<'py, PyAny>; 13] = [
            refs[ob.rule].clone(),
            o.s(ob.what),
            o.val(ob.party)?,
            o.opt(ob.subject),
            ob.opened.into_pyobject(py)?.into_any(),
            none.clone(),
            opt_int(ob.due)?,
            ob.inclusive.into_pyobject(py)?.to_owned().into_any(),
            (ob.status as i64).into_pyobject(py)?.into_any(),
            met_by,
            opt_int(ob.met_at)?,
            tuple(py, [ids[ob.trigger].clone()])?,
            true.into_pyobject(py)?.to_owned().into_any(),
        ];
        let record = obligation_record.call1(PyTuple::new(py, items)?)?;
        untrack(&record);
        obligations.append(record)?;
    }
    let fired = PyList::empty(py);
    for (r, count) in &w.fired {
        fired.append((o.s(w.p.rules[*r].id), *count))?;
    }
    let conflicts = PyList::empty(py);
    for c in &w.conflicts {
        let items: [Bound<'py, PyAny>; 6] = [
            ids[c.event].clone(),
            o.s(c.subject),
            o.opt(c.earlier.0),
            o.s(w.p.rules[c.earlier.1].id),
            o.opt(c.now.0),
            o.s(w.p.rules[c.now.1].id),
        ];
        conflicts.append(PyTuple::new(py, items)?)?;
    }
    PyTuple::new(
        py,
        [
            subjects.into_any(),
            trace.into_any(),
            obligations.into_any(),
            fired.into_any(),
            conflicts.into_any(),
            penalties.into_any(),
            party_counters.into_any(),
            rejections.into_any(),
        ],
    )
}
