"""``policyengine`` / ``python -m policyengine``: the command line.

``check`` (every problem of every file, ``file:line:col: CODE message (hint)``), ``eval``
(histories in JSON, JSON Lines, YAML or CSV -> tables or JSON), ``explain`` (one subject, with
the clauses' original text and what would have changed the outcome), ``report`` (one HTML
page for managers, or ``.xlsx`` statements), ``describe`` (a pack's event types, fields,
parameters and clauses), ``schema`` and ``test``.
Exit codes follow OPA's: 0 clean, 1 a policy or input error, 2 test failures; 3 is an internal
error (a bug of policyengine).

Bad input never ends in a traceback: every ``PolicyEngineError`` is printed as its message
(``file:line:col: CODE message (hint)``) and exits 1. Anything else is a bug: it is printed with
its traceback and a line asking to report it, and exits 3. A closed standard output (``eval ...
| head -1``) ends the command quietly, as the Python docs advise for SIGPIPE: the rest of the
output goes to devnull, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policyengine.errors import EventError, Location, PolicyEngineError, Problem, did_you_mean
from policyengine.language.model import policy_json_schema
from policyengine.policy import Policy, load_policy
from policyengine.runtime.decision import Decision
from policyengine.runtime.events import NAIVE_TIMES, NaiveTimes, localise, localise_instant
from policyengine.times import parse_instant
from policyengine.tools.analysis import analyze
from policyengine.tools.completion import SHELLS, completion_script
from policyengine.tools.describe import describe, render_text
from policyengine.tools.explain import explain_full, explain_json
from policyengine.tools.fmt import add_arguments as fmt_arguments
from policyengine.tools.fmt import run_args as run_fmt
from policyengine.tools.history_io import expand, read_located
from policyengine.tools.junit import JUnitSuite, junit_xml
from policyengine.tools.overlays import is_overlay_path, run_overlay
from policyengine.tools.present import LANGS
from policyengine.tools.scenarios import (
    MutationOutcome,
    PolicyCache,
    Result,
    collect,
    coverage,
    mutate,
    run_suite,
)
from policyengine.tools.tables import render
from policyengine.tools.watch import watch
from policyengine.version import __version__

INTERNAL_ERROR = 3
REPORT = (
    "policyengine: internal error (a bug, not a problem of your input). Please report it with "
    "the command line, the traceback above and, if you can, the files."
)


def main(argv: list[str] | None = None) -> int:
    """The command line: its exit code (see the module doc)."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except PolicyEngineError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print(REPORT, file=sys.stderr)
        return INTERNAL_ERROR
    return code


def _quiet_stdout() -> None:
    """Point stdout at devnull, so that flushing it at exit raises no second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a captured stdout)
        pass


POLICY_HELP = "a policy file or pack folder (or an overlay with `base:`)"
AS_OF_HELP = "decide as of this instant (ISO 8601 with an offset; default: the last event)"
PARAMS_HELP = "a YAML file of parameter overrides"


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (every subcommand): ``_main`` runs what it parses."""
    parser = argparse.ArgumentParser(
        prog="policyengine",
        description="Compile YAML policies and evaluate CRM histories against them. "
        "Exit codes: 0 clean, 1 a policy or input error, 2 test failures, 3 an internal error.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"policyengine {__version__}",
        help="print the version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, help="the command")
    check = sub.add_parser(
        "check", help="load, validate and analyse policies; every problem at file:line:col"
    )
    check.add_argument(
        "paths", nargs="+", help="policy files, pack folders, or a tree of packs (policies/)"
    )
    check.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text lines file:line:col and a summary (default), or a JSON list of findings",
    )
    check.add_argument("--strict", action="store_true", help="warnings count as errors (exit 1)")
    _overlay_option(check)
    fmt = sub.add_parser(
        "fmt",
        help="lay policy and scenario YAML out canonically (comments kept); --check by default",
    )
    fmt_arguments(fmt)
    ev = sub.add_parser("eval", help="evaluate histories (JSON, JSONL, YAML, CSV) against a policy")
    ev.add_argument("policy", help=POLICY_HELP)
    _overlay_option(ev)
    ev.add_argument("history", nargs="+", help="history files, folders of them, or globs")
    ev.add_argument("--as-of", default=None, help=AS_OF_HELP)
    ev.add_argument(
        "--format", choices=("table", "json"), default="table", help="tables (default) or JSON"
    )
    ev.add_argument("--params-file", default=None, help=PARAMS_HELP)
    ev.add_argument(
        "--lang", choices=LANGS, default="en", help="headings and statuses of the tables"
    )
    ev.add_argument(
        "--stream",
        default=None,
        metavar="OUT",
        help="one history grouped by subject (each subject's events together, events without "
        "a subject first): write each group's decision to OUT.jsonl (a line per group) or "
        "OUT.parquet (a row per group; pip install 'policyengine[parquet]') as it completes, "
        "in bounded memory; a .jsonl history is read line by line",
    )
    _time_options(ev)
    ex = sub.add_parser(
        "explain", help="why a subject has its owner, penalties and duties, with clause texts"
    )
    ex.add_argument("policy", help=POLICY_HELP)
    _overlay_option(ex)
    ex.add_argument("history", help="one history file (JSON, JSONL, YAML, CSV or .xlsx)")
    ex.add_argument("--subject", required=True, help="the customer (or case) to explain")
    ex.add_argument("--at", default=None, help="explain the owner at this instant")
    ex.add_argument("--as-of", default=None, help=AS_OF_HELP)
    ex.add_argument("--params-file", default=None, help=PARAMS_HELP)
    ex.add_argument("--lang", choices=LANGS, default="en", help="the words of the account")
    ex.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default), or JSON: {subject, text, json: {owner, ownership, penalties, "
        "obligations, trace, what_if}} as POST /v1/explain returns it",
    )
    _time_options(ex)
    rp = sub.add_parser(
        "report", help="a report for managers: HTML (timelines, statements) or .xlsx statements"
    )
    rp.add_argument("policy", help=POLICY_HELP)
    _overlay_option(rp)
    rp.add_argument("history", help="one history file (JSON, JSONL, YAML, CSV or .xlsx)")
    rp.add_argument(
        "--out", required=True, metavar="FILE", help="report.html, or statement.xlsx for Excel"
    )
    rp.add_argument("--as-of", default=None, help=AS_OF_HELP)
    rp.add_argument("--params-file", default=None, help=PARAMS_HELP)
    rp.add_argument("--lang", choices=LANGS, default="en", help="the words of the report")
    _time_options(rp)
    ds = sub.add_parser(
        "describe", help="a pack's event types and fields, parameters and clauses (for integrators)"
    )
    ds.add_argument("policy", help="a policy file or pack folder")
    _overlay_option(ds)
    ds.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or JSON"
    )
    ds.add_argument("--lang", choices=LANGS, default="en", help="the headings of the tables")
    sc = sub.add_parser("schema", help="the JSON Schema of the policy language")
    sc.add_argument("--output", default=None, help="write it to FILE instead of stdout")
    test = sub.add_parser(
        "test", help="run the YAML scenarios of packs (policies/<pack>/tests/*.yaml)"
    )
    test.add_argument("paths", nargs="+", help="scenario files, pack folders, or a tree of packs")
    test.add_argument(
        "--coverage",
        type=float,
        default=None,
        metavar="PERCENT",
        help="fail when a pack's rule coverage is below PERCENT (e.g. 100)",
    )
    test.add_argument(
        "--mutate",
        action="store_true",
        help="nudge every duration, amount and count parameter; report mutations no scenario "
        "notices",
    )
    test.add_argument(
        "--format",
        choices=("text", "json", "junit"),
        default="text",
        help="text (default), JSON, or JUnit XML for CI dashboards (a testsuite per pack)",
    )
    test.add_argument(
        "--watch",
        action="store_true",
        help="run again whenever a policy, scenario or history file under PATHS changes",
    )
    test.add_argument("-v", "--verbose", action="store_true", help="list passing scenarios too")
    test.add_argument(
        "--base",
        default=None,
        metavar="PATH",
        help="for an overlay: the base pack whose scenarios it is checked against (default: "
        "the overlay's `base:`)",
    )
    _serve_parser(sub)
    sub.add_parser(
        "lsp",
        help="a language server for editors, over stdio: check's problems as you type, "
        "completion, hover, go to definition (needs the extra: pip install 'policyengine[lsp]')",
    )
    cp = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    cp.add_argument(
        "shell",
        choices=SHELLS,
        help="the shell; e.g. `source <(policyengine completion bash)` in ~/.bashrc",
    )
    return parser


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "completion":
        print(completion_script(parser, args.shell), end="")
        return 0
    if args.command == "lsp":
        return _lsp()
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "fmt":
            return run_fmt(args)
        if args.command == "test":
            return _test(args)
        if args.command == "schema":
            return _schema(args)
        if args.command == "describe":
            return _describe(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "report":
            return _report(args)
        return _eval(args)
    except PolicyEngineError as exc:
        print(exc, file=sys.stderr)
        return 1


# ---------------------------------------------------------------- serve


def _size(text: str) -> int:
    """``5MB``, ``512KB``, ``1GB`` or bytes: a body limit (KB, MB, GB are powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", text.lower())
    if m is None or float(m[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: write 5MB, 512KB or bytes")
    return int(float(m[1]) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m[2]])


def _serve_parser(sub: Any) -> None:
    sv = sub.add_parser(
        "serve",
        help="serve policies as a JSON API over HTTP (needs the extra: pip install "
        "'policyengine[server]')",
    )
    sv.add_argument(
        "policies", nargs="+", help="policy files or pack folders; each is served by its stem"
    )
    sv.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    sv.add_argument("--port", type=int, default=8181, help="the port to listen on (8181)")
    sv.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    sv.add_argument("--log", default=None, metavar="FILE", help="the decision log (JSON lines)")
    sv.add_argument(
        "--log-inputs", action="store_true", help="write each request in full to the log"
    )
    sv.add_argument(
        "--watch", action="store_true", help="reload when a policy file changes (1 s polls)"
    )
    sv.add_argument(
        "--max-body", type=_size, default="5MB", help="largest request body (default 5MB)"
    )
    sv.add_argument(
        "--timeout", type=float, default=30.0, help="seconds an evaluation may take (503)"
    )
    sv.add_argument(
        "--snapshot-key-file",
        default=None,
        metavar="FILE",
        help="seal and verify snapshots with this secret (default: $POLICYENGINE_SNAPSHOT_KEY)",
    )


def _lsp() -> int:
    """The language server (tools/lsp.py); pygls is imported only here, as an optional extra."""
    try:
        from policyengine.tools import lsp
    except ImportError as exc:
        print(
            f"policyengine lsp needs the lsp extra ({exc.name} is missing): "
            "pip install 'policyengine[lsp]'",
            file=sys.stderr,
        )
        return 2
    return lsp.serve()


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from policyengine.tools import service
    except ImportError as exc:
        print(
            f"policyengine serve needs the server extra ({exc.name} is missing): "
            "pip install 'policyengine[server]'",
            file=sys.stderr,
        )
        return 1
    config: dict[str, Any] = {
        "paths": list(args.policies),
        "log_path": args.log,
        "log_inputs": args.log_inputs,
        "max_body": args.max_body,
        "timeout": args.timeout,
        "watch": args.watch,
        "snapshot_key_file": args.snapshot_key_file,
    }
    if args.workers > 1:
        try:  # refuse a broken policy before forking workers
            service.Registry(config["paths"])
        except ValueError as exc:
            print(f"policyengine serve: {exc}", file=sys.stderr)
            return 1
        config["per_worker_log"] = True
        os.environ[service.ENV_CONFIG] = json.dumps(config)
        uvicorn.run(
            "policyengine.tools.service:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
        )
        return 0
    key = Path(args.snapshot_key_file).read_bytes().strip() if args.snapshot_key_file else None
    try:
        app = service.create_app(
            config["paths"],
            log_path=args.log,
            log_inputs=args.log_inputs,
            max_body=args.max_body,
            timeout=args.timeout,
            snapshot_key=key,
            watch=args.watch,
        )
    except ValueError as exc:
        print(f"policyengine serve: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def _overlay_option(cmd: argparse.ArgumentParser) -> None:
    """``--overlay FILE``, repeatable: company overlays layered on the policy, in order."""
    cmd.add_argument(
        "--overlay",
        action="append",
        default=[],
        metavar="FILE",
        help="a company overlay (a file with `overlay:`) layered on the policy; repeatable",
    )


def _time_options(cmd: argparse.ArgumentParser) -> None:
    """``--calendar`` and ``--naive-times``, shared by ``eval`` and ``explain``: both read a
    history against a policy, and must read its times and working days the same way."""
    cmd.add_argument(
        "--calendar",
        default=None,
        metavar="FILE",
        help="a YAML file with a `calendar:` block (holidays, make-up days, business hours), "
        "merged with the policy's own",
    )
    cmd.add_argument(
        "--naive-times",
        choices=NAIVE_TIMES,
        default="error",
        help="timestamps without a UTC offset: refuse them (error, the default, PE204) or read "
        "them as local time in the policy's timezone (policy)",
    )
    cmd.add_argument(
        "--sheet",
        default=None,
        metavar="NAME",
        help="the sheet of an .xlsx history (default: the first; also FILE.xlsx#NAME)",
    )


# ---------------------------------------------------------------- check


def _analyzer() -> Callable[[Any], list[Any]] | None:
    """The static analysis that ``check`` runs (a seam: tests put their own in its place)."""
    return analyze


def _record(
    loc: Location | None, code: str, message: str, hint: str | None, severity: str, path: str
) -> dict[str, Any]:
    return {
        "file": loc.file if loc else path,
        "line": loc.line if loc else 1,
        "column": loc.column if loc else 1,
        "code": code,
        "message": message,
        "hint": hint,
        "severity": severity,
        "pack": path,
    }


def _packs(root: Path) -> list[Path]:
    """What ``check`` checks under ``root``: a file, a pack (a folder with ``.yaml`` policy files
    directly in it), or every pack of a tree of packs (``tests/`` folders are not packs). A folder
    with no pack under it is returned as it is, for ``load_policy`` to refuse (PE116)."""
    if not root.is_dir() or _is_pack(root):
        return [root]
    return _packs_under(root) or [root]


def _is_pack(folder: Path) -> bool:
    try:
        return any(p.suffix in (".yaml", ".yml") and p.is_file() for p in folder.iterdir())
    except OSError:  # unreadable: checked as it is, for load_policy to report
        return True


def _packs_under(folder: Path) -> list[Path]:
    found: list[Path] = []
    try:
        subs = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []
    for sub in subs:
        if sub.name == "tests" or sub.name.startswith((".", "_")):
            continue
        found.extend([sub] if _is_pack(sub) else _packs_under(sub))
    return found


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _check(args: argparse.Namespace) -> int:
    """Every pack is checked, even after a broken one; problems are listed all at once, then a
    summary line (text format). Folders of packs are walked (``_packs``)."""
    found: list[dict[str, Any]] = []
    analyze = _analyzer()
    targets = [str(pack) for arg in args.paths for pack in _packs(Path(arg))]
    for path in targets:
        try:
            policy = load_policy([path, *args.overlay])
        except PolicyEngineError as exc:
            found.extend(
                _record(p.location, p.code, p.message, p.hint, "error", path) for p in exc.problems
            )
            continue
        if analyze is None:
            continue
        for f in analyze(policy if args.overlay else path):  # a path: the seam tests use
            rec = _record(
                getattr(f, "location", None),
                str(getattr(f, "code", "")),
                str(getattr(f, "message", "")),
                getattr(f, "hint", None),
                str(getattr(f, "severity", "warning")),
                path,
            )
            rec["related"] = [str(r) for r in getattr(f, "related", None) or []]
            found.append(rec)
    if args.format == "json":
        print(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        for r in found:
            word = "warning: " if r["severity"] == "warning" else ""
            hint = f" ({r['hint']})" if r["hint"] else ""
            related = "".join(f" [see {x}]" for x in r.get("related", []))
            print(
                f"{r['file']}:{r['line']}:{r['column']}: {r['code']} {word}{r['message']}"
                f"{hint}{related}",
                file=sys.stderr,
            )
    errors = sum(r["severity"] != "warning" for r in found)
    warnings = len(found) - errors
    if args.format != "json":
        print(
            f"{_plural(len(targets), 'pack')} checked: {_plural(errors, 'error')}, "
            f"{_plural(warnings, 'warning')}",
            file=sys.stderr,
        )
    return 1 if errors or (warnings and args.strict) else 0


# ---------------------------------------------------------------- eval / explain


def _progress(done: int, total: int) -> None:
    filled = 20 * done // total
    sys.stderr.write(f"\r[{'#' * filled}{' ' * (20 - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _decide(
    policy: Policy,
    path: Path,
    as_of: str | None,
    naive_times: NaiveTimes = "error",
    sheet: str | None = None,
) -> tuple[Decision, list[Any]]:
    """The decision of one history file, and its events as evaluated: with ``naive_times``
    ``"policy"`` local times are given their offsets first, so that ``explain`` shows the
    instants that were decided on. An event error is reported at its line (or cell) in the
    file; a file read in another encoding than UTF-8 is said so on stderr."""
    history = read_located(path, policy, sheet=sheet)
    for notice in history.notices:
        print(notice, file=sys.stderr)
    events = history.events
    if naive_times == "policy":
        events = localise(policy.compiled, events)
        as_of = localise_instant(as_of, policy.compiled.timezone)
    _check_as_of(as_of)
    try:
        return policy.evaluate(events, as_of=as_of), events
    except EventError as exc:
        raise history.relocate(exc) from None


def _check_as_of(as_of: str | None) -> None:
    """A bad ``--as-of`` is the command line's mistake, not the history file's: reported as
    the argument, before the history's problems are located in the file."""
    if as_of is None:
        return
    try:
        parse_instant(as_of, "--as-of")
    except EventError as exc:
        raise EventError(
            [
                Problem(
                    p.code,
                    p.message,
                    hint="write --as-of as ISO 8601 with a UTC offset, e.g. "
                    "--as-of 2026-03-05T12:00:00+08:00; a local time without the offset "
                    "needs --naive-times policy",
                    field="--as-of",
                )
                for p in exc.problems
            ]
        ) from None


def _load(args: argparse.Namespace) -> Policy:
    """The policy of ``eval`` and ``explain``, with its parameter and calendar files."""
    return load_policy(
        [args.policy, *args.overlay], params_file=args.params_file, calendar=args.calendar
    )


def _eval(args: argparse.Namespace) -> int:
    # `eval POLICY OVERLAY.yaml ... HISTORY...`: overlay files given as paths layer in order
    while args.history and is_overlay_path(args.history[0]):
        args.overlay.append(args.history.pop(0))
    policy = _load(args)
    files = expand(args.history)
    if not files:
        print(f"no history files match {' '.join(args.history)}", file=sys.stderr)
        return 1
    if args.stream is not None:
        return _eval_stream(args, policy, files)
    bar = len(files) > 1 and sys.stderr.isatty()
    failed = False
    out: list[dict[str, Any]] = []
    for n, path in enumerate(files, start=1):
        try:
            decision, _ = _decide(policy, path, args.as_of, args.naive_times, args.sheet)
        except PolicyEngineError as exc:
            if bar:
                sys.stderr.write("\n")
            print(exc, file=sys.stderr)
            failed = True
        else:
            if args.format == "json":
                body = decision.model_dump(mode="json", exclude={"trace"})
                out.append({"history": str(path), "decision": body})
            else:
                title = f"{path}: {decision.policy} {decision.version}" if len(files) > 1 else None
                print(render(decision, title, args.lang))
                if len(files) > 1:
                    print()
        if bar:
            _progress(n, len(files))
    if args.format == "json" and out:
        body_out: Any = out[0]["decision"] if len(files) == 1 else out
        print(json.dumps(body_out, ensure_ascii=False, indent=2))
    return 1 if failed else 0


def _eval_stream(args: argparse.Namespace, policy: Policy, files: list[Path]) -> int:
    """``eval --stream OUT``: one history, group by group (tools/stream_files.py)."""
    if len(files) != 1:
        print("--stream takes one history file", file=sys.stderr)
        return 1
    from policyengine.tools.stream_files import stream_file

    _check_as_of(args.as_of)
    try:
        summary = stream_file(
            policy, files[0], args.stream, as_of=args.as_of, naive_times=args.naive_times
        )
    except ImportError as exc:  # the parquet extra
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot write {args.stream}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.stream}: {summary.groups} groups, {summary.subjects} subjects, "
        f"{summary.events} events ({summary.shared} without a subject)",
        file=sys.stderr,
    )
    return 0


def _explain(args: argparse.Namespace) -> int:
    policy = _load(args)
    decision, events = _decide(
        policy, Path(args.history), args.as_of, args.naive_times, args.sheet
    )
    known = set(decision.ownerships) | {o.subject for o in decision.obligations if o.subject}
    known |= {p.subject for p in decision.penalties if p.subject}
    known |= {t.subject for t in decision.trace if t.subject}
    if args.subject not in known:
        hint = did_you_mean(args.subject, sorted(known))
        print(
            f"{args.subject!r} does not appear in the decision" + (f" ({hint})" if hint else ""),
            file=sys.stderr,
        )
        return 1
    at = args.at
    if args.naive_times == "policy":
        at = localise_instant(at, policy.compiled.timezone)
    if args.format == "json":
        data = explain_json(decision, args.subject, policy, at=at, history=events, lang=args.lang)
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(explain_full(decision, args.subject, policy, at=at, history=events, lang=args.lang))
    return 0


def _report(args: argparse.Namespace) -> int:
    """``report POLICY HISTORY --out FILE``: Excel statements for ``.xlsx``, else one HTML page."""
    policy = _load(args)
    decision, events = _decide(
        policy, Path(args.history), args.as_of, args.naive_times, args.sheet
    )
    out = Path(args.out)
    if out.suffix.lower() == ".xlsx":
        from policyengine.tools.statements import write_workbook

        write_workbook(decision, out, lang=args.lang, policy=policy)
    else:
        from policyengine.tools.report import render_html

        text = render_html(policy, decision, lang=args.lang, events=events)
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _describe(args: argparse.Namespace) -> int:
    """``describe POLICY``: what an integrator needs to build a history (tools/describe.py)."""
    desc = describe(load_policy([args.policy, *args.overlay]))
    if args.format == "json":
        print(json.dumps(desc, ensure_ascii=False, indent=2))
    else:
        print(render_text(desc, args.lang))
    return 0


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(policy_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def _test(args: argparse.Namespace) -> int:
    if not args.watch:
        return _test_once(args)

    def once() -> int:  # a policy broken mid-edit is reported, and the watch goes on
        try:
            return _test_once(args)
        except PolicyEngineError as exc:
            print(exc, file=sys.stderr, flush=True)
            return 1

    return watch(args.paths, once)


def _test_once(args: argparse.Namespace) -> int:
    """Scenarios, then coverage, then (on request) mutations; 2 if anything falls short."""
    failed = False
    report: list[dict[str, Any]] = []
    suites: list[JUnitSuite] = []
    for path in args.paths:
        started = time.perf_counter()
        if is_overlay_path(path):
            found = run_overlay(path, args.base)
            cov = found.coverage()
            below = args.coverage is not None and cov.percent < args.coverage
            failed |= not found.passed or below  # changed base scenarios are not failures
            if args.format == "junit":
                js = JUnitSuite(_shown(Path(path)), time.perf_counter() - started)
                js.add_results(found.own)
                js.add_check("coverage", _below(cov, args.coverage) if below else None)
                suites.append(js)
                continue
            if args.format == "json":
                report.append({**found.as_json(), "coverage": _coverage_json(cov, below)})
                continue
            print(found.report(args.verbose))
            print(cov.report() + ("  BELOW THRESHOLD" if below else ""))
            continue
        for suite in collect(path):
            cache = PolicyCache()
            results = run_suite(suite, cache)
            cov = coverage(load_policy(suite.policy_path), results)
            below = args.coverage is not None and cov.percent < args.coverage
            outcomes: list[MutationOutcome] = mutate(suite) if args.mutate else []
            survivors = [o for o in outcomes if o.survived and o.accepted is None]
            failed |= any(not r.passed for r in results) or below or bool(survivors)
            if args.format == "junit":
                js = JUnitSuite(_shown(suite.policy_path), time.perf_counter() - started)
                js.add_results(results)
                js.add_check("coverage", _below(cov, args.coverage) if below else None)
                for o in outcomes:
                    survived = o.survived and o.accepted is None
                    why = f"no scenario notices {o.mutation.label}" if survived else None
                    js.add_check(f"mutation {o.mutation.label}", why)
                suites.append(js)
                started = time.perf_counter()
                continue
            if args.format == "json":
                report.append(_json(suite.policy_path, results, cov, outcomes, below))
                continue
            _print_text(suite.policy_path, results, cov, outcomes, below, args.verbose)
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
    if args.format == "junit":
        print(junit_xml(suites), flush=True)
    return 2 if failed else 0


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _below(cov: Any, threshold: float) -> str:
    missed = ", ".join(cov.never_fired) or "none"
    return f"rule coverage {cov.percent:.1f}% is below {threshold:g}% (never fired: {missed})"


def _print_text(
    policy: Path,
    results: list[Result],
    cov: Any,
    outcomes: list[MutationOutcome],
    below: bool,
    verbose: bool,
) -> None:
    passed = sum(r.passed for r in results)
    print(f"{policy}: {passed}/{len(results)} scenarios pass")
    for r in results:
        if verbose or not r.passed:
            print(r.report())
    print(cov.report() + ("  BELOW THRESHOLD" if below else ""))
    if outcomes:
        killed = sum(not o.survived for o in outcomes)
        print(f"  mutations killed: {killed}/{len(outcomes)}")
        for o in outcomes:
            if o.survived:
                why = f" (accepted: {o.accepted})" if o.accepted else ""
                print(f"    survived: {o.mutation.label}{why}")


def _json(
    policy: Path,
    results: list[Result],
    cov: Any,
    outcomes: list[MutationOutcome],
    below: bool,
) -> dict[str, Any]:
    return {
        "policy": str(policy),
        "scenarios": [
            {
                "name": r.case.scenario.name,
                "location": str(r.case.location),
                "passed": r.passed,
                "failures": r.failures,
            }
            for r in results
        ],
        "coverage": _coverage_json(cov, below),
        "mutations": [
            {
                "mutation": o.mutation.label,
                "killed_by": o.killed_by,
                "accepted": o.accepted,
            }
            for o in outcomes
        ],
    }


def _coverage_json(cov: Any, below: bool) -> dict[str, Any]:
    return {
        "percent": cov.percent,
        "never_fired": cov.never_fired,
        "clauses": cov.clauses,
        "below_threshold": below,
    }


if __name__ == "__main__":
    sys.exit(main())
