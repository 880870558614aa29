"""The harness itself: a real pytest session's outcomes are read back right, and a changed outcome is found.

Run with `pytest sdk_tests/test_harness.py` (it is not part of the product's test-suite).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import tarfile
import textwrap
from collections import Counter
from pathlib import Path

import _compare
import _sdist
import _sdks
import _selection
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


def test_each_sdk_runs_its_own_selection_of_files(tmp_path: Path) -> None:
    for relative in [
        "tests/test_client.py",
        "tests/test_lazy_imports.py",
        "tests/api_resources/test_messages.py",
        "tests/test_x509_workload.py",
        "tests/lib/streaming/test_a_new_helper.py",
        "tests/lib/tools/toolsets/test_pipeline.py",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")

    openai_chosen, openai_left_out = _selection.select(tmp_path, _sdks.OPENAI)
    anthropic_chosen, anthropic_left_out = _selection.select(tmp_path, _sdks.ANTHROPIC)

    assert openai_chosen == [
        "tests/lib/streaming/test_a_new_helper.py",
        "tests/lib/tools/toolsets/test_pipeline.py",
        "tests/test_client.py",
    ]
    assert sorted(openai_left_out) == [
        "tests/api_resources/test_messages.py",
        "tests/test_lazy_imports.py",
        "tests/test_x509_workload.py",
    ]
    assert anthropic_chosen == ["tests/lib/streaming/test_a_new_helper.py", "tests/test_client.py"]
    assert anthropic_left_out == {
        "tests/api_resources/test_messages.py": _sdks.ANTHROPIC.excluded["tests/api_resources"],
        "tests/lib/tools/toolsets/test_pipeline.py": _sdks.ANTHROPIC.unselected,
        "tests/test_lazy_imports.py": _sdks.ANTHROPIC.unselected,
        "tests/test_x509_workload.py": _sdks.ANTHROPIC.unselected,
    }
    assert "Prism" in anthropic_left_out["tests/api_resources/test_messages.py"]


_ENVIRONMENT_SAMPLE = """
import os


def test_sees_no_credentials_or_settings():
    names = ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "NEATLOGS_ENDPOINT", "AWS_REGION"]
    assert [name for name in names if name in os.environ] == []


def test_sees_the_sdks_own_test_switches():
    assert os.environ.get("OPENAI_TEST_LANE") == "legacy"
"""


@pytest.mark.parametrize("sdk", [_sdks.OPENAI, _sdks.ANTHROPIC], ids=lambda sdk: sdk.name)
def test_the_sdks_settings_do_not_reach_its_tests_and_its_test_switches_do(
    sdk: _sdks.Sdk, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample / "test_environment.py").write_text(textwrap.dedent(_ENVIRONMENT_SAMPLE))
    for name in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "NEATLOGS_ENDPOINT",
        "AWS_REGION",
    ]:
        monkeypatch.setenv(name, "from-this-machine")
    monkeypatch.setenv("OPENAI_TEST_LANE", "legacy")

    without_plugins = dataclasses.replace(sdk, pytest_args=())  # the sample has no tests/_alias_httpx.py
    plain = run._run(
        "plain", sample, sample / "results", None, 0, ["test_environment.py"], [], without_plugins
    )

    outcomes = {test.split("::")[1]: o.outcome for test, o in plain.outcomes.items()}
    switches = "passed" if sdk is _sdks.OPENAI else "failed"  # OPENAI_TEST_ is openai's switch only
    assert outcomes == {
        "test_sees_no_credentials_or_settings": "passed",
        "test_sees_the_sdks_own_test_switches": switches,
    }


def test_the_sdks_pytest_arguments_apply_to_both_runs(sample: Path) -> None:
    # The plugin that changes the sample's outcome stands for an SDK's own early plugin (anthropic's
    # `-p tests._alias_httpx`): without it in the plain run too, the SDK's tests would not even import.
    sdk = _sdks.Sdk(name="sample", stripped_env=(), pytest_args=("-p", "sample_plugin"))

    plain = run._run("plain", sample, sample / "results", None, 0, ["test_sample.py"], [], sdk)

    assert plain.outcomes["test_sample.py::test_fails_only_with_the_plugin"].outcome == "failed"
    assert _sdks.ANTHROPIC.pytest_args == ("-p", "tests._alias_httpx")


def test_a_traced_run_proves_nothing_unless_neatlogs_recorded_a_call_of_that_sdk() -> None:
    anthropic_calls = Counter({"anthropic messages.create": 3, "openai chat.completions.create": 1})
    openai_calls = Counter({"openai chat.completions.create": 4})

    assert run._unproven(4, anthropic_calls, _sdks.ANTHROPIC) is None
    assert run._unproven(4, openai_calls, _sdks.OPENAI) is None
    assert "recorded no call" in (run._unproven(0, Counter(), _sdks.ANTHROPIC) or "")
    assert "none of the most recent ones is anthropic's" in (
        run._unproven(4, openai_calls, _sdks.ANTHROPIC) or ""
    )


def _sdist_archive(cache: Path, package: str, version: str) -> None:
    cache.mkdir(parents=True)
    with tarfile.open(cache / f"{package}-{version}.tar.gz", "w:gz") as tar:
        for relative, text in [
            (f"src/{package}/__init__.py", "raise ImportError('the copy in the sdist')"),
            ("tests/conftest.py", ""),
            ("tests/test_client.py", "def test_client(): pass"),
            ("pyproject.toml", "[tool.pytest.ini_options]\n"),
        ]:
            data = text.encode()
            member = tarfile.TarInfo(f"{package}-{version}/{relative}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def test_the_sdist_of_the_named_sdk_is_unpacked_without_its_package(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _sdist_archive(cache, "anthropic", "9.9.9")  # already downloaded: pip is not asked

    root = _sdist.prepare("anthropic", "9.9.9", cache)

    assert root == cache / "anthropic-9.9.9"
    assert (root / "tests" / "test_client.py").read_text() == "def test_client(): pass"
    assert (root / "pyproject.toml").exists()
    assert not (root / "src").exists()


def test_the_openai_version_option_still_names_the_version_and_openai_stays_the_default() -> None:
    args, extra = run._parse(["--openai-version", "3.60.0", "tests/test_client.py", "--", "-k", "stream"])
    assert (args.sdk, args.sdk_version, args.paths, extra) == (
        "openai",
        "3.60.0",
        ["tests/test_client.py"],
        ["-k", "stream"],
    )

    args, _ = run._parse(["--sdk", "anthropic", "--sdk-version", "2.16.0"])
    assert (args.sdk, args.sdk_version) == ("anthropic", "2.16.0")
