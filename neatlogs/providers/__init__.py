"""One package per traced SDK; the only code in neatlogs that imports an SDK."""

# SDK module name -> "module:Class" of the provider that traces it: the one line a new provider adds.
# `LLMTracker` / `neatlogs.init()` import a provider only when its SDK is installed or imported.
PROVIDERS: dict[str, str] = {
    "openai": "neatlogs.providers.openai.provider:OpenAIProvider",
    "litellm": "neatlogs.providers.litellm.provider:LiteLLMProvider",
    "anthropic": "neatlogs.providers.anthropic.provider:AnthropicProvider",
}
