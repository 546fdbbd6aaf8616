"""Hand-written plain Python for HX-RM-2 and HX-RM-6 alone: the speed limit the engine is held to.

``benchmarks/hx_ownership.yaml`` holds the four rules of ``policies/huixiao/resources.yaml``
that cite these clauses; this module decides exactly what they decide, with dicts, lists and a
queue instead of compiled rules, so that ``bench.py`` can say how far the engine is from what
straightforward Python does with the same input. ``tests/test_benchmark_baseline.py`` checks
that both agree span for span, flag for flag and duty for duty.

What it does, per the YAML (the engine's semantics, README "Evaluation semantics"):

* ``registered`` (C, E) is a claim of E on C (``registration-is-a-claim``) and owes a
  ``preheated`` by E of C within 2 days, inclusive (``preheat-window``).
* ``preheated`` (C, E) while C has no owner and E holds an open claim: E owns
  (``first-preheat-owns``). It meets every open duty of (C, E), and marks late every overdue one.
* A duty missed at its deadline D: unless E registered C again since the duty's registration
  (at or after its instant), E's open claim lapses; then, if C has no owner or E owns it, and
  no open claim is left, C is *open to anyone* (flag ``open_to_anyone`` = E).
* ``registered``, ``preheated`` or ``invited`` by an employee whose claim on C has not lapsed,
  while C is open to anyone and has no owner (or the lapsed employee owns it): that employee
  owns and the flag is cleared (``takeover-after-lapse``).
* Rules of one event are matched against the state before the event, then act in file order;
  an inclusive deadline at D fires after every event at D and before the first event after D;
  at the horizon (``as_of``, default the last event) deadlines before it fire, one at it stays
  open. An owner replaced at the very instant it was assigned leaves no span.

What it assumes, where the engine checks or computes: the events are valid for the policy,
have unique ids and are sorted by time (ties in input order); the policy's timezone
(Asia/Shanghai) has had a fixed offset since 1991, so "2 days" is 48 hours. Because every duty
has the same window, deadlines come due in the order they were created, and a FIFO queue
checked lazily replaces the engine's timer heap. It keeps no trace and no history but the
registration instants the renewal test reads; it does keep the duties' statuses, which the
engine reports as obligations.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

OWNED_BY_PREHEAT = "first-preheat-owns"
OWNED_BY_TAKEOVER = "takeover-after-lapse"
PREHEAT_WINDOW_US = 2 * 86_400 * 1_000_000

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPEN, MET, OVERDUE, LATE = "open", "met", "overdue", "late"

Span = tuple[str, int, int | None, str]  # owner, start, end (None: still owns), rule id


class Duty(NamedTuple):
    """A pre-heat duty as reported: the engine's obligation of rule ``preheat-window``."""

    customer: str
    employee: str
    opened: int
    due: int
    status: str
    met_by: str | None


class Ownership(NamedTuple):
    """Everything the two clauses decide, as of the horizon."""

    spans: dict[str, list[Span]]  # customers that ever had an owner
    open_to_anyone: dict[str, str]  # customer -> employee whose lapse opened it
    duties: list[Duty]  # in the order the registrations created them


def instant_us(at: str | datetime) -> int:
    """Exact epoch microseconds, as the engine keeps instants (floats would round)."""
    delta = (datetime.fromisoformat(at) if isinstance(at, str) else at) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def evaluate(events: Iterable[Mapping[str, Any]], as_of: str | datetime | None = None) -> Ownership:
    """Owners, flags and pre-heat duties of every customer; ``as_of`` as ``Policy.evaluate``."""
    horizon = instant_us(as_of) if as_of is not None else None
    owner: dict[str, str] = {}
    spans: dict[str, list[list[Any]]] = {}
    claims: dict[str, dict[str, str]] = {}  # customer -> employee -> "open" | "lapsed"
    flag: dict[str, str] = {}  # open_to_anyone
    registered_at: dict[tuple[str, str], list[int]] = {}  # (customer, employee) -> instants
    # a duty: [customer, employee, opened, due, status, met_by]; mutated in place
    waiting: dict[tuple[str, str], list[list[Any]]] = {}  # open duties by (customer, employee)
    overdue: dict[tuple[str, str], list[list[Any]]] = {}  # missed, watched for a late pre-heat
    deadlines: deque[list[Any]] = deque()  # every duty, in creation order = due order
    duties: list[list[Any]] = []
    last = 0  # the last event's instant: the default horizon

    def assign(customer: str, employee: str, now: int, rule: str) -> None:
        if owner.get(customer) == employee:
            return
        mine = spans.get(customer)
        if mine is None:
            spans[customer] = [[employee, now, None, rule]]
        else:
            tail = mine[-1]
            if tail[2] is None:
                if tail[1] == now:
                    mine.pop()  # owned for no time (as the engine; these rules never do it)
                else:
                    tail[2] = now
            mine.append([employee, now, None, rule])
        owner[customer] = employee

    def fire(limit: int) -> None:
        """Deadlines strictly before ``limit`` (inclusive ones: an event at D is in time)."""
        while deadlines and deadlines[0][3] < limit:
            duty = deadlines.popleft()
            if duty[4] != OPEN:
                continue
            duty[4] = OVERDUE
            customer, employee, opened = duty[0], duty[1], duty[2]
            key = (customer, employee)
            waiting[key].remove(duty)
            overdue.setdefault(key, []).append(duty)
            times = registered_at[key]
            if len(times) - bisect_left(times, opened) > 1:
                continue  # registered again since: the newer registration's window decides
            mine = claims[customer]
            if mine.get(employee) == "open":
                mine[employee] = "lapsed"
            held = owner.get(customer)
            if (held is None or held == employee) and "open" not in mine.values():
                flag[customer] = employee

    parse = datetime.fromisoformat
    for ev in events:
        at = ev["at"]
        delta = (parse(at) if isinstance(at, str) else at) - EPOCH  # instant_us, inlined
        now = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        if horizon is not None and now > horizon:
            break
        if deadlines and deadlines[0][3] < now:
            fire(now)
        last = now
        etype = ev["type"]
        customer = ev["customer"]
        employee = ev["employee"]
        mine = claims.get(customer)
        # takeover-after-lapse, matched on the state before the event
        lapsed_to = flag.get(customer)
        takeover = (
            lapsed_to is not None
            and (customer not in owner or owner[customer] == lapsed_to)
            and (mine is None or mine.get(employee) != "lapsed")
        )
        if etype == "registered":
            if mine is None:
                mine = claims[customer] = {}
            mine[employee] = "open"
            key = (customer, employee)
            duty = [customer, employee, now, now + PREHEAT_WINDOW_US, OPEN, None]
            duties.append(duty)
            deadlines.append(duty)
            found = waiting.get(key)
            if found is None:
                waiting[key] = [duty]
            else:
                found.append(duty)
            times = registered_at.get(key)
            if times is None:
                registered_at[key] = [now]
            else:
                times.append(now)
        elif etype == "preheated":
            first = customer not in owner and mine is not None and mine.get(employee) == "open"
            key = (customer, employee)
            met = waiting.pop(key, None)
            if met is not None:
                for duty in met:
                    duty[4] = MET
                    duty[5] = ev["id"]
            late = overdue.pop(key, None)
            if late is not None:
                for duty in late:
                    duty[4] = LATE
                    duty[5] = ev["id"]
            if first:
                assign(customer, employee, now, OWNED_BY_PREHEAT)
        elif etype != "invited":
            continue
        if takeover:
            assign(customer, employee, now, OWNED_BY_TAKEOVER)
            del flag[customer]
    fire(horizon if horizon is not None else last)
    return Ownership(
        {c: [(s[0], s[1], s[2], s[3]) for s in mine] for c, mine in spans.items()},
        flag,
        [Duty(*d) for d in duties],
    )


def owners(events: Iterable[Mapping[str, Any]]) -> dict[str, list[Span]]:
    """Each customer's ownership spans (owner, start, end, rule), instants in epoch µs."""
    return evaluate(events).spans
