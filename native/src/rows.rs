//! The trace and the obligations of a decision, kept in the core: one row of fixed width per
//! entry (interned texts, i64 instants), made into the engine's own `TraceRow` or
//! `ObligationRow` only when Python reads it.
//!
//! A long history's trace is tens of thousands of entries, each a named tuple, a detail dict
//! and a tuple of causes on the Python heap (several hundred bytes), while most callers read
//! an owner or two and never the trace. `TraceRows` is a read-only sequence (`len`, an index,
//! a slice, iteration) handing out the same `TraceRow` objects the Python engine appends, so
//! every consumer reads it as the engine's list; pickling and copying give that list.
//! `ObligationRows` does the same for the obligations, as `records.reported` shows them.

use crate::eval::{Causes, Tr, World};
use crate::fx::FxMap;
use crate::ir::{Val, CLAIM_STATUS};
use crate::out::{named, Out, RowTypes};
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PyInt, PyList, PySlice, PyString, PyTuple, PyType};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const NONE: u32 = u32::MAX;

/// A value of a row: nothing, a yes/no, a whole number, a text (an index into
/// `TraceRows::texts`) or an instant flag's value (made a `times.Instant`).
#[derive(Clone, Copy)]
enum Cell {
    None,
    Bool(bool),
    Int(i64),
    Text(u32),
    Instant(i64),
}

/// What a row's `detail` holds, by kind (texts as indexes into `TraceRows::texts`).
enum Detail {
    Claim { status: u8 },
    Owner { owner: u32, previous: u32 }, // texts, or NONE
    Expectation { awaits: u32, due: Option<i64> },
    Flag { flag: u32, value: Cell },
    Cancelled { what: Cell, by: u32 },
    Reject { reason: u32 },
    Penalty(u32), // an index into `TraceRows::dicts`
    Violation { what: u32 },
    Counter { name: u32, value: i64 },
    DecCounter { name: u32, value: u32 }, // the running total as `str(Decimal)` gives it
}

struct Row {
    at: i64,
    rule: u32,
    causes: (u32, u32), // event indexes; NONE: one cause
    subject: u32,       // a text, or NONE
    party: Cell,
    detail: Detail,
}

/// What the rows of one decision share: the texts they name, once each, the event ids as
/// given and the rules' references.
struct Pool {
    texts: Vec<Py<PyString>>,
    ids: Vec<Py<PyAny>>,
    refs: Vec<Py<PyAny>>,
}

impl Pool {
    fn text<'py>(&self, py: Python<'py>, i: u32) -> Bound<'py, PyAny> {
        self.texts[i as usize].bind(py).clone().into_any()
    }

    fn opt<'py>(&self, py: Python<'py>, i: u32) -> Bound<'py, PyAny> {
        if i == NONE {
            py.None().into_bound(py)
        } else {
            self.text(py, i)
        }
    }

    fn id<'py>(&self, py: Python<'py>, i: u32) -> Bound<'py, PyAny> {
        self.ids[i as usize].bind(py).clone()
    }
}

// the kinds, then the other keys of the details, as `KEYS` lists them
const KINDS: [&str; 9] = [
    "claim",
    "owner",
    "expectation",
    "flag",
    "obligation",
    "reject",
    "penalty",
    "violation",
    "counter",
];
const KEYS: [&str; 9] = [
    "status", "owner", "previous", "awaits", "due", "flag", "value", "what", "by",
];
const K_STATUS: usize = 0;
const K_OWNER: usize = 1;
const K_PREVIOUS: usize = 2;
const K_AWAITS: usize = 3;
const K_DUE: usize = 4;
const K_FLAG: usize = 5;
const K_VALUE: usize = 6;
const K_WHAT: usize = 7;
const K_BY: usize = 8;

/// A decision's trace: `TraceRow`s made on access from the rows kept here.
#[pyclass(frozen, sequence, module = "policyengine_native")]
pub(crate) struct TraceRows {
    rows: Vec<Row>,
    pool: Arc<Pool>,
    awaits: Vec<Py<PyAny>>, // the awaited types' tuples, one per expectation's step
    dicts: Vec<Py<PyDict>>, // a penalty's detail (copied on each access)
    kinds: Vec<Py<PyString>>,
    keys: Vec<Py<PyString>>,
    statuses: Vec<Py<PyString>>, // a claim's, then "cancelled"
    extra: [Py<PyString>; 3],    // "reason", "counter" and "what" (a violation's)
    trace_row: Py<PyType>,
    instant: Py<PyAny>,
}

/// Makes the rows from a World: texts through `Out` (shared with the other records), each
/// interned once in the table the rows index.
struct Builder<'o, 'py, 'a> {
    o: &'o mut Out<'py, 'a>,
    local: FxMap<u32, u32>,
    texts: Vec<Py<PyString>>,
}

impl Builder<'_, '_, '_> {
    fn text(&mut self, sym: u32) -> PyResult<u32> {
        if let Some(i) = self.local.get(&sym) {
            return Ok(*i);
        }
        let s = self.o.s(sym).cast_into::<PyString>()?.unbind();
        let i = self.texts.len() as u32;
        self.texts.push(s);
        self.local.insert(sym, i);
        Ok(i)
    }

    fn opt(&mut self, sym: Option<u32>) -> PyResult<u32> {
        Ok(match sym {
            Some(s) => self.text(s)?,
            None => NONE,
        })
    }

    /// A text of no symbol (a number shown as text), kept as its own entry.
    fn own(&mut self, text: String) -> u32 {
        let py = self.o.py;
        self.texts.push(PyString::new(py, &text).unbind());
        (self.texts.len() - 1) as u32
    }

    fn cell(&mut self, sym: Option<u32>) -> PyResult<Cell> {
        Ok(match sym {
            Some(s) => Cell::Text(self.text(s)?),
            None => Cell::None,
        })
    }

    /// `Out::val`'s value, as a cell (the same errors for what a record never holds).
    fn val(&mut self, v: Val) -> PyResult<Cell> {
        Ok(match v {
            Val::Null => Cell::None,
            Val::Bool(b) => Cell::Bool(b),
            Val::Int(i) => Cell::Int(i),
            Val::Str(s) => Cell::Text(self.text(s)?),
            Val::Date(d) => Cell::Text(self.own(crate::dates::iso(d))),
            Val::List(_) => return Err(PyTypeError::new_err("a list in a record")),
            Val::Dec(..) => return Err(PyTypeError::new_err("a decimal in a record")),
        })
    }
}

fn causes(c: Causes) -> (u32, u32) {
    (c.0 as u32, c.1.map_or(NONE, |b| b as u32))
}

/// The trace of `w` as a `TraceRows` and its obligations as an `ObligationRows`;
/// `penalty_details`: each penalty's detail dict, as the penalties were made.
pub(crate) fn trace_rows<'py>(
    o: &mut Out<'py, '_>,
    w: &World,
    ids: Vec<Bound<'py, PyAny>>,
    refs: &[Bound<'py, PyAny>],
    types: &RowTypes,
    penalty_details: Vec<Bound<'py, PyDict>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let py = o.py;
    let mut b = Builder {
        o,
        local: FxMap::default(),
        texts: Vec::new(),
    };
    let mut awaits_ix: FxMap<(usize, Option<usize>), u32> = FxMap::default();
    let mut awaits: Vec<Py<PyAny>> = Vec::new();
    let mut rows = Vec::with_capacity(w.trace.len());
    for row in &w.trace {
        let (subject, party, detail) = match &row.tr {
            Tr::Claim {
                subject,
                party,
                status,
            } => (
                b.text(*subject)?,
                Cell::Text(b.text(*party)?),
                Detail::Claim { status: *status },
            ),
            Tr::Owner {
                subject,
                owner,
                previous,
            } => {
                let d = Detail::Owner {
                    owner: b.opt(*owner)?,
                    previous: b.opt(*previous)?,
                };
                (b.text(*subject)?, Cell::None, d)
            }
            Tr::Expectation {
                subject,
                party,
                spec,
                step,
                due,
            } => {
                let ix = match awaits_ix.get(&(*spec, *step)) {
                    Some(i) => *i,
                    None => {
                        let sp = &w.p.specs[*spec];
                        let list = step.map_or(&sp.types, |i| &sp.steps[i].types);
                        let names: Vec<Bound<'py, PyAny>> =
                            list.iter().map(|t| b.o.s(*t)).collect();
                        let i = awaits.len() as u32;
                        awaits.push(crate::out::tuple_of(py, names)?.unbind());
                        awaits_ix.insert((*spec, *step), i);
                        i
                    }
                };
                let d = Detail::Expectation {
                    awaits: ix,
                    due: *due,
                };
                (b.opt(*subject)?, b.val(*party)?, d)
            }
            Tr::Flag {
                subject,
                flag,
                value,
            } => {
                let value = match value {
                    Val::Int(us) if w.p.instant_flags.contains(flag) => Cell::Instant(*us),
                    v => b.val(*v)?,
                };
                (
                    b.text(*subject)?,
                    Cell::None,
                    Detail::Flag {
                        flag: b.text(*flag)?,
                        value,
                    },
                )
            }
            Tr::Cancelled { pend, by } => {
                let pe = &w.pend[*pend];
                let what = pe.obligation.map(|o| w.obligations[o].what);
                let d = Detail::Cancelled {
                    what: b.cell(what)?,
                    by: *by as u32,
                };
                (b.opt(pe.subject)?, b.val(pe.party)?, d)
            }
            Tr::Reject { subject, text } => (
                b.opt(*subject)?,
                Cell::None,
                Detail::Reject {
                    reason: b.text(*text)?,
                },
            ),
            Tr::Penalty(i) => {
                let r = &w.penalties[*i];
                (
                    b.opt(r.subject)?,
                    Cell::Text(b.text(r.party)?),
                    Detail::Penalty(*i as u32),
                )
            }
            Tr::Violation {
                subject,
                party,
                what,
            } => (
                b.opt(*subject)?,
                b.val(*party)?,
                Detail::Violation {
                    what: b.text(*what)?,
                },
            ),
            Tr::Counter {
                subject,
                party,
                name,
                value,
            } => {
                let d = Detail::Counter {
                    name: b.text(*name)?,
                    value: *value,
                };
                (b.opt(*subject)?, Cell::Text(b.text(*party)?), d)
            }
            Tr::DecCounter {
                subject,
                party,
                name,
                value,
                exp,
            } => {
                let text = crate::counters::decimal(b.o.py, *value, *exp)?.str()?.to_string();
                let d = Detail::DecCounter {
                    name: b.text(*name)?,
                    value: b.own(text),
                };
                (b.opt(*subject)?, Cell::Text(b.text(*party)?), d)
            }
        };
        rows.push(Row {
            at: row.at,
            rule: row.rule as u32,
            causes: causes(row.causes),
            subject,
            party,
            detail,
        });
    }
    rows.shrink_to_fit();
    let mut obligations = Vec::with_capacity(w.obligations.len());
    for ob in &w.obligations {
        // `reported`'s party: None, or the value as text
        let party = match ob.party {
            Val::Null => NONE,
            Val::Str(s) => b.text(s)?,
            Val::Int(i) => b.own(i.to_string()),
            Val::Bool(x) => b.own(if x { "True" } else { "False" }.to_string()),
            Val::Date(d) => b.own(crate::dates::iso(d)),
            Val::List(_) => return Err(PyTypeError::new_err("a list in a record")),
            Val::Dec(..) => return Err(PyTypeError::new_err("a decimal in a record")),
        };
        obligations.push(Obligation {
            opened: ob.opened,
            start: ob.start,
            due: ob.due,
            met_at: ob.met_at,
            rule: ob.rule as u32,
            what: b.text(ob.what)?,
            party,
            subject: b.opt(ob.subject)?,
            met_by: ob.met_by.map_or(NONE, |e| e as u32),
            trigger: ob.trigger as u32,
            status: ob.status,
            inclusive: ob.inclusive,
            start_incl: ob.start_incl,
        });
    }
    let pool = Arc::new(Pool {
        texts: b.texts,
        ids: ids.into_iter().map(Bound::unbind).collect(), // moved: no id object touched
        refs: refs.iter().map(|r| r.clone().unbind()).collect(),
    });
    let interned = |list: &[&str]| {
        list.iter()
            .map(|s| PyString::intern(py, s).unbind())
            .collect::<Vec<_>>()
    };
    let mut statuses = interned(&CLAIM_STATUS);
    statuses.push(PyString::intern(py, "cancelled").unbind());
    let out = TraceRows {
        rows,
        pool: pool.clone(),
        awaits,
        dicts: penalty_details.into_iter().map(Bound::unbind).collect(),
        kinds: interned(&KINDS),
        keys: interned(&KEYS),
        statuses,
        extra: [
            PyString::intern(py, "reason").unbind(),
            PyString::intern(py, "counter").unbind(),
            PyString::intern(py, "what").unbind(),
        ],
        trace_row: types.trace.clone_ref(py),
        instant: py
            .import("policyengine.times")?
            .getattr("Instant")?
            .unbind(),
    };
    let obligations = ObligationRows {
        rows: obligations,
        pool,
        statuses: interned(&["open", "met", "overdue", "late", "cancelled"]),
        obligation_row: types
            .obligation
            .bind(py)
            .clone()
            .cast_into::<PyType>()?
            .unbind(),
    };
    Ok((
        Bound::new(py, out)?.into_any(),
        Bound::new(py, obligations)?.into_any(),
    ))
}

fn kind_of(d: &Detail) -> usize {
    match d {
        Detail::Claim { .. } => 0,
        Detail::Owner { .. } => 1,
        Detail::Expectation { .. } => 2,
        Detail::Flag { .. } => 3,
        Detail::Cancelled { .. } => 4,
        Detail::Reject { .. } => 5,
        Detail::Penalty(_) => 6,
        Detail::Violation { .. } => 7,
        Detail::Counter { .. } | Detail::DecCounter { .. } => 8,
    }
}

impl TraceRows {
    fn cell<'py>(&self, py: Python<'py>, c: Cell) -> PyResult<Bound<'py, PyAny>> {
        Ok(match c {
            Cell::None => py.None().into_bound(py),
            Cell::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            Cell::Int(i) => i.into_pyobject(py)?.into_any(),
            Cell::Text(i) => self.pool.text(py, i),
            Cell::Instant(us) => self.instant.bind(py).call1((us,))?,
        })
    }

    fn text<'py>(&self, py: Python<'py>, i: u32) -> Bound<'py, PyAny> {
        self.pool.text(py, i)
    }

    /// The `TraceRow` of row `i` (in range), as the engine makes it.
    fn row<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let r = &self.rows[i];
        let key = |k: usize| self.keys[k].bind(py);
        let detail = match &r.detail {
            Detail::Penalty(p) => self.dicts[*p as usize].bind(py).copy()?,
            d => {
                let detail = PyDict::new(py);
                match d {
                    Detail::Claim { status } => {
                        detail.set_item(key(K_STATUS), self.statuses[*status as usize].bind(py))?
                    }
                    Detail::Owner { owner, previous } => {
                        detail.set_item(key(K_OWNER), self.pool.opt(py, *owner))?;
                        detail.set_item(key(K_PREVIOUS), self.pool.opt(py, *previous))?;
                    }
                    Detail::Expectation { awaits, due } => {
                        detail.set_item(key(K_AWAITS), self.awaits[*awaits as usize].bind(py))?;
                        detail.set_item(key(K_DUE), *due)?;
                    }
                    Detail::Flag { flag, value } => {
                        detail.set_item(key(K_FLAG), self.text(py, *flag))?;
                        detail.set_item(key(K_VALUE), self.cell(py, *value)?)?;
                    }
                    Detail::Cancelled { what, by } => {
                        detail
                            .set_item(key(K_STATUS), self.statuses[CLAIM_STATUS.len()].bind(py))?;
                        detail.set_item(key(K_WHAT), self.cell(py, *what)?)?;
                        detail.set_item(key(K_BY), self.pool.id(py, *by))?;
                    }
                    Detail::Reject { reason } => {
                        detail.set_item(self.extra[0].bind(py), self.text(py, *reason))?
                    }
                    Detail::Violation { what } => {
                        detail.set_item(self.extra[2].bind(py), self.text(py, *what))?
                    }
                    Detail::Counter { name, value } => {
                        detail.set_item(self.extra[1].bind(py), self.text(py, *name))?;
                        detail.set_item(key(K_VALUE), value.to_string())?;
                    }
                    Detail::DecCounter { name, value } => {
                        detail.set_item(self.extra[1].bind(py), self.text(py, *name))?;
                        detail.set_item(key(K_VALUE), self.text(py, *value))?;
                    }
                    Detail::Penalty(_) => unreachable!("handled above"),
                }
                detail
            }
        };
        let p = &self.pool;
        let causes = if r.causes.1 == NONE {
            crate::out::tuple_of(py, [p.id(py, r.causes.0)])?
        } else {
            crate::out::tuple_of(py, [p.id(py, r.causes.0), p.id(py, r.causes.1)])?
        };
        let items: [Bound<'py, PyAny>; 7] = [
            r.at.into_pyobject(py)?.into_any(),
            self.kinds[kind_of(&r.detail)].bind(py).clone().into_any(),
            p.opt(py, r.subject),
            self.cell(py, r.party)?,
            p.refs[r.rule as usize].bind(py).clone(),
            causes.into_any(),
            detail.into_any(),
        ];
        named(py, self.trace_row.bind(py), items)
    }
}

/// An obligation as decisions show it (`records.ObligationRow`).
struct Obligation {
    opened: i64,
    start: Option<i64>,
    due: Option<i64>,
    met_at: Option<i64>,
    rule: u32,
    what: u32,
    party: u32,   // a text, or NONE
    subject: u32, // a text, or NONE
    met_by: u32,  // an event, or NONE
    trigger: u32,
    status: u8,
    inclusive: bool,
    start_incl: bool,
}

/// A decision's obligations: `ObligationRow`s made on access from the rows kept here.
#[pyclass(frozen, sequence, module = "policyengine_native")]
pub(crate) struct ObligationRows {
    rows: Vec<Obligation>,
    pool: Arc<Pool>,
    statuses: Vec<Py<PyString>>, // `records.STATUS`, by status
    obligation_row: Py<PyType>,
}

impl ObligationRows {
    fn row<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let r = &self.rows[i];
        let p = &self.pool;
        let instant = |v: Option<i64>| -> PyResult<Bound<'py, PyAny>> {
            Ok(match v {
                Some(us) => us.into_pyobject(py)?.into_any(),
                None => py.None().into_bound(py),
            })
        };
        let met_by = if r.met_by == NONE {
            py.None().into_bound(py)
        } else {
            p.id(py, r.met_by)
        };
        let items: [Bound<'py, PyAny>; 13] = [
            p.refs[r.rule as usize].bind(py).clone(),
            p.text(py, r.what),
            p.opt(py, r.party),
            p.opt(py, r.subject),
            r.opened.into_pyobject(py)?.into_any(),
            instant(r.start)?,
            instant(r.due)?,
            r.inclusive.into_pyobject(py)?.to_owned().into_any(),
            self.statuses[r.status as usize].bind(py).clone().into_any(),
            met_by,
            instant(r.met_at)?,
            crate::out::tuple_of(py, [p.id(py, r.trigger)])?,
            r.start_incl.into_pyobject(py)?.to_owned().into_any(),
        ];
        named(py, self.obligation_row.bind(py), items)
    }
}

/// A sequence's protocol over its `row(py, i)` and `rows`: `len`, an index (negative: from
/// the end) or a slice (a list), iteration, equality with a list of the same rows, and
/// pickling (and copying) as that list.
macro_rules! sequence {
    ($t:ident, $seq:ident) => {
        impl $t {
            fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
                let out = PyList::empty(py);
                for i in 0..self.rows.len() {
                    out.append(self.row(py, i)?)?;
                }
                Ok(out)
            }
        }

        #[pymethods]
        impl $t {
            fn __len__(&self) -> usize {
                self.rows.len()
            }

            fn __getitem__<'py>(
                &self,
                py: Python<'py>,
                index: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, PyAny>> {
                if let Ok(slice) = index.cast::<PySlice>() {
                    let s = slice.indices(self.rows.len() as isize)?;
                    let out = PyList::empty(py);
                    let mut i = s.start;
                    for _ in 0..s.slicelength {
                        out.append(self.row(py, i as usize)?)?;
                        i += s.step;
                    }
                    return Ok(out.into_any());
                }
                if !index.is_instance_of::<PyInt>() {
                    return Err(PyTypeError::new_err("indices must be integers or slices"));
                }
                // an int beyond isize is out of range, as a list says
                let i: isize = index.extract().unwrap_or(isize::MAX);
                let n = self.rows.len() as isize;
                let j = if i < 0 { i + n } else { i };
                if j < 0 || j >= n {
                    return Err(PyIndexError::new_err("index out of range"));
                }
                self.row(py, j as usize)
            }

            fn __iter__(slf: Bound<'_, Self>) -> RowIter {
                RowIter {
                    rows: Rows::$seq(slf.unbind()),
                    next: AtomicUsize::new(0),
                }
            }

            fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
                let list_type = py.get_type::<PyList>().into_any();
                PyTuple::new(
                    py,
                    [list_type, PyTuple::new(py, [self.list(py)?])?.into_any()],
                )
            }

            fn __richcmp__<'py>(
                &self,
                py: Python<'py>,
                other: &Bound<'py, PyAny>,
                op: CompareOp,
            ) -> PyResult<Bound<'py, PyAny>> {
                let other = if let Ok(rows) = other.cast::<$t>() {
                    rows.get().list(py)?.into_any()
                } else if other.is_instance_of::<PyList>() {
                    other.clone()
                } else {
                    return Ok(py.NotImplemented().into_bound(py));
                };
                self.list(py)?.into_any().rich_compare(other, op)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                Ok(self.list(py)?.repr()?.to_string())
            }
        }
    };
}

sequence!(TraceRows, Trace);
sequence!(ObligationRows, Obligations);

enum Rows {
    Trace(Py<TraceRows>),
    Obligations(Py<ObligationRows>),
}

/// The iterator of a sequence of rows: one row made per step.
#[pyclass(frozen, module = "policyengine_native")]
pub(crate) struct RowIter {
    rows: Rows,
    next: AtomicUsize,
}

impl RowIter {
    fn len(&self) -> usize {
        match &self.rows {
            Rows::Trace(t) => t.get().rows.len(),
            Rows::Obligations(o) => o.get().rows.len(),
        }
    }
}

#[pymethods]
impl RowIter {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let n = self.len();
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            self.next.store(n, Ordering::Relaxed);
            return Ok(None);
        }
        match &self.rows {
            Rows::Trace(t) => t.get().row(py, i).map(Some),
            Rows::Obligations(o) => o.get().row(py, i).map(Some),
        }
    }

    fn __length_hint__(&self) -> usize {
        self.len().saturating_sub(self.next.load(Ordering::Relaxed))
    }
}
// the widths the rows are kept at (a trace row per event or more: the bulk of a decision)
const _: () = assert!(std::mem::size_of::<Row>() <= 64);
const _: () = assert!(std::mem::size_of::<Obligation>() <= 88);
