"""Nothing the collector writes or serves can be read by others: file modes, auth flags, Host/Origin."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from neatlogs.__main__ import main
from neatlogs.collector import CollectorServer, RecordStore

from .test_collector import AUTH, JSON_AUTH, KEY, _cli_env, make_record, post


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_server(tmp_path: Path) -> Iterator[CollectorServer]:
    with CollectorServer(tmp_path / "open.db", api_keys=None) as running:
        yield running


@pytest.fixture
def trace() -> str:
    return uuid.uuid4().hex


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


# ---------------------------------------------------------------- file modes


def test_the_database_its_wal_and_shm_and_created_directories_are_owner_only_whatever_the_umask(
    tmp_path: Path, trace: str
) -> None:
    db = tmp_path / "made" / "for" / "it" / "records.db"
    previous = os.umask(0)
    try:
        with CollectorServer(db, api_keys={KEY}) as server:
            assert post(server.url, [make_record(trace)]).status_code == 200
            files = [db, db.with_name("records.db-wal"), db.with_name("records.db-shm")]
            modes = {path.name: mode(path) for path in files}
    finally:
        os.umask(previous)

    assert modes == dict.fromkeys(modes, 0o600)
    for directory in (db.parent, db.parent.parent, db.parent.parent.parent):
        assert mode(directory) == 0o700, directory


def test_a_world_readable_database_left_by_an_older_version_is_made_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    RecordStore(db).close()
    db.chmod(0o644)

    RecordStore(db).close()

    assert mode(db) == 0o600


# ---------------------------------------------------------------- a database that cannot be written


@pytest.fixture
def read_only_db(tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "locked.db"
    RecordStore(db).close()
    # root ignores permission bits; the immutable attribute stops even root from writing.
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(db)], check=True)
    else:
        db.chmod(0o400)
    try:
        yield db
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(db)], check=True)


def test_serve_on_a_read_only_database_exits_at_start_up_saying_why(
    read_only_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--no-auth", "--port", "0", "--db", str(read_only_db)])

    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot store records in {read_only_db}" in err
    assert "readonly" in err
    assert "permissions" in err


# ---------------------------------------------------------------- auth flags


def test_api_keys_and_no_auth_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "never.db"

    code = main(["serve", "--api-key", "K", "--no-auth", "--port", "0", "--db", str(db)])

    assert code == 2
    assert "--no-auth contradicts the API keys given (--api-key)" in capsys.readouterr().err
    assert not db.exists()


def test_keys_from_the_environment_and_no_auth_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEATLOGS_SERVER_API_KEYS", "k1")

    code = main(["serve", "--no-auth", "--port", "0", "--db", str(tmp_path / "never.db")])

    assert code == 2
    assert "$NEATLOGS_SERVER_API_KEYS" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_no_auth_on_every_interface_is_refused_without_the_explicit_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    code = main(["serve", "--no-auth", "--host", host, "--port", "0", "--db", str(tmp_path / "never.db")])

    err = capsys.readouterr().err
    assert code == 2
    assert f"refusing to listen on {host} without authentication" in err
    assert "--allow-unauthenticated-network" in err
    assert not (tmp_path / "never.db").exists()


def test_allow_unauthenticated_network_without_no_auth_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["serve", "--api-key", "K", "--allow-unauthenticated-network", "--db", str(tmp_path / "never.db")]
    )

    assert code == 2
    assert "only applies with --no-auth" in capsys.readouterr().err


def test_the_python_server_refuses_a_non_loopback_bind_without_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without authentication"):
        CollectorServer(tmp_path / "x.db", host="0.0.0.0", api_keys=None)


def _start_cli(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], list[str]]:
    command = [sys.executable, "-m", "neatlogs", "serve", "--port", "0", "--db", str(tmp_path / "cli.db")]
    process = subprocess.Popen(
        [*command, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env()
    )
    assert process.stdout is not None
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    return process, banner


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_the_banner_names_every_interface_when_listening_on_0_0_0_0(tmp_path: Path) -> None:
    process, banner = _start_cli(
        tmp_path, "--no-auth", "--host", "0.0.0.0", "--allow-unauthenticated-network"
    )
    try:
        text = "".join(banner)
        assert "listening on 0.0.0.0:" in text, text
        assert "(every network interface)" in text
        assert "WARNING: authentication is off" in text
        endpoint = next(line for line in banner if "NEATLOGS_ENDPOINT=" in line).split("=", 1)[1].strip()
        # Reachable by another name than loopback, as the flag allows.
        answer = requests.get(
            f"{endpoint}/v1/records", headers={"Host": f"collector.lan:{_port(endpoint)}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
    finally:
        _stop(process)


def test_the_banner_says_this_machine_only_on_loopback(tmp_path: Path) -> None:
    process, banner = _start_cli(tmp_path, "--no-auth")
    try:
        assert "listening on 127.0.0.1:" in banner[0]
        assert "(this machine only)" in banner[0]
    finally:
        _stop(process)


# ---------------------------------------------------------------- ingest content type


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        ("text/plain", "Content-Type must be application/json, got 'text/plain'"),
        ("application/x-www-form-urlencoded", "Content-Type must be application/json"),
        (None, "missing Content-Type"),
    ],
)
def test_ingest_without_a_json_content_type_is_415_and_stores_nothing(
    open_server: CollectorServer, trace: str, content_type: str | None, says: str
) -> None:
    body = ('{"records": [' + json.dumps(make_record(trace)) + "]}").encode()
    headers = {} if content_type is None else {"Content-Type": content_type}

    answer = requests.post(f"{open_server.url}/v1/records", data=body, headers=headers, timeout=10)

    assert answer.status_code == 415
    assert says in answer.json()["error"]
    assert open_server.store.records(trace_id=trace) == []


def test_ingest_accepts_json_with_a_charset(open_server: CollectorServer, trace: str) -> None:
    body = ('{"records": [' + json.dumps(make_record(trace)) + "]}").encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}

    answer = requests.post(f"{open_server.url}/v1/records", data=body, headers=headers, timeout=10)

    assert answer.status_code == 200, answer.text


# ---------------------------------------------------------------- Host and Origin


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "192.0.2.7:{port}", "[2001:db8::1]:{port}"]
)
@pytest.mark.parametrize("path", ["/v1/records", "/v1/traces", "/healthz"])
def test_without_auth_a_request_addressed_to_a_non_loopback_host_is_403(
    open_server: CollectorServer, host: str, path: str
) -> None:
    host = host.format(port=_port(open_server.url))

    answer = requests.get(open_server.url + path, headers={"Host": host}, timeout=10)

    assert answer.status_code == 403
    assert "is not a loopback name or address" in answer.json()["error"]
    assert "DNS rebinding" in answer.json()["error"]


def test_without_auth_a_rebound_page_cannot_store_records(open_server: CollectorServer, trace: str) -> None:
    port = _port(open_server.url)
    page = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}

    answer = post(open_server.url, [make_record(trace)], headers={**page, "Content-Type": "application/json"})

    assert answer.status_code == 403
    assert open_server.store.records(trace_id=trace) == []


@pytest.mark.parametrize(
    "host",
    [
        "localhost:{port}",
        "127.0.0.1:{port}",
        "127.1.2.3",
        "LOCALHOST.",
        "app.localhost:{port}",
        "[::1]:{port}",
    ],
)
def test_without_auth_loopback_hosts_are_served(open_server: CollectorServer, host: str) -> None:
    answer = requests.get(
        f"{open_server.url}/v1/records",
        headers={"Host": host.format(port=_port(open_server.url))},
        timeout=10,
    )

    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://localhost:{port}", "null", "http://127.0.0.1:1"]
)
def test_a_cross_origin_request_from_a_web_page_is_403_and_stores_nothing(
    open_server: CollectorServer, trace: str, origin: str
) -> None:
    headers = {"Origin": origin.format(port=_port(open_server.url)), "Content-Type": "text/plain"}
    body = ('{"records": [' + json.dumps(make_record(trace)) + "]}").encode()

    answer = requests.post(f"{open_server.url}/v1/records", data=body, headers=headers, timeout=10)

    assert answer.status_code == 403
    assert "cross-origin request" in answer.json()["error"]
    assert open_server.store.records(trace_id=trace) == []


def test_a_page_served_by_the_collector_itself_may_call_it(open_server: CollectorServer, trace: str) -> None:
    same = {"Origin": open_server.url, "Content-Type": "application/json"}

    stored = post(open_server.url, [make_record(trace)], headers=same)
    found = requests.get(
        f"{open_server.url}/v1/records", params={"trace_id": trace}, headers=same, timeout=10
    )

    assert stored.status_code == 200, stored.text
    assert len(found.json()["records"]) == 1


def test_with_keys_any_host_is_served_but_a_foreign_origin_still_is_not(tmp_path: Path) -> None:
    with CollectorServer(tmp_path / "keyed.db", api_keys={KEY}) as keyed:
        by_name = requests.get(
            f"{keyed.url}/v1/records", headers={**AUTH, "Host": "collector.example"}, timeout=10
        )
        from_page = requests.get(
            f"{keyed.url}/v1/records", headers={**JSON_AUTH, "Origin": "http://evil.example"}, timeout=10
        )

    assert by_name.status_code == 200
    assert from_page.status_code == 403
