"""The one rule for credentials in a call's request, the same for every provider.

Every reader builds `request` with `without_credentials` (see `_patch/openai_fields.request_fields`,
which LiteLLM's reader goes through too), off the caller's thread:

- a value whose name looks like a credential is left out, at any depth (`extra_query` and
  `extra_body` included), whatever it is (a dict too). Names are compared by whole parts,
  case-insensitive, split at every character that is not a letter or digit and at camelCase:
  `api_key`, `X-Api-Key`, `subscription-key`, `access_token`, `client_secret`, `password`,
  `Authorization` are credentials; `max_tokens`, `tokenizer`, `keywords`, `monkey` are not. In a
  query string (`extra_query`, wherever it is nested), `code`, `sig` and `signature` are
  credentials too. A JSON schema's data names (the keys of a `properties`, `patternProperties`,
  `$defs` or `definitions` dict whose values are all dicts: a tool's parameters, a response
  format) are kept.
- a dict key that is itself a secret (`sk-proj-...`, or anything `mask_secrets` masks) is masked.
- headers (`extra_headers`, `headers`) never enter a record.
"""

from __future__ import annotations

import re
from typing import Any

from neatlogs.record.redact import mask_secrets
from neatlogs.record.sanitize import free_key

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
# A JSON schema's maps from data names to schemas.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_MAX_DEPTH = 64
# What a name is: plain, a credential, a credential in a query string only, or a secret itself.
_PLAIN, _CREDENTIAL, _QUERY_CREDENTIAL, _SECRET = 0, 1, 2, 3
# name -> its verdict, for names that are no secret themselves: request names repeat call after call.
_verdicts: dict[str, int] = {}
_DROP = object()


def _verdict(name: str) -> int:
    verdict = _verdicts.get(name)
    if verdict is not None:
        return verdict
    if mask_secrets(name) != name:
        return _SECRET  # not kept: the cache holds no secret
    if name.lower() in _NOT_CREDENTIALS:
        verdict = _PLAIN
    else:
        parts = set(_NOT_ALNUM.split(_CAMEL.sub("_", name).lower()))
        if not parts.isdisjoint(_CREDENTIAL_PARTS):
            verdict = _CREDENTIAL
        else:
            verdict = _PLAIN if parts.isdisjoint(_QUERY_PARTS) else _QUERY_CREDENTIAL
    if len(_verdicts) < 4096:
        _verdicts[name] = verdict
    return verdict


def without_credentials(request: dict[str, Any]) -> dict[str, Any]:
    """`request` (JSON-safe, from `to_jsonable`) without credentials: the rule of the module's docstring.

    Nothing is changed in place: a dict or list with nothing to remove is returned as it is, the
    others are copied (most requests have nothing to remove, and are not copied at all)."""
    if not _HEADER_ARGUMENTS.isdisjoint(request):
        request = {name: value for name, value in request.items() if name not in _HEADER_ARGUMENTS}
    return _scrub_dict(request, False, 0)


def _scrub_dict(mapping: dict[str, Any], in_query: bool, depth: int, schema: bool = False) -> dict[str, Any]:
    # name -> (its new name, or _DROP; its new value), for the few entries that change.
    changes: dict[Any, tuple[Any, Any]] | None = None
    for name, item in mapping.items():
        verdict = _verdicts.get(name)
        if verdict is None:
            verdict = _verdict(str(name))
        new_name = name
        if verdict == _SECRET:  # a name that is a secret itself is masked, its value kept
            new_name = mask_secrets(str(name))
        elif verdict != _PLAIN and not schema and (verdict == _CREDENTIAL or in_query):
            changes = changes or {}
            changes[name] = (_DROP, None)
            continue
        new_item = item
        kind = type(item)
        if kind is dict:
            # At any depth: LiteLLM 1.80 passes `extra_query` on inside `extra_body` (and its metadata).
            query = in_query or name in _QUERY_ARGUMENTS
            new_item = _scrub_dict(item, query, depth + 1, name in _SCHEMA_MAPS and _all_dicts(item))
        elif kind is list:
            new_item = _scrub(item, in_query, depth + 1)
        if new_name is not name or new_item is not item:
            changes = changes or {}
            changes[name] = (new_name, new_item)
    if not changes:
        return mapping
    result: dict[str, Any] = {}
    for name, item in mapping.items():
        change = changes.get(name)
        if change is None:
            result[name] = item
        elif change[0] is not _DROP:
            new_name, new_item = change
            result[name if new_name is name else free_key(new_name, result)] = new_item
    return result


def _all_dicts(properties: dict[str, Any]) -> bool:
    """Whether a `properties` (...) dict is a JSON schema's (each value a schema): its keys name data."""
    return all(type(value) is dict for value in properties.values())


def _scrub(value: Any, in_query: bool, depth: int) -> Any:
    if depth > _MAX_DEPTH:  # to_jsonable stops well before this; a guard for any other caller
        return value
    if type(value) is dict:
        return _scrub_dict(value, in_query, depth)
    result: list[Any] | None = None
    for index, item in enumerate(value):
        kind = type(item)
        if kind is dict or kind is list:
            new_item = _scrub(item, in_query, depth + 1)
            if new_item is not item:
                if result is None:
                    result = list(value)
                result[index] = new_item
    return value if result is None else result
