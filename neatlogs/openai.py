"""`OpenAIProvider`: trace every call of the OpenAI SDK with one `override()`."""

from neatlogs.providers.openai.provider import OpenAIProvider

__all__ = ["OpenAIProvider"]
