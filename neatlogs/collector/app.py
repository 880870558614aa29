"""The collector's HTTP API: ingest batches of call records, query them back."""

from __future__ import annotations

import hmac
import json
import re
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from neatlogs.collector import tree
from neatlogs.collector.guard import RequestGuard, json_content_type_problem
from neatlogs.collector.queries import KINDS, BadRequest, Filters, filters_from, stats_range
from neatlogs.collector.store import RecordStore, StorageError
from neatlogs.collector.viewer.auth import session_ok
from neatlogs.collector.viewer.routes import viewer_routes
from neatlogs.record.schema import REQUIRED_KEYS

try:  # the `speedups` extra
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# An oversized body is still read (and discarded) up to this many times the limit, so the client
# gets to finish sending and sees the 413 instead of a reset connection it would retry.
_DRAIN_FACTOR = 8
# The exporter sends one gzip member per batch; a few allow for concatenated batches.
MAX_GZIP_MEMBERS = 64
_GZIP_CHUNK = 64 * 1024
# Records per request (the exporter's default batch is 100; a 413 makes it send halves).
MAX_RECORDS = 10_000
# Levels of arrays and objects in one record, the record itself being the first. The SDK cuts
# values at 32 levels, and a record puts them 3 or 4 levels down.
MAX_DEPTH = 64
# Seconds a client is asked to wait when the database cannot be written.
STORAGE_RETRY_AFTER = 1

# The contract's required record keys (contract.md, section 2).
_REQUIRED = frozenset(REQUIRED_KEYS)

Handler = Callable[[Request], Awaitable[Response]]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD.

    The same object when there is none. Such strings cannot be encoded as UTF-8: stored or
    answered as they are, they would break every later read.
    """
    kind = type(value)
    if kind is str:
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if kind is dict:
        pairs = [(k, v, _without_surrogates(k), _without_surrogates(v)) for k, v in value.items()]
        if all(new_key is key and new_item is item for key, item, new_key, new_item in pairs):
            return value
        return {new_key: new_item for _, _, new_key, new_item in pairs}
    if kind is list:
        items = [_without_surrogates(item) for item in value]
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    return value


class _JSONAnswer(JSONResponse):
    """A JSON response that still renders when the content holds lone surrogates (old rows)."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return super().render(_without_surrogates(content))


def _error(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return _JSONAnswer({"error": message}, status_code=status_code, headers=headers)


def _too_large(limit: int) -> BadRequest:
    return BadRequest(413, f"request body is larger than {limit} bytes; send smaller batches")


# ---------------------------------------------------------------- auth


def _auth_failure(request: Request, api_keys: set[str] | None) -> JSONResponse | None:
    if api_keys is None or (request.method == "GET" and session_ok(request, api_keys)):
        return None  # reading is also open to the viewer's pages, with their login cookie
    challenge = {"WWW-Authenticate": "Bearer"}
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return _error(401, "missing API key: send 'Authorization: Bearer <key>'", challenge)
    # Compare against every key so the time taken says nothing about which one nearly matched.
    matched = False
    for candidate in api_keys:
        matched |= hmac.compare_digest(key.encode(), candidate.encode())
    if not matched:
        return _error(401, "wrong API key: it is not one of the keys this collector accepts", challenge)
    return None


def _authenticated(handler: Handler, api_keys: set[str] | None) -> Handler:
    async def endpoint(request: Request) -> Response:
        failure = _auth_failure(request, api_keys)
        return failure if failure is not None else await handler(request)

    return endpoint


# ---------------------------------------------------------------- reading the body


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            too_large = too_large or size > limit
            if not too_large:
                chunks.append(chunk)
            elif size > _DRAIN_FACTOR * limit:
                break
    except ClientDisconnect:
        raise BadRequest(400, "the client disconnected before sending the whole body") from None
    if too_large:
        raise _too_large(limit)
    return b"".join(chunks)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip (up to MAX_GZIP_MEMBERS members) without ever holding more than `limit` bytes.

    The input is fed in chunks, so what is left over when a member ends is at most one chunk:
    time stays linear in the body's size however many members it has.
    """
    out: list[bytes] = []
    room = limit
    view = memoryview(data)
    position = 0
    members = 0
    inflater: Any = None  # zlib's decompressor type is not importable
    leftover = b""
    while leftover or position < len(data):
        if inflater is None:
            members += 1
            if members > MAX_GZIP_MEMBERS:
                raise BadRequest(
                    400, f"body has more than {MAX_GZIP_MEMBERS} gzip members; compress the batch as one"
                )
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if leftover:
            chunk: bytes | memoryview = leftover
            leftover = b""
        else:
            chunk = view[position : position + _GZIP_CHUNK]
            position += len(chunk)
        try:
            piece = inflater.decompress(chunk, room + 1)
        except zlib.error as exc:
            raise BadRequest(400, f"body is not valid gzip: {exc}") from None
        if len(piece) > room or inflater.unconsumed_tail:
            raise _too_large(limit)
        out.append(piece)
        room -= len(piece)
        if inflater.eof:
            leftover = inflater.unused_data
            inflater = None
    if inflater is not None:
        raise BadRequest(400, "body is not valid gzip: the compressed stream is truncated")
    return b"".join(out)


def _decode(encoding: str, body: bytes, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return _gunzip(body, limit)
    raise BadRequest(415, f"unsupported Content-Encoding {encoding!r}: send gzip or no encoding")


# ---------------------------------------------------------------- validating the batch


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_SPACE = re.compile(r"[ \t\n\r]*")  # exactly JSON's whitespace


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"body is not valid JSON: {exc}") from None


class _NotPlain(Exception):
    """The body is not a plain UTF-8 `{"records": [...], ...}`; the slow path will say why."""


class _Scanner:
    """Reads `{"records": [...], ...}` keeping each record's own JSON text.

    Storing that text as sent saves re-serialising every record, about a fifth of the cost of
    ingesting a batch. Anything unusual raises _NotPlain and `json.loads` takes over.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        if match is not None:  # always, the pattern matches the empty string
            self.pos = match.end()

    def expect(self, *chars: str) -> str:
        self.skip()
        char = self.text[self.pos : self.pos + 1]
        if not char or char not in chars:
            raise _NotPlain
        self.pos += 1
        return char

    def value(self) -> tuple[Any, str]:
        self.skip()
        start = self.pos
        try:
            found, self.pos = _DECODER.raw_decode(self.text, start)
        except ValueError:
            raise _NotPlain from None
        return found, self.text[start : self.pos]

    def array(self) -> tuple[list[Any], list[str]]:
        values: list[Any] = []
        texts: list[str] = []
        self.expect("[")
        self.skip()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return values, texts
        while True:
            found, text = self.value()
            if type(found) is not dict:
                # json.loads then reads the rest in C and the check names this record: a body of
                # millions of numbers is refused without a Python loop over them.
                raise _NotPlain
            if len(values) == MAX_RECORDS:
                raise _too_many()
            values.append(found)
            texts.append(text)
            if self.expect(",", "]") == "]":
                return values, texts

    def batch(self) -> tuple[list[Any], list[str]]:
        found: tuple[list[Any], list[str]] | None = None
        self.expect("{")
        while True:
            key, _ = self.value()
            if not isinstance(key, str):
                raise _NotPlain
            self.expect(":")
            if key == "records":
                found = self.array()  # a repeated key: the last wins, as with json.loads
            else:
                self.value()
            if self.expect(",", "}") == "}":
                break
        self.skip()
        if found is None or self.pos != len(self.text):
            raise _NotPlain
        return found


def _split(body: bytes) -> tuple[list[Any], list[str]] | None:
    try:
        return _Scanner(body.decode("utf-8")).batch()
    except (_NotPlain, UnicodeDecodeError):
        return None


# A number written with an exponent of +16 or more: orjson reads integers beyond 64 bits as floats
# (the stdlib keeps them exact), and then writes them like this.
_LARGE_NUMBER = re.compile(rb"[0-9]e\+")


def _split_orjson(body: bytes) -> tuple[list[Any], list[str]] | None:
    """With orjson: the body parsed at once and checked, each record's text re-encoded from what was parsed.

    None (the stdlib's reading then decides, and words any 400) unless orjson reads the body exactly
    as the stdlib would: it refuses what the stdlib's reading might still accept or word differently
    (NaN, lone surrogates, a byte-order mark, too deep), and a record holding a large number is left
    to the stdlib because it might be an integer beyond 64 bits.
    """
    if _orjson is None:
        return None
    try:
        payload = _orjson.loads(body)
    except _orjson.JSONDecodeError:
        return None
    if type(payload) is not dict:
        return None
    records = payload.get("records")
    if type(records) is not list:
        return None
    _check(records)  # before any work per record: a body of a million numbers stops at the first
    texts: list[str] = []
    for record in records:
        try:
            text = _orjson.dumps(record)
        except _orjson.JSONEncodeError:  # nested too deeply for orjson: the stdlib's reading says so
            return None
        if b"e+" in text and _LARGE_NUMBER.search(text) is not None:
            return None
        texts.append(text.decode())
    return records, texts


def _record_problem(index: int, record: Any) -> str | None:
    where = f"records[{index}]"
    if not isinstance(record, dict):
        return f"{where} is not a JSON object"
    if not _REQUIRED.issubset(record.keys()):
        missing = [key for key in REQUIRED_KEYS if key not in record]
        return f"{where} is missing " + ", ".join(repr(key) for key in missing)
    if not isinstance(record["id"], str) or not record["id"]:
        return f"{where} has an 'id' that is not a non-empty string"
    if not isinstance(record["trace_id"], str):
        return f"{where} has a 'trace_id' that is not a string"
    if "kind" in record or "parent_id" in record or "name" in record:
        return _span_problem(where, record)
    return None


def _span_problem(where: str, record: dict[str, Any]) -> str | None:
    # The fields spans add (contract section 6); checked only when present, as older SDKs send none.
    kind = record.get("kind")
    if kind is None:
        kind = "llm"  # a record without `kind` is a call
    elif kind not in KINDS:  # a provider call or a span (contract section 6)
        return f"{where} has 'kind' {_shown(kind)}; send one of " + ", ".join(map(repr, KINDS))
    parent = record.get("parent_id")
    if parent is not None and (not isinstance(parent, str) or not parent):
        return f"{where} has 'parent_id' {_shown(parent)}; send the enclosing span's id (a string) or null"
    name = record.get("name")
    if kind == "span" and not isinstance(name, str):
        return f"{where} is a span whose 'name' is {_shown(name)}; send the step's name as a string"
    if name is not None and not isinstance(name, str):
        return f"{where} has 'name' {_shown(name)}; send a string or null"
    return None


def _shown(value: Any) -> str:
    # Short: a 400 names the value without echoing a whole payload back.
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 40 else text[:37] + "..."


def _too_many() -> BadRequest:
    return BadRequest(413, f"more than {MAX_RECORDS} records in one request; send smaller batches")


def _check(records: list[Any]) -> list[dict[str, Any]]:
    if len(records) > MAX_RECORDS:
        raise _too_many()
    for index, record in enumerate(records):
        problem = _record_problem(index, record)
        if problem is not None:
            raise BadRequest(400, problem)
    return records


def _records_of(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        raise BadRequest(400, 'body must be a JSON object of the form {"records": [...]}')
    return _check(payload["records"])


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests arrays/objects more than `limit` levels (itself being the first)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def _too_deep(where: str) -> BadRequest:
    return BadRequest(
        400, f"too deeply nested: {where} has more than {MAX_DEPTH} levels of arrays and objects"
    )


def _check_depth(records: list[dict[str, Any]], texts: list[str] | None) -> None:
    for index, record in enumerate(records):
        if texts is not None:
            # A record with no more brackets than the limit cannot be nested deeper than it.
            text = texts[index]
            if text.count("{") + text.count("[") <= MAX_DEPTH:
                continue
        if _deeper_than(record, MAX_DEPTH):
            raise _too_deep(f"records[{index}]")


# JSON escapes of UTF-16 surrogates: a high one with the low one after it if any (group 1), or a
# low one. A match without group 1 is a lone surrogate. (Paired escapes are characters beyond
# U+FFFF, as the stdlib's encoder writes emoji.) An escaped backslash before "u" may match too:
# harmless, the record is then found to hold nothing to replace.
_SURROGATE_ESCAPE = (
    r"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|[c-fC-F][0-9a-fA-F]{2})"
)
_SURROGATE_ESCAPE_TEXT = re.compile(_SURROGATE_ESCAPE)
_SURROGATE_ESCAPE_BYTES = re.compile(_SURROGATE_ESCAPE.encode())


def _replace_lone_surrogates(body: bytes, records: list[dict[str, Any]], texts: list[str] | None) -> None:
    """Replace lone surrogates by U+FFFD in the records and their kept texts, in place."""
    if all(match.group(1) for match in _SURROGATE_ESCAPE_BYTES.finditer(body)):
        return
    for index, record in enumerate(records):
        if texts is not None and all(
            match.group(1) for match in _SURROGATE_ESCAPE_TEXT.finditer(texts[index])
        ):
            continue
        clean = _without_surrogates(record)
        if clean is not record:
            records[index] = clean
            if texts is not None:
                texts[index] = json.dumps(clean, separators=(",", ":"), allow_nan=False)


def read_batch(body: bytes) -> tuple[list[dict[str, Any]], list[str] | None]:
    """The validated records of an ingest body, with their JSON texts when cheaply available.

    Lone surrogates in strings are replaced by U+FFFD. Raises BadRequest naming the first problem
    (bad JSON, wrong shape, a bad or too deeply nested record, too many records).
    """
    texts: list[str] | None
    try:
        split = _split_orjson(body)  # checked already, when it reads the body
        if split is not None:
            records, texts = split
            _check_depth(records, texts)
            return records, texts  # orjson refuses lone surrogates: there are none
        split = _split(body)
        if split is not None:
            records, texts = _check(split[0]), split[1]
        else:
            records, texts = _records_of(_parse(body)), None
    except RecursionError:
        raise _too_deep("the body") from None
    _check_depth(records, texts)
    _replace_lone_surrogates(body, records, texts)
    return records, texts


# ---------------------------------------------------------------- query parameters


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise BadRequest(400, f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")
    return value


def _params(request: Request) -> dict[str, str]:
    # A repeated parameter: the last one wins, as Starlette's own mapping has it.
    return dict(request.query_params)


def _encoded(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate read from an old row: replaced, not a 500
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def _json(value: Any, status_code: int = 200) -> Response:
    return Response(_encoded(value), status_code=status_code, media_type="application/json")


def _records_answer(texts: list[bytes], next_cursor: str | None) -> Response:
    # The stored JSON texts go out as they are: no decoding and re-encoding of every record.
    body = b'{"records":[' + b",".join(texts) + b'],"next_cursor":' + _encoded(next_cursor) + b"}"
    return Response(body, media_type="application/json")


# ---------------------------------------------------------------- the app


def create_app(
    store: RecordStore,
    api_keys: set[str] | None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_unauthenticated_network: bool = False,
) -> Starlette:
    """The collector as an ASGI app over `store`; `api_keys=None` turns authentication off.

    Without keys, only requests addressed to a loopback name or address are answered, unless
    `allow_unauthenticated_network`. Cross-origin requests from web pages are always refused.
    """
    keys = set(api_keys) if api_keys is not None else None

    def accept(encoding: str, body: bytes) -> dict[str, int]:
        records, texts = read_batch(_decode(encoding, body, max_body_bytes))
        return {"accepted": len(records), "stored": store.add(records, texts=texts)}

    async def ingest(request: Request) -> Response:
        # A web page can POST text/plain without asking first; it cannot send application/json.
        problem = json_content_type_problem(request.headers.get("content-type"))
        if problem is not None:
            raise BadRequest(415, problem)
        body = await _read_body(request, max_body_bytes)
        encoding = request.headers.get("content-encoding", "")
        # Inflating, parsing and storing a batch takes milliseconds; off the loop, other requests
        # (health checks, queries) keep being answered meanwhile.
        return JSONResponse(await run_in_threadpool(accept, encoding, body))

    async def list_records(request: Request) -> Response:
        params = _params(request)
        filters, limit = filters_from(params), _limit(request)
        texts, next_cursor = await run_in_threadpool(store.record_texts, filters, limit, params.get("cursor"))
        return _records_answer(texts, next_cursor)

    async def get_record(request: Request) -> Response:
        record_id = request.path_params["record_id"]
        text = await run_in_threadpool(store.record_text, record_id)
        if text is None:
            return _error(404, f"no record with id {record_id!r}")
        return Response(text, media_type="application/json")

    async def list_traces(request: Request) -> Response:
        params = _params(request)
        filters, limit = filters_from(params), _limit(request)
        page = await run_in_threadpool(store.query_traces, filters, limit, params.get("cursor"))
        return _json({"traces": page.items, "next_cursor": page.next_cursor})

    async def get_trace(request: Request) -> Response:
        trace_id = request.path_params["trace_id"]

        def read() -> dict[str, Any] | None:
            page = store.query_traces(Filters(trace_id=trace_id), limit=1)
            if not page.items:
                return None
            calls = store.trace_calls(trace_id)
            # Flat (oldest first) and as the tree of spans: `tree` holds the same rows, nested.
            return {"trace": page.items[0], "calls": calls, "tree": tree.nested(calls)}

        found = await run_in_threadpool(read)
        if found is None:
            return _error(404, f"no trace with id {trace_id!r}")
        return _json(found)

    async def stats(request: Request) -> Response:
        span = stats_range(_params(request))
        return _json(await run_in_threadpool(store.stats_over, span))

    async def facets(request: Request) -> Response:
        return _json(await run_in_threadpool(store.facets))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/v1/records", _authenticated(ingest, keys), methods=["POST"]),
        Route("/v1/records", _authenticated(list_records, keys), methods=["GET"]),
        Route("/v1/records/{record_id}", _authenticated(get_record, keys), methods=["GET"]),
        Route("/v1/traces", _authenticated(list_traces, keys), methods=["GET"]),
        Route("/v1/traces/{trace_id}", _authenticated(get_trace, keys), methods=["GET"]),
        Route("/v1/stats", _authenticated(stats, keys), methods=["GET"]),
        Route("/v1/facets", _authenticated(facets, keys), methods=["GET"]),
        # Open on purpose: load balancers and `curl` probes carry no key, and it reveals nothing.
        Route("/healthz", healthz, methods=["GET"]),
    ]
    loopback_only = keys is None and not allow_unauthenticated_network
    routes += viewer_routes(store, keys)  # last: it ends with the pages' catch-all "not found"
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestGuard, loopback_only=loopback_only)],
        exception_handlers={
            BadRequest: _bad_request,
            HTTPException: _http_exception,
            StorageError: _storage_unavailable,
        },
    )


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return _error(exc.status_code, exc.message)


async def _http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's own 404/405 answers, as JSON like every other answer of the API.
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail, exc.headers)


async def _storage_unavailable(request: Request, exc: Exception) -> Response:
    # Nothing of the batch was stored; the exporter retries after Retry-After, so nothing is lost.
    return _error(503, f"storage unavailable: {exc}", {"Retry-After": str(STORAGE_RETRY_AFTER)})
