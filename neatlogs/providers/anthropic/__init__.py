"""Tracing of the anthropic SDK (Claude): patches, readers and the public `AnthropicProvider`."""

from .provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
