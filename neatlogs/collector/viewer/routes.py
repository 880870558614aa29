"""The viewer's pages: traces, a trace's timeline, a call, the dashboard, and the key form."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from neatlogs.collector.queries import BadRequest, Filters, filters_from
from neatlogs.collector.store import RecordStore
from neatlogs.collector.viewer import auth, chat, format, timeline

PAGE_SIZE = 50
# The most calls a trace page draws; a longer trace says so above its waterfall.
TRACE_CALLS = 5000
# The most children a step's page lists (all of them are on its trace's page).
STEP_CHILDREN = 500
logger = logging.getLogger("neatlogs")
_HERE = Path(__file__).parent
_LOGIN_BODY_LIMIT = 16 * 1024

# No inline script or style at all: record content can never become code, even if escaping failed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # Links out of the viewer carry no referrer; same-origin posts keep their Origin (the login
    # form's cross-site check reads it).
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Pages hold prompts: keep them out of shared caches and the back-forward disk cache.
    "Cache-Control": "no-store",
}
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    version: str


def _assets() -> dict[str, _Asset]:
    found: dict[str, _Asset] = {}
    for path in sorted((_HERE / "static").iterdir()):
        if path.suffix in _TYPES:
            body = path.read_bytes()
            found[path.name] = _Asset(body, _TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:12])
    return found


def _environment(assets: Mapping[str, _Asset]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # every page, every value: record content is untrusted input
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=format.ms,
        usd=format.usd,
        count=format.count,
        ago=format.ago,
        exact=format.exact,
        pretty=format.pretty_json,
    )
    env.globals["static"] = lambda name: f"/static/{name}?v={assets[name].version}"
    env.globals["ranges"] = format.RANGES
    return env


# ---------------------------------------------------------------- the list's filters


_FILTER_KEYS = ("status", "model", "provider", "tag", "q")


@dataclass(frozen=True)
class ListForm:
    """What the filter bar holds, read from the URL (so a view can be shared and gone back to)."""

    range: str
    since: str
    until: str
    values: dict[str, str]
    cursor: str | None

    @staticmethod
    def read(params: Mapping[str, str]) -> ListForm:
        chosen = params.get("range") or format.DEFAULT_RANGE
        if chosen not in format.RANGES:
            chosen = format.DEFAULT_RANGE
        return ListForm(
            range=chosen,
            since=params.get("since", "").strip() if chosen == "custom" else "",
            until=params.get("until", "").strip() if chosen == "custom" else "",
            values={key: params.get(key, "").strip() for key in _FILTER_KEYS},
            cursor=params.get("cursor") or None,
        )

    def query(self, now: datetime) -> dict[str, str]:
        """The store's filter parameters: the time range made absolute, empty values left out."""
        params = {key: value for key, value in self.values.items() if value}
        span = format.RANGES[self.range][1]
        if span is not None:
            params["since"] = format.iso(now - span)
        elif self.range == "custom":
            for name in ("since", "until"):
                value = getattr(self, name)
                if value:
                    params[name] = _absolute(value, name)
        return params

    def url(self, **changes: str | None) -> str:
        """This view's URL with some parameters changed (None drops one)."""
        params: dict[str, str | None] = {"range": self.range, **self.values}
        if self.range == "custom":
            params.update(since=self.since, until=self.until)
        params.update(changes)
        kept = {k: v for k, v in params.items() if v and not (k == "range" and v == format.DEFAULT_RANGE)}
        return "/?" + urlencode(kept) if kept else "/"


def _absolute(value: str, name: str) -> str:
    # The custom range's inputs give "2026-12-03T10:45" (no zone): the page says they are UTC.
    moment = format.parse_time(value)
    if moment is None:
        raise BadRequest(400, f"{name} must be a date and time like 2026-12-03T10:45 (UTC), got {value!r}")
    return format.iso(moment)


# ---------------------------------------------------------------- the routes


def viewer_routes(store: RecordStore, api_keys: Collection[str] | None) -> list[Route]:
    """The viewer's routes for `create_app`; with `api_keys`, pages ask for one of them once."""
    keys = None if api_keys is None else frozenset(api_keys)
    assets = _assets()
    env = _environment(assets)

    async def render(name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        # Off the event loop: a trace of thousands of calls takes a while to write, and ingest
        # must keep being answered meanwhile.
        html = await run_in_threadpool(
            env.get_template(name).render,
            auth=keys is not None,
            path=request.url.path,
            base_url=_base_url(request),
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def page(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if not auth.session_ok(request, keys):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.url.path.startswith("/_"):  # a fragment fetched by a script
                    return Response(status_code=401, headers=PAGE_HEADERS)
                return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
            return await handler(request)

        return guarded

    async def traces_page(request: Request) -> Response:
        form = ListForm.read(request.query_params)
        found, error = await _traces(store, form)
        facets = await run_in_threadpool(store.facets)
        return await render(
            "traces.html",
            request,
            status=400 if error else 200,
            form=form,
            traces=found[0],
            next_cursor=found[1],
            facets=facets,
            error=error,
            now=datetime.now(timezone.utc),
        )

    async def traces_rows(request: Request) -> Response:
        form = ListForm.read(request.query_params)
        found, error = await _traces(store, form)
        return await render(
            "_trace_rows.html",
            request,
            status=400 if error else 200,
            form=form,
            traces=found[0],
            now=datetime.now(timezone.utc),
        )

    async def trace_page(request: Request) -> Response:
        trace_id = request.path_params["trace_id"]

        def read() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
            # The calls' timeline fields only: a trace of huge prompts stays a small page.
            calls = store.trace_calls(trace_id, limit=TRACE_CALLS)
            summary = store.query_traces(Filters(trace_id=trace_id), limit=1).items if calls else []
            return calls, (summary[0] if summary else None)

        calls, summary = await run_in_threadpool(read)
        if not calls:
            return await render("not_found.html", request, status=404, what="trace", ident=trace_id)
        drawn = timeline.build([format.clean_record(_call_record(call)) for call in calls])
        return await render(
            "trace.html",
            request,
            trace_id=trace_id,
            timeline=drawn,
            axis=timeline.AXIS,
            summary=summary or {},
            cut=len(calls) >= TRACE_CALLS,
        )

    async def record_page(request: Request) -> Response:
        record_id = request.path_params["record_id"]
        record = await run_in_threadpool(store.get_record, record_id)
        if record is None:
            return await render("not_found.html", request, status=404, what="call", ident=record_id)
        neighbours = await run_in_threadpool(_neighbours, store, record)
        step = await run_in_threadpool(_step, store, record)
        parent_id = record.get("parent_id")
        parent = await run_in_threadpool(store.call_fields, parent_id) if isinstance(parent_id, str) else None
        raw = json.dumps(record, indent=2, ensure_ascii=False)
        try:
            return await render(
                "record.html",
                request,
                r=format.clean_record(record),
                conversation=chat.conversation(record),
                answers=chat.answers(record),
                parameters=_parameters(record),
                extra_usage=_extra_usage(record),
                attributes=_attributes(record),
                span_input=_span_input(record),
                span_output=_span_output(record),
                step=step,
                parent=parent,
                raw=raw,
                nav=neighbours,
            )
        except Exception:  # a record shape nobody foresaw: still show it, as JSON
            logger.exception("neatlogs viewer: could not draw record %s; showing its JSON", record_id)
            return await render("record_raw.html", request, r=format.clean_record(record), raw=raw)

    async def dashboard_page(request: Request) -> Response:
        form = ListForm.read(request.query_params)
        if form.range == "all":  # the dashboard's charts need a bounded range
            form = ListForm.read({**request.query_params, "range": "30d"})
        try:
            query = form.query(datetime.now(timezone.utc))
            error = None
        except BadRequest as exc:
            query, error = {}, exc.message
        return await render(
            "dashboard.html",
            request,
            status=400 if error else 200,
            form=form,
            error=error,
            since=query.get("since", ""),
            until=query.get("until", ""),
        )

    async def login_form(request: Request) -> Response:
        target = _local(request.query_params.get("next"))
        if keys is None or auth.session_ok(request, keys):
            return RedirectResponse(target, status_code=303)
        return await render("login.html", request, next=target, error=None)

    async def login(request: Request) -> Response:
        if keys is None:
            return RedirectResponse("/", status_code=303)
        if not auth.same_origin(request):
            return await render(
                "login.html", request, status=403, next="/", error="This form must be sent from this site."
            )
        fields = await _form(request)
        target = _local(fields.get("next"))
        key = auth.matching_key(fields.get("key", "").strip(), keys)
        if key is None:
            return await render(
                "login.html", request, status=401, next=target, error="That key is not accepted here."
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            auth.COOKIE,
            auth.start_session(key),
            max_age=auth.SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        if not auth.same_origin(request):
            return Response("cross-site request refused", status_code=403, headers=PAGE_HEADERS)
        auth.end_session(request)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def static(request: Request) -> Response:
        asset = assets.get(request.path_params["name"])
        if asset is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            asset.body,
            media_type=asset.media_type,
            headers={
                "X-Content-Type-Options": "nosniff",
                # Page links carry the file's hash, so a changed file is a new URL.
                "Cache-Control": "public, max-age=86400",
            },
        )

    async def not_found(request: Request) -> Response:
        if request.url.path.startswith("/v1/"):
            return JSONResponse({"error": f"no such endpoint: {request.url.path}"}, status_code=404)
        return await render("not_found.html", request, status=404, what="page", ident=request.url.path)

    return [
        Route("/", page(traces_page), methods=["GET"]),
        Route("/_rows/traces", page(traces_rows), methods=["GET"]),
        Route("/traces/{trace_id:path}", page(trace_page), methods=["GET"]),
        Route("/records/{record_id:path}", page(record_page), methods=["GET"]),
        Route("/dashboard", page(dashboard_page), methods=["GET"]),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/{rest:path}", not_found, methods=["GET"]),
    ]


async def _traces(
    store: RecordStore, form: ListForm
) -> tuple[tuple[list[dict[str, Any]], str | None], str | None]:
    try:
        filters = filters_from(form.query(datetime.now(timezone.utc)))
        found = await run_in_threadpool(store.query_traces, filters, PAGE_SIZE, form.cursor)
    except BadRequest as exc:
        return ([], None), exc.message
    return (list(found.items), found.next_cursor), None


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _LOGIN_BODY_LIMIT:
            break
    pairs = parse_qs(body[:_LOGIN_BODY_LIMIT].decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in pairs.items()}


def _local(target: str | None) -> str:
    # Only a path on this site: never an open redirect to somewhere else.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _neighbours(store: RecordStore, record: dict[str, Any]) -> dict[str, Any]:
    """The calls before and after this one in its trace, and its place there (timeline fields only)."""
    trace_id = record.get("trace_id")
    if not isinstance(trace_id, str):
        return {}
    ids = [call["id"] for call in store.trace_calls(trace_id, limit=TRACE_CALLS)]
    if record.get("id") not in ids:
        return {}
    at = ids.index(record["id"])
    return {
        "position": at + 1,
        "count": len(ids),
        "previous": ids[at - 1] if at > 0 else None,
        "next": ids[at + 1] if at + 1 < len(ids) else None,
    }


@dataclass(frozen=True)
class _Step:
    """What a span's page shows of the records inside it."""

    children: list[timeline.Row]  # direct children, oldest first
    more: bool  # more children than drawn
    inside: dict[str, Any]  # totals of every record below it (RecordStore.inside)


def _step(store: RecordStore, record: dict[str, Any]) -> _Step | None:
    """The children and totals of a span (None for a call)."""
    if record.get("kind") != "span" or not isinstance(record.get("id"), str):
        return None
    kids = store.children(record["id"], limit=STEP_CHILDREN + 1)
    # Drawn with the span as their root, so the bars are on the span's own time axis.
    drawn = timeline.build(
        [format.clean_record(record)]
        + [format.clean_record(_call_record(kid)) for kid in kids[:STEP_CHILDREN]]
    )
    children = [row for row in drawn.rows if row.depth == 1]
    steps = [row.record["id"] for row in children if row.record.get("kind") == "span"]
    counts = store.child_counts(steps) if steps else {}
    for row in children:
        row.children = counts.get(row.record["id"], 0)  # what is inside a child step, not drawn here
    return _Step(children, len(kids) > STEP_CHILDREN, store.inside(record["id"]))


@dataclass(frozen=True)
class _Content:
    """A span's input or output as the page shows it; `recorded` is False when there is none."""

    recorded: bool
    value: Any = None


_NONE = _Content(False)


def _unwrapped(value: Any, key: str) -> Any:
    # The SDK sends a span's input as {"input": ...} in `request` and its output as {"output": ...}
    # in `completion`; other senders put them in `prompt` and `completion` bare (contract 6).
    if isinstance(value, dict) and len(value) == 1 and key in value:
        return value[key]
    return value


def _span_input(record: dict[str, Any]) -> _Content:
    if record.get("prompt") is not None:
        return _Content(True, _unwrapped(record["prompt"], "input"))
    request = record.get("request")
    if request is None or request == {}:  # not captured (capture_content="metadata")
        return _NONE
    return _Content(True, _unwrapped(request, "input"))


def _span_output(record: dict[str, Any]) -> _Content:
    completion = record.get("completion")
    return _NONE if completion is None else _Content(True, _unwrapped(completion, "output"))


def _attributes(record: dict[str, Any]) -> dict[str, Any]:
    # A span's `set_attribute` values (contract section 6), shown as they are (escaped).
    found = record.get("attributes")
    return found if isinstance(found, dict) else {}


def _call_record(call: dict[str, Any]) -> dict[str, Any]:
    """A row of `RecordStore.trace_calls` in the record's own shape, for the waterfall."""
    view = dict(call)
    tokens = {key: call.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
    view["usage"] = tokens if any(value is not None for value in tokens.values()) else None
    # Only streams have a time to first chunk (a stream that failed before one shows as a call).
    view["stream"] = call.get("ttft_ms") is not None
    error_type = call.get("error_type")
    view["error"] = {"type": error_type, "message": call.get("error_message")} if error_type else None
    return view


_NOT_PARAMETERS = ("model", "messages", "prompt", "input", "instructions", "tools", "functions")


def _parameters(record: dict[str, Any]) -> dict[str, Any]:
    request = record.get("request")
    if not isinstance(request, dict):
        return {}
    return {k: v for k, v in request.items() if k not in _NOT_PARAMETERS}


_USAGE_SHOWN = ("prompt_tokens", "completion_tokens", "total_tokens")


def _extra_usage(record: dict[str, Any]) -> dict[str, Any]:
    usage = record.get("usage")
    if not isinstance(usage, dict):
        return {}
    return {k: v for k, v in usage.items() if k not in _USAGE_SHOWN}
