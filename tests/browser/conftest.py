"""Browser tests: headless Chromium (Debian's `chromium`) driven by Playwright, against a real collector.

They run only when asked for (`pytest tests/browser` or NEATLOGS_BROWSER_TESTS=1), so the plain
test sessions need no browser. Asked for, a missing browser or Playwright is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

import neatlogs
from neatlogs._testing.fake_openai import WEATHER_TOOL, FakeOpenAI
from neatlogs.collector import CollectorServer
from neatlogs.openai import OpenAIProvider

HERE = Path(__file__).parent
KEY = "browser-test-key-1b9c"
UNIQUE_WORD = "quokkasaurus"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
INSTALL = (
    "the browser tests need Debian's chromium and Playwright's Python package:\n"
    "    apt-get update && apt-get install -y chromium && pip install 'playwright==1.65.2'\n"
    "(set NEATLOGS_CHROMIUM to use another Chromium binary)"
)


def _asked_for(config: pytest.Config) -> bool:
    if os.environ.get("NEATLOGS_BROWSER_TESTS") == "1":
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name.startswith("test_") and not _asked_for(config):
        return True
    return None


def _chromium() -> str:
    path = os.environ.get("NEATLOGS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"no Chromium at {path}: {INSTALL}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"Playwright is not installed: {INSTALL}", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Console:
    """What the page reported: console errors and uncaught exceptions. Must stay empty."""

    problems: list[str] = field(default_factory=list)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    opened.on(
        "console", lambda message: console.problems.append(message.text) if message.type == "error" else None
    )
    opened.on("pageerror", lambda error: console.problems.append(f"uncaught: {error}"))
    yield opened
    context.close()
    assert console.problems == [], f"the page reported errors: {console.problems}"


@dataclass
class Traffic:
    """A collector holding the records of real traced calls, delivered by the real exporter."""

    url: str
    key: str | None
    server: CollectorServer
    main_trace: str
    search_trace: str
    script_trace: str
    error_trace: str


def make_traffic(server: CollectorServer, key: str | None) -> Traffic:
    """Traced calls against the fake OpenAI server, exported over HTTP to `server`."""
    ids = {name: f"{name}-{os.urandom(4).hex()}" for name in ("main", "search", "script", "error")}
    made: list[OpenAIProvider] = []
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-browser-test-0000", max_retries=0)

        def traced(name: str, tags: list[str]) -> None:
            provider = OpenAIProvider(
                trace_id=ids[name], endpoint=server.url, api_key=key, tags=tags, otel=False
            )
            provider.override()
            made.append(provider)

        try:
            traced("main", ["checkout"])
            messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
            first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
            call = first.choices[0].message.tool_calls[0]
            messages.append(first.choices[0].message.model_dump(exclude_none=True))
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18, "sky": "clear"}'}
            )
            client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Explain tracing in one sentence"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            for _ in stream:
                pass
            for provider in made:
                provider.undo_override()
            made.clear()

            traced("search", ["search"])
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Tell me about the {UNIQUE_WORD}"}],
            )
            made.pop().undo_override()

            traced("script", ["xss"])
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {
                        "role": "user",
                        "content": '<script>window.pwned = 1</script><img src=x onerror="window.pwned=2">',
                    }
                ],
            )
            made.pop().undo_override()

            traced("error", ["failing"])
            fake.fail_next(status=429, retry_after=1)
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            made.pop().undo_override()
            assert neatlogs.flush(timeout=10), "the exporter did not deliver the records"
        finally:
            for provider in made:
                provider.undo_override()
            client.close()
    return Traffic(
        url=server.url,
        key=key,
        server=server,
        main_trace=ids["main"],
        search_trace=ids["search"],
        script_trace=ids["script"],
        error_trace=ids["error"],
    )


@pytest.fixture(scope="session")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    """An open collector (--no-auth) with the records of a few traced calls."""
    with CollectorServer(tmp_path_factory.mktemp("viewer") / "v.db", api_keys=None) as server:
        yield make_traffic(server, None)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[CollectorServer]:
    """A collector that wants a key."""
    with CollectorServer(tmp_path / "locked.db", api_keys={KEY}) as server:
        yield server
