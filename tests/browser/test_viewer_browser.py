"""The viewer in headless Chromium: what a person sees and can do on each page."""

from __future__ import annotations

import json
import re
from typing import Any

import requests

from ..viewer_records import post, record, span
from .conftest import KEY, UNIQUE_WORD, Console, Traffic


def _rows(page: Any) -> list[str]:
    return page.locator("#trace-rows tr[data-trace]").evaluate_all("rows => rows.map(r => r.dataset.trace)")


def test_the_traces_page_lists_the_traces_posted_over_http(page: Any, traffic: Traffic) -> None:
    page.goto(traffic.url + "/")
    shown = _rows(page)
    for trace in (traffic.main_trace, traffic.search_trace, traffic.script_trace, traffic.error_trace):
        assert trace in shown
    main = page.locator(f'tr[data-trace="{traffic.main_trace}"]')
    assert main.locator("td").nth(2).inner_text() == "3"  # calls
    assert "gpt-4o" in main.inner_text() and "checkout" in main.inner_text()
    assert "$0.0" in main.inner_text()


def test_a_search_finds_a_record_by_a_word_only_it_holds(page: Any, traffic: Traffic) -> None:
    page.goto(traffic.url + "/")
    page.fill('input[name="q"]', UNIQUE_WORD)
    page.press('input[name="q"]', "Enter")
    page.wait_for_url(re.compile(rf"q={UNIQUE_WORD}"))
    assert _rows(page) == [traffic.search_trace]
    assert page.input_value('input[name="q"]') == UNIQUE_WORD


def test_filters_change_the_list_and_the_url_and_back_restores_them(page: Any, traffic: Traffic) -> None:
    page.goto(traffic.url + "/")
    assert traffic.main_trace in _rows(page)
    page.select_option('select[name="status"]', "error")
    page.wait_for_url(re.compile(r"status=error"))
    assert _rows(page) == [traffic.error_trace]
    page.select_option('select[name="tag"]', "failing")
    page.wait_for_url(re.compile(r"tag=failing"))
    assert "status=error" in page.url and _rows(page) == [traffic.error_trace]
    page.go_back()
    page.wait_for_url(re.compile(r"status=error$"))
    page.go_back()
    page.wait_for_url(traffic.url + "/")
    assert traffic.main_trace in _rows(page) and page.input_value('select[name="status"]') == ""


def test_the_time_range_is_in_the_url_and_custom_shows_its_fields(page: Any, traffic: Traffic) -> None:
    page.goto(traffic.url + "/")
    assert page.locator(".custom-range").is_hidden()
    page.select_option("select.range", "15m")
    page.wait_for_url(re.compile(r"range=15m"))
    assert traffic.main_trace in _rows(page)
    page.select_option("select.range", "custom")
    assert page.locator(".custom-range").is_visible()
    page.fill('input[name="since"]', "2000-01-01T00:00:00")
    page.fill('input[name="until"]', "2000-01-02T00:00:00")
    page.click("text=Apply")
    page.wait_for_url(re.compile(r"range=custom"))
    assert _rows(page) == []
    assert "No traces match" in page.inner_text("main")


def test_the_trace_page_shows_its_calls_in_order_with_the_streams_ttft(page: Any, traffic: Traffic) -> None:
    page.goto(f"{traffic.url}/traces/{traffic.main_trace}")
    rows = page.locator("tr.wf-row")
    assert rows.count() == 3
    names = [rows.nth(i).locator("td.name-col").inner_text() for i in range(3)]
    assert "gpt-4o" in names[0] and "gpt-4o" in names[1] and "gpt-4o-mini" in names[2]
    assert "stream" in names[2]
    assert re.fullmatch(r"\d+(\.\d)? ms", rows.nth(2).locator("td.ttft-cell").inner_text())
    assert rows.nth(2).locator("svg rect.ttft").count() == 1
    assert rows.nth(0).locator("svg rect.ttft").count() == 0
    assert page.locator(".totals").inner_text().count("3") >= 1
    page.locator("tr.wf-row").nth(0).locator("td.num").first.click()
    page.wait_for_url(re.compile(r"/records/"))


def test_the_call_page_shows_the_chat_the_tool_call_its_result_usage_and_cost(
    page: Any, traffic: Traffic
) -> None:
    page.goto(f"{traffic.url}/traces/{traffic.main_trace}")
    page.locator("tr.wf-row").nth(1).locator("a").click()
    page.wait_for_url(re.compile(r"/records/"))
    user = page.locator(".msg.role-user")
    assert "What is the weather in Paris?" in user.inner_text()
    call = page.locator(".tool-call")
    assert "get_weather" in call.inner_text()
    assert '"city": "Paris"' in call.locator(".tool-part").nth(0).inner_text()
    assert '"temp_c": 18' in call.locator(".tool-result").inner_text()
    assert (
        "Echo" in page.locator(".msg.role-assistant").last.inner_text()
        or page.locator(".msg.role-assistant").count() >= 2
    )
    facts = page.locator(".facts").inner_text()
    assert re.search(r"\d+ in · \d+ out · \d+ total", facts)
    assert "$0.0" in page.locator(".facts .cost").inner_text()
    assert "REQUEST ID" in facts.upper()


def test_an_error_call_shows_its_error(page: Any, traffic: Traffic) -> None:
    page.goto(f"{traffic.url}/traces/{traffic.error_trace}")
    assert page.locator("tr.wf-row.is-error").count() == 1
    page.locator("tr.wf-row a").first.click()
    box = page.locator("#error")
    box.wait_for()
    assert "RateLimitError" in box.inner_text() and "429" in box.inner_text()
    assert "Rate limit" in box.inner_text()


def test_a_prompt_holding_a_script_runs_nothing_and_shows_as_text(page: Any, traffic: Traffic) -> None:
    for path in ("/", f"/traces/{traffic.script_trace}"):
        page.goto(traffic.url + path)
        assert page.evaluate("typeof window.pwned") == "undefined"
    page.locator("tr.wf-row a").first.click()
    page.wait_for_url(re.compile(r"/records/"))
    page.wait_for_timeout(200)  # give an injected onerror handler its chance to run
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert "<script>window.pwned = 1</script>" in page.locator(".msg.role-user").inner_text()
    assert page.locator(".conversation img").count() == 0


def test_the_key_form_lets_a_person_in_and_a_wrong_key_does_not(
    page: Any, locked: Any, console: Console
) -> None:
    post(locked.url, [record("locked-trace", content="behind the key")], key=KEY)
    page.goto(locked.url + "/traces/locked-trace")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#key", "a-wrong-key")
    page.click("button[type=submit]")
    assert "not accepted" in page.inner_text(".error-banner")
    assert "/login" in page.url
    # The refused form is answered 401, which Chromium logs; that one is expected.
    assert console.problems == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    console.problems.clear()
    page.fill("#key", KEY)
    page.click("button[type=submit]")
    page.wait_for_url(locked.url + "/traces/locked-trace")
    assert "locked-trace" in page.inner_text("h1")
    assert KEY not in page.content() and KEY not in page.url
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["neatlogs_session"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict" and KEY not in cookies[0]["value"]
    assert page.evaluate("document.cookie") == ""  # out of reach of any script
    page.click("text=Log out")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(locked.url + "/")
    assert "/login" in page.url


def test_a_new_trace_appears_without_a_reload_and_the_pause_switch_holds_it(
    page: Any, traffic: Traffic
) -> None:
    page.goto(traffic.url + "/")
    page.evaluate("window.notReloaded = true")
    post(traffic.url, [record("live-trace-1", content="arrived later")])
    page.locator('tr[data-trace="live-trace-1"]').wait_for(timeout=8000)
    assert page.evaluate("window.notReloaded") is True
    page.uncheck("#live")
    assert "paused" in page.inner_text("#live-state")
    post(traffic.url, [record("live-trace-2", content="arrived while paused")])
    page.wait_for_timeout(3000)
    assert "live-trace-2" not in _rows(page)
    page.check("#live")
    page.locator('tr[data-trace="live-trace-2"]').wait_for(timeout=8000)


def test_long_content_is_collapsed_with_show_all_never_cut(page: Any, traffic: Traffic) -> None:
    long_text = "\n".join(f"line {n} of a long prompt" for n in range(400))
    call = record("long-trace", content=long_text)
    post(traffic.url, [call])
    page.goto(f"{traffic.url}/records/{call['id']}")
    box = page.locator(".msg.role-user .long")
    button = page.locator(".msg.role-user .show-all")
    assert "show all (400 lines" in button.inner_text()
    assert box.evaluate("b => b.clientHeight < b.scrollHeight")
    assert "line 399 of a long prompt" in box.text_content()  # all in the page, only clipped
    button.click()
    assert box.evaluate("b => b.clientHeight >= b.scrollHeight")


def test_steps_nest_as_a_tree_that_collapses(page: Any, traffic: Traffic) -> None:
    parent = record(
        "tree-trace", kind="span", provider="neatlogs", operation="agent", model="", name="planner"
    )
    child = record("tree-trace", parent_id=parent["id"], content="inside the agent")
    post(traffic.url, [parent, child])
    page.goto(f"{traffic.url}/traces/tree-trace")
    rows = page.locator("tr.wf-row")
    assert rows.count() == 2 and "planner" in rows.nth(0).inner_text()
    assert rows.nth(1).get_attribute("data-depth") == "1"
    rows.nth(0).locator("button.toggle").click()
    assert rows.nth(1).is_hidden()
    rows.nth(0).locator("button.toggle").click()
    assert rows.nth(1).is_visible()


def _agent_trace(trace: str) -> dict[str, dict[str, Any]]:
    """An agent step holding a call, a tool step (holding a call) and a last call, in wire shape."""
    agent = span(trace, "support_agent", kind="agent", input={"question": "refund order 42?"})
    tool = span(
        trace,
        "validate_transaction",
        kind="tool",
        input={"amount": 100},
        output={"valid": True},
        parent_id=agent["id"],
        attributes={"merchant": "<i>ACME</i>"},
    )
    return {
        "agent": agent,
        "plan": record(trace, parent_id=agent["id"], content="plan"),
        "tool": tool,
        "inner": record(trace, parent_id=tool["id"], content="inside the tool"),
        "answer": record(trace, parent_id=agent["id"], content="answer"),
    }


def test_the_tree_folds_and_unfolds_from_the_keyboard(page: Any, traffic: Traffic) -> None:
    parts = _agent_trace("keyboard-tree")
    post(traffic.url, [parts["inner"], parts["plan"], parts["tool"], parts["answer"], parts["agent"]])
    page.goto(f"{traffic.url}/traces/keyboard-tree")
    row = {name: page.locator(f'tr[data-id="{record["id"]}"]') for name, record in parts.items()}
    agent_toggle = row["agent"].locator("button.toggle")
    tool_toggle = row["tool"].locator("button.toggle")

    tool_toggle.focus()
    page.keyboard.press("Enter")  # fold the tool: only its call goes
    assert row["inner"].is_hidden() and row["plan"].is_visible()
    assert tool_toggle.get_attribute("aria-expanded") == "false"
    assert row["tool"].locator(".hidden-count").inner_text() == "1 hidden"

    agent_toggle.focus()
    page.keyboard.press("Space")  # fold the agent: everything under it
    assert all(row[name].is_hidden() for name in ("plan", "tool", "inner", "answer"))
    assert row["agent"].locator(".hidden-count").inner_text() == "4 hidden"

    page.keyboard.press("Enter")  # unfold it: all of it again, the tool unfolded too
    assert all(row[name].is_visible() for name in parts)
    assert tool_toggle.get_attribute("aria-expanded") == "true"
    assert row["agent"].locator(".hidden-count").is_hidden()
    assert row["tool"].locator(".hidden-count").is_hidden()


def test_a_step_page_opens_from_the_tree_and_leads_to_its_calls_and_back(page: Any, traffic: Traffic) -> None:
    parts = _agent_trace("step-page-tree")
    post(traffic.url, list(parts.values()))
    page.goto(f"{traffic.url}/traces/step-page-tree")

    page.locator(f'tr[data-id="{parts["tool"]["id"]}"] td.bar-col').click()  # the row, not its link
    page.wait_for_url(re.compile(rf"/records/{parts['tool']['id']}$"))
    assert page.locator("h1").inner_text().split() == ["TOOL", "validate_transaction", "success"]
    assert '"amount": 100' in page.locator(".conversation .long").first.inner_text()
    assert page.locator("table.attributes").inner_text().split() == ["merchant", "<i>ACME</i>"]
    assert page.locator("table.attributes i").count() == 0  # shown as text, not markup
    assert "1 call" in page.locator(".facts .inside").inner_text()

    page.locator("table.children tr.wf-row a").click()
    page.wait_for_url(re.compile(rf"/records/{parts['inner']['id']}$"))
    assert "inside the tool" in page.locator(".conversation").inner_text()
    page.locator(".crumbs a", has_text="parent step").click()
    page.wait_for_url(re.compile(rf"/records/{parts['tool']['id']}$"))
    page.locator(".crumbs a", has_text="parent step").click()
    page.wait_for_url(re.compile(rf"/records/{parts['agent']['id']}$"))
    assert page.locator("table.children tr.wf-row").count() == 3


def test_the_dashboard_draws_its_charts_and_tables_from_the_stats_api(page: Any, traffic: Traffic) -> None:
    page.goto(traffic.url + "/dashboard?range=1h")
    page.locator("#chart-calls svg").wait_for()
    assert page.locator("#chart-calls svg rect").count() >= 1
    assert page.locator("#chart-calls svg rect.b-errors").count() >= 1
    table = page.locator("#by-model tbody").inner_text()
    assert "gpt-4o-mini" in table and "gpt-4o" in table
    assert "RateLimitError" in page.locator("#top-errors tbody").inner_text()


def test_no_page_reports_a_console_error(page: Any, traffic: Traffic, console: Console) -> None:
    answer = requests.get(f"{traffic.url}/v1/records", params={"trace_id": traffic.main_trace}, timeout=10)
    record_ids = [r["id"] for r in answer.json()["records"]]
    for path in ["/", "/dashboard", f"/traces/{traffic.main_trace}", "/traces/missing", "/?status=bogus"] + [
        f"/records/{rid}" for rid in record_ids
    ]:
        page.goto(traffic.url + path)
        page.wait_for_load_state("networkidle")
    # 404 and 400 pages are expected answers; what must not happen is a script or CSP error.
    console.problems[:] = [p for p in console.problems if "status of 40" not in p]
    assert console.problems == []


def test_copy_buttons_copy_the_ids_and_the_raw_json(page: Any, traffic: Traffic) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=traffic.url)
    page.goto(f"{traffic.url}/traces/{traffic.error_trace}")
    page.locator("tr.wf-row a").first.click()
    page.wait_for_url(re.compile(r"/records/"))
    record_id = page.url.rsplit("/", 1)[1]
    page.locator(".facts button.copy").first.click()
    assert page.evaluate("navigator.clipboard.readText()") == record_id
    page.click("#raw-json summary")
    page.click("text=copy JSON")
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert copied["id"] == record_id and copied["error"]["type"] == "RateLimitError"
