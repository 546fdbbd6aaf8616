"""What compiled closures can ask the world: owners, history queries, counters, subjects.

Every query reads the state only (``EngineState``); the ``World`` inherits them. History
queries walk the per-subject and per-type indexes backwards from the newest event, so a
window of the last days costs what it holds, not the whole history.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from policyengine.language.compiler import Ctx, HistoryPlan, SubjectView
from policyengine.runtime.events import Event
from policyengine.runtime.state import EngineState


class Queries(EngineState):
    """The read side of the World (``WorldView`` of the compiled closures)."""

    __slots__ = ()

    def owner_of(self, subject: Any) -> str | None:
        s = self.subjects.get(subject) if isinstance(subject, str) else None
        return s.owner if s is not None else None

    def history(self, plan: HistoryPlan, ctx: Ctx) -> Iterator[Event]:
        within = plan.within
        now = ctx.now
        lower = exact_from = -(2**62)
        if within is not None:
            bound = within.back(now, self.tz)
            slack = within.calendar_slack
            lower, exact_from = bound - slack, bound + slack
        if plan.since is not None:
            since = plan.since(ctx)
            if isinstance(since, int) and since > lower:
                lower = since
                if within is None:
                    exact_from = lower
        if plan.subject is not None:
            sv = plan.subject(ctx)
            lists = [self.hist_subj.get((sv, t)) for t in plan.types]
        else:
            lists = [self.hist_type.get(t) for t in plan.types]
        match = [(f, g(ctx)) for f, g in plan.match]
        if plan.last is not None:
            found = [
                ev
                for lst in lists
                if lst
                for ev in lst
                if ev["at"] >= lower
                and (
                    ev["at"] >= exact_from
                    or within is None
                    or within.covers(ev["at"], now, self.tz)
                )
                and all(ev.get(f) == v for f, v in match)
            ]
            found.sort(key=lambda ev: ev["at"], reverse=True)  # stable: input order kept on ties
            yield from found[: plan.last]
            return
        for lst in lists:
            if not lst:
                continue
            for ev in reversed(lst):
                at = ev["at"]
                if at < lower:
                    break
                if at < exact_from and within is not None and not within.covers(at, now, self.tz):
                    continue
                if all(ev.get(f) == v for f, v in match):
                    yield ev

    def subject_view(self, sid: str) -> SubjectView | None:
        return self.subjects.get(sid)

    def owners(self, kind: str) -> list[str]:
        return sorted(
            o for o, ids in self.owned_by.items() if ids and (kind == "any" or o != "company")
        )

    def party_counter(self, party: str, name: str) -> Decimal:
        return self.party_counters.get(party, {}).get(name, Decimal(0))

    def parties_with(self, name: str) -> list[str]:
        return sorted(p for p, table in self.party_counters.items() if table.get(name))

    def metric_value(self, metric: str, party: Any) -> Decimal | None:
        return self.period_values.get((metric, str(party)))

    def added(self, name: str, key: Any, start: int | None, end: int | None) -> Decimal:
        total = Decimal(0)
        for at, by in self.counter_log.get((str(key), name), ()):
            if (start is None or at >= start) and (end is None or at < end):
                total += by
        return total

    def subjects_with(self, kind: str, owner: Any = None) -> list[str]:
        if owner is not None:
            ids = self.owned_by.get(owner, ())
            if kind == "company" and owner != "company":
                return []
            return sorted(ids)
        subjects = self.subjects.values()
        if kind == "any":
            return sorted(s.id for s in subjects)
        if kind == "owned":
            return sorted(s.id for s in subjects if s.owner is not None)
        if kind == "company":
            return sorted(s.id for s in subjects if s.owner == "company")
        return sorted(s.id for s in subjects if s.owner not in (None, "company"))
