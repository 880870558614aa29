"""Tracing of the anthropic SDK (Claude): patches, readers and the public `AnthropicProvider`."""

from neatlogs.providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
