"""The exporter's session reads the environment's proxy and CA settings once per change of it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from neatlogs.sinks.exporter import http
from neatlogs.sinks.exporter.http import _Session

URL = "http://collector.example:7077/v1/records"


def _settings(session: requests.Session) -> Any:
    return session.merge_environment_settings(URL, {}, None, None, None)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTP_PROXY": "http://proxy.example:3128"},
        {"http_proxy": "http://proxy.example:3128", "NO_PROXY": "collector.example"},
        {"REQUESTS_CA_BUNDLE": "/etc/ssl/bundle.pem", "ALL_PROXY": "socks5://p:1080"},
    ],
)
def test_the_settings_are_the_ones_requests_finds(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = _Session()
    expected = _settings(requests.Session())
    assert _settings(session) == expected
    assert _settings(session) == expected  # from the cache


def test_a_change_of_the_environment_is_seen_at_the_next_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = _Session()
    assert "http" not in _settings(session)["proxies"]
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert _settings(session)["proxies"]["http"] == "http://proxy.example:3128"
    monkeypatch.setenv("HTTP_PROXY", "http://other.example:3128")
    assert _settings(session)["proxies"]["http"] == "http://other.example:3128"


def test_the_environment_is_read_once_while_it_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = requests.Session.merge_environment_settings

    def counting(self: requests.Session, *args: Any) -> Any:
        calls.append(args)
        return original(self, *args)

    monkeypatch.setattr(requests.Session, "merge_environment_settings", counting)
    session = _Session()
    for _ in range(5):
        _settings(session)
    assert len(calls) == 1
    monkeypatch.setattr(http, "_ENV_SETTINGS_TTL", 0.0)  # and again once the time is up
    _settings(session)
    assert len(calls) == 2


def test_each_request_gets_its_own_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    session = _Session()
    first = _settings(session)
    first["proxies"]["http"] = "changed"
    first["verify"] = "changed"
    second = _settings(session)
    assert second["proxies"]["http"] == "http://proxy.example:3128"
    assert second["verify"] != "changed"
