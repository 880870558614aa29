"""The harness itself: a real pytest session's outcomes are read back right, and a changed outcome is found.

Run with `pytest sdk_tests/test_harness.py` (it is not part of the product's test-suite).
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import _compare
import pytest
import run

_SAMPLE = """
import os

import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")


def test_passes():
    pass


def test_fails_only_with_the_plugin():
    assert os.environ.get("SAMPLE_PLUGIN") != "1", "the plugin changed this"


def test_skips():
    pytest.skip("not here")


@pytest.mark.xfail(strict=True)
def test_expected_to_fail():
    assert False


def test_setup_error(broken_setup):
    pass


def test_teardown_error(broken_teardown):
    pass


@pytest.mark.parametrize("n", [1, 2])
def test_parametrized(n):
    assert n
"""

_PLUGIN = """
import os


def pytest_configure(config):
    os.environ["SAMPLE_PLUGIN"] = "1"
"""


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(_SAMPLE))
    (tmp_path / "sample_plugin.py").write_text(textwrap.dedent(_PLUGIN))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return tmp_path


_WORKERS = [0] + ([2] if importlib.util.find_spec("xdist") else [])


@pytest.mark.parametrize("workers", _WORKERS)
def test_every_outcome_is_read_back_once_per_test(sample: Path, workers: int) -> None:
    plain = run._run("plain", sample, sample / "results", None, workers, ["test_sample.py"], [])

    outcomes = {test.split("::")[1]: o.outcome for test, o in plain.outcomes.items()}
    assert outcomes == {
        "test_passes": "passed",
        "test_fails_only_with_the_plugin": "passed",
        "test_skips": "skipped",
        "test_expected_to_fail": "xfailed",
        "test_setup_error": "error",
        "test_teardown_error": "passed + teardown error",
        "test_parametrized[1]": "passed",
        "test_parametrized[2]": "passed",
    }
    assert "setup broke" in plain.outcomes["test_sample.py::test_setup_error"].message


def test_a_test_that_ends_differently_with_the_plugin_is_the_only_difference(sample: Path) -> None:
    plain = run._run("plain", sample, sample / "results", None, 0, ["test_sample.py"], [])
    traced = run._run("traced", sample, sample / "results", "sample_plugin", 0, ["test_sample.py"], [])

    found = _compare.differences(plain.outcomes, traced.outcomes)

    assert [(d.test, d.plain.outcome, d.traced.outcome) for d in found] == [
        ("test_sample.py::test_fails_only_with_the_plugin", "passed", "failed")
    ]
    assert "the plugin changed this" in found[0].traced.message


def test_a_test_missing_from_one_run_is_a_difference() -> None:
    plain = {"t::a": _compare.Outcome("passed"), "t::b": _compare.Outcome("passed")}
    traced = {"t::a": _compare.Outcome("passed")}

    found = _compare.differences(plain, traced)

    assert [(d.test, d.traced.outcome) for d in found] == [("t::b", _compare.NOT_RUN)]


_NEATLOGS_SAMPLE = """
from neatlogs._log import log_internal_error


def test_neatlogs_fails_inside():
    try:
        raise KeyError("a bug inside neatlogs")
    except KeyError:
        log_internal_error("a sample place")
"""


def test_internal_errors_neatlogs_swallows_are_reported_with_their_test(sample: Path) -> None:
    (sample / "test_neatlogs_sample.py").write_text(textwrap.dedent(_NEATLOGS_SAMPLE))

    traced = run._run(
        "traced", sample, sample / "results", run._NEATLOGS_PLUGIN, 0, ["test_neatlogs_sample.py"], []
    )

    assert traced.outcomes["test_neatlogs_sample.py::test_neatlogs_fails_inside"].outcome == "passed"
    calls, _, errors = run._neatlogs_activity(traced)
    assert [(e["test"], e["message"]) for e in errors] == [
        (
            "test_neatlogs_sample.py::test_neatlogs_fails_inside",
            "neatlogs internal error in a sample place; the call itself is unaffected",
        )
    ]
    assert "KeyError: 'a bug inside neatlogs'" in errors[0]["traceback"]
    assert calls == 0


_FLAKY_SAMPLE = """
import os
from pathlib import Path


def test_fails_once_with_the_plugin():
    marker = Path(os.environ["FLAKY_MARKER"])
    if os.environ.get("SAMPLE_PLUGIN") == "1" and not marker.exists():
        marker.write_text("failed once")
        raise AssertionError("timing")
"""


def test_a_difference_is_counted_only_if_it_comes_back_when_rerun(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample / "test_flaky.py").write_text(textwrap.dedent(_FLAKY_SAMPLE))
    monkeypatch.setenv("FLAKY_MARKER", str(sample / "flaky-marker"))
    paths = ["test_sample.py", "test_flaky.py"]
    plain = run._run("plain", sample, sample / "results", None, 0, paths, [])
    traced = run._run("traced", sample, sample / "results", "sample_plugin", 0, paths, [])
    found = _compare.differences(plain.outcomes, traced.outcomes)
    assert len(found) == 2  # the real difference and the one-off failure

    confirmed = run._confirmed(found, sample, sample / "results", "sample_plugin", [])

    assert [d.test for d in confirmed] == ["test_sample.py::test_fails_only_with_the_plugin"]
