//! Metric periods (`World.schedule_ticks`, `World.close`, `World.finish`): the core keeps
//! the engine's clock for them, a timer at each period's end (`2 * end`, queued when the one
//! before closes) and at the horizon the unfinished period, and records at each close how
//! far the history and the counters had come (`Close`), with the counters' log. The
//! engine's own `World.close` then measures each period from those in Python
//! (`backends.native`): the metrics, their grades and the awards are the engine's code.

use crate::eval::World;
use crate::ir::{text, Res};
use crate::out::Out;
use crate::periodic::{period_of, UNITS};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use serde_json::Value as J;
use std::cmp::Reverse;

/// Timer payloads from here up to `periodic::TICK` are metric closes (the unit's code added).
pub(crate) const CLOSE: usize = 1 << 61;

/// One measured period: what `World.close(tick, at, complete)` was called with, and the
/// lengths of the counters' log and of the history's joined events at that instant.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Close {
    unit: u8,
    start: i64,
    end: i64,
    label: u32,
    at: i64,
    complete: bool,
    log: usize,
    joined: usize,
}

/// The IR's `metric_units`: the metrics' units, sorted by name (absent: no metric).
pub(crate) fn load(ir: &J) -> Res<Vec<u8>> {
    let Some(list) = ir.get("metric_units") else {
        return Ok(Vec::new());
    };
    list.as_array()
        .ok_or("metric_units")?
        .iter()
        .map(|u| {
            let u = text(u)?;
            Ok(UNITS
                .iter()
                .position(|x| *x == u)
                .ok_or_else(|| format!("the period {u:?}"))? as u8)
        })
        .collect()
}

impl World<'_> {
    /// The first period end of every metric unit, after the ticks (the engine's order).
    pub(crate) fn schedule_closes(&mut self, first: i64) -> Res<()> {
        let prog = self.p;
        let Some(ps) = &prog.periodic else {
            return Ok(());
        };
        for &u in &prog.metric_units {
            let (_, end, _) = period_of(ps, u, first, prog.max_us)?;
            self.seq += 1;
            self.timers
                .push(Reverse((2 * end, self.seq, CLOSE + u as usize)));
        }
        Ok(())
    }

    fn record_close(
        &mut self,
        unit: u8,
        (start, end, label): (i64, i64, String),
        at: i64,
        complete: bool,
    ) {
        let label = self.strings.sym(&label);
        let (log, joined) = (self.counter_log.len(), self.joined.len());
        self.closes.push(Close {
            unit,
            start,
            end,
            label,
            at,
            complete,
            log,
            joined,
        });
    }

    /// A period's end: recorded, and the next period's end queued.
    pub(crate) fn close(&mut self, unit: u8, end: i64) -> Res<()> {
        let prog = self.p;
        let ps = prog
            .periodic
            .as_ref()
            .ok_or("a metric period without periods")?;
        let period = period_of(ps, unit, end - 1, prog.max_us)?;
        self.now = end;
        self.record_close(unit, period, end, true);
        let (_, next, _) = period_of(ps, unit, end, prog.max_us)?;
        self.seq += 1;
        self.timers
            .push(Reverse((2 * next, self.seq, CLOSE + unit as usize)));
        Ok(())
    }

    /// `World.finish`: the unfinished period of each unit, measured at the horizon.
    pub(crate) fn finish_metrics(&mut self, horizon: i64) -> Res<()> {
        let prog = self.p;
        let Some(ps) = &prog.periodic else {
            return Ok(());
        };
        for &u in &prog.metric_units {
            let period = period_of(ps, u, horizon, prog.max_us)?;
            if period.0 < horizon {
                self.record_close(u, period, horizon, false);
            }
        }
        Ok(())
    }
}

/// None without metrics; else `(closes, log, joined)`: each close as `(unit, start, end,
/// label, at, complete, log length, joined length)`; the counters' log as `(owner, name,
/// at, by, of a party)`; the indexes of the history's events that joined it, in order, as
/// `bytes` of native-endian u64 (`memoryview(joined).cast("Q")`): one object, not an int
/// per event, which on a long history were a fifth of the run's fresh pages.
pub(crate) fn rows<'py>(o: &mut Out<'py, '_>, w: &World) -> PyResult<Bound<'py, PyAny>> {
    let py = o.py;
    if w.p.metric_units.is_empty() {
        return Ok(py.None().into_bound(py));
    }
    let closes = PyList::empty(py);
    for c in &w.closes {
        let row = (
            UNITS[c.unit as usize],
            c.start,
            c.end,
            o.s(c.label),
            c.at,
            c.complete,
            c.log,
            c.joined,
        );
        closes.append(row)?;
    }
    let log = PyList::empty(py);
    for &(owner, name, at, by, party) in &w.counter_log {
        log.append((o.s(owner), o.s(name), at, by, party))?;
    }
    let joined: Vec<u8> = w.joined.iter().flat_map(|&e| (w.history_ix(e) as u64).to_ne_bytes()).collect();
    let joined = PyBytes::new(py, &joined);
    Ok(PyTuple::new(py, [closes.into_any(), log.into_any(), joined.into_any()])?.into_any())
}
