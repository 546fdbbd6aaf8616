//! Labels. Without `on:` (`World.finish`): at the horizon, every subject in the order it was
//! first seen, each label the value of its first case that holds (the subject and the whole
//! history, no event; `$now` the horizon), null where none does. With `on:`
//! (`World.classify`): each such event, once its rejecting rules let it through and before
//! its duties are settled, classifies what `subject` names (default: its subject) by the
//! first case that holds; the latest value per thing joins the labels at the horizon.
//! Invariants (`World.finish`): at the horizon, the subjects for which one does not hold.

use crate::eval::{Ctx, World};
use crate::fx::FxMap;
use crate::ir::{get, text, Cond, Loader, Op, Res, Val};
use crate::out::Out;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use serde_json::Value as J;

pub(crate) struct Label {
    pub(crate) name: u32,
    pub(crate) cases: Vec<(u32, Cond, Option<u32>)>, // value, when, reason
    pub(crate) on: Vec<u32>,                         // empty: at the horizon
    pub(crate) subject: Option<Op>,                  // what an event classifies
}

/// One classification (`ClassificationRow`): the label's index, what it classified, the
/// value and reason (None: no case held), the event and its instant, the event's subject.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Classified {
    pub(crate) label: usize,
    pub(crate) key: u32,
    pub(crate) value: Option<u32>,
    pub(crate) reason: Option<u32>,
    pub(crate) event: usize,
    pub(crate) at: i64,
    pub(crate) subject: Option<u32>,
}

/// What the events classified one thing as: per label (its index), the latest value.
pub(crate) type Found = Vec<(usize, Option<u32>)>;

/// Per event type, the labels its events classify (`CompiledPolicy.classifying`).
pub(crate) fn classifying(labels: &[Label]) -> FxMap<u32, Vec<usize>> {
    let mut out: FxMap<u32, Vec<usize>> = FxMap::default();
    for (i, lab) in labels.iter().enumerate() {
        for t in &lab.on {
            out.entry(*t).or_default().push(i);
        }
    }
    out
}

impl Loader {
    /// The IR's `invariants` (absent: none): `(id, holds)`.
    pub(crate) fn invariants(&mut self, ir: &J) -> Res<Vec<(u32, Cond)>> {
        let Some(list) = ir.get("invariants") else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for inv in list.as_array().ok_or("invariants")? {
            out.push((
                self.strings.sym(text(get(inv, "id")?)?),
                self.cond(get(inv, "holds")?)?,
            ));
        }
        Ok(out)
    }

    /// The IR's `labels` (absent: none).
    pub(crate) fn labels(&mut self, ir: &J) -> Res<Vec<Label>> {
        let Some(list) = ir.get("labels") else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for lab in list.as_array().ok_or("labels")? {
            let name = self.strings.sym(text(get(lab, "name")?)?);
            let mut cases = Vec::new();
            for case in get(lab, "cases")?.as_array().ok_or("label cases")? {
                let value = self.strings.sym(text(get(case, "value")?)?);
                let reason = match get(case, "reason")? {
                    J::Null => None,
                    r => Some(self.strings.sym(text(r)?)),
                };
                cases.push((value, self.cond(get(case, "when")?)?, reason));
            }
            let on = self.types(get(lab, "on")?)?;
            let subject = match get(lab, "subject")? {
                J::Null => None,
                op => Some(self.op(op)?),
            };
            out.push(Label {
                name,
                cases,
                on,
                subject,
            });
        }
        Ok(out)
    }
}

impl World<'_> {
    /// `World.finish`'s invariants: per invariant broken (in the order first broken), the
    /// subjects breaking it, subject by subject in the order first seen.
    pub(crate) fn broken_at(&self, horizon: i64) -> Res<Vec<(u32, Vec<u32>)>> {
        let mut out: Vec<(u32, Vec<u32>)> = Vec::new();
        for (i, s) in self.subjects.iter().enumerate() {
            let c = Ctx {
                now: horizon,
                event: None,
                trigger: None,
                subject: Some(s.id),
                subj: Some(i),
                party: Val::Null,
                item: Val::Null,
            };
            for (name, holds) in &self.p.invariants {
                if !self.holds(holds, &c)? {
                    match out.iter_mut().find(|(n, _)| n == name) {
                        Some(x) => x.1.push(s.id),
                        None => out.push((*name, vec![s.id])),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Each subject's label values at the horizon, as `World.finish` gives them.
    pub(crate) fn label_all(&self, horizon: i64) -> Res<Vec<Vec<Option<u32>>>> {
        let labels: Vec<&Label> = self.p.labels.iter().filter(|l| l.on.is_empty()).collect();
        let mut out = Vec::with_capacity(if labels.is_empty() {
            0
        } else {
            self.subjects.len()
        });
        if labels.is_empty() {
            return Ok(out);
        }
        for (i, s) in self.subjects.iter().enumerate() {
            let c = Ctx {
                now: horizon,
                event: None,
                trigger: None,
                subject: Some(s.id),
                subj: Some(i),
                party: Val::Null,
                item: Val::Null,
            };
            let mut values = Vec::with_capacity(labels.len());
            for lab in &labels {
                let mut found = None;
                for (value, when, _) in &lab.cases {
                    if self.holds(when, &c)? {
                        found = Some(*value);
                        break;
                    }
                }
                values.push(found);
            }
            out.push(values);
        }
        Ok(out)
    }
}

impl World<'_> {
    /// `World.classify`: the labels of the event's type, on the event's context.
    pub(crate) fn classify(&mut self, e: usize, c: &Ctx) -> Res<()> {
        let prog = self.p;
        let Some(labs) = prog.classifying.get(&self.ev.ty(e)) else {
            return Ok(());
        };
        for &i in labs {
            let lab = &prog.labels[i];
            let key = match &lab.subject {
                Some(op) => self.val(op, c)?,
                None => c.subject.map_or(Val::Null, Val::Str),
            };
            let key = match key {
                Val::Null => continue,
                Val::Str(k) => k,
                other => return Err(format!("a label's subject came out as {other:?}, not text")),
            };
            let mut hit = (None, None);
            for (value, when, reason) in &lab.cases {
                if self.holds(when, c)? {
                    hit = (Some(*value), *reason);
                    break;
                }
            }
            let slot = match self.event_label_ix.get(&key) {
                Some(&j) => j,
                None => {
                    self.event_labels.push((key, Vec::new()));
                    self.event_label_ix.insert(key, self.event_labels.len() - 1);
                    self.event_labels.len() - 1
                }
            };
            let found = &mut self.event_labels[slot].1;
            match found.iter_mut().find(|(l, _)| *l == i) {
                Some(x) => x.1 = hit.0,
                None => found.push((i, hit.0)),
            }
            let at = self.ev.at(e);
            self.classified.push(Classified {
                label: i,
                key,
                value: hit.0,
                reason: hit.1,
                event: e,
                at,
                subject: c.subject,
            });
        }
        Ok(())
    }
}

/// `World.labels` as `finish` leaves it: per subject its labels without `on:` (where the
/// policy has any), then what the events classified, the latest value per thing; and the
/// classifications, as `(label index, subject, value, reason, event, at, customer)`; and
/// `World.broken`.
pub(crate) fn rows<'py>(
    o: &mut Out<'py, '_>,
    w: &World,
    ids: &[Bound<'py, PyAny>],
) -> PyResult<[Bound<'py, PyAny>; 3]> {
    let py = o.py;
    let out = PyDict::new(py);
    let plain: Vec<&Label> = w.p.labels.iter().filter(|l| l.on.is_empty()).collect();
    for (s, values) in w.subjects.iter().zip(&w.labels) {
        let d = PyDict::new(py);
        for (lab, v) in plain.iter().zip(values) {
            d.set_item(o.s(lab.name), o.opt(*v))?;
        }
        out.set_item(o.s(s.id), d)?;
    }
    if w.horizon_reached {
        for (key, found) in &w.event_labels {
            let k = o.s(*key);
            let d = match out.get_item(&k)? {
                Some(d) => d.cast_into::<PyDict>()?,
                None => {
                    let d = PyDict::new(py);
                    out.set_item(&k, &d)?;
                    d
                }
            };
            for (lab, v) in found {
                d.set_item(o.s(w.p.labels[*lab].name), o.opt(*v))?;
            }
        }
    }
    let rows = PyList::empty(py);
    for c in &w.classified {
        let items = [
            c.label.into_pyobject(py)?.into_any(),
            o.s(c.key),
            o.opt(c.value),
            o.opt(c.reason),
            ids[c.event].clone(),
            c.at.into_pyobject(py)?.into_any(),
            o.opt(c.subject),
        ];
        rows.append(PyTuple::new(py, items)?)?;
    }
    let broken = PyDict::new(py);
    for (name, sids) in &w.broken {
        let list = PyList::empty(py);
        for sid in sids {
            list.append(o.s(*sid))?;
        }
        broken.set_item(o.s(*name), list)?;
    }
    Ok([out.into_any(), rows.into_any(), broken.into_any()])
}
