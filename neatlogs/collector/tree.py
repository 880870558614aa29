"""A trace's records arranged as a tree on `parent_id`: each span's records under it.

Records arrive in any order and a parent may never arrive: a record whose parent is not among
the trace's records (or is itself) is a root, and so is one only reachable through a `parent_id`
cycle. Nothing is dropped and each record appears once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Nesting deeper than this is drawn at this depth (under the deepest ancestor within it): a chain
# of thousands of records stays a tree any JSON reader and page can hold.
MAX_TREE_DEPTH = 64


@dataclass
class Placed:
    """One record's place: its index in the input, depth, parent's index and descendants."""

    index: int
    depth: int
    parent: int | None
    children: list[int] = field(default_factory=list)  # input indexes, in input order
    descendants: int = 0


def arrange(records: Sequence[Mapping[str, Any]]) -> list[Placed]:
    """The records' places in depth-first order; siblings keep their order in `records`."""
    position: dict[Any, int] = {}
    for index, record in enumerate(records):
        position.setdefault(record.get("id"), index)
    owners: list[int | None] = []
    for index, record in enumerate(records):
        parent = record.get("parent_id")
        found = position.get(parent) if parent is not None and isinstance(parent, str) else None
        owners.append(found if found != index else None)
    kids: list[list[int]] = [[] for _ in records]
    for index, owner in enumerate(owners):
        if owner is not None:
            kids[owner].append(index)
    placed: dict[int, Placed] = {}
    order: list[Placed] = []
    roots = [index for index, owner in enumerate(owners) if owner is None]
    # Records on a cycle have no root above them: after the others, each not yet placed starts one.
    for root in [*roots, *range(len(records))]:
        if root in placed:
            continue
        stack: list[tuple[int, int | None, int]] = [(root, None, 0)]
        while stack:
            index, parent, depth = stack.pop()
            if index in placed:
                continue
            if parent is not None and depth > MAX_TREE_DEPTH:
                # Attach to the ancestor at the deepest level allowed.
                while placed[parent].depth >= MAX_TREE_DEPTH:
                    parent = placed[parent].parent
                    assert parent is not None
                depth = placed[parent].depth + 1
            node = Placed(index, depth, parent)
            placed[index] = node
            order.append(node)
            if parent is not None:
                placed[parent].children.append(index)
            stack.extend((kid, index, depth + 1) for kid in reversed(kids[index]) if kid not in placed)
    for node in reversed(order):  # children come after their parent: sums flow upwards
        if node.parent is not None:
            placed[node.parent].descendants += node.descendants + 1
    return order


def nested(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records as a forest: copies of them, each with a `children` list of the same shape."""
    order = arrange(records)
    nodes = {node.index: {**records[node.index], "children": []} for node in order}
    roots: list[dict[str, Any]] = []
    for node in order:
        target = nodes[node.parent]["children"] if node.parent is not None else roots
        target.append(nodes[node.index])
    return roots
