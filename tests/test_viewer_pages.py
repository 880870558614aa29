"""The viewer's pages over HTTP (no browser): status codes, headers, escaping, auth, bad input."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from neatlogs.collector import CollectorServer
from neatlogs.collector.viewer import routes

from .viewer_records import error_record, post, record, tool_conversation

KEY = "viewer-test-key-7f3a"


@pytest.fixture
def open_collector(tmp_path: Path) -> Iterator[CollectorServer]:
    with CollectorServer(tmp_path / "v.db", api_keys=None) as server:
        yield server


@pytest.fixture
def locked_collector(tmp_path: Path) -> Iterator[CollectorServer]:
    with CollectorServer(tmp_path / "v.db", api_keys={KEY}) as server:
        yield server


def _get(server: CollectorServer, path: str, **kwargs: object) -> requests.Response:
    return requests.get(server.url + path, timeout=10, allow_redirects=False, **kwargs)  # type: ignore[arg-type]


def _login(server: CollectorServer, key: str, origin: str | None = None) -> requests.Response:
    return requests.post(
        server.url + "/login",
        data={"key": key, "next": "/dashboard"},
        headers={"Origin": origin or server.url},
        timeout=10,
        allow_redirects=False,
    )


def test_every_page_answers_with_a_strict_content_security_policy(open_collector: CollectorServer) -> None:
    call = record("trace-1")
    post(open_collector.url, [call])
    for path in ("/", "/dashboard", "/traces/trace-1", f"/records/{call['id']}", "/?status=error&q=hello"):
        answer = _get(open_collector, path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert "<script>" not in answer.text  # no inline script at all, only <script src=...>


def test_record_content_is_shown_as_text_never_as_markup(open_collector: CollectorServer) -> None:
    evil = "<script>window.pwned=1</script><img src=x onerror=alert(1)>"
    call = record("trace-<b>evil</b>", content=evil, tags=["<i>tag</i>"], model="<u>model</u>")
    post(open_collector.url, [call])
    pages = [
        _get(open_collector, "/").text,
        _get(open_collector, "/traces/trace-<b>evil</b>").text,
        _get(open_collector, f"/records/{call['id']}").text,
    ]
    for text in pages:
        assert "<script>window.pwned" not in text
        assert "<img src=x" not in text and "<i>tag</i>" not in text and "<u>model</u>" not in text
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in pages[2]
    assert "&lt;i&gt;tag&lt;/i&gt;" in pages[0]


def test_the_call_page_shows_the_tool_call_its_arguments_and_its_result(
    open_collector: CollectorServer,
) -> None:
    call = tool_conversation()
    post(open_collector.url, [call])
    html = _get(open_collector, f"/records/{call['id']}").text
    assert "get_weather" in html and "call_weather_1" in html
    assert "&#34;city&#34;: &#34;Paris&#34;" in html  # arguments pretty-printed, one key per line
    assert "&#34;temp_c&#34;: 18" in html  # the tool's result, matched by call id
    assert "You answer weather questions." in html
    assert "cached tokens" in html and "1,024" in html
    assert "$0.000321" in html


def test_a_call_page_links_the_calls_before_and_after_it_in_its_trace(
    open_collector: CollectorServer,
) -> None:
    now = datetime.now(timezone.utc)
    calls = [record("trace-nav", started=now - timedelta(seconds=3 - n)) for n in range(3)]
    post(open_collector.url, calls)
    middle = _get(open_collector, f"/records/{calls[1]['id']}").text
    assert f'href="/records/{calls[0]["id"]}" rel="prev"' in middle
    assert f'href="/records/{calls[2]["id"]}" rel="next"' in middle
    assert "2 of 3" in middle
    first = _get(open_collector, f"/records/{calls[0]['id']}").text
    assert 'rel="prev"' not in first and "1 of 3" in first


def test_an_error_call_shows_its_type_status_and_message(open_collector: CollectorServer) -> None:
    call = error_record()
    post(open_collector.url, [call])
    html = _get(open_collector, f"/records/{call['id']}").text
    assert "RateLimitError" in html and "HTTP 429" in html
    assert "Rate limit reached for requests" in html and "req_ratelimited_42" in html


def test_unknown_traces_records_and_pages_are_404_pages(open_collector: CollectorServer) -> None:
    for path in ("/traces/nope", "/records/nope", "/no/such/page"):
        answer = _get(open_collector, path)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "No such" in answer.text
    assert _get(open_collector, "/v1/nope").json() == {"error": "no such endpoint: /v1/nope"}


def test_bad_filters_are_a_400_page_saying_what_is_wrong(open_collector: CollectorServer) -> None:
    for path, words in (
        ("/?status=bogus", "status"),
        ("/?range=custom&since=yesterday", "since"),
        ("/?cursor=not-a-cursor", "cursor"),
        ("/dashboard?range=custom&since=2026-13-45", "since"),
    ):
        answer = _get(open_collector, path)
        assert answer.status_code == 400, path
        assert "error-banner" in answer.text and words in answer.text


def test_a_record_with_fields_of_the_wrong_type_still_draws(open_collector: CollectorServer) -> None:
    call = record("trace-odd", usage="lots", error=5, tags="x", rate_limit=[1], prompt={"odd": True})
    call["choices"] = "nope"
    call["duration_ms"] = "slow"
    post(open_collector.url, [call])
    for path in (f"/records/{call['id']}", "/traces/trace-odd", "/"):
        assert _get(open_collector, path).status_code == 200, path


def test_static_files_are_served_with_their_types_and_nothing_else(open_collector: CollectorServer) -> None:
    html = _get(open_collector, "/").text
    assert "/static/viewer.css?v=" in html and "/static/viewer.js?v=" in html
    css = _get(open_collector, "/static/viewer.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = _get(open_collector, "/static/viewer.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert _get(open_collector, "/static/../app.py").status_code == 404
    assert _get(open_collector, "/static/nope.js").status_code == 404


def test_an_empty_collector_says_how_to_send_it_records(open_collector: CollectorServer) -> None:
    page = _get(open_collector, "/").text
    assert "No traces yet" in page and f"export NEATLOGS_ENDPOINT={open_collector.url}\n" in page


def test_an_empty_locked_collector_also_says_to_set_the_key(locked_collector: CollectorServer) -> None:
    jar = _login(locked_collector, KEY).cookies
    page = _get(locked_collector, "/", cookies=jar).text
    assert f"export NEATLOGS_ENDPOINT={locked_collector.url}\nexport NEATLOGS_API_KEY=" in page


# ---------------------------------------------------------------- the key form


def test_pages_ask_for_a_key_first(locked_collector: CollectorServer) -> None:
    answer = _get(locked_collector, "/traces/x?y=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Ftraces%2Fx%3Fy%3D1"
    form = _get(locked_collector, "/login")
    assert form.status_code == 200 and 'type="password"' in form.text


def test_a_wrong_key_gets_the_form_again_and_no_cookie(locked_collector: CollectorServer) -> None:
    answer = _login(locked_collector, "not-the-key")
    assert answer.status_code == 401
    assert "not accepted" in answer.text
    assert "set-cookie" not in answer.headers
    assert "not-the-key" not in answer.text


def test_the_right_key_opens_pages_and_the_read_api_but_never_ingest(
    locked_collector: CollectorServer,
) -> None:
    post(locked_collector.url, [record("trace-1")], key=KEY)
    answer = _login(locked_collector, KEY)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert KEY not in cookie
    jar = answer.cookies
    for path in ("/", "/dashboard", "/traces/trace-1"):
        page = _get(locked_collector, path, cookies=jar)
        assert page.status_code == 200, path
        assert KEY not in page.text
    assert _get(locked_collector, "/v1/traces", cookies=jar).status_code == 200
    ingest = requests.post(
        locked_collector.url + "/v1/records", json={"records": [record("t2")]}, cookies=jar, timeout=10
    )
    assert ingest.status_code == 401  # writing takes the Bearer key, never the page's cookie


def test_logging_out_ends_the_session(locked_collector: CollectorServer) -> None:
    jar = _login(locked_collector, KEY).cookies
    out = requests.post(
        locked_collector.url + "/logout",
        cookies=jar,
        headers={"Origin": locked_collector.url},
        timeout=10,
        allow_redirects=False,
    )
    assert out.status_code == 303
    assert _get(locked_collector, "/", cookies=jar).status_code == 303
    assert _get(locked_collector, "/v1/traces", cookies=jar).status_code == 401


def test_a_login_posted_from_another_site_is_refused(locked_collector: CollectorServer) -> None:
    answer = _login(locked_collector, KEY, origin="https://evil.example")
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    answer = requests.post(
        locked_collector.url + "/login",
        data={"key": KEY},
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_the_login_form_never_redirects_to_another_site(locked_collector: CollectorServer) -> None:
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        answer = requests.post(
            locked_collector.url + "/login",
            data={"key": KEY, "next": target},
            headers={"Origin": locked_collector.url},
            timeout=10,
            allow_redirects=False,
        )
        assert answer.headers["location"] == "/", target


def test_a_session_from_one_collector_does_not_open_another(tmp_path: Path) -> None:
    with (
        CollectorServer(tmp_path / "a.db", api_keys={"key-a"}) as first,
        CollectorServer(tmp_path / "b.db", api_keys={"key-b"}) as second,
    ):
        jar = _login(first, "key-a").cookies
        assert _get(first, "/", cookies=jar).status_code == 200
        token = jar.get("neatlogs_session")
        assert _get(second, "/", cookies={"neatlogs_session": token}).status_code == 303


def test_without_keys_the_pages_open_directly(open_collector: CollectorServer) -> None:
    assert _get(open_collector, "/").status_code == 200
    assert _get(open_collector, "/login").headers["location"] == "/"


# ---------------------------------------------------------------- shapes of records and lists


def test_the_list_pages_by_cursor_from_newest_to_oldest(open_collector: CollectorServer) -> None:
    now = datetime.now(timezone.utc)
    post(
        open_collector.url,
        [record(f"trace-{n:02d}", started=now - timedelta(minutes=n)) for n in range(60)],
    )
    first = _get(open_collector, "/").text
    shown = re.findall(r'data-trace="(trace-\d\d)"', first)
    assert shown == [f"trace-{n:02d}" for n in range(50)]
    older = re.search(r'href="(/\?cursor=[^"]+)">older', first)
    assert older is not None
    second = _get(open_collector, html.unescape(older.group(1))).text
    assert re.findall(r'data-trace="(trace-\d\d)"', second) == [f"trace-{n:02d}" for n in range(50, 60)]
    assert "older →" not in second and "← newest" in second


def test_every_choice_is_shown_when_n_is_more_than_one(open_collector: CollectorServer) -> None:
    choices = [
        {"index": i, "role": "assistant", "content": f"variant number {i}", "finish_reason": "stop"}
        for i in range(3)
    ]
    call = record("trace-n", choices=choices, completion=choices[0])
    post(open_collector.url, [call])
    page = _get(open_collector, f"/records/{call['id']}").text
    assert "(3 choices)" in page
    for i in range(3):
        assert f"choice {i}" in page and f"variant number {i}" in page


def test_a_responses_api_call_shows_instructions_items_and_matched_function_output(
    open_collector: CollectorServer,
) -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "weather in Oslo?"}]},
        {"type": "function_call", "call_id": "fc_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "fc_1", "output": '{"temp_c": -3}'},
    ]
    call = record(
        "trace-responses",
        operation="responses",
        prompt=items,
        request={"model": "gpt-4o", "input": items, "instructions": "Be brief."},
    )
    post(open_collector.url, [call])
    page = _get(open_collector, f"/records/{call['id']}").text
    assert "Be brief." in page and "weather in Oslo?" in page
    assert "get_weather" in page and "&#34;city&#34;: &#34;Oslo&#34;" in page
    assert 'class="tool-part tool-result"' in page and "&#34;temp_c&#34;: -3" in page


def test_anthropic_content_blocks_show_tool_use_and_its_result(open_collector: CollectorServer) -> None:
    prompt = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Look up order 42"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_9", "name": "find_order", "input": {"id": 42}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "shipped"}],
        },
    ]
    call = record("trace-anthropic", provider="anthropic", prompt=prompt, model="claude-sonnet-4")
    post(open_collector.url, [call])
    page = _get(open_collector, f"/records/{call['id']}").text
    assert "Checking." in page and "find_order" in page and "toolu_9" in page
    assert "&#34;id&#34;: 42" in page and "shipped" in page
    assert page.count('class="msg role-user"') == 1  # the results-only turn is drawn under its call


def test_a_step_shows_its_input_and_output_and_its_children_nest_under_it(
    open_collector: CollectorServer,
) -> None:
    step = record(
        "trace-steps",
        kind="span",
        provider="neatlogs",
        operation="tool",
        model="",
        name="validate_transaction",
        prompt={"amount": 100},
        completion={"ok": True},
    )
    inner = record("trace-steps", parent_id=step["id"], content="called inside the step")
    orphan = record("trace-steps", parent_id="not-in-this-trace", content="parent unknown")
    post(open_collector.url, [step, inner, orphan])
    page = _get(open_collector, f"/records/{step['id']}").text
    assert "validate_transaction" in page and "&#34;amount&#34;: 100" in page and "&#34;ok&#34;: true" in page
    trace = _get(open_collector, "/traces/trace-steps").text
    depths = dict(re.findall(r'data-id="(\w+)" data-parent="\w*" data-depth="(\d)"', trace))
    assert depths == {step["id"]: "0", inner["id"]: "1", orphan["id"]: "0"}
    assert "+ 1 step<" in trace


def test_a_trace_longer_than_the_page_draws_says_so_and_keeps_its_totals(
    open_collector: CollectorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "TRACE_CALLS", 3)
    now = datetime.now(timezone.utc)
    post(open_collector.url, [record("trace-long", started=now - timedelta(seconds=n)) for n in range(5)])
    page = _get(open_collector, "/traces/trace-long").text
    assert page.count('class="wf-row') == 3
    assert "drawn up to its first 3 calls" in page
    assert "<dd>5" in page  # the trace's calls, all of them
    assert "6,170" in page  # all five calls' tokens (1,234 each)
