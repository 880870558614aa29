"""Built-in masks for credentials and personal data that can show up in free text (prompts, errors),
and the repair of a record a user's redact function broke.

Each mask first looks for a cheap marker (`"sk-"`, `"@"`, a digit, ...) so text without one costs a
few substring searches; only text that has one is scanned with the regular expression.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from neatlogs._log import logger
from neatlogs.record.named_secrets import mask_named_secrets, may_hold_named_secret

SECRET_MASK = "[REDACTED]"
EMAIL_MASK = "[EMAIL]"
PHONE_MASK = "[PHONE]"

_SECRET = re.compile(
    r"(?:(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-*]{8,})"  # OpenAI / Anthropic keys (sk-proj-, sk-ant-, ...)
    r"|(?:(?<=[Bb]earer )[A-Za-z0-9._\-~+/=]{8,})"  # bearer tokens
    r"|(?:\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"  # AWS access key ids
    r"|(?:eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"  # JWTs
    r"|(?:\bgh[pousr]_[A-Za-z0-9]{30,})"  # GitHub tokens
    r"|(?:\bxox[abposr]-[A-Za-z0-9-]{10,})"  # Slack tokens
    r"|(?:\bAIza[0-9A-Za-z_\-]{35})"  # Google API keys
)
# What every secret above starts with (or sits next to); one C-level search decides whether to mask.
# `may_hold_secret` looks for the same markers another way: tests check both against this list.
SECRET_MARKERS = (
    "sk-", "earer ", "AKIA", "ASIA", "eyJ", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "AIza",
    "aws_secret", "AWS_SECRET",
)  # fmt: skip
_SECRET_MARKER = re.compile("|".join(re.escape(marker) for marker in SECRET_MARKERS))
_SHORTEST_SECRET = 11  # "sk-" and 8 characters
# AWS secret access keys are 40 base64 characters: masked only next to the name that says what they are.
_AWS_SECRET_NAME = re.compile(r"(aws_secret_access_key\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{40}", re.IGNORECASE)

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# A phone number: an optional +country code, an optional (area code), then two to six groups of digits
# separated by one space, dot or dash. Candidates are checked by `_is_phone` (digit count, not a date).
_PHONE = re.compile(
    r"(?<![\w+\-./])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]\d{2,5}){1,5}(?![\w\-/]|\.\d)"
)
_DIGIT = re.compile(r"\d")
_DATE_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}")


def mask_secrets(text: str) -> str:
    """Replace anything that looks like a credential (API keys, bearer tokens, AWS keys, JWTs, a long
    value after `api-key:`, `token=`, ...) with a mask."""
    if len(text) < _SHORTEST_SECRET:
        return text
    if _SECRET_MARKER.search(text) is not None:
        text = _AWS_SECRET_NAME.sub(lambda m: m.group(1) + SECRET_MASK, text)
        text = _SECRET.sub(SECRET_MASK, text)
    return mask_named_secrets(text, SECRET_MASK)


# The markers above, found with literal searches: over a long text, a few of those are several times
# faster than one search with alternatives. Same answer as `_SECRET_MARKER.search(text) is not None`.
_MARKER_A = re.compile("A(?:KIA|SIA|Iza|WS_SECRET)")
_MARKER_GH = re.compile("gh[pousr]_")


def may_hold_secret(text: str) -> bool:
    """False when `mask_secrets` leaves `text`, and every part of it, unchanged: no secret's marker in it,
    and no long value after a credential's name (see `_named_secrets`).

    One call over a whole record's JSON text stands for one per string: the markers are made of ASCII
    letters, `-`, `_` and space, which JSON never escapes."""
    # A one-character search (memchr) first where a marker has a rare character: a text without it
    # skips the longer search.
    return (
        "sk-" in text
        or "earer " in text
        or ("J" in text and "eyJ" in text)
        or "xox" in text
        or "aws_secret" in text
        or ("A" in text and _MARKER_A.search(text) is not None)
        or _MARKER_GH.search(text) is not None
        or may_hold_named_secret(text)
    )


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if candidate.startswith("+"):
        return 8 <= digits <= 15
    # Without a country code, only number-shaped text with 10+ digits: not dates, versions or IPs.
    if digits < 10 or digits > 15 or _DATE_LIKE.search(candidate):
        return False
    groups = re.split(r"[ .\-()]+", candidate.strip("()"))
    return not (candidate.count(".") >= 3 and all(len(g) <= 3 for g in groups if g))


def mask_pii(text: str) -> str:
    """Replace e-mail addresses and phone numbers with masks (best effort: common formats)."""
    if len(text) < 6:  # "a@b.io"
        return text
    if "@" in text:
        text = _EMAIL.sub(EMAIL_MASK, text)
    if _DIGIT.search(text) is not None:
        text = _PHONE.sub(lambda m: PHONE_MASK if _is_phone(m.group(0)) else m.group(0), text)
    return text


def text_masker(secrets: bool, pii: bool) -> Callable[[str], str] | None:
    """The mask function for a combination of switches, or None when nothing is masked."""
    if secrets and pii:
        return lambda text: mask_pii(mask_secrets(text))
    if secrets:
        return mask_secrets
    if pii:
        return mask_pii
    return None


# ---- what a user's redact function may not break ----

_NUMBER = (int, float)
# Required keys (contract, section 2) put back as they were when the redact function removes or
# retypes them: they identify the record and reveal nothing of its content.
_RESTORED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "trace_id": str,
    "provider": str,
    "operation": str,
    "started_at": str,
    "ended_at": str,
    "status": str,
    "stream": bool,
    "tags": list,
    "capture": str,
    "duration_ms": _NUMBER,
}
# Required keys that may hold what the function meant to remove: when it removes or retypes one it
# gets an empty value of its type, never the value it had.
_EMPTIED: dict[str, tuple[tuple[type, ...], Any]] = {
    "model": ((str, type(None)), None),
    "response_model": ((str, type(None)), None),
    "request": ((dict,), {}),
    "prompt": ((list, str, type(None)), None),
    "completion": ((dict, str, type(None)), None),
    "choices": ((list,), []),
    "finish_reason": ((str, type(None)), None),
    "usage": ((dict, type(None)), None),
    "cost_usd": ((int, float, type(None)), None),
    "ttft_ms": ((int, float, type(None)), None),
    "error": ((dict, type(None)), None),
}
# Redact functions whose broken records were logged at WARNING (later ones go to DEBUG).
_warned_redactors: weakref.WeakSet[Any] = weakref.WeakSet()
_warned_redactor_ids: set[int] = set()  # for callables that take no weak reference


def required_before_redact(record: Mapping[str, Any]) -> dict[str, Any]:
    """What `repair_redacted` puts back: taken before the redact function sees (and may change) it."""
    return {key: record.get(key) for key in _RESTORED}


def _fits(value: Any, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and not (isinstance(value, bool) and kind is _NUMBER)


def repair_redacted(record: dict[str, Any], before: Mapping[str, Any], redact: object) -> int:
    """Make a redacted (and JSON-safe) record valid again, in place, keeping what can be kept:
    identifying keys the function removed or retyped are put back, content keys get an empty value.
    Returns about how many characters it added (for the record's size estimate)."""
    broken: list[str] = []
    added = 0
    for key, kind in _RESTORED.items():
        value = record.get(key)
        if not _fits(value, kind) or (key == "id" and not value):
            record[key] = before[key]
            broken.append(key)
            added += len(key) + len(str(before[key])) + 6
    for key, (kinds, empty) in _EMPTIED.items():
        value = record.get(key, ...)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            record[key] = type(empty)() if isinstance(empty, dict | list) else empty
            broken.append(key)
            added += len(key) + 8
    if broken:
        _log_repair(redact, broken)
    return added


def _log_repair(redact: object, keys: list[str]) -> None:
    message = (
        "neatlogs: the redact function removed or retyped required record keys (%s); identifying keys "
        "were put back, content keys emptied, and the record kept"
    )
    try:
        first = redact not in _warned_redactors
        _warned_redactors.add(redact)
    except TypeError:
        first = id(redact) not in _warned_redactor_ids
        _warned_redactor_ids.add(id(redact))
    if not first:
        logger.debug(message, ", ".join(keys))
        return
    logger.warning(message + ". Later records are logged at DEBUG level.", ", ".join(keys))
