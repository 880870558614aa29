"""`LiteLLMProvider`: trace every `litellm.completion` / `litellm.acompletion` call with one `override()`."""

from neatlogs.providers.litellm.provider import LiteLLMProvider

__all__ = ["LiteLLMProvider"]
