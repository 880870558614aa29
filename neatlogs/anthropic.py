"""`AnthropicProvider`: trace every Claude call of the anthropic SDK with one `override()`."""

from neatlogs.providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
