//! The actions over every subject at once (`transfer`, `drop_claims`), in the engine's order:
//! the subjects sorted by id.

use crate::eval::{Causes, Tr, World};
use crate::ir::*;

impl<'p> World<'p> {
    fn sorted(&self, mut found: Vec<usize>) -> Vec<usize> {
        found.sort_by(|a, b| {
            let name = |i: usize| self.strings.names[self.subjects[i].id as usize].as_str();
            name(*a).cmp(name(*b))
        });
        found
    }

    /// `transfer`: every subject `from` owns goes to `to` (`set_owner` on each).
    pub(crate) fn transfer(&mut self, from: Val, to: Val, rule: usize, causes: Causes) -> Res<()> {
        let Some(from) = self.text(from, "a transfer's owner")? else { return Ok(()) };
        let to = self.text(to, "a transfer's new owner")?;
        let owned = (0..self.subjects.len()).filter(|&i| self.subjects[i].owner == Some(from)).collect();
        for s in self.sorted(owned) {
            let sid = self.subjects[s].id;
            self.set_owner(sid, s, to, rule, causes);
        }
        Ok(())
    }

    /// `drop_claims`: the claimant's open claims released, on every subject.
    pub(crate) fn drop_claims(&mut self, emp: Val, rule: usize, causes: Causes) -> Res<()> {
        let Some(emp) = self.text(emp, "a claimant")? else { return Ok(()) };
        let open = (0..self.subjects.len())
            .filter(|&i| self.subjects[i].claims.iter().any(|&(e, st)| e == emp && st == 0))
            .collect();
        for s in self.sorted(open) {
            let sid = self.subjects[s].id;
            if let Some(c) = self.subjects[s].claims.iter_mut().find(|(e, _)| *e == emp) {
                c.1 = 2;
            }
            self.trace(rule, causes, Tr::Claim { subject: sid, party: emp, status: 2 });
        }
        Ok(())
    }
}
