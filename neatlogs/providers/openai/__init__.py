"""The OpenAI SDK (0.28's module API and 1.x-3.x clients)."""
