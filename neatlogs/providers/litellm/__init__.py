"""LiteLLM's `completion` / `acompletion`."""

from neatlogs.providers._stainless.ratelimit import read_rate_limit
from neatlogs.record.traits import ProviderTraits, register

register("litellm", ProviderTraits(rate_limit=read_rate_limit))
