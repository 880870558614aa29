"""The whole test suite: lint, then the tests against every openai major version users have."""

from __future__ import annotations

import nox

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
