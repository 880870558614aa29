"""`neatlogs demo` ends by showing the viewer's URL; in a terminal it keeps serving until Ctrl-C."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import requests

URL = re.compile(rb"see them in the viewer: (http://127\.0\.0\.1:\d+)/traces/(\w+)")
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def test_demo_outside_a_terminal_prints_the_viewer_url_and_exits() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "neatlogs", "demo"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=90,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert URL.search(done.stdout), done.stdout.decode()
    assert b"neatlogs serve --no-auth --db" in done.stdout


def _read_until(fd: int, pattern: re.Pattern[bytes], timeout: float) -> tuple[re.Match[bytes], bytes]:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            match = pattern.search(seen)
            if match:
                return match, seen
    raise AssertionError(f"{pattern.pattern!r} not seen in:\n{seen.decode(errors='replace')}")


def test_demo_in_a_terminal_serves_its_records_in_the_viewer_until_ctrl_c() -> None:
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "neatlogs", "demo"], stdin=child, stdout=child, stderr=child, env=ENV
    )
    os.close(child)
    try:
        _, output = _read_until(main, re.compile(rb"until Ctrl-C"), timeout=90)
        match = URL.search(output)
        assert match is not None
        base, trace = match.group(1).decode(), match.group(2).decode()
        key = re.search(rb"collector's key: (\S+)\)", output)
        assert key is not None
        session = requests.Session()
        login = session.post(
            base + "/login",
            data={"key": key.group(1).decode(), "next": f"/traces/{trace}"},
            headers={"Origin": base},
            timeout=10,
        )
        assert login.status_code == 200 and trace in login.text
        # six scenarios; the tool one is an agent step holding its two calls and a tool step
        assert login.text.count('class="wf-row') == 9
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
