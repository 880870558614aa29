"""Spans: the steps around the LLM calls (tools, agents, tasks), recorded as a tree (docs/spans.md).

The public names are `neatlogs.span` and `neatlogs.observe`. The node and the contextvar of the
current span are in `neatlogs.record.span`; `routes` (read by trackers and providers) is imported
alone, so this package's own import stays light.
"""
