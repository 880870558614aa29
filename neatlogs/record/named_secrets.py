"""Secrets without a known prefix, found by the name written before them: `api-key: <32 hex>`,
`token=<base64>`, `"password": "..."`.

A value is masked only when it is 32 or more key-like characters (letters, digits, `+/_-.~=`, at
least one digit) and follows one of the names below, alone or after a separator (`:`, `=`, quotes,
spaces): a plain sentence with "key" in it, or a commit hash after "commit", is left alone.
"""

from __future__ import annotations

import re

_VALUE_CHARS = r"A-Za-z0-9+/_\-.~="
# The names, as whole words ("apiKey", "api_key", "x-api-key", "Token"); not "monkey", "tokens", "keyboard".
_NAME = (
    r"(?:(?<![A-Za-z0-9])(?i:apikey|key|token|secret|password|passwd)"
    r"|(?<=[a-z])(?:Key|Token|Secret|Password))(?![A-Za-z0-9])"
)
# Separators JSON writes as they are, or escapes with a backslash only (so that `may_hold_named_secret`
# sees them in a record's JSON text): no other whitespace.
_SEPARATOR = r"[ \t\r\n\"':=]{0,8}"
# A sentence's full stop after the value is not part of it.
_VALUE = rf"(?=[{_VALUE_CHARS}]*[0-9])[{_VALUE_CHARS}]{{31,}}[{_VALUE_CHARS.replace('.', '')}]"
_NAMED_SECRET = re.compile(rf"({_NAME}{_SEPARATOR}){_VALUE}", re.ASCII)
# The same, looser, for lowered text (a record's JSON text included): no look-behind (an escape such
# as `\n` puts a letter before the name), no digit required, every separator as JSON escapes it. One
# search per name: a pattern that starts with a literal is searched for faster than alternatives.
_TAIL = rf"(?![a-z0-9])[ \t\r\n\"':=\\nrt]{{0,16}}[{_VALUE_CHARS}]{{32}}"
_IN_LOWERED = tuple(re.compile(name + _TAIL) for name in ("key", "token", "secret", "passw(?:or)?d"))
# The shortest text with such a secret: a name, then the value.
SHORTEST_NAMED_SECRET = 3 + 32


def mask_named_secrets(text: str, mask: str) -> str:
    """`text` with every value that follows a credential's name replaced by `mask`."""
    if not may_hold_named_secret(text):
        return text
    return _NAMED_SECRET.sub(lambda match: match.group(1) + mask, text)


def may_hold_named_secret(text: str) -> bool:
    """False when `mask_named_secrets` leaves `text`, and every string whose JSON is part of it, as it is."""
    if len(text) < SHORTEST_NAMED_SECRET:
        return False
    lowered = text.lower()
    return any(pattern.search(lowered) is not None for pattern in _IN_LOWERED)
