"""Hypothesis strategies for HX (huixiao) event histories.

``hx_histories()`` draws lists of *valid* event dicts (docs/events.md, first table):
unique ids, 1-4 customers and 1-4 employees that share events, and timestamps on a grid
built to hit the window edges of the pack:

* every timestamp is an *anchor* (the base instant 2026-03-01T09:00:00+08:00, or the time of
  an event drawn before it) plus a step: nothing, whole hours, exactly 1, 2 or 3 days, exactly
  one calendar month, or up to the next local midnight (the end of "the same day");
* then -1 s, 0 or +1 s, so that "exactly at the deadline" and "one second either side" are
  all common.

Anchoring on earlier events makes "registered at T, pre-heated at T + 2 days" (the inclusive
edge of HX-RM-6) or "registered at T, reported at the next midnight" (the exclusive edge of
HX-RM-1) likely instead of vanishingly rare. Events come out in draw order, which is not time
order, so the engine's own ordering is exercised too. Everything shrinks towards few events
of type ``registered`` at the base instant by C1 with E1.
"""

from __future__ import annotations

import calendar
import os
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

Event = dict[str, Any]

SHANGHAI = timezone(timedelta(hours=8))  # Asia/Shanghai has had no DST since 1991
BASE = datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI)

CUSTOMERS = ("C1", "C2", "C3", "C4")
EMPLOYEES = ("E1", "E2", "E3", "E4")
CHANNELS = ("list_call", "scattered", "feedback", "community", "referral", "store")
VIAS = ("self", "spouse", "child", "relative")
ROLES = ("specialist", "expert", "manager")
RECORDS = ("核实表", "预热统计表", "新增资源一览表")

# Weighted by repetition; the first entry is what examples shrink towards.
EVENT_TYPES = (
    ["registered"] * 5
    + ["preheated"] * 4
    + ["invited"] * 3
    + ["home_visit"] * 2
    + ["resource_reported"] * 2
    + ["meeting_attended"] * 2
    + ["purchased"] * 2
    + [
        "phone_visit",
        "manager_assigned",
        "employee_resigned",
        "resources_handed_over",
        "resource_taken_over",
        "resource_embezzled",
        "sale_transferred",
        "dispute",
        "record_filed",
        # the after-sales pack's events
        "visit_form_returned",
        "visit_form_returned",
        "list_delivered",
        "falsification_found",
        "cannot_help",
        "expert_absent",
        "symptom_recorded",
        "expert_consultation",
    ]
)

# ---------------------------------------------------------------------------- profiles

settings.register_profile(
    "props",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    parent=settings.get_profile("props"),
    max_examples=15,
)
settings.register_profile(
    "ci",
    parent=settings.get_profile("props"),
    max_examples=150,
    derandomize=True,
    print_blob=True,
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("props"),
    max_examples=1500,
)


def profile() -> settings:
    """The settings named by ``HYPOTHESIS_PROFILE`` (default ``props``: 60 examples)."""
    return settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "props"))


# ---------------------------------------------------------------------------- time


def add_months(t: datetime, months: int) -> datetime:
    """Calendar months, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = t.month - 1 + months
    year, month = t.year + index // 12, index % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def next_local_midnight(t: datetime) -> datetime:
    """The end of ``t``'s Shanghai calendar day (exclusive)."""
    local = t.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def iso(t: datetime) -> str:
    """``2026-03-01T09:00:00+08:00``: always written in Shanghai local time."""
    return t.astimezone(SHANGHAI).isoformat()


def _hours(n: int) -> Callable[[datetime], datetime]:
    return lambda t: t + timedelta(hours=n)


def _days(n: int) -> Callable[[datetime], datetime]:
    return lambda t: t + timedelta(days=n)


STEPS: tuple[Callable[[datetime], datetime], ...] = (
    lambda t: t,  # same instant as the anchor
    _hours(1),
    _hours(3),
    _hours(8),
    _days(1),
    _days(2),  # HX-RM-6 window edge
    _days(3),  # HX-RS-2/3/4 window edge
    lambda t: add_months(t, 1),  # HX-RM-7, HX-RM-8, HX-RS-1 window edge
    next_local_midnight,  # HX-RM-1, HX-RS-5: "the same day" ends here (exclusive)
    _hours(30),
    _days(40),
)
JITTER = (0, 0, 0, -1, 1)  # seconds


@st.composite
def instants(draw: st.DrawFn, anchors: Sequence[datetime]) -> datetime:
    """An anchor (or the base instant) plus a step plus -1/0/+1 s."""
    anchor = draw(st.sampled_from([BASE, *anchors]))
    step = draw(st.sampled_from(STEPS))
    jitter = draw(st.sampled_from(JITTER))
    return step(anchor) + timedelta(seconds=jitter)


def as_of_instants(events: Sequence[Event]) -> st.SearchStrategy[datetime]:
    """Instants around a history: its event times and the window edges that follow them."""
    anchors = [datetime.fromisoformat(e["at"]) for e in events]
    return instants(anchors)


# ---------------------------------------------------------------------------- events


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def _fields(
    draw: st.DrawFn,
    etype: str,
    customer: str,
    employee: str,
    customers: Sequence[str],
    employees: Sequence[str],
) -> dict[str, Any]:
    """The type-specific fields; optional ones are sometimes left out."""
    emp = st.sampled_from(list(employees))
    out: dict[str, Any] = {}
    opt: dict[str, Any] = {}
    if etype == "registered":
        out = {"customer": customer, "employee": employee}
        out["channel"] = draw(st.sampled_from(CHANNELS))
        opt["via"] = draw(_optional(st.sampled_from(VIAS)))
        # an old customer of this history, or one the history never mentions
        opt["referred_by"] = draw(_optional(st.sampled_from([*customers, "C9"])))
    elif etype in ("preheated", "invited", "resource_reported", "manager_assigned"):
        out = {"customer": customer, "employee": employee}
    elif etype in ("home_visit", "phone_visit"):
        out = {"customer": customer, "employee": employee}
        opt["role"] = draw(_optional(st.sampled_from(ROLES)))
    elif etype == "meeting_attended":
        out = {"customer": customer}
    elif etype == "purchased":
        out = {"customer": customer, "employee": employee}
        out["boxes"] = draw(st.integers(1, 6))
        opt["venue"] = draw(_optional(st.booleans()))
        opt["manager"] = draw(_optional(emp))
        opt["expert"] = draw(_optional(emp))
    elif etype in ("employee_resigned", "resources_handed_over"):
        out = {"employee": employee}
    elif etype == "resource_taken_over":
        out = {"customer": customer, "employee": employee, "from": draw(emp)}
        opt["approved"] = draw(_optional(st.booleans()))
    elif etype == "resource_embezzled":
        out = {"customer": customer, "employee": employee, "victim": draw(emp)}
    elif etype == "sale_transferred":
        out = {"employee": employee, "to": draw(emp), "boxes": draw(st.integers(1, 6))}
    elif etype == "dispute":
        parties = draw(st.lists(emp, min_size=1, max_size=3, unique=True))
        out = {"customer": customer, "employees": parties}
        opt["severe"] = draw(_optional(st.booleans()))
    elif etype == "record_filed":
        out = {
            "employee": employee,
            "record": draw(st.sampled_from(RECORDS)),
            "stamped": draw(st.booleans()),
            "dated": draw(st.booleans()),
        }
    elif etype == "visit_form_returned":
        out = {"customer": customer, "employee": employee}
        opt["signed_by_customer"] = draw(_optional(st.booleans()))
    elif etype == "list_delivered":
        day = draw(st.dates(date(2026, 2, 27), date(2026, 3, 10)))
        out = {"employee": employee, "sale_date": day.isoformat()}
    elif etype == "falsification_found":
        out = {"customer": customer, "employee": employee}
        opt["shielded_by"] = draw(_optional(st.lists(emp, min_size=1, max_size=2, unique=True)))
        opt["colluders"] = draw(_optional(st.lists(emp, min_size=1, max_size=2, unique=True)))
    elif etype == "cannot_help":
        out = {"customer": customer, "employee": employee}
    elif etype == "expert_absent":
        out = {"employee": employee}
    elif etype in ("symptom_recorded", "expert_consultation"):
        out = {"customer": customer}
        opt["employee"] = draw(_optional(emp))
    else:  # pragma: no cover - EVENT_TYPES and this function go together
        raise AssertionError(etype)
    out.update({k: v for k, v in opt.items() if v is not None})
    return out


@st.composite
def hx_histories(draw: st.DrawFn, max_events: int = 40, min_events: int = 1) -> list[Event]:
    """A valid HX history: unique ids ``e0, e1, ...``, in draw order (not time order)."""
    customers = CUSTOMERS[: draw(st.integers(1, len(CUSTOMERS)))]
    employees = EMPLOYEES[: draw(st.integers(1, len(EMPLOYEES)))]
    n = draw(st.integers(min_events, max_events))
    times: list[datetime] = []
    pairs: list[tuple[str, str]] = []
    events: list[Event] = []
    for i in range(n):
        etype = draw(st.sampled_from(EVENT_TYPES))
        at = draw(instants(times))
        # Often continue the story of an earlier (customer, employee) pair.
        if pairs and draw(st.booleans()):
            customer, employee = draw(st.sampled_from(pairs))
        else:
            customer = draw(st.sampled_from(customers))
            employee = draw(st.sampled_from(employees))
        fields = draw(_fields(etype, customer, employee, customers, employees))
        events.append({"id": f"e{i}", "type": etype, "at": iso(at), **fields})
        times.append(at)
        if "customer" in fields and "employee" in fields:
            pairs.append((customer, employee))
    return events


def customers_of(events: Sequence[Event]) -> list[str]:
    """Every customer id the history names (as subject or as an old customer)."""
    found: set[str] = set()
    for e in events:
        for key in ("customer", "referred_by"):
            if isinstance(e.get(key), str):
                found.add(e[key])
    return sorted(found)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def in_utc(value: str) -> str:
    """The same instant written with offset ``+00:00``."""
    return datetime.fromisoformat(value).astimezone(UTC).isoformat()
