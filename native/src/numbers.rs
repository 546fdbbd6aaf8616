//! `div` and `round` as `operators._div` and `expression_compiler.visit_Round` compute them
//! with `decimal.Decimal`: a quotient only where it is exact (an inexact one has the
//! context's 28 digits, more than the core holds: the engine decides then), a rounding by
//! `quantize` in the mode written. Results are held as `decimal.rs` holds them.

use crate::eval::{Ctx, World};
use crate::ir::*;
use serde_json::Value as J;
use std::cmp::Ordering;

const MODES: [&str; 6] = ["half_up", "half_even", "down", "up", "floor", "ceiling"];

/// A number as `as_number` reads it (a yes/no, a text, null: none).
fn num(v: Val) -> Option<(i128, i32)> {
    match v {
        Val::Int(i) => Some((i128::from(i), 0)),
        Val::Dec(e, c) => Some((i128::from(c), e)),
        _ => None,
    }
}

fn held(c: i128, e: i32) -> Res<Val> {
    let c = i64::try_from(c).map_err(|_| "a decimal beyond the core's digits")?;
    if !(-crate::decimal::MAX_EXP..=crate::decimal::MAX_EXP).contains(&e) {
        return Err("a decimal exponent beyond the core's".into());
    }
    Ok(Val::Dec(e, c))
}

/// `a / b` where exact: the exponent nearest the ideal `ea - eb` (the fewest digits shifted).
fn divide(a: (i128, i32), b: (i128, i32)) -> Res<Val> {
    let mut top = a.0;
    for k in 0..=64 {
        if top % b.0 == 0 {
            return held(top / b.0, a.1 - b.1 - k);
        }
        top = top
            .checked_mul(10)
            .ok_or("a quotient beyond the core's digits")?;
    }
    Err("a quotient that is not exact".into())
}

/// `quantize` to `10^-digits` in a mode: the coefficient divided by `10^k`, rounded.
fn round(n: (i128, i32), digits: i32, mode: u8) -> Res<Val> {
    let (c, e) = n;
    let target = -digits;
    if e >= target {
        let mut c = c;
        for _ in 0..(e - target) {
            c = c
                .checked_mul(10)
                .ok_or("a decimal beyond the core's digits")?;
        }
        return held(c, target);
    }
    let shift = target - e;
    // toward zero, then the remainder (the sign of `c`) against half a unit
    let (q, r, half) = if shift > 36 {
        (0, c, Ordering::Less) // |c| < 10^19: far below half a unit
    } else {
        let p = 10i128.pow(shift as u32);
        let r = c % p;
        (c / p, r, (2 * r.abs()).cmp(&p))
    };
    let away = match mode {
        0 => half.is_ge(),                                 // half_up
        1 => half.is_gt() || (half.is_eq() && q % 2 != 0), // half_even
        2 => false,                                        // down
        3 => r != 0,                                       // up
        4 => r < 0,                                        // floor
        _ => r > 0,                                        // ceiling
    };
    held(if away { q + c.signum() } else { q }, target)
}

impl Loader {
    /// `{div: [a, b]}` and `{round: x, digits, mode}`, or None.
    pub(crate) fn number_op(&mut self, v: &J) -> Res<Option<Op>> {
        if let Some(pair) = v.get("div") {
            let pair = pair
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or("div takes two")?;
            return Ok(Some(Op::Div(
                Box::new(self.op(&pair[0])?),
                Box::new(self.op(&pair[1])?),
            )));
        }
        if let Some(us) = v.get("ago") {
            let us = us.as_i64().ok_or("an `ago` in microseconds")?;
            let from = get(v, "from")?.as_i64();
            let min = get(v, "min")?.as_i64().ok_or("an `ago`'s least instant")?;
            return Ok(Some(Op::Ago(us, from, min)));
        }
        if let Some(name) = v.get("counter_of") {
            return Ok(Some(Op::CounterOf(self.strings.sym(text(name)?))));
        }
        if let Some(terms) = v.get("avg") {
            let terms = terms.as_array().ok_or("avg takes a list")?;
            return Ok(Some(Op::Avg(
                terms.iter().map(|x| self.op(x)).collect::<Res<_>>()?,
            )));
        }
        if let Some(x) = v.get("round") {
            let digits = get(v, "digits")?
                .as_i64()
                .filter(|d| (0..=10).contains(d))
                .ok_or("round's digits")?;
            let mode = text(get(v, "mode")?)?;
            let mode = MODES
                .iter()
                .position(|m| *m == mode)
                .ok_or("a rounding mode")?;
            return Ok(Some(Op::Round(
                Box::new(self.op(x)?),
                digits as i32,
                mode as u8,
            )));
        }
        Ok(None)
    }
}

impl<'p> World<'p> {
    /// `a / b`: null where either is no number or `b` is zero.
    pub(crate) fn div(&self, a: &Op, b: &Op, c: &Ctx) -> Res<Val> {
        let (Some(x), Some(y)) = (num(self.val(a, c)?), num(self.val(b, c)?)) else {
            return Ok(Val::Null);
        };
        if y.0 == 0 {
            return Ok(Val::Null);
        }
        divide(x, y)
    }

    /// `{avg: ...}`: the terms' numbers (as a sum reads them) summed, divided by how many;
    /// null for none.
    pub(crate) fn avg(&self, terms: &[Op], c: &Ctx) -> Res<Val> {
        let mut nums = Vec::new();
        for t in terms {
            let found = match t {
                Op::ValuesOf(q, field) => self.values_of(q, *field, c)?,
                op => vec![self.val(op, c)?],
            };
            nums.extend(found.into_iter().filter(|v| num(*v).is_some()).map(Op::Lit));
        }
        if nums.is_empty() {
            return Ok(Val::Null);
        }
        let total = num(self.sum(&nums, c)?).ok_or("a sum that is no number")?;
        divide(total, (nums.len() as i128, 0))
    }

    /// `{ago: ...}`: `now` less the duration, at least `min`; a day-long step back before
    /// the zone's offset is steady is the engine's.
    pub(crate) fn ago(&self, us: i64, from: Option<i64>, min: i64, c: &Ctx) -> Res<Val> {
        let bound = c.now.saturating_sub(us);
        if from.is_some_and(|f| bound < f) {
            return Err("`ago` before the zone's offset is steady".into());
        }
        Ok(Val::Int(bound.max(min)))
    }

    /// `{counter: name}`: `$party`'s counter where there is a party, else the subject's
    /// (0 where none); a decimal as the engine's `Decimal`.
    pub(crate) fn counter_of(&self, name: u32, c: &Ctx) -> Res<Val> {
        let (key, found) = match c.party {
            Val::Null => {
                let Some(s) = c.subj else {
                    return Ok(Val::Dec(0, 0));
                };
                let s = &self.subjects[s];
                (
                    (false, s.id, name),
                    s.counters.iter().find(|(n, _)| *n == name),
                )
            }
            Val::Str(p) => {
                let table = self.party_ix.get(&p).map(|&i| &self.party_counters[i].1);
                (
                    (true, p, name),
                    table.and_then(|t| t.iter().find(|(n, _)| *n == name)),
                )
            }
            other => return Err(format!("a counter of the party {other:?}")),
        };
        Ok(Val::Dec(
            self.counter_exp_of(key),
            found.map_or(0, |(_, v)| *v),
        ))
    }

    /// `{round: [x, digits, mode]}`: null where `x` is no number.
    pub(crate) fn round(&self, x: &Op, digits: i32, mode: u8, c: &Ctx) -> Res<Val> {
        match num(self.val(x, c)?) {
            Some(n) => round(n, digits, mode),
            None => Ok(Val::Null),
        }
    }
}
