"""One exception family for everything policyengine refuses.

Every error says *where* (``file:line:col`` for policy text, event id and field for
history input) and *what to do*, and carries a stable code so that callers and
editors can react to a class of problem without parsing messages. A policy load
collects every problem it can find before raising, so an author fixes a file in
one round trip instead of one error per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# Stable codes. Never renumber: other systems match on them.
CODES: Final[dict[str, str]] = {
    # PE1xx: policy text (YAML, schema, references)
    "PE100": "malformed YAML",
    "PE101": "unknown field",
    "PE102": "wrong type or value",
    "PE103": "duplicate key",
    "PE104": "forbidden YAML tag",
    "PE105": "YAML alias expansion too large",
    "PE106": "bad duration, money or count",
    "PE107": "duplicate id",
    "PE108": "unknown clause id",
    "PE109": "unknown event type",
    "PE110": "unknown parameter",
    "PE111": "unknown rule",
    "PE112": "precedence cycle",
    "PE113": "unknown event field",
    "PE114": "missing field",
    "PE115": "conflicting declarations",
    "PE116": "file not found",
    "PE117": "bad reference",
    # PE2xx: event history input
    "PE201": "unknown event type",
    "PE202": "missing event field",
    "PE203": "wrong event field type or value",
    "PE204": "timestamp without UTC offset",
    "PE205": "unknown event field",
    "PE206": "bad instant argument",
    "PE207": "event is not a mapping",
    # PE3xx: evaluation
    "PE301": "conflicting decisions in one step",
    "PE302": "date outside the working-day calendar",
    "PE303": "runtime value has the wrong type",
    "PE304": "owner_changed rules do not settle",
    "PE305": "penalty amount is not an amount",
    "PE306": "durable backend unavailable",
    # PE5xx: snapshots and incremental evaluation (Decision.snapshot, Policy.resume)
    "PE501": "snapshot of another policy or library version",
    "PE502": "malformed snapshot",
    "PE503": "resume as_of before the snapshot's",
    "PE504": "decision or value cannot be snapshotted",
}


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a policy file; line and column are 1-based, as editors show them."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: a code, a message, where it is, and what to do about it."""

    code: str
    message: str
    location: Location | None = None
    hint: str | None = None
    event_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.location is not None:
            where = f"{self.location}: "
        elif self.event_id is not None:
            where = f"event {self.event_id!r}" + (f" field {self.field!r}" if self.field else "")
            where += ": "
        text = f"{where}{self.code} {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class PolicyEngineError(Exception):
    """Root of the family: ``except PolicyEngineError`` catches everything we raise on purpose."""

    code: str = "PE000"

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("an error needs at least one problem")
        self.problems: list[Problem] = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)

    @property
    def first(self) -> Problem:
        return self.problems[0]

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]


class PolicyError(PolicyEngineError):
    """The policy text is wrong: every problem found in every file of the set, at file:line:col."""

    code = "PE100"


class EventError(PolicyEngineError):
    """The history is wrong: every bad event, by id and field. Nothing was evaluated."""

    code = "PE200"


class EvaluationError(PolicyEngineError):
    """The policy and history are each valid but together ask for something undecidable."""

    code = "PE300"


class SnapshotError(PolicyEngineError):
    """A snapshot cannot be taken or resumed; evaluating the full history always can."""

    code = "PE500"


@dataclass(slots=True)
class ProblemSink:
    """Collects problems during one pass so that all of them are reported together."""

    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        code: str,
        message: str,
        location: Location | None = None,
        hint: str | None = None,
    ) -> None:
        self.problems.append(Problem(code, message, location, hint))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self) -> None:
        if self.problems:
            ordered = sorted(
                self.problems,
                key=lambda p: (
                    (p.location.file, p.location.line, p.location.column)
                    if p.location
                    else ("", 0, 0)
                ),
            )
            raise PolicyError(ordered)


def did_you_mean(word: str, choices: object) -> str | None:
    """A hint for a misspelt name; authors are operations managers, not programmers."""
    import difflib

    names = [str(c) for c in choices] if not isinstance(choices, str) else [choices]  # type: ignore[attr-defined]
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
