"""`policyengine test --format junit`: scenario results as JUnit XML, for CI dashboards.

Jenkins, GitLab, GitHub reporters and Azure all read the same informal schema (a testsuite per
run unit, a testcase per test, a failure element carrying the message), so each pack is a
testsuite, each scenario a testcase named by its scenario and located by its file and line.
A coverage threshold missed and a mutation no scenario notices are failing testcases of their
own: a dashboard that shows only testcases must still show why the run failed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from policyengine.tools.scenarios import Result


@dataclass(frozen=True)
class JUnitCase:
    """One testcase: where it was written and, when it failed, why (one text per failure)."""

    classname: str
    name: str
    file: str
    line: int
    failures: tuple[str, ...] = ()


@dataclass
class JUnitSuite:
    """One pack's (or overlay's) scenarios, plus its coverage and mutation verdicts."""

    name: str
    seconds: float = 0.0
    cases: list[JUnitCase] = field(default_factory=list)

    def add_results(self, results: list[Result], classname: str | None = None) -> None:
        for r in results:
            loc = r.case.location
            self.cases.append(
                JUnitCase(
                    classname=classname or _classname(r.case.file),
                    name=r.case.scenario.name,
                    file=loc.file,
                    line=loc.line,
                    failures=tuple(r.failures),
                )
            )

    def add_check(self, name: str, failure: str | None) -> None:
        """A verdict that is not a scenario (coverage, a mutation): a testcase of the suite."""
        self.cases.append(
            JUnitCase(self.name, name, self.name, 0, () if failure is None else (failure,))
        )


def _classname(file: Path) -> str:
    """``huixiao.tests.ownership``: dotted like a module path, which dashboards group by."""
    parts = [p for p in (file.parent.parent.name, file.parent.name, file.stem) if p]
    return ".".join(parts)


def junit_xml(suites: list[JUnitSuite]) -> str:
    root = ET.Element("testsuites", name="policyengine")
    total = failed = 0
    for suite in suites:
        bad = sum(bool(c.failures) for c in suite.cases)
        el = ET.SubElement(
            root,
            "testsuite",
            name=suite.name,
            tests=str(len(suite.cases)),
            failures=str(bad),
            errors="0",
            skipped="0",
            time=f"{suite.seconds:.3f}",
        )
        for case in suite.cases:
            attrs = {"classname": case.classname, "name": case.name, "file": case.file}
            if case.line:
                attrs["line"] = str(case.line)
            tc = ET.SubElement(el, "testcase", attrs)
            for text in case.failures:
                first = text.split("\n", 1)[0]
                fail = ET.SubElement(tc, "failure", message=first, type="ScenarioFailure")
                fail.text = text
        total += len(suite.cases)
        failed += bad
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
