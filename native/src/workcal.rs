//! Working days as data (`Calendar.is_workday`): Monday to Friday, but for the days the IR
//! lists as exceptions, in the years the calendar knows without guessing; a day of another
//! year is the engine's to decide (its error, or its guess and notice), so the core hands
//! the history back there.

use crate::ir::{get, Res};
use serde_json::Value as J;

const DAY_US: i64 = 86_400_000_000;

pub(crate) struct WorkCal {
    exceptions: Vec<i64>, // days since 1970-01-01 whose status is not Monday-Friday's, sorted
    years: Option<Vec<i64>>, // the years known (None: every year, `base: weekdays`), sorted
    pub(crate) hours: Vec<(i64, i64)>, // business hours: (opening, closing) after midnight (`workhours.rs`)
}

impl WorkCal {
    pub(crate) fn load(v: Option<&J>) -> Res<Option<WorkCal>> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let ints = |j: &J| -> Res<Vec<i64>> {
            let list = j.as_array().ok_or("the calendar's days are a list")?;
            let out: Vec<i64> = list
                .iter()
                .map(|x| x.as_i64().ok_or("a day number"))
                .collect::<Result<_, _>>()?;
            if !out.is_sorted() {
                return Err("the calendar's days out of order".into());
            }
            Ok(out)
        };
        let exceptions = ints(get(v, "exceptions")?)?;
        let years = match get(v, "years")? {
            J::Null => None,
            y => Some(ints(y)?),
        };
        let hours = crate::workhours::hours(v.get("hours"))?;
        Ok(Some(WorkCal { exceptions, years, hours }))
    }

    pub(crate) fn is_workday(&self, day: i64) -> Res<bool> {
        if let Some(years) = &self.years {
            let (y, _, _) = crate::cal::civil_from_days(day);
            if years.binary_search(&y).is_err() {
                return Err(format!(
                    "a working day in {y}, a year the calendar does not know"
                ));
            }
        }
        let weekday = (day + 3).rem_euclid(7) < 5; // 1970-01-01 was a Thursday
        Ok(weekday != self.exceptions.binary_search(&day).is_ok())
    }

    /// `day` when it is worked, else the next working day (`roll_to_working_day`).
    pub(crate) fn next_on_or_after(&self, mut day: i64) -> Res<i64> {
        while !self.is_workday(day)? {
            day += 1;
        }
        Ok(day)
    }

    /// `nth_working_day_after`: the `n`th working day after `day`.
    fn nth_after(&self, mut day: i64, n: i64) -> Res<i64> {
        for _ in 0..n {
            day += 1;
            while !self.is_workday(day)? {
                day += 1;
            }
        }
        Ok(day)
    }

    /// `Duration.due` of `n` working days from `start` in a zone of steady offset `offset`
    /// (from `from` on): the same wall time on the `n`th working day after the start's day.
    pub(crate) fn due(
        &self,
        n: i64,
        offset: i64,
        from: Option<i64>,
        start: i64,
        max_us: i64,
    ) -> Res<i64> {
        if from.is_none_or(|f| start < f) {
            return Err("working days before the timezone's last offset change".into());
        }
        let day = start
            .checked_add(offset)
            .ok_or("a start out of range")?
            .div_euclid(DAY_US);
        let target = self.nth_after(day, n)?;
        (target - day)
            .checked_mul(DAY_US)
            .and_then(|d| start.checked_add(d))
            .filter(|d| *d <= max_us)
            .ok_or_else(|| "a deadline out of the supported range".into())
    }
}
