"""Seeded, realistic HX (huixiao) event histories for benchmarks.

``generate(n_customers, seed)`` plays out the life of each customer lead over about six months
(from 2026-03-01, Asia/Shanghai, +08:00) with 200 employees shared by all customers, about 15
events per customer on average:

* 1-3 registrations with different employees and channels (list calls, scattered collection,
  feedback, community, referrals naming older customers or no one, store walk-ins), some made
  by a spouse or child; most reported the same day, some at 23:59:59, some at the next
  midnight (already late), some never;
* pre-heats, most inside the 2- or 3-day window, some exactly at its edge, some one second
  late, some days late; invitations and home visits around the one-month follow-up edge;
  phone visits; meetings, the visit after the meeting (or not), purchases of 1-6 boxes,
  venue sales, repeat purchases;
* other employees' second registrations and invitations after the owner went quiet, manager
  assignments of store and pooled customers, disputes, embezzlement;
* per employee: resignations with or without hand-over and the take-overs that follow, sales
  transfers, filed records (some unstamped or undated).

``single_customer(n_events, seed)`` is one long-lived customer's history, for latency.
The result is sorted by time (stable), ids are unique, every event is valid for
policies/huixiao/resources.yaml. Run it to print a summary: ``python benchmarks/generate.py``.
"""

from __future__ import annotations

import argparse
import calendar
import random
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

Event = dict[str, Any]

SHANGHAI = timezone(timedelta(hours=8))
START = datetime(2026, 3, 1, tzinfo=SHANGHAI)
PERIOD_DAYS = 182
N_EMPLOYEES = 200

CHANNELS: tuple[tuple[str, float], ...] = (
    ("list_call", 0.32),
    ("scattered", 0.18),
    ("feedback", 0.15),
    ("community", 0.15),
    ("referral", 0.14),
    ("store", 0.06),
)
SECOND_CHANNELS = ("scattered", "feedback", "community", "referral")
RECORDS = ("核实表", "预热统计表", "新增资源一览表")
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def add_months(t: datetime, months: int) -> datetime:
    """Calendar months, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = t.month - 1 + months
    year, month = t.year + index // 12, index % 12 + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def next_midnight(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0) + DAY


class _Builder:
    """Collects events as (instant, sequence, event) and hands them out sorted and stamped."""

    def __init__(self, seed: int, prefix: str = "ev", end: datetime | None = None) -> None:
        self.rnd = random.Random(seed)
        self.prefix = prefix
        self.end = end
        self.rows: list[tuple[datetime, int, Event]] = []

    def emit(self, etype: str, at: datetime, **fields: Any) -> datetime:
        """Record an event (unless it falls after the observed period); returns ``at``."""
        if self.end is not None and at > self.end:
            return at
        n = len(self.rows)
        event: Event = {"id": f"{self.prefix}{n}", "type": etype}
        event.update({k: v for k, v in fields.items() if v is not None})
        self.rows.append((at, n, event))
        return at

    def events(self) -> list[Event]:
        self.rows.sort(key=lambda row: (row[0], row[1]))
        out: list[Event] = []
        for at, _, event in self.rows:
            event["at"] = at.isoformat()
            out.append(event)
        return out

    # ------------------------------------------------------------------ random helpers
    def chance(self, p: float) -> bool:
        return self.rnd.random() < p

    def working_time(self, day: datetime) -> datetime:
        """A working-hours instant (08:00-19:59) on ``day``'s date."""
        return day.replace(
            hour=self.rnd.randint(8, 19),
            minute=self.rnd.randint(0, 59),
            second=self.rnd.randint(0, 59),
            microsecond=0,
        )

    def later(self, t: datetime, low_hours: float, high_hours: float) -> datetime:
        return (t + timedelta(hours=self.rnd.uniform(low_hours, high_hours))).replace(microsecond=0)

    def around_edge(self, t: datetime, edge: datetime, spread_hours: float) -> datetime:
        """Mostly well inside the window ending at ``edge``, often exactly on it or 1 s
        either side, sometimes well after it."""
        r = self.rnd.random()
        if r < 0.55:
            return self.later(t, 1, max(1.0, (edge - t).total_seconds() / 3600 - 1))
        if r < 0.67:
            return edge
        if r < 0.74:
            return edge - SECOND
        if r < 0.84:
            return edge + SECOND
        return self.later(edge, 1, spread_hours)

    def channel(self) -> str:
        r, acc = self.rnd.random(), 0.0
        for name, weight in CHANNELS:
            acc += weight
            if r < acc:
                return name
        return CHANNELS[-1][0]

    def employee(self, employees: Sequence[str], other_than: Sequence[str] = ()) -> str:
        while True:
            e = self.rnd.choice(employees)
            if e not in other_than:
                return e


def _customer(
    b: _Builder,
    cid: str,
    start: datetime,
    older: Sequence[str],
    employees: Sequence[str],
    by_employee: dict[str, list[str]],
) -> None:
    """The life of one customer lead."""
    rnd = b.rnd
    n_regs = 1 + (rnd.random() < 0.6) + (rnd.random() < 0.3) + (rnd.random() < 0.1)
    registrants: list[str] = []
    regs: list[tuple[datetime, str, str]] = []
    t = start
    for i in range(n_regs):
        emp = b.employee(employees, registrants)
        registrants.append(emp)
        by_employee.setdefault(emp, []).append(cid)
        if i:
            t = b.rnd.choice(
                [b.later(t, 1, 72), regs[0][0] + 2 * DAY, regs[0][0] + 3 * DAY + SECOND]
            )
        channel = b.channel()
        referred_by = None
        if channel == "referral" and older and b.chance(0.75):
            referred_by = rnd.choice(older[-5000:])
        via = rnd.choice(("spouse", "child", "relative")) if b.chance(0.15) else None
        b.emit(
            "registered",
            t,
            customer=cid,
            employee=emp,
            channel=channel,
            via=via,
            referred_by=referred_by,
        )
        regs.append((t, emp, channel))
        # HX-RM-1: report the same day (next midnight is late)
        r = rnd.random()
        midnight = next_midnight(t)
        if r < 0.78:
            b.emit(
                "resource_reported",
                min(b.later(t, 0.1, 6), midnight - SECOND),
                customer=cid,
                employee=emp,
            )
        elif r < 0.84:
            b.emit("resource_reported", midnight - SECOND, customer=cid, employee=emp)
        elif r < 0.90:
            b.emit("resource_reported", midnight, customer=cid, employee=emp)
        if channel == "store" and b.chance(0.7):
            b.emit(
                "manager_assigned",
                b.later(t, 2, 96),
                customer=cid,
                employee=b.employee(employees),
                manager=b.employee(employees),
            )

    # pre-heats: each registrant may pre-heat, around its window's edge
    preheats: list[tuple[datetime, str]] = []
    for t_reg, emp, channel in regs:
        if not b.chance(0.8):
            continue
        days = 3 if channel in ("feedback", "scattered", "referral") else 2
        at = b.around_edge(t_reg, t_reg + days * DAY, 96)
        b.emit("preheated", at, customer=cid, employee=emp)
        preheats.append((at, emp))
    if not preheats:
        # nobody pre-heated: sometimes a claimant invites directly (HX-RM-3)
        if b.chance(0.4):
            t_reg, emp, _ = rnd.choice(regs)
            b.emit("invited", b.later(t_reg, 12, 120), customer=cid, employee=emp)
        if b.chance(0.3):
            b.emit(
                "manager_assigned",
                b.later(regs[-1][0], 48, 240),
                customer=cid,
                employee=b.employee(employees),
            )
        return
    preheats.sort()
    t_pre, owner = preheats[0]

    # follow-up within a month of the pre-heat (HX-RM-7)
    follow = b.around_edge(t_pre, add_months(t_pre, 1), 240)
    last = b.emit(
        rnd.choice(("invited", "invited", "home_visit")), follow, customer=cid, employee=owner
    )
    for _ in range(rnd.randint(0, 3)):
        last = b.emit("invited", b.later(last, 24, 24 * 20), customer=cid, employee=owner)
    for _ in range(rnd.randint(1, 5)):
        role = rnd.choice(("expert", "manager")) if b.chance(0.15) else None
        b.emit(
            "phone_visit",
            b.later(t_pre, 24, 24 * 60),
            customer=cid,
            employee=owner if role is None else b.employee(employees),
            role=role,
        )
    if b.chance(0.75):
        b.emit("home_visit", b.later(t_pre, 24, 24 * 45), customer=cid, employee=owner)

    # meetings, the visit after them (HX-RM-8), purchases
    meeting = b.later(t_pre, 24 * 3, 24 * 40)
    for _ in range(rnd.randint(1, 3) if b.chance(0.8) else 0):
        b.emit("meeting_attended", meeting, customer=cid, meeting=f"M{meeting:%m%d}")
        r = rnd.random()
        if r < 0.55:
            t_buy = b.later(meeting, 0.5, 24 * 20)
            venue = b.chance(0.4) or None
            manager = b.employee(employees) if b.chance(0.3) else None
            expert = b.employee(employees) if b.chance(0.2) else None
            b.emit(
                "purchased",
                t_buy,
                customer=cid,
                employee=owner,
                boxes=rnd.randint(1, 6),
                venue=venue,
                manager=manager,
                expert=expert,
            )
            _after_sales(b, cid, owner, t_buy, venue, manager, expert)
            if b.chance(0.35):
                b.emit(
                    "purchased",
                    b.later(meeting, 24 * 25, 24 * 90),
                    customer=cid,
                    employee=owner,
                    boxes=rnd.randint(1, 6),
                )
        if r < 0.85:
            b.emit(
                "home_visit",
                b.around_edge(meeting, add_months(meeting, 1), 24 * 10),
                customer=cid,
                employee=owner,
            )
        meeting = b.later(meeting, 24 * 7, 24 * 45)

    # other employees move in after the owner went quiet (HX-RM-7/8, HX-RS-1)
    if b.chance(0.15):
        other = b.employee(employees, [owner])
        late = b.later(add_months(t_pre, 1), 1, 24 * 30)
        b.emit("preheated", late, customer=cid, employee=other)
        b.emit("invited", b.later(late, 1, 24 * 5), customer=cid, employee=other)
    if b.chance(0.12):
        other = b.employee(employees, [owner])
        edge = add_months(t_pre, 1)
        at = rnd.choice((edge, edge + SECOND, b.later(edge, 1, 24 * 40)))
        b.emit("registered", at, customer=cid, employee=other, channel=rnd.choice(SECOND_CHANNELS))
        b.emit("resource_reported", b.later(at, 0.1, 3), customer=cid, employee=other)
        by_employee.setdefault(other, []).append(cid)

    # frictions
    if len(registrants) > 1 and b.chance(0.08):
        b.emit(
            "dispute",
            b.later(t_pre, 1, 24 * 10),
            customer=cid,
            employees=registrants[:2],
            severe=True if b.chance(0.1) else None,
        )
    if b.chance(0.01):
        b.emit(
            "resource_embezzled",
            b.later(t_pre, 24, 24 * 60),
            customer=cid,
            employee=b.employee(employees, [owner]),
            victim=owner,
        )
    if b.chance(0.02):
        b.emit(
            "manager_assigned",
            b.later(t_pre, 24, 24 * 90),
            customer=cid,
            employee=b.employee(employees),
        )


def _after_sales(
    b: _Builder,
    cid: str,
    owner: str,
    t_buy: datetime,
    venue: bool | None,
    manager: str | None,
    expert: str | None,
) -> None:
    """What the after-sales pack watches after a purchase, kept or missed near its edges."""
    rnd = b.rnd
    if venue and manager is not None and b.chance(0.9):
        day_end = next_midnight(next_midnight(t_buy))
        at = b.around_edge(t_buy, day_end, 6)
        b.emit("list_delivered", at, employee=manager, sale_date=f"{t_buy:%Y-%m-%d}")
    if venue and b.chance(0.85):
        signed = None if b.chance(0.95) else False
        at = b.around_edge(t_buy, t_buy + timedelta(days=2), 12)
        b.emit("visit_form_returned", at, customer=cid, employee=owner, signed_by_customer=signed)
    for low, high in ((0, 3), (3, 15), (15, 30)):  # HX-AS-6 home visits
        if b.chance(0.8):
            at = t_buy + timedelta(hours=rnd.uniform(24 * low + 1, 24 * high + 12))
            b.emit("home_visit", at, customer=cid, employee=owner)
    if expert is not None:
        if b.chance(0.7):
            at = t_buy + timedelta(hours=rnd.uniform(24 * 5.5, 24 * 8.5))
            b.emit("home_visit", at, customer=cid, employee=expert, role="expert")
        for month in range(4):
            if b.chance(0.7):
                at = t_buy + timedelta(days=30 * month + rnd.uniform(0, 29))
                b.emit("phone_visit", at, customer=cid, employee=expert, role="expert")
    for month in range(5):  # HX-AS-4: a signed visit form most months
        if b.chance(0.6):
            at = t_buy + timedelta(days=30 * month + rnd.uniform(1, 29))
            b.emit("visit_form_returned", at, customer=cid, employee=owner)
    if b.chance(0.02):
        shield = [b.employee([f"E{i:03d}" for i in range(1, 10)])] if b.chance(0.5) else None
        at = t_buy + timedelta(days=rnd.uniform(3, 20))
        b.emit("falsification_found", at, customer=cid, employee=owner, shielded_by=shield)


def _employees(
    b: _Builder, n_customers: int, employees: Sequence[str], by_employee: dict[str, list[str]]
) -> None:
    """Resignations and hand-overs, take-overs, sales transfers, filed records."""
    rnd = b.rnd
    leavers = rnd.sample(list(employees), k=max(1, len(employees) // 10))
    for emp in leavers:
        day = START + timedelta(days=rnd.randint(30, PERIOD_DAYS - 10))
        at = b.working_time(day)
        r = rnd.random()
        if r < 0.35:
            b.emit("resources_handed_over", b.later(at, -6, -0.5), employee=emp)
        b.emit("employee_resigned", at, employee=emp)
        if 0.35 <= r < 0.6:
            b.emit("resources_handed_over", next_midnight(at) - SECOND, employee=emp)
        elif 0.6 <= r < 0.75:
            b.emit("resources_handed_over", next_midnight(at), employee=emp)
        mine = by_employee.get(emp, [])
        for cid in rnd.sample(mine, k=min(len(mine), rnd.randint(0, 3))):
            b.emit(
                "resource_taken_over",
                b.later(at, 2, 24 * 14),
                customer=cid,
                employee=b.employee(employees, leavers),
                approved=b.chance(0.5) or None,
                **{"from": emp},
            )
    for _ in range(max(1, n_customers // 100)):
        emp, to = rnd.sample(list(employees), k=2)
        day = START + timedelta(days=rnd.randint(0, PERIOD_DAYS))
        b.emit(
            "sale_transferred", b.working_time(day), employee=emp, to=to, boxes=rnd.randint(1, 8)
        )
    for _ in range(max(1, n_customers // 20)):
        day = START + timedelta(days=rnd.randint(0, PERIOD_DAYS))
        b.emit(
            "record_filed",
            b.working_time(day),
            employee=rnd.choice(employees),
            record=rnd.choice(RECORDS),
            stamped=b.chance(0.92),
            dated=b.chance(0.95),
        )


def generate(n_customers: int, seed: int = 1, n_employees: int = N_EMPLOYEES) -> list[Event]:
    """About 15 valid HX events per customer over ~6 months, sorted by time."""
    b = _Builder(seed, end=START + timedelta(days=PERIOD_DAYS))  # the export ends here
    employees = [f"E{i:03d}" for i in range(1, n_employees + 1)]
    # customers arrive over the first five months, in order, so referrals name older ones
    starts = sorted(b.rnd.randint(0, PERIOD_DAYS - 35) for _ in range(n_customers))
    by_employee: dict[str, list[str]] = {}
    older: list[str] = []
    width = max(5, len(str(n_customers)))
    for i, day in enumerate(starts):
        cid = f"C{i:0{width}d}"
        _customer(
            b, cid, b.working_time(START + timedelta(days=day)), older, employees, by_employee
        )
        older.append(cid)
    _employees(b, n_customers, employees, by_employee)
    return b.events()


def single_customer(
    n_events: int = 100,
    seed: int = 1,
    customer: str = "C1",
    types: Sequence[str] | None = None,
) -> list[Event]:
    """One customer's long history of exactly ``n_events`` events with five employees.

    ``types`` keeps the script to those event types (a policy that declares only some, such
    as benchmarks/hx_ownership.yaml, still gets ``n_events`` events); it must include
    ``registered``, the first event.
    """
    b = _Builder(seed, prefix="s")
    rnd = b.rnd
    employees = [f"E{i}" for i in range(1, 6)]
    t = b.working_time(START)
    script = [
        ("registered", 8),
        ("resource_reported", 6),
        ("preheated", 8),
        ("invited", 8),
        ("home_visit", 6),
        ("phone_visit", 8),
        ("meeting_attended", 5),
        ("purchased", 5),
        ("manager_assigned", 1),
        ("dispute", 1),
    ]
    kinds = [k for k, w in script if types is None or k in types for _ in range(w)]
    b.emit("registered", t, customer=customer, employee="E1", channel="list_call")
    while len(b.rows) < n_events:
        kind = rnd.choice(kinds)
        step = rnd.choice((timedelta(hours=rnd.randint(1, 30)), 2 * DAY, 3 * DAY, SECOND))
        t = t + step
        emp = rnd.choice(employees)
        if kind == "registered":
            b.emit(kind, t, customer=customer, employee=emp, channel=b.channel())
        elif kind == "meeting_attended":
            b.emit(kind, t, customer=customer)
        elif kind == "purchased":
            b.emit(kind, t, customer=customer, employee=emp, boxes=rnd.randint(1, 6))
        elif kind == "dispute":
            b.emit(kind, t, customer=customer, employees=rnd.sample(employees, 2))
        else:
            b.emit(kind, t, customer=customer, employee=emp)
    return b.events()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    events = generate(args.customers, args.seed)
    kinds = Counter(e["type"] for e in events)
    print(
        f"{len(events)} events, {len(events) / args.customers:.1f} per customer, "
        f"{events[0]['at']} .. {events[-1]['at']}"
    )
    for kind, n in kinds.most_common():
        print(f"  {kind:24s} {n}")


if __name__ == "__main__":
    main()
