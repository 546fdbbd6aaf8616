//! Exact decimals as the conditions use them (`operators`): `Val::Dec(exponent, coefficient)`
//! is `coefficient × 10^exponent`; compared and summed by value, exactly. A result whose
//! coefficient would not fit an i64 (or an exponent beyond ±`MAX_EXP`) is refused: the
//! engine decides then. Within those bounds every partial sum and product has at most 19
//! digits, fewer than the 28 of Python's default context, so its arithmetic is exact too.
//! A decimal is never recorded (flags, parties): only compared.

use crate::eval::{Ctx, World};
use crate::ir::{Op, Res, Val};
use std::cmp::Ordering;

pub(crate) const MAX_EXP: i32 = 30;

/// Decimal text: `[sign] digits [. digits] [E [sign] digits]` (what `str(Decimal)` writes and
/// plain decimal input), as a value the core holds; None for any other form or size.
pub(crate) fn parse(s: &str) -> Option<Val> {
    let b = s.as_bytes();
    let (neg, body) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let (mant, exp) = match body.iter().position(|c| *c == b'E' || *c == b'e') {
        Some(i) => {
            let e = &body[i + 1..];
            let (eneg, digits) = match e.first() {
                Some(b'-') => (true, &e[1..]),
                Some(b'+') => (false, &e[1..]),
                _ => (false, e),
            };
            if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = digits.iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
            (&body[..i], if eneg { -n } else { n })
        }
        None => (body, 0),
    };
    let (whole, frac) = match mant.iter().position(|c| *c == b'.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, &mant[mant.len()..]),
    };
    if whole.is_empty() || !whole.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    if mant.contains(&b'.') && frac.is_empty() {
        return None;
    }
    let mut coef: i64 = 0;
    for d in whole.iter().chain(frac) {
        coef = coef.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    let exp = exp - i32::try_from(frac.len()).ok()?;
    if !(-MAX_EXP..=MAX_EXP).contains(&exp) {
        return None;
    }
    Some(Val::Dec(exp, if neg { -coef } else { coef }))
}

/// A number as `as_number` reads it: whole numbers and decimals (a yes/no is none).
fn num(v: Val) -> Option<(i128, i32)> {
    match v {
        Val::Int(i) => Some((i128::from(i), 0)),
        Val::Dec(e, c) => Some((i128::from(c), e)),
        _ => None,
    }
}

fn scale(c: i128, by: i32) -> Res<i128> {
    let mut c = c;
    for _ in 0..by {
        c = c.checked_mul(10).ok_or("a decimal beyond the core's digits")?;
    }
    Ok(c)
}

/// Both at the smaller exponent.
fn align(a: (i128, i32), b: (i128, i32)) -> Res<(i128, i128, i32)> {
    let e = a.1.min(b.1);
    Ok((scale(a.0, a.1 - e)?, scale(b.0, b.1 - e)?, e))
}

/// The order of two numbers (None: not both numbers, as `operators._comparison` finds).
pub(crate) fn order(a: Val, b: Val) -> Res<Option<Ordering>> {
    let (Some(x), Some(y)) = (num(a), num(b)) else { return Ok(None) };
    let (x, y, _) = align(x, y)?;
    Ok(Some(x.cmp(&y)))
}

/// Equality by value (`Decimal('1.50') == 1.5 == ...`), where one side is a decimal;
/// `yes_no` counts a yes/no as 1 or 0 (Python's `==`, not the manual's).
pub(crate) fn same(a: Val, b: Val, yes_no: bool) -> bool {
    let n = |v: Val| match v {
        Val::Bool(x) if yes_no => Some((i128::from(x), 0)),
        v => num(v),
    };
    match (n(a), n(b)) {
        (Some(x), Some(y)) => align(x, y).is_ok_and(|(x, y, _)| x == y),
        _ => false,
    }
}

fn held(c: i128, e: i32) -> Res<Val> {
    let c = i64::try_from(c).map_err(|_| "a decimal beyond the core's digits")?;
    if !(-MAX_EXP..=MAX_EXP).contains(&e) {
        return Err("a decimal exponent beyond the core's".into());
    }
    Ok(Val::Dec(e, c))
}

/// The exact sum, refused where a partial sum (or the sum of the absolute values, which
/// bounds every partial sum in any order) would not fit.
fn total(nums: &[(i128, i32)]) -> Res<Val> {
    let (mut sum, mut width, mut e) = (0i128, 0i128, 0i32);
    for &n in nums {
        let (s, x, at) = align((sum, e), n)?;
        let (w, _, _) = align((width, e), n)?;
        sum = s.checked_add(x).ok_or("a decimal beyond the core's digits")?;
        width = w.checked_add(x.abs()).ok_or("a decimal beyond the core's digits")?;
        e = at;
    }
    held(width, e)?;
    held(sum, e)
}

impl<'p> World<'p> {
    /// `{sum: ...}`: the numbers of every term (a `values` term's items one by one), nulls,
    /// yes/no and text skipped; 0 for none.
    pub(crate) fn sum(&self, terms: &[Op], c: &Ctx) -> Res<Val> {
        total(&self.numbers(terms, c)?)
    }

    /// `min` (0) and `max` (1) of the terms' numbers, as a sum reads them; null for none.
    pub(crate) fn fold(&self, code: u8, terms: &[Op], c: &Ctx) -> Res<Val> {
        let mut best: Option<Val> = None;
        for v in self.numbers(terms, c)? {
            let v = held(v.0, v.1)?;
            best = match best {
                Some(b) => {
                    let o = order(v, b)?.ok_or("numbers without an order")?;
                    Some(if (code == 0 && o.is_lt()) || (code == 1 && o.is_gt()) { v } else { b })
                }
                None => Some(v),
            };
        }
        Ok(best.unwrap_or(Val::Null))
    }

    fn numbers(&self, terms: &[Op], c: &Ctx) -> Res<Vec<(i128, i32)>> {
        let mut nums = Vec::new();
        for t in terms {
            match t {
                Op::ValuesOf(q, field) => {
                    for v in self.values_of(q, *field, c)? {
                        nums.extend(num(v));
                    }
                }
                op => nums.extend(num(self.val(op, c)?)),
            }
        }
        Ok(nums)
    }

    /// `add`, `sub` (0, 1) and `mul` (2): null where any operand is not a number.
    pub(crate) fn arith(&self, code: u8, args: &[Op], c: &Ctx) -> Res<Val> {
        let mut nums = Vec::with_capacity(args.len());
        for a in args {
            match num(self.val(a, c)?) {
                Some(n) => nums.push(n),
                None => return Ok(Val::Null),
            }
        }
        match code {
            0 => total(&nums),
            1 => {
                let [a, b] = nums[..] else { return Err("sub takes two numbers".into()) };
                total(&[a, (-b.0, b.1)])
            }
            _ => {
                let (mut p, mut e) = (1i128, 0i32);
                for (x, xe) in nums {
                    p = p.checked_mul(x).ok_or("a decimal beyond the core's digits")?;
                    e += xe;
                    i64::try_from(p).map_err(|_| "a decimal beyond the core's digits")?;
                }
                held(p, e)
            }
        }
    }
}
