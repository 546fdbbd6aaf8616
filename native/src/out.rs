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
            Val::Date(d) => PyString::new(self.py, &crate::dates::iso(d)).into_any(),
            // the IR reads a list only as the items of a `for_each`: it is never recorded
            Val::List(_) => return Err(pyo3::exceptions::PyTypeError::new_err("a list in a record")),
            // a decimal is only compared (the IR records none): the engine decides otherwise
            Val::Dec(..) => return Err(pyo3::exceptions::PyTypeError::new_err("a decimal in a record")),
        })
    }
}

/// The Python classes the records are made as (`runtime.records`): built here, so that no
/// intermediate tuple is unpacked in Python.
pub(crate) struct RowTypes {
    pub(crate) trace: Py<PyType>,      // TraceRow, a NamedTuple
    pub(crate) span: Py<PyAny>,        // SpanRecord
    pub(crate) obligation: Py<PyAny>,  // ObligationRow, a NamedTuple (as decisions show it)
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

/// A tuple of `items`, off the cyclic collector's lists.
pub(crate) fn tuple_of<'py>(
    py: Python<'py>,
    items: impl IntoIterator<Item = Bound<'py, PyAny>, IntoIter: ExactSizeIterator>,
) -> PyResult<Bound<'py, PyAny>> {
    let t = PyTuple::new(py, items)?.into_any();
    untrack(&t);
    Ok(t)
}

/// An instance of the tuple subclass `cls` (a NamedTuple) holding `items`, as `tuple.__new__`
/// makes it, without the plain tuple it would copy.
pub(crate) fn named<'py, const N: usize>(
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
    all: Vec<Bound<'py, PyAny>>,
    refs: &[Bound<'py, PyAny>],
    types: &RowTypes,
) -> PyResult<Bound<'py, PyTuple>> {
    let ids = &all[..];
    let mut o = Out { py, names: &w.strings.names, cache: vec![None; w.strings.names.len()] };
    let none = py.None().into_bound(py);
    let span_record = types.span.bind(py);
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
    let counters = |o: &mut Out<'py, '_>, table: &[(u32, i64)], owner: (bool, u32)| -> PyResult<Bound<'py, PyAny>> {
        let d = PyDict::new(py);
        for (name, v) in table {
            let exp = w.counter_exp_of((owner.0, owner.1, *name));
            let value = if exp == 0 { decimal.call1((*v,))? } else { crate::counters::decimal(py, *v, exp)? };
            d.set_item(o.s(*name), value)?;
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
        let (mut low, mut high) = match r.amount {
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
        details.push(detail);
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
        party_counters.append(tuple(py, [o.s(*party), counters(&mut o, table, (true, *party))?])?)?;
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
            flags.set_item(o.s(*name), crate::value::flag_value(&mut o, w, *name, *v)?)?;
        }
        let own = counters(&mut o, &s.counters, (false, s.id))?;
        subjects.append(tuple(py, [o.s(s.id), spans.into_any(), flags.into_any(), own])?)?;
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
    let [labels, classified, broken] = crate::label::rows(&mut o, w, ids)?;
    let breaches = crate::value::breaches(py, &mut o, w, ids, refs)?.into_any();
    let metrics = crate::metric::rows(&mut o, w)?;
    // last, as it takes the ids (the rows name events through them)
    let (trace, obligations) = crate::rows::trace_rows(&mut o, w, all, refs, types, details)?;
    PyTuple::new(
        py,
        [
            subjects.into_any(),
            trace,
            obligations,
            fired.into_any(),
            conflicts.into_any(),
            penalties.into_any(),
            party_counters.into_any(),
            rejections.into_any(),
            breaches,
            labels,
            metrics,
            classified,
            broken,
        ],
    )
}
