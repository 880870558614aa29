"""Write a collector database of synthetic but realistically sized records, for benchmarks/viewer.py.

    .venv/bin/python benchmarks/make_store.py /tmp/neatlogs-1m.db [--records 1000000]

Records go in through RecordStore.add (the collector's own insert: columns, search index, summaries),
in batches, spread over the 7 days before now: --traces traces (a few of exactly 200 calls), 20
models, 2% errors, 10% streams with a time to first token, prompts of a few hundred to a few
thousand characters. One word (CANARY) is in 0.1% of the records. A fifth of the traces of three
calls or more (and every 200-call trace) are agents: their calls inside an agent span, every third
call inside a tool span of its own; spans are written after what they hold, as the SDK sends them,
and come on top of --records. Facts the benchmark needs (the time range, a 200-call trace and its
agent span, the canary) are written beside the file as <file>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_REPO))

from neatlogs.collector.store import RecordStore  # noqa: E402

try:
    import orjson
except ImportError:  # pragma: no cover - orjson comes with the server extra
    orjson = None  # type: ignore[assignment]

CANARY = "quetzalcoatlus"
MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "gpt-4.1-nano"),
    ("openai", "o3"),
    ("openai", "o4-mini"),
    ("openai", "gpt-5"),
    ("openai", "gpt-5-mini"),
    ("openai", "text-embedding-3-small"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-opus-4-1"),
    ("litellm", "gemini/gemini-2.5-pro"),
    ("litellm", "gemini/gemini-2.5-flash"),
    ("litellm", "mistral/mistral-large-latest"),
    ("litellm", "groq/llama-3.3-70b-versatile"),
    ("litellm", "deepseek/deepseek-chat"),
    ("litellm", "together_ai/qwen-2.5-72b"),
    ("litellm", "bedrock/anthropic.claude-3-5-sonnet"),
]
TAGS = ["production", "staging", "batch", "chat-ui", "agent", "eval", "support", "search", "beta", "nightly"]
ERRORS = [
    ("RateLimitError", "Rate limit reached for requests per minute. Please try again in 20s."),
    ("APITimeoutError", "Request timed out."),
    ("InternalServerError", "The server had an error while processing your request."),
    ("BadRequestError", "This model's maximum context length is 128000 tokens."),
    ("APIConnectionError", "Connection error."),
]
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "da", "fe", "gi", "hu", "je"]


def _vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


class _Text:
    """Random text in slices of one long run of words (a word per call to random would be slow)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = _vocabulary(rng)
        self.corpus = " ".join(rng.choice(words) for _ in range(400_000))
        self.systems = [self.make(rng.randint(200, 600)) for _ in range(12)]

    def make(self, chars: int) -> str:
        chars = min(chars, len(self.corpus) // 2)
        begin = self.corpus.index(" ", self.rng.randrange(len(self.corpus) - chars - 100)) + 1
        end = self.corpus.find(" ", begin + chars)
        return self.corpus[begin:end]


def _dumps(record: dict[str, Any]) -> str:
    # The collector stores what the exporter sent (orjson's encoding with the server extra).
    if orjson is not None:
        return orjson.dumps(record).decode()
    return json.dumps(record, separators=(",", ":"))


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(
    rng: random.Random, text: _Text, trace_id: str, model: tuple[str, str], tags: list[str], at: datetime
) -> dict[str, Any]:
    provider, name = model
    stream = rng.random() < 0.10
    failed = rng.random() < 0.02
    duration = rng.lognormvariate(6.8, 0.6)  # median ~900 ms
    user = text.make(int(rng.lognormvariate(6.5, 0.8)) + 100)
    if rng.random() < 0.001:
        user += f" {CANARY}"
    messages = [
        {"role": "system", "content": rng.choice(text.systems)},
        {"role": "user", "content": user},
    ]
    answer = None if failed else text.make(int(rng.lognormvariate(6.0, 0.7)) + 50)
    completion = None if answer is None else {"role": "assistant", "content": answer}
    prompt_tokens = (len(messages[0]["content"]) + len(user)) // 4
    completion_tokens = len(answer) // 4 if answer else 0
    error = None
    if failed:
        kind, message = rng.choice(ERRORS)
        error = {"type": kind, "message": message, "status_code": 429 if kind == "RateLimitError" else 500}
    return {
        "id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "trace_id": trace_id,
        "provider": provider,
        "operation": "chat",
        "model": name,
        "response_model": None if failed else name + "-2025-01-01",
        "request": {"model": name, "messages": messages, "temperature": 0.2, "stream": stream},
        "prompt": messages,
        "completion": completion,
        "choices": [] if completion is None else [completion],
        "finish_reason": None if failed else "stop",
        "stream": stream,
        "usage": None
        if failed
        else {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "cost_usd": None if failed else round((prompt_tokens * 2.5 + completion_tokens * 10) / 1e6, 9),
        "tags": tags,
        "started_at": _iso(at),
        "ended_at": _iso(at + timedelta(milliseconds=duration)),
        "duration_ms": round(duration, 3),
        "ttft_ms": round(duration * rng.uniform(0.05, 0.3), 3) if stream and not failed else None,
        "status": "error" if failed else "success",
        "error": error,
        "request_id": "req_" + uuid.UUID(int=rng.getrandbits(128)).hex[:24],
        "kind": "llm",
        "parent_id": None,
    }


def _span(
    rng: random.Random, trace_id: str, kind: str, name: str, tags: list[str], first: datetime, last: datetime
) -> dict[str, Any]:
    """A span record (contract section 6) from `first` to `last`."""
    duration = (last - first).total_seconds() * 1000
    arguments = {"order_id": rng.randrange(10**6), "amount": rng.randrange(1, 5000)}
    return {
        "id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "trace_id": trace_id,
        "provider": "neatlogs",
        "operation": kind,
        "model": "",
        "response_model": None,
        "request": arguments,
        "prompt": arguments,
        "completion": {"valid": rng.random() < 0.9},
        "choices": [],
        "finish_reason": None,
        "stream": False,
        "usage": None,
        "cost_usd": None,
        "tags": tags,
        "started_at": _iso(first),
        "ended_at": _iso(last),
        "duration_ms": round(duration, 3),
        "ttft_ms": None,
        "status": "success",
        "error": None,
        "kind": "span",
        "name": name,
        "parent_id": None,
    }


def _with_spans(
    rng: random.Random, calls: list[dict[str, Any]], tags: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """An agent trace: the calls under an agent span, every third in a tool span; children first."""
    trace_id = calls[0]["trace_id"]

    def moment(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    agent = _span(
        rng, trace_id, "agent", "support_agent", tags, moment(calls[0]["started_at"]),
        moment(calls[-1]["ended_at"]) + timedelta(milliseconds=5),
    )  # fmt: skip
    out: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        call["parent_id"] = agent["id"]
        out.append(call)
        if index % 3 == 2:
            tool = _span(
                rng, trace_id, "tool", "validate_transaction", tags,
                moment(call["started_at"]) - timedelta(milliseconds=3), moment(call["ended_at"]),
            )  # fmt: skip
            tool["parent_id"] = agent["id"]
            call["parent_id"] = tool["id"]
            out.append(tool)
    out.append(agent)
    return out, agent


def generate(path: Path, total: int, traces: int, seed: int = 7) -> dict[str, Any]:
    """Write `total` records in `traces` traces into a new store at `path`; return the facts file's data."""
    rng = random.Random(seed)
    text = _Text(rng)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=7)
    big = max(1, traces // 500)  # traces of exactly 200 calls (the trace page's benchmark)
    others = traces - big
    # Other traces: at least one call each, the rest spread with exponentially distributed weights
    # (most traces are short, a few long).
    weights = [rng.expovariate(1.0) for _ in range(others)]
    sizes = [1] * others
    for index in rng.choices(range(others), weights, k=total - 200 * big - others):
        sizes[index] += 1
    sizes = [200] * big + sizes
    starts = sorted(start + timedelta(seconds=rng.uniform(0, 7 * 86400 - 3600)) for _ in sizes)
    order = list(range(len(sizes)))
    rng.shuffle(order)
    popular = [1 / (rank + 1) for rank in range(len(MODELS))]  # a few popular models, a long tail
    store = RecordStore(path)
    written = 0
    batch: list[dict[str, Any]] = []
    big_trace = big_agent = ""
    spans = 0
    began = time.perf_counter()
    try:
        for index, at in zip(order, starts, strict=True):
            size = sizes[index]
            trace_id = uuid.UUID(int=rng.getrandbits(128)).hex
            if size == 200 and not big_trace:
                big_trace = trace_id
            models = rng.choices(MODELS, popular, k=rng.choice((1, 1, 2)))
            tags = rng.sample(TAGS, rng.choice((0, 1, 1, 2)))
            calls = []
            for _ in range(size):
                calls.append(_record(rng, text, trace_id, rng.choice(models), tags, at))
                at += timedelta(milliseconds=rng.uniform(200, 4000))
            if size == 200 or (size >= 3 and rng.random() < 0.2):
                calls, agent = _with_spans(rng, calls, tags)
                spans += len(calls) - size
                if trace_id == big_trace:
                    big_agent = agent["id"]
            for record in calls:
                batch.append(record)
                if len(batch) == 1000:
                    written += store.add(batch, texts=[_dumps(record) for record in batch])
                    batch = []
                    if written % 100_000 == 0:
                        rate = written / (time.perf_counter() - began)
                        print(f"{written:,} records ({rate:,.0f}/s)", file=sys.stderr)
        written += store.add(batch, texts=[_dumps(record) for record in batch])
    finally:
        store.close()
    facts = {
        "records": written,
        "traces": len(sizes),
        "since": _iso(start),
        "until": _iso(end + timedelta(hours=2)),
        "big_trace": big_trace,
        "big_agent": big_agent,
        "spans": spans,
        "canary": CANARY,
        "seconds": round(time.perf_counter() - began, 1),
    }
    Path(str(path) + ".json").write_text(json.dumps(facts, indent=2))
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--traces", type=int, default=50_000)
    args = parser.parse_args()
    if args.path.exists():
        raise SystemExit(f"{args.path} exists; give a new file")
    facts = generate(args.path, args.records, args.traces)
    size = sum(
        Path(str(args.path) + suffix).stat().st_size
        for suffix in ("", "-wal")
        if Path(str(args.path) + suffix).exists()
    )
    print(json.dumps({**facts, "bytes": size, "bytes_per_record": round(size / max(1, facts["records"]))}))


if __name__ == "__main__":
    main()
