"""One exception family for everything policyengine refuses.

Every error says *where* (``file:line:col`` for policy text, event id and field for
history input) and *what to do*, and carries a stable code so that callers and
editors can react to a class of problem without parsing messages. A policy load
collects every problem it can find before raising, so an author fixes a file in
one round trip instead of one error per run.

The codes are one registry, ``Code`` (docs/errors.md says what each means and what to do);
raise and report sites name them by constant, ``Code.OUTSIDE_CALENDAR``, never by text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum, unique
from typing import Final


class Family(StrEnum):
    """A family of codes, by its first digit: what kind of thing is wrong. It is also the
    ``code`` of the exception class that raises the family (the analysis only warns)."""

    POLICY = "PE1xx"  # the policy text: PolicyError
    HISTORY = "PE2xx"  # the event history: EventError
    EVALUATION = "PE3xx"  # policy and history together: EvaluationError
    ANALYSIS = "PE4xx"  # warnings of `policyengine check` (tools.analysis), never raised
    SNAPSHOT = "PE5xx"  # snapshots and incremental evaluation: SnapshotError


@unique  # no two members share a code
class Code(StrEnum):
    """Every stable problem code: ``Code.OUTSIDE_CALENDAR == "PE302"``.

    A member is the code itself (a ``str``: it compares, hashes, formats and dumps to JSON as
    ``"PE302"``; ``Problem`` stores it as plain text), with its one-line ``summary`` and what
    to do about it (``todo``); ``reserved`` codes are declared but nothing reports them yet.
    docs/errors.md documents each one; tests/test_error_codes.py checks that every code used
    is declared here, every code declared is used (or reserved) and documented. Never
    renumber: other systems match on the codes.
    """

    _value_: str
    summary: str
    todo: str
    reserved: bool

    def __new__(cls, code: str, summary: str, todo: str, reserved: bool = False) -> Code:
        member = str.__new__(cls, code)
        member._value_ = code
        member.summary = summary
        member.todo = todo
        member.reserved = reserved
        return member

    @property
    def family(self) -> Family:
        return Family(f"{self.value[:3]}xx")

    # ---------------------------------------------------------------- PE1xx: policy text
    MALFORMED_YAML = (
        "PE100",
        "malformed YAML",
        "fix the YAML syntax at the position shown; save the file as UTF-8",
    )
    UNKNOWN_FIELD = (
        "PE101",
        "unknown field",
        "correct the misspelt key or operator (see the hint), or remove it",
    )
    BAD_VALUE = (
        "PE102",
        "wrong type or value",
        "give the field a value of the kind the language reference lists for it",
    )
    DUPLICATE_KEY = (
        "PE103",
        "duplicate key",
        "keep one of the two keys of the mapping: merge or rename them",
    )
    FORBIDDEN_TAG = ("PE104", "forbidden YAML tag", "remove the tag: policies are plain YAML")
    ALIAS_TOO_LARGE = (
        "PE105",
        "YAML alias expansion too large",
        "remove the alias chain or the deep nesting",
    )
    BAD_QUANTITY = (
        "PE106",
        "bad duration, money or count",
        'write durations like "3 days" or "2 working days", amounts like "200 CNY"',
    )
    DUPLICATE_ID = (
        "PE107",
        "duplicate id",
        "rename one of the two, or remove the copy",
    )
    UNKNOWN_CLAUSE = (
        "PE108",
        "unknown clause id",
        "add the clause (id, text, reading) under `clauses:` of that file, or fix the id",
    )
    UNDECLARED_EVENT_TYPE = (
        "PE109",
        "unknown event type",
        "declare the type under `events:`, or fix its spelling (see the hint)",
    )
    UNKNOWN_PARAMETER = (
        "PE110",
        "unknown parameter",
        "declare the parameter under `params:`, or fix the name",
    )
    UNKNOWN_RULE = ("PE111", "unknown rule", "name a rule id of the policy set in `overrides:`")
    PRECEDENCE_CYCLE = (
        "PE112",
        "precedence cycle",
        "remove one of the `overrides:` of the cycle shown",
    )
    UNDECLARED_EVENT_FIELD = (
        "PE113",
        "unknown event field",
        "declare the field for the event type under `events:`, or fix its name",
    )
    MISSING_FIELD = ("PE114", "missing field", "add the field the message names")
    CONFLICTING_DECLARATIONS = (
        "PE115",
        "conflicting declarations",
        "declare it the same way in every file of the set, or in one file only",
    )
    FILE_NOT_FOUND = (
        "PE116",
        "file not found",
        "check the path, and that the file exists and is readable",
    )
    BAD_REFERENCE = (
        "PE117",
        "bad reference",
        "write a reference available at that place ($event.field, $params.name, ...)",
    )
    WRONG_KIND = (
        "PE118",
        "value of the wrong kind",
        "give a value of the kind the place takes (an instant, a duration, a time of day...)",
    )
    UNKNOWN_CONDITION = (
        "PE121",
        "unknown named condition",
        "name a condition declared under `conditions:` in {condition: NAME}",
    )
    CONDITION_CYCLE = (
        "PE122",
        "named condition cycle",
        "a named condition may use others, but never itself through them",
    )
    FORMAT_CHANGES_MEANING = (
        "PE123",
        "formatting would change the meaning",
        "the file was left as it is: keep its layout by hand, and report the file",
    )
    # ---------------------------------------------------------------- PE2xx: event history
    EVENT_UNKNOWN_TYPE = (
        "PE201",
        "unknown event type",
        "fix the event's type, declare it in the policy, or set `unknown_events: ignore`",
    )
    EVENT_MISSING_FIELD = (
        "PE202",
        "missing event field",
        "send the field (`type`, `at`, or a required field of the type) with the event",
    )
    EVENT_BAD_FIELD = (
        "PE203",
        "wrong event field type or value",
        "send a value of the declared type (and enum, min, max); ids are non-empty text",
    )
    EVENT_NO_OFFSET = (
        "PE204",
        "timestamp without UTC offset",
        "write ISO 8601 with an offset, e.g. 2026-03-01T10:00:00+08:00",
    )
    EVENT_UNKNOWN_FIELD = (
        "PE205",
        "unknown event field",
        "drop the field, fix its spelling, or declare it for the event type",
    )
    BAD_INSTANT = (
        "PE206",
        "bad instant argument",
        "pass an ISO 8601 text with an offset or a timezone-aware datetime",
    )
    MALFORMED_HISTORY = (
        "PE207",
        "event is not a mapping",
        "send each event as a mapping, and the history as a list of them (valid JSON, "
        "JSON lines, YAML or CSV)",
    )
    INSTANT_OUT_OF_RANGE = (
        "PE208",
        "instant outside the supported range",
        "send instants between 0001-01-02 and 9999-12-30 (UTC); check the year",
    )
    UNKNOWN_HISTORY_FORMAT = (
        "PE209",
        "unknown history file format",
        "name the file .json, .jsonl, .ndjson, .yaml, .yml, .csv or .xlsx after its format",
    )
    HISTORY_DUPLICATE_KEY = (
        "PE210",
        "duplicate key in an event",
        "give each field once per event (JSON object, YAML mapping or CSV header)",
    )
    HISTORY_TOO_LARGE = (
        "PE211",
        "history value too large or too deeply nested",
        "events are flat: numbers of at most 4300 digits, nesting of at most 64 levels, "
        "CSV cells of at most 131072 characters",
    )
    EVENT_ID_REUSED = (
        "PE212",
        "two different events share an id",
        "give each event its own id, or drop the repeat (an identical repeat is dropped "
        "with a notice)",
    )
    HISTORY_NOT_GROUPED = (
        "PE213",
        "streamed history not grouped by subject",
        "give each subject's events consecutively, linked subjects next to each other and "
        "events without a subject first (policyengine.stream.grouped), or use evaluate_many",
    )
    # ---------------------------------------------------------------- PE3xx: evaluation
    CONFLICTING_DECISIONS = (
        "PE301",
        "conflicting decisions in one step",
        "declare `overrides:` between the rules (reported today as a `conflict` notice)",
        True,
    )
    OUTSIDE_CALENDAR = (
        "PE302",
        "date outside the working-day calendar",
        "declare the year's holidays and make-up days under `calendar:`, or set "
        "`outside: weekdays`",
    )
    RUNTIME_TYPE = (
        "PE303",
        "runtime value has the wrong type",
        "trigger the rule on events that carry what it needs, or name it explicitly",
    )
    OWNER_CHANGES_UNSETTLED = (
        "PE304",
        "owner_changed rules do not settle",
        "make sure no rule on owner_changed undoes another's change",
    )
    NOT_AN_AMOUNT = (
        "PE305",
        "penalty amount is not an amount",
        "give every key the rule looks up a row of its table, or a default with coalesce",
    )
    DURABLE_UNAVAILABLE = (
        "PE306",
        "durable backend unavailable",
        "pip install 'policyengine[durable]', or use the Python backend",
    )
    SPAN_TOO_LONG = (
        "PE308",
        "history spans too many years",
        "correct the mistyped date, or pass max_span_years=N (None: no limit) to "
        "Policy.evaluate, resume or evaluate_many",
    )
    TIME_OUT_OF_RANGE = (
        "PE307",
        "time arithmetic past the supported range",
        "a window, deadline or period reaches past 9999-12-30 or before 0001-01-02: "
        "check the event's year or shorten the duration",
    )
    WORKER_DIED = (
        "PE310",
        "a parallel worker process died",
        "evaluate_many lost the process of the shard named: check the machine's memory "
        "(the kernel ends a process that exhausts it), or evaluate with workers=1",
    )
    WORKER_TIMEOUT = (
        "PE311",
        "a parallel worker stopped answering",
        "the shard named took longer than evaluate_many's timeout: raise `timeout`, use "
        "more shards, or evaluate with workers=1",
    )
    NOT_STREAMABLE = (
        "PE312",
        "history cannot be streamed subject by subject",
        "evaluate the history with evaluate_many (all cores) or evaluate (one process)",
    )
    # ---------------------------------------------------------------- PE4xx: analysis
    OVERLAPPING_RULES = (
        "PE401",
        "overlapping rules decide differently",
        "make their `when` conditions exclusive, or declare `overrides:` between them",
    )
    UNREACHABLE = (
        "PE402",
        "unreachable rule or action",
        "check the condition's value against the event field's declared `enum`",
    )
    SHADOWED_RULE = (
        "PE403",
        "shadowed rule",
        "narrow the overriding rule's `when`, or drop the shadowed rule",
    )
    UNUSED_PARAMETER = ("PE404", "unused parameter", "use it as $params.NAME, or remove it")
    UNUSED_EVENT_TYPE = (
        "PE405",
        "unused event type",
        "remove the declaration if histories need not carry the type, or mark it "
        "`accept_only: true` if they do",
    )
    UNCITED_CLAUSE = (
        "PE406",
        "clause cited by nothing",
        "encode the clause, or mark it `kind: descriptive` if it decides nothing",
    )
    ANALYSIS_PRECEDENCE_CYCLE = (
        "PE407",
        "precedence cycle",
        "nothing: the loader refuses a precedence cycle first (PE112)",
        True,
    )
    # ---------------------------------------------------------------- PE5xx: snapshots
    SNAPSHOT_OTHER_POLICY = (
        "PE501",
        "snapshot of another policy or library version",
        "evaluate the full history with this policy (snapshot.history_of gives its events)",
    )
    SNAPSHOT_MALFORMED = (
        "PE502",
        "malformed snapshot",
        "pass decision.snapshot() (or its JSON, loaded) unchanged; else evaluate in full",
    )
    RESUME_BEFORE_SNAPSHOT = (
        "PE503",
        "resume as_of before the snapshot's",
        "resume at or after the snapshot's as_of; to look back, evaluate with that as_of",
    )
    NOT_SNAPSHOTTABLE = (
        "PE504",
        "decision or value cannot be snapshotted",
        "evaluate natively with resumable=True (the default), with JSON-able event values",
    )


def codes_of(family: Family) -> dict[str, str]:
    """The codes of one family, code -> summary, in code order."""
    return {c.value: c.summary for c in Code if c.family is family}


# Every code -> its summary, as plain text (tools.analysis.CODES: the PE4xx ones).
CODES: Final[dict[str, str]] = {c.value: c.summary for c in Code}


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

    def __post_init__(self) -> None:
        if type(self.code) is not str:  # a Code: kept as the plain text it stands for
            object.__setattr__(self, "code", str(self.code))

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

    # an exception class's code is its family ("PE1xx"), never a problem's code ("PE100"):
    # a problem's codes are in ``codes``
    code: str = "PExxx"

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

    code = Family.POLICY.value


class EventError(PolicyEngineError):
    """The history is wrong: every bad event, by id and field. Nothing was evaluated."""

    code = Family.HISTORY.value


class EvaluationError(PolicyEngineError):
    """The policy and history are each valid but together ask for something undecidable."""

    code = Family.EVALUATION.value


class WorkerError(EvaluationError):
    """``evaluate_many`` lost a worker process (PE310) or gave up waiting for it (PE311); the
    problem names the shard. Evaluating in one process gives the decision."""


class SnapshotError(PolicyEngineError):
    """A snapshot cannot be taken or resumed; evaluating the full history always can."""

    code = Family.SNAPSHOT.value


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
