"""Run an installed SDK's own test-suite without and with neatlogs, and report every difference.

    python sdk_tests/run.py [--sdk openai|anthropic] [--sdk-version X.Y.Z] [-n 2] [test paths...]
        [-- extra pytest arguments]

Downloads the sdist of the installed SDK release (openai unless `--sdk` says otherwise) into
`.sdk-cache/` (pip, once), unpacks its tests,
runs the selected test files twice with the SDK's own pytest settings (once plain, once with
`-p neatlogs_sdk_plugin`), and compares the per-test outcomes. Exits 1 when any test ends differently,
when neatlogs logged an internal error, or when the traced run recorded no call of that SDK.
What differs between SDKs is in `_sdks.py`.
See docs/sdk-tests.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _compare
import _sdist
import _sdks
import _selection

_HERE = Path(__file__).resolve().parent
_DEFAULT_CACHE = _HERE.parent / ".sdk-cache"
# pytest's exit codes that mean the run itself broke (interrupted, internal error, usage error, nothing ran)
_BROKEN_RUN = {2, 3, 4, 5}
_PER_TEST_TIMEOUT = 300
_NEATLOGS_PLUGIN = "neatlogs_sdk_plugin"
_COMPARABLE = {"passed", "skipped", "xfailed"}


@dataclass
class Run:
    """One pytest session over the selected files."""

    name: str
    outcomes: dict[str, _compare.Outcome]
    seconds: float
    neatlogs_reports: list[dict[str, Any]] = field(default_factory=list)


def _installed(package: str) -> str:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception as exc:
        raise SystemExit(f"{package} is not installed in {sys.executable}: {exc}") from exc


def _environment(outcomes: Path, report_dir: Path | None, sdk: _sdks.Sdk) -> dict[str, str]:
    # Any SDK's settings would point tests at a real API (every installed SDK is traced in both runs),
    # neatlogs' and OTel's send records away; only the tested SDK's own test switches pass.
    stripped = tuple(prefix for other in _sdks.SDKS.values() for prefix in other.stripped_env)
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "PYTHONPATH" and (name.startswith(sdk.kept_env) or not name.startswith(stripped))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_HERE), os.environ.get("PYTHONPATH")]))
    env["NEATLOGS_SDK_OUTCOMES"] = str(outcomes)
    if report_dir is not None:
        env["NEATLOGS_SDK_REPORT_DIR"] = str(report_dir)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _pytest_command(
    plugin: str | None, workers: int, paths: list[str], extra: list[str], sdk: _sdks.Sdk
) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", "-rN"]
    command += [*sdk.pytest_args, "-p", "sdk_outcomes_plugin"]
    if plugin:
        command += ["-p", plugin]
    if workers > 0:
        # loadfile keeps each file in one process, as the SDK's session-scoped fixtures expect.
        command += ["-n", str(workers), "--dist", "loadfile"]
    if importlib.util.find_spec("pytest_timeout") is not None:
        command.append(f"--timeout={_PER_TEST_TIMEOUT}")  # the plugin loads itself once installed
    return command + paths + extra


def _run(
    name: str,
    root: Path,
    results: Path,
    plugin: str | None,
    workers: int,
    paths: list[str],
    extra: list[str],
    sdk: _sdks.Sdk = _sdks.OPENAI,
) -> Run:
    directory = results / name
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.iterdir():
        stale.unlink()
    outcomes = directory / "outcomes.jsonl"
    log = directory / "pytest.log"
    command = _pytest_command(plugin, workers, paths, extra, sdk)
    print(f"[{name}] pytest on {len(paths)} paths, output in {log}", flush=True)
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        env = _environment(outcomes, directory if plugin else None, sdk)
        code = subprocess.run(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - started
    if code in _BROKEN_RUN:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
        raise SystemExit(f"[{name}] pytest exited with {code}:\n{tail}")
    reports = [json.loads(p.read_text()) for p in sorted(directory.glob("neatlogs-*.json"))]
    return Run(name, _compare.load(outcomes), seconds, reports)


def _confirmed(
    found: list[_compare.Difference],
    root: Path,
    results: Path,
    plugin: str,
    extra: list[str],
    sdk: _sdks.Sdk = _sdks.OPENAI,
) -> list[_compare.Difference]:
    """The differences that reproduce when just those tests run again, one process, both ways.

    A few SDK tests depend on timing (sleeps against timeouts) and can flip under the load of a
    full parallel run; a difference that does not come back is reported, not counted.
    """
    tests = [difference.test for difference in found]
    print(f"\n{len(tests)} test(s) ended differently; running them again alone to confirm", flush=True)
    plain = _run("plain-again", root, results, None, 0, tests, extra, sdk)
    traced = _run("traced-again", root, results, plugin, 0, tests, extra, sdk)
    again = {difference.test for difference in _compare.differences(plain.outcomes, traced.outcomes)}
    for difference in found:
        if difference.test not in again:
            print(f"- {difference.test}: did not reproduce (timing under load), not counted")
    return [difference for difference in found if difference.test in again]


def _summary(run: Run) -> str:
    counts = ", ".join(f"{n} {outcome}" for outcome, n in _compare.tally(run.outcomes).items())
    return f"{len(run.outcomes)} tests ({counts}) in {run.seconds:.0f} s"


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0][:200] if message.strip() else ""


def _print_differences(found: list[_compare.Difference], plugin: str) -> None:
    print(f"\n{len(found)} test(s) end differently with {plugin}:")
    for difference in found:
        print(f"- {difference.test}")
        print(f"    without: {difference.plain.outcome}  {_first_line(difference.plain.message)}")
        print(f"    with:    {difference.traced.outcome}  {_first_line(difference.traced.message)}")


def _print_not_comparable(plain: Run) -> None:
    # A test that fails without the plugin cannot show a difference; say where they are.
    files = Counter(test.split("::")[0] for test, o in plain.outcomes.items() if o.outcome not in _COMPARABLE)
    if files:
        where = ", ".join(f"{path} ({n})" for path, n in files.most_common())
        print(f"tests that do not pass or skip without the plugin (so cannot show a difference): {where}")


def _neatlogs_activity(traced: Run) -> tuple[int, Counter[str], list[dict[str, str]]]:
    calls, operations, errors = 0, Counter[str](), []
    for report in traced.neatlogs_reports:
        calls += int(report.get("calls", 0))
        operations.update(report.get("recent_operations", {}))
        errors += report.get("errors", [])
    return calls, operations, errors


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths", nargs="*", help="test files or ids (relative to the sdist) instead of the rule"
    )
    parser.add_argument("--sdk", choices=sorted(_sdks.SDKS), default="openai", help="default: openai")
    parser.add_argument(
        "--sdk-version",
        "--openai-version",  # the older spelling, from when openai was the only SDK
        dest="sdk_version",
        help="must be the installed version of the SDK (the default)",
    )
    parser.add_argument("--cache-dir", type=Path, default=_DEFAULT_CACHE, help="default: <repo>/.sdk-cache")
    has_xdist = importlib.util.find_spec("xdist") is not None
    parser.add_argument(
        "-n", "--workers", type=int, default=2 if has_xdist else 0, help="pytest-xdist workers (0: none)"
    )
    parser.add_argument("--list", action="store_true", help="print the selected and left-out files and exit")
    parser.add_argument(
        "--plugin",
        default=_NEATLOGS_PLUGIN,
        help="the module the traced run loads with -p (another instrumentation's, to compare; importable "
        "from PYTHONPATH)",
    )
    return parser.parse_args(argv), extra


def _unproven(calls: int, operations: Counter[str], sdk: _sdks.Sdk) -> str | None:
    """Why a traced run proves nothing about `sdk`, if it does not: neatlogs traced none of its calls."""
    if calls == 0:
        return "the traced run recorded no call: neatlogs was not active, so the comparison proves nothing"
    if not any(operation.split(" ")[0] == sdk.name for operation in operations):
        return (
            f"the traced run recorded {calls} calls, but none of the most recent ones is {sdk.name}'s: "
            f"neatlogs does not trace {sdk.name} here, so the comparison proves nothing"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    """Both runs and the comparison; the process exit status."""
    args, extra = _parse(sys.argv[1:] if argv is None else argv)
    sdk = _sdks.SDKS[args.sdk]
    installed = _installed(sdk.name)
    if args.sdk_version and args.sdk_version != installed:
        raise SystemExit(f"asked for {sdk.name} {args.sdk_version}, but {installed} is installed")
    root = _sdist.prepare(sdk.name, installed, args.cache_dir)
    chosen, left_out = _selection.select(root, sdk)
    if args.list:
        print("\n".join(chosen))
        print("\nleft out:\n" + "\n".join(f"{path}: {why}" for path, why in left_out.items()))
        return 0
    paths = args.paths or chosen
    print(f"{sdk.name} {installed}: {len(chosen)} test files selected, {len(left_out)} left out (see --list)")

    results = args.cache_dir / "results" / f"{sdk.name}-{installed}"
    plain = _run("plain", root, results, None, args.workers, paths, extra, sdk)
    print(f"[plain]  {_summary(plain)}", flush=True)
    traced = _run("traced", root, results, args.plugin, args.workers, paths, extra, sdk)
    print(f"[traced] {_summary(traced)}", flush=True)
    _print_not_comparable(plain)

    failed = False
    if args.plugin == _NEATLOGS_PLUGIN:
        calls, operations, errors = _neatlogs_activity(traced)
        recent = ", ".join(f"{name}: {n}" for name, n in operations.most_common())
        print(f"neatlogs recorded {calls} calls (the most recent ones by operation: {recent or 'none'})")
        unproven = _unproven(calls, operations, sdk)
        if unproven:
            print(f"\n{unproven}")
            failed = True
        if errors:
            print(f"\nneatlogs logged {len(errors)} internal error(s) (swallowed, so no test saw them):")
            for error in errors:
                print(f"- during {error['test']}: {error['message']}\n{error['traceback']}")
            failed = True
    found = _compare.differences(plain.outcomes, traced.outcomes)
    if found:
        found = _confirmed(found, root, results, args.plugin, extra, sdk)
    if found:
        _print_differences(found, args.plugin)
        failed = True
    elif not failed:
        print(f"\nno differences: every test ends the same with {args.plugin} as without it")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
