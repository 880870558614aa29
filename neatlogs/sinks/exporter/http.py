"""The NeatLogs ingest protocol over one `requests.Session`: gzip'd JSON batches, retries, 413 splitting.

This module never logs and never counts process-wide: it reports problems through a callback and
returns what happened to each record, so the batcher decides what to log, spool or drop.
"""

from __future__ import annotations

import collections
import datetime
import email.utils
import enum
import gzip
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from neatlogs._fastpaths import environ_reader
from neatlogs._version import __version__
from neatlogs.record.redact import mask_secrets
from neatlogs.sinks.exporter.wire import record_texts, to_utf8
from neatlogs.sinks.suppress import suppressed_instrumentation

# Backoff with full jitter: wait uniform(0, min(cap, base * 2**attempt)). Tests shorten these.
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 30.0
# (connect, read) timeouts; the connect one is a little over a multiple of 3 s, the TCP retransmit window.
_TIMEOUT = (3.05, 10.0)
# Never wait less than this for a socket, even when shutdown's deadline is nearly spent.
_MIN_TIMEOUT = 0.1
# Level 1 compresses JSON records well at a fraction of level 9's CPU cost (docs/exporter.md).
_GZIP_LEVEL = 1
_BODY_SNIPPET = 200
_PATH = "/v1/records"
_SEPARATORS = (",", ":")
# How the collector names the record a 400 is about (see `_collector.app._record_problem`).
_NAMED_RECORD = re.compile(r"\brecords\[(\d{1,9})\]")

Record = dict[str, Any]
# report(kind, message): one line for the log; the batcher rate-limits by kind.
Report = Callable[[str, str], None]


class _Answer(enum.Enum):
    OK = "ok"
    RETRY = "retry"  # 408, 429, 5xx, timeout, connection error
    TOO_LARGE = "too_large"  # 413
    AUTH = "auth"  # 401, 403
    BAD_REQUEST = "bad_request"  # 400: a record in the batch, or the whole request
    REFUSED = "refused"  # other 4xx, redirects


@dataclass
class Delivery:
    """What became of one batch: counts, and the records still undelivered when the deadline passed."""

    sent: int = 0
    failed: int = 0  # refused by the collector; never retried
    dropped: int = 0  # could not be encoded
    retried: int = 0  # retry attempts (requests repeated after a retriable failure)
    auth_refused: bool = False
    undelivered: list[Record] = field(default_factory=list)


class _BearerAuth(requests.auth.AuthBase):
    """Sets the Authorization header; as session auth it also stops requests from consulting ~/.netrc."""

    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._api_key:
            request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


def sdk_block() -> dict[str, str]:
    """The payload's `sdk` member: this library's name and version."""
    return {"name": "neatlogs", "version": __version__}


def encode_batch(
    records: list[Record], sdk: dict[str, str]
) -> tuple[bytes, list[Record], list[BaseException]]:
    """The gzip'd JSON body for a batch, the records it holds, and why the others were left out (a
    record that cannot be encoded must not cost the rest of its batch)."""
    texts, kept, errors = record_texts(records)
    text = '{"records":[' + ",".join(texts) + '],"sdk":' + json.dumps(sdk, separators=_SEPARATORS) + "}"
    return gzip.compress(to_utf8(text), compresslevel=_GZIP_LEVEL, mtime=0), kept, errors


def encode(records: list[Record], sdk: dict[str, str]) -> bytes:
    """The gzip'd JSON body for a batch (records that cannot be encoded are left out)."""
    return encode_batch(records, sdk)[0]


def _count(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"


def describe_unencodable(errors: list[BaseException]) -> str:
    """One log line for records left out of a batch because they could not be encoded."""
    first = errors[0]
    return (
        f"left out {len(errors)} record(s) that could not be encoded as JSON "
        f"({type(first).__name__}: {mask_secrets(str(first))[:_BODY_SNIPPET]})"
    )


def refusal_budget(n: int) -> int:
    """How many 400 answers a batch of `n` records may get while the exporter looks for the records
    the collector refuses: enough to bisect down to one bad record (log2(n) rounds), no more."""
    return max(0, n - 1).bit_length() + 1


def named_record(message: str, n: int) -> int | None:
    """The index a collector's 400 names (`records[7] is missing 'model'`), if it is one of `n`."""
    found = _NAMED_RECORD.search(message)
    if found is None:
        return None
    index = int(found.group(1))
    return index if index < n else None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def backoff_delay(attempt: int) -> float:
    """Full-jitter exponential backoff for the given retry attempt (0-based)."""
    return random.uniform(0.0, min(_BACKOFF_CAP, _BACKOFF_BASE * (2.0 ** min(attempt, 30))))


class _BodyThenWork:
    """A request body that runs `work` once it has been handed to the socket, before the answer is read.

    With Content-Length framing (requests sets it from `__len__`) the collector starts on the batch as
    soon as it has the last byte, so `work` (preparing the next batch) overlaps the collector's own
    work on this one: the exporter's single thread gets the throughput of a two-stage pipeline.
    """

    def __init__(self, body: bytes, work: Callable[[], None]) -> None:
        self._body = body
        self._work: Callable[[], None] | None = work

    def __len__(self) -> int:
        return len(self._body)

    def __iter__(self) -> Iterator[bytes]:
        yield self._body
        work, self._work = self._work, None
        if work is not None:
            work()


# How long the environment's proxy and CA bundle settings are reused while the environment is unchanged
# (the OS's own proxy configuration, read on macOS and Windows, is not watched: it is read again after this).
_ENV_SETTINGS_TTL = 1.0
# The environment as a mapping whose copy compares equal to it until a variable changes (_fastpaths).
_read_environ = environ_reader()


class _Session(requests.Session):
    """A `requests.Session` that reads the environment's proxy and CA settings once per change.

    `requests` reads them for every request (every variable of the environment, several times), a
    large share of a request's CPU (docs/overhead.md). The result is reused while the environment is
    the same and for at most `_ENV_SETTINGS_TTL` seconds: the same settings `requests` would have found.
    """

    def __init__(self) -> None:
        super().__init__()
        self._env_cache: tuple[Any, ...] | None = None

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:  # requests' stubs call it _Settings: a dict of proxies, stream, verify and cert
        environ = _read_environ()
        key = (url, tuple(sorted((proxies or {}).items())), stream, verify, cert)
        cached = self._env_cache
        now = time.monotonic()
        if (
            cached is not None
            and cached[0] == key
            and now - cached[1] < _ENV_SETTINGS_TTL
            and cached[2] == environ
        ):
            settings: Any = cached[3]
        else:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._env_cache = (key, now, dict(environ), settings)
        found = dict(settings)
        if isinstance(found.get("proxies"), dict):
            found["proxies"] = dict(found["proxies"])
        return found


def _reason(exc: requests.RequestException) -> str:
    """The useful end of a requests error ("[Errno 111] Connection refused"), without urllib3's wrapping."""
    inner = exc.args[0] if exc.args else None
    text = str(getattr(inner, "reason", None) or exc)
    if text.startswith(("HTTPConnection(", "HTTPSConnection(", "<urllib3")) and ": " in text:
        text = text.split(": ", 1)[1]
    return mask_secrets(f"{type(exc).__name__}: {text}")


class IngestClient:
    """POSTs batches to one collector endpoint with one API key over one keep-alive session."""

    def __init__(self, endpoint: str, api_key: str | None) -> None:
        self.url = endpoint.rstrip("/") + _PATH
        self._session = _Session()
        self._session.auth = _BearerAuth(api_key)
        self._has_key = bool(api_key)
        self._refusing = False  # the last batch was refused whole: do not bisect the next one far
        self._sdk = sdk_block()
        self._session.headers.update(
            {
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "User-Agent": f"neatlogs/{self._sdk['version']}",
            }
        )

    def __repr__(self) -> str:
        return f"IngestClient({self.url!r})"

    def close(self) -> None:
        """Close the session's pooled connections."""
        self._session.close()

    def encode(self, records: list[Record]) -> tuple[bytes, list[Record], list[BaseException]]:
        """The request body for `records` (see `deliver`'s `body`), the records it holds, and why
        the others could not be encoded."""
        return encode_batch(records, self._sdk)

    def deliver(
        self,
        records: list[Record],
        deadline: Callable[[], float],
        wait: Callable[[float], object],
        report: Report,
        retry: bool = True,
        body: bytes | None = None,
        while_waiting: Callable[[], None] | None = None,
        cutoff: Callable[[], float] | None = None,
    ) -> Delivery:
        """Send `records`, retrying until `deadline()` (a monotonic time); always makes one attempt.

        `wait(seconds)` sleeps between retries and may return early (flush or shutdown): the batch is
        then retried at once, against the possibly shortened deadline. With `retry=False` the first
        retriable failure leaves the rest undelivered. `body` is the body `self.encode(records)`
        made, if already made; `while_waiting()` runs once, after the first request's body is sent
        and before its answer is read. `cutoff()`, if given, is when any request must be over
        (shutdown): socket timeouts shrink to fit it.

        A 400 is taken to be about a record: the batch is split (at the record the answer names, or
        in halves) until the refused records are alone, and only those are dropped. At most
        `refusal_budget(len(records))` 400s are spent on that (one after a batch that was refused
        whole: a collector that refuses everything costs two requests per batch); past it, what is
        left of the batch is dropped.
        """
        out = Delivery()
        # Chunks still to send, in order, each with its encoded body once known (reused on retry).
        pending: collections.deque[tuple[list[Record], bytes | None]] = collections.deque([(records, body)])
        attempt = 0
        refusals = 0
        budget = 1 if self._refusing else refusal_budget(len(records))
        while pending:
            chunk, chunk_body = pending.popleft()
            if chunk_body is None:
                chunk_body, kept, errors = encode_batch(chunk, self._sdk)
                if errors:
                    out.dropped += len(errors)
                    report("unencodable", describe_unencodable(errors))
                    chunk = kept
                    if not chunk:
                        continue
            answer, message, retry_after = self._post(chunk_body, cutoff() if cutoff else None, while_waiting)
            while_waiting = None
            if answer is _Answer.OK:
                out.sent += len(chunk)
                attempt = 0
            elif answer is _Answer.TOO_LARGE:
                if len(chunk) == 1:
                    out.failed += 1
                    report("too_large", f"the collector refused a single record as too large ({message})")
                else:
                    half = len(chunk) // 2
                    pending.extendleft([(chunk[half:], None), (chunk[:half], None)])
            elif answer is _Answer.BAD_REQUEST:
                refusals += 1
                self._split_refused(chunk, message, refusals > budget, pending, out, report)
            elif answer is _Answer.AUTH:
                out.failed += len(chunk) + sum(len(rest) for rest, _ in pending)
                out.auth_refused = True
                report("auth", message)
                break
            elif answer is _Answer.REFUSED:
                out.failed += len(chunk)
                report("refused", f"the collector refused a batch of {len(chunk)} records: {message}")
            else:
                # At least what Retry-After asks, and never less than the backoff: "Retry-After: 0"
                # from a struggling collector must not turn into a retry storm.
                delay = max(retry_after or 0.0, backoff_delay(attempt))
                attempt += 1
                report("unavailable", message)
                if not retry or time.monotonic() + delay >= deadline():
                    out.undelivered = [r for part in [chunk, *(rest for rest, _ in pending)] for r in part]
                    break
                out.retried += 1
                pending.appendleft((chunk, chunk_body))
                wait(delay)
        if out.sent:
            self._refusing = False
        elif refusals and not out.undelivered and not out.auth_refused:
            self._refusing = True
        return out

    @staticmethod
    def _split_refused(
        chunk: list[Record],
        message: str,
        spent: bool,
        pending: collections.deque[tuple[list[Record], bytes | None]],
        out: Delivery,
        report: Report,
    ) -> None:
        """A 400 for `chunk`: drop it when it is one record (or the budget is spent: with the rest of
        the batch), else queue its parts without the record the answer names, if it names one."""
        if spent:
            n = len(chunk) + sum(len(rest) for rest, _ in pending)
            pending.clear()
            out.failed += n
            report("refused", f"the collector refused {_count(n)} that could not be told apart: {message}")
            return
        index = 0 if len(chunk) == 1 else named_record(message, len(chunk))
        if index is None:
            half = len(chunk) // 2
            parts = [chunk[:half], chunk[half:]]
        else:
            out.failed += 1
            report(
                "refused_record",
                f"the collector refused record {chunk[index].get('id')!r} ({message}); dropped it and "
                "sent the rest of its batch",
            )
            parts = [chunk[:index], chunk[index + 1 :]]
        pending.extendleft([(part, None) for part in reversed(parts) if part])

    def _post(
        self, body: bytes, cutoff: float | None, while_waiting: Callable[[], None] | None
    ) -> tuple[_Answer, str, float | None]:
        timeout = _TIMEOUT
        if cutoff is not None:
            remaining = max(_MIN_TIMEOUT, cutoff - time.monotonic())
            timeout = (min(_TIMEOUT[0], remaining), min(_TIMEOUT[1], remaining))
        data = body if while_waiting is None else _BodyThenWork(body, while_waiting)
        try:
            with suppressed_instrumentation():
                response = self._session.post(self.url, data=data, timeout=timeout, allow_redirects=False)
        except requests.Timeout:
            return _Answer.RETRY, f"the collector at {self.url} did not answer in time", None
        except requests.RequestException as exc:
            return _Answer.RETRY, f"could not reach the collector at {self.url} ({_reason(exc)})", None
        with response:
            status = response.status_code
            if 200 <= status < 300:
                return _Answer.OK, "", None
            # Only the status and a masked start of the body are reported, never headers.
            snippet = mask_secrets(response.text[:_BODY_SNIPPET].strip())
            described = f"HTTP {status} from {self.url}" + (f": {snippet}" if snippet else "")
            if status in (401, 403):
                problem = (
                    "rejected the API key" if self._has_key else "requires an API key and none was given"
                )
                return (
                    _Answer.AUTH,
                    f"the collector at {self.url} {problem} (HTTP {status}); set NEATLOGS_API_KEY or pass "
                    "api_key. Records for this endpoint are dropped until a key is accepted.",
                    None,
                )
            if status == 413:
                return _Answer.TOO_LARGE, described, None
            if status == 400:
                return _Answer.BAD_REQUEST, described, None
            if status in (408, 429) or status >= 500:
                return _Answer.RETRY, described, parse_retry_after(response.headers.get("Retry-After"))
            if 300 <= status < 400:
                location = response.headers.get("Location", "?")
                return (
                    _Answer.REFUSED,
                    f"{described}; redirect to {location} not followed: set the endpoint to the final URL",
                    None,
                )
            return _Answer.REFUSED, described, None
