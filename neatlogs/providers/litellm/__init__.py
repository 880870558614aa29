"""LiteLLM's `completion` / `acompletion`."""
