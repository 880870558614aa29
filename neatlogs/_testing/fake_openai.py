"""A fake OpenAI HTTP API on loopback, standard library only.

It is a real HTTP server rather than a mock transport so that every openai SDK (1.x on httpx,
2.x, 3.x on httpx2) is exercised end to end over real sockets.

Replies are deterministic:

- chat: ``"Echo: <last user message text>"``; with ``n > 1`` choice ``i >= 1`` gets the suffix ``" [i]"``.
  After ``tool`` messages: ``"According to the tool: <their contents joined by '; '>"``.
- tool calls (chat, when the request has ``tools`` and ``tool_choice`` is not ``"none"``):
  a ``tool_choice`` naming a function calls that function; otherwise, when a tool is named
  ``get_weather`` and the last user message contains the word "weather", one ``get_weather`` call per
  capitalised word after "weather" ("weather in Paris and Tokyo" -> two parallel calls; "Paris" if
  none; only the first when ``parallel_tool_calls`` is false); otherwise ``tool_choice="required"``
  calls the first tool. Arguments are ``{<first parameter name>: <city or user text>}``.
- legacy completions and responses: ``"Echo: <prompt or last user input text>"``.
- structured outputs (chat ``response_format`` / responses ``text.format`` of type ``json_schema``): JSON
  that fits the schema, every string being the echo text (``json_object``: ``{"text": <echo>}``).
- responses with function ``tools``: the same rules as chat tool calls pick ``function_call`` output
  items (streamed as ``response.function_call_arguments.delta`` events) instead of text.
- Azure OpenAI paths (``/openai/deployments/{name}/chat/completions?api-version=...``, ``/openai/v1/...``)
  are served like ``/v1/...``.
- tokens: :func:`count_tokens` (whitespace-separated words); ``total = prompt + completion``.
  ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens`` cut the text to that many words
  (finish_reason ``"length"``, or status ``"incomplete"`` for responses).

Per-request control headers (send them with ``extra_headers=``):

- ``x-fake-status: 500``: answer that request with this error status (``x-fake-retry-after`` adds
  a ``retry-after`` header).
- ``x-fake-delay: 0.5``: sleep that many seconds before answering (overrides ``server.delay``).
- ``x-fake-chunks: 20``: split streamed text and tool arguments into about that many pieces (default 5).
- ``x-fake-chunk-delay: 0.01``: sleep between streamed events.
- ``x-fake-comment-delay: 0.05``: a stream starts with a ``: keep-alive`` comment and sleeps that many
  seconds before its first event (as proxies that hold a stream open do).
- ``x-fake-write-size: 7``: a stream's bytes are written (and flushed) that many at a time, so that
  events and lines reach the client split across reads.
- ``x-fake-disconnect-after: K``: a stream sends K events then drops the connection; a non-streamed
  request is dropped before any answer.
- ``x-fake-cached-tokens: N`` / ``x-fake-reasoning-tokens: N``: chat usage reports that many cached
  prompt tokens / reasoning tokens (counted within the prompt / completion tokens).
- ``x-fake-interleave-tools: 1``: stream parallel tool-call deltas interleaved (0, 1, 0, 1, ...)
  instead of one tool call after the other as the real API does (``server.interleave_tool_calls``
  does the same for every request).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

__all__ = ["WEATHER_TOOL", "FakeOpenAI", "RecordedRequest", "count_tokens"]

JSON = dict[str, Any]
# An SSE event: (event name or None, data line).
_Event = tuple[str | None, str]

_DEFAULT_CHUNKS = 5

# The function tool this server calls (`get_weather`, one call per city asked about).
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
_RATE_LIMIT_REQUESTS = 10_000
_RATE_LIMIT_TOKENS = 2_000_000

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def count_tokens(text: str) -> int:
    """The fake's token count for a text: its number of whitespace-separated words."""
    return len(text.split())


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received: lower-cased headers and the parsed JSON body (None if none)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    request_id: str


@dataclass
class _Failure:
    status: int
    retry_after: float | None = None
    message: str | None = None


@dataclass
class _Script:
    content: str | None
    tool_calls: list[JSON] | None
    finish_reason: str | None


@dataclass
class _Choice:
    content: str | None
    tool_calls: list[JSON] = field(default_factory=list)
    finish_reason: str = "stop"


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class FakeOpenAI:
    """A threaded fake OpenAI API on 127.0.0.1; use as a context manager or via start()/stop().

    Attributes: ``requests`` (every request received, in order), ``delay`` (seconds to wait before
    each answer) and ``interleave_tool_calls`` (see the module docstring).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.delay = 0.0
        self.interleave_tool_calls = False
        self._port = port
        self._lock = threading.Lock()
        self._failures: deque[_Failure] = deque()
        self._scripts: deque[_Script] = deque()
        self._served = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running; call start() or use it as a context manager")
        return f"http://{self.host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client: ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    def start(self) -> FakeOpenAI:
        """Start serving on a daemon thread; a restart reuses the first port. Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self._port), _Handler)
        server.fake = self
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and join every server thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        # Idle keep-alive connections would otherwise keep their handler threads waiting for a request.
        with self._lock:
            connections = dict(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join()
        for worker in connections.values():
            worker.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def fail_next(
        self, status: int = 429, times: int = 1, retry_after: float | None = None, message: str | None = None
    ) -> None:
        """Make the next `times` requests (any endpoint) answer `status` with an OpenAI error body."""
        with self._lock:
            for _ in range(times):
                self._failures.append(_Failure(status, retry_after, message))

    def script_chat(
        self,
        content: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        finish_reason: str | None = None,
    ) -> None:
        """Queue what the next chat completion answers; tool calls are ``{"name", "arguments"}`` dicts.

        Unset parts keep the default behaviour; finish_reason defaults to "tool_calls" or "stop".
        """
        calls = [_normalise_tool_call(call) for call in tool_calls] if tool_calls is not None else None
        with self._lock:
            self._scripts.append(_Script(content, calls, finish_reason))

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self.requests.append(request)
            self._served += 1
            return self._served

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _next_script(self) -> _Script | None:
        with self._lock:
            return self._scripts.popleft() if self._scripts else None

    def _track(self, conn: socket.socket, worker: threading.Thread | None) -> None:
        with self._lock:
            if worker is not None:
                self._connections[conn] = worker
            else:
                self._connections.pop(conn, None)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; False when the server is shutting down."""
        if seconds > 0:
            return not self._stopping.wait(seconds)
        return not self._stopping.is_set()


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 resets connections when a test fires dozens of requests at once.
    request_queue_size = 256
    fake: FakeOpenAI

    def process_request(self, request: Any, client_address: Any) -> None:
        # ThreadingMixIn does not join daemon threads on close, so stop() tracks and joins them itself;
        # they stay daemons so a server nobody stopped never holds up interpreter exit.
        worker = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="fake-openai-connection",
            daemon=True,
        )
        self.fake._track(request, worker)
        worker.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.fake._track(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer is routine here (timeouts, abandoned streams, stop()).
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeOpenAI/1.0"
    sys_version = ""

    @property
    def fake(self) -> FakeOpenAI:
        return cast(_Server, self.server).fake

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        self._request_id = "req_" + uuid.uuid4().hex
        self._started = started
        self._served = self.fake._record(
            RecordedRequest(self.command, self.path, headers, body, self._request_id)
        )

        try:
            control = _Control.from_headers(headers, self.fake)
        except ValueError as exc:
            self._send_error(400, f"Invalid x-fake-* header: {exc}")
            return
        if not self.fake._sleep(control.delay):
            self.close_connection = True
            return

        if control.status >= 400:
            self._send_error(control.status, retry_after=control.retry_after)
            return
        failure = self.fake._next_failure()
        if failure is not None:
            self._send_error(failure.status, failure.message, retry_after=failure.retry_after)
            return

        path = _AZURE_PREFIX.sub("/v1", urlsplit(self.path).path.rstrip("/"))
        route = _ROUTES.get((self.command, path))
        if route is None:
            self._send_error(404, f"Invalid URL ({self.command} {path})", code="unknown_url")
            return
        if bad_json or not isinstance(body, dict):
            self._send_error(400, "We could not parse the JSON body of your request.")
            return
        if body.get("stream") is not True and control.disconnect_after is not None:
            self.close_connection = True
            return
        try:
            answer = route(self.fake, body, control)
        except _BadRequest as exc:
            self._send_error(400, str(exc), param=exc.param)
            return
        except Exception as exc:  # A bug in the fake must show up as an answer, not as a silent hang.
            self._send_error(500, f"fake server error: {type(exc).__name__}: {exc}")
            return
        if isinstance(answer, dict):
            self._send_json(200, answer)
        else:
            self._send_stream(answer, control)

    def _common_headers(self) -> None:
        remaining = max(0, _RATE_LIMIT_REQUESTS - self._served)
        self.send_header("x-request-id", self._request_id)
        self.send_header("openai-processing-ms", str(int((time.monotonic() - self._started) * 1000)))
        self.send_header("openai-version", "2020-10-01")
        self.send_header("x-ratelimit-limit-requests", str(_RATE_LIMIT_REQUESTS))
        self.send_header("x-ratelimit-limit-tokens", str(_RATE_LIMIT_TOKENS))
        self.send_header("x-ratelimit-remaining-requests", str(remaining))
        self.send_header("x-ratelimit-remaining-tokens", str(max(0, _RATE_LIMIT_TOKENS - 100 * self._served)))
        self.send_header("x-ratelimit-reset-requests", "6ms")
        self.send_header("x-ratelimit-reset-tokens", "0s")

    def _send_json(self, status: int, payload: JSON, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._common_headers()
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        kind, default_code, default_message = _ERRORS.get(status, ("api_error", None, "Request failed."))
        error = {
            "message": message or default_message,
            "type": kind,
            "param": param,
            "code": code or default_code,
        }
        extra = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        self._send_json(status, {"error": error}, extra)

    def _send_stream(self, events: list[_Event], control: _Control) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self._common_headers()
        self.end_headers()
        if control.comment_delay:
            self._write_chunk(b": keep-alive\n\n", control.write_size)
            if not self.fake._sleep(control.comment_delay):
                self.close_connection = True
                return
        for sent, (name, data) in enumerate(events):
            if control.disconnect_after is not None and sent >= control.disconnect_after:
                # Closing without the terminating chunk makes the client see a truncated body.
                self.close_connection = True
                return
            if sent and control.chunk_delay and not self.fake._sleep(control.chunk_delay):
                self.close_connection = True
                return
            frame = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
            self._write_chunk(frame.encode(), control.write_size)
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes, size: int = 0) -> None:
        """Write `data` as one HTTP chunk, or as chunks of `size` bytes each, flushing every one."""
        pieces = (
            [data[start : start + size] for start in range(0, len(data), size)] if size and data else [data]
        )
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()


@dataclass
class _Control:
    """What the x-fake-* headers (and the server's settings) ask of one request."""

    delay: float
    status: int
    retry_after: float | None
    chunks: int
    chunk_delay: float
    disconnect_after: int | None
    interleave: bool
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    comment_delay: float = 0.0
    write_size: int = 0

    @staticmethod
    def from_headers(headers: dict[str, str], fake: FakeOpenAI) -> _Control:
        def number(name: str) -> float | None:
            value = headers.get(name)
            return float(value) if value else None

        delay = number("x-fake-delay")
        disconnect = number("x-fake-disconnect-after")
        return _Control(
            delay=fake.delay if delay is None else delay,
            status=int(number("x-fake-status") or 0),
            retry_after=number("x-fake-retry-after"),
            chunks=max(1, int(number("x-fake-chunks") or _DEFAULT_CHUNKS)),
            chunk_delay=number("x-fake-chunk-delay") or 0.0,
            disconnect_after=None if disconnect is None else int(disconnect),
            interleave=headers.get("x-fake-interleave-tools", "").lower() in ("1", "true", "yes")
            or fake.interleave_tool_calls,
            cached_tokens=int(number("x-fake-cached-tokens") or 0),
            reasoning_tokens=int(number("x-fake-reasoning-tokens") or 0),
            comment_delay=number("x-fake-comment-delay") or 0.0,
            write_size=max(0, int(number("x-fake-write-size") or 0)),
        )


# ---- request reading -------------------------------------------------------------------------------


def _text(content: Any) -> str:
    """The text of a message content: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return " ".join(parts)
    return ""


def _require(body: JSON, name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind):
        raise _BadRequest(f"Missing or invalid required parameter: '{name}'.", name)
    return value


def _limit(body: JSON, *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _n(body: JSON) -> int:
    n = body.get("n") or 1
    if not isinstance(n, int) or n < 1:
        raise _BadRequest("'n' must be a positive integer.", "n")
    return n


def _truncate(text: str, limit: int | None) -> tuple[str, bool]:
    words = text.split()
    if limit is None or len(words) <= limit:
        return text, False
    return " ".join(words[:limit]), True


def _split(text: str, pieces: int) -> list[str]:
    if not text:
        return []
    pieces = min(pieces, len(text))
    size, extra = divmod(len(text), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def _normalise_tool_call(call: dict[str, Any]) -> JSON:
    function = call.get("function", call)
    name = function.get("name")
    if not isinstance(name, str):
        raise ValueError(f"a scripted tool call needs a function name: {call!r}")
    arguments = function.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    call_id = call.get("id") or _new_id("call_")
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# ---- structured outputs ----------------------------------------------------------------------------


def _sample(schema: Any, text: str, defs: JSON) -> Any:
    """A value that fits a JSON schema: strings are `text`, numbers 0, lists empty, objects filled in."""
    if not isinstance(schema, dict):
        return text
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _sample(defs.get(ref[len("#/$defs/") :]), text, defs)
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list) and options:
        return _sample(options[0], text, defs)
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: _sample(sub, text, defs) for name, sub in properties.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text


def _structured(response_format: Any, text: str) -> str:
    """The answer text: JSON that fits the schema when a `json_schema` format is asked for."""
    if not isinstance(response_format, dict):
        return text
    kind = response_format.get("type")
    if kind == "json_object":
        return json.dumps({"text": text})
    if kind != "json_schema":
        return text
    # Chat nests the schema under "json_schema"; the Responses API's text.format carries it flat.
    spec = response_format.get("json_schema") if "json_schema" in response_format else response_format
    schema = spec.get("schema") if isinstance(spec, dict) else None
    defs = schema.get("$defs") or {} if isinstance(schema, dict) else {}
    return json.dumps(_sample(schema, text, defs))


# ---- chat completions ------------------------------------------------------------------------------


def _first_param(tool: JSON, default: str) -> str:
    properties = (tool.get("function") or {}).get("parameters", {}).get("properties") or {}
    return next(iter(properties), default) if isinstance(properties, dict) else default


def _auto_tool_calls(body: JSON, user_text: str) -> list[JSON]:
    tools = {
        tool["function"]["name"]: tool
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
    }
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return []

    def call(name: str, value: str) -> JSON:
        tool = tools.get(name, {})
        param = _first_param(tool, "city" if name == "get_weather" else "input")
        properties = (tool.get("function") or {}).get("parameters", {}).get("properties")
        arguments = {param: value} if properties or name == "get_weather" else {}
        return _normalise_tool_call({"name": name, "arguments": arguments})

    if isinstance(choice, dict):
        forced = (choice.get("function") or {}).get("name")
        if isinstance(forced, str):
            return [call(forced, user_text)]
    match = re.search(r"\bweather\b(.*)", user_text, re.IGNORECASE | re.DOTALL)
    if "get_weather" in tools and match:
        cities = re.findall(r"\b[A-Z][\w-]*", match.group(1)) or ["Paris"]
        if body.get("parallel_tool_calls") is False:
            cities = cities[:1]
        return [call("get_weather", city) for city in cities]
    if choice == "required":
        return [call(next(iter(tools)), user_text)]
    return []


def _plan_chat(body: JSON, script: _Script | None) -> list[_Choice]:
    messages = _require(body, "messages", list)
    if not messages:
        raise _BadRequest("'messages' must contain at least one message.", "messages")
    n = _n(body)
    user_text = next(
        (
            _text(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    tool_results: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        tool_results.insert(0, _text(message.get("content")))

    if script is not None and script.tool_calls is not None:
        calls = script.tool_calls
    elif tool_results:
        calls = []
    else:
        calls = _auto_tool_calls(body, user_text)
    if script is not None and script.content is not None:
        content: str | None = script.content
    elif calls:
        content = None
    elif tool_results:
        content = "According to the tool: " + "; ".join(tool_results)
    else:
        content = _structured(body.get("response_format"), "Echo: " + user_text)

    limit = _limit(body, "max_completion_tokens", "max_tokens")
    choices = []
    for index in range(n):
        text, cut = content, False
        if text is not None:
            text, cut = _truncate(text + (f" [{index}]" if index else ""), limit)
        # Each choice gets its own call ids, as the real API does.
        own_calls = [dict(c, id=c["id"] if index == 0 else _new_id("call_")) for c in calls]
        reason = "length" if cut else ("tool_calls" if calls else "stop")
        if script is not None and script.finish_reason is not None:
            reason = script.finish_reason
        choices.append(_Choice(text, own_calls, reason))
    return choices


def _chat_usage(body: JSON, choices: list[_Choice], control: _Control) -> JSON:
    prompt = 0
    for message in body["messages"]:
        if isinstance(message, dict):
            prompt += count_tokens(_text(message.get("content")))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                prompt += count_tokens(f"{function.get('name', '')} {function.get('arguments', '')}")
    completion = 0
    for choice in choices:
        completion += count_tokens(choice.content or "")
        for call in choice.tool_calls:
            completion += count_tokens(f"{call['function']['name']} {call['function']['arguments']}")
    prompt, completion = max(prompt, control.cached_tokens), completion + control.reasoning_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": control.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": control.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat(fake: FakeOpenAI, body: JSON, control: _Control) -> JSON | list[_Event]:
    model = _require(body, "model", str)
    choices = _plan_chat(body, fake._next_script())
    usage = _chat_usage(body, choices, control)
    base = {
        "id": _new_id("chatcmpl-", 29),
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }
    if body.get("stream") is not True:
        return {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": index,
                    "message": {
                        "role": "assistant",
                        "content": choice.content,
                        "refusal": None,
                        "annotations": [],
                        **({"tool_calls": choice.tool_calls} if choice.tool_calls else {}),
                    },
                    "finish_reason": choice.finish_reason,
                    "logprobs": None,
                }
                for index, choice in enumerate(choices)
            ],
            "usage": usage,
        }

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(index: int, delta: JSON, finish_reason: str | None = None) -> _Event:
        payload = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            payload["usage"] = None
        return None, json.dumps(payload)

    per_choice = [_chat_choice_chunks(i, c, control, chunk) for i, c in enumerate(choices)]
    events = _interleave(per_choice)
    if include_usage:
        events.append(
            (None, json.dumps({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        )
    events.append((None, "[DONE]"))
    return events


def _chat_choice_chunks(
    index: int, choice: _Choice, control: _Control, chunk: Callable[..., _Event]
) -> list[_Event]:
    first: JSON = {
        "role": "assistant",
        "content": "" if choice.content is not None else None,
        "refusal": None,
    }
    events = [chunk(index, first)]
    events += [chunk(index, {"content": piece}) for piece in _split(choice.content or "", control.chunks)]
    per_call: list[list[_Event]] = []
    for position, call in enumerate(choice.tool_calls):
        opening = {
            "index": position,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        calls = [chunk(index, {"tool_calls": [opening]})]
        for piece in _split(call["function"]["arguments"], control.chunks):
            calls.append(
                chunk(index, {"tool_calls": [{"index": position, "function": {"arguments": piece}}]})
            )
        per_call.append(calls)
    if control.interleave:
        events += _interleave(per_call)
    else:
        events += [event for calls in per_call for event in calls]
    events.append(chunk(index, {}, choice.finish_reason))
    return events


def _interleave(lists: list[list[_Event]]) -> list[_Event]:
    out: list[_Event] = []
    for position in range(max((len(events) for events in lists), default=0)):
        out += [events[position] for events in lists if position < len(events)]
    return out


# ---- legacy completions ----------------------------------------------------------------------------


def _prompts(prompt: Any) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        return [" ".join(str(t) for t in prompt)]
    if isinstance(prompt, list) and prompt:
        return [p if isinstance(p, str) else " ".join(str(t) for t in p) for p in prompt]
    raise _BadRequest("Missing or invalid required parameter: 'prompt'.", "prompt")


def _completions(fake: FakeOpenAI, body: JSON, control: _Control) -> JSON | list[_Event]:
    model = _require(body, "model", str)
    prompts = _prompts(body.get("prompt"))
    n = _n(body)
    limit = _limit(body, "max_tokens")
    texts: list[tuple[str, str]] = []
    for prompt in prompts:
        for j in range(n):
            text, cut = _truncate("Echo: " + prompt + (f" [{j}]" if j else ""), limit)
            texts.append((text, "length" if cut else "stop"))
    prompt_tokens = sum(count_tokens(p) for p in prompts)
    completion_tokens = sum(count_tokens(t) for t, _ in texts)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    base = {
        "id": _new_id("cmpl-", 29),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
    }
    if body.get("stream") is not True:
        choices = [
            {"text": text, "index": i, "logprobs": None, "finish_reason": reason}
            for i, (text, reason) in enumerate(texts)
        ]
        return {**base, "choices": choices, "usage": usage}

    def chunk(index: int, text: str, reason: str | None) -> _Event:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": reason}
        return None, json.dumps({**base, "choices": [choice]})

    per_choice = [
        [chunk(i, piece, None) for piece in _split(text, control.chunks)] + [chunk(i, "", reason)]
        for i, (text, reason) in enumerate(texts)
    ]
    events = _interleave(per_choice)
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append((None, json.dumps({**base, "choices": [], "usage": usage})))
    events.append((None, "[DONE]"))
    return events


# ---- embeddings ------------------------------------------------------------------------------------


def _vector(text: str, dims: int) -> list[float]:
    raw = b""
    counter = 0
    while len(raw) < 4 * dims:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [v / 2**31 - 1.0 for v in struct.unpack(f"<{dims}I", raw[: 4 * dims])]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    # Round-trip through float32 so the "float" and "base64" encodings carry the same numbers.
    return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *(v / norm for v in values))))


def _embeddings(fake: FakeOpenAI, body: JSON, control: _Control) -> JSON:
    model = _require(body, "model", str)
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise _BadRequest("Missing or invalid required parameter: 'input'.", "input")
    inputs = [item if isinstance(item, str) else " ".join(str(t) for t in item) for item in raw]
    dims = body.get("dimensions") or 8
    if not isinstance(dims, int) or dims < 1:
        raise _BadRequest("'dimensions' must be a positive integer.", "dimensions")
    encoding = body.get("encoding_format") or "float"
    data = []
    for index, text in enumerate(inputs):
        vector = _vector(text, dims)
        embedding: Any = vector
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(item) if isinstance(item, list) else count_tokens(item) for item in raw)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# ---- responses -------------------------------------------------------------------------------------


def _responses_input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in reversed(value):
            if isinstance(item, dict) and item.get("role", "user") == "user" and "content" in item:
                return _text(item["content"])
    return ""


def _responses_tool_calls(body: JSON, user_text: str) -> list[JSON]:
    # The Responses API flattens function tools and named tool choices; reuse the chat rules on them.
    tools = [
        {"type": "function", "function": {"name": tool["name"], "parameters": tool.get("parameters") or {}}}
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("name"), str)
    ]
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict) and choice.get("type") == "function":
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    after_tool = isinstance(body.get("input"), list) and any(
        isinstance(item, dict) and item.get("type") == "function_call_output" for item in body["input"][-1:]
    )
    if after_tool:
        return []
    parallel = body.get("parallel_tool_calls")
    chat_body = {"tools": tools, "tool_choice": choice, "parallel_tool_calls": parallel}
    return [
        {
            "id": _new_id("fc_", 32),
            "type": "function_call",
            "status": "completed",
            "call_id": call["id"],
            "name": call["function"]["name"],
            "arguments": call["function"]["arguments"],
        }
        for call in _auto_tool_calls(chat_body, user_text)
    ]


def _responses(fake: FakeOpenAI, body: JSON, control: _Control) -> JSON | list[_Event]:
    model = _require(body, "model", str)
    user_text = _responses_input_text(body.get("input"))
    calls = _responses_tool_calls(body, user_text)
    text_format = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    text, cut = _truncate(_structured(text_format, "Echo: " + user_text), _limit(body, "max_output_tokens"))
    input_tokens = count_tokens(user_text) + count_tokens(body.get("instructions") or "")
    output_tokens = sum(count_tokens(f"{c['name']} {c['arguments']}") for c in calls) or count_tokens(text)
    cut = cut and not calls
    message_id = _new_id("msg_", 32)
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    message = {
        "id": message_id,
        "type": "message",
        "status": "incomplete" if cut else "completed",
        "role": "assistant",
        "content": [part],
    }
    output: list[JSON] = calls or [message]
    created = time.time()
    response: JSON = {
        "id": _new_id("resp_", 32),
        "object": "response",
        "created_at": int(created),
        "status": "incomplete" if cut else "completed",
        "completed_at": None if cut else int(created),
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }
    if body.get("stream") is not True:
        return response

    pending = {**response, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    pending["incomplete_details"] = None
    steps: list[JSON] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
    ]
    for index, call in enumerate(calls):
        where = {"item_id": call["id"], "output_index": index}
        steps.append(
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**call, "arguments": "", "status": "in_progress"},
            }
        )
        steps += [
            {"type": "response.function_call_arguments.delta", **where, "delta": piece}
            for piece in _split(call["arguments"], control.chunks)
        ]
        done = {"type": "response.function_call_arguments.done", **where, "arguments": call["arguments"]}
        steps.append(done)
        steps.append({"type": "response.output_item.done", "output_index": index, "item": call})
    if not calls:
        location = {"item_id": message_id, "output_index": 0, "content_index": 0}
        steps += [
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**message, "status": "in_progress", "content": []},
            },
            {"type": "response.content_part.added", **location, "part": {**part, "text": ""}},
        ]
        steps += [
            {"type": "response.output_text.delta", **location, "delta": piece, "logprobs": []}
            for piece in _split(text, control.chunks)
        ]
        steps += [
            {"type": "response.output_text.done", **location, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **location, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": message},
        ]
    steps.append({"type": "response.incomplete" if cut else "response.completed", "response": response})
    return [
        (step["type"], json.dumps({**step, "sequence_number": number})) for number, step in enumerate(steps)
    ]


_Route = Callable[[FakeOpenAI, JSON, _Control], "JSON | list[_Event]"]
# Azure OpenAI's paths (`/openai/deployments/{name}/...`, `/openai/v1/...`, `/openai/...`) serve the same API.
_AZURE_PREFIX = re.compile(r"^/openai(?:/deployments/[^/]+|/v1)?(?=/)")

_ROUTES: dict[tuple[str, str], _Route] = {
    ("POST", "/v1/chat/completions"): _chat,
    ("POST", "/v1/completions"): _completions,
    ("POST", "/v1/embeddings"): _embeddings,
    ("POST", "/v1/responses"): _responses,
}
