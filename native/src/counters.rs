//! Counters added by decimals, as the engine keeps them: `Decimal(str(by or 0))` onto the
//! counter, the sum at the smaller exponent (exact: the core refuses a sum beyond 64 bits).
//! A counter's coefficient stays in its table (`Subj::counters`, `World::party_counters`);
//! its exponent, where not 0, in `World::counter_exp` (so whole-number counters, the common
//! case, are kept as before).

use crate::eval::{Causes, Ctx, Tr, World};
use crate::ir::*;
use pyo3::prelude::*;

/// A counter's exponent's key: a party's (true) or a subject's, its owner, its name.
pub(crate) type ExpKey = (bool, u32, u32);

impl<'p> World<'p> {
    /// `add` where the step is a decimal, or the counters hold one already.
    pub(crate) fn add_decimal(
        &mut self,
        name: u32,
        by: (i64, i32),
        party: Option<&Op>,
        c: &Ctx,
        rule: usize,
        causes: Causes,
    ) -> Res<()> {
        let by = if by.0 == 0 { (0, 0) } else { by }; // `by or 0`: a zero is `Decimal(0)`
        let (is_party, owner) = match party {
            Some(op) => {
                let who = self.val(op, c)?;
                let Some(p) = self.text(who, "a counter's party")? else {
                    return Ok(());
                };
                if !self.party_ix.contains_key(&p) {
                    self.party_counters.push((p, Vec::new()));
                    self.party_ix.insert(p, self.party_counters.len() - 1);
                }
                (true, p)
            }
            None => (false, self.need_subject(c)?.0),
        };
        let old_exp = self
            .counter_exp
            .get(&(is_party, owner, name))
            .copied()
            .unwrap_or(0);
        let table = if is_party {
            let i = self.party_ix[&owner];
            &mut self.party_counters[i].1
        } else {
            let s = self.subject_ix[&owner];
            &mut self.subjects[s].counters
        };
        let exp = old_exp.min(by.1);
        let scale = |v: i64, from: i32| -> Res<i64> {
            let mut v = v;
            for _ in exp..from {
                v = v.checked_mul(10).ok_or("a counter beyond 64 bits")?;
            }
            Ok(v)
        };
        let step = scale(by.0, by.1)?;
        let value = match table.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = scale(slot.1, old_exp)?
                    .checked_add(step)
                    .ok_or("a counter beyond 64 bits")?;
                slot.1
            }
            None => {
                table.push((name, step));
                step
            }
        };
        if exp != 0 {
            self.counter_exp.insert((is_party, owner, name), exp);
            self.trace(
                rule,
                causes,
                Tr::DecCounter {
                    subject: c.subject,
                    party: owner,
                    name,
                    value,
                    exp,
                },
            );
        } else {
            self.trace(
                rule,
                causes,
                Tr::Counter {
                    subject: c.subject,
                    party: owner,
                    name,
                    value,
                },
            );
        }
        if is_party {
            self.shard_add();
        }
        Ok(())
    }

    /// A counter's exponent (0 for whole numbers).
    pub(crate) fn counter_exp_of(&self, key: ExpKey) -> i32 {
        self.counter_exp.get(&key).copied().unwrap_or(0)
    }
}

/// `Decimal` of a coefficient and an exponent, exactly (`Decimal("cE-e")` keeps both).
pub(crate) fn decimal<'py>(py: Python<'py>, value: i64, exp: i32) -> PyResult<Bound<'py, PyAny>> {
    let d = py.import("decimal")?.getattr("Decimal")?;
    if exp == 0 {
        return d.call1((value,));
    }
    d.call1((format!("{value}E{exp}"),))
}
