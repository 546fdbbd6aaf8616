"""The page of the HTTP service (issue 18): upload a history, see what the pack decides.

``GET /`` serves one self-contained page (inline CSS and a little inline script, no CDN, no
URL to anywhere else): choose a pack (the names of ``app.state.registry``), drop an Excel, CSV,
JSON or YAML history on it (or choose the file), and the page shows the owners, the fines and
the duties, an ownership timeline per customer (``tools.report``'s SVG) and, under every line,
why (``tools.explain``'s account of that customer). Chinese by default, ``?lang=en`` switches;
the words are ``tools.present``'s.

``POST /v1/page/decide`` (multipart: ``file``, ``policy``, ``lang``, ``naive_times``, default
``"policy"``: spreadsheets hold local times) answers an HTML fragment the page inserts; a
history that cannot be read or evaluated answers HTTP 400 with a fragment listing the PE codes
at their place in the file (``history.xlsx:Sheet1!D7``). Nothing is kept: the upload is read in
memory, written to a temporary file only for the reader, and that file is deleted at once.
Every text shown is escaped (``html.escape``).

The service core (``tools.service``) includes ``router``; this module reads only
``request.app.state`` (``registry``: ``names()`` and ``get(name)``; an upload limit in bytes if
the app sets one) so that it never imports the core back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from policyengine.errors import EventError, PolicyEngineError, Problem
from policyengine.runtime.decision import Decision
from policyengine.runtime.events import NaiveTimes
from policyengine.tools.explain import explain_full
from policyengine.tools.history_io import SUFFIXES, read_located
from policyengine.tools.present import NOTHING, Lang, money, number, plain, when, word
from policyengine.tools.report import (
    _CSS,
    _amount,
    _axis,
    _cited,
    _clauses,
    _customer,
    _events,
    _legend,
    _rules,
    _who,
    anchor,
    customers_of,
)

if TYPE_CHECKING:
    from policyengine.policy import Policy

__all__ = ["DEFAULT_UPLOAD_LIMIT", "decide_fragment", "error_fragment", "page", "router"]

router = APIRouter()

DEFAULT_UPLOAD_LIMIT: Final = 5 * 1024 * 1024  # bytes, when the app sets no limit of its own
# the names an app may keep its upload limit under (bytes), first found wins
_LIMIT_NAMES: Final = ("max_body", "max_upload_bytes", "upload_limit", "max_upload")
_NAIVE: Final = ("policy", "error")
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")

# the page's own words (the rest are present.word's)
_PAGE_WORDS: Final[dict[str, tuple[str, str]]] = {
    "page_title": ("Policy check", "制度执行检查"),
    "pack": ("pack", "制度包"),
    "history": ("history", "历史记录"),
    "drop": (
        "drop an Excel, CSV or JSON history here, or choose the file",
        "把 Excel、CSV 或 JSON 历史记录拖到这里，或选择文件",
    ),
    "decide": ("decide", "判定"),
    "deciding": ("deciding…", "判定中…"),
    "why": ("why", "为什么"),
    "naive_times": ("times without an offset", "无时区的时间"),
    "naive_policy": ("local times of the pack's timezone", "按制度包时区的本地时间"),
    "naive_error": ("refused", "拒绝"),
    "not_kept": ("Nothing you upload is kept.", "上传的文件不会被保存。"),
    "error_title": ("The history could not be decided", "无法判定该历史记录"),
    "no_file": ("no file was uploaded", "没有上传文件"),
    "too_large": (
        "the file is larger than the limit of {limit}",
        "文件超过了 {limit} 的上限",
    ),
    "unknown_pack": (
        "unknown pack {name!r}; known: {known}",
        "未知的制度包 {name!r}；可选：{known}",
    ),
    "bad_choice": ("{field} must be one of {choices}", "{field} 必须是 {choices} 之一"),
    "no_packs": ("no pack is loaded", "没有加载制度包"),
    "timelines": ("timelines", "时间线"),
    "failed": ("the request failed", "请求失败"),
    "language": ("中文", "English"),
    "timeout": (
        "the history took longer than {seconds} s to decide",
        "判定该历史记录超过了 {seconds} 秒",
    ),
}


def say(key: str, lang: Lang) -> str:
    """A word of the page, else ``present.word``'s."""
    found = _PAGE_WORDS.get(key)
    if found is not None:
        return found[1] if lang == "zh" else found[0]
    return word(key, lang)


def _e(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else plain(value), quote=True)


def _lang(value: Any) -> Lang:
    return "en" if str(value).strip().lower() == "en" else "zh"


def _limit(request: Request) -> int:
    state = request.app.state
    for name in _LIMIT_NAMES:
        value = getattr(state, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_UPLOAD_LIMIT


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{number(round(n / (1024 * 1024), 1))} MB"
    if n >= 1024:
        return f"{number(round(n / 1024, 1))} KB"
    return f"{n} B"


# ------------------------------------------------------------------ the page


_PAGE_CSS: Final = """
form.upload{display:grid;gap:.6em;margin:1em 0;max-width:720px}
form.upload label{font-weight:600}
#drop{border:2px dashed var(--rule);border-radius:8px;padding:1.4em;text-align:center;
color:var(--muted);background:var(--soft);cursor:pointer}
#drop.over{border-color:#0b57d0;color:#0b57d0}
#drop .file{display:block;margin-top:.4em;color:var(--ink);font-weight:600}
button{font:inherit;padding:.45em 1.4em;border-radius:6px;border:1px solid #0b57d0;
background:#0b57d0;color:#fff;cursor:pointer;justify-self:start}
button[disabled]{opacity:.6}
select{font:inherit;padding:.3em}
.pe-error{border-left:4px solid #c62828;background:#fdecea;padding:.6em 1em;margin:1em 0}
.pe-error code{font-weight:700}
.pe-error .where{font-family:ui-monospace,monospace}
pre.why{white-space:pre-wrap;background:var(--soft);padding:.5em;margin:.3em 0;font-size:.9em}
td details summary{color:#0b57d0}
.lang{float:right}
"""

_SCRIPT: Final = """
(function(){
  var form=document.getElementById('upload'),input=document.getElementById('file'),
      drop=document.getElementById('drop'),shown=document.getElementById('filename'),
      out=document.getElementById('result'),button=document.getElementById('decide');
  function show(){shown.textContent=input.files.length?input.files[0].name:'';}
  input.addEventListener('change',show);
  drop.addEventListener('click',function(){input.click();});
  drop.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){
    e.preventDefault();input.click();}});
  ['dragenter','dragover'].forEach(function(t){drop.addEventListener(t,function(e){
    e.preventDefault();drop.classList.add('over');});});
  ['dragleave','drop'].forEach(function(t){drop.addEventListener(t,function(e){
    e.preventDefault();drop.classList.remove('over');});});
  drop.addEventListener('drop',function(e){
    if(e.dataTransfer&&e.dataTransfer.files.length){input.files=e.dataTransfer.files;show();}});
  form.addEventListener('submit',function(e){
    e.preventDefault();
    button.disabled=true;var label=button.textContent;button.textContent=button.dataset.busy;
    out.setAttribute('aria-busy','true');
    fetch(form.getAttribute('action'),{method:'POST',body:new FormData(form)})
      .then(function(r){return r.text();})
      .then(function(t){out.innerHTML=t;})
      .catch(function(){out.textContent=button.dataset.failed;})
      .finally(function(){button.disabled=false;button.textContent=label;
        out.removeAttribute('aria-busy');});
  });
})();
"""


def page(names: Sequence[str], lang: Lang, nonce: str, limit: int) -> str:
    """The page: the form (pack, history, times), and where the answer goes."""
    title = say("page_title", lang)
    other: Lang = "en" if lang == "zh" else "zh"
    options = "".join(f'<option value="{_e(n)}">{_e(n)}</option>' for n in names)
    accept = ",".join(SUFFIXES)
    naive = "".join(f'<option value="{m}">{_e(say("naive_" + m, lang))}</option>' for m in _NAIVE)
    packs = (
        f'<select id="policy" name="policy">{options}</select>'
        if names
        else f'<p class="none">{_e(say("no_packs", lang))}</p>'
    )
    return "".join(
        [
            "<!DOCTYPE html>",
            f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title><style>{_CSS}{_PAGE_CSS}</style></head><body>",
            f'<header><a class="lang" href="?lang={other}" hreflang="{other}">'
            f"{_e(say('language', lang))}</a><h1>{_e(title)}</h1>",
            f'<p class="meta">{_e(say("not_kept", lang))}</p></header><main>',
            '<form id="upload" class="upload" action="v1/page/decide" method="post" '
            'enctype="multipart/form-data">',
            f'<label for="policy">{_e(say("pack", lang))}</label>{packs}',
            f'<label for="file">{_e(say("history", lang))}</label>',
            f'<div id="drop" tabindex="0" role="button">{_e(say("drop", lang))} '
            f"({_e(', '.join(SUFFIXES))}, ≤ {_e(_size(limit))})"
            '<span class="file" id="filename"></span></div>',
            f'<input type="file" id="file" name="file" accept="{_e(accept)}" required>',
            f'<label for="naive_times">{_e(say("naive_times", lang))}</label>',
            f'<select id="naive_times" name="naive_times">{naive}</select>',
            f'<input type="hidden" name="lang" value="{lang}">',
            f'<button id="decide" type="submit" data-busy="{_e(say("deciding", lang))}" '
            f'data-failed="{_e(say("failed", lang))}">{_e(say("decide", lang))}</button>',
            "</form>",
            '<div id="result" aria-live="polite"></div>',
            f"</main><footer>{_e(word('generated', lang))}</footer>",
            f'<script nonce="{nonce}">{_SCRIPT}</script></body></html>\n',
        ]
    )


@router.get("/", response_class=HTMLResponse)
def get_page(request: Request, lang: str = "zh") -> HTMLResponse:
    """The page, in Chinese unless ``?lang=en``."""
    registry = getattr(request.app.state, "registry", None)
    names = list(registry.names()) if registry is not None else []
    nonce = secrets.token_urlsafe(16)
    body = page(names, _lang(lang), nonce, _limit(request))
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'nonce-{nonce}'; connect-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(body, headers={"Content-Security-Policy": csp})


# ------------------------------------------------------------------ the answer


def _problem_line(p: Problem, name: str, tmp: str) -> str:
    def named(text: str) -> str:  # the upload's name for the temporary file's
        return text.replace(tmp, name) if tmp else text

    loc = p.location
    if loc is not None and tmp and loc.file == tmp:
        loc = dataclasses.replace(loc, file=name)
    where = str(loc) if loc is not None else ""
    if not where and p.event_id is not None:
        where = f"event {p.event_id!r}" + (f" field {p.field!r}" if p.field else "")
    message = named(p.message)
    hint = f" ({_e(named(p.hint))})" if p.hint else ""
    return (
        f'<li data-code="{_e(p.code)}"><code class="pe-code">{_e(p.code)}</code> '
        f'<span class="where">{_e(where)}</span> {_e(message)}{hint}</li>'
    )


def error_fragment(
    lang: Lang,
    problems: Sequence[Problem] = (),
    texts: Sequence[str] = (),
    *,
    name: str = "",
    tmp: str = "",
) -> str:
    """A readable error: each problem's code, where it is (``h.xlsx:Sheet1!D7``) and what;
    the temporary file ``tmp`` is named as uploaded, ``name``."""
    items = [_problem_line(p, name, tmp) for p in problems]
    items += [f"<li>{_e(t)}</li>" for t in texts]
    return (
        '<section class="pe-error" role="alert">'
        f"<h2>{_e(say('error_title', lang))}</h2><ul>{''.join(items)}</ul></section>"
    )


def _why(text: str, lang: Lang) -> str:
    return (
        f'<details class="why"><summary>{_e(say("why", lang))}</summary>'
        f'<pre class="why">{_e(text)}</pre></details>'
    )


def decide_fragment(
    policy: Policy | None,
    decision: Decision,
    events: Sequence[Mapping[str, Any]],
    lang: Lang,
    *,
    name: str = "",
) -> str:
    """The decision as a fragment of the page: owners, fines, duties (each line with its why),
    then the timelines and the rules, clauses and events they link to."""
    tz = decision.timezone
    subjects = customers_of(decision)
    whys: dict[str, str] = {}

    def why(subject: str | None) -> str:
        if not subject:
            return ""
        if subject not in whys:
            text = explain_full(decision, subject, policy, history=events, lang=lang)
            whys[subject] = _why(text, lang)
        return whys[subject]

    def heads(*keys: str) -> str:
        return (
            "<thead><tr>"
            + "".join(f"<th>{_e(word(k, lang))}</th>" for k in keys)
            + (f"<th>{_e(say('why', lang))}</th></tr></thead>")
        )

    def clauses_of(ids: Sequence[str]) -> str:
        found = [f'<a href="#{anchor("clause", c)}">{_e(c)}</a>' for c in ids]
        return ", ".join(found) if found else NOTHING

    title = f"{decision.policy} {decision.version}"
    out = [
        f'<section class="pe-result" data-policy="{_e(decision.policy)}" data-lang="{lang}">',
        f"<h2>{_e(title)}</h2>",
        f'<p class="meta">{_e(name)} · {_e(word("as_of", lang))} '
        f"{_e(when(decision.as_of, tz))} · {_e(word('timezone', lang))} {_e(tz)} · "
        f"{_e(word('events', lang))} {len(events)}</p>",
        f'<h3>{_e(word("owners", lang))}</h3><div class="scroll"><table id="owners" '
        f'class="owners">{heads("subject", "owner", "since", "rule", "clause")}<tbody>',
    ]
    for s in subjects:
        owner = decision.owner(s)
        spans = decision.ownership(s)
        last = spans[-1] if spans else None
        since = when(last.start, tz) if last is not None and last.end is None else NOTHING
        rule = last.rule if last is not None else NOTHING
        out.append(
            f'<tr data-subject="{_e(s)}" data-owner="{_e(owner or "")}">'
            f'<td class="subject"><a href="#{anchor("customer", s)}">{_e(s)}</a></td>'
            f'<td class="owner">{_e(_who(owner, lang) if owner is not None else NOTHING)}</td>'
            f"<td>{_e(since)}</td><td>{_e(rule)}</td>"
            f"<td>{clauses_of(last.clauses if last is not None else [])}</td>"
            f"<td>{why(s)}</td></tr>"
        )
    out.append("</tbody></table></div>")
    if not subjects:
        out.append(f'<p class="none">{_e(word("none", lang))}</p>')

    out.append(
        f'<h3>{_e(word("penalties", lang))}</h3><div class="scroll"><table id="fines" '
        f'class="fines">{heads("at", "party", "sanction", "amount", "subject", "rule", "clause")}'
        "<tbody>"
    )
    for p in decision.penalties:
        out.append(
            f'<tr data-party="{_e(p.party)}" data-subject="{_e(p.subject or "")}">'
            f"<td>{_e(when(p.at, tz))}</td><td>{_e(p.party)}</td>"
            f"<td>{_e(word(p.sanction, lang))}</td>"
            f'<td class="num">{_e(_amount(p, lang))}</td><td>{_e(p.subject or NOTHING)}</td>'
            f"<td>{_e(p.rule)}</td><td>{clauses_of(p.clauses)}</td><td>{why(p.subject)}</td></tr>"
        )
    out.append("</tbody></table></div>")
    if not decision.penalties:
        out.append(f'<p class="none">{_e(word("no_penalties", lang))}</p>')

    out.append(
        f'<h3>{_e(word("obligations", lang))}</h3><div class="scroll"><table id="duties" '
        f'class="duties">{heads("due", "party", "what", "status", "subject", "rule", "clause")}'
        "<tbody>"
    )
    for o in decision.obligations:
        due = when(o.due, tz) if o.due is not None else word("x_no_deadline", lang)
        out.append(
            f'<tr class="{_e(o.status)}" data-party="{_e(o.party or "")}" '
            f'data-subject="{_e(o.subject or "")}" data-status="{_e(o.status)}">'
            f"<td>{_e(due)}</td><td>{_e(o.party or NOTHING)}</td><td>{_e(o.what)}</td>"
            f"<td>{_e(word(o.status, lang))}</td><td>{_e(o.subject or NOTHING)}</td>"
            f"<td>{_e(o.rule)}</td><td>{clauses_of(o.clauses)}</td><td>{why(o.subject)}</td></tr>"
        )
    out.append("</tbody></table></div>")
    if not decision.obligations:
        out.append(f'<p class="none">{_e(word("none", lang))}</p>')

    credits = list(decision.credits)
    if credits:
        out.append(
            f'<h3>{_e(word("credits", lang))}</h3><div class="scroll"><table id="credits" '
            f'class="credits">{heads("at", "party", "kind", "amount", "subject", "rule", "clause")}'
            "<tbody>"
        )
        for c in credits:
            out.append(
                f"<tr><td>{_e(when(c.at, tz))}</td><td>{_e(c.party)}</td><td>{_e(c.kind)}</td>"
                f'<td class="num">{_e(money(c.amount, None, c.currency))}</td>'
                f"<td>{_e(c.subject or NOTHING)}</td><td>{_e(c.rule)}</td>"
                f"<td>{clauses_of(c.clauses)}</td><td>{why(c.subject)}</td></tr>"
            )
        out.append("</tbody></table></div>")

    axis = _axis(decision, events)
    palette: dict[str, str] = {}
    out.append(
        f'<h3 id="customers">{_e(say("timelines", lang))}</h3>{_legend(lang)}'
        + "".join(_customer(decision, s, axis, lang, palette) for s in subjects)
    )
    rules, clauses, cited = _cited(decision)
    out += [
        f"<details><summary>{_e(word('rules', lang))}</summary>",
        _rules(policy, rules, lang),
        f"</details><details><summary>{_e(word('clauses', lang))}</summary>",
        _clauses(policy, decision, clauses, lang),
        f"</details><details><summary>{_e(word('events', lang))}</summary>",
        _events(decision, events, cited, lang),
        "</details></section>",
    ]
    return "".join(out)


def _decide(
    policy: Policy, data: bytes, name: str, naive_times: str, lang: Lang
) -> tuple[int, str]:
    """Read the upload (from a temporary file deleted at once), evaluate, render."""
    suffix = Path(name).suffix
    suffix = suffix.lower() if _SAFE_SUFFIX.fullmatch(suffix) else ".unknown"
    with tempfile.TemporaryDirectory(prefix="pe-page-") as folder:
        path = Path(folder) / f"history{suffix}"
        tmp = str(path)
        try:
            path.write_bytes(data)
            del data
            mode: NaiveTimes = "policy" if naive_times == "policy" else "error"
            history = read_located(path, policy, naive_times=mode)
        except PolicyEngineError as exc:
            return 400, error_fragment(lang, exc.problems, name=name, tmp=tmp)
        finally:
            path.unlink(missing_ok=True)
    events = history.events
    try:
        decision = policy.evaluate(events)
    except PolicyEngineError as exc:
        located = history.relocate(exc) if isinstance(exc, EventError) else exc
        return 400, error_fragment(lang, located.problems, name=name, tmp=tmp)
    return 200, decide_fragment(policy, decision, events, lang, name=name)


def _fail(status: int, lang: Lang, text: str) -> HTMLResponse:
    return HTMLResponse(error_fragment(lang, texts=[text]), status_code=status)


@router.post("/v1/page/decide", response_class=HTMLResponse)
async def post_decide(request: Request) -> HTMLResponse:
    """Multipart ``file``, ``policy``, ``lang``, ``naive_times`` -> an HTML fragment."""
    lang: Lang = _lang(request.query_params.get("lang", "zh"))
    limit = _limit(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:  # the form's own bytes
        return _fail(413, lang, say("too_large", lang).format(limit=_size(limit)))
    try:
        form = await request.form(max_files=1, max_fields=8)
    except Exception as exc:  # a body that is not a form: say so, readably
        return _fail(400, lang, f"{type(exc).__name__}: {exc}")
    try:
        lang = _lang(form.get("lang", lang))
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _fail(400, lang, say("no_file", lang))
        name = Path(upload.filename or "history").name[:200] or "history"
        data = await upload.read(limit + 1)
        if len(data) > limit:
            return _fail(413, lang, say("too_large", lang).format(limit=_size(limit)))
        naive = str(form.get("naive_times", "policy") or "policy")
        if naive not in _NAIVE:
            text = say("bad_choice", lang).format(field="naive_times", choices=", ".join(_NAIVE))
            return _fail(400, lang, text)
        registry = getattr(request.app.state, "registry", None)
        names = list(registry.names()) if registry is not None else []
        chosen = str(form.get("policy", "") or "") or None
        if registry is None or (chosen is not None and chosen not in names):
            known = ", ".join(names) or NOTHING
            return _fail(400, lang, say("unknown_pack", lang).format(name=chosen, known=known))
        policy = registry.get(chosen)
    finally:
        await form.close()
    timeout = getattr(request.app.state, "timeout", None)
    wait = float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None
    try:
        status, body = await asyncio.wait_for(
            run_in_threadpool(_decide, policy, data, name, naive, lang), wait
        )
    except TimeoutError:
        return _fail(503, lang, say("timeout", lang).format(seconds=number(wait or 0)))
    return HTMLResponse(body, status_code=status)
