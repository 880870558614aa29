"""The examples run offline, end to end, and leave the records (and spans) their docstrings promise."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs._testing.fake_openai import FakeOpenAI
from neatlogs.collector.server import CollectorServer
from neatlogs.openai import OpenAIProvider
from neatlogs.sinks.exporter import shutdown_all

from .conftest import OPENAI_KEY

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CATEGORIES = ["food", "sports", "tech"]


@functools.cache
def example(name: str) -> ModuleType:
    """Import examples/<name>.py (not a package) as the module `example_<name>`."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real API, collector or OTLP endpoint; stops the tracker an example's init() started."""
    for name in list(os.environ):
        if name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY") or name.startswith(("NEATLOGS_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(neatlogs, "_default_tracker", None)
    yield
    tracker = neatlogs._default_tracker
    if tracker is not None:
        tracker.stop_instrumenting()


def _by_trace(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["trace_id"], []).append(record)
    return grouped


# ---- quickstart ----


def test_quickstart_records_its_plain_and_streamed_calls(client: openai.OpenAI) -> None:
    records = example("quickstart").run(client)

    assert [(r["stream"], r["status"]) for r in records] == [(False, "success"), (True, "success")]
    assert [r["completion"]["content"] for r in records] == [
        "Echo: Name three colours",
        "Echo: Count to five",
    ]
    assert all(r["trace_id"] == "quickstart" and r["tags"] == ["example", "openai"] for r in records)
    assert all(r["usage"]["total_tokens"] == 7 and r["cost_usd"] > 0 for r in records)
    assert records[0]["ttft_ms"] is None and records[1]["ttft_ms"] is not None


def test_quickstart_gives_the_sdk_its_own_functions_back_when_it_is_done(client: openai.OpenAI) -> None:
    chat_completions = type(client.chat.completions)
    original = vars(chat_completions)["create"]

    example("quickstart").run(client)

    assert vars(chat_completions)["create"] is original


def test_quickstart_main_prints_the_streamed_text_and_both_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example("quickstart").main()

    out = capsys.readouterr().out
    assert "Echo: Count to five\n" in out
    assert out.count('"status": "success"') == 2 and '"stream": true' in out


# ---- tweet_generator ----


async def test_each_tweet_is_its_own_trace_tagged_with_its_category(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    tweets = example("tweet_generator")
    generator = tweets.TweetGenerator(async_client, rate=1000)

    results = await generator.generate_all(tweets.REQUESTS)

    records = provider.get_conversation_history()
    by_trace = _by_trace(records)
    assert all(isinstance(result, tweets.Tweet) for result in results)
    assert len(by_trace) == len(results) == 6
    for tweet in results:
        (record,) = by_trace[tweet.trace_id]
        assert record["tags"] == ["test", tweet.category]
        assert record["completion"]["content"] == tweet.text
        assert tweet.category in record["prompt"][0]["content"]
    summary = tweets.summarise(records, CATEGORIES)
    assert [summary[c]["calls"] for c in CATEGORIES] == [2, 2, 2]
    assert all(summary[c]["tokens"] > 0 and summary[c]["cost_usd"] > 0 for c in CATEGORIES)


async def test_the_rate_limiter_spaces_the_calls_as_the_records_show(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI
) -> None:
    tweets = example("tweet_generator")
    began = datetime.now(timezone.utc)
    await tweets.TweetGenerator(async_client, rate=20).generate_all(tweets.REQUESTS[:4])

    starts = sorted(
        datetime.fromisoformat(r["started_at"].replace("Z", "+00:00"))
        for r in provider.get_conversation_history()
    )
    # 20 per second: the i-th call may not start before i * 50 ms. (Gaps between neighbours can be
    # shorter when an earlier call started late: a limiter keeps the schedule, not the gaps.)
    offsets = [(start - began).total_seconds() for start in starts]
    assert len(offsets) == 4
    assert all(offset >= 0.05 * i - 0.002 for i, offset in enumerate(offsets)), offsets


async def test_a_rejected_reply_is_still_recorded_as_the_model_sent_it(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    tweets = example("tweet_generator")
    fake_openai.script_chat(content="Big win tonight! #sports")

    with pytest.raises(tweets.InvalidTweet, match="hashtags"):
        await tweets.TweetGenerator(async_client).generate("sports", "a cup final")

    (record,) = provider.get_conversation_history()
    assert record["status"] == "success" and record["tags"] == ["test", "sports"]
    assert record["completion"]["content"] == "Big win tonight! #sports"


def test_tweet_generator_main_sends_its_records_to_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with CollectorServer(tmp_path / "records.db") as collector:
        monkeypatch.setenv("NEATLOGS_ENDPOINT", collector.url)
        try:
            example("tweet_generator").main()
        finally:
            shutdown_all(timeout=2)
        stored = collector.store.records(limit=100)

    assert sorted(r["tags"][1] for r in stored) == sorted(c for c, _ in example("tweet_generator").REQUESTS)
    assert all(r["tags"][0] == "tweet-generator" and r["status"] == "success" for r in stored)
    assert len({r["trace_id"] for r in stored}) == 6
    out = capsys.readouterr().out
    assert out.count("[sports]") == 2 and "food" in out and "latency ms" in out


# ---- agent_tools ----


def _serve_agent(fake: FakeOpenAI) -> Any:
    app = example("agent_tools").create_app(base_url=fake.base_url, api_key=OPENAI_KEY, max_retries=0)
    return example("agent_tools").serve_in_background(app)


def test_agent_streams_tool_calls_results_and_answer_and_records_them_under_the_conversation(
    provider: OpenAIProvider, fake_openai: FakeOpenAI
) -> None:
    agent = example("agent_tools")
    with _serve_agent(fake_openai) as url:
        events = list(agent.ask(url, "What is the weather in Paris and Tokyo?", "conversation-1"))

    names = [event for event, _ in events]
    assert names[:4] == ["tool_call", "tool_result", "tool_call", "tool_result"]
    assert set(names[4:-1]) == {"token"} and names[-1] == "done"
    asked = [json.loads(data["arguments"]) for event, data in events if event == "tool_call"]
    assert asked == [{"city": "Paris"}, {"city": "Tokyo"}]
    results = [data["result"] for event, data in events if event == "tool_result"]
    answer = events[-1][1]["answer"]
    assert answer == "".join(data["text"] for event, data in events if event == "token")
    assert answer == "According to the tool: " + "; ".join(json.dumps(r) for r in results)

    first, second = provider.get_conversation_history()
    assert first["trace_id"] == second["trace_id"] == "conversation-1"
    assert first["stream"] and first["finish_reason"] == "tool_calls"
    calls = first["completion"]["tool_calls"]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    tool_messages = [m for m in second["prompt"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == [c["id"] for c in calls]
    assert [json.loads(m["content"]) for m in tool_messages] == results
    assert second["finish_reason"] == "stop" and second["completion"]["content"] == answer


def test_concurrent_conversations_keep_their_own_trace_ids(
    provider: OpenAIProvider, fake_openai: FakeOpenAI
) -> None:
    agent = example("agent_tools")
    questions = {"weather-talk": "Is there weather in Oslo?", "small-talk": "Hello there"}
    with _serve_agent(fake_openai) as url:
        threads = [
            threading.Thread(target=lambda c=cid, q=q: list(agent.ask(url, q, c)))
            for cid, q in questions.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    by_trace = _by_trace(provider.get_conversation_history())
    assert {cid: len(records) for cid, records in by_trace.items()} == {"weather-talk": 2, "small-talk": 1}
    for cid, records in by_trace.items():
        assert all(r["prompt"][1]["content"] == questions[cid] for r in records)


def test_agent_tools_main_prints_the_events_and_the_recorded_calls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["agent_tools.py"])
    example("agent_tools").main()

    out = capsys.readouterr().out
    assert out.count("[tool_call]") == 2 and out.count("[tool_result]") == 2
    assert "2 model calls recorded under trace conversation-" in out
    records = neatlogs.get_conversation_history()
    assert [r["tags"] for r in records] == [["agent"], ["agent"]]
    assert records[0]["trace_id"] == records[1]["trace_id"]


# ---- claude_tools ----


def test_claude_tool_conversation_is_recorded_call_by_call_under_the_conversation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import anthropic

    from neatlogs._testing.fake_anthropic import FakeAnthropic
    from neatlogs.anthropic import AnthropicProvider

    provider = AnthropicProvider(tags=["test"], otel=False)
    provider.override()
    try:
        with FakeAnthropic() as fake, anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-x") as client:
            answer, results = example("claude_tools").converse(
                client, "What is the weather in Paris and Tokyo?", "claude-conversation"
            )
    finally:
        provider.undo_override()

    first, second = provider.get_conversation_history()
    assert first["trace_id"] == second["trace_id"] == "claude-conversation"
    assert first["stream"] and first["finish_reason"] == "tool_use"
    assert first["prompt"][0] == {"role": "system", "content": example("claude_tools").SYSTEM}
    assert first["completion"]["thinking"].startswith("Thinking about:")
    calls = first["completion"]["tool_calls"]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    tool_results = [block for block in second["prompt"][-1]["content"] if block["type"] == "tool_result"]
    assert [b["tool_use_id"] for b in tool_results] == [c["id"] for c in calls]
    assert [json.loads(b["content"]) for b in tool_results] == results
    assert second["finish_reason"] == "end_turn" and second["completion"]["content"] == answer
    assert answer == "According to the tool: " + "; ".join(json.dumps(r) for r in results)
    assert all(r["cost_usd"] > 0 and r["usage"]["total_tokens"] > 0 for r in (first, second))
    assert answer in capsys.readouterr().out  # streamed to the terminal as it came


def test_claude_tools_main_prints_the_conversation_and_its_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example("claude_tools").main()

    out = capsys.readouterr().out
    assert out.count("[tool] get_weather") == 2 and "According to the tool:" in out
    assert "2 Claude calls recorded under trace conversation-" in out
    records = neatlogs.get_conversation_history()
    assert [(r["provider"], r["tags"]) for r in records] == [("anthropic", ["claude-tools"])] * 2


# ---- retrying_generator ----


@pytest.mark.parametrize(("status", "error_type"), [(429, "RateLimitError"), (500, "InternalServerError")])
async def test_a_failed_attempt_and_the_successful_retry_are_two_records_of_one_trace(
    provider: OpenAIProvider,
    async_client: openai.AsyncOpenAI,
    fake_openai: FakeOpenAI,
    status: int,
    error_type: str,
) -> None:
    from tenacity import wait_none

    fake_openai.fail_next(status=status)
    text, trace_id = await example("retrying_generator").generate(async_client, "hi", wait=wait_none())

    failed, succeeded = provider.get_conversation_history()
    assert text == "Echo: hi" and succeeded["completion"]["content"] == text
    assert failed["trace_id"] == succeeded["trace_id"] == trace_id
    assert failed["stream"] and succeeded["stream"]
    assert (failed["status"], failed["error"]["type"], failed["error"]["status_code"]) == (
        "error",
        error_type,
        status,
    )
    assert failed["error"]["request_id"] == fake_openai.requests[0].request_id
    assert succeeded["status"] == "success" and succeeded["usage"]["total_tokens"] > 0


async def test_when_every_attempt_fails_the_last_sdk_error_is_raised_and_each_attempt_recorded(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    from tenacity import wait_none

    fake_openai.fail_next(status=503, times=3)
    with pytest.raises(openai.InternalServerError):
        await example("retrying_generator").generate(async_client, "hi", attempts=3, wait=wait_none())

    records = provider.get_conversation_history()
    assert [(r["status"], r["error"]["status_code"]) for r in records] == [("error", 503)] * 3


async def test_a_bad_request_is_not_retried(
    provider: OpenAIProvider, async_client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    from tenacity import wait_none

    fake_openai.fail_next(status=400)
    with pytest.raises(openai.BadRequestError):
        await example("retrying_generator").generate(async_client, "hi", wait=wait_none())

    assert [r["error"]["type"] for r in provider.get_conversation_history()] == ["BadRequestError"]


def test_retrying_generator_main_shows_the_429_the_500_and_the_success(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example("retrying_generator").main()

    out = capsys.readouterr().out
    assert "attempt 1 failed: RateLimitError" in out and "attempt 2 failed: InternalServerError" in out
    first, second = _by_trace(neatlogs.get_conversation_history()).values()
    assert [(r["status"], (r["error"] or {}).get("status_code")) for r in first] == [
        ("error", 429),
        ("error", 500),
        ("success", None),
    ]
    assert [r["status"] for r in second] == ["success"]


# ---- error_handling ----


def test_each_typed_error_reaches_the_caller_and_its_record_says_what_happened(
    provider: OpenAIProvider, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    errors = example("error_handling").run(client, fake_openai)

    expected = {
        "wrong_key": (openai.AuthenticationError, 401),
        "rate_limited": (openai.RateLimitError, 429),
        "bad_request": (openai.BadRequestError, 400),
        "too_slow": (openai.APITimeoutError, None),
    }
    assert {name: type(error) for name, error in errors.items()} == {n: t for n, (t, _) in expected.items()}
    records = provider.get_conversation_history()
    assert len(records) == 4
    for record in records:
        name = record["tags"][-1]
        error_class, status = expected[name]
        assert record["status"] == "error" and record["completion"] is None
        assert record["error"]["type"] == error_class.__name__
        assert record["error"].get("status_code") == status
        assert record["error"].get("request_id") == getattr(errors[name], "request_id", None)
    (slow,) = [r for r in records if "too_slow" in r["tags"]]
    assert slow["duration_ms"] >= 300  # the client's timeout, not the server's 2 s
    dumped = json.dumps(records)
    assert "sk-this-key-is-wrong" not in dumped and OPENAI_KEY not in dumped


def test_error_handling_main_prints_each_error_with_its_advice_and_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example("error_handling").main()

    out = capsys.readouterr().out
    assert "wrong_key: AuthenticationError -> check OPENAI_API_KEY" in out
    assert "rate_limited: RateLimitError -> back off, retry after 1 s" in out
    assert "bad_request: BadRequestError -> fix the request (param: messages)" in out
    assert "too_slow: APITimeoutError -> retry" in out
    assert out.count("status=error") == 4 and "error.status_code: 429" in out


# ---- otel_collector ----


class _OtlpReceiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _attributes(pairs: Any) -> dict[str, Any]:
    def value(any_value: Any) -> Any:
        kind = any_value.WhichOneof("value")
        if kind == "array_value":
            return [value(v) for v in any_value.array_value.values]
        return getattr(any_value, kind) if kind else None

    return {pair.key: value(pair.value) for pair in pairs}


def test_otel_collector_example_exports_its_spans_and_metrics_over_otlp() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    received: list[tuple[str, bytes]] = []
    handler = type("Receiver", (_OtlpReceiver,), {"received": received})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "OPENAI_API_KEY" and not k.startswith(("OTEL_", "NEATLOGS_"))
    }
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{receiver.server_address[1]}"
    try:
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "otel_collector.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        receiver.shutdown()
        receiver.server_close()

    assert done.returncode == 0, done.stderr
    assert f"4 calls traced; spans sent to OTLP/HTTP at {env['OTEL_EXPORTER_OTLP_ENDPOINT']}" in done.stdout
    spans: list[tuple[dict[str, Any], Any]] = []
    for _, body in (item for item in received if item[0] == "/v1/traces"):
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            spans += [(resource, span) for scope in resource_spans.scope_spans for span in scope.spans]
    assert {resource["service.name"] for resource, _ in spans} == {"otel-collector-example"}
    (app_span,) = [span for _, span in spans if span.name == "answer-question"]
    calls = sorted(
        (span for _, span in spans if span.kind == Span.SPAN_KIND_CLIENT),
        key=lambda s: s.start_time_unix_nano,
    )
    assert [span.name for span in calls] == ["embeddings text-embedding-3-small"] + ["chat gpt-4o-mini"] * 3
    assert all(s.trace_id == app_span.trace_id and s.parent_span_id == app_span.span_id for s in calls)

    embedded, plain, streamed, refused = (_attributes(span.attributes) for span in calls)
    assert embedded["gen_ai.operation.name"] == "embeddings" and embedded["gen_ai.usage.input_tokens"] > 0
    assert plain["gen_ai.operation.name"] == "chat" and plain["gen_ai.request.model"] == "gpt-4o-mini"
    assert plain["gen_ai.usage.input_tokens"] > 0 and plain["gen_ai.usage.output_tokens"] > 0
    assert streamed["gen_ai.request.stream"] is True and streamed["gen_ai.response.time_to_first_chunk"] > 0
    assert all(a["neatlogs.tags"] == ["otel-example"] for a in (embedded, plain, streamed, refused))
    assert len({a["neatlogs.trace_id"] for a in (embedded, plain, streamed, refused)}) == 1
    assert refused["error.type"] == "BadRequestError" and calls[3].status.code == Status.STATUS_CODE_ERROR

    metric_names = {
        metric.name
        for path, body in received
        if path == "/v1/metrics"
        for resource_metrics in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for scope in resource_metrics.scope_metrics
        for metric in scope.metrics
    }
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= metric_names
