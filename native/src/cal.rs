//! Calendar months in a zone of steady offset (`times.add_months`: the same wall time,
//! months later, the day clamped to the month's last), and the look-backs of history queries.

use crate::input::days_from_civil;
use crate::ir::{Back, Res, Window};

const DAY_US: i64 = 86_400_000_000;
const SLACK_US: i64 = 4 * DAY_US; // `Duration.calendar_slack` of months and years

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn month_days(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `add_months(local, n)` on a wall time held as microseconds since the local epoch; None
/// where the year leaves 1..9999 (Python's `datetime` raises there).
pub(crate) fn add_months(local_us: i64, n: i64) -> Option<i64> {
    let days = local_us.div_euclid(DAY_US);
    let time = local_us.rem_euclid(DAY_US);
    let (y, m, d) = civil_from_days(days);
    let total = (m - 1).checked_add(n)?;
    let (year, month) = (y.checked_add(total.div_euclid(12))?, total.rem_euclid(12) + 1);
    if !(1..=9999).contains(&year) {
        return None;
    }
    let day = d.min(month_days(year, month));
    days_from_civil(year, month, day).checked_mul(DAY_US)?.checked_add(time)
}

/// `Duration.look_back`: `(lower, exact_from)` at `now` (no event before `lower` is in the
/// look-back, every one from `exact_from` on is; between, `covers` decides). Months carry
/// the engine's slack of 4 days either side. None: not computed exactly here (before the
/// zone's last offset change, or out of range).
pub(crate) fn look_back(b: Back, now: i64) -> Option<(i64, i64)> {
    if b.from.is_some_and(|f| now < f) {
        return None;
    }
    let (lower, exact) = if b.months == 0 {
        let bound = now.checked_sub(b.us)?;
        (bound, bound)
    } else {
        let local = add_months(now.checked_add(b.offset)?, b.months.checked_neg()?)?;
        let bound = local.checked_sub(b.offset)?;
        (bound.checked_sub(SLACK_US)?, bound.checked_add(SLACK_US)?)
    };
    if b.from.is_some_and(|f| lower < f) {
        return None;
    }
    Some((lower, exact))
}

/// `Duration.covers`: is an event at `at` within the last months at `now`, that is, has its
/// own window of as many months not closed by now (inclusive). None: not computed here.
pub(crate) fn covers(b: Back, at: i64, now: i64) -> Option<bool> {
    if b.from.is_some_and(|f| at < f) {
        return None;
    }
    let due = add_months(at.checked_add(b.offset)?, b.months)?.checked_sub(b.offset)?;
    Some(now <= due)
}

/// `Duration.due`'s instant for a window the IR describes (`ir::Window`), from `start`.
pub(crate) fn due(w: Window, start: i64, max_us: i64) -> Res<i64> {
    if w.working_days != 0 || w.working_us != 0 {
        return Err("working days here (only a duty's window counts them)".into());
    }
    if w.from.is_some_and(|f| start < f) {
        return Err("a day-long window before the timezone's last offset change".into());
    }
    let begin = match w.midnight {
        None => Some(start),
        Some(offset) => start.checked_add(offset).map(|t| t.div_euclid(DAY_US) * DAY_US - offset),
    };
    let begin = match (w.month_start, w.midnight) {
        // `midnight.replace(day=1)`: the local month's first midnight
        (true, Some(offset)) => begin.and_then(|b| b.checked_add(offset)).map(|l| {
            let (y, m, _) = civil_from_days(l.div_euclid(DAY_US));
            days_from_civil(y, m, 1) * DAY_US - offset
        }),
        (true, None) => return Err("a month's start without its local midnight".into()),
        _ => begin,
    };
    let begin = match (w.months, w.from) {
        (0, _) => begin,
        // `from_dt(add_months(local, n))`: the wall time, months on, back to UTC
        (n, Some(_)) => begin
            .and_then(|s| s.checked_add(w.offset))
            .and_then(|l| add_months(l, n))
            .and_then(|l| l.checked_sub(w.offset)),
        _ => return Err("calendar months without a steady offset".into()),
    };
    begin
        .and_then(|s| s.checked_add(w.us))
        .filter(|d| *d <= max_us)
        .ok_or_else(|| "a deadline out of the supported range".into())
}
