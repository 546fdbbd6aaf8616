//! Windows of working hours and minutes (`times.business_due`): business time counted inside
//! the policy's business hours on its working days, from the next opening where the start is
//! outside them; a count that ends at a closing ends there. In zones of steady offset only
//! (a local day is then 24 h and a wall time is arithmetic).

use crate::eval::World;
use crate::ir::{Res, Window};
use serde_json::Value as J;

const DAY_US: i64 = 86_400_000_000;

/// The calendar's business hours (`Calendar.hours`), in order; none where the IR has none.
pub(crate) fn hours(v: Option<&J>) -> Res<Vec<(i64, i64)>> {
    let Some(list) = v.and_then(J::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|span| {
            let pair = span
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or("business hours are pairs")?;
            let open = pair[0].as_i64().ok_or("an opening")?;
            let close = pair[1].as_i64().ok_or("a closing")?;
            Ok((open, close))
        })
        .collect()
}

impl<'p> World<'p> {
    /// `business_due(start, w.working_us)`: walking the days from the start's, each working
    /// day's spans in order.
    pub(crate) fn business_due(&self, w: Window, start: i64) -> Res<i64> {
        let cal = self
            .p
            .workcal
            .as_ref()
            .ok_or("working hours without the calendar")?;
        if w.from.is_none_or(|f| start < f) {
            return Err("working hours before the timezone's last offset change".into());
        }
        if cal.hours.is_empty() {
            return Err("working hours without business hours".into());
        }
        let local = start.checked_add(w.offset).ok_or("a start out of range")?;
        let (mut day, mut tod) = (local.div_euclid(DAY_US), local.rem_euclid(DAY_US));
        let mut left = w.working_us;
        loop {
            if day
                .checked_mul(DAY_US)
                .is_none_or(|d| d - w.offset > self.p.max_us)
            {
                return Err("a deadline out of the supported range".into());
            }
            if cal.is_workday(day)? {
                for &(open, close) in &cal.hours {
                    if tod >= close {
                        continue;
                    }
                    let begin = open.max(tod);
                    if left <= close - begin {
                        let due = day * DAY_US + begin + left - w.offset;
                        return if due <= self.p.max_us {
                            Ok(due)
                        } else {
                            Err("a deadline out of the supported range".into())
                        };
                    }
                    left -= close - begin;
                }
            }
            day += 1;
            tod = 0;
        }
    }
}
