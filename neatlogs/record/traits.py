"""What a provider tells the layers below it about its calls, by provider name.

Providers register their traits when their package is imported (`register`); the record and the sinks
look them up by the record's `provider` (`traits_of`) and never import a provider. Everything here is
read off the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProviderTraits", "register", "traits_of", "well_known_provider"]

# (the call's kept response, stream?, its exception) -> the record's `rate_limit`, or None
RateLimitReader = Callable[[Any, bool, "BaseException | None"], "dict[str, Any] | None"]
# a record dict -> extra OpenTelemetry span attributes only this provider defines (`openai.*`)
AttributeReader = Callable[[Mapping[str, Any]], dict[str, Any]]
# a record dict -> gen_ai.provider.name when the provider tells vendors apart (Azure), else None
ProviderNamer = Callable[[Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class ProviderTraits:
    """One provider's readers that the record and the sinks use."""

    rate_limit: RateLimitReader | None = None
    otel_attributes: AttributeReader | None = None
    otel_provider_name: ProviderNamer | None = None
    # operation -> (module, classes, method) where the SDK defines it, to notice another
    # instrumentation wrapping the same method; the module is only looked up in sys.modules.
    sdk_methods: Mapping[str, tuple[str, tuple[str, ...], str]] = field(default_factory=dict)
    # modules whose wrappers on those methods mean another GenAI instrumentation makes its own span
    foreign_instrumentations: tuple[str, ...] = ()


_NONE = ProviderTraits()
_TRAITS: dict[str, ProviderTraits] = {}


def register(provider: str, traits: ProviderTraits) -> None:
    """Make `traits` the traits of records whose `provider` is `provider`."""
    _TRAITS[provider] = traits


def traits_of(provider: str) -> ProviderTraits:
    """The registered traits of `provider` (empty ones when it registered none)."""
    return _TRAITS.get(provider, _NONE)


# Vendor names (neatlogs providers, LiteLLM's routes) -> gen_ai.provider.name's well-known values;
# unknown names pass through unchanged.
_WELL_KNOWN = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "groq": "groq",
    "mistral": "mistral_ai",
    "perplexity": "perplexity",
    "xai": "x_ai",
}


def well_known_provider(vendor: str) -> str:
    """gen_ai.provider.name for a vendor name (the name itself when the conventions list none)."""
    return _WELL_KNOWN.get(vendor, vendor)
