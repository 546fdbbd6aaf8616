"""Between validate and compile: rule templates (``each:``), one rule per row of a table.

A rule with ``each: $params.NAME`` stands for one rule per row of the table parameter
``NAME``, as resolved for this load (a company's ``params=`` override of the table changes
the expansion). The substitution is structural: in a copy of the rule's YAML, every text
that is exactly ``$row`` (the key) or ``$row.COLUMN`` (that cell of the row, a YAML scalar
or a list of them) is replaced by that value, and ``{row}`` inside any other text (the id,
``overrides``, a flag name, ``$subject.flags.lapsed_{row}``) by the key. Nothing is
evaluated. Each expanded rule is validated as a rule and
keeps the template's position (a ``RuleSite`` with the template's index), so every problem
points at the template text; the row it came from is named in validation messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from policyengine.errors import Code, ProblemSink, did_you_mean
from policyengine.language import model as m
from policyengine.language.loader import Path_
from policyengine.language.validate import (
    PolicySet,
    RuleSite,
    _check_precedence,
    _problem_from_error,
)

ROW: Final = "$row"
KEY: Final = "{row}"


def table_rows(pset: PolicySet, name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The rows of table parameter ``name`` as written, with a company's override applied
    (rows replaced whole, as ``resolve_params`` does); None if ``name`` is no table."""
    declared = pset.params.get(name)
    if declared is None or declared.table is None:
        return None
    rows: dict[str, Any] = dict(declared.table)
    raw = params.get(name)
    if isinstance(raw, Mapping) and set(raw) == {"table"}:
        raw = raw["table"]
    if isinstance(raw, Mapping):
        rows.update({str(k): v for k, v in raw.items()})
    return rows


def expand_templates(pset: PolicySet, params: Mapping[str, Any], sink: ProblemSink) -> PolicySet:
    """``pset`` with each template replaced, in place, by its rules (``pset`` itself when it
    has no template); ids must stay unique, and ``overrides:`` are checked afterwards."""
    if not any(_is_template(site) for site in pset.rules):
        return pset
    out: list[RuleSite] = []
    for site in pset.rules:
        if _is_template(site):
            out.extend(_expand(site, pset, params, sink))
        else:
            out.append(site)
    sites: dict[str, RuleSite] = {}
    kept: list[RuleSite] = []
    for site in out:
        first = sites.get(site.rule.id)
        if first is not None:
            sink.add(
                Code.DUPLICATE_ID,
                f"duplicate rule id {site.rule.id!r}"
                + (f" (made from template row {site.row!r})" if site.row is not None else ""),
                site.locate("id"),
                f"first at {first.locate('id')}; put {KEY} in a template's id",
            )
            continue
        sites[site.rule.id] = site
        kept.append(site)
    expanded = dataclasses.replace(pset, rules=kept)
    _check_precedence(expanded, sites, sink)
    return expanded


def _is_template(site: RuleSite) -> bool:
    return site.rule.each is not None and site.row is None


def _expand(
    site: RuleSite, pset: PolicySet, params: Mapping[str, Any], sink: ProblemSink
) -> list[RuleSite]:
    each = site.rule.each
    assert each is not None
    parts = each[1:].split(".") if m.is_reference(each) else []
    if len(parts) != 2 or parts[0] != "params":
        sink.add(
            Code.BAD_REFERENCE,
            f"`each:` names a table parameter as $params.NAME, not {each!r}",
            site.locate("each"),
        )
        return []
    name = parts[1]
    rows = table_rows(pset, name, params)
    if rows is None:
        if name in pset.params:
            sink.add(
                Code.BAD_VALUE,
                f"`each:` expands over the rows of a table; {name!r} is a {pset.params[name].kind}",
                site.locate("each"),
            )
        elif name not in pset.broken:
            sink.add(
                Code.UNKNOWN_PARAMETER,
                f"unknown parameter {name!r}",
                site.locate("each"),
                did_you_mean(name, pset.params) or "declare the table under `params:`",
            )
        return []
    if KEY not in site.rule.id:
        sink.add(
            Code.BAD_VALUE,
            f"a template's id contains {KEY}, so that each row's rule has its own id",
            site.locate("id"),
            f"e.g. `id: {KEY}-{site.rule.id}`",
        )
        return []
    raw = site.source.data["rules"][site.index]
    clauses = site.source.data.get("clauses") if isinstance(site.source.data, Mapping) else None
    local_clauses = {  # ids as written; a malformed one (a list, a number) is reported elsewhere
        c["id"]
        for c in (clauses if isinstance(clauses, list) else ())
        if isinstance(c, Mapping) and isinstance(c.get("id"), str)
    }
    made: list[RuleSite] = []
    for key, row in rows.items():
        missing: list[tuple[Path_, str]] = []
        data = {k: _substitute(v, key, row, (k,), missing) for k, v in raw.items()}
        for at, column in missing:
            columns = list(row) if isinstance(row, Mapping) else []
            sink.add(
                Code.BAD_REFERENCE,
                f"$row.{column}: row {key!r} of table {name!r} has no column {column!r}"
                if isinstance(row, Mapping)
                else f"$row.{column}: row {key!r} of table {name!r} is a value, not a row",
                site.locate(*at),
                did_you_mean(column, columns)
                or "give every row the column, or write $row for the row's key",
            )
        if missing:
            pset.broken.add(data["id"])  # no knock-on "unknown rule" for its overriders
            continue
        try:
            rule = m.Rule.model_validate(data)
        except ValidationError as exc:
            found = ProblemSink()
            for err in exc.errors():
                _problem_from_error(
                    {**err, "loc": ("rules", site.index, *err["loc"])}, site.source, found
                )
            for p in found.problems:
                sink.add(p.code, f"{p.message} (template row {key!r})", p.location, p.hint)
            pset.broken.add(str(data.get("id")))
            continue
        expanded = RuleSite(rule, site.source, site.index, row=key)
        if "$row" in str(raw.get("clause")):
            for j, cid in enumerate(rule.clauses):
                if cid not in local_clauses and cid not in pset.broken:
                    sink.add(
                        Code.UNKNOWN_CLAUSE,
                        f"rule {rule.id!r} cites clause {cid!r}, which this file does not carry",
                        expanded.locate(
                            *(("clause",) if isinstance(rule.clause, str) else ("clause", j))
                        ),
                        did_you_mean(cid, local_clauses - {None}),
                    )
        made.append(expanded)
    return made


def _substitute(value: Any, key: str, row: Any, at: Path_, missing: list[tuple[Path_, str]]) -> Any:
    """A copy of ``value`` with ``$row`` and ``$row.COLUMN`` texts replaced by the key and the
    cell, and ``{row}`` inside any other text by the key (mapping keys are kept)."""
    if isinstance(value, str):
        if value == ROW:
            return key
        if value.startswith(ROW + "."):
            column = value[len(ROW) + 1 :]
            if isinstance(row, Mapping) and column in row:
                cell = row[column]
                return list(cell) if isinstance(cell, list) else cell
            missing.append((at, column))
            return value
        return value.replace(KEY, key)
    if isinstance(value, list):
        return [_substitute(x, key, row, (*at, i), missing) for i, x in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: _substitute(v, key, row, (*at, k), missing) for k, v in value.items()}
    return value
