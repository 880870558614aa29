"""Masks for credentials that can show up in free text (error messages, prompts)."""

from __future__ import annotations

import re

_SECRET = re.compile(
    r"(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-*]{8,})"  # OpenAI / Anthropic keys
    r"|(?:(?<=Bearer )[A-Za-z0-9._\-~+/=]{8,})"  # bearer tokens
    r"|(?:AKIA[0-9A-Z]{16})"  # AWS access key ids
    r"|(?:eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"  # JWTs
)


def mask_secrets(text: str) -> str:
    """Replace anything that looks like a credential with `[REDACTED]`."""
    return _SECRET.sub("[REDACTED]", text) if text else text
