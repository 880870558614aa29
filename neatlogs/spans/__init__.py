"""Spans: the steps around the LLM calls (tools, agents, tasks), recorded as a tree (docs/spans.md).

The public names are `neatlogs.span` and `neatlogs.observe`. This package's own import stays light
(`context` and `routes` are read by the record and provider modules, which `span` itself imports).
"""
