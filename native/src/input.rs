//! The events of one history as columns: interned types, i64 instants and one value per field
//! the program reads.

use crate::ir::{Field, Interner, Program, Res, Val};
use crate::Cell;

/// The most fields a program reads: an event's fields present are one word's bits.
pub(crate) const MAX_FIELDS: usize = 64;

/// An event's values are stored compact: only the fields it has (a type declares a few of the
/// program's fields), in slot order, after the values of the events before it. One value per
/// field held 352 bytes an event on the huixiao pack (22 fields, most of them null) and, with
/// the derived events, doubled past its reserve on a long history; compact, the evaluation of
/// 362,263 events peaks 310 bytes an event lower, memory the system need not hand out and
/// zero afresh (on a virtual machine, a large part of a long history's cost).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Events {
    heads: Vec<Head>,  // per event, what a look-up reads first, together
    vals: Vec<Val>,    // the values present, event after event, each in slot order
    pub(crate) k: usize,
    pub(crate) lists: Vec<Vec<Val>>, // the lists of texts `Val::List` names
}

/// An event's type, instant and where its values are, side by side: a duty's conditions read
/// its trigger event, long before, at random in a long history, and one line of memory holds
/// all of this (four columns were four lines, each out of the caches).
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Head {
    at: i64,
    has: u64,   // bit `f` set where field `f` has a value
    start: u64, // its first value in `vals`
    ty: u32,
}

impl Events {
    /// No events yet, for a program reading `k` fields (at most `MAX_FIELDS`: `ir::load`):
    /// room for `capacity` events and the derived ones a policy adds (a quarter more), and
    /// four values each (the huixiao pack's have 2.7), so that a long history's columns are
    /// not copied as the evaluation adds to them; room not written costs address space only.
    pub(crate) fn new(k: usize, capacity: usize) -> Events {
        debug_assert!(k <= MAX_FIELDS);
        let rows = capacity + capacity / 4;
        Events {
            heads: Vec::with_capacity(rows),
            vals: Vec::with_capacity(rows * k.min(4)),
            k,
            lists: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heads.len()
    }

    /// Fetches event `e`'s head and first value into the caches (`ahead.rs`).
    #[inline]
    pub(crate) fn prefetch(&self, e: usize) {
        if let Some(h) = self.heads.get(e) {
            crate::ahead::prefetch(h);
            if let Some(v) = self.vals.get(h.start as usize) {
                crate::ahead::prefetch(v);
            }
        }
    }

    /// Event `e`'s instant.
    #[inline]
    pub(crate) fn at(&self, e: usize) -> i64 {
        self.heads[e].at
    }

    /// Event `e`'s type.
    #[inline]
    pub(crate) fn ty(&self, e: usize) -> u32 {
        self.heads[e].ty
    }

    /// Event `e`'s value of field `slot` (null where it has none).
    #[inline]
    pub(crate) fn val(&self, e: usize, slot: usize) -> Val {
        let Head { has, start, .. } = self.heads[e];
        if has >> slot & 1 == 0 {
            return Val::Null;
        }
        let below = has & ((1u64 << slot) - 1);
        self.vals[start as usize + below.count_ones() as usize]
    }

    /// Event `e`'s subject value: the program's first field.
    #[inline]
    pub(crate) fn subject(&self, e: usize) -> Val {
        self.val(e, 0)
    }

    /// An event at the end; `row` has a value per field, the nulls not kept.
    pub(crate) fn push(&mut self, ty: u32, at: i64, row: &[Val]) {
        debug_assert_eq!(row.len(), self.k);
        let mut has = 0u64;
        let start = self.vals.len() as u64;
        for (f, v) in row.iter().enumerate() {
            if *v != Val::Null {
                has |= 1 << f;
                self.vals.push(*v);
            }
        }
        self.heads.push(Head { at, has, start, ty });
    }

    /// An event made by the evaluation (`owner_changed`, a period's start): the values of
    /// the fields it has, any order.
    pub(crate) fn derive(&mut self, ty: u32, at: i64, set: &[(usize, Val)]) {
        let mut row = [Val::Null; MAX_FIELDS];
        for &(f, v) in set {
            row[f] = v;
        }
        self.push(ty, at, &row[..self.k]);
    }

    fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.vals.truncate(self.heads[n].start as usize);
            self.heads.truncate(n);
        }
    }

    /// Event `e`'s values, one per field: where `Events` built in one order is copied in
    /// another (`read`).
    fn row(&self, e: usize, out: &mut [Val]) {
        for (f, slot) in out.iter_mut().enumerate() {
            *slot = self.val(e, f);
        }
    }

    pub(crate) fn get(&self, e: usize, f: Field, ids: &[u32]) -> Val {
        match f {
            Field::Id => Val::Str(ids[e]),
            Field::Type => Val::Str(self.ty(e)),
            Field::At => Val::Int(self.at(e)),
            Field::Slot(i) => self.val(e, i),
        }
    }
}

/// Events as `Core.run` takes them (types, instants, one column per field), appended to
/// `ev`, strings interned in `strings`.
pub(crate) fn append(
    p: &Program,
    strings: &mut Interner,
    ev: &mut Events,
    types: &[String],
    ats: &[i64],
    columns: &[Vec<Option<Cell>>],
) -> Res<()> {
    let n = types.len();
    let k = p.fields.len();
    if ats.len() != n || columns.len() != k || columns.iter().any(|c| c.len() != n) || ev.k != k {
        return Err("columns of different lengths".into());
    }
    let mut row = vec![Val::Null; k];
    for (e, (t, &at)) in types.iter().zip(ats).enumerate() {
        let ty = strings.sym(t);
        for (f, col) in columns.iter().enumerate() {
            row[f] = match &col[e] {
                Some(Cell::Yes(b)) => Val::Bool(*b),
                Some(Cell::Int(i)) => Val::Int(*i),
                Some(Cell::Dec(d)) => *d,
                Some(Cell::Texts(items)) => {
                    ev.lists.push(items.iter().map(|t| Val::Str(strings.sym(t))).collect());
                    Val::List(ev.lists.len() as u32 - 1)
                }
                Some(Cell::Text(s)) => Val::Str(strings.sym(s)),
                None => Val::Null,
            };
        }
        crate::dates::date_cells(p, ty, &mut row, strings)?;
        ev.push(ty, at, &row);
    }
    Ok(())
}

// ---------------------------------------------------------------- raw events, checked here

use crate::ir::FieldKind;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString};
use crate::fx::FxMap;

const DAY_US: i64 = 86_400_000_000;

/// One history read from the caller's mappings: what `prepare` would make of it, when the core
/// is sure of that.
pub(crate) struct Raw<'py> {
    pub(crate) strings: Interner,
    pub(crate) ev: Events,
    pub(crate) ids: Vec<u32>,
    pub(crate) id_objs: Vec<Bound<'py, PyAny>>,
    pub(crate) duplicates: Vec<Bound<'py, PyAny>>, // ids of identical repeats, input order
    pub(crate) ignored: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>, // (id, type)
    pub(crate) horizon: Option<i64>,
}

/// Why the core hands a history back: `prepare` will either accept it (a form the core does
/// not read) or say exactly what is wrong with it. Never shown; the caller only learns "not
/// sure".
pub(crate) struct Doubt;

type Sure<T> = Result<T, Doubt>;

impl From<PyErr> for Doubt {
    fn from(_: PyErr) -> Self {
        Doubt
    }
}

pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

/// Epoch microseconds of ISO 8601 text that Python's `datetime.fromisoformat` reads the same
/// way: `YYYY-MM-DD`, `T` or a space, `HH:MM[:SS[.f]]` (1 to 6 fraction digits), then `Z` or
/// `±HH:MM`. None for any other form (valid or not): the caller is then not sure.
pub(crate) fn iso_us(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 17 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi) = (digits(&b[11..13])?, digits(&b[14..16])?);
    let mut i = 16;
    let (mut sec, mut frac) = (0, 0);
    if b.get(i) == Some(&b':') {
        sec = digits(b.get(i + 1..i + 3)?)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            let n = end - start;
            if n == 0 || n > 6 {
                return None;
            }
            frac = digits(&b[start..end])? * 10i64.pow((6 - n) as u32);
            i = end;
        }
    }
    let offset = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let (oh, om) = (digits(&[*oh1, *oh2])?, digits(&[*om1, *om2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) * 60_000_000;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if y < 1 || !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let local = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000_000 + sec * 1_000_000 + frac;
    Some(local - offset)
}

/// The first instant in range (`times.MIN_US`: 0001-01-02 UTC).
pub(crate) fn min_us() -> i64 {
    days_from_civil(1, 1, 2) * DAY_US
}

struct Item<'py> {
    at: i64,
    id: Bound<'py, PyAny>,
    id_sym: u32,
    etype: u32,
    row: usize, // its place in the events read (`staged`), in input order
    raw: u32,   // its place in `raws`
}

/// `read`'s record of what became of each event in `raws`: an index into `items`, or this
/// bit and an index into `ignored`.
const IGNORED: u32 = 1 << 31;

/// An event id no rule reads (`Program::reads_id` false): not interned.
pub(crate) const NO_ID: u32 = u32::MAX;

/// Each event's id hash, with its place in `read`'s `raws`: the repeats are found once all are
/// read, by sorting these (neighbours with one hash compared by text), not by a table probed
/// per event. A table of a long history's ids outgrew the caches: each event's probe waited on
/// memory, a third of a microsecond an event on 362,263 events and a fifth on 36,527.
struct Ids {
    hashes: Vec<(u64, u32)>,
}

impl Ids {
    fn hash(text: &str) -> u64 {
        use std::hash::Hasher;
        let mut h = crate::fx::FxHasher::default();
        h.write(text.as_bytes());
        h.finish()
    }

    /// The repeats (`raws` indexes), in input order: events equal to the first one with their
    /// id (`same`); `text(i)` is event `i`'s id. `Doubt` where two events share an id and differ.
    fn repeats<'a>(
        mut self,
        text: impl Fn(usize) -> &'a str,
        same: impl Fn(usize, usize) -> Sure<bool>,
    ) -> Sure<Vec<usize>> {
        self.hashes.sort_unstable();
        let mut out = Vec::new();
        let mut run_ids: Vec<usize> = Vec::new();
        for run in self.hashes.chunk_by(|x, y| x.0 == y.0).filter(|r| r.len() > 1) {
            // one hash, maybe several ids: by text, then input order (crafted collisions
            // cost a sort, not a scan per event)
            run_ids.clear();
            run_ids.extend(run.iter().map(|&(_, i)| i as usize));
            run_ids.sort_unstable_by(|&a, &b| text(a).cmp(text(b)).then(a.cmp(&b)));
            for same_id in run_ids.chunk_by(|&a, &b| text(a) == text(b)) {
                let first = same_id[0];
                for &i in &same_id[1..] {
                    if !same(first, i)? {
                        return Err(Doubt); // PE212: a different event reuses the id
                    }
                    out.push(i);
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

/// The interned number of each text object met (a type, a subject), by the object's address:
/// the events of a history made in Python share these objects, and a look-up by address reads
/// neither the text nor the interner's copy of it, which a long history's interner no longer
/// keeps in the caches. Each object is held, so that no other object takes its address
/// meanwhile. A history parsed from JSON shares none (each value its own object): there the
/// table would grow by every value of every event and never be hit, so once most look-ups
/// miss it is left, and the interner, by text, answers alone.
#[derive(Default)]
struct Known<'py> {
    syms: FxMap<usize, u32>,
    held: Vec<Bound<'py, PyAny>>,
    hits: usize,
    left: bool, // most look-ups missed: the interner alone
}

/// How many objects `Known` holds before it judges whether it pays.
const KNOWN_TRIAL: usize = 4096;

impl<'py> Known<'py> {
    /// `text` is `obj`'s own text.
    fn sym(&mut self, strings: &mut Interner, obj: &Bound<'py, PyAny>, text: &str) -> u32 {
        if self.left {
            return strings.sym(text);
        }
        let at = obj.as_ptr() as usize;
        if let Some(&s) = self.syms.get(&at) {
            self.hits += 1;
            return s;
        }
        let s = strings.sym(text);
        if self.held.len() >= KNOWN_TRIAL && self.hits < self.held.len() {
            self.left = true; // fewer hits than objects held: shared objects are not the case
            self.syms = FxMap::default();
            self.held = Vec::new();
            return s;
        }
        self.syms.insert(at, s);
        self.held.push(obj.clone());
        s
    }
}

/// How far ahead of the event being read its dict is fetched, then its key table.
const DICT_AHEAD: usize = 16;
const KEYS_AHEAD: usize = 8;
/// Where CPython 3.11-3.13 keep a dict's key table (`PyDictObject.ma_keys`): after the
/// object's head (16 bytes), `ma_used` and the version tag.
const MA_KEYS_AT: usize = 32;

/// A history made in Python lies in memory in the order it was built (customer after
/// customer, say) and is read in time order: each event's dict, then its key table, is a
/// wait on memory. Both are fetched ahead, the key table once its dict has arrived. A
/// prefetch reads nothing; the one read here, the key table's address, lies inside the dict
/// object (48 bytes or more in every CPython), so another layout only fetches a useless line.
///
/// The list's length is read each time: `derive` runs Python code, which could shorten it.
#[inline]
fn fetch_ahead(events: &Bound<'_, PyList>, index: usize) {
    let n = events.len();
    if index + DICT_AHEAD < n {
        // SAFETY: a borrowed reference to an item of a list we hold, in range
        let far = unsafe { pyo3::ffi::PyList_GetItem(events.as_ptr(), (index + DICT_AHEAD) as pyo3::ffi::Py_ssize_t) };
        crate::ahead::prefetch(far);
    }
    if index + KEYS_AHEAD < n {
        // SAFETY: as above; the type check reads the object's head, and the key table's
        // address is read inside an exact dict, whatever its layout
        unsafe {
            let near = pyo3::ffi::PyList_GetItem(events.as_ptr(), (index + KEYS_AHEAD) as pyo3::ffi::Py_ssize_t);
            if !near.is_null() && pyo3::ffi::PyDict_CheckExact(near) != 0 {
                let keys = std::ptr::read((near as *const u8).add(MA_KEYS_AT) as *const *const u8);
                crate::ahead::prefetch(keys);
                crate::ahead::prefetch(keys.wrapping_add(64));
                crate::ahead::prefetch(keys.wrapping_add(128));
            }
        }
    }
}

/// Text the core can hold: exact `str` (not a subclass), valid Unicode (no lone surrogate).
fn exact_text<'a>(v: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    v.cast_exact::<PyString>().ok()?.to_str().ok()
}

/// `prepare` over the raw mappings, or `Doubt` where the core is not sure to take the same
/// view: any problem (which `prepare` locates and words), any form it does not read (a
/// mapping that is not a dict, a datetime, a number in a field it does not check), an id
/// reused by a different event. `derive(raw, index)` is `events.derived_id`.
pub(crate) fn read<'py>(
    py: Python<'py>,
    p: &Program,
    events: &Bound<'py, PyList>,
    horizon: Option<i64>,
    max_span_years: Option<i64>,
    derive: &Bound<'py, PyAny>,
) -> Sure<Raw<'py>> {
    use crate::ir::Val;
    let mut strings = p.strings.clone();
    let k = p.fields.len();
    let (lo, hi) = (min_us(), p.max_us);
    let mut raws: Vec<Bound<'py, PyDict>> = Vec::with_capacity(events.len());
    let mut seen = Ids { hashes: Vec::with_capacity(events.len()) };
    let mut made: Vec<u32> = Vec::with_capacity(events.len()); // per `raws`: see `IGNORED`
    let mut known = Known::default();
    if p.reads_id {
        strings.reserve(events.len());
    }
    let mut keys: FxMap<u32, Vec<Bound<'py, PyString>>> = FxMap::default(); // declared names
    let mut items: Vec<Item<'py>> = Vec::with_capacity(events.len());
    let mut staged = Events::new(k, events.len()); // the accepted events, in input order
    let mut row = vec![Val::Null; k]; // the values of the event being read
    let mut duplicates = Vec::new();
    let mut ignored = Vec::new();
    let k_id = PyString::intern(py, "id");
    let k_type = PyString::intern(py, "type");
    let k_at = PyString::intern(py, "at");
    for (index, raw) in events.iter().enumerate() {
        fetch_ahead(events, index);
        let raw = raw.cast_exact::<PyDict>().map_err(|_| Doubt)?.clone();
        let mut present = 0usize;
        let id_obj = match raw.get_item(&k_id)? {
            Some(v) if !v.is_none() => {
                present += 1;
                if exact_text(&v).is_some_and(|t| !t.is_empty()) {
                    v
                } else if v.is_exact_instance_of::<PyInt>() {
                    let n: i64 = v.extract()?; // no more than 19 digits
                    PyString::new(py, &n.to_string()).into_any()
                } else {
                    return Err(Doubt);
                }
            }
            found => {
                present += usize::from(found.is_some());
                derive.call1((&raw, index))?
            }
        };
        let text = exact_text(&id_obj).ok_or(Doubt)?;
        // `$event.id` is read through the interner; an id nothing reads is not interned
        let id = if p.reads_id { strings.sym(text) } else { NO_ID };
        if raws.len() >= IGNORED as usize {
            return Err(Doubt); // more events than `made` numbers
        }
        seen.hashes.push((Ids::hash(text), raws.len() as u32));
        raws.push(raw.clone());
        let Some(tv) = raw.get_item(&k_type)? else { return Err(Doubt) };
        let etype_sym = known.sym(&mut strings, &tv, exact_text(&tv).ok_or(Doubt)?);
        let Some(checks) = p.checks.get(&etype_sym) else {
            if p.ignore_unknown {
                made.push(IGNORED | ignored.len() as u32);
                ignored.push((id_obj, tv));
                continue;
            }
            return Err(Doubt);
        };
        present += 1;
        let Some(av) = raw.get_item(&k_at)? else { return Err(Doubt) };
        present += 1;
        let at = iso_us(exact_text(&av).ok_or(Doubt)?).ok_or(Doubt)?;
        if at < lo || at >= hi {
            return Err(Doubt);
        }
        row.fill(Val::Null);
        let vals = &mut row[..];
        let names = keys
            .entry(etype_sym)
            .or_insert_with(|| checks.iter().map(|c| PyString::intern(py, &c.name)).collect());
        for (c, key) in checks.iter().zip(names.iter()) {
            let value = raw.get_item(key)?;
            if value.is_some() {
                present += 1;
            }
            let value = value.filter(|v| !v.is_none());
            let Some(v) = value else {
                if c.required || (c.opaque_default && c.slot.is_some()) {
                    return Err(Doubt);
                }
                if let (Some(slot), Some(d)) = (c.slot, c.default) {
                    vals[slot] = d;
                }
                continue;
            };
            match c.kind {
                FieldKind::Str => {
                    let t = exact_text(&v).ok_or(Doubt)?;
                    if t.is_empty() || c.choices.as_ref().is_some_and(|ch| !ch.contains(t)) {
                        return Err(Doubt);
                    }
                    if let Some(slot) = c.slot {
                        vals[slot] = Val::Str(known.sym(&mut strings, &v, t));
                    }
                }
                FieldKind::Bool => {
                    let b = v.cast_exact::<pyo3::types::PyBool>().map_err(|_| Doubt)?.is_true();
                    if let Some(slot) = c.slot {
                        vals[slot] = Val::Bool(b);
                    }
                }
                FieldKind::Int => {
                    if !v.is_exact_instance_of::<PyInt>() {
                        return Err(Doubt);
                    }
                    let n: i64 = v.extract().map_err(|_| Doubt)?;
                    if let Some(slot) = c.slot {
                        vals[slot] = Val::Int(n);
                    }
                }
                kind => {
                    let got = crate::fields::check(kind, &v, c.choices.as_ref(), c.slot.is_some(), p.max_us, &mut strings, &mut staged.lists)?;
                    if let Some(slot) = c.slot {
                        vals[slot] = got;
                    }
                }
            }
        }
        if present != raw.len() {
            return Err(Doubt); // a field the type does not declare (PE205)
        }
        made.push(items.len() as u32);
        let raw_ix = (raws.len() - 1) as u32;
        items.push(Item { at, id: id_obj, id_sym: id, etype: etype_sym, row: staged.len(), raw: raw_ix });
        staged.push(etype_sym, at, &row);
    }
    // the repeats: an event whose id an earlier one has, equal to it, is dropped (listed in
    // `duplicates`); a different one with that id is `prepare`'s error to word
    let id_of = |i: usize| -> &Bound<'py, PyAny> {
        let m = made[i];
        if m & IGNORED != 0 { &ignored[(m & !IGNORED) as usize].0 } else { &items[m as usize].id }
    };
    let repeats = seen.repeats(
        |i| exact_text(id_of(i)).unwrap_or_default(),
        |first, i| Ok(raws[first].eq(&raws[i])?),
    )?;
    if !repeats.is_empty() {
        let mut repeated = vec![false; raws.len()];
        let mut dropped = vec![false; ignored.len()];
        for &i in &repeats {
            repeated[i] = true;
            if made[i] & IGNORED != 0 {
                dropped[(made[i] & !IGNORED) as usize] = true;
            }
            duplicates.push(id_of(i).clone());
        }
        let mut k = 0;
        ignored.retain(|_| {
            k += 1;
            !dropped[k - 1]
        });
        items.retain(|it| !repeated[it.raw as usize]);
    }
    items.sort_by_key(|it| it.at); // stable: ties keep their input order
    if let Some(h) = horizon {
        let keep = items.partition_point(|it| it.at <= h);
        items.truncate(keep);
    }
    let horizon = horizon.or(items.last().map(|it| it.at));
    if let (Some(years), Some(f), Some(h)) = (max_span_years, items.first(), horizon) {
        // `check_span` counts calendar years in the policy's timezone; inside this bound (a
        // day short of 365 per year, offsets below a day) it surely passes, else it decides
        if h.saturating_sub(f.at) > years.saturating_mul(365 * DAY_US).saturating_sub(2 * DAY_US) {
            return Err(Doubt);
        }
    }
    let n = items.len();
    // in input order already (a history sorted by time): the events stay where they are
    let in_order = items.iter().enumerate().all(|(i, it)| it.row == i);
    let ev = if in_order {
        staged.truncate(n); // those past the horizon
        staged
    } else {
        let mut ev = Events::new(k, n);
        ev.lists = std::mem::take(&mut staged.lists);
        for it in &items {
            staged.row(it.row, &mut row);
            ev.push(it.etype, it.at, &row);
        }
        ev
    };
    let mut ids = Vec::with_capacity(n);
    let mut id_objs = Vec::with_capacity(n);
    for it in items {
        ids.push(it.id_sym);
        id_objs.push(it.id);
    }
    Ok(Raw { strings, ev, ids, id_objs, duplicates, ignored, horizon })
}

#[cfg(test)]
mod tests {
    use super::{Doubt, Ids};

    /// Repeats found by the sorted hashes: ids of one hash told apart by their text, each
    /// repeat matched to the first event of its own id, in input order; a different event
    /// reusing an id is a doubt.
    #[test]
    fn repeats_by_text_within_one_hash() {
        let texts = ["a", "b", "a", "b", "c", "a"];
        let equal = |_: usize, _: usize| Ok(true);
        // every id under one hash: a collision of all of them
        let all = Ids { hashes: (0..6).map(|i| (7, i)).collect() };
        assert_eq!(all.repeats(|i| texts[i], equal).ok(), Some(vec![2, 3, 5]));
        // their real hashes, in an order the sort must undo
        let real = Ids { hashes: [5, 0, 3, 1, 4, 2].iter().map(|&i| (Ids::hash(texts[i]), i as u32)).collect() };
        assert_eq!(real.repeats(|i| texts[i], equal).ok(), Some(vec![2, 3, 5]));
        // "a" at 2 differs from "a" at 0
        let differ = Ids { hashes: (0..6).map(|i| (7, i)).collect() };
        let same = |first: usize, i: usize| Ok(!(first == 0 && i == 2));
        assert!(matches!(differ.repeats(|i| texts[i], same), Err(Doubt)));
    }
}
