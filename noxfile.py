"""The whole test suite: lint, then the tests against every openai major version users have, and
the Anthropic tests against the newest and the oldest supported anthropic release.

What is not under test (pytest, ruff, mypy, LiteLLM, Starlette, the OpenTelemetry SDK, ...) is pinned
in constraints/openai{1,2,3}.txt, one file per openai major version (LiteLLM releases after 1.80.0 need
openai 2 or later). What is under test floats: each session takes the newest openai of its major
version, and `tests_litellm_newest` the newest LiteLLM. `python -m nox -s pins` refreshes the pins.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import nox

# uv verifies TLS with its own bundled roots unless told otherwise; use the machine's certificate store
# (where a proxy's or company's CA lives), as pip does.
os.environ.setdefault("UV_SYSTEM_CERTS", "1")
os.environ.setdefault("UV_NATIVE_TLS", "1")

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

# The newest release of each major version; 3.x moved from httpx to httpx2.
OPENAI_VERSIONS = {"1": "openai>=1,<2", "2": "openai>=2,<3", "3": "openai>=3,<4"}
PINS = Path("constraints")
PINS_COMMAND = "python -m nox -s pins"
# The other SDKs whose own test-suites run with neatlogs (`sdk_tests/run.py --sdk NAME`, session
# `sdk_NAME`) -> their test requirements; pinned in the newest openai's constraints, where they run.
OTHER_SDKS = {"anthropic": "sdk_tests/requirements-anthropic.txt"}
NEWEST_OPENAI = "3"
# The oldest anthropic release with the resource and stream classes neatlogs patches (1.0 added
# messages.parse; 0.x releases lack it and run on httpx rather than httpx2).
ANTHROPIC_OLDEST = "anthropic==1.0.0"
# The oldest Python neatlogs supports: the pins hold for it and every newer one (`--universal`).
OLDEST_PYTHON = "3.10"


def _pinned(openai: str) -> list[str]:
    """What the pins of one openai major version cover (uv pip compile's inputs): a new session's tools
    go in the dev extras or a requirements file named here, then `nox -s pins -- --upgrade-package X`."""
    other_sdks = list(OTHER_SDKS.values()) if openai == NEWEST_OPENAI else []
    return [
        "pyproject.toml", "--extra", "dev", f"sdk_tests/requirements-openai{openai}.txt",
        "tests/browser/requirements.txt", *other_sdks,
    ]  # fmt: skip


def _compile(session: nox.Session, openai: str, output: Path, options: Sequence[str]) -> None:
    """Resolve `_pinned(openai)` with openai of that major version into `output`.

    uv keeps every version already in `output` unless told to upgrade it (`options`) or a package it
    upgrades needs a newer one.
    """
    wanted = output.with_name(f"openai{openai}-range.in")  # uv compiles files, not requirement strings
    wanted.write_text(OPENAI_VERSIONS[openai] + "\n")
    session.run(
        "uv", "pip", "compile", "--quiet", *_pinned(openai), "-c", str(wanted), "-o", str(output), *options
    )
    wanted.unlink()


def install(session: nox.Session, *requirements: str, openai: str, floating: Sequence[str] = ()) -> None:
    """Install `requirements` at the versions pinned for openai `openai` (1, 2 or 3).

    Packages named in `floating` go to their newest release instead, moving a pinned dependency only
    where that release needs a newer one. A package the pins leave out (openai itself) is free, within
    the range `requirements` give.
    """
    pins = PINS / f"openai{openai}.txt"
    if floating:
        lock = Path(session.virtualenv.location) / "pins.txt"
        shutil.copyfile(pins, lock)
        python = Path(session.bin) / "python"
        upgrade = [f"--upgrade-package={name}" for name in floating]
        _compile(session, openai, lock, ["--python", str(python), *upgrade])
        pins = lock
    session.install("-c", str(pins), *requirements)


def _print_versions(session: nox.Session, *packages: str) -> None:
    # From the installed metadata: importing LiteLLM would fetch its model cost map.
    code = f"from importlib.metadata import version; print(*(p + ' ' + version(p) for p in {packages!r}))"
    session.run("python", "-c", code)


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    """ruff (lint + format) and mypy --strict."""
    install(session, "-e", ".[dev]", OPENAI_VERSIONS["3"], openai="3")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=None)
@nox.parametrize("openai", list(OPENAI_VERSIONS))
def tests(session: nox.Session, openai: str) -> None:
    """The test suite against the newest openai of one major version; everything else pinned."""
    install(session, "-e", ".[dev]", OPENAI_VERSIONS[openai], openai=openai, floating=["openai"])
    _print_versions(session, "openai", "litellm")
    # tests/anthropic runs once, in tests_anthropic: it does not depend on the openai version
    # One worker: with two, the CLI tests' `neatlogs serve` subprocesses start slowly enough under load
    # to meet a SIGTERM race in uvicorn's startup; `-n 2` halves the time locally.
    session.run("pytest", "--ignore=tests/anthropic", *session.posargs)


@nox.session(python=None)
def tests_openai0(session: nox.Session) -> None:
    """openai 0.28's module-level API (tests/v0). Not `.[dev]`: its tools need openai >= 1."""
    install(session, "-e", ".", "openai==0.28.1", "pytest", "pytest-asyncio", "pytest-timeout", openai="1")
    _print_versions(session, "openai")
    session.run("pytest", "tests/v0", "--confcutdir=tests/v0", *session.posargs)


@nox.session(python=None)
def tests_litellm_newest(session: nox.Session) -> None:
    """The LiteLLM tests against the newest LiteLLM release (the other sessions pin it), newest openai 3.x.

    A failure here alone means an upstream LiteLLM release changed something neatlogs relies on.
    """
    install(session, "-e", ".[dev]", OPENAI_VERSIONS["3"], openai="3", floating=["openai", "litellm"])
    _print_versions(session, "openai", "litellm")
    session.run("pytest", "tests/test_litellm.py", *session.posargs)


@nox.session(python=None)
def tests_anthropic(session: nox.Session) -> None:
    """The Anthropic tests against the newest anthropic release; the rest pinned (newest openai 3.x)."""
    install(session, "-e", ".[dev]", OPENAI_VERSIONS["3"], openai="3", floating=["anthropic"])
    _print_versions(session, "anthropic", "openai")
    session.run("pytest", "tests/anthropic", *session.posargs)


@nox.session(python=None)
def tests_anthropic_oldest(session: nox.Session) -> None:
    """The Anthropic tests against the oldest anthropic release neatlogs supports (see docs/providers.md)."""
    install(session, "-e", ".[dev]", OPENAI_VERSIONS["3"], openai="3")
    session.install(ANTHROPIC_OLDEST)  # over the pinned release: only anthropic moves
    _print_versions(session, "anthropic", "openai")
    session.run("pytest", "tests/anthropic", *session.posargs)


@nox.session(python=None)
@nox.parametrize("openai", list(OPENAI_VERSIONS))
def sdk(session: nox.Session, openai: str) -> None:
    """The openai SDK's own offline test-suite without and with neatlogs: no test may end differently."""
    requirements = f"sdk_tests/requirements-openai{openai}.txt"
    install(
        session, "-e", ".", OPENAI_VERSIONS[openai], "-r", requirements, openai=openai, floating=["openai"]
    )
    if openai == NEWEST_OPENAI:  # the harness is the same for every SDK version: its tests run once
        session.run("pytest", "sdk_tests/test_harness.py", "-p", "no:cacheprovider")
    version = session.run("python", "-c", "import openai; print(openai.__version__)", silent=True)
    session.run("python", "sdk_tests/run.py", "--openai-version", str(version).strip(), *session.posargs)


@nox.session(python=None)
def sdk_anthropic(session: nox.Session) -> None:
    """The anthropic SDK's own offline test-suite without and with neatlogs, newest anthropic."""
    install(session, "-e", ".", "-r", OTHER_SDKS["anthropic"], openai=NEWEST_OPENAI, floating=["anthropic"])
    version = session.run("python", "-c", "import anthropic; print(anthropic.__version__)", silent=True)
    session.run(
        "python",
        "sdk_tests/run.py",
        "--sdk",
        "anthropic",
        "--sdk-version",
        str(version).strip(),
        *session.posargs,
    )


@nox.session(python=None, default=False)
def pins(session: nox.Session) -> None:
    """Refresh constraints/openai{1,2,3}.txt to the newest releases (not part of the default run).

    Arguments after `--` replace `--upgrade`: `-- --upgrade-package litellm` moves LiteLLM (and what
    it needs) only.
    """
    options = session.posargs or ["--upgrade"]
    for openai in OPENAI_VERSIONS:
        _compile(
            session,
            openai,
            PINS / f"openai{openai}.txt",
            [
                "--universal", f"--python-version={OLDEST_PYTHON}", "--no-emit-package=openai",
                f"--custom-compile-command={PINS_COMMAND}", *options,
            ],
        )  # fmt: skip


@nox.session(python=None)
def browser(session: nox.Session) -> None:
    """The viewer in headless Chromium (tests/browser): Debian's chromium, driven by Playwright."""
    if not shutil.which("chromium"):
        # Playwright's own browser download cannot work here; Debian's package can. CI runs as root.
        session.run("apt-get", "update", external=True)
        session.run("apt-get", "install", "-y", "--no-install-recommends", "chromium", external=True)
    install(session, "-e", ".[dev]", OPENAI_VERSIONS["3"], "-r", "tests/browser/requirements.txt", openai="3")
    session.run("pytest", "tests/browser", *session.posargs, env={"NEATLOGS_BROWSER_TESTS": "1"})
