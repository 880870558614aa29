"""The OpenAI SDK (0.28's module API and 1.x-3.x clients)."""

from neatlogs.providers.openai.traits import OPENAI_TRAITS
from neatlogs.record.traits import register

register("openai", OPENAI_TRAITS)
