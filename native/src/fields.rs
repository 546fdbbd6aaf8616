//! The event field checks beyond text, yes/no and plain whole numbers: bounded whole numbers,
//! lists of texts, calendar dates, instants and decimals, each only in the forms `prepare`
//! (`runtime.events._check_field`) surely reads the same way; any other form (or a value out
//! of bounds, which `prepare` words) is a `Doubt`, and `prepare` decides.

use crate::input::{iso_us, min_us, Doubt};
use crate::ir::{get, FieldKind, Interner, Res, Val};
use crate::fx::FxSet;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString};
use serde_json::Value as J;

/// A field's kind refined by its declared type and bounds (the IR's `bounds`: whole-number
/// bounds the core checks); `kind` as `ir::load` found it otherwise.
pub(crate) fn refine(kind: FieldKind, ty: &str, f: &J, has_choices: bool) -> Res<FieldKind> {
    let bounds = match f.get("bounds") {
        None | Some(J::Null) => None,
        Some(b) => {
            let pair = b.as_array().filter(|p| p.len() == 2).ok_or("bounds are a pair")?;
            Some((pair[0].as_i64(), pair[1].as_i64()))
        }
    };
    let plain = !get(f, "bounded")?.as_bool().ok_or("bounded")? && get(f, "enum_text")?.as_bool().ok_or("enum_text")?;
    Ok(match (ty, bounds) {
        ("int", Some((lo, hi))) if plain && !has_choices => FieldKind::IntIn(lo, hi),
        ("list[str]", None) if plain => FieldKind::Texts,
        ("date", None) if plain && !has_choices => FieldKind::Date,
        ("time", None) if plain && !has_choices => FieldKind::Time,
        ("decimal", None) if plain && !has_choices => FieldKind::Dec,
        _ => kind,
    })
}

/// Text the core can hold: exact `str`, valid Unicode.
fn exact_text<'a>(v: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    v.cast_exact::<PyString>().ok()?.to_str().ok()
}

/// `YYYY-MM-DD` naming a day (`date.fromisoformat` of ten characters reads other forms too:
/// those are left to `prepare`).
fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: &[u8]| -> Option<i64> {
        r.iter().all(u8::is_ascii_digit).then(|| r.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (Some(y), Some(m), Some(d)) = (num(&b[0..4]), num(&b[5..7]), num(&b[8..10])) else { return false };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    y >= 1 && (1..=12).contains(&m) && d >= 1 && d <= days[(m - 1) as usize]
}

/// Plain decimal text `Decimal` surely reads as a finite number within `prepare`'s limits:
/// an optional sign, ASCII digits, an optional fraction, at most 40 characters.
pub(crate) fn is_decimal_text(s: &str) -> bool {
    let b = s.as_bytes();
    let body = match b.first() {
        Some(b'-' | b'+') => &b[1..],
        _ => b,
    };
    if b.len() > 40 || body.is_empty() {
        return false;
    }
    let (whole, frac) = match body.iter().position(|c| *c == b'.') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    !whole.is_empty()
        && whole.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// One present, non-null value of a field of these kinds: the value the core holds for it
/// (null where the rules do not read it), or `Doubt`.
pub(crate) fn check(
    kind: FieldKind,
    v: &Bound<'_, PyAny>,
    choices: Option<&FxSet<String>>,
    read: bool,
    max_us: i64,
    strings: &mut Interner,
    lists: &mut Vec<Vec<Val>>,
) -> Result<Val, Doubt> {
    match kind {
        FieldKind::IntIn(lo, hi) => {
            if !v.is_exact_instance_of::<PyInt>() {
                return Err(Doubt);
            }
            let n: i64 = v.extract().map_err(|_| Doubt)?;
            if lo.is_some_and(|lo| n < lo) || hi.is_some_and(|hi| n > hi) {
                return Err(Doubt); // `prepare` says "must be at least/at most"
            }
            Ok(Val::Int(n))
        }
        FieldKind::Texts => {
            let list = v.cast_exact::<PyList>().map_err(|_| Doubt)?;
            let mut items = Vec::with_capacity(list.len());
            for item in list.iter() {
                let t = exact_text(&item).ok_or(Doubt)?;
                if t.is_empty() || choices.is_some_and(|ch| !ch.contains(t)) {
                    return Err(Doubt);
                }
                if read {
                    items.push(Val::Str(strings.sym(t)));
                }
            }
            if !read {
                return Ok(Val::Null);
            }
            lists.push(items);
            Ok(Val::List((lists.len() - 1) as u32))
        }
        FieldKind::Dec if read => {
            // `Decimal(str(value))`: a whole number as it is, plain decimal text as it reads
            if v.is_exact_instance_of::<PyInt>() {
                let n: i64 = v.extract().map_err(|_| Doubt)?;
                return Ok(Val::Dec(0, n));
            }
            let t = exact_text(v).filter(|t| is_decimal_text(t)).ok_or(Doubt)?;
            crate::decimal::parse(t).ok_or(Doubt)
        }
        FieldKind::Date if read => exact_text(v).and_then(crate::dates::parse_day).map(Val::Date).ok_or(Doubt),
        FieldKind::Time if read => Err(Doubt), // not held
        FieldKind::Date => exact_text(v).filter(|t| is_day(t)).map(|_| Val::Null).ok_or(Doubt),
        FieldKind::Time => {
            let us = iso_us(exact_text(v).ok_or(Doubt)?).ok_or(Doubt)?;
            if us < min_us() || us >= max_us {
                return Err(Doubt);
            }
            Ok(Val::Null)
        }
        FieldKind::Dec => {
            if v.is_exact_instance_of::<PyInt>() {
                let _: i64 = v.extract().map_err(|_| Doubt)?; // no more digits than an i64's
                return Ok(Val::Null);
            }
            exact_text(v).filter(|t| is_decimal_text(t)).map(|_| Val::Null).ok_or(Doubt)
        }
        _ => Err(Doubt),
    }
}
