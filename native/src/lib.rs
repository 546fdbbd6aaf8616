//! The policy engine's native core: runs a compiled policy's intermediate form (written by
//! `policyengine.language.ir`, version `IR_VERSION`) over prepared events.
//!
//! The Python engine (`policyengine.runtime.engine`) is the reference: this core takes the same
//! steps in the same order (deadlines before the events after them, rules matched on the state
//! before an event, duties settled before the remaining actions) and returns the same records,
//! in bulk, so that the same Python code builds the decision. Strings are interned, instants
//! are i64 microseconds, the timer heap and every subject's state live here, off the Python
//! heap. What the core cannot decide exactly as the engine would (a value of an unexpected
//! type, a deadline out of range, a step the engine refuses) raises `Unsupported`: the caller
//! then runs the Python engine, which decides or raises the located error.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use serde_json::Value as J;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

create_exception!(policyengine_native, Unsupported, PyException);

const IR_VERSION: i64 = 1;
const OPEN: u8 = 0;
const MET: u8 = 1;
const MISSED: u8 = 2;
const LATE: u8 = 3;
const CLAIM_STATUS: [&str; 3] = ["open", "lapsed", "released"];

type Res<T> = Result<T, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Str(u32),
}

/// Python's `==` on the values the core holds (`True == 1`).
fn py_eq(a: Val, b: Val) -> bool {
    match (a, b) {
        (Val::Bool(x), Val::Int(y)) | (Val::Int(y), Val::Bool(x)) => (x as i64) == y,
        _ => a == b,
    }
}

/// The manual's equality (`operators._equal`): a yes/no never equals a number.
fn manual_eq(a: Val, b: Val) -> bool {
    a == b
}

#[derive(Clone, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn sym(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(s.to_owned(), i);
        self.names.push(s.to_owned());
        i
    }
}

enum Op {
    Lit(Val),
    Event(Field),
    Trigger(Field),
    Now,
    Party,
    Subject,
    Owner,
    Flag(u32),
    Claims(Option<u8>),
    Len(Box<Op>),
    Count(Box<CountQ>),
}

#[derive(Clone, Copy)]
enum Field {
    Id,
    Type,
    At,
    Slot(usize),
}

struct CountQ {
    types: Vec<u32>,
    subject: Option<Op>,
    matches: Vec<(usize, Op)>,
    since: Option<Op>,
}

enum Cond {
    Bool(bool),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Exists(Op),
    In(Op, Op),
    Cmp(u8, Op, Op), // 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge
}

enum Kind {
    Claim(Op),
    Lapse(Op),
    Assign(Op),
    Set(u32, Op),
    Clear(u32),
    Expect(usize),
}

struct Act {
    when: Option<Cond>,
    kind: Kind,
}

struct Spec {
    types: Vec<u32>,
    subject: Option<Op>,
    matches: Vec<(usize, Op)>,
    within: Option<(i64, Option<i64>)>,
    obligation: Option<u32>,
    party: Option<Op>,
    watch_late: bool,
    met: Vec<Act>,
    late: Vec<Act>,
    missed: Vec<Act>,
}

struct Rule {
    id: u32,
    rank: i64,
    overrides: Vec<u32>,
    when: Option<Cond>,
    actions: Vec<Act>,
}

/// The IR read once: rules, duties, the event fields the core reads, interned.
struct Program {
    strings: Interner,
    fields: Vec<String>, // the subject field first, then every field the rules read
    rules: Vec<Rule>,
    specs: Vec<Spec>,
    by_trigger: HashMap<u32, Vec<usize>>,
    plain: HashSet<u32>, // trigger types none of whose rules override another
    awaited: HashSet<u32>,
    max_us: i64,
}

struct Loader {
    strings: Interner,
    fields: Vec<String>,
    specs: Vec<Spec>,
}

fn get<'a>(v: &'a J, key: &str) -> Res<&'a J> {
    v.get(key).ok_or_else(|| format!("the IR lacks {key:?} in {v}"))
}

fn text(v: &J) -> Res<&str> {
    v.as_str().ok_or_else(|| format!("the IR has {v} where text belongs"))
}

impl Loader {
    fn slot(&mut self, name: &str) -> Field {
        match name {
            "id" => Field::Id,
            "type" => Field::Type,
            "at" => Field::At,
            _ => match self.fields.iter().position(|f| f == name) {
                Some(i) => Field::Slot(i),
                None => {
                    self.fields.push(name.to_owned());
                    Field::Slot(self.fields.len() - 1)
                }
            },
        }
    }

    fn data_slot(&mut self, name: &str) -> Res<usize> {
        match self.slot(name) {
            Field::Slot(i) => Ok(i),
            _ => Err(format!("a match on the built-in field {name:?}")),
        }
    }

    fn lit(&mut self, v: &J) -> Res<Val> {
        Ok(match v {
            J::Null => Val::Null,
            J::Bool(b) => Val::Bool(*b),
            J::Number(n) => Val::Int(n.as_i64().ok_or("a number out of range")?),
            J::String(s) => Val::Str(self.strings.sym(s)),
            _ => return Err(format!("the literal {v}")),
        })
    }

    fn types(&mut self, v: &J) -> Res<Vec<u32>> {
        let list = v.as_array().ok_or("types are a list")?;
        list.iter().map(|t| Ok(self.strings.sym(text(t)?))).collect()
    }

    fn op(&mut self, v: &J) -> Res<Op> {
        if let Some(l) = v.get("lit") {
            return Ok(Op::Lit(self.lit(l)?));
        }
        if let Some(r) = v.get("ref") {
            return Ok(match text(r)? {
                "event" => Op::Event(self.slot(text(get(v, "field")?)?)),
                "trigger" => Op::Trigger(self.slot(text(get(v, "field")?)?)),
                "now" => Op::Now,
                "party" => Op::Party,
                "subject" => Op::Subject,
                "owner" => Op::Owner,
                "flag" => Op::Flag(self.strings.sym(text(get(v, "name")?)?)),
                other => return Err(format!("the reference {other:?}")),
            });
        }
        if let Some(c) = v.get("claims") {
            let s = text(c)?;
            let status = match s {
                "any" => None,
                _ => Some(CLAIM_STATUS.iter().position(|x| *x == s).ok_or("a claim status")? as u8),
            };
            return Ok(Op::Claims(status));
        }
        if let Some(inner) = v.get("len") {
            return Ok(Op::Len(Box::new(self.op(inner)?)));
        }
        if let Some(q) = v.get("count") {
            let types = self.types(get(q, "types")?)?;
            let subject = match get(q, "subject")? {
                J::Null => None,
                s => Some(self.op(s)?),
            };
            let matches = self.matches(get(q, "match")?)?;
            let since = match get(q, "since")? {
                J::Null => None,
                s => Some(self.op(s)?),
            };
            return Ok(Op::Count(Box::new(CountQ { types, subject, matches, since })));
        }
        Err(format!("the value {v}"))
    }

    fn matches(&mut self, v: &J) -> Res<Vec<(usize, Op)>> {
        let list = v.as_array().ok_or("a match is a list")?;
        let mut out = Vec::new();
        for pair in list {
            let name = text(&pair[0])?;
            let slot = self.data_slot(name)?;
            out.push((slot, self.op(&pair[1])?));
        }
        Ok(out)
    }

    fn cond(&mut self, v: &J) -> Res<Cond> {
        let op = text(get(v, "op")?)?;
        let args = |me: &mut Self| -> Res<Vec<Cond>> {
            get(v, "args")?.as_array().ok_or("args")?.iter().map(|a| me.cond(a)).collect()
        };
        let pair = |me: &mut Self| -> Res<(Op, Op)> {
            let a = get(v, "args")?.as_array().ok_or("args")?;
            Ok((me.op(&a[0])?, me.op(&a[1])?))
        };
        Ok(match op {
            "bool" => Cond::Bool(get(v, "value")?.as_bool().ok_or("a yes/no")?),
            "all" => Cond::All(args(self)?),
            "any" => Cond::Any(args(self)?),
            "not" => Cond::Not(Box::new(self.cond(get(v, "arg")?)?)),
            "exists" => Cond::Exists(self.op(get(v, "arg")?)?),
            "in" => {
                let (a, b) = pair(self)?;
                Cond::In(a, b)
            }
            _ => {
                let code = ["eq", "ne", "lt", "le", "gt", "ge"]
                    .iter()
                    .position(|x| *x == op)
                    .ok_or_else(|| format!("the condition {op:?}"))?;
                let (a, b) = pair(self)?;
                Cond::Cmp(code as u8, a, b)
            }
        })
    }

    fn when(&mut self, v: &J) -> Res<Option<Cond>> {
        match v.get("when") {
            None | Some(J::Null) => Ok(None),
            Some(c) => Ok(Some(self.cond(c)?)),
        }
    }

    fn acts(&mut self, v: &J) -> Res<Vec<Act>> {
        v.as_array().ok_or("actions are a list")?.iter().map(|a| self.act(a)).collect()
    }

    fn act(&mut self, v: &J) -> Res<Act> {
        let when = self.when(v)?;
        let kind = match text(get(v, "kind")?)? {
            "claim" => Kind::Claim(self.op(get(v, "value")?)?),
            "lapse_claim" => Kind::Lapse(self.op(get(v, "value")?)?),
            "assign" => Kind::Assign(self.op(get(v, "value")?)?),
            "set" => {
                let name = self.strings.sym(text(get(v, "name")?)?);
                Kind::Set(name, self.op(get(v, "value")?)?)
            }
            "clear" => Kind::Clear(self.strings.sym(text(get(v, "name")?)?)),
            "expect" => {
                let types = self.types(get(v, "types")?)?;
                let subject = match get(v, "subject")? {
                    J::Null => None,
                    s => Some(self.op(s)?),
                };
                let matches = self.matches(get(v, "match")?)?;
                let within = match get(v, "within")? {
                    J::Null => None,
                    w => Some((
                        get(w, "us")?.as_i64().ok_or("a window in microseconds")?,
                        get(w, "from")?.as_i64(),
                    )),
                };
                let obligation = match get(v, "obligation")? {
                    J::Null => None,
                    o => Some(self.strings.sym(text(o)?)),
                };
                let party = match get(v, "party")? {
                    J::Null => None,
                    p => Some(self.op(p)?),
                };
                let watch_late = get(v, "watch_late")?.as_bool().ok_or("watch_late")?;
                let met = self.acts(get(v, "met")?)?;
                let late = self.acts(get(v, "late")?)?;
                let missed = self.acts(get(v, "missed")?)?;
                self.specs.push(Spec {
                    types,
                    subject,
                    matches,
                    within,
                    obligation,
                    party,
                    watch_late,
                    met,
                    late,
                    missed,
                });
                Kind::Expect(self.specs.len() - 1)
            }
            other => return Err(format!("the action {other:?}")),
        };
        Ok(Act { when, kind })
    }
}

fn load(ir: &J) -> Res<Program> {
    let version = get(ir, "ir_version")?.as_i64().ok_or("ir_version")?;
    if version != IR_VERSION {
        return Err(format!("IR version {version}; this core reads version {IR_VERSION}"));
    }
    let policy = get(ir, "policy")?;
    let mut ld = Loader { strings: Interner::default(), fields: Vec::new(), specs: Vec::new() };
    ld.fields.push(text(get(policy, "subject_field")?)?.to_owned());
    let max_us = get(policy, "max_us")?.as_i64().ok_or("max_us")?;
    let mut rules = Vec::new();
    let mut by_trigger: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, r) in get(ir, "rules")?.as_array().ok_or("rules")?.iter().enumerate() {
        let id = ld.strings.sym(text(get(r, "id")?)?);
        let overrides = get(r, "overrides")?
            .as_array()
            .ok_or("overrides")?
            .iter()
            .map(|o| Ok(ld.strings.sym(text(o)?)))
            .collect::<Res<Vec<u32>>>()?;
        let when = ld.when(r)?;
        let actions = ld.acts(get(r, "actions")?)?;
        for t in ld.types(get(r, "triggers")?)? {
            by_trigger.entry(t).or_default().push(i);
        }
        let rank = get(r, "rank")?.as_i64().ok_or("rank")?;
        rules.push(Rule { id, rank, overrides, when, actions });
    }
    let plain = by_trigger
        .iter()
        .filter(|(_, rs)| rs.iter().all(|&i| rules[i].overrides.is_empty()))
        .map(|(&t, _)| t)
        .collect();
    fn awaits(acts: &[Act], specs: &[Spec], out: &mut HashSet<u32>) {
        for a in acts {
            if let Kind::Expect(s) = a.kind {
                let sp = &specs[s];
                out.extend(sp.types.iter().copied());
                awaits(&sp.met, specs, out);
                awaits(&sp.late, specs, out);
                awaits(&sp.missed, specs, out);
            }
        }
    }
    let mut awaited = HashSet::new();
    for r in &rules {
        awaits(&r.actions, &ld.specs, &mut awaited);
    }
    Ok(Program {
        strings: ld.strings,
        fields: ld.fields,
        rules,
        specs: ld.specs,
        by_trigger,
        plain,
        awaited,
        max_us,
    })
}

// ---------------------------------------------------------------- one evaluation

#[derive(Clone, Copy)]
struct Causes(usize, Option<usize>); // event indexes

struct Span {
    owner: u32,
    start: i64,
    end: Option<i64>,
    rule: usize,
    causes: Causes,
}

#[derive(Default)]
struct Subj {
    id: u32,
    owner: Option<u32>,
    flags: Vec<(u32, Val)>,
    claims: Vec<(u32, u8)>,
    spans: Vec<Span>,
}

struct Pend {
    spec: usize,
    rule: usize,
    trigger: usize,
    subject: Option<u32>,
    state: u8,
    matches: Vec<(usize, Val)>,
    party: Val,
    sv: Val,
    obligation: Option<usize>,
}

struct Obl {
    rule: usize,
    what: u32,
    party: Val,
    subject: Option<u32>,
    opened: i64,
    due: Option<i64>,
    inclusive: bool,
    status: u8,
    met_by: Option<usize>,
    met_at: Option<i64>,
    trigger: usize,
}

enum Tr {
    Claim { subject: u32, party: u32, status: u8 },
    Owner { subject: u32, owner: Option<u32>, previous: Option<u32> },
    Expectation { subject: Option<u32>, party: Val, spec: usize, due: Option<i64> },
    Flag { subject: u32, flag: u32, value: Val },
}

struct Row {
    at: i64,
    rule: usize,
    causes: Causes,
    tr: Tr,
}

struct Conflict {
    event: usize,
    subject: u32,
    earlier: (Option<u32>, usize),
    now: (Option<u32>, usize),
}

#[derive(Clone, Copy)]
struct Ctx {
    now: i64,
    event: Option<usize>,
    trigger: Option<usize>,
    subject: Option<u32>,
    subj: Option<usize>,
    party: Val,
}

struct Events {
    types: Vec<u32>,
    ats: Vec<i64>,
    vals: Vec<Val>, // stride: the program's fields
    k: usize,
}

impl Events {
    fn get(&self, e: usize, f: Field, ids: &[u32]) -> Val {
        match f {
            Field::Id => Val::Str(ids[e]),
            Field::Type => Val::Str(self.types[e]),
            Field::At => Val::Int(self.ats[e]),
            Field::Slot(i) => self.vals[e * self.k + i],
        }
    }
}

struct World<'p> {
    p: &'p Program,
    strings: Interner,
    ev: Events,
    ids: Vec<u32>, // event ids interned (for `$event.id`)
    now: i64,
    subjects: Vec<Subj>,
    subject_ix: HashMap<u32, usize>,
    pend: Vec<Pend>,
    obligations: Vec<Obl>,
    trace: Vec<Row>,
    conflicts: Vec<Conflict>,
    fired: Vec<(usize, i64)>,
    fired_ix: HashMap<usize, usize>,
    timers: BinaryHeap<Reverse<(i64, u64, usize)>>,
    seq: u64,
    waiting: HashMap<(u32, Val), Vec<usize>>,
    overdue: HashMap<(u32, Val), Vec<usize>>,
    hist_subj: HashMap<(u32, u32), Vec<usize>>,
    hist_type: HashMap<u32, Vec<usize>>,
    step_owner: HashMap<u32, (Option<u32>, usize)>,
}

impl<'p> World<'p> {
    fn subject(&mut self, sid: u32) -> usize {
        if let Some(&i) = self.subject_ix.get(&sid) {
            return i;
        }
        self.subjects.push(Subj { id: sid, ..Default::default() });
        self.subject_ix.insert(sid, self.subjects.len() - 1);
        self.subjects.len() - 1
    }

    fn val(&self, op: &Op, c: &Ctx) -> Res<Val> {
        Ok(match op {
            Op::Lit(v) => *v,
            Op::Event(f) => match c.event {
                Some(e) => self.ev.get(e, *f, &self.ids),
                None => Val::Null,
            },
            Op::Trigger(f) => match c.trigger {
                Some(e) => self.ev.get(e, *f, &self.ids),
                None => Val::Null,
            },
            Op::Now => Val::Int(c.now),
            Op::Party => c.party,
            Op::Subject => c.subject.map_or(Val::Null, Val::Str),
            Op::Owner => match c.subj {
                Some(s) => self.subjects[s].owner.map_or(Val::Null, Val::Str),
                None => Val::Null,
            },
            Op::Flag(name) => match c.subj {
                Some(s) => self.subjects[s]
                    .flags
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(Val::Null, |(_, v)| *v),
                None => Val::Null,
            },
            Op::Claims(_) => return Err("a claims list where one value belongs".into()),
            Op::Len(inner) => Val::Int(self.claims(inner, c)?.len() as i64),
            Op::Count(q) => Val::Int(self.count(q, c)?),
        })
    }

    fn claims(&self, op: &Op, c: &Ctx) -> Res<Vec<u32>> {
        let Op::Claims(status) = op else {
            return Err("a list of anything but claims".into());
        };
        Ok(match c.subj {
            Some(s) => self.subjects[s]
                .claims
                .iter()
                .filter(|(_, st)| status.is_none_or(|want| *st == want))
                .map(|(e, _)| *e)
                .collect(),
            None => Vec::new(),
        })
    }

    fn count(&self, q: &CountQ, c: &Ctx) -> Res<i64> {
        let mut lower = i64::MIN;
        if let Some(since) = &q.since {
            if let Val::Int(s) = self.val(since, c)? {
                lower = s;
            }
        }
        let want: Vec<(usize, Val)> =
            q.matches.iter().map(|(f, op)| Ok((*f, self.val(op, c)?))).collect::<Res<_>>()?;
        let sv = match &q.subject {
            Some(op) => Some(self.val(op, c)?),
            None => None,
        };
        let mut n = 0;
        for t in &q.types {
            let list = match sv {
                Some(Val::Str(s)) => self.hist_subj.get(&(s, *t)),
                Some(_) => None,
                None => self.hist_type.get(t),
            };
            let Some(list) = list else { continue };
            for &e in list.iter().rev() {
                if self.ev.ats[e] < lower {
                    break;
                }
                let k = self.ev.k;
                if want.iter().all(|(f, v)| py_eq(self.ev.vals[e * k + f], *v)) {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    fn holds(&self, cond: &Cond, c: &Ctx) -> Res<bool> {
        Ok(match cond {
            Cond::Bool(b) => *b,
            Cond::All(parts) => {
                for p in parts {
                    if !self.holds(p, c)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Any(parts) => {
                for p in parts {
                    if self.holds(p, c)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::Not(inner) => !self.holds(inner, c)?,
            Cond::Exists(op) => self.val(op, c)? != Val::Null,
            Cond::In(a, b) => {
                let x = self.val(a, c)?;
                self.claims(b, c)?.iter().any(|e| manual_eq(x, Val::Str(*e)))
            }
            Cond::Cmp(code, a, b) => {
                let (x, y) = (self.val(a, c)?, self.val(b, c)?);
                match code {
                    0 => manual_eq(x, y),
                    1 => !manual_eq(x, y),
                    _ => {
                        let ord = match (x, y) {
                            (Val::Int(i), Val::Int(j)) => Some(i.cmp(&j)),
                            (Val::Str(i), Val::Str(j)) => {
                                Some(self.strings.names[i as usize].cmp(&self.strings.names[j as usize]))
                            }
                            _ => None, // null, yes/no and mixed kinds are never ordered
                        };
                        match ord {
                            None => false,
                            Some(o) => match code {
                                2 => o.is_lt(),
                                3 => o.is_le(),
                                4 => o.is_gt(),
                                _ => o.is_ge(),
                            },
                        }
                    }
                }
            }
        })
    }

    fn trace(&mut self, rule: usize, causes: Causes, tr: Tr) {
        self.trace.push(Row { at: self.now, rule, causes, tr });
    }

    fn need_subject(&mut self, c: &Ctx) -> Res<(u32, usize)> {
        match c.subject {
            Some(s) => Ok((s, self.subject(s))),
            None => Err("an action on an event that names no subject (the engine refuses it)".into()),
        }
    }

    fn text(&self, v: Val, what: &str) -> Res<Option<u32>> {
        match v {
            Val::Null => Ok(None),
            Val::Str(s) => Ok(Some(s)),
            other => Err(format!("{what} came out as {other:?}, not text")),
        }
    }

    fn run(&mut self, acts: &'p [Act], c: &Ctx, rule: usize, causes: Causes) -> Res<()> {
        for a in acts {
            if let Some(w) = &a.when {
                if !self.holds(w, c)? {
                    continue;
                }
            }
            self.act(a, c, rule, causes)?;
        }
        Ok(())
    }

    fn act(&mut self, a: &'p Act, c: &Ctx, rule: usize, causes: Causes) -> Res<()> {
        match &a.kind {
            Kind::Claim(op) | Kind::Lapse(op) => {
                let emp = self.val(op, c)?;
                let (sid, s) = self.need_subject(c)?;
                let Some(emp) = self.text(emp, "a claimant")? else { return Ok(()) };
                let claims = &mut self.subjects[s].claims;
                let found = claims.iter().position(|(e, _)| *e == emp);
                if matches!(a.kind, Kind::Claim(_)) {
                    match found {
                        Some(i) => claims[i].1 = 0,
                        None => claims.push((emp, 0)),
                    }
                    self.trace(rule, causes, Tr::Claim { subject: sid, party: emp, status: 0 });
                } else if let Some(i) = found {
                    if claims[i].1 == 0 {
                        claims[i].1 = 1;
                        self.trace(rule, causes, Tr::Claim { subject: sid, party: emp, status: 1 });
                    }
                }
            }
            Kind::Assign(op) => {
                let (sid, s) = self.need_subject(c)?;
                let owner = self.val(op, c)?;
                let owner = self.text(owner, "an owner")?;
                self.set_owner(sid, s, owner, rule, causes);
            }
            Kind::Set(name, op) => {
                let (sid, s) = self.need_subject(c)?;
                let value = self.val(op, c)?;
                self.set_flag(sid, s, *name, value, rule, causes);
            }
            Kind::Clear(name) => {
                let (sid, s) = self.need_subject(c)?;
                self.set_flag(sid, s, *name, Val::Null, rule, causes);
            }
            Kind::Expect(spec) => self.expect(*spec, c, rule)?,
        }
        Ok(())
    }

    fn set_flag(&mut self, sid: u32, s: usize, name: u32, value: Val, rule: usize, causes: Causes) {
        let flags = &mut self.subjects[s].flags;
        let found = flags.iter().position(|(n, _)| *n == name);
        match (found, value) {
            (Some(i), Val::Null) => {
                flags.remove(i);
            }
            (None, Val::Null) => {}
            (Some(i), v) => flags[i].1 = v,
            (None, v) => flags.push((name, v)),
        }
        self.trace(rule, causes, Tr::Flag { subject: sid, flag: name, value });
    }

    fn set_owner(&mut self, sid: u32, s: usize, owner: Option<u32>, rule: usize, causes: Causes) {
        let rid = self.p.rules[rule].id;
        if let Some(&(earlier, erule)) = self.step_owner.get(&sid) {
            if self.p.rules[erule].id != rid && earlier != owner {
                let event = causes.1.unwrap_or(causes.0);
                self.conflicts.push(Conflict { event, subject: sid, earlier: (earlier, erule), now: (owner, rule) });
            }
        }
        self.step_owner.insert(sid, (owner, rule));
        let now = self.now;
        let subj = &mut self.subjects[s];
        if subj.owner == owner {
            return;
        }
        if let Some(last) = subj.spans.last_mut() {
            if last.end.is_none() {
                if last.start == now {
                    subj.spans.pop();
                } else {
                    last.end = Some(now);
                }
            }
        }
        let previous = subj.owner;
        subj.owner = owner;
        if let Some(o) = owner {
            subj.spans.push(Span { owner: o, start: now, end: None, rule, causes });
        }
        self.trace(rule, causes, Tr::Owner { subject: sid, owner, previous });
    }

    fn expect(&mut self, spec_ix: usize, c: &Ctx, rule: usize) -> Res<()> {
        let prog = self.p;
        let spec = &prog.specs[spec_ix];
        let trig = c.event.or(c.trigger).ok_or("a duty without an event")?;
        let due = match spec.within {
            None => None,
            Some((us, from)) => {
                if from.is_some_and(|f| self.now < f) {
                    return Err("a day-long window before the timezone's last offset change".into());
                }
                let due = self.now.checked_add(us).filter(|d| *d <= self.p.max_us);
                Some(due.ok_or("a deadline out of the supported range")?)
            }
        };
        let matches =
            spec.matches.iter().map(|(f, op)| Ok((*f, self.val(op, c)?))).collect::<Res<Vec<_>>>()?;
        let party = match &spec.party {
            Some(op) => self.val(op, c)?,
            None => Val::Null,
        };
        let sv = match &spec.subject {
            Some(op) => self.val(op, c)?,
            None => Val::Null,
        };
        let obligation = spec.obligation.map(|what| {
            self.obligations.push(Obl {
                rule,
                what,
                party,
                subject: c.subject,
                opened: self.now,
                due,
                inclusive: true,
                status: OPEN,
                met_by: None,
                met_at: None,
                trigger: trig,
            });
            self.obligations.len() - 1
        });
        let p = self.pend.len();
        self.pend.push(Pend {
            spec: spec_ix,
            rule,
            trigger: trig,
            subject: c.subject,
            state: OPEN,
            matches,
            party,
            sv,
            obligation,
        });
        for t in &spec.types {
            self.waiting.entry((*t, sv)).or_default().push(p);
        }
        if let Some(d) = due {
            self.seq += 1;
            self.timers.push(Reverse((2 * d + 1, self.seq, p)));
        }
        self.trace(
            rule,
            Causes(trig, None),
            Tr::Expectation { subject: c.subject, party, spec: spec_ix, due },
        );
        Ok(())
    }

    fn fire_until(&mut self, limit: i64) -> Res<()> {
        while let Some(&Reverse((key, _, p))) = self.timers.peek() {
            if key >= limit {
                break;
            }
            self.timers.pop();
            if self.pend[p].state != OPEN {
                continue;
            }
            let due = (key - 1) / 2;
            self.pend[p].state = MISSED;
            self.now = due;
            if let Some(o) = self.pend[p].obligation {
                self.obligations[o].status = MISSED;
            }
            let prog = self.p;
            let spec = &prog.specs[self.pend[p].spec];
            if spec.watch_late {
                let sv = self.pend[p].sv;
                for t in &spec.types {
                    self.overdue.entry((*t, sv)).or_default().push(p);
                }
            }
            if !spec.missed.is_empty() {
                let pe = &self.pend[p];
                let (trig, sid, party, rule) = (pe.trigger, pe.subject, pe.party, pe.rule);
                let subj = sid.map(|s| self.subject(s));
                let c = Ctx { now: due, event: None, trigger: Some(trig), subject: sid, subj, party };
                self.step_owner.clear();
                self.run(&spec.missed, &c, rule, Causes(trig, None))?;
            }
        }
        Ok(())
    }

    fn matches(&self, p: usize, e: usize) -> bool {
        let k = self.ev.k;
        self.pend[p].matches.iter().all(|(f, v)| py_eq(self.ev.vals[e * k + f], *v))
    }

    fn met(&mut self, p: usize, e: usize, late: bool) -> Res<()> {
        let at = self.ev.ats[e];
        let (spec, trig, sid, party, rule, obl) = {
            let pe = &self.pend[p];
            (pe.spec, pe.trigger, pe.subject, pe.party, pe.rule, pe.obligation)
        };
        if let Some(o) = obl {
            let o = &mut self.obligations[o];
            o.status = if late { LATE } else { MET };
            o.met_by = Some(e);
            o.met_at = Some(at);
        }
        let prog = self.p;
        let sp = &prog.specs[spec];
        let branch = if late { &sp.late } else { &sp.met };
        if !branch.is_empty() {
            let subj = sid.map(|s| self.subject(s));
            let c = Ctx { now: at, event: Some(e), trigger: Some(trig), subject: sid, subj, party };
            self.run(branch, &c, rule, Causes(trig, Some(e)))?;
        }
        Ok(())
    }

    fn settle(&mut self, e: usize) -> Res<()> {
        let et = self.ev.types[e];
        let sv = self.ev.vals[e * self.ev.k];
        let keys: Vec<(u32, Val)> =
            if sv != Val::Null { vec![(et, sv), (et, Val::Null)] } else { vec![(et, Val::Null)] };
        for key in &keys {
            let Some(list) = self.waiting.remove(key) else { continue };
            let mut keep = Vec::with_capacity(list.len());
            for &p in &list {
                if self.pend[p].state != OPEN {
                    continue;
                }
                if self.matches(p, e) {
                    self.pend[p].state = MET;
                    self.met(p, e, false)?;
                } else {
                    keep.push(p);
                }
            }
            if let Some(added) = self.waiting.remove(key) {
                keep.extend(added.into_iter().filter(|&p| self.pend[p].state == OPEN));
            }
            if !keep.is_empty() {
                self.waiting.insert(*key, keep);
            }
        }
        for key in &keys {
            let Some(list) = self.overdue.remove(key) else { continue };
            let mut keep = Vec::with_capacity(list.len());
            for &p in &list {
                if self.pend[p].state != MISSED {
                    continue;
                }
                if self.matches(p, e) {
                    self.pend[p].state = LATE;
                    self.met(p, e, true)?;
                } else {
                    keep.push(p);
                }
            }
            if let Some(added) = self.overdue.remove(key) {
                keep.extend(added);
            }
            self.overdue.insert(*key, keep);
        }
        Ok(())
    }

    fn apply(&mut self, e: usize) -> Res<()> {
        let p = self.p;
        self.now = self.ev.ats[e];
        self.step_owner.clear();
        let sid = match self.ev.vals[e * self.ev.k] {
            Val::Str(s) => Some(s),
            Val::Null => None,
            other => return Err(format!("a subject value {other:?}, not text")),
        };
        let subj = sid.map(|s| self.subject(s));
        let c = Ctx { now: self.now, event: Some(e), trigger: None, subject: sid, subj, party: Val::Null };
        let et = self.ev.types[e];
        let empty = Vec::new();
        let rules = p.by_trigger.get(&et).unwrap_or(&empty);
        let mut matched = Vec::with_capacity(rules.len());
        for &r in rules {
            match &p.rules[r].when {
                Some(w) if !self.holds(w, &c)? => {}
                _ => matched.push(r),
            }
        }
        if matched.len() > 1 && !p.plain.contains(&et) {
            let mut order = matched.clone();
            order.sort_by_key(|&r| -p.rules[r].rank);
            let mut suppressed: HashSet<u32> = HashSet::new();
            for r in order {
                if !suppressed.contains(&p.rules[r].id) {
                    suppressed.extend(p.rules[r].overrides.iter().copied());
                }
            }
            matched.retain(|&r| !suppressed.contains(&p.rules[r].id));
        }
        for &r in &matched {
            match self.fired_ix.get(&r) {
                Some(&i) => self.fired[i].1 += 1,
                None => {
                    self.fired_ix.insert(r, self.fired.len());
                    self.fired.push((r, 1));
                }
            }
        }
        if p.awaited.contains(&et) {
            self.settle(e)?;
        }
        for &r in &matched {
            self.run(&p.rules[r].actions, &c, r, Causes(e, None))?;
        }
        if let Some(s) = sid {
            self.hist_subj.entry((s, et)).or_default().push(e);
        }
        self.hist_type.entry(et).or_default().push(e);
        Ok(())
    }
}

// ---------------------------------------------------------------- the Python side

/// A policy's intermediate form, read once; `run` evaluates one history against it.
#[pyclass(frozen)]
struct Core {
    program: Program,
}

fn unsupported(why: String) -> PyErr {
    Unsupported::new_err(why)
}

#[pymethods]
impl Core {
    #[new]
    fn new(ir: &str) -> PyResult<Self> {
        let value: J = serde_json::from_str(ir).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let program = load(&value).map_err(unsupported)?;
        Ok(Core { program })
    }

    /// The event fields `run` takes as columns, in order: the subject field first.
    fn fields(&self) -> Vec<String> {
        self.program.fields.clone()
    }

    /// Evaluate prepared events (time-ordered, up to the horizon): ids, types, instants and one
    /// column per field of `fields()` (text or None). Returns the records as tuples, with the
    /// rule references of `refs` (one per rule, in the IR's order) and the ids as given:
    /// `(subjects, trace, obligations, fired, conflicts)`.
    #[pyo3(signature = (ids, types, ats, columns, horizon, refs))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<Bound<'py, PyAny>>,
        types: Vec<String>,
        ats: Vec<i64>,
        columns: Vec<Vec<Option<String>>>,
        horizon: Option<i64>,
        refs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let p = &self.program;
        let n = ids.len();
        let k = p.fields.len();
        if types.len() != n || ats.len() != n || columns.len() != k || columns.iter().any(|c| c.len() != n) {
            return Err(PyValueError::new_err("columns of different lengths"));
        }
        if refs.len() != p.rules.len() {
            return Err(PyValueError::new_err("one rule reference per rule"));
        }
        let mut strings = p.strings.clone();
        let types: Vec<u32> = types.iter().map(|t| strings.sym(t)).collect();
        let mut vals = vec![Val::Null; n * k];
        for (f, col) in columns.iter().enumerate() {
            for (e, v) in col.iter().enumerate() {
                if let Some(s) = v {
                    vals[e * k + f] = Val::Str(strings.sym(s));
                }
            }
        }
        // `$event.id` is read through the interner: ids as text, interned once; the records
        // name events by the id objects given
        let id_syms: Vec<u32> = ids
            .iter()
            .map(|i| Ok(strings.sym(&i.extract::<String>()?)))
            .collect::<PyResult<_>>()?;
        let mut w = World {
            p,
            strings,
            ev: Events { types, ats, vals, k },
            ids: id_syms,
            now: 0,
            subjects: Vec::new(),
            subject_ix: HashMap::new(),
            pend: Vec::new(),
            obligations: Vec::new(),
            trace: Vec::new(),
            conflicts: Vec::new(),
            fired: Vec::new(),
            fired_ix: HashMap::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            waiting: HashMap::new(),
            overdue: HashMap::new(),
            hist_subj: HashMap::new(),
            hist_type: HashMap::new(),
            step_owner: HashMap::new(),
        };
        let outcome = py.detach(|| -> Res<()> {
            for e in 0..n {
                w.fire_until(2 * w.ev.ats[e] + 1)?;
                w.apply(e)?;
            }
            if let Some(h) = horizon {
                w.fire_until(2 * h + 1)?;
            }
            Ok(())
        });
        outcome.map_err(unsupported)?;
        records(py, &w, &ids, &refs)
    }
}

struct Out<'py, 'a> {
    py: Python<'py>,
    names: &'a [String],
    cache: Vec<Option<Bound<'py, PyString>>>,
}

impl<'py, 'a> Out<'py, 'a> {
    fn s(&mut self, sym: u32) -> Bound<'py, PyAny> {
        let i = sym as usize;
        if self.cache[i].is_none() {
            self.cache[i] = Some(PyString::new(self.py, &self.names[i]));
        }
        self.cache[i].clone().unwrap().into_any()
    }

    fn opt(&mut self, sym: Option<u32>) -> Bound<'py, PyAny> {
        match sym {
            Some(s) => self.s(s),
            None => self.py.None().into_bound(self.py),
        }
    }

    fn val(&mut self, v: Val) -> PyResult<Bound<'py, PyAny>> {
        Ok(match v {
            Val::Null => self.py.None().into_bound(self.py),
            Val::Bool(b) => b.into_pyobject(self.py)?.to_owned().into_any(),
            Val::Int(i) => i.into_pyobject(self.py)?.into_any(),
            Val::Str(s) => self.s(s),
        })
    }
}

fn records<'py>(
    py: Python<'py>,
    w: &World,
    ids: &[Bound<'py, PyAny>],
    refs: &[Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyTuple>> {
    let mut o = Out { py, names: &w.strings.names, cache: vec![None; w.strings.names.len()] };
    let none = py.None().into_bound(py);
    let causes = |c: Causes| -> PyResult<Bound<'py, PyTuple>> {
        match c.1 {
            None => PyTuple::new(py, [&ids[c.0]]),
            Some(b) => PyTuple::new(py, [&ids[c.0], &ids[b]]),
        }
    };
    let subjects = PyList::empty(py);
    for s in &w.subjects {
        let spans = PyList::empty(py);
        for sp in &s.spans {
            let end = match sp.end {
                Some(e) => e.into_pyobject(py)?.into_any(),
                None => none.clone(),
            };
            let row: [Bound<'py, PyAny>; 5] = [
                o.s(sp.owner),
                sp.start.into_pyobject(py)?.into_any(),
                end,
                refs[sp.rule].clone(),
                causes(sp.causes)?.into_any(),
            ];
            spans.append(PyTuple::new(py, row)?)?;
        }
        let flags = PyList::empty(py);
        for (name, v) in &s.flags {
            flags.append(PyTuple::new(py, [o.s(*name), o.val(*v)?])?)?;
        }
        subjects.append(PyTuple::new(py, [o.s(s.id), spans.into_any(), flags.into_any()])?)?;
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
    let statuses: Vec<Bound<'py, PyString>> = CLAIM_STATUS.iter().map(|s| PyString::intern(py, s)).collect();
    let mut awaits: HashMap<usize, Bound<'py, PyTuple>> = HashMap::new();
    let trace = PyList::empty(py);
    for row in &w.trace {
        let detail = PyDict::new(py);
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
                        let t = PyTuple::new(py, names)?;
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
        };
        let items: [Bound<'py, PyAny>; 7] = [
            row.at.into_pyobject(py)?.into_any(),
            kind.clone().into_any(),
            subject,
            party,
            refs[row.rule].clone(),
            causes(row.causes)?.into_any(),
            detail.into_any(),
        ];
        trace.append(PyTuple::new(py, items)?)?;
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
            PyTuple::new(py, [&ids[ob.trigger]])?.into_any(),
            true.into_pyobject(py)?.to_owned().into_any(),
        ];
        obligations.append(PyTuple::new(py, items)?)?;
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
        [subjects.into_any(), trace.into_any(), obligations.into_any(), fired.into_any(), conflicts.into_any()],
    )
}

#[pymodule]
fn policyengine_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Core>()?;
    m.add("Unsupported", m.py().get_type::<Unsupported>())?;
    m.add("IR_VERSION", IR_VERSION)?;
    Ok(())
}
