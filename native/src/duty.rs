//! Duties: an `expect` owed, met, met late, missed or cancelled, in the engine's order
//! (`Engine.expect`, `settle`, `fire_until`).

use crate::eval::*;
use crate::ir::*;
use serde_json::Value as J;
use std::cmp::Reverse;

impl<'p> World<'p> {
    pub(crate) fn expect(&mut self, spec_ix: usize, c: &Ctx, rule: usize) -> Res<()> {
        let prog = self.p;
        let spec = &prog.specs[spec_ix];
        let mut key = None;
        if let Some((scope, op)) = &spec.key {
            // one live duty per key: a second while the key's latest chain is open is not owed
            let k = (*scope, self.key_of(op, c)?);
            let live = match self.live_keys.get(&k) {
                Some(&Live::Duties(first, n)) => {
                    (first..first + n).any(|q| self.duty_state[q] == OPEN)
                }
                Some(&Live::Cadence(ch)) => !self.chains[ch].stopped,
                None => false,
            };
            if live {
                return Ok(());
            }
            key = Some(k);
        }
        let trig = c.event.or(c.trigger).ok_or("a duty without an event")?;
        let first = self.pend.len();
        if spec.repeat {
            // a cadence: one duty at a time, owed again from the event that meets it
            let ch = self.chains.len();
            self.chains.push(Chain {
                spec: spec_ix,
                rule,
                event: c.event,
                trigger: c.trigger,
                subject: c.subject,
                item: c.item,
                stopped: false,
            });
            if let Some(k) = key {
                self.live_keys.insert(k, Live::Cadence(ch));
            }
            let due = self.deadline(spec_ix, spec.within)?;
            let start = (self.due_of(spec.after)?.map(|a| a.0), false);
            return self.owe_in(
                spec_ix,
                None,
                Some(ch),
                c,
                rule,
                trig,
                due,
                start,
                spec.obligation,
            );
        }
        if let Some(every) = spec.every {
            let ch = self.chains.len();
            self.chains.push(Chain {
                spec: spec_ix,
                rule,
                event: c.event,
                trigger: c.trigger,
                subject: c.subject,
                item: c.item,
                stopped: false,
            });
            if let Some(k) = key {
                self.live_keys.insert(k, Live::Cadence(ch));
            }
            let after = self.due_of(spec.after)?;
            let begin = after.map_or(self.now, |a| a.0);
            let end = period_end(every, begin)?;
            let start = (after.map(|a| a.0), false);
            let due = Some(self.rolled(spec_ix, (end, false))?);
            self.owe_in(
                spec_ix,
                None,
                Some(ch),
                c,
                rule,
                trig,
                due,
                start,
                spec.obligation,
            )?;
            self.seq += 1;
            self.timers.push(Reverse((2 * end, self.seq, RENEW | ch)));
            if let (None, Some(e)) = (spec.after, c.event) {
                // the period's duty arose with this event, which already happened in it
                let sv = self.pend[first].sv;
                if spec.types.contains(&self.ev.ty(e))
                    && (sv == Val::Null || py_eq(sv, self.ev.subject(e)))
                    && self.matches(first, e)?
                {
                    self.duty_state[first] = MET;
                    self.met(first, e, false)?;
                }
            }
            return Ok(());
        }
        if let Some(k) = key {
            self.live_keys
                .insert(k, Live::Duties(first, spec.steps.len().max(1)));
        }
        if spec.steps.is_empty() {
            let due = self.deadline(spec_ix, spec.within)?;
            let start = self.due_of(spec.after)?;
            return self.owe(
                spec_ix,
                None,
                c,
                rule,
                trig,
                due,
                (start.map(|s| s.0), false),
                spec.obligation,
            );
        }
        // a schedule: each step's window opens where the previous deadline closed
        let mut prev: Option<(i64, bool)> = None;
        for (i, st) in spec.steps.iter().enumerate() {
            let start = match st.after {
                Some(w) => (Some(self.window_due(w, self.now)?), false),
                None => match prev {
                    Some((d, inclusive)) => (Some(d), inclusive),
                    None => (None, false),
                },
            };
            let due = self.deadline(spec_ix, st.within)?;
            self.owe(
                spec_ix,
                Some((first, i)),
                c,
                rule,
                trig,
                due,
                start,
                st.obligation,
            )?;
            if let Some(d) = due {
                prev = Some(d);
            }
        }
        Ok(())
    }

    fn due_of(&self, w: Option<Window>) -> Res<Option<(i64, bool)>> {
        match w {
            None => Ok(None),
            Some(w) => Ok(Some((self.window_due(w, self.now)?, w.inclusive))),
        }
    }

    /// `CExpect.deadline`: the window's deadline, rolled off days off (`roll`).
    fn deadline(&self, spec_ix: usize, w: Option<Window>) -> Res<Option<(i64, bool)>> {
        match self.due_of(w)? {
            None => Ok(None),
            Some(d) => Ok(Some(self.rolled(spec_ix, d)?)),
        }
    }

    /// `roll_to_working_day`: a deadline whose last instant falls on a day off moves to the
    /// same wall time of the next working day (a zone of steady offset).
    fn rolled(&self, spec_ix: usize, (at, inclusive): (i64, bool)) -> Res<(i64, bool)> {
        let Some((offset, from)) = self.p.specs[spec_ix].roll else {
            return Ok((at, inclusive));
        };
        let cal = self
            .p
            .workcal
            .as_ref()
            .ok_or("`roll` without the calendar")?;
        let last = if inclusive { at } else { at - 1 };
        if last < from {
            return Err("a rolled deadline before the timezone's last offset change".into());
        }
        let day = (last + offset).div_euclid(DAY_US);
        let shift = cal.next_on_or_after(day)? - day;
        let due = shift.checked_mul(DAY_US).and_then(|s| at.checked_add(s));
        Ok((
            due.filter(|d| *d <= self.p.max_us)
                .ok_or("a rolled deadline out of range")?,
            inclusive,
        ))
    }

    /// `Duration.due`: a calendar window, or working days on the policy's calendar.
    fn window_due(&self, w: Window, start: i64) -> Res<i64> {
        if w.working_us != 0 {
            return self.business_due(w, start); // `workhours.rs`
        }
        if w.working_days == 0 {
            return crate::cal::due(w, start, self.p.max_us);
        }
        let cal = self
            .p
            .workcal
            .as_ref()
            .ok_or("working days without the calendar")?;
        cal.due(w.working_days, w.offset, w.from, start, self.p.max_us)
    }

    /// `renew`: a recurring chain's duty for the period that begins at `at`.
    fn renew(&mut self, ch: usize, at: i64) -> Res<()> {
        let chain = &self.chains[ch];
        if chain.stopped {
            return Ok(());
        }
        let (spec_ix, rule, event, trigger, sid, item) = (
            chain.spec,
            chain.rule,
            chain.event,
            chain.trigger,
            chain.subject,
            chain.item,
        );
        let spec = &self.p.specs[spec_ix];
        let subj = sid.map(|s| self.subject(s));
        let c = Ctx {
            now: at,
            event,
            trigger,
            subject: sid,
            subj,
            party: Val::Null,
            item,
        };
        let trig = event.or(trigger).ok_or("a duty without an event")?;
        let saved = self.now;
        self.now = at;
        let what = spec.obligation;
        match spec.every {
            Some(every) => {
                let end = period_end(every, at)?;
                let due = Some(self.rolled(spec_ix, (end, false))?);
                self.owe_in(
                    spec_ix,
                    None,
                    Some(ch),
                    &c,
                    rule,
                    trig,
                    due,
                    (None, false),
                    what,
                )?;
                self.seq += 1;
                self.timers.push(Reverse((2 * end, self.seq, RENEW | ch)));
            }
            None => {
                let due = self.deadline(spec_ix, spec.within)?;
                self.owe_in(
                    spec_ix,
                    None,
                    Some(ch),
                    &c,
                    rule,
                    trig,
                    due,
                    (None, false),
                    what,
                )?;
            }
        }
        self.now = saved;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn owe(
        &mut self,
        spec_ix: usize,
        step: Option<(usize, usize)>,
        c: &Ctx,
        rule: usize,
        trig: usize,
        due: Option<(i64, bool)>,
        start: (Option<i64>, bool),
        what: Option<u32>,
    ) -> Res<()> {
        self.owe_in(spec_ix, step, None, c, rule, trig, due, start, what)
    }

    /// `_instance` and `_register`: one duty of the expectation (a step of its chain, or a
    /// period of its cadence).
    #[allow(clippy::too_many_arguments)]
    fn owe_in(
        &mut self,
        spec_ix: usize,
        step: Option<(usize, usize)>,
        chain: Option<usize>,
        c: &Ctx,
        rule: usize,
        trig: usize,
        due: Option<(i64, bool)>,
        (start, start_excl): (Option<i64>, bool),
        what: Option<u32>,
    ) -> Res<()> {
        let prog = self.p;
        let spec = &prog.specs[spec_ix];
        let inclusive = due.is_none_or(|d| d.1);
        let due = due.map(|d| d.0);
        let matches = self.fix_fields(&spec.matches, c)?;
        let party = match &spec.party {
            Some(op) => self.val(op, c)?,
            None => Val::Null,
        };
        let sv = match &spec.subject {
            Some(op) => self.val(op, c)?,
            None => Val::Null,
        };
        let mut entries = Vec::with_capacity(spec.cancels.len());
        for cn in &spec.cancels {
            let csv = match &cn.subject {
                Some(op) => self.val(op, c)?,
                None => Val::Null,
            };
            entries.push((csv, self.fix_fields(&cn.matches, c)?));
        }
        let first = self.duty_cancels.len();
        self.duty_cancels.extend(entries);
        let cancel = Run::since(first, self.duty_cancels.len())?;
        let mut obligation = None;
        if let Some(what) = what {
            let about = match &spec.about {
                Some(op) => {
                    let v = self.val(op, c)?;
                    let v = self.as_text(v);
                    self.text(v, "an obligation's subject")?
                }
                None => c.subject,
            };
            self.obligations.push(Obl {
                rule,
                what,
                party,
                subject: about,
                opened: self.now,
                start,
                start_incl: !start_excl,
                due,
                inclusive,
                status: OPEN,
                met_by: None,
                met_at: None,
                trigger: trig,
            });
            obligation = Some(self.obligations.len() - 1);
        }
        let p = self.pend.len();
        self.duty_state.push(OPEN);
        self.pend.push(Pend {
            cancel,
            start,
            start_excl,
            step,
            chain,
            spec: spec_ix,
            rule,
            trigger: trig,
            subject: c.subject,
            matches,
            party,
            sv,
            obligation,
        });
        for t in self.awaits(p) {
            self.waiting.entry((*t, sv)).or_default().push(p);
        }
        // `_cancel_keys`: each entry's types under its subject value, once each
        let mut ckeys: Vec<(u32, Val)> = Vec::new();
        for (cn, (csv, _)) in spec.cancels.iter().zip(&self.duty_cancels[self.pend[p].cancel.range()]) {
            for t in &cn.types {
                if !ckeys.contains(&(*t, *csv)) {
                    ckeys.push((*t, *csv));
                }
            }
        }
        for k in ckeys {
            self.cancels.entry(k).or_default().push(p);
        }
        if let Some(d) = due {
            self.seq += 1;
            // a deadline fires after the events at it when inclusive, before them when not
            // one lane per kind of duty: its deadlines mostly come in order
            self.timers
                .push_in(Reverse((2 * d + i64::from(inclusive), self.seq, p)), spec_ix);
            self.shard_push(self.seq);
        }
        self.trace(
            rule,
            Causes(trig, None),
            Tr::Expectation {
                subject: c.subject,
                party,
                spec: spec_ix,
                step: step.map(|s| s.1),
                due,
            },
        );
        Ok(())
    }

    /// A duty's fixed fields (`match`), valued as it arises, appended to `duty_fields`.
    fn fix_fields(&mut self, matches: &[(usize, Op)], c: &Ctx) -> Res<Run> {
        let first = self.duty_fields.len();
        for (f, op) in matches {
            let v = self.val(op, c)?;
            self.duty_fields.push((*f, v));
        }
        Run::since(first, self.duty_fields.len())
    }

    /// The event types a duty awaits: its step's, or its expectation's.
    pub(crate) fn awaits(&self, p: usize) -> &'p [u32] {
        let prog = self.p;
        let pe = &self.pend[p];
        let spec = &prog.specs[pe.spec];
        match pe.step {
            Some((_, i)) => &spec.steps[i].types,
            None => &spec.types,
        }
    }

    pub(crate) fn fire_until(&mut self, limit: i64) -> Res<()> {
        while let Some(&Reverse((key, seq, p))) = self.timers.peek() {
            if key >= limit {
                break;
            }
            self.timers.pop();
            if p >= crate::metric::CLOSE || p & RENEW != 0 {
                self.shard_refuse("a tick, a period's end or a renewal")?;
            }
            if p >= crate::periodic::TICK {
                self.tick(p - crate::periodic::TICK, key >> 1)?;
                continue;
            }
            if p >= crate::metric::CLOSE {
                self.close((p - crate::metric::CLOSE) as u8, key >> 1)?;
                continue;
            }
            if p & RENEW != 0 {
                self.renew(p & !RENEW, key >> 1)?;
                continue;
            }
            if self.duty_state[p] != OPEN {
                continue;
            }
            let due = key >> 1; // 2 * due, or 2 * due + 1
            self.shard_timer(key, seq);
            self.duty_state[p] = MISSED;
            self.now = due;
            if let Some(o) = self.pend[p].obligation {
                self.obligations[o].status = MISSED;
            }
            let prog = self.p;
            let spec = &prog.specs[self.pend[p].spec];
            if spec.repeat
                || (spec.every.is_none() && (spec.watch_late || self.pend[p].obligation.is_some()))
            {
                // a step's own obligation makes it watched too (the engine's rule per duty); a
                // calendar period's later events belong to its later periods, never "late"
                let sv = self.pend[p].sv;
                for t in self.awaits(p) {
                    self.overdue.entry((*t, sv)).or_default().push(p);
                }
            }
            if !spec.missed.is_empty() {
                let pe = &self.pend[p];
                let (trig, sid, party, rule) = (pe.trigger, pe.subject, pe.party, pe.rule);
                let subj = sid.map(|s| self.subject(s));
                let c = Ctx {
                    now: due,
                    event: None,
                    trigger: Some(trig),
                    subject: sid,
                    subj,
                    party,
                    item: Val::Null,
                };
                self.step_owner.clear();
                self.run(&spec.missed, &c, rule, Causes(trig, None))?;
            }
            self.drain()?;
        }
        Ok(())
    }

    /// `_matches`: the fields fixed at the start, the window's opening (`after`), `where`.
    pub(crate) fn matches(&self, p: usize, e: usize) -> Res<bool> {
        let pe = &self.pend[p];
        if !self.duty_fields[pe.matches.range()]
            .iter()
            .all(|(f, v)| py_eq(self.ev.val(e, *f), *v))
        {
            return Ok(false);
        }
        let at = self.ev.at(e);
        if pe
            .start
            .is_some_and(|s| if pe.start_excl { at <= s } else { at < s })
        {
            return Ok(false);
        }
        let spec = &self.p.specs[pe.spec];
        let cond = match pe.step {
            Some((_, i)) => &spec.steps[i].where_,
            None => &spec.where_,
        };
        match cond {
            None => Ok(true),
            Some(w) => self.holds(w, &self.candidate(p, e)),
        }
    }

    /// The context a duty's conditions read an event in: `$event` it, `$trigger` the duty's.
    fn candidate(&self, p: usize, e: usize) -> Ctx {
        let pe = &self.pend[p];
        let subj = pe.subject.and_then(|s| self.subject_ix.get(&s).copied());
        Ctx {
            now: self.ev.at(e),
            event: Some(e),
            trigger: Some(pe.trigger),
            subject: pe.subject,
            subj,
            party: pe.party,
            item: Val::Null,
        }
    }

    /// `_cancelled_by`: one of the duty's `cancel_on` entries takes the event.
    fn cancelled_by(&self, p: usize, e: usize) -> Res<bool> {
        let (et, sv) = (self.ev.ty(e), self.ev.subject(e));
        let spec = &self.p.specs[self.pend[p].spec];
        for (cn, (csv, fields)) in spec.cancels.iter().zip(&self.duty_cancels[self.pend[p].cancel.range()]) {
            if !cn.types.contains(&et) {
                continue;
            }
            if *csv != Val::Null && !py_eq(sv, *csv) {
                continue;
            }
            if !self.duty_fields[fields.range()]
                .iter()
                .all(|(f, v)| py_eq(self.ev.val(e, *f), *v))
            {
                continue;
            }
            match &cn.where_ {
                None => return Ok(true),
                Some(w) => {
                    if self.holds(w, &self.candidate(p, e))? {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    pub(crate) fn met(&mut self, p: usize, e: usize, late: bool) -> Res<()> {
        let at = self.ev.at(e);
        let (spec, trig, sid, party, rule, obl) = {
            let pe = &self.pend[p];
            (
                pe.spec,
                pe.trigger,
                pe.subject,
                pe.party,
                pe.rule,
                pe.obligation,
            )
        };
        if let Some(o) = obl {
            let o = &mut self.obligations[o];
            o.status = if late { LATE } else { MET };
            o.met_by = Some(e);
            o.met_at = Some(at);
        }
        let prog = self.p;
        let sp = &prog.specs[spec];
        if let Some((first, i)) = self.pend[p].step {
            // a step met while an earlier one is not yet met: `out_of_order` first
            if !sp.out_of_order.is_empty()
                && (first..first + i).any(|q| !matches!(self.duty_state[q], MET | LATE))
            {
                let subj = sid.map(|s| self.subject(s));
                let c = Ctx {
                    now: at,
                    event: Some(e),
                    trigger: Some(trig),
                    subject: sid,
                    subj,
                    party,
                    item: Val::Null,
                };
                self.run(&sp.out_of_order, &c, rule, Causes(trig, Some(e)))?;
            }
        }
        let branch = if late { &sp.late } else { &sp.met };
        if !branch.is_empty() {
            let subj = sid.map(|s| self.subject(s));
            let c = Ctx {
                now: at,
                event: Some(e),
                trigger: Some(trig),
                subject: sid,
                subj,
                party,
                item: Val::Null,
            };
            self.run(branch, &c, rule, Causes(trig, Some(e)))?;
        }
        if let (true, Some(ch)) = (sp.repeat, self.pend[p].chain) {
            self.renew(ch, at)?; // the cadence restarts at the meeting event
        }
        Ok(())
    }

    /// Whether event `e` meets duty `p`; `used`: the expectations that `consume` and that the
    /// event has met already this step (one event meets one duty of each).
    fn meets(&self, p: usize, e: usize, used: &mut Vec<usize>) -> Res<bool> {
        let spec = self.pend[p].spec;
        let consume = self.p.specs[spec].consume;
        let meets = !(consume && used.contains(&spec)) && self.matches(p, e)?;
        if meets && consume {
            used.push(spec);
        }
        Ok(meets)
    }

    pub(crate) fn settle(&mut self, e: usize) -> Res<()> {
        let et = self.ev.ty(e);
        let sv = self.ev.subject(e);
        let both = [(et, sv), (et, Val::Null)];
        let keys = if sv != Val::Null { &both[..] } else { &both[1..] };
        // `consume`: one event meets one duty of the expectation (in time first, then late)
        let mut used: Vec<usize> = Vec::new();
        for key in keys {
            // the list is taken out and its kept duties written back in its place: meeting a
            // duty may add others under the same key meanwhile (kept after those, as added)
            let Some(slot) = self.waiting.get_mut(key) else {
                continue;
            };
            let mut list = std::mem::take(slot);
            let mut kept = 0;
            for i in 0..list.len() {
                let p = list[i];
                if self.duty_state[p] != OPEN {
                    continue;
                }
                if !self.meets(p, e, &mut used)? {
                    list[kept] = p;
                    kept += 1;
                    continue;
                }
                self.duty_state[p] = MET;
                self.met(p, e, false)?;
            }
            list.truncate(kept);
            let slot = self.waiting.entry(*key).or_default();
            let added = std::mem::replace(slot, list);
            let states = &self.duty_state;
            slot.extend(added.into_iter().filter(|&p| states[p] == OPEN));
            if slot.is_empty() {
                self.waiting.remove(key);
            }
        }
        for key in keys {
            let Some(slot) = self.overdue.get_mut(key) else {
                continue;
            };
            let mut list = std::mem::take(slot);
            let mut kept = 0;
            for i in 0..list.len() {
                let p = list[i];
                if self.duty_state[p] != MISSED {
                    continue;
                }
                if let (true, Some(ch)) =
                    (self.p.specs[self.pend[p].spec].repeat, self.pend[p].chain)
                {
                    if self.chains[ch].stopped {
                        continue; // a cancelled cadence's overdue duty: nothing meets it late
                    }
                }
                if !self.meets(p, e, &mut used)? {
                    list[kept] = p;
                    kept += 1;
                    continue;
                }
                self.duty_state[p] = LATE;
                self.met(p, e, true)?;
            }
            list.truncate(kept);
            let slot = self.overdue.entry(*key).or_default();
            let added = std::mem::replace(slot, list);
            slot.extend(added);
        }
        for key in keys {
            let Some(list) = self.cancels.remove(key) else {
                continue;
            };
            let mut keep = Vec::with_capacity(list.len());
            for &p in &list {
                if self.duty_state[p] != OPEN {
                    // this period's duty is settled, but the cancel event still ends its series
                    if let Some(ch) = self.pend[p].chain {
                        if !self.chains[ch].stopped && self.cancelled_by(p, e)? {
                            self.chains[ch].stopped = true;
                        }
                    }
                    continue;
                }
                if !self.cancelled_by(p, e)? {
                    keep.push(p);
                    continue;
                }
                self.duty_state[p] = CANCELLED;
                if let Some(ch) = self.pend[p].chain {
                    self.chains[ch].stopped = true;
                }
                if let Some(o) = self.pend[p].obligation {
                    let o = &mut self.obligations[o];
                    o.status = CANCELLED;
                    o.met_by = Some(e);
                    o.met_at = Some(self.ev.at(e));
                }
                let (rule, trig) = (self.pend[p].rule, self.pend[p].trigger);
                self.trace(
                    rule,
                    Causes(trig, Some(e)),
                    Tr::Cancelled { pend: p, by: e },
                );
            }
            if !keep.is_empty() {
                self.cancels.insert(*key, keep);
            }
        }
        Ok(())
    }
}

impl Loader {
    fn opt_op(&mut self, v: &J) -> Res<Option<Op>> {
        match v {
            J::Null => Ok(None),
            o => Ok(Some(self.op(o)?)),
        }
    }

    fn opt_cond(&mut self, v: &J) -> Res<Option<Cond>> {
        match v {
            J::Null => Ok(None),
            c => Ok(Some(self.cond(c)?)),
        }
    }

    fn opt_window(&mut self, v: &J) -> Res<Option<Window>> {
        match v {
            J::Null => Ok(None),
            w => Ok(Some(self.window(w)?)),
        }
    }

    /// An `expect` action's duty, read once (its branches' duties first).
    pub(crate) fn spec(&mut self, v: &J) -> Res<usize> {
        let types = self.types(get(v, "types")?)?;
        let subject = self.opt_op(get(v, "subject")?)?;
        let matches = self.matches(get(v, "match")?)?;
        let within = self.opt_window(get(v, "within")?)?;
        let after = self.opt_window(get(v, "after")?)?;
        let obligation = match get(v, "obligation")? {
            J::Null => None,
            o => Some(self.strings.sym(text(o)?)),
        };
        let party = self.opt_op(get(v, "party")?)?;
        let about = self.opt_op(get(v, "about")?)?;
        let where_ = self.opt_cond(get(v, "where")?)?;
        let mut cancels = Vec::new();
        for c in get(v, "cancels")?.as_array().ok_or("cancels are a list")? {
            let subject = self.opt_op(get(c, "subject")?)?;
            let types = self.types(get(c, "types")?)?;
            let matches = self.matches(get(c, "match")?)?;
            let where_ = self.opt_cond(get(c, "where")?)?;
            cancels.push(Cancel {
                types,
                subject,
                matches,
                where_,
            });
        }
        let key = match get(v, "key")? {
            J::Null => None,
            k => {
                let scope = match get(v, "key_scope")? {
                    J::Null => None,
                    s => Some(i64::from(self.strings.sym(text(s)?))),
                };
                Some((scope, self.op(k)?))
            }
        };
        let mut steps = Vec::new();
        if let Some(list) = get(v, "steps")?.as_array() {
            for st in list {
                steps.push(StepSpec {
                    types: self.types(get(st, "types")?)?,
                    where_: self.opt_cond(get(st, "where")?)?,
                    within: self.opt_window(get(st, "within")?)?,
                    after: self.opt_window(get(st, "after")?)?,
                    obligation: match get(st, "obligation")? {
                        J::Null => None,
                        o => Some(self.strings.sym(text(o)?)),
                    },
                });
            }
        }
        let consume = get(v, "consume")?.as_bool().ok_or("consume")?;
        let repeat = get(v, "repeat")?.as_bool().ok_or("repeat")?;
        let roll = match get(v, "roll")? {
            J::Null => None,
            r => Some((
                get(r, "offset")?.as_i64().ok_or("a roll's offset")?,
                get(r, "from")?.as_i64().ok_or("a roll's steady start")?,
            )),
        };
        let every = match get(v, "every")? {
            J::Null => None,
            e => Some(Every {
                unit: match text(get(e, "unit")?)? {
                    "day" => 0,
                    "week" => 1,
                    "month" => 2,
                    other => return Err(format!("the period {other:?}")),
                },
                offset: get(e, "offset")?.as_i64().ok_or("a period's offset")?,
                from: get(e, "from")?.as_i64().ok_or("a period's steady start")?,
                min_us: get(e, "min_us")?.as_i64().ok_or("min_us")?,
                max_us: get(e, "max_us")?.as_i64().ok_or("max_us")?,
            }),
        };
        let out_of_order = self.acts(get(v, "out_of_order")?)?;
        let watch_late = get(v, "watch_late")?.as_bool().ok_or("watch_late")?;
        let met = self.acts(get(v, "met")?)?;
        let late = self.acts(get(v, "late")?)?;
        let missed = self.acts(get(v, "missed")?)?;
        // an unnamed key scope is the duty's own (`id(e)`): below every named one
        let own = -1 - self.specs.len() as i64;
        let key = key.map(|(scope, op)| (scope.unwrap_or(own), op));
        self.specs.push(Spec {
            types,
            subject,
            matches,
            within,
            obligation,
            party,
            cancels,
            watch_late,
            key,
            where_,
            after,
            about,
            steps,
            every,
            repeat,
            roll,
            consume,
            out_of_order,
            met,
            late,
            missed,
        });
        Ok(self.specs.len() - 1)
    }
}

/// One duty of a schedule or workflow (`CStepSpec`): the expectation's defaults filled in.
pub(crate) struct StepSpec {
    pub(crate) types: Vec<u32>,
    pub(crate) where_: Option<Cond>, // the expectation's and the step's, both
    pub(crate) within: Option<Window>,
    pub(crate) after: Option<Window>,
    pub(crate) obligation: Option<u32>,
}

/// `every:` a local calendar period (0 day, 1 ISO week, 2 month) in a zone of steady offset
/// from `from` on; periods outside `min_us..=max_us` are the engine's error.
#[derive(Clone, Copy)]
pub(crate) struct Every {
    pub(crate) unit: u8,
    pub(crate) offset: i64,
    pub(crate) from: i64,
    pub(crate) min_us: i64,
    pub(crate) max_us: i64,
}

/// A key's latest duties: a duty or a schedule's (contiguous in `World::pend`), or a cadence.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) enum Live {
    Duties(usize, usize),
    Cadence(usize),
}

/// A recurring duty's series (`Chain`): renewed from the context that made it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Chain {
    pub(crate) spec: usize,
    pub(crate) rule: usize,
    pub(crate) event: Option<usize>,
    pub(crate) trigger: Option<usize>,
    pub(crate) subject: Option<u32>,
    pub(crate) item: Val,
    pub(crate) stopped: bool,
}

/// A timer that renews a chain (`Renew`), told from a duty's deadline by this bit.
// below `metric::CLOSE` (1 << 61) and `periodic::TICK` (1 << 62), the other timer kinds
pub(crate) const RENEW: usize = 1 << 60;

const DAY_US: i64 = 86_400_000_000;

/// `period_of(unit, us).end`: the end of the local period holding `us`.
fn period_end(p: Every, us: i64) -> Res<i64> {
    let out = || "a period out of the supported range".to_string();
    if us < p.from {
        return Err("a period before the timezone's last offset change".into());
    }
    let local = us.checked_add(p.offset).ok_or_else(out)?;
    let day = local.div_euclid(DAY_US);
    let (start, end) = match p.unit {
        0 => (day, Some(day + 1)),
        1 => {
            let monday = day - (day + 3).rem_euclid(7); // 1970-01-01 was a Thursday
            (monday, Some(monday + 7))
        }
        _ => {
            let (y, m, _) = crate::cal::civil_from_days(day);
            let first = crate::input::days_from_civil(y, m, 1);
            let next = crate::cal::add_months(first * DAY_US, 1).map(|l| l.div_euclid(DAY_US));
            (first, next)
        }
    };
    let start = (start * DAY_US).checked_sub(p.offset).ok_or_else(out)?;
    let end = end
        .and_then(|e| e.checked_mul(DAY_US))
        .and_then(|e| e.checked_sub(p.offset))
        .ok_or_else(out)?;
    if start < p.min_us || end > p.max_us || start < p.from {
        return Err(out());
    }
    Ok(end)
}
