//! Values beyond the first core's: `coalesce`, `flag_of`, `first` of a `values` query, and
//! the `violation` action, each as `expression_compiler` and the engine compute them.

use crate::eval::{Causes, Ctx, Tr, World};
use crate::ir::*;
use crate::out::Out;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use serde_json::Value as J;

/// A breach recorded (`ViolationRow`): its text, the party's value (made text on the way out,
/// as `str(party)`), the subject, the event (or the duty's trigger), when, by which rule.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Breach {
    pub(crate) what: u32,
    pub(crate) party: Val,
    pub(crate) subject: Option<u32>,
    pub(crate) event: Option<usize>,
    pub(crate) at: i64,
    pub(crate) rule: usize,
    pub(crate) causes: Causes,
}

impl Loader {
    /// The values this file adds, or None where `v` is none of them.
    pub(crate) fn value_op(&mut self, v: &J) -> Res<Option<Op>> {
        if let Some(items) = v.get("coalesce") {
            let items = items.as_array().ok_or("coalesce takes a list")?;
            return Ok(Some(Op::Coalesce(items.iter().map(|x| self.op(x)).collect::<Res<_>>()?)));
        }
        if let Some(who) = v.get("flag_of") {
            let name = self.strings.sym(text(get(v, "name")?)?);
            return Ok(Some(Op::FlagOf(Box::new(self.op(who)?), name)));
        }
        if let Some(q) = v.get("first") {
            let query = self.query(q)?;
            let field = self.slot(text(get(v, "field")?)?);
            let last = match get(v, "last")? {
                J::Null => None,
                n => Some(n.as_i64().ok_or("a `last` count")?),
            };
            return Ok(Some(Op::First(Box::new(query), field, last)));
        }
        if let Some(q) = v.get("values_of") {
            let query = self.query(q)?;
            let field = self.slot(text(get(v, "field")?)?);
            return Ok(Some(Op::ValuesOf(Box::new(query), field)));
        }
        if let Some(terms) = v.get("sum") {
            let terms = terms.as_array().ok_or("sum takes a list")?;
            return Ok(Some(Op::Sum(terms.iter().map(|x| self.op(x)).collect::<Res<_>>()?)));
        }
        if let Some(code) = v.get("fold") {
            let code = ["min", "max"].iter().position(|x| Some(*x) == code.as_str()).ok_or("fold")?;
            let terms = get(v, "terms")?.as_array().ok_or("terms")?;
            return Ok(Some(Op::Fold(code as u8, terms.iter().map(|x| self.op(x)).collect::<Res<_>>()?)));
        }
        if let Some(code) = v.get("arith") {
            let code = ["add", "sub", "mul"].iter().position(|x| Some(*x) == code.as_str()).ok_or("arith")?;
            let args = get(v, "args")?.as_array().ok_or("args")?;
            return Ok(Some(Op::Arith(code as u8, args.iter().map(|x| self.op(x)).collect::<Res<_>>()?)));
        }
        Ok(None)
    }

    pub(crate) fn violation(&mut self, v: &J) -> Res<Kind> {
        let what = self.strings.sym(text(get(v, "what")?)?);
        Ok(Kind::Violation { what, party: self.op(get(v, "party")?)? })
    }
}

impl<'p> World<'p> {
    /// The first option not null, in order (the later ones not computed).
    pub(crate) fn coalesce(&self, items: &[Op], c: &Ctx) -> Res<Val> {
        for op in items {
            let v = self.val(op, c)?;
            if v != Val::Null {
                return Ok(v);
            }
        }
        Ok(Val::Null)
    }

    /// `flag_of`: the flag of the subject named by text, null for any other value or where
    /// that subject is unknown or has no such flag.
    pub(crate) fn flag_of(&self, who: &Op, name: u32, c: &Ctx) -> Res<Val> {
        let Val::Str(sid) = self.val(who, c)? else { return Ok(Val::Null) };
        Ok(match self.subject_ix.get(&sid) {
            Some(&s) => self.subjects[s].flags.iter().find(|(n, _)| *n == name).map_or(Val::Null, |(_, v)| *v),
            None => Val::Null,
        })
    }

    /// The matches of a history query as `Queries.history` walks them: the types in order,
    /// each newest first; `f(event, its type's list)` until it says stop (false).
    pub(crate) fn scan(&self, q: &CountQ, c: &Ctx, mut f: impl FnMut(usize, &[usize]) -> bool) -> Res<()> {
        let mut lower = i64::MIN;
        let mut exact_from = i64::MIN;
        if let Some(b) = q.back {
            (lower, exact_from) = crate::cal::look_back(b, c.now).ok_or("a look-back out of range")?;
        }
        if let Some(since) = &q.since {
            if let Val::Int(s) = self.val(since, c)? {
                lower = lower.max(s);
            }
        }
        let want: Vec<(usize, Val)> =
            q.matches.iter().map(|(f, op)| Ok((*f, self.val(op, c)?))).collect::<Res<_>>()?;
        let sv = match &q.subject {
            Some(op) => Some(self.val(op, c)?),
            None => None,
        };
        for t in &q.types {
            let list = match sv {
                Some(Val::Str(s)) => self.hist_subj.get(&(s, *t)),
                Some(_) => None,
                None => self.hist_type.get(t),
            };
            let Some(list) = list else { continue };
            for &e in list.iter().rev() {
                let at = self.ev.at(e);
                if at < lower {
                    break;
                }
                if at < exact_from {
                    let b = q.back.ok_or("a look-back without its bounds")?;
                    if !crate::cal::covers(b, at, c.now).ok_or("a look-back out of range")? {
                        continue;
                    }
                }
                if want.iter().all(|(f, v)| py_eq(self.ev.val(e, *f), *v)) && !f(e, list) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// `values`: the field of every match, in `scan`'s order.
    pub(crate) fn values_of(&self, q: &CountQ, field: Field, c: &Ctx) -> Res<Vec<Val>> {
        let mut out = Vec::new();
        self.scan(q, c, |e, _| {
            out.push(self.ev.get(e, field, &self.ids));
            true
        })?;
        Ok(out)
    }

    /// `first` of `values`: without `last`, the first match `scan` finds; with `last` (at
    /// least one), the newest match of all, the earliest written among those at the same
    /// instant (`Queries.history`'s stable sort over the types' lists in order).
    pub(crate) fn first_of(&self, q: &CountQ, field: Field, last: Option<i64>, c: &Ctx) -> Res<Val> {
        if last == Some(0) {
            return Ok(Val::Null);
        }
        let mut best: Option<usize> = None;
        let ev = &self.ev;
        self.scan(q, c, |e, list| {
            match best {
                // newest first within a list: an equal instant further on was written earlier
                Some(b) if ev.at(b) > ev.at(e) => {}
                Some(b) if ev.at(b) == ev.at(e) && !self.in_list(list, b) => {}
                _ => best = Some(e),
            }
            last.is_some()
        })?;
        Ok(best.map_or(Val::Null, |e| self.ev.get(e, field, &self.ids)))
    }

    fn in_list(&self, list: &[usize], e: usize) -> bool {
        list.binary_search(&e).is_ok()
    }

    /// The engine's `violation`: a row, and its trace entry (the party as it is there).
    pub(crate) fn violate(&mut self, what: u32, party: &Op, c: &Ctx, rule: usize, causes: Causes) -> Res<()> {
        let party = self.val(party, c)?;
        if matches!(party, Val::List(_)) {
            return Err("a list as a violation's party".into());
        }
        self.violations.push(Breach {
            what,
            party,
            subject: c.subject,
            event: c.event.or(c.trigger),
            at: self.now,
            rule,
            causes,
        });
        self.trace(rule, causes, Tr::Violation { subject: c.subject, party, what });
        Ok(())
    }
}

/// The breaches as `ViolationRow`'s fields: `(what, party, subject, event, at, rule, causes)`,
/// the party as `str(party)` (None for null), the text `violation` where none was written.
pub(crate) fn breaches<'py>(
    py: Python<'py>,
    o: &mut Out<'py, '_>,
    w: &World,
    ids: &[Bound<'py, PyAny>],
    refs: &[Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    let none = py.None().into_bound(py);
    for b in &w.violations {
        let what = if w.strings.names[b.what as usize].is_empty() {
            PyString::new(py, "violation").into_any()
        } else {
            o.s(b.what)
        };
        let party = match b.party {
            Val::Null => none.clone(),
            Val::Str(s) => o.s(s),
            Val::Int(i) => PyString::new(py, &i.to_string()).into_any(),
            Val::Bool(x) => PyString::new(py, if x { "True" } else { "False" }).into_any(),
            Val::Date(d) => PyString::new(py, &crate::dates::iso(d)).into_any(),
            Val::List(_) | Val::Dec(..) => {
                return Err(pyo3::exceptions::PyTypeError::new_err("a list or a decimal as a party"))
            }
        };
        let event = b.event.map_or_else(|| none.clone(), |e| ids[e].clone());
        let causes = match b.causes.1 {
            None => PyTuple::new(py, [ids[b.causes.0].clone()])?,
            Some(x) => PyTuple::new(py, [ids[b.causes.0].clone(), ids[x].clone()])?,
        };
        let items: [Bound<'py, PyAny>; 7] = [
            what,
            party,
            o.opt(b.subject),
            event,
            b.at.into_pyobject(py)?.into_any(),
            refs[b.rule].clone(),
            causes.into_any(),
        ];
        out.append(PyTuple::new(py, items)?)?;
    }
    Ok(out)
}

/// The IR's `instant_flags` (absent: none).
pub(crate) fn instant_flags(ir: &J, ld: &mut Loader) -> Res<crate::fx::FxSet<u32>> {
    match ir.get("instant_flags") {
        None | Some(J::Null) => Ok(Default::default()),
        Some(names) => names
            .as_array()
            .ok_or("instant_flags are a list")?
            .iter()
            .map(|n| Ok(ld.strings.sym(text(n)?)))
            .collect(),
    }
}

/// A flag's value as the engine holds it: a whole number of a flag set to instants is a
/// `times.Instant` (the decision shows it as a time).
pub(crate) fn flag_value<'py>(o: &mut Out<'py, '_>, w: &World, name: u32, v: Val) -> PyResult<Bound<'py, PyAny>> {
    match v {
        Val::Int(us) if w.p.instant_flags.contains(&name) => {
            o.py.import("policyengine.times")?.getattr("Instant")?.call1((us,))
        }
        _ => o.val(v),
    }
}

/// An amount looked up: the key's value, and each row's name and amount (low, high).
pub(crate) type Table = (Op, Vec<(u32, (u32, u32))>);

impl Loader {
    /// `{key, table}`: an amount looked up in a table parameter, its rows as exact text.
    pub(crate) fn table(&mut self, v: &J) -> Res<Table> {
        let key = self.op(get(v, "key")?)?;
        let mut rows = Vec::new();
        for row in get(v, "table")?.as_array().ok_or("a table is a list")? {
            let name = self.strings.sym(text(&row[0])?);
            rows.push((name, self.range(&row[1])?.ok_or("a table row without an amount")?));
        }
        Ok((key, rows))
    }
}

impl<'p> World<'p> {
    /// The amount of the step taken: written, or looked up by its key (a key the table lacks
    /// is the engine's `_money` error: it decides).
    pub(crate) fn amount_of(&self, step: &Step, c: &Ctx) -> Res<Option<(u32, u32)>> {
        let Some((key, rows)) = &step.table else { return Ok(step.amount) };
        let Val::Str(k) = self.val(key, c)? else {
            return Err("a penalty's amount looked up by no text".into());
        };
        match rows.iter().find(|(name, _)| *name == k) {
            Some((_, amount)) => Ok(Some(*amount)),
            None => Err("a penalty's amount looked up by a key its table lacks".into()),
        }
    }
}
