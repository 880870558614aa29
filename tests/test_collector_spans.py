"""Spans at the collector, over HTTP: their fields checked at ingest, stored, migrated, and read back
as a tree (children under their span, whatever order they arrive in; orphans at the root)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from neatlogs.collector import CollectorServer, RecordStore, _schema, tree

from .test_collector import AUTH, KEY, make_record, post
from .viewer_records import span


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorServer]:
    # Shared: every test uses its own trace ids and reads only those.
    with CollectorServer(tmp_path_factory.mktemp("spans") / "collector.db", api_keys={KEY}) as running:
        yield running


@pytest.fixture
def trace() -> str:
    return uuid.uuid4().hex


def get(server: CollectorServer, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url + path, params=params, headers=AUTH, timeout=30)


def at(second: float) -> str:
    return f"2026-02-01T10:00:{second:09.6f}Z"


def call(trace: str, second: float, parent: str | None = None, **fields: Any) -> dict[str, Any]:
    return make_record(trace, started_at=at(second), parent_id=parent, kind="llm", **fields)


def step(trace: str, second: float, name: str, parent: str | None = None, **fields: Any) -> dict[str, Any]:
    return span(trace, name, started=None, parent_id=parent, started_at=at(second), **fields)


def shape(nodes: list[dict[str, Any]]) -> list[Any]:
    """A tree as (id, [children...]) pairs, to compare whole shapes at once."""
    return [(node["id"], shape(node["children"])) for node in nodes]


# ---------------------------------------------------------------- ingest checks


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"kind": "tool"}, "'kind' \"tool\"; send one of 'llm', 'span'"),
        ({"kind": 3}, "'kind' 3"),
        ({"parent_id": 42}, "'parent_id' 42; send the enclosing span's id (a string) or null"),
        ({"parent_id": ""}, "'parent_id' \"\""),
        ({"parent_id": {"id": "x"}}, '\'parent_id\' {"id": "x"}'),
        ({"kind": "span", "name": None}, "is a span whose 'name' is null"),
        ({"kind": "span", "name": 7}, "is a span whose 'name' is 7"),
        ({"name": ["a"]}, "'name' [\"a\"]; send a string or null"),
    ],
)
def test_a_record_with_a_bad_span_field_is_refused_with_a_400_naming_it(
    server: CollectorServer, trace: str, fields: dict[str, Any], named: str
) -> None:
    good = make_record(trace)
    bad = make_record(trace, **fields)

    answer = post(server.url, [good, bad])

    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert message.startswith("records[1] ") and named in message
    assert get(server, "/v1/records", trace_id=trace).json()["records"] == []  # the batch is not stored


def test_a_huge_bad_value_is_named_briefly_in_the_400(server: CollectorServer, trace: str) -> None:
    answer = post(server.url, [make_record(trace, parent_id=["x" * 10_000])])

    assert answer.status_code == 400
    assert len(answer.json()["error"]) < 200


def test_records_without_span_fields_or_with_null_ones_are_calls(server: CollectorServer, trace: str) -> None:
    plain = make_record(trace, started_at=at(1))  # an older SDK: no kind, parent_id or name
    nulls = make_record(trace, started_at=at(2), kind=None, parent_id=None, name=None)
    named = make_record(trace, started_at=at(3), kind="llm", name="")

    answer = post(server.url, [plain, nulls, named])

    assert answer.status_code == 200, answer.text
    assert [r["id"] for r in get(server, "/v1/records", trace_id=trace, kind="llm").json()["records"]] == [
        named["id"],
        nulls["id"],
        plain["id"],
    ]
    summary = get(server, f"/v1/traces/{trace}").json()["trace"]
    assert (summary["calls"], summary["spans"]) == (3, 0)


# ---------------------------------------------------------------- reading the tree


def test_a_trace_arriving_children_first_reads_back_as_a_tree_with_orphans_at_the_root(
    server: CollectorServer, trace: str
) -> None:
    agent = step(trace, 0, "support_agent", kind="agent")
    first = call(trace, 1, agent["id"])
    tool = step(trace, 2, "validate_transaction", agent["id"], kind="tool")
    inner = call(trace, 3, tool["id"])
    last = call(trace, 4, agent["id"])
    orphan = call(trace, 5, "a-span-that-never-arrived")
    # As the exporter delivers them: a span finishes (and is sent) after what ran inside it.
    assert post(server.url, [inner, first]).status_code == 200
    assert post(server.url, [tool, orphan]).status_code == 200
    assert post(server.url, [last, agent]).status_code == 200

    body = get(server, f"/v1/traces/{trace}").json()

    assert (body["trace"]["calls"], body["trace"]["spans"]) == (4, 2)
    assert shape(body["tree"]) == [
        (agent["id"], [(first["id"], []), (tool["id"], [(inner["id"], [])]), (last["id"], [])]),
        (orphan["id"], []),
    ]
    (_, stray) = body["tree"]
    assert stray["parent_id"] == "a-span-that-never-arrived"  # its parent said, though not there
    assert body["tree"][0]["children"][1]["name"] == "validate_transaction"
    assert body["tree"][0]["children"][1]["kind"] == "span"
    assert "prompt" not in body["tree"][0]  # timeline fields, as in `calls`
    assert [r["id"] for r in body["calls"]] == [r["id"] for r in (agent, first, tool, inner, last, orphan)]
    listed = get(server, "/v1/traces", q="support_agent").json()["traces"]
    assert [(t["trace_id"], t["calls"], t["spans"]) for t in listed] == [(trace, 4, 2)]


def test_the_children_of_a_span_are_a_filter_of_the_records(server: CollectorServer, trace: str) -> None:
    agent = step(trace, 0, "agent", kind="agent")
    tool = step(trace, 1, "lookup", agent["id"], kind="tool")
    calls = [call(trace, 2 + n, agent["id"]) for n in range(3)]
    below = call(trace, 6, tool["id"])
    post(server.url, [*calls, below, tool, agent])

    def only(**params: str) -> list[str]:
        answer = get(server, "/v1/records", **params)
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["records"]]

    assert only(parent_id=agent["id"]) == [c["id"] for c in reversed(calls)] + [tool["id"]]
    assert only(parent_id=agent["id"], kind="span") == [tool["id"]]
    assert only(parent_id=tool["id"]) == [below["id"]]
    assert only(parent_id="no-such-span") == []
    assert len(only(trace_id=trace, parent_id="")) == 6  # empty: no filter, as in a form


def test_a_parent_id_cycle_shows_each_record_once(server: CollectorServer, trace: str) -> None:
    a_id, b_id = uuid.uuid4().hex, uuid.uuid4().hex
    a = step(trace, 0, "a", b_id, id=a_id)
    b = step(trace, 1, "b", a_id, id=b_id)
    itself = step(trace, 2, "self", None)
    itself["parent_id"] = itself["id"]
    post(server.url, [a, b, itself])

    body = get(server, f"/v1/traces/{trace}").json()

    # A record naming itself is a root; a cycle, having no root, starts one after the others.
    assert shape(body["tree"]) == [(itself["id"], []), (a_id, [(b_id, [])])]


def test_a_chain_deeper_than_any_json_reader_holds_is_answered_flattened_at_the_depth_limit(
    server: CollectorServer, trace: str
) -> None:
    chain: list[dict[str, Any]] = []
    for n in range(1500):
        chain.append(step(trace, n / 1000, f"level{n}", chain[-1]["id"] if chain else None))
    assert post(server.url, chain).status_code == 200

    answer = get(server, f"/v1/traces/{trace}")

    assert answer.status_code == 200, answer.text[:300]
    body = json.loads(answer.text)
    depth, node = 0, body["tree"][0]
    while node["children"]:
        deepest = node
        node = node["children"][0]
        depth += 1
    assert depth == tree.MAX_TREE_DEPTH
    assert len(deepest["children"]) == 1500 - tree.MAX_TREE_DEPTH  # the rest, in order, one level
    assert [n["name"] for n in deepest["children"][:2]] == [
        f"level{tree.MAX_TREE_DEPTH}",
        f"level{tree.MAX_TREE_DEPTH + 1}",
    ]


# ---------------------------------------------------------------- storage


def _as_version_2(path: Path, records: list[dict[str, Any]]) -> None:
    """A file as the previous collector (schema 2) left it: spans' columns, no index of children."""
    store = RecordStore(path)
    store.add(records)
    store.close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX records_parent")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()


def _plan(path: Path, sql: str, *params: Any) -> str:
    db = sqlite3.connect(path)
    try:
        return " ".join(str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))
    finally:
        db.close()


def test_a_schema_2_database_gains_the_index_of_children_and_keeps_its_spans(
    tmp_path: Path, trace: str
) -> None:
    agent = step(trace, 0, "agent", kind="agent")
    inside = call(trace, 1, agent["id"])
    path = tmp_path / "v2.db"
    _as_version_2(path, [inside, agent])

    with CollectorServer(path, api_keys={KEY}) as running:
        children = get(running, "/v1/records", parent_id=agent["id"]).json()["records"]
        body = get(running, f"/v1/traces/{trace}").json()
        post(running.url, [call(trace, 2, agent["id"])])  # and it keeps ingesting
        after = get(running, "/v1/records", parent_id=agent["id"]).json()["records"]

    assert [r["id"] for r in children] == [inside["id"]]
    assert shape(body["tree"]) == [(agent["id"], [(inside["id"], [])])]
    assert len(after) == 2
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (_schema.VERSION,)
    finally:
        db.close()
    plan = _plan(path, "SELECT id FROM records WHERE parent_id = ? ORDER BY started_at", "x")
    assert "records_parent" in plan


def test_a_step_s_totals_add_up_everything_below_it_and_stop_at_a_cycle(tmp_path: Path, trace: str) -> None:
    agent = step(trace, 0, "agent", kind="agent")
    tool = step(
        trace, 1, "tool", agent["id"], kind="tool", status="error", error={"type": "E", "message": "m"}
    )
    records = [
        agent,
        tool,
        call(trace, 2, agent["id"], cost_usd=0.25),
        call(trace, 3, tool["id"], cost_usd=0.5),
        call(trace, 4, tool["id"], cost_usd=None, usage=None),
        call(trace, 5, "elsewhere"),
    ]
    loop_a, loop_b = uuid.uuid4().hex, uuid.uuid4().hex
    records += [step(trace, 6, "a", loop_b, id=loop_a), step(trace, 7, "b", loop_a, id=loop_b)]
    store = RecordStore(tmp_path / "totals.db")
    try:
        store.add(records)
        inside = store.inside(agent["id"])
        cycle = store.inside(loop_a)
        capped = store.inside(agent["id"], limit=2)
    finally:
        store.close()

    assert inside == {
        "calls": 3,
        "spans": 1,
        "errors": 1,
        "prompt_tokens": 20,
        "completion_tokens": 10,
        "total_tokens": 30,
        "cost_usd": 0.75,
        "complete": True,
    }
    assert (cycle["spans"], cycle["complete"]) == (1, True)
    assert capped["complete"] is False


def test_a_span_is_found_by_a_word_of_its_input_or_output_in_either_shape(
    server: CollectorServer, trace: str
) -> None:
    word_in, word_out, bare = (f"w{uuid.uuid4().hex[:10]}" for _ in range(3))
    sdk = step(
        trace, 0, "lookup", prompt=None, request={"input": {"city": word_in}}, completion={"output": word_out}
    )
    contract = step(trace, 1, "other", prompt={"query": bare}, request={"query": bare})
    post(server.url, [sdk, contract])

    def found(word: str) -> list[str]:
        return [r["id"] for r in get(server, "/v1/records", q=word).json()["records"]]

    assert found(word_in) == [sdk["id"]]
    assert found(word_out) == [sdk["id"]]
    assert found(bare) == [contract["id"]]
