//! Penalties and counters, as `runtime.ledger` keeps them: offences numbered per ladder key
//! and party, counters per party or per subject (whole numbers: the IR admits no other).

use crate::eval::{Causes, Ctx, Tr, World};
use crate::ir::*;

/// One sanction imposed: the penalty, the step taken and the offence's number.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct PenRow {
    pub(crate) party: u32,
    pub(crate) pen: usize,
    pub(crate) step: usize,
    pub(crate) units: Option<i64>,
    pub(crate) offence: i64,
    pub(crate) subject: Option<u32>,
    pub(crate) at: i64,
    pub(crate) rule: usize,
    pub(crate) causes: Causes,
    pub(crate) amount: Option<(u32, u32)>, // the step's amount, or the one looked up
}

impl<'p> World<'p> {
    /// `Ledger.penalize` (no window, no period): the `n`-th offence of the party under the
    /// key takes step `n` of a ladder, the last repeating.
    pub(crate) fn penalize(&mut self, ix: usize, c: &Ctx, rule: usize, causes: Causes) -> Res<()> {
        let pen = &self.p.penalties[ix];
        let who = self.val(&pen.party, c)?;
        let Some(party) = self.text(who, "a penalty's party")? else { return Ok(()) };
        let count = self.ladders.get(&(pen.key, party)).copied().unwrap_or(0);
        let step = if pen.ladder { (count as usize).min(pen.steps.len() - 1) } else { 0 };
        let units = match (&pen.per_unit, &pen.units) {
            (Some(_), Some(u)) => Some(match self.val(u, c)? {
                Val::Null => 0,
                Val::Int(n) => n,
                other => return Err(format!("a penalty's units came out as {other:?}")),
            }),
            _ => None,
        };
        let amount = self.amount_of(&pen.steps[step], c)?;
        self.ladders.insert((pen.key, party), count + 1);
        self.penalties.push(PenRow {
            party,
            pen: ix,
            step,
            units,
            offence: count + 1,
            subject: c.subject,
            at: self.now,
            rule,
            causes,
            amount,
        });
        let row = self.penalties.len() - 1;
        self.trace(rule, causes, Tr::Penalty(row));
        self.shard_penalty(c)?;
        Ok(())
    }

    /// The engine's `add`: `Decimal(str(by or 0))` onto the party's counter (or, without a
    /// party, the subject's).
    pub(crate) fn add(&mut self, name: u32, by: &Op, party: Option<&Op>, c: &Ctx, rule: usize, causes: Causes) -> Res<()> {
        let by = match self.val(by, c)? {
            Val::Null => 0,
            Val::Int(n) => n,
            Val::Dec(e, d) => return self.add_decimal(name, (d, e), party, c, rule, causes),
            other => return Err(format!("a counter's step came out as {other:?}")),
        };
        if !self.counter_exp.is_empty() {
            return self.add_decimal(name, (by, 0), party, c, rule, causes); // `counters.rs`
        }
        let (owner, table) = match party {
            Some(op) => {
                let who = self.val(op, c)?;
                let Some(p) = self.text(who, "a counter's party")? else { return Ok(()) };
                let i = match self.party_ix.get(&p) {
                    Some(&i) => i,
                    None => {
                        self.party_counters.push((p, Vec::new()));
                        self.party_ix.insert(p, self.party_counters.len() - 1);
                        self.party_counters.len() - 1
                    }
                };
                (p, &mut self.party_counters[i].1)
            }
            None => {
                let (sid, s) = self.need_subject(c)?;
                (sid, &mut self.subjects[s].counters)
            }
        };
        let value = match table.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = slot.1.checked_add(by).ok_or("a counter beyond 64 bits")?;
                slot.1
            }
            None => {
                table.push((name, by));
                by
            }
        };
        self.counter_log.push((owner, name, self.now, by, party.is_some()));
        self.trace(rule, causes, Tr::Counter { subject: c.subject, party: owner, name, value });
        if party.is_some() {
            self.shard_add();
        }
        Ok(())
    }
}
