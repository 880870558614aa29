"""Spans (`neatlogs.span`, `neatlogs.observe`): the steps around the calls, recorded as a tree."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs.llm import LLMTracker

from .fake_collector import FakeCollector
from .helpers import assert_contract

MODEL = "gpt-4o-mini"
SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8" * 3


@pytest.fixture
def make_tracker() -> Iterator[Callable[..., LLMTracker]]:
    made: list[LLMTracker] = []

    def make(**options: Any) -> LLMTracker:
        options.setdefault("otel", False)
        tracker = LLMTracker(**options)
        tracker.override_api()
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.stop_instrumenting()


@pytest.fixture
def tracker(make_tracker: Callable[..., LLMTracker]) -> LLMTracker:
    return make_tracker(tags=["app"])


def _ask(client: openai.OpenAI, text: str = "hi") -> str:
    answer = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
    return str(answer.choices[0].message.content)


def _by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in records if r["kind"] == "span"}


# ---- the record ----


def test_a_span_is_a_record_with_its_input_output_attributes_and_tags(tracker: LLMTracker) -> None:
    with neatlogs.span("lookup", kind="retrieval", input={"query": "cats"}, tags=["rag"]) as step:
        step.set_output(["doc-1", "doc-2"])
        step.set_attribute("index", "kb-v2")
        span_id = step.id

    (record,) = tracker.get_conversation_history()
    assert_contract(record)
    assert record["id"] == span_id and len(span_id) == 32
    assert record["kind"] == "span" and record["name"] == "lookup"
    assert record["provider"] == "neatlogs" and record["operation"] == "retrieval" and record["model"] == ""
    assert record["request"] == {"input": {"query": "cats"}}
    assert record["completion"] == {"output": ["doc-1", "doc-2"]}
    assert record["attributes"] == {"index": "kb-v2"}
    assert record["tags"] == ["app", "rag"]
    assert record["usage"] is None and record["cost_usd"] is None
    assert record["status"] == "success" and record["error"] is None
    assert record["parent_id"] is None and record["trace_id"] == tracker.trace_id


def test_calls_made_inside_a_span_are_its_children_and_calls_outside_have_no_parent(
    tracker: LLMTracker, client: openai.OpenAI
) -> None:
    _ask(client, "before")
    with neatlogs.span("answer", kind="agent") as step:
        _ask(client, "inside")
    _ask(client, "after")

    before, inside, span_record, after = tracker.get_conversation_history()
    assert [r["kind"] for r in (before, inside, after)] == ["llm"] * 3
    assert inside["parent_id"] == step.id == span_record["id"]
    assert before["parent_id"] is None and after["parent_id"] is None
    assert "name" not in inside


def test_observe_nests_sync_functions_with_bound_arguments_and_return_values(
    tracker: LLMTracker, client: openai.OpenAI
) -> None:
    class Agent:
        @neatlogs.observe(kind="tool")
        def validate(self, amount: int, merchant: str = "acme") -> bool:
            _ask(client, f"validate {amount}")
            return amount < 1000

        @neatlogs.observe(kind="agent", name="payments-agent")
        def run(self, amount: int) -> str:
            return "ok" if self.validate(amount) else "refused"

    assert Agent().run(100) == "ok"

    call, tool, agent = tracker.get_conversation_history()
    assert tool["name"].endswith("Agent.validate") and tool["operation"] == "tool"
    assert tool["request"] == {"input": {"amount": 100}}  # bound arguments, `self` left out
    assert tool["completion"] == {"output": True}
    assert agent["name"] == "payments-agent" and agent["completion"] == {"output": "ok"}
    assert call["parent_id"] == tool["id"] and tool["parent_id"] == agent["id"]
    assert agent["parent_id"] is None


def test_observe_can_leave_out_input_and_output(tracker: LLMTracker) -> None:
    @neatlogs.observe(capture_input=False, capture_output=False)
    def private(password: str) -> str:
        return password[::-1]

    @neatlogs.observe
    def bare(x: int) -> int:
        return x + 1

    assert private("hunter2") == "2retnuh" and bare(1) == 2
    hidden, shown = tracker.get_conversation_history()
    assert hidden["request"] == {} and hidden["completion"] is None
    assert shown["operation"] == "task" and shown["completion"] == {"output": 2}


def test_async_spans_nest_across_await_and_tasks_created_inside_inherit_them(
    tracker: LLMTracker, async_client: openai.AsyncOpenAI
) -> None:
    @neatlogs.observe(kind="tool")
    async def search(query: str) -> str:
        await asyncio.sleep(0)
        answer = await async_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": query}]
        )
        return str(answer.choices[0].message.content)

    @neatlogs.observe(kind="agent")
    async def agent() -> list[str]:
        async with neatlogs.span("plan") as plan:
            await asyncio.sleep(0)
            plan.set_output("two searches")
        return list(await asyncio.gather(search("a"), search("b")))

    async def main() -> None:
        await agent()
        await async_client.close()

    asyncio.run(main())
    records = tracker.get_conversation_history()
    spans = [r for r in records if r["kind"] == "span"]
    agent_record = next(r for r in spans if r["operation"] == "agent")
    searches = [r for r in spans if r["operation"] == "tool"]
    plan_record = next(r for r in spans if r["name"] == "plan")
    calls = [r for r in records if r["kind"] == "llm"]
    assert len(searches) == 2 and len(calls) == 2
    assert plan_record["parent_id"] == agent_record["id"]
    assert {s["parent_id"] for s in searches} == {agent_record["id"]}
    assert {c["parent_id"] for c in calls} == {s["id"] for s in searches}
    assert {s["request"]["input"]["query"] for s in searches} == {"a", "b"}


def test_threads_inherit_a_span_only_when_given_the_context(tracker: LLMTracker) -> None:
    @neatlogs.observe(kind="tool")
    def work(label: str) -> str:
        return label

    with neatlogs.span("fan-out") as outer:
        plain = threading.Thread(target=work, args=("plain",))
        context = contextvars.copy_context()
        copied = threading.Thread(target=context.run, args=(work, "copied"))
        for thread in (plain, copied):
            thread.start()
            thread.join()

    steps = {r["request"]["input"]["label"]: r for r in tracker.get_conversation_history() if r["request"]}
    assert steps["plain"]["parent_id"] is None
    assert steps["copied"]["parent_id"] == outer.id


# ---- generators ----


def test_a_generator_span_ends_once_when_exhausted_and_holds_its_calls(
    tracker: LLMTracker, client: openai.OpenAI
) -> None:
    @neatlogs.observe(kind="retrieval")
    def pages(n: int) -> Iterator[str]:
        for i in range(n):
            yield _ask(client, f"page {i}")

    with neatlogs.span("reader") as outer:
        # the consumer's own calls, between items, are not the generator's
        for _ in pages(2):
            _ask(client, "consumer")
    records = tracker.get_conversation_history()
    (gen_span,) = [r for r in records if r["operation"] == "retrieval"]
    calls = [r for r in records if r["kind"] == "llm"]
    assert gen_span["status"] == "success" and gen_span["parent_id"] == outer.id
    own = [c for c in calls if c["parent_id"] == gen_span["id"]]
    consumer = [c for c in calls if c["parent_id"] == outer.id]
    assert len(own) == 2 and len(consumer) == 2
    assert all(c["prompt"][0]["content"].startswith("page") for c in own)


def test_a_generator_span_closed_early_or_collected_ends_once_as_incomplete(tracker: LLMTracker) -> None:
    @neatlogs.observe()
    def numbers() -> Iterator[int]:
        yield from range(10)

    closed = numbers()
    assert next(closed) == 0
    closed.close()
    closed.close()  # a second close changes nothing

    collected = numbers()
    assert next(collected) == 0
    del collected
    gc.collect()

    never_started = numbers()
    del never_started

    records = tracker.get_conversation_history()
    assert [r["status"] for r in records] == ["incomplete", "incomplete"]
    assert len({r["id"] for r in records}) == 2


def test_a_generator_span_passes_on_sent_values_thrown_errors_and_its_return_value(
    tracker: LLMTracker,
) -> None:
    @neatlogs.observe()
    def echo() -> Any:
        received = []
        try:
            while True:
                value = yield len(received)
                received.append(value)
        except KeyError:
            return received

    gen = echo()
    assert next(gen) == 0
    assert gen.send("a") == 1
    with pytest.raises(StopIteration) as stop:
        gen.throw(KeyError("stop"))
    assert stop.value.value == ["a"]
    (record,) = tracker.get_conversation_history()
    assert record["status"] == "success" and record["completion"] == {"output": ["a"]}


def test_async_generator_spans_end_once_when_exhausted_closed_or_failing(tracker: LLMTracker) -> None:
    @neatlogs.observe(kind="retrieval")
    async def chunks(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i
        if n == 3:
            raise LookupError("no more")

    async def main() -> None:
        assert [i async for i in chunks(2)] == [0, 1]
        early = chunks(5)
        assert await early.__anext__() == 0
        await early.aclose()
        with pytest.raises(LookupError):
            async for _ in chunks(3):
                pass

    asyncio.run(main())
    statuses = [r["status"] for r in tracker.get_conversation_history()]
    assert statuses == ["success", "incomplete", "error"]


# ---- errors, return, abandoned spans ----


def test_a_failing_span_records_the_error_and_reraises_the_very_same_exception(tracker: LLMTracker) -> None:
    problem = ValueError("merchant is blocked")

    @neatlogs.observe(kind="tool")
    def validate() -> None:
        raise problem

    async def async_validate() -> None:
        async with neatlogs.span("async-check"):
            raise problem

    with pytest.raises(ValueError) as caught:
        validate()
    assert caught.value is problem
    with pytest.raises(ValueError) as caught_async:
        asyncio.run(async_validate())
    assert caught_async.value is problem
    with pytest.raises(ValueError) as caught_with, neatlogs.span("check"):
        raise problem
    assert caught_with.value is problem

    records = tracker.get_conversation_history()
    assert len(records) == 3
    for record in records:
        assert record["status"] == "error"
        assert record["error"] == {"type": "ValueError", "message": "merchant is blocked"}


def test_return_inside_a_with_block_ends_the_span_and_restores_the_parent(tracker: LLMTracker) -> None:
    def step() -> str:
        with neatlogs.span("early-return") as inner:
            inner.set_output("returned")
            return "value"

    with neatlogs.span("outer") as outer:
        assert step() == "value"
        with neatlogs.span("after"):
            pass
    inner_record, after_record, _ = tracker.get_conversation_history()
    assert inner_record["completion"] == {"output": "returned"} and inner_record["status"] == "success"
    assert inner_record["parent_id"] == outer.id and after_record["parent_id"] == outer.id


def test_a_span_abandoned_open_ends_as_incomplete_without_breaking_the_parent_chain(
    tracker: LLMTracker,
) -> None:
    with neatlogs.span("outer") as outer:
        leaked = neatlogs.span("leaked")
        leaked.__enter__()
        leaked_id = leaked.id
        del leaked  # never exited: collected
    with neatlogs.span("next") as following:
        pass

    def crash() -> None:
        neatlogs.span("in-dying-thread").__enter__()
        raise RuntimeError("thread dies")

    thread = threading.Thread(target=crash)
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: None
    try:
        thread.start()
        thread.join()
    finally:
        threading.excepthook = previous_hook
    gc.collect()

    by_name = _by_name(tracker.get_conversation_history())
    assert by_name["leaked"]["status"] == "incomplete" and by_name["leaked"]["id"] == leaked_id
    assert by_name["leaked"]["parent_id"] == outer.id
    assert by_name["outer"]["status"] == "success"
    assert by_name["next"]["parent_id"] is None and following.id == by_name["next"]["id"]
    assert by_name["in-dying-thread"]["status"] == "incomplete"
    assert by_name["in-dying-thread"]["parent_id"] is None


def test_a_span_can_be_entered_only_once(tracker: LLMTracker) -> None:
    step = neatlogs.span("once")
    with step:
        pass
    with pytest.raises(RuntimeError, match="entered once"):
        step.__enter__()


# ---- bad input ----


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (
            lambda: neatlogs.span("x", kind="tools"),
            ValueError,
            "'tool', 'agent', 'task', 'retrieval', 'workflow'",
        ),
        (lambda: neatlogs.span("x", kind=None), TypeError, "kind must be one of"),
        (lambda: neatlogs.span(""), ValueError, "non-empty string"),
        (lambda: neatlogs.span(42), TypeError, "non-empty string, got int"),
        (lambda: neatlogs.span("x", tags="prod"), TypeError, "tags=['prod']"),
        (lambda: neatlogs.observe(kind="llm"), ValueError, "kind must be one of"),
        (lambda: neatlogs.observe(name=""), ValueError, "non-empty string"),
        (lambda: neatlogs.observe(capture_input="yes"), TypeError, "capture_input must be True or False"),
        (lambda: neatlogs.observe()(42), TypeError, "observe decorates a function"),
        (lambda: neatlogs.span("x").set_attribute(3, "v"), TypeError, "key must be a non-empty string"),
    ],
)
def test_bad_span_arguments_are_clear_errors(call: Callable[[], Any], error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


# ---- capture, masking, redaction ----


def test_span_input_and_output_are_masked_and_cut_like_call_content(
    make_tracker: Callable[..., LLMTracker],
) -> None:
    tracker = make_tracker(max_string_length=64)

    @neatlogs.observe(kind="tool")
    def call_api(api_key: str, note: str) -> dict[str, str]:
        return {"echo": f"used {api_key}"}

    call_api(SECRET, "x" * 500)
    (record,) = tracker.get_conversation_history()
    text = str(record)
    assert SECRET not in text
    assert len(record["request"]["input"]["note"]) < 200
    assert "used" in record["completion"]["output"]["echo"]


def test_a_redact_function_sees_and_changes_span_records(make_tracker: Callable[..., LLMTracker]) -> None:
    seen: list[str] = []

    def redact(record: dict[str, Any]) -> dict[str, Any]:
        seen.append(record["kind"])
        if record["kind"] == "span":
            record["request"]["input"]["card"] = "[card]"
        return record

    tracker = make_tracker(redact=redact)
    with neatlogs.span("charge", kind="tool", input={"card": "4111 1111 1111 1111"}):
        pass
    (record,) = tracker.get_conversation_history()
    assert seen == ["span"] and record["request"] == {"input": {"card": "[card]"}}


def test_metadata_capture_lets_only_names_kinds_timing_and_status_out(
    make_tracker: Callable[..., LLMTracker],
) -> None:
    tracker = make_tracker(capture_content="metadata")

    @neatlogs.observe(kind="tool")
    def lookup(user: str, model: str) -> str:
        raise KeyError(f"no account for {user}")

    with pytest.raises(KeyError), neatlogs.span("agent", kind="agent", input={"q": "private"}) as step:
        step.set_attribute("customer", "alice")
        step.set_output("private answer")
        lookup("alice@example.com", "secret-model")

    tool, agent = tracker.get_conversation_history()
    for record in (tool, agent):
        assert record["capture"] == "metadata" and record["kind"] == "span"
        assert record["request"] == {} and record["completion"] is None and "attributes" not in record
        assert "alice" not in str(record) and "private" not in str(record)
        assert record["status"] == "error" and record["error"] == {"type": "KeyError"}
    assert tool["name"] == "test_metadata_capture_lets_only_names_kinds_timing_and_status_out.<locals>.lookup"
    assert tool["parent_id"] == agent["id"] and agent["name"] == "agent"


# ---- trace ids, history, stats, routing ----


def test_a_span_follows_trace_blocks_like_calls_do(tracker: LLMTracker, client: openai.OpenAI) -> None:
    with neatlogs.trace("request-42", tags=["web"]), neatlogs.span("handle", tags=["own"]):
        _ask(client)
    call, span_record = tracker.get_conversation_history()
    assert span_record["trace_id"] == call["trace_id"] == "request-42"
    assert span_record["tags"] == ["app", "web", "own"] and call["tags"] == ["app", "web"]


def test_history_keeps_records_in_the_order_they_finished(tracker: LLMTracker) -> None:
    with neatlogs.span("a") as a:
        with neatlogs.span("b") as b, neatlogs.span("c"):
            pass
        with neatlogs.span("d"):
            pass
    records = tracker.get_conversation_history()
    assert [r["name"] for r in records] == ["c", "b", "d", "a"]
    assert [r["parent_id"] for r in records] == [b.id, a.id, a.id, None]


def test_spans_are_not_counted_as_llm_calls_in_the_usage_statistics(
    tracker: LLMTracker, client: openai.OpenAI
) -> None:
    before = neatlogs.stats()["usage"]["calls"]
    with neatlogs.span("outer"):
        _ask(client)
    assert neatlogs.stats()["usage"]["calls"] == before + 1


def test_spans_are_kept_when_calls_are_sampled_out(make_tracker: Callable[..., LLMTracker]) -> None:
    with FakeCollector() as collector:
        make_tracker(endpoint=collector.url, api_key="k", sample_rate=0.0, flush_interval=0.05)
        with neatlogs.span("always-kept") as step:
            pass
        assert neatlogs.flush(5.0)
        assert step.id in collector.ids()


def test_spans_made_with_no_tracker_running_are_harmless_and_go_nowhere(
    make_tracker: Callable[..., LLMTracker],
) -> None:
    @neatlogs.observe()
    def work() -> int:
        return 1

    with neatlogs.span("untraced") as step:
        assert work() == 1
    assert len(step.id) == 32
    tracker = make_tracker()
    assert tracker.get_conversation_history() == []


def test_a_stand_alone_provider_gets_spans_in_its_history(
    make_provider: Callable[..., Any], client: openai.OpenAI
) -> None:
    provider = make_provider(trace_id="own-trace", tags=["p"])
    with neatlogs.span("step", kind="workflow"):
        _ask(client)
    call, step = provider.get_conversation_history()
    assert step["kind"] == "span" and step["trace_id"] == "own-trace" and call["parent_id"] == step["id"]
    provider.undo_override()
    with neatlogs.span("after-undo"):
        pass
    assert len(provider.get_conversation_history()) == 2


def test_the_exporter_delivers_spans_and_children_to_the_collector(
    make_tracker: Callable[..., LLMTracker], client: openai.OpenAI
) -> None:
    with FakeCollector() as collector:
        make_tracker(endpoint=collector.url, api_key="k", flush_interval=0.05)

        @neatlogs.observe(kind="tool")
        def tool(x: int) -> str:
            return _ask(client, str(x))

        with neatlogs.span("agent", kind="agent") as agent:
            tool(7)
        assert neatlogs.flush(5.0)
        records = list(collector.records.values())

    assert len(records) == 3
    by_kind: dict[str, list[dict[str, Any]]] = {"llm": [], "span": []}
    for record in records:
        assert_contract(record)
        by_kind[record["kind"]].append(record)
    (call,) = by_kind["llm"]
    tool_record = next(r for r in by_kind["span"] if r["operation"] == "tool")
    agent_record = next(r for r in by_kind["span"] if r["operation"] == "agent")
    assert (
        call["parent_id"] == tool_record["id"] and tool_record["parent_id"] == agent.id == agent_record["id"]
    )
    assert agent_record["parent_id"] is None and agent_record["name"] == "agent"
    assert tool_record["request"] == {"input": {"x": 7}}


def test_the_collector_accepts_span_records_and_nests_the_calls_under_them(
    make_tracker: Callable[..., LLMTracker], client: openai.OpenAI, tmp_path: Any
) -> None:
    import requests

    from neatlogs.collector.server import CollectorServer

    with CollectorServer(tmp_path / "records.db") as collector:
        make_tracker(endpoint=collector.url, flush_interval=0.05)

        @neatlogs.observe(kind="tool")
        def lookup(city: str) -> str:
            return _ask(client, city)

        with neatlogs.trace("tree-trace"), neatlogs.span("agent", kind="agent") as agent:
            lookup("Oslo")
            _ask(client, "answer")
        assert neatlogs.flush(5.0)
        answer = requests.get(f"{collector.url}/v1/traces/tree-trace", timeout=10).json()

    (root,) = answer["tree"]
    assert (root["id"], root["kind"], root["name"]) == (agent.id, "span", "agent")
    tool, call = sorted(root["children"], key=lambda row: row["kind"] == "llm")
    assert tool["kind"] == "span" and tool["operation"] == "tool" and call["kind"] == "llm"
    assert [child["kind"] for child in tool["children"]] == ["llm"]


def test_a_users_own_sink_receives_span_records_with_their_parents(
    make_tracker: Callable[..., LLMTracker],
) -> None:
    class Collect:
        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []

        def emit(self, record: dict[str, Any]) -> None:
            self.records.append(record)

    sink = Collect()
    make_tracker(sinks=[sink])
    with neatlogs.span("outer") as outer, neatlogs.span("inner", kind="tool", input={"q": 1}):
        pass
    assert neatlogs.flush(5.0)
    inner, outer_record = sink.records
    assert inner["name"] == "inner" and inner["parent_id"] == outer.id == outer_record["id"]
    assert inner["request"] == {"input": {"q": 1}} and outer_record["kind"] == "span"


def test_a_redact_function_cannot_cut_a_record_out_of_the_tree(
    make_tracker: Callable[..., LLMTracker], client: openai.OpenAI
) -> None:
    def careless(record: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in record.items() if key not in ("kind", "parent_id", "name")}

    tracker = make_tracker(redact=careless)
    with neatlogs.span("kept-name") as step:
        _ask(client)
    call, span_record = tracker.get_conversation_history()
    assert (call["kind"], call["parent_id"]) == ("llm", step.id)
    assert "name" not in call
    assert (span_record["kind"], span_record["name"], span_record["parent_id"]) == ("span", "kept-name", None)
