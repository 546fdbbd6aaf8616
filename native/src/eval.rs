//! One evaluation: the engine's steps over the columns, in the engine's order.

use crate::input::Events;
use crate::ledger::PenRow;
use crate::ir::*;
use crate::fx::{FxMap, FxSet};

pub(crate) const OPEN: u8 = 0;
pub(crate) const MET: u8 = 1;
pub(crate) const MISSED: u8 = 2;
pub(crate) const LATE: u8 = 3;
pub(crate) const CANCELLED: u8 = 4;

// ---------------------------------------------------------------- one evaluation

#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct Causes(pub(crate) usize, pub(crate) Option<usize>); // event indexes

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Span {
    pub(crate) owner: u32,
    pub(crate) start: i64,
    pub(crate) end: Option<i64>,
    pub(crate) rule: usize,
    pub(crate) causes: Causes,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Subj {
    pub(crate) id: u32,
    pub(crate) owner: Option<u32>,
    pub(crate) flags: Vec<(u32, Val)>,
    pub(crate) claims: Vec<(u32, u8)>,
    pub(crate) spans: Vec<Span>,
    pub(crate) counters: Vec<(u32, i64)>,
}

/// A run of entries in one of the World's duty arenas (`duty_fields`, `duty_cancels`): each
/// duty's values are kept there rather than in vectors of its own, which were two allocations
/// and two frees per duty, scattered over a long history's memory.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Run {
    start: u32,
    end: u32,
}

impl Run {
    /// The entries pushed on an arena of `len` since it held `start`.
    pub(crate) fn since(start: usize, len: usize) -> Res<Run> {
        let n = |i: usize| u32::try_from(i).map_err(|_| "more duty values than the core holds".to_string());
        Ok(Run { start: n(start)?, end: n(len)? })
    }

    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Pend {
    pub(crate) spec: usize,
    pub(crate) rule: usize,
    pub(crate) trigger: usize,
    pub(crate) subject: Option<u32>,
    pub(crate) matches: Run, // its fixed fields, in `World::duty_fields`
    pub(crate) party: Val,
    pub(crate) sv: Val,
    pub(crate) obligation: Option<usize>,
    pub(crate) cancel: Run, // per `cancel_on` entry, in `World::duty_cancels`: subject, fields
    pub(crate) start: Option<i64>,                      // `after`: no event before it meets it
    pub(crate) start_excl: bool,                        // nor at it (a step after an inclusive one)
    pub(crate) step: Option<(usize, usize)>,            // a chain's first duty, this one's step
    pub(crate) chain: Option<usize>,                    // its recurring chain (`World::chains`)
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Obl {
    pub(crate) rule: usize,
    pub(crate) what: u32,
    pub(crate) party: Val,
    pub(crate) subject: Option<u32>,
    pub(crate) opened: i64,
    pub(crate) start: Option<i64>,
    pub(crate) start_incl: bool,
    pub(crate) due: Option<i64>,
    pub(crate) inclusive: bool,
    pub(crate) status: u8,
    pub(crate) met_by: Option<usize>,
    pub(crate) met_at: Option<i64>,
    pub(crate) trigger: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum Tr {
    Claim { subject: u32, party: u32, status: u8 },
    Owner { subject: u32, owner: Option<u32>, previous: Option<u32> },
    Expectation { subject: Option<u32>, party: Val, spec: usize, step: Option<usize>, due: Option<i64> },
    Flag { subject: u32, flag: u32, value: Val },
    Penalty(usize), // an index into `World::penalties`
    Reject { subject: Option<u32>, text: u32 },
    Cancelled { pend: usize, by: usize }, // a duty ended by its `cancel_on` event
    Counter { subject: Option<u32>, party: u32, name: u32, value: i64 },
    Violation { subject: Option<u32>, party: Val, what: u32 },
    DecCounter { subject: Option<u32>, party: u32, name: u32, value: i64, exp: i32 }, // `counters.rs`
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Row {
    pub(crate) at: i64,
    pub(crate) rule: usize,
    pub(crate) causes: Causes,
    pub(crate) tr: Tr,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Conflict {
    pub(crate) event: usize,
    pub(crate) subject: u32,
    pub(crate) earlier: (Option<u32>, usize),
    pub(crate) now: (Option<u32>, usize),
}

#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub(crate) now: i64,
    pub(crate) event: Option<usize>,
    pub(crate) trigger: Option<usize>,
    pub(crate) subject: Option<u32>,
    pub(crate) subj: Option<usize>,
    pub(crate) party: Val,
    pub(crate) item: Val, // `$item` of a `for_each`
}

pub(crate) struct World<'p> {
    pub(crate) p: &'p Program,
    pub(crate) strings: Interner,
    pub(crate) ev: Events,
    pub(crate) ids: Vec<u32>, // event ids interned for `$event.id` (`input::NO_ID` where none reads it)
    pub(crate) now: i64,
    pub(crate) subjects: Vec<Subj>,
    pub(crate) subject_ix: crate::dense::SymIx,
    pub(crate) pend: Vec<Pend>,
    // per duty, its state (open, met, missed, late, cancelled), apart: most look-ups of a duty
    // read only this (a deadline after the duty was met, a list's closed entries), and a byte
    // a duty stays in the caches where its `Pend` (160 bytes) on a long history does not
    pub(crate) duty_state: Vec<u8>,
    pub(crate) duty_fields: Vec<(usize, Val)>, // the duties' fixed fields (`Pend::matches`, a cancel's)
    pub(crate) duty_cancels: Vec<(Val, Run)>,  // the duties' `cancel_on` entries: subject, fields
    pub(crate) obligations: Vec<Obl>,
    pub(crate) trace: Vec<Row>,
    pub(crate) conflicts: Vec<Conflict>,
    pub(crate) fired: Vec<(usize, i64)>,
    pub(crate) fired_ix: FxMap<usize, usize>,
    pub(crate) timers: crate::timers::Timers,
    pub(crate) seq: u64,
    pub(crate) waiting: FxMap<(u32, Val), Vec<usize>>,
    pub(crate) overdue: FxMap<(u32, Val), Vec<usize>>,
    pub(crate) cancels: FxMap<(u32, Val), Vec<usize>>,
    pub(crate) live_keys: FxMap<(i64, Val), crate::duty::Live>, // a key: its latest duties
    pub(crate) chains: Vec<crate::duty::Chain>,                 // the recurring duties (`every`)
    pub(crate) hist_subj: FxMap<(u32, u32), Vec<usize>>,
    pub(crate) hist_type: FxMap<u32, Vec<usize>>,
    pub(crate) step_owner: FxMap<u32, (Option<u32>, usize)>,
    pub(crate) penalties: Vec<PenRow>,
    pub(crate) rejected: bool,
    pub(crate) rejections: Vec<(Option<usize>, i64, usize, u32)>, // event, at, rule, reason
    pub(crate) ladders: FxMap<(u32, u32), i64>,
    pub(crate) party_counters: Vec<(u32, Vec<(u32, i64)>)>,
    pub(crate) party_ix: FxMap<u32, usize>,
    pub(crate) violations: Vec<crate::value::Breach>,
    pub(crate) labels: Vec<Vec<Option<u32>>>, // per subject, at the horizon (`label`)
    pub(crate) real: usize,        // the history's events; derived ones after them (`owner`)
    pub(crate) late: Vec<usize>,   // rows of the history's events added on resume (`saved.rs`)
    pub(crate) origin: Vec<crate::periodic::Origin>, // per derived row, whose id it carries
    pub(crate) queue: Vec<usize>,  // derived events not yet applied
    pub(crate) counter_log: Vec<(u32, u32, i64, i64, bool)>, // owner, name, at, by, a party's
    pub(crate) joined: Vec<usize>, // the events that joined the history, in order
    pub(crate) closes: Vec<crate::metric::Close>, // metric periods measured
    pub(crate) event_labels: Vec<(u32, crate::label::Found)>, // `label`: by events
    pub(crate) event_label_ix: FxMap<u32, usize>,
    pub(crate) classified: Vec<crate::label::Classified>,
    pub(crate) horizon_reached: bool, // `finish` ran (a horizon)
    pub(crate) broken: Vec<(u32, Vec<u32>)>, // invariants at the horizon (`label`)
    pub(crate) tuples: FxMap<Vec<Val>, u32>, // the keys made of a list, as `Val::List`s
    pub(crate) counter_exp: FxMap<crate::counters::ExpKey, i32>, // decimal counters' exponents
    pub(crate) steps: Option<Box<crate::shard::Steps>>, // a shard's bookkeeping (`shard.rs`)
}

impl<'p> World<'p> {
    /// The events (time-ordered, up to the horizon) applied in the engine's order, then the
    /// deadlines up to the horizon.
    pub(crate) fn replay(p: &'p Program, strings: Interner, ev: Events, ids: Vec<u32>, horizon: Option<i64>) -> Res<Self> {
        let mut w = World::applied(p, strings, ev, ids, horizon.is_some())?;
        if let Some(h) = horizon {
            w.finish(h)?;
        }
        Ok(w)
    }

    /// The events applied, the World stopped before `finish` (what a saved state holds);
    /// `clock`: a horizon will come, so the periods' ticks and closes are scheduled.
    pub(crate) fn applied(p: &'p Program, strings: Interner, ev: Events, ids: Vec<u32>, clock: bool) -> Res<Self> {
        World::applied_with(p, strings, ev, ids, clock, None)
    }

    /// `applied`, recording a shard's steps where `steps` is given (`shard.rs`).
    pub(crate) fn applied_with(
        p: &'p Program,
        strings: Interner,
        ev: Events,
        ids: Vec<u32>,
        clock: bool,
        steps: Option<Box<crate::shard::Steps>>,
    ) -> Res<Self> {
        let mut w = World {
            p,
            strings,
            ev,
            ids,
            now: 0,
            subjects: Vec::new(),
            subject_ix: crate::dense::SymIx::default(),
            pend: Vec::new(),
            duty_state: Vec::new(),
            duty_fields: Vec::new(),
            duty_cancels: Vec::new(),
            obligations: Vec::new(),
            trace: Vec::new(),
            conflicts: Vec::new(),
            fired: Vec::new(),
            fired_ix: FxMap::default(),
            timers: crate::timers::Timers::default(),
            seq: 0,
            waiting: FxMap::default(),
            overdue: FxMap::default(),
            cancels: FxMap::default(),
            live_keys: FxMap::default(),
            chains: Vec::new(),
            hist_subj: FxMap::default(),
            hist_type: FxMap::default(),
            step_owner: FxMap::default(),
            penalties: Vec::new(),
            rejected: false,
            rejections: Vec::new(),
            ladders: FxMap::default(),
            party_counters: Vec::new(),
            party_ix: FxMap::default(),
            violations: Vec::new(),
            labels: Vec::new(),
            real: 0,
            late: Vec::new(),
            origin: Vec::new(),
            queue: Vec::new(),
            counter_log: Vec::new(),
            joined: Vec::new(),
            closes: Vec::new(),
            event_labels: Vec::new(),
            event_label_ix: FxMap::default(),
            classified: Vec::new(),
            horizon_reached: false,
            broken: Vec::new(),
            tuples: FxMap::default(),
            counter_exp: FxMap::default(),
            steps,
        };
        w.real = w.ev.len();
        // sized from the history once, above what the packs make (the huixiao pack: 1.5
        // trace rows, 0.8 duties and 0.7 obligations an event): a long history's rows are not
        // copied as they grow, into memory the system must hand out and zero afresh. What is
        // reserved and not written costs address space, not memory.
        w.joined.reserve(w.real);
        w.trace.reserve(2 * w.real);
        w.pend.reserve(w.real);
        w.duty_state.reserve(w.real);
        w.obligations.reserve(w.real);
        if w.real > 0 && clock {
            w.schedule_clock(w.ev.at(0))?;
        }
        let mut ahead = crate::ahead::Ahead::new();
        for e in 0..w.real {
            ahead.fetch(&w, e);
            w.step(e)?;
        }
        Ok(w)
    }

    pub(crate) fn schedule_clock(&mut self, first: i64) -> Res<()> {
        self.schedule_ticks(first)?;
        self.schedule_closes(first)
    }

    /// One event of the history: the deadlines before it, then the event.
    pub(crate) fn step(&mut self, e: usize) -> Res<()> {
        self.fire_until(2 * self.ev.at(e) + 1)?;
        self.shard_event(e);
        self.apply(e)
    }

    /// The deadlines up to the horizon, then what is measured there.
    pub(crate) fn finish(&mut self, h: i64) -> Res<()> {
        self.fire_until(2 * h + 1)?;
        self.finish_metrics(h)?;
        self.labels = self.label_all(h)?;
        self.horizon_reached = true;
        self.broken = self.broken_at(h)?;
        Ok(())
    }

    /// Whether row `e` is a derived event (`owner`) or a tick, not one of the history.
    pub(crate) fn derived(&self, e: usize) -> bool {
        e >= self.real && (self.late.is_empty() || self.late.binary_search(&e).is_err())
    }

    /// The place of a derived row in `origin`.
    pub(crate) fn origin_ix(&self, e: usize) -> usize {
        e - self.real - self.late.partition_point(|&r| r < e)
    }

    /// The place in the history of a row of it.
    pub(crate) fn history_ix(&self, e: usize) -> usize {
        if e < self.real { e } else { self.real + self.late.partition_point(|&r| r < e) }
    }

    pub(crate) fn subject(&mut self, sid: u32) -> usize {
        if let Some(&i) = self.subject_ix.get(&sid) {
            return i;
        }
        self.subjects.push(Subj { id: sid, ..Default::default() });
        self.subject_ix.insert(sid, self.subjects.len() - 1);
        self.subjects.len() - 1
    }

    pub(crate) fn val(&self, op: &Op, c: &Ctx) -> Res<Val> {
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
            Op::Item => c.item,
            Op::Subject => c.subject.map_or(Val::Null, Val::Str),
            Op::Owner => match c.subj {
                Some(s) => self.subjects[s].owner.map_or(Val::Null, Val::Str),
                None => Val::Null,
            },
            Op::OwnerSince => match c.subj {
                // `set_owner` opens a span whenever it names an owner
                Some(s) if self.subjects[s].owner.is_some() => {
                    self.subjects[s].spans.last().map_or(Val::Null, |sp| Val::Int(sp.start))
                }
                _ => Val::Null,
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
            Op::Values(_) => return Err("a list of values where one value belongs".into()),
            Op::Len(inner) => self.len_of(inner, c)?,
            Op::Count(q) => Val::Int(self.count(q, c)?),
            Op::Plus(base, w) => match self.val(base, c)? {
                Val::Int(start) => Val::Int(crate::cal::due(*w, start, self.p.max_us)?),
                _ => Val::Null,
            },
            Op::OwnerOf(inner) => match self.val(inner, c)? {
                Val::Str(sid) => match self.subject_ix.get(&sid).and_then(|&i| self.subjects[i].owner) {
                    Some(o) => Val::Str(o),
                    None => Val::Null,
                },
                _ => Val::Null,
            },
            Op::Coalesce(items) => self.coalesce(items, c)?,
            Op::FlagOf(who, name) => self.flag_of(who, *name, c)?,
            Op::First(q, field, last) => self.first_of(q, *field, *last, c)?,
            Op::ValuesOf(..) => return Err("a list of values where one value belongs".into()),
            Op::Sum(terms) => self.sum(terms, c)?,
            Op::Arith(code, args) => self.arith(*code, args, c)?,
            Op::Fold(code, terms) => self.fold(*code, terms, c)?,
            Op::Counter(name) => {
                let found = c.subj.and_then(|s| self.subjects[s].counters.iter().find(|(n, _)| n == name));
                let exp = c.subj.map_or(0, |s| self.counter_exp_of((false, self.subjects[s].id, *name)));
                Val::Dec(exp, found.map_or(0, |(_, v)| *v))
            }
            Op::Date(inner, offset, from) => self.local_date(inner, *offset, *from, c)?,
            Op::Tuple(_) => return Err("a list value where one value belongs".into()),
            Op::Subjects(..) => return Err("subjects where one value belongs".into()),
            Op::ValuesList(..) => return Err("a list of values where one value belongs".into()),
            Op::Div(a, b) => self.div(a, b, c)?,
            Op::Round(x, digits, mode) => self.round(x, *digits, *mode, c)?,
            Op::Avg(terms) => self.avg(terms, c)?,
            Op::Ago(us, from, min) => self.ago(*us, *from, *min, c)?,
            Op::CounterOf(name) => self.counter_of(*name, c)?,
        })
    }

    pub(crate) fn claims(&self, op: &Op, c: &Ctx) -> Res<Vec<u32>> {
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

    /// `Queries.history` counted, up to `limit` events (1: `history`, whether any).
    pub(crate) fn count(&self, q: &CountQ, c: &Ctx) -> Res<i64> {
        self.count_up_to(q, c, i64::MAX)
    }

    pub(crate) fn count_up_to(&self, q: &CountQ, c: &Ctx, limit: i64) -> Res<i64> {
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
        let mut n = 0;
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
                if want.iter().all(|(f, v)| py_eq(self.ev.val(e, *f), *v)) {
                    n += 1;
                    if n >= limit {
                        return Ok(n);
                    }
                }
            }
        }
        Ok(n)
    }

    pub(crate) fn holds(&self, cond: &Cond, c: &Ctx) -> Res<bool> {
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
            Cond::History(q) => self.count_up_to(q, c, 1)? > 0,
            Cond::Exists(op) => self.val(op, c)? != Val::Null,
            Cond::In(a, Op::Values(items)) => {
                let x = self.val(a, c)?;
                for item in items {
                    if manual_eq(x, self.val(item, c)?) {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::In(a, b) => {
                let x = self.val(a, c)?;
                self.claims(b, c)?.iter().any(|e| manual_eq(x, Val::Str(*e)))
            }
            Cond::Cmp(code, a, b) => {
                if let Some(r) = self.list_test(*code, a, b, c)? {
                    return Ok(r);
                }
                let (x, y) = (self.val(a, c)?, self.val(b, c)?);
                if let Some(r) = self.date_test(*code, x, y) {
                    return Ok(r);
                }
                match code {
                    0 => manual_eq(x, y),
                    1 => !manual_eq(x, y),
                    _ => {
                        let ord = match (x, y) {
                            (Val::Int(i), Val::Int(j)) => Some(i.cmp(&j)),
                            (Val::Str(i), Val::Str(j)) => {
                                Some(self.strings.names[i as usize].cmp(&self.strings.names[j as usize]))
                            }
                            (Val::Dec(..), _) | (_, Val::Dec(..)) => crate::decimal::order(x, y)?,
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

    pub(crate) fn trace(&mut self, rule: usize, causes: Causes, tr: Tr) {
        self.trace.push(Row { at: self.now, rule, causes, tr });
    }

    pub(crate) fn need_subject(&mut self, c: &Ctx) -> Res<(u32, usize)> {
        match c.subject {
            Some(s) => Ok((s, self.subject(s))),
            None => Err("an action on an event that names no subject (the engine refuses it)".into()),
        }
    }

    pub(crate) fn text(&self, v: Val, what: &str) -> Res<Option<u32>> {
        match v {
            Val::Null => Ok(None),
            Val::Str(s) => Ok(Some(s)),
            other => Err(format!("{what} came out as {other:?}, not text")),
        }
    }

    pub(crate) fn run(&mut self, acts: &'p [Act], c: &Ctx, rule: usize, causes: Causes) -> Res<()> {
        for a in acts {
            if let Some(each @ Op::Subjects(..)) = &a.for_each {
                self.each_subject(a, each, c, rule, causes)?;
                continue;
            }
            if let Some(each) = &a.for_each {
                // `_run_one`: `value or []`, a list item by item, any other value as one
                let items = match self.items_of(each, c)? {
                    Some(items) => items,
                    None => match self.val(each, c)? {
                    Val::List(i) => self.ev.lists[i as usize].clone(),
                    Val::Null | Val::Bool(false) | Val::Int(0) => Vec::new(),
                    Val::Str(s) if self.strings.names[s as usize].is_empty() => Vec::new(),
                    v => vec![v],
                    },
                };
                for item in items {
                    let ci = Ctx { item, ..*c };
                    if let Some(w) = &a.when {
                        if !self.holds(w, &ci)? {
                            continue;
                        }
                    }
                    self.act(a, &ci, rule, causes)?;
                }
                continue;
            }
            if let Some(w) = &a.when {
                if !self.holds(w, c)? {
                    continue;
                }
            }
            self.act(a, c, rule, causes)?;
        }
        Ok(())
    }

    pub(crate) fn act(&mut self, a: &'p Act, c: &Ctx, rule: usize, causes: Causes) -> Res<()> {
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
            Kind::Reject { text, reason } => {
                self.rejected = true;
                self.rejections.push((c.event, self.now, rule, *reason));
                self.trace(rule, causes, Tr::Reject { subject: c.subject, text: *text });
            }
            Kind::Transfer(from, to) => {
                let from = self.val(from, c)?;
                let to = self.val(to, c)?;
                self.transfer(from, to, rule, causes)?;
            }
            Kind::DropClaims(op) => {
                let emp = self.val(op, c)?;
                self.drop_claims(emp, rule, causes)?;
            }
            Kind::Penalty(ix) => self.penalize(*ix, c, rule, causes)?,
            Kind::Add { name, by, party } => self.add(*name, by, party.as_ref(), c, rule, causes)?,
            Kind::Violation { what, party } => self.violate(*what, party, c, rule, causes)?,
        }
        Ok(())
    }

    pub(crate) fn set_flag(&mut self, sid: u32, s: usize, name: u32, value: Val, rule: usize, causes: Causes) {
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

    pub(crate) fn set_owner(&mut self, sid: u32, s: usize, owner: Option<u32>, rule: usize, causes: Causes) {
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
        self.derive_owner(sid, owner, previous, causes);
    }

    pub(crate) fn apply(&mut self, e: usize) -> Res<()> {
        let p = self.p;
        self.now = self.ev.at(e);
        self.step_owner.clear();
        let sid = match self.ev.subject(e) {
            Val::Str(s) => Some(s),
            Val::Null => None,
            other => return Err(format!("a subject value {other:?}, not text")),
        };
        let subj = sid.map(|s| self.subject(s));
        let c = Ctx { now: self.now, event: Some(e), trigger: None, subject: sid, subj, party: Val::Null, item: Val::Null };
        let et = self.ev.ty(e);
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
            let mut suppressed: FxSet<u32> = FxSet::default();
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
        let plain = p.plain.contains(&et);
        if !plain {
            // rules that reject run first; a rejected event does nothing else, nor joins the
            // history
            self.rejected = false;
            for &r in &matched {
                if p.rules[r].rejects {
                    self.run(&p.rules[r].actions, &c, r, Causes(e, None))?;
                }
            }
            if self.rejected {
                return Ok(());
            }
        }
        self.classify(e, &c)?;
        if p.awaited.contains(&et) {
            self.settle(e)?;
        }
        for &r in &matched {
            if plain || !p.rules[r].rejects {
                self.run(&p.rules[r].actions, &c, r, Causes(e, None))?;
            }
        }
        if self.derived(e) {
            return Ok(()); // a derived event is a consequence, not history
        }
        if !self.queue.is_empty() {
            self.drain()?;
        }
        self.joined.push(e);
        if p.queried.contains(&et) {
            // filed for the history queries (`count_up_to`), which read no other type
            if let Some(s) = sid {
                self.hist_subj.entry((s, et)).or_default().push(e);
            }
            self.hist_type.entry(et).or_default().push(e);
        }
        Ok(())
    }
}

