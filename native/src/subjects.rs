//! `for_each_subject` of a `subjects` query, as `Engine.run` and `Queries.subjects_with` do
//! it: the subjects known, of an owner's kind (or one owner's), sorted by id and narrowed by
//! `where` before the first runs; then the action once per subject, `$subject` that one.

use crate::eval::{Causes, Ctx, World};
use crate::ir::*;
use serde_json::Value as J;

const KINDS: [&str; 4] = ["any", "owned", "owned_by_employee", "company"];

impl Loader {
    /// `{subjects, owner, where}`, or None where `v` is no such query.
    pub(crate) fn subjects_op(&mut self, v: &J) -> Res<Option<Op>> {
        let Some(kind) = v.get("subjects") else {
            return Ok(None);
        };
        let kind = KINDS
            .iter()
            .position(|k| Some(*k) == kind.as_str())
            .ok_or("a kind of subjects")?;
        let owner = match get(v, "owner")? {
            J::Null => None,
            o => Some(Box::new(self.op(o)?)),
        };
        let where_ = match get(v, "where")? {
            J::Null => None,
            w => Some(Box::new(self.cond(w)?)),
        };
        Ok(Some(Op::Subjects(kind as u8, owner, where_)))
    }
}

impl<'p> World<'p> {
    /// `subjects_with(kind, owner)`, then `where` on each (`$subject` bound to it).
    fn subjects_of(
        &self,
        kind: u8,
        owner: Option<&Op>,
        where_: Option<&Cond>,
        c: &Ctx,
    ) -> Res<Vec<(u32, usize)>> {
        let is_company =
            |o: Option<u32>| o.is_some_and(|o| self.strings.names[o as usize] == "company");
        let by_owner = match owner {
            Some(op) => match self.val(op, c)? {
                Val::Null => None,
                Val::Str(o) => Some(o),
                _ => return Ok(Vec::new()), // no owner of the index is anything but text
            },
            None => None,
        };
        let mut found: Vec<(u32, usize)> = Vec::new();
        for (i, s) in self.subjects.iter().enumerate() {
            let keep = match by_owner {
                Some(o) => {
                    s.owner == Some(o) && (kind != 3 || self.strings.names[o as usize] == "company")
                }
                None => match kind {
                    0 => true,
                    1 => s.owner.is_some(),
                    3 => is_company(s.owner),
                    _ => s.owner.is_some() && !is_company(s.owner),
                },
            };
            if keep {
                found.push((s.id, i));
            }
        }
        found.sort_by(|a, b| {
            self.strings.names[a.0 as usize].cmp(&self.strings.names[b.0 as usize])
        });
        let Some(w) = where_ else { return Ok(found) };
        let mut out = Vec::with_capacity(found.len());
        for (sid, i) in found {
            if self.holds(
                w,
                &Ctx {
                    subject: Some(sid),
                    subj: Some(i),
                    ..*c
                },
            )? {
                out.push((sid, i));
            }
        }
        Ok(out)
    }

    /// The action once per subject of `each` (a `subjects` query), its `when` on each.
    pub(crate) fn each_subject(
        &mut self,
        a: &'p Act,
        each: &Op,
        c: &Ctx,
        rule: usize,
        causes: Causes,
    ) -> Res<()> {
        let Op::Subjects(kind, owner, where_) = each else {
            return Err("`for_each_subject` of anything but subjects".into());
        };
        for (sid, i) in self.subjects_of(*kind, owner.as_deref(), where_.as_deref(), c)? {
            let cs = Ctx {
                subject: Some(sid),
                subj: Some(i),
                ..*c
            };
            if let Some(w) = &a.when {
                if !self.holds(w, &cs)? {
                    continue;
                }
            }
            self.act(a, &cs, rule, causes)?;
        }
        Ok(())
    }
}
