"""A fake Anthropic Messages API on loopback, standard library only.

A real HTTP server, as `fake_openai` is, so that the anthropic SDK runs end to end over real sockets
(JSON answers and server-sent event streams).

Replies are deterministic:

- ``POST /v1/messages`` (also ``?beta=true``): ``"Echo: <last user text>"``. After ``tool_result``
  blocks: ``"According to the tool: <their contents joined by '; '>"``.
- tool use: a ``tool_choice`` of ``{"type": "tool", "name": X}`` calls X; otherwise, when a tool is named
  ``get_weather`` and the last user text contains the word "weather", one ``tool_use`` block per
  capitalised word after it ("weather in Paris and Tokyo" -> two; "Paris" if none); otherwise
  ``{"type": "any"}`` calls the first tool. Inputs are ``{<first property>: <city or user text>}``;
  the stop reason is ``"tool_use"``.
- thinking (``thinking`` of type ``enabled`` or ``adaptive``): a ``thinking`` block
  ``"Thinking about: <last user text>"`` with a signature, before the answer.
- structured outputs (``output_config.format`` / ``output_format`` of type ``json_schema``): JSON that
  fits the schema, every string being the echo text.
- ``max_tokens`` cuts the text to that many words (stop reason ``"max_tokens"``).
- tokens: whitespace-separated words of the system prompt and the messages (:func:`count_tokens`);
  ``POST /v1/messages/count_tokens`` answers ``{"input_tokens": N}`` with the same count.

Every answer carries ``request-id`` and the ``anthropic-ratelimit-*`` headers. Errors have Anthropic's
body: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

Per-request control headers (``extra_headers=``):

- ``x-fake-status: 529``: answer with this error status (``x-fake-retry-after`` adds ``retry-after``).
- ``x-fake-delay: 0.5``: sleep before answering.
- ``x-fake-chunks: 20``: split streamed text, thinking and tool input into about that many deltas.
- ``x-fake-chunk-delay: 0.01``: sleep between streamed events (a slow stream).
- ``x-fake-disconnect-after: K``: a stream sends K events then drops the connection (cut half-way).
- ``x-fake-stream-error-after: K``: a stream sends K events then an ``error`` event (overloaded).
- ``x-fake-cache-read: N`` / ``x-fake-cache-write: N``: usage reports that many prompt tokens read
  from / written to the prompt cache (taken out of ``input_tokens``, as the API counts them).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

from .fake_openai import RecordedRequest, _Server, _split, _structured, count_tokens

__all__ = ["WEATHER_TOOL", "FakeAnthropic", "RecordedRequest", "count_tokens"]

JSON = dict[str, Any]
_Event = tuple[str, JSON]  # (event name, data)

# The tool this server calls (`get_weather`, one call per city asked about).
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
_LIMIT_REQUESTS = 4_000
_LIMIT_TOKENS = 400_000

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "messages: field required"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass
class _Failure:
    status: int
    retry_after: float | None = None
    message: str | None = None


class _BadRequest(Exception):
    pass


class FakeAnthropic:
    """A threaded fake Anthropic API on 127.0.0.1; a context manager, or start()/stop().

    ``requests`` holds every request received, in order; ``delay`` is the seconds to wait before each
    answer. Give a client ``base_url=server.url``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.delay = 0.0
        self._port = port
        self._lock = threading.Lock()
        self._failures: deque[_Failure] = deque()
        self._served = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: dict[Any, threading.Thread] = {}

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT`` (the SDK's ``base_url``)."""
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not running; call start() or use it as a context manager")
        return f"http://{self.host}:{self._port}"

    def start(self) -> FakeAnthropic:
        """Start serving on a daemon thread; a restart reuses the first port. Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self._port), _Handler)
        server.fake = self  # type: ignore[assignment]  # the server only calls `_track` on it
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-anthropic", daemon=True
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
        with self._lock:
            connections = dict(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(2)
        server.server_close()
        if thread is not None:
            thread.join()
        for worker in connections.values():
            worker.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def fail_next(
        self, status: int = 429, times: int = 1, retry_after: float | None = None, message: str | None = None
    ) -> None:
        """Make the next `times` requests answer `status` with an Anthropic error body."""
        with self._lock:
            for _ in range(times):
                self._failures.append(_Failure(status, retry_after, message))

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self.requests.append(request)
            self._served += 1
            return self._served

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _track(self, conn: Any, worker: threading.Thread | None) -> None:
        with self._lock:
            if worker is not None:
                self._connections[conn] = worker
            else:
                self._connections.pop(conn, None)

    def _sleep(self, seconds: float) -> bool:
        if seconds > 0:
            return not self._stopping.wait(seconds)
        return not self._stopping.is_set()


@dataclass
class _Control:
    delay: float
    status: int
    retry_after: float | None
    chunks: int
    chunk_delay: float
    disconnect_after: int | None
    error_after: int | None
    cache_read: int
    cache_write: int

    @staticmethod
    def from_headers(headers: dict[str, str], fake: FakeAnthropic) -> _Control:
        def number(name: str) -> float | None:
            value = headers.get(name)
            return float(value) if value else None

        delay, disconnect, error_after = (
            number("x-fake-delay"),
            number("x-fake-disconnect-after"),
            number("x-fake-stream-error-after"),
        )
        return _Control(
            delay=fake.delay if delay is None else delay,
            status=int(number("x-fake-status") or 0),
            retry_after=number("x-fake-retry-after"),
            chunks=max(1, int(number("x-fake-chunks") or 5)),
            chunk_delay=number("x-fake-chunk-delay") or 0.0,
            disconnect_after=None if disconnect is None else int(disconnect),
            error_after=None if error_after is None else int(error_after),
            cache_read=int(number("x-fake-cache-read") or 0),
            cache_write=int(number("x-fake-cache-write") or 0),
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeAnthropic/1.0"
    sys_version = ""

    @property
    def fake(self) -> FakeAnthropic:
        return cast(FakeAnthropic, cast(_Server, self.server).fake)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        body: Any = None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._request_id = "req_" + uuid.uuid4().hex[:24]
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
        failure = self.fake._next_failure()
        if control.status >= 400:
            failure = _Failure(control.status, control.retry_after)
        if failure is not None:
            self._send_error(failure.status, failure.message, failure.retry_after)
            return
        path = urlsplit(self.path).path.rstrip("/")
        if not isinstance(body, dict):
            self._send_error(400, "The request body is not valid JSON.")
            return
        try:
            if path == "/v1/messages/count_tokens":
                self._send_json(200, {"input_tokens": _input_tokens(body)})
            elif path == "/v1/messages":
                answer = _message(body, control)
                if body.get("stream") is True:
                    self._send_stream(_events(answer, control), control)
                elif control.disconnect_after is not None:
                    self.close_connection = True
                else:
                    self._send_json(200, answer)
            else:
                self._send_error(404, f"Not found: {path}")
        except _BadRequest as exc:
            self._send_error(400, str(exc))
        except Exception as exc:  # a bug in the fake must show up as an answer, not as a hang
            self._send_error(500, f"fake server error: {type(exc).__name__}: {exc}")

    def _common_headers(self) -> None:
        remaining = max(0, _LIMIT_REQUESTS - self._served)
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
        self.send_header("request-id", self._request_id)
        self.send_header("anthropic-organization-id", "org-fake")
        self.send_header("anthropic-ratelimit-requests-limit", str(_LIMIT_REQUESTS))
        self.send_header("anthropic-ratelimit-requests-remaining", str(remaining))
        self.send_header("anthropic-ratelimit-requests-reset", reset)
        self.send_header("anthropic-ratelimit-tokens-limit", str(_LIMIT_TOKENS))
        self.send_header(
            "anthropic-ratelimit-tokens-remaining", str(max(0, _LIMIT_TOKENS - 100 * self._served))
        )
        self.send_header("anthropic-ratelimit-tokens-reset", reset)
        self.send_header("anthropic-ratelimit-input-tokens-limit", str(_LIMIT_TOKENS))
        self.send_header("anthropic-ratelimit-output-tokens-limit", str(_LIMIT_TOKENS // 5))

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

    def _send_error(self, status: int, message: str | None = None, retry_after: float | None = None) -> None:
        kind, default = _ERRORS.get(status, ("api_error", "Request failed."))
        payload = {
            "type": "error",
            "error": {"type": kind, "message": message or default},
            "request_id": self._request_id,
        }
        extra = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        self._send_json(status, payload, extra)

    def _send_stream(self, events: list[_Event], control: _Control) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self._common_headers()
        self.end_headers()
        for sent, (name, data) in enumerate(events):
            if control.disconnect_after is not None and sent >= control.disconnect_after:
                self.close_connection = True  # no terminating chunk: the client sees a cut body
                return
            if control.error_after is not None and sent >= control.error_after:
                kind, message = _ERRORS[529]
                name, data = "error", {"type": "error", "error": {"type": kind, "message": message}}
                self._write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                break
            if sent and control.chunk_delay and not self.fake._sleep(control.chunk_delay):
                self.close_connection = True
                return
            self._write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


# ---- reading the request ---------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def _input_tokens(body: JSON) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("messages: at least one message is required")
    if not isinstance(body.get("model"), str):
        raise _BadRequest("model: field required")
    total = count_tokens(_text(body.get("system")))
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        total += count_tokens(_text(content))
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_result":
                total += count_tokens(_text(block.get("content")))
            elif isinstance(block, dict) and block.get("type") == "tool_use":
                total += count_tokens(f"{block.get('name', '')} {json.dumps(block.get('input'))}")
    return total


def _tool_results(messages: list[Any]) -> list[str]:
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user" or not isinstance(last.get("content"), list):
        return []
    return [
        _text(block.get("content")) if not isinstance(block.get("content"), str) else block["content"]
        for block in last["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def _tool_uses(body: JSON, user_text: str) -> list[JSON]:
    tools = {
        tool["name"]: tool
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("name"), str)
    }
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return []

    def use(name: str, value: str) -> JSON:
        properties = (tools.get(name, {}).get("input_schema") or {}).get("properties") or {}
        param = next(iter(properties), "city" if name == "get_weather" else "input")
        return {
            "type": "tool_use",
            "id": "toolu_" + uuid.uuid4().hex[:24],
            "name": name,
            "input": {param: value},
        }

    if choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return [use(choice["name"], user_text)]
    match = re.search(r"\bweather\b(.*)", user_text, re.IGNORECASE | re.DOTALL)
    if "get_weather" in tools and match:
        cities = re.findall(r"\b[A-Z][\w-]*", match.group(1)) or ["Paris"]
        if choice.get("disable_parallel_tool_use"):
            cities = cities[:1]
        return [use("get_weather", city) for city in cities]
    if choice.get("type") == "any":
        return [use(next(iter(tools)), user_text)]
    return []


def _output_format(body: JSON) -> Any:
    config = body.get("output_config")
    found = config.get("format") if isinstance(config, dict) else None
    return found or body.get("output_format")


def _message(body: JSON, control: _Control) -> JSON:
    """The whole answer to a messages request, as the non-streamed API gives it."""
    prompt_tokens = _input_tokens(body)
    messages = body["messages"]
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _BadRequest("max_tokens: field required")
    user_text = next(
        (
            _text(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    results = _tool_results(messages)
    uses = [] if results else _tool_uses(body, user_text)
    content: list[JSON] = []
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        content.append(
            {
                "type": "thinking",
                "thinking": f"Thinking about: {user_text}",
                "signature": "sig_" + uuid.uuid4().hex,
            }
        )
    stop_reason = "tool_use" if uses else "end_turn"
    if results:
        text = "According to the tool: " + "; ".join(results)
    else:
        output_format = _output_format(body)
        schema_format = (
            {"type": "json_schema", "schema": output_format.get("schema")}
            if isinstance(output_format, dict) and output_format.get("type") == "json_schema"
            else None
        )
        text = _structured(schema_format, "Echo: " + user_text)
    words = text.split()
    if len(words) > max_tokens:
        text, stop_reason, uses = " ".join(words[:max_tokens]), "max_tokens", []
    if not uses or results:
        content.append({"type": "text", "text": text})
    content += uses
    output_tokens = sum(
        count_tokens(block.get("text") or block.get("thinking") or "")
        + (
            count_tokens(f"{block['name']} {json.dumps(block['input'])}")
            if block["type"] == "tool_use"
            else 0
        )
        for block in content
    )
    cache_read = min(control.cache_read, prompt_tokens)
    cache_write = min(control.cache_write, prompt_tokens - cache_read)
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt_tokens - cache_read - cache_write,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }


def _events(message: JSON, control: _Control) -> list[_Event]:
    """The server-sent events of a streamed answer, as the API sends them (with a ping)."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[_Event] = [("message_start", {"type": "message_start", "message": start})]
    events.append(("ping", {"type": "ping"}))
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            opening: JSON = {"type": "text", "text": ""}
            deltas = [
                {"type": "text_delta", "text": piece} for piece in _split(block["text"], control.chunks)
            ]
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": piece}
                for piece in _split(block["thinking"], control.chunks)
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            arguments = json.dumps(block["input"])
            deltas = [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in _split(arguments, control.chunks)
            ]
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
        )
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    final = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": final, "usage": {"output_tokens": usage["output_tokens"]}},
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events
