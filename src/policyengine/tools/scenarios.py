"""Scenario tests for policy authors: YAML files of "given these events, as of then, expect that".

``collect`` finds a pack's ``tests/*.yaml``; ``run_suite`` and ``run_scenario`` run them (from
pytest, and for ``policyengine test PATH``); ``coverage`` and ``mutate`` say what they exercise
and whether they notice nudged parameters. The format and its rules:
``docs/policy-testing.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policyengine.errors import (
    Code,
    Location,
    PolicyEngineError,
    PolicyError,
    ProblemSink,
    did_you_mean,
)
from policyengine.language.loader import Source, load_source
from policyengine.language.validate import error_words
from policyengine.policy import Policy, load_policy
from policyengine.runtime.decision import Decision
from policyengine.times import instant_us, parse_duration

# ---------------------------------------------------------------- the format

SECTIONS = (
    "penalties",
    "credits",
    "obligations",
    "violations",
    "metrics",
    "awards",
    "classifications",
    "rejected",
    "notices",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Includes(_Strict):
    """Some of the items: each written one must be decided, others may be decided too."""

    includes: list[dict[str, Any]]


class OwnerAt(_Strict):
    subject: str
    at: str
    owner: str | None


class Expect(_Strict):
    owners: dict[str, str | None] | None = Field(
        default=None, description="subject -> owner at as_of (null: nobody)"
    )
    owners_at: list[OwnerAt] | None = None
    penalties: list[dict[str, Any]] | Includes | None = None
    credits: list[dict[str, Any]] | Includes | None = None
    obligations: list[dict[str, Any]] | Includes | None = None
    violations: list[dict[str, Any]] | Includes | None = None
    metrics: list[dict[str, Any]] | Includes | None = None
    awards: list[dict[str, Any]] | Includes | None = None
    classifications: list[dict[str, Any]] | Includes | None = None
    rejected: list[dict[str, Any]] | Includes | None = None
    notices: list[dict[str, Any]] | Includes | None = Field(
        default=None,
        description="notices (kind duplicate, ignored, conflict, calendar), e.g. "
        "{kind: calendar, event: '#calendar'}",
    )
    labels: dict[str, dict[str, str | None]] | None = Field(
        default=None, description="key -> {label: value}; only the labels written are checked"
    )
    flags: dict[str, dict[str, Any]] | None = Field(
        default=None, description="subject -> {flag: value}; null means the flag is not set"
    )
    error: str | None = Field(
        default=None, description="an error code (PE302...) the evaluation must raise instead"
    )


class Scenario(_Strict):
    name: str = Field(min_length=1)
    clause: str | list[str] | None = None
    doc: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    as_of: str
    events: list[dict[str, Any]] = Field(default_factory=list)
    expect: Expect

    @model_validator(mode="after")
    def _frozen_clock(self) -> Scenario:
        if instant_us(self.as_of) is None:
            raise ValueError(
                "as_of must be an instant with a UTC offset, e.g. 2026-03-01T10:00:00+08:00"
            )
        return self


class ScenarioFile(_Strict):
    policy: str | None = Field(
        default=None,
        description="policy file or folder, relative to this file; default: the pack folder "
        "that holds this tests/ folder",
    )
    survivors: dict[str, str] = Field(
        default_factory=dict,
        description="parameter -> why no scenario can notice a change of it (mutation check)",
    )
    scenarios: list[Scenario] = Field(min_length=1)


# ---------------------------------------------------------------- collecting


@dataclass(frozen=True)
class Case:
    """One scenario, where it was written, and the policy it runs against."""

    scenario: Scenario
    file: Path
    location: Location
    policy_path: Path

    @property
    def id(self) -> str:
        return f"{self.file.parent.parent.name}/{self.file.name}::{self.scenario.name}"


@dataclass
class Suite:
    """All scenarios of one policy, and what the files say about mutations."""

    policy_path: Path
    cases: list[Case] = field(default_factory=list)
    survivors: dict[str, str] = field(default_factory=dict)


def scenario_files(path: str | Path) -> list[Path]:
    """Scenario files under ``path``: a file, a pack (its ``tests/``), or a tree of packs."""
    root = Path(path)
    if root.is_file():
        return [root]
    if (root / "tests").is_dir():
        return sorted(p for p in (root / "tests").iterdir() if p.suffix in (".yaml", ".yml"))
    if root.name == "tests" and root.is_dir():
        return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml"))
    return sorted(
        p
        for p in root.rglob("*.y*ml")
        if p.parent.name == "tests" and p.suffix in (".yaml", ".yml")
    )


def collect(path: str | Path) -> list[Suite]:
    """Read every scenario file under ``path``, grouped by the policy they test.

    Raises ``PolicyError`` listing every malformed scenario file at file:line:col.
    """
    sink = ProblemSink()
    suites: dict[Path, Suite] = {}
    files = scenario_files(path)
    if not files:
        sink.add(Code.FILE_NOT_FOUND, f"no scenario files under {path}", Location(str(path), 1, 1))
    for file in files:
        source = load_source(file, sink)
        if source is None:
            continue
        parsed = _parse(source, sink)
        if parsed is None:
            continue
        policy_path = (
            (file.parent / parsed.policy).resolve()
            if parsed.policy is not None
            else file.parent.parent.resolve()
        )
        suite = suites.setdefault(policy_path, Suite(policy_path))
        suite.survivors.update(parsed.survivors)
        for i, sc in enumerate(parsed.scenarios):
            suite.cases.append(Case(sc, file, source.locate(("scenarios", i)), policy_path))
    sink.raise_if_any()
    return list(suites.values())


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the scenario format whose mapping is at ``path`` (``("scenarios", 0,
    "expect")`` -> ``Expect``), or None where the format takes any mapping."""
    model: type[BaseModel] = ScenarioFile
    for seg in path:
        if isinstance(seg, int):
            continue
        info = model.model_fields.get(str(seg))
        if info is None:
            return None
        stack: list[Any] = [info.annotation]
        inner: type[BaseModel] | None = None
        while stack and inner is None:
            t = stack.pop(0)
            if isinstance(t, type) and issubclass(t, BaseModel):
                inner = t
            else:
                stack.extend(get_args(t))
        if inner is None:
            return None
        model = inner
    return model


def _closest(key: str, model: type[BaseModel] | None) -> list[str]:
    """The field of ``model`` that ``key`` misspells, if one is close (``difflib``)."""
    import difflib

    names = list(model.model_fields) if model is not None else []
    return difflib.get_close_matches(key, names, n=1, cutoff=0.6)


def _parse(source: Source, sink: ProblemSink) -> ScenarioFile | None:
    try:
        return ScenarioFile.model_validate(source.data)
    except ValidationError as exc:
        said: set[tuple[Any, ...]] = set()  # one problem per place: not one per union branch
        errors = exc.errors()
        # a misspelt key is reported with its spelling, not also as the key it misses
        misspelt = {
            (tuple(e["loc"][:-1]), close[0])
            for e in errors
            if e["type"] == "extra_forbidden" and e["loc"]
            for close in [_closest(str(e["loc"][-1]), _model_at(tuple(e["loc"][:-1])))]
            if close
        }
        for err in errors:
            loc = tuple(err["loc"])
            if err["type"] == "missing" and (loc[:-1], loc[-1]) in misspelt:
                continue
            doc = source.doc_path(loc)
            if (doc, err["type"] == "missing") in said:
                continue
            said.add((doc, err["type"] == "missing"))
            what = ".".join(str(x) for x in doc) or "the file"
            hint = "fields of a scenario: name, clause, doc, params, as_of, events, expect"
            if err["type"] == "extra_forbidden" and loc:
                model = _model_at(loc[:-1])
                keys = list(model.model_fields) if model is not None else []
                key = str(loc[-1])
                place = ".".join(str(x) for x in loc[:-1]) or "the file"
                sink.add(
                    Code.UNKNOWN_FIELD,
                    f"unknown field {key!r} in {place}",
                    source.locate(loc, key=True),
                    did_you_mean(key, keys)
                    or ("the fields here: " + ", ".join(keys) if keys else hint),
                )
                continue
            if err["type"] == "missing" and loc:
                place = ".".join(str(x) for x in loc[:-1]) or "the file"
                sink.add(
                    Code.MISSING_FIELD,
                    f"{place}: missing field {loc[-1]!r}",
                    source.locate(loc[:-1]),
                    f"add `{loc[-1]}:`; " + hint,
                )
                continue
            words = error_words(err, source)
            sink.add(
                Code.BAD_VALUE,
                f"{what}: {words or err['msg'].removeprefix('Value error, ')}",
                source.locate(loc),
                hint if len(doc) <= 3 else None,
            )
        return None


# ---------------------------------------------------------------- running


@dataclass
class Result:
    case: Case
    failures: list[str]
    fired: dict[str, int]

    @property
    def passed(self) -> bool:
        return not self.failures

    def report(self) -> str:
        head = (
            f"{self.case.location}: {'PASS' if self.passed else 'FAIL'} {self.case.scenario.name}"
        )
        return "\n".join([head, *(f"    {line}" for f in self.failures for line in f.split("\n"))])


class PolicyCache:
    """Policies by (path, overrides): scenarios of one pack share their compiled policy."""

    def __init__(self, base_params: Mapping[str, Any] | None = None) -> None:
        self.base = dict(base_params or {})
        self._cache: dict[tuple[Path, str], Policy] = {}

    def get(self, path: Path, params: Mapping[str, Any]) -> Policy:
        merged = {**self.base, **params}
        key = (path, repr(sorted(merged.items(), key=lambda kv: kv[0])))
        found = self._cache.get(key)
        if found is None:
            found = load_policy(path, params=merged)
            self._cache[key] = found
        return found


def run_scenario(case: Case, policies: PolicyCache | None = None) -> Result:
    """Evaluate one scenario and compare; a policy that does not load is a failure too."""
    cache = policies or PolicyCache()
    sc = case.scenario
    try:
        policy = cache.get(case.policy_path, sc.params)
    except PolicyError as exc:
        return Result(case, [f"the policy does not load:\n{exc}"], {})
    try:
        decision = policy.evaluate(sc.events, as_of=sc.as_of)
    except PolicyEngineError as exc:
        codes = [p.code for p in exc.problems]
        if sc.expect.error is not None and sc.expect.error in codes:
            return Result(case, [], {})
        return Result(case, [f"evaluation raised instead of deciding:\n{exc}"], {})
    if sc.expect.error is not None:
        return Result(case, [f"expected error {sc.expect.error}, but the evaluation decided"], {})
    return Result(case, compare(sc.expect, decision), dict(decision.fired))


def run_suite(suite: Suite, policies: PolicyCache | None = None) -> list[Result]:
    cache = policies or PolicyCache()
    return [run_scenario(case, cache) for case in suite.cases]


# ---------------------------------------------------------------- comparing

_INSTANT_FIELDS = frozenset({"at", "due", "met_at", "window_start", "start", "end"})


def compare(expect: Expect, decision: Decision) -> list[str]:
    """Every difference between what the scenario expects and what was decided."""
    out: list[str] = []
    if expect.owners is not None:
        for subject, owner in expect.owners.items():
            got = decision.owner(subject)
            if got != owner:
                why = _why(decision, subject)
                out.append(f"owner of {subject}: expected {owner!r}, decided {got!r}{why}")
    for oa in expect.owners_at or []:
        got = decision.owner(oa.subject, at=oa.at)
        if got != oa.owner:
            out.append(
                f"owner of {oa.subject} at {oa.at}: expected {oa.owner!r}, decided {got!r}"
                f"{_why(decision, oa.subject)}"
            )
    for section in SECTIONS:
        wanted = getattr(expect, section)
        if wanted is None:
            continue
        actual = [item.model_dump(mode="json") for item in getattr(decision, section)]
        out.extend(_compare_items(section, wanted, actual))
    for key, labels in (expect.labels or {}).items():
        got_labels = decision.labels(key)
        for name, value in labels.items():
            if got_labels.get(name) != value:
                out.append(
                    f"label {name} of {key}: expected {value!r}, decided {got_labels.get(name)!r}"
                )
    for subject, flags in (expect.flags or {}).items():
        got_flags = decision.flags.get(subject, {})
        for name, value in flags.items():
            if not _same(got_flags.get(name), value, name):
                out.append(
                    f"flag {name} of {subject}: expected {value!r}, decided {got_flags.get(name)!r}"
                )
    return out


def _why(decision: Decision, subject: str) -> str:
    spans = decision.ownership(subject)
    if not spans:
        return ""
    last = spans[-1]
    return f" (last change by rule {last.rule}, clause {last.clause}, events {last.events})"


def _compare_items(
    section: str, wanted: list[dict[str, Any]] | Includes, actual: list[dict[str, Any]]
) -> list[str]:
    exact = not isinstance(wanted, Includes)
    items = wanted if isinstance(wanted, list) else wanted.includes
    pairs = _matching(items, actual)
    out: list[str] = []
    for i, item in enumerate(items):
        if i in pairs:
            continue
        near = [a for a in actual if _near(item, a)]
        shown = [_show(a, (*item, "rule", "clause")) for a in near[:3]]
        hint = "".join(f"\n      decided instead: {x}" for x in shown)
        out.append(f"{section}: expected {_show(item)} - not decided{hint}")
    if exact:
        used = set(pairs.values())
        for j, a in enumerate(actual):
            if j not in used:
                out.append(f"{section}: not expected {_show(a, _SUMMARY)}")
    return out


def _matching(items: Sequence[dict[str, Any]], actual: Sequence[dict[str, Any]]) -> dict[int, int]:
    """A largest one-to-one pairing of expected items with decided ones (Kuhn's algorithm)."""
    fits = [[j for j, a in enumerate(actual) if _fits(item, a)] for item in items]
    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or place(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(items)):
        place(i, set())
    return {i: j for j, i in owner.items()}


def _fits(item: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    for name, value in item.items():
        if name == "amount" and "amount" not in actual:  # a penalty's amount: a range
            low, high = _amount(value)
            if not (
                _same(actual.get("amount_min"), low, name)
                and _same(actual.get("amount_max"), high, name)
            ):
                return False
            continue
        if name == "clause" and isinstance(value, str) and value in (actual.get("clauses") or []):
            continue
        if name not in actual:
            return False
        if not _same(actual[name], value, name):
            return False
    return True


def _near(item: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """Decided items worth showing beside a missing one: same rule (or party), other details."""
    for key in ("rule", "party", "subject"):
        if key in item:
            return bool(actual.get(key) == item[key])
    return False


def _amount(value: Any) -> tuple[Any, Any]:
    if isinstance(value, str) and "-" in value.strip()[1:]:
        low, high = value.split("-", 1)
        return low.strip(), high.strip()
    return value, value


def _same(got: Any, want: Any, name: str) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if name in _INSTANT_FIELDS or isinstance(want, datetime) or isinstance(got, datetime):
        a, b = instant_us(got), instant_us(want)  # a flag holding an instant too (issue 16)
        if a is not None and b is not None:
            return a == b
    da, db = _number(got), _number(want)
    if da is not None and db is not None:
        return da == db
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(
            _same(g, w, name) for g, w in zip(got, want, strict=True)
        )
    if isinstance(want, dict) and isinstance(got, dict):
        return all(k in got and _same(got[k], v, k) for k, v in want.items())
    return bool(got == want)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


_SUMMARY = (
    "rule",
    "clause",
    "label",
    "party",
    "subject",
    "what",
    "sanction",
    "amount_min",
    "amount_max",
    "status",
    "due",
    "period",
    "value",
    "event",
)


def _show(item: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """An item as a reader compares it: the fields asked about, with rule and clause."""
    names = list(dict.fromkeys(keys)) if keys is not None else list(item)
    if "amount" in names and "amount" not in item:  # a penalty's: its range
        at = names.index("amount")
        names[at : at + 1] = ["amount_min", "amount_max"]
    shown = {k: item[k] for k in names if k in item and item[k] is not None and k != "clauses"}
    return "{" + ", ".join(f"{k}: {v}" for k, v in shown.items()) + "}"


# ---------------------------------------------------------------- coverage


@dataclass
class Coverage:
    """What a suite exercised: rules (and labels, metrics, awards) fired, clauses cited."""

    policy: str
    items: dict[str, int]  # coverable id -> times fired over all scenarios
    clauses: dict[str, bool]  # clause cited by some rule -> exercised?

    @property
    def never_fired(self) -> list[str]:
        return [k for k, n in self.items.items() if n == 0]

    @property
    def percent(self) -> float:
        return (
            100.0 * sum(1 for n in self.items.values() if n) / len(self.items)
            if self.items
            else 100.0
        )

    def report(self) -> str:
        lines = [f"coverage of {self.policy}: {self.percent:.1f}% of {len(self.items)} rules"]
        if self.never_fired:
            lines.append("  never fired: " + ", ".join(self.never_fired))
        missed = [c for c, ok in self.clauses.items() if not ok]
        lines.append(
            f"  clauses exercised: {sum(self.clauses.values())}/{len(self.clauses)}"
            + (f" (not: {', '.join(missed)})" if missed else "")
        )
        return "\n".join(lines)


def coverage(policy: Policy, results: Sequence[Result]) -> Coverage:
    compiled = policy.compiled
    cites: dict[str, tuple[str, ...]] = {r.id: r.clauses for r in compiled.rules}
    cites.update({lab.name: lab.ref[1] for lab in compiled.labels})
    cites.update({mt.id: mt.ref[1] for mt in compiled.metrics})
    cites.update({aw.id: aw.ref[1] for aw in compiled.awards})
    items = dict.fromkeys(cites, 0)
    for res in results:
        for name, n in res.fired.items():
            if name in items:
                items[name] += n
    clauses: dict[str, bool] = {}
    for name, cs in cites.items():
        for c in cs:
            clauses[c] = clauses.get(c, False) or items[name] > 0
    return Coverage(policy.id, items, clauses)


# ---------------------------------------------------------------- mutation


@dataclass(frozen=True)
class Mutation:
    param: str
    original: str
    mutated: Any
    label: str


@dataclass
class MutationOutcome:
    mutation: Mutation
    killed_by: list[str]
    accepted: str | None = None  # why its survival is fine, from the scenario files

    @property
    def survived(self) -> bool:
        return not self.killed_by


def mutations(policy: Policy) -> Iterator[Mutation]:
    """One nudge of each duration, amount and count parameter (2 days -> 3 days, 50 -> 51)."""
    for name, decl in sorted(policy.compiled.param_decls.items()):
        kind = decl.kind
        raw = getattr(decl, kind)
        if kind == "duration":
            for text in _duration_nudges(str(raw)):
                yield Mutation(name, str(raw), text, f"{name}: {raw} -> {text}")
        elif kind in ("count", "number", "salary_days"):
            bumped = _bump(raw)
            yield Mutation(name, str(raw), bumped, f"{name}: {raw} -> {bumped}")
        elif kind == "money":
            low, high = _amount(str(raw))
            if low == high:
                bumped = _bump(low)
                yield Mutation(name, str(raw), str(bumped), f"{name}: {raw} -> {bumped}")
            else:
                for text in (f"{_bump(low)}-{high}", f"{low}-{_bump(high)}"):
                    yield Mutation(name, str(raw), text, f"{name}: {raw} -> {text}")
        elif kind == "table":
            for row, value in sorted(raw.items()):
                if isinstance(value, dict):
                    continue  # a template's row (`each:`), not a number to nudge
                num = _number(value)
                if num is None and isinstance(value, str) and "-" in value:
                    lo, hi = _amount(value)
                    nudged: Any = f"{lo}-{_bump(hi)}"
                elif num is not None:
                    nudged = _bump(value)
                else:
                    continue
                yield Mutation(
                    name, f"{row}: {value}", {row: nudged}, f"{name}.{row}: {value} -> {nudged}"
                )


def _duration_nudges(text: str) -> list[str]:
    d = parse_duration(text)
    if d.unit == "same_day":
        return ["next day"]
    if d.unit == "next_day":
        return ["same day"]
    if d.unit == "month_end":
        return []
    words = {"working_day": "working days"}
    unit = words.get(d.unit, d.unit + "s")
    return [f"{d.amount + 1} {unit}"]


def _bump(value: Any) -> Any:
    """One step in the last written digit: 2 -> 3, 0.05 -> 0.06, 90 -> 91."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1
    num = Decimal(str(value))
    exponent = num.as_tuple().exponent
    step = Decimal(1).scaleb(exponent) if isinstance(exponent, int) and exponent < 0 else 1
    return str(num + step)


def mutate(
    suite: Suite, progress: Callable[[MutationOutcome], None] | None = None
) -> list[MutationOutcome]:
    """Run the suite once per mutation; a mutation is killed when some scenario fails."""
    base = load_policy(suite.policy_path)
    outcomes: list[MutationOutcome] = []
    for mut in mutations(base):
        cache = PolicyCache({mut.param: mut.mutated})
        killed: list[str] = []
        for case in suite.cases:
            if mut.param in case.scenario.params:
                continue  # the scenario pins the parameter itself
            if not run_scenario(case, cache).passed:
                killed.append(case.scenario.name)
                break
        outcome = MutationOutcome(
            mut, killed, suite.survivors.get(mut.param) if not killed else None
        )
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
