"""A trace's records as a tree on `parent_id`, each placed on the trace's time axis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neatlogs.collector import tree
from neatlogs.collector.viewer.format import count, ms, parse_time, usd

# Bars are drawn in an SVG whose width is this many units (stretched to the column).
AXIS = 1000.0
_MIN_BAR = 2.0


@dataclass
class Row:
    """One record of the waterfall: its depth in the tree and where its bar goes."""

    record: dict[str, Any]
    depth: int
    offset_ms: float
    x: float
    width: float
    ttft_x: float | None
    children: int = 0  # descendants: the rows a collapse hides
    parent: str | None = None
    orphan: bool = False
    # Written once here rather than by template filters: a trace can have thousands of rows.
    texts: dict[str, str] = field(default_factory=dict)
    bars: list[tuple[str, str, str]] = field(default_factory=list)  # (class, x, width)


def _dress(row: Row) -> None:
    record = row.record
    usage = record.get("usage")
    ttft = _number(record.get("ttft_ms"))
    row.texts = {
        "offset": ms(row.offset_ms),
        "duration": ms(record.get("duration_ms")),
        "ttft": ms(ttft) if ttft is not None else "",
        "tokens": count(usage.get("total_tokens") if isinstance(usage, dict) else None),
        "cost": usd(record.get("cost_usd")),
    }
    kind = "error" if record.get("status") == "error" else ("step" if record.get("kind") == "span" else "ok")
    if row.ttft_x is not None and row.ttft_x > row.x:
        row.bars = [
            (f"wait {kind}", f"{row.x:.2f}", f"{row.ttft_x - row.x:.2f}"),
            (f"span {kind}", f"{row.ttft_x:.2f}", f"{max(row.x + row.width - row.ttft_x, 1):.2f}"),
            ("ttft", f"{row.ttft_x - 1:.2f}", "2.5"),
        ]
    else:
        row.bars = [(f"span {kind}", f"{row.x:.2f}", f"{row.width:.2f}")]


@dataclass
class Timeline:
    """The rows in display order (depth first, by start time) and the trace's totals."""

    rows: list[Row]
    wall_ms: float
    started_at: str | None
    calls: int
    spans: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None
    ticks: list[float]


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _tokens(record: dict[str, Any], key: str) -> int:
    usage = record.get("usage")
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def build(records: list[dict[str, Any]]) -> Timeline:
    """The waterfall of a trace's records (any order; an unknown parent makes a root)."""
    starts = {id(r): parse_time(r.get("started_at")) for r in records}
    known = [s for s in starts.values() if s is not None]
    origin = min(known) if known else None

    def offset(record: dict[str, Any]) -> float:
        start = starts[id(record)]
        return (start - origin).total_seconds() * 1000 if start and origin else 0.0

    def end(record: dict[str, Any]) -> float:
        return offset(record) + max(_number(record.get("duration_ms")) or 0.0, 0.0)

    wall = max((end(r) for r in records), default=0.0)
    scale = AXIS / wall if wall > 0 else 0.0
    ordered = sorted(records, key=lambda r: (offset(r), str(r.get("started_at") or "")))
    ids = {r.get("id") for r in records}
    rows: list[Row] = []
    for place in tree.arrange(ordered):
        record = ordered[place.index]
        start = offset(record)
        duration = max(_number(record.get("duration_ms")) or 0.0, 0.0)
        ttft = _number(record.get("ttft_ms"))
        parent = ordered[place.parent].get("id") if place.parent is not None else None
        declared = record.get("parent_id")
        rows.append(
            Row(
                record=record,
                depth=place.depth,
                offset_ms=start,
                x=start * scale,
                width=max(duration * scale, _MIN_BAR),
                ttft_x=(start + ttft) * scale if ttft is not None and scale else None,
                children=place.descendants,
                parent=parent if isinstance(parent, str) else None,
                # Its parent step never arrived (or is past the drawn part): a root, and said so.
                orphan=isinstance(declared, str) and declared not in ids,
            )
        )
    for row in rows:
        _dress(row)
    llm = [r for r in records if r.get("kind", "llm") != "span"]
    costs = [c for c in (_number(r.get("cost_usd")) for r in records) if c is not None]
    return Timeline(
        rows=rows,
        wall_ms=wall,
        started_at=min((str(r["started_at"]) for r in records if r.get("started_at")), default=None),
        calls=len(llm),
        spans=len(records) - len(llm),
        errors=sum(1 for r in records if r.get("status") == "error"),
        prompt_tokens=sum(_tokens(r, "prompt_tokens") for r in records),
        completion_tokens=sum(_tokens(r, "completion_tokens") for r in records),
        total_tokens=sum(_tokens(r, "total_tokens") for r in records),
        cost_usd=sum(costs) if costs else None,
        ticks=[wall * i / 4 for i in range(5)],
    )
