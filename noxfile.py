"""The whole test suite: lint, then the tests against every openai major version users have."""

from __future__ import annotations

import os

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


@nox.session(python=None)
def lint(session: nox.Session) -> None:
    """ruff (lint + format) and mypy --strict."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=None)
@nox.parametrize("openai", list(OPENAI_VERSIONS))
def tests(session: nox.Session, openai: str) -> None:
    """The test suite against the newest openai of one major version."""
    session.install("-e", ".[dev]", OPENAI_VERSIONS[openai])
    session.run("python", "-c", "import openai; print('openai', openai.__version__)")
    session.run("pytest", *session.posargs)


@nox.session(python=None)
def tests_openai0(session: nox.Session) -> None:
    """openai 0.28's module-level API (tests/v0). Not `.[dev]`: its tools need openai >= 1."""
    session.install("-e", ".", "openai==0.28.1", "pytest>=8", "pytest-asyncio>=0.23", "pytest-timeout>=2.3")
    session.run("python", "-c", "import openai; print('openai', openai.__version__)")
    session.run("pytest", "tests/v0", "--confcutdir=tests/v0", *session.posargs)


@nox.session(python=None)
@nox.parametrize("openai", list(OPENAI_VERSIONS))
def sdk(session: nox.Session, openai: str) -> None:
    """The openai SDK's own offline test-suite without and with neatlogs: no test may end differently."""
    session.install("-e", ".", OPENAI_VERSIONS[openai], "-r", f"sdk_tests/requirements-openai{openai}.txt")
    session.run("pytest", "sdk_tests/test_harness.py", "-p", "no:cacheprovider")
    version = session.run("python", "-c", "import openai; print(openai.__version__)", silent=True)
    session.run("python", "sdk_tests/run.py", "--openai-version", str(version).strip(), *session.posargs)


@nox.session(python=None)
def browser(session: nox.Session) -> None:
    """The viewer in headless Chromium (tests/browser): Debian's chromium, driven by Playwright."""
    import shutil

    if not shutil.which("chromium"):
        # Playwright's own browser download cannot work here; Debian's package can. CI runs as root.
        session.run("apt-get", "update", external=True)
        session.run("apt-get", "install", "-y", "--no-install-recommends", "chromium", external=True)
    session.install("-e", ".[dev]", "playwright==1.65.2")
    session.run("pytest", "tests/browser", *session.posargs, env={"NEATLOGS_BROWSER_TESTS": "1"})
