"""The anthropic SDK (Claude): patches, readers, traits and the public `AnthropicProvider`."""

from neatlogs.providers.anthropic.provider import AnthropicProvider
from neatlogs.providers.anthropic.traits import ANTHROPIC_TRAITS
from neatlogs.record.traits import register

register("anthropic", ANTHROPIC_TRAITS)

__all__ = ["AnthropicProvider"]
