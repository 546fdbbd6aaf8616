"""``policyengine serve``: the policies as a JSON service over HTTP (FastAPI + uvicorn).

``create_app(paths)`` builds the app: one named policy per path (its stem, ``huixiao``) in
``app.state.registry``. ``POST /v1/evaluate`` (the decision's dump), ``/v1/resume``
(``{decision, snapshot}``), ``/v1/explain`` (``{text, json}``); ``GET /v1/policy``,
``/healthz``, ``/docs``. README "Run as a service" documents them.

Refusals are JSON ``{"error": {"class", "message", "problems"}}``: a ``PolicyEngineError`` or a
body that is not JSON of the right shape (PE207) 400, an unknown policy 404, a body over
``max_body`` 413, an evaluation over ``timeout`` 503, a bug of ours 500 ("report it").
Evaluations run in a thread awaited with ``asyncio.wait_for``; a thread cannot be killed, so
after a timeout it runs to its end and its result is dropped (``max_body`` bounds the work).

Each decision and refusal is one JSON line in the decision log (size-rotated): its id (header
``X-Decision-Id``), wall-clock time (the service's; evaluation never reads it), the policy's
id and fingerprint, the SHA-256 of the canonical request JSON, ``as_of``, counts, and with
``log_inputs`` the request. ``Registry.reload`` (SIGHUP, or ``watch``: mtimes polled every
second) swaps each policy that loads; one that fails keeps its old version serving, and its
``PolicyError`` is returned, logged and shown by ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import logging.handlers
import os
import signal
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from policyengine.backends.snapshot_codec import fingerprint
from policyengine.errors import Code, EventError, PolicyEngineError, Problem, did_you_mean
from policyengine.policy import Policy, load_policy
from policyengine.runtime.decision import Decision
from policyengine.tools.describe import clauses, event_types
from policyengine.tools.explain import explain_json
from policyengine.tools.present import LANGS

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_TIMEOUT",
    "ENV_CONFIG",
    "ENV_SNAPSHOT_KEY",
    "Registry",
    "ServiceError",
    "app_from_env",
    "create_app",
    "policy_name",
]

DEFAULT_MAX_BODY = 5 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5
PARAMS_CACHE = 32  # policies loaded with parameter overrides, per registry (least recent out)
# the secret that seals and verifies snapshots (text, UTF-8), when no key file is given
ENV_SNAPSHOT_KEY = "POLICYENGINE_SNAPSHOT_KEY"
# ``serve --workers N``: the configuration each uvicorn worker's ``app_from_env`` reads
ENV_CONFIG = "POLICYENGINE_SERVE_CONFIG"
REPORT = "an internal error of policyengine (a bug, not a problem of your input): please report it"

log = logging.getLogger("policyengine.service")


class ServiceError(Exception):
    """A refusal of the service itself (not of the engine): status, class, message, hint."""

    def __init__(self, status: int, cls: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.cls = cls
        self.message = message
        self.hint = hint


def policy_name(path: str) -> str:
    """The name a served policy goes by: its file's or folder's stem."""
    return Path(path).stem or str(path)


# ---------------------------------------------------------------- the registry


def _watched(path: Path) -> dict[str, float]:
    """The mtime of every file a policy path reads (a folder: its YAML files, recursively)."""
    files = [path] if not path.is_dir() else [path, *path.rglob("*.y*ml")]
    out: dict[str, float] = {}
    for f in files:
        with contextlib.suppress(OSError):
            out[str(f)] = f.stat().st_mtime_ns
    return out


class Registry:
    """The served policies by name; reloads swap a policy only when it loads."""

    def __init__(self, paths: list[str]) -> None:
        if not paths:
            raise ValueError("serve needs at least one policy path")
        self._paths: dict[str, str] = {}
        for p in paths:
            name = policy_name(p)
            if name in self._paths:
                raise ValueError(
                    f"two policies named {name!r} ({self._paths[name]} and {p}): a served "
                    "policy is named by its file or folder stem; rename one"
                )
            self._paths[name] = p
        self._lock = threading.Lock()
        self._policies = {name: load_policy(p) for name, p in self._paths.items()}
        self._fingerprints = {n: fingerprint(p.program) for n, p in self._policies.items()}
        self._with_params: OrderedDict[tuple[str, str], tuple[Policy, str]] = OrderedDict()
        self._stamp = self._mtimes()
        self.errors: list[str] = []  # the last reload's failures (empty: every policy loaded)

    def names(self) -> list[str]:
        return list(self._paths)

    def _name(self, name: str | None) -> str:
        if name is None:
            return next(iter(self._paths))
        if name not in self._paths:
            hint = did_you_mean(name, self.names())
            raise ServiceError(
                404,
                "UnknownPolicy",
                f"no policy named {name!r} is served",
                hint or f"name one of: {', '.join(self.names())}",
            )
        return name

    def get(self, name: str | None = None) -> Policy:
        """The policy named ``name`` (``None``: the first served); unknown: a 404 refusal."""
        return self._policies[self._name(name)]

    def fingerprint(self, name: str | None = None) -> str:
        return self._fingerprints[self._name(name)]

    def resolve(
        self, name: str | None, params: Mapping[str, Any] | None
    ) -> tuple[str, Policy, str]:
        """Name, policy and fingerprint, with ``params`` overrides (loaded once, cached)."""
        key = self._name(name)
        if not params:
            with self._lock:
                return key, self._policies[key], self._fingerprints[key]
        canon = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str)
        with self._lock:
            hit = self._with_params.get((key, canon))
            if hit is not None:
                self._with_params.move_to_end((key, canon))
                return key, hit[0], hit[1]
        policy = load_policy(self._paths[key], params=params)
        entry = (policy, fingerprint(policy.program))
        with self._lock:
            self._with_params[(key, canon)] = entry
            while len(self._with_params) > PARAMS_CACHE:
                self._with_params.popitem(last=False)
        return key, entry[0], entry[1]

    def _mtimes(self) -> dict[str, dict[str, float]]:
        return {n: _watched(Path(p)) for n, p in self._paths.items()}

    def changed(self) -> bool:
        """Whether a policy file changed (mtime), appeared or went since the last load."""
        return self._mtimes() != self._stamp

    def reload(self) -> list[str]:
        """Load every policy again; swap those that load. Returns (and logs) the errors of
        those that did not: they keep serving their previous version."""
        stamp = self._mtimes()
        errors: list[str] = []
        fresh: dict[str, tuple[Policy, str]] = {}
        for name, path in self._paths.items():
            try:
                policy = load_policy(path)
            except PolicyEngineError as exc:
                errors.append(f"{name}: {exc}")
                log.error("reload of %s failed, the previous version serves on:\n%s", name, exc)
                continue
            fresh[name] = (policy, fingerprint(policy.program))
        with self._lock:
            for name, (policy, fp) in fresh.items():
                self._policies[name] = policy
                self._fingerprints[name] = fp
            self._with_params.clear()
            self._stamp = stamp
            self.errors = errors
        if fresh:
            log.info("reloaded %s", ", ".join(fresh))
        return errors


# ---------------------------------------------------------------- the decision log


class DecisionLog:
    """One JSON line per decision, rotated by size; ``None`` path: a log that drops lines."""

    def __init__(self, path: str | None, log_inputs: bool = False) -> None:
        self.log_inputs = log_inputs
        self._logger: logging.Logger | None = None
        if path is None:
            return
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger(f"policyengine.service.decisions.{uuid.uuid4().hex}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        self._logger = logger

    def write(self, entry: Mapping[str, Any]) -> None:
        if self._logger is not None:
            self._logger.info(json.dumps(entry, ensure_ascii=False, default=str))

    def close(self) -> None:
        if self._logger is not None:
            for h in list(self._logger.handlers):
                h.close()
                self._logger.removeHandler(h)


def _counts(decision: Decision, events: int) -> dict[str, int]:
    return {
        "events": events,
        "owners": len(decision.ownerships),
        "penalties": len(decision.penalties),
        "obligations": len(decision.obligations),
        "obligations_open": sum(o.status in ("open", "overdue") for o in decision.obligations),
        "violations": len(decision.violations),
        "rejected": len(decision.rejected),
    }


# ---------------------------------------------------------------- requests


def _bad(message: str, hint: str | None = None) -> EventError:
    """A request body that is not JSON or not of the shape the endpoint takes: PE207."""
    return EventError([Problem(Code.MALFORMED_HISTORY, message, hint=hint)])


@dataclass(frozen=True, slots=True)
class _Body:
    data: dict[str, Any]
    digest: str


async def _read(request: Request, limit: int) -> _Body:
    """The request's JSON object, refused over ``limit`` bytes (413) or when not JSON (400)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServiceError(
            413,
            "RequestTooLarge",
            f"the body is {declared} bytes, over the {limit} allowed",
            "send fewer events per request (serve --max-body raises the limit)",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError(
                413,
                "RequestTooLarge",
                f"the body is over the {limit} bytes allowed",
                "send fewer events per request (serve --max-body raises the limit)",
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"the request body is not valid JSON ({exc})", "send a JSON object") from None
    except RecursionError:
        raise _bad("the request body nests too deeply", "send a flat JSON object") from None
    if not isinstance(data, dict):
        raise _bad(
            f"the request body is a JSON {type(data).__name__}, not an object",
            'send {"events": [...], ...}',
        )
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _Body(data, hashlib.sha256(canon.encode("utf-8")).hexdigest())


def _field(
    body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], required: bool = False
) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise _bad(f"the request has no {name!r}", f"add {name!r} to the JSON object")
        return None
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _bad(
            f"{name!r} is a JSON {type(value).__name__}, not {want}",
            f"send {name!r} as {want}",
        )
    return value


_KNOWN = {
    "evaluate": {"events", "as_of", "params", "policy"},
    "resume": {"snapshot", "events", "as_of", "policy"},
    "explain": {"events", "subject", "as_of", "at", "lang", "policy"},
}


def _check_keys(body: Mapping[str, Any], kind: str) -> None:
    for key in body:
        if key not in _KNOWN[kind]:
            hint = did_you_mean(key, sorted(_KNOWN[kind]))
            raise _bad(
                f"unknown field {key!r} in the request", hint or f"use {sorted(_KNOWN[kind])}"
            )


def _events(body: Mapping[str, Any]) -> list[Any]:
    events: list[Any] = _field(body, "events", list, required=True)
    return events


def _policy_name(request: Request, body: Mapping[str, Any] | None = None) -> str | None:
    name = body.get("policy") if body is not None else None
    if name is not None and not isinstance(name, str):
        raise _bad("'policy' is not a text", "name a served policy, as /healthz lists them")
    return name or request.query_params.get("policy")


def _problem(p: Problem) -> dict[str, Any]:
    return {
        "code": p.code,
        "message": p.message,
        "location": None if p.location is None else str(p.location),
        "event_id": p.event_id,
        "field": p.field,
        "hint": p.hint,
    }


def _error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, PolicyEngineError):
        problems = [_problem(p) for p in exc.problems]
        return 400, {"class": type(exc).__name__, "message": str(exc), "problems": problems}
    if isinstance(exc, ServiceError):
        return exc.status, {
            "class": exc.cls,
            "message": exc.message,
            "hint": exc.hint,
            "problems": [],
        }
    return 500, {"class": "InternalError", "message": REPORT, "problems": []}


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
    return Response(body, status, headers=dict(headers or {}), media_type="application/json")


# ---------------------------------------------------------------- the application


_FIELD_KEYS = ("name", "type", "optional", "enum")


def _policy_info(name: str, policy: Policy, fp: str, names: list[str]) -> dict[str, Any]:
    compiled = policy.compiled
    return {
        "name": name,
        "policies": names,
        "id": policy.id,
        "version": policy.version,
        "fingerprint": fp,
        "timezone": compiled.timezone,
        "currency": compiled.currency,
        "subject_field": compiled.subject_field,
        "clauses": clauses(policy),
        "events": {  # the fields as `describe` reads them (tools/describe.py), four keys each
            etype: [{k: f[k] for k in _FIELD_KEYS} for f in spec["fields"]]
            for etype, spec in event_types(policy).items()
        },
        "params": policy.params,
        "rules": policy.rule_ids,
    }


def _key(snapshot_key: bytes | str | None) -> bytes | None:
    if snapshot_key is None:
        env = os.environ.get(ENV_SNAPSHOT_KEY)
        return env.encode("utf-8") if env else None
    key = snapshot_key.encode("utf-8") if isinstance(snapshot_key, str) else snapshot_key
    if not key:
        raise ValueError("the snapshot key is empty: a seal needs a secret")
    return key


def create_app(
    paths: list[str],
    *,
    log_path: str | None = None,
    log_inputs: bool = False,
    max_body: int = DEFAULT_MAX_BODY,
    timeout: float = DEFAULT_TIMEOUT,
    snapshot_key: bytes | str | None = None,
    watch: bool = False,
    watch_interval: float = 1.0,
) -> FastAPI:
    """The service over the policies at ``paths`` (module doc). ``snapshot_key``: seal
    snapshots and verify them (default: ``$POLICYENGINE_SNAPSHOT_KEY``, else unsealed)."""
    registry = Registry(paths)
    decisions = DecisionLog(log_path, log_inputs)
    key = _key(snapshot_key)

    async def reload() -> list[str]:
        return await asyncio.to_thread(registry.reload)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[Any]] = set()

        def on_hup() -> None:
            log.info("SIGHUP: reloading the policies")
            task = loop.create_task(reload())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        hup = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, on_hup)
            hup = True
        watcher = loop.create_task(_watch(registry, watch_interval)) if watch else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            decisions.close()

    app = FastAPI(
        title="policyengine",
        description="YAML customer-management policies evaluated over event histories",
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.decisions = decisions
    app.state.max_body = max_body
    app.state.timeout = timeout

    @app.exception_handler(PolicyEngineError)
    async def _engine_error(request: Request, exc: PolicyEngineError) -> Response:
        return _refusal(exc)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return _refusal(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _refusal(_bad(f"the request is not of the shape the endpoint takes: {exc}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        cls = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return _json(
            {"error": {"class": cls, "message": str(exc.detail), "problems": []}},
            exc.status_code,
            exc.headers,
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _refusal(exc)

    def _refusal(exc: BaseException, decision_id: str | None = None) -> Response:
        status, body = _error_body(exc)
        headers = {"X-Decision-Id": decision_id} if decision_id else None
        return _json({"error": body}, status, headers)

    async def _decide(
        request: Request,
        kind: str,
        work: Callable[[Mapping[str, Any], Policy], tuple[Any, Decision, int]],
    ) -> Response:
        """Read the body, run ``work`` (-> response data, decision, events) in a thread
        within the timeout, log the line, answer."""
        decision_id = str(uuid.uuid4())
        started = time.time()
        entry: dict[str, Any] = {"decision_id": decision_id, "kind": kind}
        body: _Body | None = None
        try:
            body = await _read(request, max_body)
            entry["input_sha256"] = body.digest
            _check_keys(body.data, kind)
            params = _field(body.data, "params", dict) if kind == "evaluate" else None
            name = _policy_name(request, body.data)
            as_of = _field(body.data, "as_of", str)
            entry["as_of"] = as_of

            def run() -> tuple[Any, Decision, int, Policy, str, str]:
                pname, policy, fp = registry.resolve(name, params)
                data, decision, events = work(body.data, policy)
                return json.dumps(data, ensure_ascii=False), decision, events, policy, pname, fp

            try:
                text, decision, n, policy, pname, fp = await asyncio.wait_for(
                    asyncio.to_thread(run), timeout
                )
            except TimeoutError:
                raise ServiceError(
                    503,
                    "Timeout",
                    f"the evaluation took longer than {timeout:g} seconds",
                    "send a shorter history, or raise serve --timeout",
                ) from None
        except Exception as exc:
            entry.update(_when(started), outcome="refused", status=_error_body(exc)[0])
            if isinstance(exc, PolicyEngineError):
                entry["codes"] = exc.codes
            if decisions.log_inputs and body is not None:
                entry["input"] = body.data
            decisions.write(entry)
            if not isinstance(exc, PolicyEngineError | ServiceError):
                log.exception("internal error on %s", request.url.path)
            return _refusal(exc, decision_id)
        entry.update(
            _when(started),
            outcome="decided",
            policy={"name": pname, "id": policy.id, "version": policy.version, "fingerprint": fp},
            as_of=None if decision.as_of is None else decision.as_of.isoformat(),
            counts=_counts(decision, n),
        )
        if decisions.log_inputs:
            entry["input"] = body.data
        decisions.write(entry)
        return Response(
            text.encode("utf-8"),
            200,
            headers={"X-Decision-Id": decision_id},
            media_type="application/json",
        )

    def evaluate(body: Mapping[str, Any], policy: Policy) -> tuple[Any, Decision, int]:
        events = _events(body)
        decision = policy.evaluate(events, as_of=body.get("as_of"), resumable=False)
        return decision.model_dump(mode="json"), decision, len(events)

    def resume(body: Mapping[str, Any], policy: Policy) -> tuple[Any, Decision, int]:
        events = _events(body)
        snapshot = _field(body, "snapshot", dict)
        as_of = body.get("as_of")
        if snapshot is None:  # the first call: evaluate, and hand back the first snapshot
            decision = policy.evaluate(events, as_of=as_of)
        else:
            decision = policy.resume(snapshot, events, as_of=as_of, key=key)
        data = {
            "decision": decision.model_dump(mode="json"),
            "snapshot": decision.snapshot(key=key),
            "resumed": _resumed(decision),
        }
        return data, decision, len(events)

    def explain(body: Mapping[str, Any], policy: Policy) -> tuple[Any, Decision, int]:
        events = _events(body)
        subject: str = _field(body, "subject", str, required=True)
        lang = _field(body, "lang", str) or "en"
        if lang not in LANGS:
            raise _bad(f"unknown lang {lang!r}", f"use one of {', '.join(LANGS)}")
        at = _field(body, "at", str)
        decision = policy.evaluate(events, as_of=body.get("as_of"), resumable=False)
        known = set(decision.ownerships) | {o.subject for o in decision.obligations if o.subject}
        known |= {p.subject for p in decision.penalties if p.subject}
        known |= {t.subject for t in decision.trace if t.subject}
        if subject not in known:
            raise ServiceError(
                400,
                "UnknownSubject",
                f"{subject!r} does not appear in the decision",
                did_you_mean(subject, sorted(known)),
            )
        data = explain_json(decision, subject, policy, at=at, history=events, lang=lang)
        return data, decision, len(events)

    @app.post("/v1/evaluate", summary="decide a history: decision.model_dump(mode='json')")
    async def post_evaluate(request: Request) -> Response:
        return await _decide(request, "evaluate", evaluate)

    @app.post("/v1/resume", summary="continue a snapshot with new events: {decision, snapshot}")
    async def post_resume(request: Request) -> Response:
        return await _decide(request, "resume", resume)

    @app.post("/v1/explain", summary="why a subject has its owner, penalties and duties")
    async def post_explain(request: Request) -> Response:
        return await _decide(request, "explain", explain)

    @app.get("/v1/policy", summary="the policy: id, version, fingerprint, clauses, event types")
    async def get_policy(request: Request, policy: str | None = None) -> Response:
        name = registry._name(policy)
        info = _policy_info(name, registry.get(name), registry.fingerprint(name), registry.names())
        return _json(info)

    @app.get("/healthz", summary="liveness, the served policies and the last reload's errors")
    async def healthz() -> Response:
        policies = [
            {"name": n, "id": registry.get(n).id, "fingerprint": registry.fingerprint(n)}
            for n in registry.names()
        ]
        return _json({"status": "ok", "policies": policies, "reload_errors": registry.errors})

    _include_page(app)
    return app


def _resumed(decision: Decision) -> dict[str, Any] | None:
    info = decision.resumed
    if info is None:
        return None
    return {"mode": info.mode, "applied": info.applied, "reason": info.reason}


def _when(started: float) -> dict[str, Any]:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    return {"time": stamp, "ms": round((now - started) * 1000, 3)}


def _include_page(app: FastAPI) -> None:
    """The web page (``GET /`` and its upload, ``tools/service_page.py``): it reads only
    ``app.state`` (the registry, ``max_body``), never this module."""
    from policyengine.tools.service_page import router

    app.include_router(router)


async def _watch(registry: Registry, interval: float) -> None:
    """``--watch``: reload when a policy file's mtime changes (polled every ``interval``)."""
    while True:
        await asyncio.sleep(interval)
        try:
            if await asyncio.to_thread(registry.changed):
                await asyncio.to_thread(registry.reload)
        except Exception:  # a bug of ours: keep watching, keep serving
            log.exception("watching the policy files failed")


def app_from_env() -> FastAPI:
    """``uvicorn --factory policyengine.tools.service:app_from_env``: the app ``serve
    --workers N`` runs in each worker, configured by ``$POLICYENGINE_SERVE_CONFIG`` (JSON of
    ``create_app``'s arguments). With several workers, each writes its own decision log,
    ``PATH.PID``: a size-rotated file cannot be shared between processes."""
    config = json.loads(os.environ[ENV_CONFIG])
    log_path = config.get("log_path")
    if log_path and config.pop("per_worker_log", False):
        log_path = f"{log_path}.{os.getpid()}"
    key_file = config.pop("snapshot_key_file", None)
    key = Path(key_file).read_bytes().strip() if key_file else None
    return create_app(
        config["paths"],
        log_path=log_path,
        log_inputs=bool(config.get("log_inputs")),
        max_body=int(config.get("max_body", DEFAULT_MAX_BODY)),
        timeout=float(config.get("timeout", DEFAULT_TIMEOUT)),
        snapshot_key=key,
        watch=bool(config.get("watch")),
    )
