//! Local dates (`{date: ...}`, `date` fields), `len` of texts and lists, and keys made of a
//! list, as `expression_compiler` and the engine compute them. The engine holds a date as its
//! text (`YYYY-MM-DD`); the core as `Val::Date(days since 1970-01-01)`, one day for one text
//! (a field's text is held only in that form: `fields.rs`), compared with a text as that text.

use crate::eval::{Ctx, World};
use crate::ir::*;
use serde_json::Value as J;
use std::cmp::Ordering;

const DAY_US: i64 = 86_400_000_000;
// `date(1, 1, 1)` and `date(9999, 12, 31)` as days since 1970-01-01: Python's range
const FIRST_DAY: i64 = -719_162;
const LAST_DAY: i64 = 2_932_896;

/// The civil date of a day number (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The day number of a civil date (`days_from_civil`).
fn days_of(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `date.isoformat()`: the year in four digits at least.
pub(crate) fn iso(days: i32) -> String {
    let (y, m, d) = civil(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD` naming a day, as its day number; None for any other text.
pub(crate) fn parse_day(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: &[u8]| -> Option<i64> {
        r.iter()
            .all(u8::is_ascii_digit)
            .then(|| r.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (y, m, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1 || !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    i32::try_from(days_of(y, m, d)).ok()
}

impl Loader {
    /// The values this file adds (`date`, `tuple`), or None.
    pub(crate) fn date_op(&mut self, v: &J) -> Res<Option<Op>> {
        if let Some(inner) = v.get("date") {
            let offset = get(v, "offset")?.as_i64().ok_or("a date's offset")?;
            let from = get(v, "from")?.as_i64().ok_or("a date's steady start")?;
            return Ok(Some(Op::Date(Box::new(self.op(inner)?), offset, from)));
        }
        if let Some(items) = v.get("tuple") {
            let items = items.as_array().ok_or("a list value is a list")?;
            return Ok(Some(Op::Tuple(
                items.iter().map(|x| self.op(x)).collect::<Res<_>>()?,
            )));
        }
        Ok(None)
    }
}

impl<'p> World<'p> {
    /// `{date: ...}`: the local date of an instant (null for anything else), where the zone's
    /// offset is steady; before that, the engine decides.
    pub(crate) fn local_date(&self, inner: &Op, offset: i64, from: i64, c: &Ctx) -> Res<Val> {
        let Val::Int(us) = self.val(inner, c)? else {
            return Ok(Val::Null);
        };
        if us < from {
            return Err("a local date before the zone's offset is steady".into());
        }
        let local = us.checked_add(offset).ok_or("a local date out of range")?;
        let days = local.div_euclid(DAY_US);
        if !(FIRST_DAY..=LAST_DAY).contains(&days) {
            return Err("a local date out of range".into());
        }
        Ok(Val::Date(days as i32))
    }

    /// `len(value or ())`: a claims list's claims, a text's characters, a list's items.
    pub(crate) fn len_of(&self, inner: &Op, c: &Ctx) -> Res<Val> {
        if let Op::Claims(_) = inner {
            return Ok(Val::Int(self.claims(inner, c)?.len() as i64));
        }
        Ok(Val::Int(match self.val(inner, c)? {
            Val::Null => 0,
            Val::Str(s) => self.strings.names[s as usize].chars().count() as i64,
            Val::List(i) => self.ev.lists[i as usize].len() as i64,
            other => return Err(format!("`len` of {other:?}")),
        }))
    }

    /// A comparison where one side is a date (None otherwise): a date against a date by
    /// day, against a text by text; against anything else never equal, never ordered.
    pub(crate) fn date_test(&self, code: u8, x: Val, y: Val) -> Option<bool> {
        if !matches!(x, Val::Date(_)) && !matches!(y, Val::Date(_)) {
            return None;
        }
        let text = |v: Val| match v {
            Val::Date(d) => Some(iso(d)),
            Val::Str(s) => Some(self.strings.names[s as usize].clone()),
            _ => None,
        };
        let ord: Option<Ordering> = match (x, y) {
            (Val::Date(a), Val::Date(b)) => Some(a.cmp(&b)),
            _ => match (text(x), text(y)) {
                (Some(a), Some(b)) => Some(a.as_str().cmp(b.as_str())),
                _ => None,
            },
        };
        Some(match code {
            0 => ord == Some(Ordering::Equal),
            1 => ord != Some(Ordering::Equal),
            _ => match ord {
                None => false,
                Some(o) => match code {
                    2 => o.is_lt(),
                    3 => o.is_le(),
                    4 => o.is_gt(),
                    _ => o.is_ge(),
                },
            },
        })
    }

    /// A duty's key as the engine's dict holds it (`_hashable`): a list as one value, the
    /// same for the same items (held as a list the events never name).
    pub(crate) fn key_of(&mut self, op: &Op, c: &Ctx) -> Res<Val> {
        let Op::Tuple(items) = op else {
            return self.val(op, c);
        };
        let vals: Vec<Val> = items.iter().map(|x| self.val(x, c)).collect::<Res<_>>()?;
        if let Some(&i) = self.tuples.get(&vals) {
            return Ok(Val::List(i));
        }
        let i = self.ev.lists.len() as u32;
        self.ev.lists.push(vals.clone());
        self.tuples.insert(vals, i);
        Ok(Val::List(i))
    }

    /// A value recorded as text (`str(about)`): a date as the text the engine holds.
    pub(crate) fn as_text(&mut self, v: Val) -> Val {
        match v {
            Val::Date(d) => Val::Str(self.strings.sym(&iso(d))),
            v => v,
        }
    }
}

/// A `date` field's text as the core holds it (`run`'s columns): its day, or None where the
/// text is not the one form (`prepare` reads others: the engine decides then). `row` is one
/// event's values, of type `ty`.
pub(crate) fn date_cells(p: &Program, ty: u32, row: &mut [Val], strings: &Interner) -> Res<()> {
    let Some(checks) = p.checks.get(&ty) else {
        return Ok(());
    };
    for ch in checks {
        let (FieldKind::Date, Some(f)) = (ch.kind, ch.slot) else {
            continue;
        };
        if let Val::Str(s) = row[f] {
            let day = parse_day(&strings.names[s as usize]).ok_or("a date field in another form")?;
            row[f] = Val::Date(day);
        }
    }
    Ok(())
}
