//! The intermediate form read once: rules, conditions, duties and the event fields the core
//! reads, with every string interned (`Interner`).

use serde_json::Value as J;
use std::hash::Hasher;
use crate::fx::{FxMap, FxSet};

pub(crate) const IR_VERSION: i64 = 8;
pub(crate) const CLAIM_STATUS: [&str; 3] = ["open", "lapsed", "released"];

pub(crate) type Res<T> = Result<T, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Str(u32),
    List(u32), // an event's list of texts (`Events::lists`), read only by `for_each`
    Dec(i32, i64), // coefficient × 10^exponent (`decimal.rs`), only ever compared
    Date(i32),     // a local date, days since 1970-01-01 (`dates.rs`)
}

/// Python's `==` on the values the core holds (`True == 1`).
pub(crate) fn py_eq(a: Val, b: Val) -> bool {
    match (a, b) {
        (Val::Dec(..), _) | (_, Val::Dec(..)) => crate::decimal::same(a, b, true),
        (Val::Bool(x), Val::Int(y)) | (Val::Int(y), Val::Bool(x)) => (x as i64) == y,
        _ => a == b,
    }
}

/// The manual's equality (`operators._equal`): a yes/no never equals a number.
pub(crate) fn manual_eq(a: Val, b: Val) -> bool {
    match (a, b) {
        (Val::Dec(..), _) | (_, Val::Dec(..)) => crate::decimal::same(a, b, false),
        _ => a == b,
    }
}

/// Every string the core holds, as a number: one copy of each, found by its hash (a chain
/// through `next` where two hash alike).
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Interner {
    pub(crate) ids: FxMap<u64, u32>, // hash -> the latest string with it
    pub(crate) next: Vec<u32>,       // the previous string with the same hash (or u32::MAX)
    pub(crate) names: Vec<String>,
}

impl Interner {
    pub(crate) fn sym(&mut self, s: &str) -> u32 {
        let mut h = crate::fx::FxHasher::default();
        h.write(s.as_bytes());
        let h = h.finish();
        let head = self.ids.get(&h).copied();
        let mut at = head.unwrap_or(u32::MAX);
        while at != u32::MAX {
            if self.names[at as usize] == s {
                return at;
            }
            at = self.next[at as usize];
        }
        let i = self.names.len() as u32;
        self.ids.insert(h, i);
        self.next.push(head.unwrap_or(u32::MAX));
        self.names.push(s.to_owned());
        i
    }

    pub(crate) fn reserve(&mut self, n: usize) {
        self.ids.reserve(n);
        self.next.reserve(n);
        self.names.reserve(n);
    }
}

pub(crate) enum Op {
    Lit(Val),
    Event(Field),
    Trigger(Field),
    Now,
    Party,
    Item,
    Subject,
    Owner,
    OwnerSince,
    Flag(u32),
    Claims(Option<u8>),
    Values(Vec<Op>), // written values, only as the list of an `in`
    Len(Box<Op>),
    Count(Box<CountQ>),
    OwnerOf(Box<Op>), // another subject's owner (null where unknown)
    Plus(Box<Op>, Window), // an instant plus a duration (`Duration.due`)
    Coalesce(Vec<Op>),     // the first value not null (`value.rs`)
    FlagOf(Box<Op>, u32),  // another subject's flag
    First(Box<CountQ>, Field, Option<i64>), // `first` of `values`: a field of the newest match
    ValuesOf(Box<CountQ>, Field), // `values`, only as a term of a `sum`
    Sum(Vec<Op>),                 // exact decimals (`decimal.rs`)
    Arith(u8, Vec<Op>),           // add, sub, mul
    Fold(u8, Vec<Op>),            // min, max: terms as a sum's
    Counter(u32),                 // the subject's counter (0 where it has none), as a decimal
    Date(Box<Op>, i64, i64),      // an instant's local date: the zone's steady offset, from when
    Tuple(Vec<Op>),               // a written list, only as a duty's key (`dates.rs`)
    Subjects(u8, Option<Box<Op>>, Option<Box<Cond>>), // only as a `for_each_subject` (`subjects.rs`)
    ValuesList(Box<CountQ>, Field, Option<i64>), // `values` as a list (`lists.rs`)
    Div(Box<Op>, Box<Op>),        // exact quotients only (`numbers.rs`)
    Round(Box<Op>, i32, u8),      // `quantize` to `10^-digits`, in a mode
    Avg(Vec<Op>),                 // terms as a sum's, over how many (`numbers.rs`)
    Ago(i64, Option<i64>, i64),   // now less that much (exact from then on), at least the least
    CounterOf(u32),               // `$party`'s counter, else the subject's
}

#[derive(Clone, Copy)]
pub(crate) enum Field {
    Id,
    Type,
    At,
    Slot(usize),
}

pub(crate) struct CountQ {
    pub(crate) types: Vec<u32>,
    pub(crate) subject: Option<Op>,
    pub(crate) matches: Vec<(usize, Op)>,
    pub(crate) since: Option<Op>,
    pub(crate) back: Option<Back>,
}

/// A look-back (`within` in a history query): the last `us`, or `months` calendar months
/// (the zone's steady `offset`), exact from `from` on.
#[derive(Clone, Copy)]
pub(crate) struct Back {
    pub(crate) us: i64,
    pub(crate) months: i64,
    pub(crate) offset: i64,
    pub(crate) from: Option<i64>,
}

pub(crate) enum Cond {
    Bool(bool),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Exists(Op),
    In(Op, Op),
    Cmp(u8, Op, Op), // 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge
    History(Box<CountQ>), // at least one earlier event matches
}

pub(crate) enum Kind {
    Claim(Op),
    Lapse(Op),
    Assign(Op),
    Set(u32, Op),
    Clear(u32),
    Expect(usize),
    Reject { text: u32, reason: u32 }, // refuse the event (the trace's text, the row's reason)
    Transfer(Op, Op), // every subject of one owner to another
    DropClaims(Op),   // release a claimant's open claims on every subject
    Penalty(usize),                                  // an index into `Program::penalties`
    Add { name: u32, by: Op, party: Option<Op> },   // a counter, the party's or the subject's
    Violation { what: u32, party: Op },              // a breach recorded (`value.rs`)
}

/// One step of a sanction: amounts as exact decimal text (made `Decimal` on the way out).
pub(crate) struct Step {
    pub(crate) sanction: u32,
    pub(crate) amount: Option<(u32, u32)>,
    pub(crate) table: Option<crate::value::Table>, // an amount looked up by a key
    pub(crate) salary_days: Option<u32>,
}

/// A penalty as `Ledger.penalize` applies it: offences numbered per `(key, party)`.
pub(crate) struct Penalty {
    pub(crate) party: Op,
    pub(crate) key: u32,
    pub(crate) ladder: bool,
    pub(crate) steps: Vec<Step>,
    pub(crate) per_unit: Option<(u32, u32)>,
    pub(crate) units: Option<Op>,
}

pub(crate) struct Act {
    pub(crate) when: Option<Cond>,
    pub(crate) for_each: Option<Op>, // run once per item, `$item` each
    pub(crate) kind: Kind,
}

pub(crate) struct Spec {
    pub(crate) types: Vec<u32>,
    pub(crate) subject: Option<Op>,
    pub(crate) matches: Vec<(usize, Op)>,
    pub(crate) within: Option<Window>,
    pub(crate) obligation: Option<u32>,
    pub(crate) party: Option<Op>,
    pub(crate) cancels: Vec<Cancel>,
    pub(crate) watch_late: bool,
    pub(crate) key: Option<(i64, Op)>, // the key's scope (a named one, or this spec's own), its value
    pub(crate) where_: Option<Cond>,   // on the candidate event
    pub(crate) after: Option<Window>,  // the window opens then
    pub(crate) about: Option<Op>,      // the obligation's subject
    pub(crate) steps: Vec<crate::duty::StepSpec>, // a schedule's duties (none: one duty)
    pub(crate) consume: bool,
    pub(crate) out_of_order: Vec<Act>,
    pub(crate) every: Option<crate::duty::Every>, // a duty per local period
    pub(crate) repeat: bool,                        // a cadence, renewed when met
    pub(crate) roll: Option<(i64, i64)>,            // deadlines off days off: (offset, from)
    pub(crate) met: Vec<Act>,
    pub(crate) late: Vec<Act>,
    pub(crate) missed: Vec<Act>,
}

/// One `cancel_on` entry: its types, its field values (fixed at the duty's start), `where`.
pub(crate) struct Cancel {
    pub(crate) types: Vec<u32>,
    pub(crate) subject: Option<Op>,
    pub(crate) matches: Vec<(usize, Op)>,
    pub(crate) where_: Option<Cond>,
}

/// A duty's window (`times.Duration.due`): `us` after the start, or after the local midnight
/// beginning the start's day (the zone's offset `midnight`); from `from` on only.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    pub(crate) us: i64,
    pub(crate) months: i64, // calendar months first (a steady offset: `from` is set), then `us`
    pub(crate) offset: i64, // the zone's steady offset, where `months` is not 0
    pub(crate) from: Option<i64>,
    pub(crate) midnight: Option<i64>,
    pub(crate) inclusive: bool,
    pub(crate) month_start: bool, // from the first of the start's local month (`end of month`)
    pub(crate) working_days: i64, // that many working days on (`Program::workcal`), not `us`
    pub(crate) working_us: i64,   // that much business time on (`workhours.rs`), not `us`
}

pub(crate) struct Rule {
    pub(crate) id: u32,
    pub(crate) rank: i64,
    pub(crate) overrides: Vec<u32>,
    pub(crate) rejects: bool, // a `reject` among its actions: run before the others
    pub(crate) when: Option<Cond>,
    pub(crate) actions: Vec<Act>,
}

/// The IR read once: rules, duties, the event fields the core reads, interned.
pub(crate) struct Program {
    pub(crate) strings: Interner,
    pub(crate) fields: Vec<String>, // the subject field first, then every field the rules read
    pub(crate) rules: Vec<Rule>,
    pub(crate) specs: Vec<Spec>,
    pub(crate) by_trigger: FxMap<u32, Vec<usize>>,
    pub(crate) plain: FxSet<u32>, // trigger types none of whose rules override another
    pub(crate) awaited: FxSet<u32>,
    pub(crate) max_us: i64,
    pub(crate) checks: FxMap<u32, Vec<FieldCheck>>, // per declared event type
    pub(crate) ignore_unknown: bool,                   // `unknown_events: ignore`
    pub(crate) penalties: Vec<Penalty>,
    pub(crate) currency: Option<u32>,
    pub(crate) instant_flags: FxSet<u32>, // flags whose whole numbers are instants (`value.rs`)
    pub(crate) workcal: Option<crate::workcal::WorkCal>, // where a duty counts working days
    pub(crate) labels: Vec<crate::label::Label>,
    pub(crate) classifying: FxMap<u32, Vec<usize>>, // event type -> labels with `on:` it
    pub(crate) invariants: Vec<(u32, Cond)>,         // id, holds
    pub(crate) owner_changed: Option<crate::owner::Emit>, // derived events to make
    pub(crate) periodic: Option<crate::periodic::Periods>, // rules with `every:`, metrics
    pub(crate) metric_units: Vec<u8>,                      // the metrics' periods, sorted
    pub(crate) reads_id: bool, // `$event.id` is read: the events' ids are interned (`input.rs`)
    pub(crate) queried: FxSet<u32>, // the event types a history query reads (`World::apply`)
}

/// What the core reads of a declared field: only checks it can make exactly as `prepare`
/// does; anything else (`Other`) makes it hand the history back to `prepare`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Str,
    Int,
    Bool,
    Other,
    IntIn(Option<i64>, Option<i64>), // a whole number within bounds (`fields.rs`)
    Texts,                           // a list of texts
    Date,                            // checked, not held
    Time,
    Dec,
}

pub(crate) struct FieldCheck {
    pub(crate) name: String,
    pub(crate) kind: FieldKind,
    pub(crate) required: bool,
    pub(crate) choices: Option<FxSet<String>>,
    pub(crate) default: Option<Val>, // a default the core holds
    pub(crate) opaque_default: bool, // a default it does not hold
    pub(crate) slot: Option<usize>,  // the column, where the rules read the field
}

pub(crate) struct Loader {
    pub(crate) strings: Interner,
    pub(crate) fields: Vec<String>,
    pub(crate) specs: Vec<Spec>,
    pub(crate) penalties: Vec<Penalty>,
    pub(crate) reads_id: bool, // a `Field::Id` was made
    pub(crate) queried: FxSet<u32>, // the types of every query made
}

pub(crate) fn get<'a>(v: &'a J, key: &str) -> Res<&'a J> {
    v.get(key).ok_or_else(|| format!("the IR lacks {key:?} in {v}"))
}

pub(crate) fn text(v: &J) -> Res<&str> {
    v.as_str().ok_or_else(|| format!("the IR has {v} where text belongs"))
}

impl Loader {
    pub(crate) fn slot(&mut self, name: &str) -> Field {
        match name {
            "id" => {
                self.reads_id = true;
                Field::Id
            }
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

    pub(crate) fn data_slot(&mut self, name: &str) -> Res<usize> {
        match self.slot(name) {
            Field::Slot(i) => Ok(i),
            _ => Err(format!("a match on the built-in field {name:?}")),
        }
    }

    pub(crate) fn lit(&mut self, v: &J) -> Res<Val> {
        Ok(match v {
            J::Null => Val::Null,
            J::Bool(b) => Val::Bool(*b),
            J::Number(n) => Val::Int(n.as_i64().ok_or("a number out of range")?),
            J::Object(d) if d.contains_key("dec") => {
                crate::decimal::parse(text(&d["dec"])?).ok_or("a decimal the core does not hold")?
            }
            J::String(s) => Val::Str(self.strings.sym(s)),
            _ => return Err(format!("the literal {v}")),
        })
    }

    pub(crate) fn types(&mut self, v: &J) -> Res<Vec<u32>> {
        let list = v.as_array().ok_or("types are a list")?;
        list.iter().map(|t| Ok(self.strings.sym(text(t)?))).collect()
    }

    pub(crate) fn op(&mut self, v: &J) -> Res<Op> {
        if let Some(l) = v.get("lit") {
            return Ok(Op::Lit(self.lit(l)?));
        }
        if let Some(r) = v.get("ref") {
            return Ok(match text(r)? {
                "event" => Op::Event(self.slot(text(get(v, "field")?)?)),
                "trigger" => Op::Trigger(self.slot(text(get(v, "field")?)?)),
                "now" => Op::Now,
                "party" => Op::Party,
                "item" => Op::Item,
                "subject" => Op::Subject,
                "owner" => Op::Owner,
                "owner_since" => Op::OwnerSince,
                "flag" => Op::Flag(self.strings.sym(text(get(v, "name")?)?)),
                "counter" => Op::Counter(self.strings.sym(text(get(v, "name")?)?)),
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
        if let Some(items) = v.get("values") {
            let items = items.as_array().ok_or("values are a list")?;
            return Ok(Op::Values(items.iter().map(|x| self.op(x)).collect::<Res<_>>()?));
        }
        if let Some(inner) = v.get("len") {
            return Ok(Op::Len(Box::new(self.op(inner)?)));
        }
        if let Some(base) = v.get("plus") {
            let w = self.window(get(v, "window")?)?;
            return Ok(Op::Plus(Box::new(self.op(base)?), w));
        }
        if let Some(inner) = v.get("owner_of") {
            return Ok(Op::OwnerOf(Box::new(self.op(inner)?)));
        }
        if let Some(q) = v.get("count") {
            return Ok(Op::Count(Box::new(self.query(q)?)));
        }
        if let Some(op) = self.value_op(v)? {
            return Ok(op);
        }
        if let Some(op) = self.date_op(v)? {
            return Ok(op);
        }
        if let Some(op) = self.subjects_op(v)? {
            return Ok(op);
        }
        if let Some(op) = self.list_op(v)? {
            return Ok(op);
        }
        if let Some(op) = self.number_op(v)? {
            return Ok(op);
        }
        Err(format!("the value {v}"))
    }

    /// A history query (`count`, `history`): types, subject, text matches, `since`, and a
    /// look-back of `us` microseconds (exact from `from` on).
    pub(crate) fn query(&mut self, q: &J) -> Res<CountQ> {
        let types = self.types(get(q, "types")?)?;
        self.queried.extend(types.iter().copied());
        let subject = match get(q, "subject")? {
            J::Null => None,
            s => Some(self.op(s)?),
        };
        let matches = self.matches(get(q, "match")?)?;
        let since = match get(q, "since")? {
            J::Null => None,
            s => Some(self.op(s)?),
        };
        let back = match get(q, "back")? {
            J::Null => None,
            b => Some(Back {
                us: get(b, "us")?.as_i64().ok_or("a look-back in microseconds")?,
                months: get(b, "months")?.as_i64().ok_or("a look-back's months")?,
                offset: get(b, "offset")?.as_i64().ok_or("a look-back's offset")?,
                from: get(b, "from")?.as_i64(),
            }),
        };
        Ok(CountQ { types, subject, matches, since, back })
    }

    pub(crate) fn matches(&mut self, v: &J) -> Res<Vec<(usize, Op)>> {
        let list = v.as_array().ok_or("a match is a list")?;
        let mut out = Vec::new();
        for pair in list {
            let name = text(&pair[0])?;
            let slot = self.data_slot(name)?;
            out.push((slot, self.op(&pair[1])?));
        }
        Ok(out)
    }

    pub(crate) fn cond(&mut self, v: &J) -> Res<Cond> {
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
            "history" => Cond::History(Box::new(self.query(get(v, "query")?)?)),
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

    pub(crate) fn when(&mut self, v: &J) -> Res<Option<Cond>> {
        match v.get("when") {
            None | Some(J::Null) => Ok(None),
            Some(c) => Ok(Some(self.cond(c)?)),
        }
    }

    pub(crate) fn acts(&mut self, v: &J) -> Res<Vec<Act>> {
        v.as_array().ok_or("actions are a list")?.iter().map(|a| self.act(a)).collect()
    }

    pub(crate) fn act(&mut self, v: &J) -> Res<Act> {
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
            "expect" => Kind::Expect(self.spec(v)?),
            "reject" => Kind::Reject {
                text: self.strings.sym(text(get(v, "text")?)?),
                reason: self.strings.sym(text(get(v, "reason")?)?),
            },
            "transfer" => Kind::Transfer(self.op(get(v, "from")?)?, self.op(get(v, "to")?)?),
            "drop_claims" => Kind::DropClaims(self.op(get(v, "value")?)?),
            "penalty" => Kind::Penalty(self.penalty(v)?),
            "violation" => self.violation(v)?,
            "add" => {
                let name = self.strings.sym(text(get(v, "name")?)?);
                let by = self.op(get(v, "by")?)?;
                let party = match get(v, "party")? {
                    J::Null => None,
                    p => Some(self.op(p)?),
                };
                Kind::Add { name, by, party }
            }
            other => return Err(format!("the action {other:?}")),
        };
        let for_each = match v.get("for_each") {
            None | Some(J::Null) => None,
            Some(each) => Some(self.op(each)?),
        };
        Ok(Act { when, for_each, kind })
    }
}

impl Loader {
    pub(crate) fn window(&mut self, w: &J) -> Res<Window> {
        Ok(Window {
            us: get(w, "us")?.as_i64().ok_or("a window in microseconds")?,
            months: get(w, "months")?.as_i64().ok_or("a window's months")?,
            offset: get(w, "offset")?.as_i64().ok_or("a window's offset")?,
            from: get(w, "from")?.as_i64(),
            midnight: get(w, "midnight")?.as_i64(),
            inclusive: get(w, "inclusive")?.as_bool().ok_or("inclusive")?,
            month_start: w.get("month_start").and_then(J::as_bool).unwrap_or(false),
            working_days: w.get("working_days").and_then(J::as_i64).unwrap_or(0),
            working_us: w.get("working_us").and_then(J::as_i64).unwrap_or(0),
        })
    }

    pub(crate) fn range(&mut self, v: &J) -> Res<Option<(u32, u32)>> {
        match v {
            J::Null => Ok(None),
            J::Array(pair) if pair.len() == 2 => {
                Ok(Some((self.strings.sym(text(&pair[0])?), self.strings.sym(text(&pair[1])?))))
            }
            other => Err(format!("the amount {other}")),
        }
    }

    fn penalty(&mut self, v: &J) -> Res<usize> {
        let mut steps = Vec::new();
        for s in get(v, "steps")?.as_array().ok_or("steps are a list")? {
            let salary_days = match get(s, "salary_days")? {
                J::Null => None,
                d => Some(self.strings.sym(text(d)?)),
            };
            let (amount, table) = match get(s, "amount")? {
                t @ J::Object(_) => (None, Some(self.table(t)?)),
                a => (self.range(a)?, None),
            };
            steps.push(Step {
                sanction: self.strings.sym(text(get(s, "sanction")?)?),
                amount,
                table,
                salary_days,
            });
        }
        if steps.is_empty() {
            return Err("a penalty without a step".into());
        }
        let units = match get(v, "units")? {
            J::Null => None,
            u => Some(self.op(u)?),
        };
        let pen = Penalty {
            party: self.op(get(v, "party")?)?,
            key: self.strings.sym(text(get(v, "key")?)?),
            ladder: get(v, "ladder")?.as_bool().ok_or("ladder")?,
            steps,
            per_unit: self.range(get(v, "per_unit")?)?,
            units,
        };
        self.penalties.push(pen);
        Ok(self.penalties.len() - 1)
    }
}

pub(crate) fn load(ir: &J) -> Res<Program> {
    let version = get(ir, "ir_version")?.as_i64().ok_or("ir_version")?;
    if version != IR_VERSION {
        return Err(format!("IR version {version}; this core reads version {IR_VERSION}"));
    }
    let policy = get(ir, "policy")?;
    let mut ld = Loader { strings: Interner::default(), fields: Vec::new(), specs: Vec::new(), penalties: Vec::new(), reads_id: false, queried: FxSet::default() };
    ld.fields.push(text(get(policy, "subject_field")?)?.to_owned());
    let max_us = get(policy, "max_us")?.as_i64().ok_or("max_us")?;
    let mut rules = Vec::new();
    let mut by_trigger: FxMap<u32, Vec<usize>> = FxMap::default();
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
        let rejects = get(r, "rejects")?.as_bool().ok_or("rejects")?;
        rules.push(Rule { id, rank, overrides, rejects, when, actions });
    }
    let plain = by_trigger
        .iter()
        .filter(|(_, rs)| rs.iter().all(|&i| rules[i].overrides.is_empty() && !rules[i].rejects))
        .map(|(&t, _)| t)
        .collect();
    pub(crate) fn awaits(acts: &[Act], specs: &[Spec], out: &mut FxSet<u32>) {
        for a in acts {
            if let Kind::Expect(s) = a.kind {
                let sp = &specs[s];
                out.extend(sp.types.iter().copied());
                out.extend(sp.cancels.iter().flat_map(|c| c.types.iter().copied())); // settled as the awaited are
                awaits(&sp.met, specs, out);
                awaits(&sp.late, specs, out);
                awaits(&sp.missed, specs, out);
                awaits(&sp.out_of_order, specs, out);
                out.extend(sp.steps.iter().flat_map(|st| st.types.iter().copied()));
            }
        }
    }
    let labels = ld.labels(ir)?; // before the checks: the fields its queries read are columns
    let invariants = ld.invariants(ir)?;
    let mut awaited = FxSet::default();
    for r in &rules {
        awaits(&r.actions, &ld.specs, &mut awaited);
    }
    let mut checks = FxMap::default();
    for (etype, list) in get(ir, "events")?.as_object().ok_or("events")? {
        let mut out = Vec::new();
        for f in list.as_array().ok_or("event fields")? {
            let name = text(get(f, "name")?)?.to_owned();
            let ty = text(get(f, "type")?)?;
            let enum_text = get(f, "enum_text")?.as_bool().ok_or("enum_text")?;
            let bounded = get(f, "bounded")?.as_bool().ok_or("bounded")?;
            let choices = match get(f, "enum")? {
                J::Null => None,
                e => Some(e.as_array().ok_or("enum")?.iter().map(|x| Ok(text(x)?.to_owned())).collect::<Res<_>>()?),
            };
            let kind = match ty {
                _ if bounded || !enum_text => FieldKind::Other,
                "str" => FieldKind::Str,
                "int" if choices.is_none() => FieldKind::Int,
                "bool" if choices.is_none() => FieldKind::Bool,
                _ => FieldKind::Other,
            };
            let kind = crate::fields::refine(kind, ty, f, choices.is_some())?;
            let default = match get(f, "default")? {
                J::Null => None,
                d => Some(ld.lit(d)?),
            };
            let opaque_default = get(f, "has_default")?.as_bool().ok_or("has_default")? && default.is_none();
            let slot = ld.fields.iter().position(|x| *x == name);
            out.push(FieldCheck {
                name,
                kind,
                required: get(f, "required")?.as_bool().ok_or("required")?,
                choices,
                default,
                opaque_default,
                slot,
            });
        }
        checks.insert(ld.strings.sym(etype), out);
    }
    let ignore_unknown = text(get(policy, "unknown_events")?)? == "ignore";
    let currency = match get(policy, "currency")? {
        J::Null => None,
        c => Some(ld.strings.sym(text(c)?)),
    };
    let instant_flags = crate::value::instant_flags(ir, &mut ld)?;
    let workcal = crate::workcal::WorkCal::load(policy.get("calendar"))?;
    let owner_changed = crate::owner::emits(&mut ld.strings, &by_trigger, &awaited, &ld.fields);
    let periodic = crate::periodic::load(ir, &rules, &mut ld.strings, &ld.fields)?;
    let metric_units = crate::metric::load(ir)?;
    let classifying = crate::label::classifying(&labels);
    if ld.fields.len() > crate::input::MAX_FIELDS {
        // an event's fields present are one word's bits (`input::Events`)
        return Err(format!("rules read {} event fields, the core at most {}", ld.fields.len(), crate::input::MAX_FIELDS));
    }
    Ok(Program {
        instant_flags,
        workcal,
        invariants,
        classifying,
        metric_units,
        periodic,
        owner_changed,
        labels,
        currency,
        penalties: ld.penalties,
        checks,
        ignore_unknown,
        reads_id: ld.reads_id,
        queried: std::mem::take(&mut ld.queried),
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

