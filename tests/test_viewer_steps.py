"""The viewer's pages for spans (steps), over HTTP: the trace's tree, a step's page, the list's counts."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from neatlogs.collector import CollectorServer

from .viewer_records import post, record, span

NOW = datetime.now(timezone.utc) - timedelta(minutes=1)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorServer]:
    with CollectorServer(tmp_path / "v.db", api_keys=None) as server:
        yield server


def _page(server: CollectorServer, path: str) -> str:
    answer = requests.get(server.url + path, timeout=10)
    assert answer.status_code == 200, answer.text[:500]
    return answer.text


def _at(ms: float) -> datetime:
    return NOW + timedelta(milliseconds=ms)


def _agent_trace(trace: str) -> dict[str, dict[str, object]]:
    agent = span(trace, "support_agent", kind="agent", input={"question": "refund?"}, started=_at(0))
    agent["duration_ms"] = 900.0
    first = record(trace, parent_id=agent["id"], content="plan the refund", started=_at(10))
    tool = span(
        trace,
        "validate_transaction",
        kind="tool",
        input={"amount": 100, "merchant": "<b>ACME</b>"},
        output={"valid": False},
        parent_id=agent["id"],
        started=_at(200),
        status="error",
        error={"type": "ValueError", "message": "amount over the <limit>"},
        attributes={"retries": 2, "region": "<eu>", "limits": {"max": 50}},
        duration_ms=150.0,
    )
    inner = record(trace, parent_id=tool["id"], content="inside the tool", started=_at(220))
    last = record(trace, parent_id=agent["id"], content="answer the user", started=_at(500), cost_usd=None)
    return {"agent": agent, "first": first, "tool": tool, "inner": inner, "last": last}


def test_a_trace_draws_steps_with_their_calls_nested_and_foldable(collector: CollectorServer) -> None:
    parts = _agent_trace("trace-agent")
    post(collector.url, [parts["inner"], parts["first"], parts["tool"], parts["last"], parts["agent"]])

    page = _page(collector, "/traces/trace-agent")

    rows = re.findall(r'data-id="(\w+)" data-parent="(\w*)" data-depth="(\d+)"', page)
    agent, tool = parts["agent"]["id"], parts["tool"]["id"]
    assert rows == [
        (agent, "", "0"),
        (parts["first"]["id"], agent, "1"),
        (tool, agent, "1"),
        (parts["inner"]["id"], tool, "2"),
        (parts["last"]["id"], agent, "1"),
    ]
    # The agent folds its four rows, the tool its one; calls fold nothing.
    assert page.count('<button type="button" class="toggle" aria-expanded="true"') == 2
    assert "hide or show the 4 rows inside" in page and "hide or show the 1 row inside" in page
    assert "Step or call" in page and "+ 2 steps" in page


def test_a_call_whose_step_never_arrived_is_at_the_root_and_says_so(collector: CollectorServer) -> None:
    stray = record("trace-orphan", parent_id="gone-step", content="my step is missing")
    post(collector.url, [stray, record("trace-orphan", content="a plain call")])

    page = _page(collector, "/traces/trace-orphan")

    assert f'data-id="{stray["id"]}" data-parent="" data-depth="0"' in page
    assert page.count("parent step not received") == 1
    assert "gone-step" in page


def test_a_step_page_shows_input_output_error_attributes_and_children_escaped(
    collector: CollectorServer,
) -> None:
    parts = _agent_trace("trace-step-page")
    post(collector.url, list(parts.values()))

    page = _page(collector, f"/records/{parts['tool']['id']}")

    assert "<b>ACME</b>" not in page and "&lt;b&gt;ACME&lt;/b&gt;" in page  # input, escaped
    assert "&#34;valid&#34;: false" in page  # output
    assert "ValueError" in page and "amount over the &lt;limit&gt;" in page  # error
    attributes = page[page.index("<h2>Attributes</h2>") : page.index('<h2 id="children">')]
    assert (
        "<code>retries</code>" in attributes
        and "&lt;eu&gt;" in attributes
        and "&#34;max&#34;: 50" in attributes
    )
    assert 'Inside this step <span class="muted">(1)</span>' in page
    assert f'href="/records/{parts["inner"]["id"]}"' in page
    assert f'href="/records/{parts["agent"]["id"]}">parent step</a> / step' in page  # crumbs
    assert "Step id" in page and "Call id" not in page


def test_a_step_page_totals_everything_below_it(collector: CollectorServer) -> None:
    parts = _agent_trace("trace-totals")
    post(collector.url, list(parts.values()))

    page = html.unescape(_page(collector, f"/records/{parts['agent']['id']}"))

    facts = page[page.index('<aside class="facts">') :]
    assert re.search(r"3 calls · 1 step · \s*<span class=\"err\">1 failed</span>", facts)
    assert "3,600 in · 102 out · 3,702 total" in facts  # three calls of 1,234 tokens
    assert "$0.000642" in facts  # two priced calls; the third has no price
    children = page[page.index('<h2 id="children">') : page.index('<aside class="facts">')]
    assert "validate_transaction" in children
    assert children.count('class="wf-row') == 3  # direct children only: the tool's call is below it
    assert "1 inside" in children  # the tool's own child, counted on its row


def test_a_step_with_nothing_recorded_says_so(collector: CollectorServer) -> None:
    quiet = span("trace-quiet", "metadata_only", kind="task", input=None, output=None)
    quiet["request"] = None
    post(collector.url, [quiet])

    page = _page(collector, f"/records/{quiet['id']}")

    assert "No input recorded." in page and "No output recorded." in page
    assert "Nothing was recorded inside this step." in page


def test_the_traces_list_counts_steps_apart_from_calls(collector: CollectorServer) -> None:
    parts = _agent_trace("trace-counted")
    post(collector.url, [*parts.values(), record("trace-no-steps")])

    page = _page(collector, "/")

    assert '<th class="num" title="Steps (spans): tools, agents, tasks around the calls">Steps</th>' in page
    row = page[page.index('data-trace="trace-counted"') :].split("</tr>")[0]
    assert re.findall(r'<td class="num">(?:<span class="muted">)?(\d+)', row)[:2] == [
        "3",
        "2",
    ]  # calls, steps
    plain = page[page.index('data-trace="trace-no-steps"') :].split("</tr>")[0]
    assert re.findall(r'<td class="num">(?:<span class="muted">)?(\d+)', plain)[:2] == ["1", "0"]


def test_a_chain_of_steps_thousands_deep_still_draws(collector: CollectorServer) -> None:
    chain: list[dict[str, object]] = []
    for n in range(1500):
        parent = str(chain[-1]["id"]) if chain else None
        chain.append(span("trace-deep", f"level{n}", parent_id=parent, started=_at(n)))
    post(collector.url, chain)

    page = _page(collector, "/traces/trace-deep")

    assert page.count('class="wf-row') == 1500
    assert 'data-depth="64"' in page and 'data-depth="65"' not in page


def test_a_call_page_names_the_step_it_ran_in_or_says_it_never_arrived(collector: CollectorServer) -> None:
    parts = _agent_trace("trace-call-in-step")
    stray = record("trace-call-in-step", parent_id="lost-step", content="alone")
    post(collector.url, [*parts.values(), stray])

    inside = _page(collector, f"/records/{parts['inner']['id']}")
    alone = _page(collector, f"/records/{stray['id']}")

    facts = inside[inside.index('<aside class="facts">') :]
    assert "<dt>Inside step</dt>" in facts
    assert f'<a href="/records/{parts["tool"]["id"]}">validate_transaction</a>' in facts
    assert '<code>lost-step</code> <span class="muted small">(not received)</span>' in alone


def test_a_step_in_the_sdk_s_shape_shows_its_input_and_output_unwrapped(collector: CollectorServer) -> None:
    # neatlogs.observe sends {"input": <bound arguments>} in `request` and {"output": ...} in `completion`.
    sent = span("trace-sdk-shape", "get_weather", kind="tool", output={"output": {"temp_c": 18}})
    sent.update(request={"input": {"city": "Paris"}}, prompt=None)
    metadata = span("trace-sdk-shape", "quiet", kind="tool")
    metadata.update(request={}, prompt=None, completion=None)  # capture_content="metadata"
    post(collector.url, [sent, metadata])

    page = _page(collector, f"/records/{sent['id']}")
    quiet = _page(collector, f"/records/{metadata['id']}")

    shown = page[page.index("<h2>Input</h2>") : page.index('<aside class="facts">')]
    assert "&#34;city&#34;: &#34;Paris&#34;" in shown and "&#34;temp_c&#34;: 18" in shown
    assert "&#34;input&#34;" not in shown and "&#34;output&#34;" not in shown
    assert "No input recorded." in quiet and "No output recorded." in quiet
