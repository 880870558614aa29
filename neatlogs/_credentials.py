"""The one rule for credentials in a call's request, the same for every provider.

Every reader builds `request` with `without_credentials` (see `_patch/openai_fields.request_fields`,
which LiteLLM's reader goes through too), off the caller's thread:

- a value whose name looks like a credential is left out, at any depth (`extra_query` and
  `extra_body` included). Names are compared by whole parts, case-insensitive, with `-`, `_`, `.`,
  spaces and camelCase splitting them: `api_key`, `X-Api-Key`, `subscription-key`, `access_token`,
  `client_secret`, `password`, `Authorization` are credentials; `max_tokens`, `tokenizer`,
  `keywords`, `monkey` are not. In a query string (`extra_query`), `code`, `sig` and `signature`
  are credentials too. A dict under such a name is kept and its own names are checked.
- a dict key that is itself a secret (`sk-proj-...`, or anything `mask_secrets` masks) is masked.
- headers (`extra_headers`, `headers`) never enter a record.
"""

from __future__ import annotations

import re
from typing import Any

from ._redact import mask_secrets
from ._sanitize import free_key

# Name parts that say a value is a credential.
_CREDENTIAL_PARTS = frozenset(
    {
        "key", "keys", "apikey", "apikeys", "token", "secret", "secrets", "password", "passwords", "passwd",
        "passphrase", "credential", "credentials", "authorization", "auth", "bearer", "jwt", "cookie",
    }
)  # fmt: skip
# More name parts that are credentials in a URL's query string (OAuth codes, SAS signatures).
_QUERY_PARTS = frozenset({"code", "sig", "signature"})
# Names whose parts say credential but whose value is not one.
_NOT_CREDENTIALS = frozenset({"prompt_cache_key"})
# Arguments that hold a query string's parameters.
_QUERY_ARGUMENTS = frozenset({"extra_query"})
# Top-level arguments that never enter a record: headers may carry credentials.
_HEADER_ARGUMENTS = frozenset({"extra_headers", "headers"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_MAX_DEPTH = 64
# name -> whether it is a credential (in a query, not in a query): request names repeat call after call.
_seen: dict[tuple[str, bool], bool] = {}
# Dict keys known to hold no secret (those that do are not kept here).
_plain_names: set[str] = set()


def is_credential_name(name: str, in_query: bool = False) -> bool:
    """Whether a value under `name` is a credential (see the module's docstring)."""
    known = _seen.get((name, in_query))
    if known is not None:
        return known
    lowered = name.lower()
    if lowered in _NOT_CREDENTIALS:
        found = False
    else:
        parts = set(_NOT_ALNUM.split(_CAMEL.sub("_", name).lower()))
        found = not parts.isdisjoint(_CREDENTIAL_PARTS) or (in_query and not parts.isdisjoint(_QUERY_PARTS))
    if len(_seen) < 4096:
        _seen[(name, in_query)] = found
    return found


def without_credentials(request: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe request (from `to_jsonable`) without credentials: the rule of the module's docstring."""
    kept = {name: value for name, value in request.items() if name not in _HEADER_ARGUMENTS}
    return _clean_dict(kept, False, 0, top=True)


def _clean_dict(mapping: dict[str, Any], in_query: bool, depth: int, top: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in mapping.items():
        name = str(name)
        masked = _masked_name(name, result)
        # A name that is a secret itself is masked, its value kept; any other name is checked.
        if masked is name and is_credential_name(name, in_query) and type(value) is not dict:
            continue
        result[masked] = _clean(value, in_query or (top and name in _QUERY_ARGUMENTS), depth + 1)
    return result


def _clean(value: Any, in_query: bool, depth: int) -> Any:
    if depth > _MAX_DEPTH:  # to_jsonable stops well before this; a guard for any other caller
        return "<too deep>"
    kind = type(value)
    if kind is dict:
        return _clean_dict(value, in_query, depth)
    if kind is list:
        return [_clean(item, in_query, depth + 1) for item in value]
    return value


def _masked_name(name: str, taken: dict[str, Any]) -> str:
    """`name`, or the name masked when it holds a secret (numbered if that is taken already)."""
    if name in _plain_names:
        return name
    masked = mask_secrets(name)
    if masked is name or masked == name:
        if len(_plain_names) < 4096:
            _plain_names.add(name)
        return name
    return free_key(masked, taken)
