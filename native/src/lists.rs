//! `values` as a list (the items of a `for_each`, a side of `eq`/`ne`) and lists compared
//! item by item, as `Queries.history` and Python's `list == list` give them.

use crate::eval::{Ctx, World};
use crate::ir::*;
use serde_json::Value as J;
use std::cmp::Reverse;

impl Loader {
    /// `{values_list, field, last}`, or None.
    pub(crate) fn list_op(&mut self, v: &J) -> Res<Option<Op>> {
        let Some(q) = v.get("values_list") else {
            return Ok(None);
        };
        let query = self.query(q)?;
        let field = self.slot(text(get(v, "field")?)?);
        let last = match get(v, "last")? {
            J::Null => None,
            n => Some(n.as_i64().ok_or("a `last` count")?),
        };
        Ok(Some(Op::ValuesList(Box::new(query), field, last)))
    }
}

impl<'p> World<'p> {
    /// The field of every match: without `last` in `scan`'s order; with it, the newest
    /// `last`, those at one instant in the types' order, each type's in the order written
    /// (`Queries.history`'s stable sort of the types' lists one after another).
    pub(crate) fn values_list(
        &self,
        q: &CountQ,
        field: Field,
        last: Option<i64>,
        c: &Ctx,
    ) -> Res<Vec<Val>> {
        let Some(n) = last else {
            return self.values_of(q, field, c);
        };
        let mut found: Vec<(Reverse<i64>, usize, usize)> = Vec::new();
        self.scan(q, c, |e, _| {
            let t = q
                .types
                .iter()
                .position(|t| *t == self.ev.ty(e))
                .unwrap_or(usize::MAX);
            found.push((Reverse(self.ev.at(e)), t, e));
            true
        })?;
        found.sort_unstable();
        let n = usize::try_from(n).map_err(|_| "a `last` out of range")?;
        Ok(found
            .iter()
            .take(n)
            .map(|&(_, _, e)| self.ev.get(e, field, &self.ids))
            .collect())
    }

    /// A list operand's items, or None for any other operand.
    pub(crate) fn items_of(&self, op: &Op, c: &Ctx) -> Res<Option<Vec<Val>>> {
        Ok(match op {
            Op::ValuesList(q, field, last) => Some(self.values_list(q, *field, *last, c)?),
            Op::Tuple(items) => Some(items.iter().map(|x| self.val(x, c)).collect::<Res<_>>()?),
            _ => None,
        })
    }

    /// `eq` (0) and `ne` (1) of two lists, item by item with Python's `==`; None where
    /// neither side is a list.
    pub(crate) fn list_test(&self, code: u8, a: &Op, b: &Op, c: &Ctx) -> Res<Option<bool>> {
        let (x, y) = match (self.items_of(a, c)?, self.items_of(b, c)?) {
            (None, None) => return Ok(None),
            (Some(x), Some(y)) => (x, y),
            _ => return Err("a list compared with one value".into()),
        };
        let same = x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| py_eq(*p, *q));
        match code {
            0 => Ok(Some(same)),
            1 => Ok(Some(!same)),
            _ => Err("lists in order".into()),
        }
    }
}
