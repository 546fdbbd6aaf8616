//! Rules with `every:` (`World.schedule_ticks`, `World.tick`): at the start of each local
//! calendar period (day, ISO week from Monday, month) from the one holding the history's
//! first event, the period's rules are matched and run on a tick event (`@month`, id
//! `month:2026-03`, fields `period`, `start`, `end`; no subject). Periods are computed in a
//! zone of steady offset only, from its last change on; a tick is a timer keyed `2 * start`,
//! queued when the previous one fires, as the engine queues it.

use crate::cal::{add_months, civil_from_days};
use crate::eval::{Causes, Ctx, World};
use crate::fx::FxSet;
use crate::input::days_from_civil;
use crate::ir::{get, text, Res, Rule, Val};
use serde_json::Value as J;
use std::cmp::Reverse;

const DAY_US: i64 = 86_400_000_000;
/// Timer payloads from here on are ticks (the unit's index added), below it duties.
pub(crate) const TICK: usize = 1 << 62;
pub(crate) const UNITS: [&str; 3] = ["day", "week", "month"];

/// The tick event's origin: the id of a derived row that is not an event of the history.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) enum Origin {
    Event(usize), // carries the id of this event (a derived `owner_changed`)
    Text(u32),    // its own id (a tick)
}

pub(crate) struct Unit {
    unit: u8,  // index into UNITS
    ty: u32,   // `@month`
    name: u32, // `month`
    rules: Vec<usize>,
    plain: bool, // no rule overrides another
}

pub(crate) struct Periods {
    from: i64,        // the zone's offset is steady from here on
    offset: i64,      // that offset
    units: Vec<Unit>, // in the order the rules first name them (`policy.periodic`)
    period: Option<usize>,
    start: Option<usize>,
    end: Option<usize>,
}

/// The IR's `periodic` (null: no rule with `every:`), and the rules' `every`.
pub(crate) fn load(
    ir: &J,
    rules: &[Rule],
    strings: &mut crate::ir::Interner,
    fields: &[String],
) -> Res<Option<Periods>> {
    let spec = match ir.get("periodic") {
        None | Some(J::Null) => return Ok(None),
        Some(s) => s,
    };
    let from = get(spec, "from")?.as_i64().ok_or("periodic from")?;
    let offset = get(spec, "offset")?.as_i64().ok_or("periodic offset")?;
    let mut units: Vec<Unit> = Vec::new();
    for (i, r) in get(ir, "rules")?
        .as_array()
        .ok_or("rules")?
        .iter()
        .enumerate()
    {
        let every = match r.get("every") {
            None | Some(J::Null) => continue,
            Some(e) => text(e)?,
        };
        let unit = UNITS
            .iter()
            .position(|u| *u == every)
            .ok_or_else(|| format!("the period {every:?}"))? as u8;
        match units.iter_mut().find(|u| u.unit == unit) {
            Some(u) => u.rules.push(i),
            None => units.push(Unit {
                unit,
                ty: strings.sym(&format!("@{every}")),
                name: strings.sym(every),
                rules: vec![i],
                plain: true,
            }),
        }
    }
    for u in &mut units {
        u.plain = u
            .rules
            .iter()
            .all(|&r| rules[r].overrides.is_empty() && !rules[r].rejects);
    }
    let slot = |name: &str| fields.iter().position(|f| f == name);
    Ok(Some(Periods {
        from,
        offset,
        units,
        period: slot("period"),
        start: slot("start"),
        end: slot("end"),
    }))
}

/// `state.period_of`: the unit's local period holding `us`, as `(start, end, label)`.
pub(crate) fn period_of(ps: &Periods, unit: u8, us: i64, max_us: i64) -> Res<(i64, i64, String)> {
    let out = || {
        format!(
            "the {} period of {us} is out of the supported range",
            UNITS[unit as usize]
        )
    };
    if us < ps.from {
        return Err("a period before the zone's last change of offset".into());
    }
    let days = us
        .checked_add(ps.offset)
        .ok_or_else(out)?
        .div_euclid(DAY_US);
    let (start_day, end_local, label) = match unit {
        0 => {
            let (y, m, d) = civil_from_days(days);
            (days, (days + 1) * DAY_US, format!("{y:04}-{m:02}-{d:02}"))
        }
        1 => {
            let monday = days - (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday
            let (y, _, _) = civil_from_days(monday + 3); // the ISO year: its Thursday's
            let week = (monday + 3 - days_from_civil(y, 1, 1)) / 7 + 1;
            (monday, (monday + 7) * DAY_US, format!("{y}-W{week:02}"))
        }
        _ => {
            let (y, m, _) = civil_from_days(days);
            let first = days_from_civil(y, m, 1);
            (
                first,
                add_months(first * DAY_US, 1).ok_or_else(out)?,
                format!("{y:04}-{m:02}"),
            )
        }
    };
    let (y, _, _) = civil_from_days(start_day);
    let (start, end) = (start_day * DAY_US - ps.offset, end_local - ps.offset);
    if !(1000..=9999).contains(&y) || start < ps.from || end > max_us {
        return Err(out()); // the engine's PE307, or a label it writes otherwise
    }
    Ok((start, end, label))
}

impl World<'_> {
    /// `World.schedule_ticks`: every unit's first period start, before any event is applied.
    pub(crate) fn schedule_ticks(&mut self, first: i64) -> Res<()> {
        let Some(ps) = &self.p.periodic else {
            return Ok(());
        };
        for (i, u) in ps.units.iter().enumerate() {
            let (start, _, _) = period_of(ps, u.unit, first, self.p.max_us)?;
            self.seq += 1;
            self.timers.push(Reverse((2 * start, self.seq, TICK + i)));
        }
        Ok(())
    }

    /// `World.tick`: the period's rules on its tick event, then the next period queued.
    pub(crate) fn tick(&mut self, i: usize, start: i64) -> Res<()> {
        let prog = self.p;
        let ps = prog.periodic.as_ref().ok_or("a tick without periods")?;
        let u = &ps.units[i];
        let (start, end, label) = period_of(ps, u.unit, start, prog.max_us)?;
        self.now = start;
        self.step_owner.clear();
        let id = self
            .strings
            .sym(&format!("{}:{label}", self.strings.names[u.name as usize]));
        let label = self.strings.sym(&label);
        let d = self.ev.len();
        let set: Vec<(usize, Val)> = [
            (ps.period, Val::Str(label)),
            (ps.start, Val::Int(start)),
            (ps.end, Val::Int(end)),
        ]
        .into_iter()
        .filter_map(|(slot, v)| Some((slot?, v)))
        .collect();
        self.ev.derive(u.ty, start, &set);
        self.ids.push(id);
        self.origin.push(Origin::Text(id));
        let c = Ctx {
            now: start,
            event: Some(d),
            trigger: None,
            subject: None,
            subj: None,
            party: Val::Null,
            item: Val::Null,
        };
        let mut matched = Vec::with_capacity(u.rules.len());
        for &r in &u.rules {
            match &prog.rules[r].when {
                Some(w) if !self.holds(w, &c)? => {}
                _ => matched.push(r),
            }
        }
        if matched.len() > 1
            && !u.plain
            && matched.iter().any(|&r| !prog.rules[r].overrides.is_empty())
        {
            let mut order = matched.clone();
            order.sort_by_key(|&r| -prog.rules[r].rank);
            let mut suppressed: FxSet<u32> = FxSet::default();
            for r in order {
                if !suppressed.contains(&prog.rules[r].id) {
                    suppressed.extend(prog.rules[r].overrides.iter().copied());
                }
            }
            matched.retain(|&r| !suppressed.contains(&prog.rules[r].id));
        }
        for &r in &matched {
            match self.fired_ix.get(&r) {
                Some(&j) => self.fired[j].1 += 1,
                None => {
                    self.fired_ix.insert(r, self.fired.len());
                    self.fired.push((r, 1));
                }
            }
            self.run(&prog.rules[r].actions, &c, r, Causes(d, None))?;
        }
        // queued even past the horizon, as the engine queues it (the heap's order)
        let next = period_of(ps, u.unit, end, prog.max_us)?.0;
        self.seq += 1;
        self.timers.push(Reverse((2 * next, self.seq, TICK + i)));
        self.drain()
    }
}
