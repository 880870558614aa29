"""`AnthropicProvider`: trace every Claude call of the anthropic SDK with one `override()`."""

from __future__ import annotations

from .providers.anthropic import AnthropicProvider

__all__ = ["AnthropicProvider"]
