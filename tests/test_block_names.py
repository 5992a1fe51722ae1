"""Merges belong to their block (issue 26, item 6): an identity-shortcut ``add`` is named in
the unit it closes (``layer1.0.add``), summary names are unique, and a graph collapsed to any
depth is acyclic (a block box never feeds a node that feeds it back)."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.lower.loader import zoo_names
from netdsl.passes.analyse import row_names, summarize
from netdsl.render.graph import picture


def _cycle(pic) -> bool:
    """Whether the picture's edges have a cycle (Kahn's algorithm leaves boxes over)."""
    into = {b.id: 0 for b in pic.boxes}
    out: dict[int, list[int]] = {}
    for e in pic.edges:
        into[e.dst] += 1
        out.setdefault(e.src, []).append(e.dst)
    ready = [b for b, n in into.items() if n == 0]
    while ready:
        for d in out.get(ready.pop(), []):
            into[d] -= 1
            if into[d] == 0:
                ready.append(d)
    return any(into.values())


def _networks() -> dict:
    found = {}
    for name in zoo_names():
        try:
            found[name] = netdsl.compile(name)
        except netdsl.NetDSLError:  # a family file: no network of its own
            continue
    return found


ZOO = _networks()


def test_identity_shortcut_sums_are_named_in_their_unit():
    names = row_names(netdsl.compile("resnet18"))
    adds = [n for n in names if n.endswith("add")]
    assert adds == [f"layer{s}.{u}.add" for s in range(1, 5) for u in range(2)]


def test_collapsed_rows_hold_their_merges():
    rows = [r.name for r in summarize(netdsl.compile("resnet18"), depth=2).layers]
    assert "add" not in rows and "layer1.add" not in rows
    assert rows[5:7] == ["layer1.0", "layer1.1"]


def test_names_are_unique_where_one_block_merges_twice():
    text = ("network t:\n    input 4x8x8\n    add(identity, conv(4, 3x3, pad=1))"
            " -> add(identity, conv(4, 1x1))\n")
    names = row_names(netdsl.compile(text))
    assert len(set(names)) == len(names)
    assert [n for n in names if n.startswith("add")] == ["add", "add#2"]


@pytest.mark.parametrize("name", ZOO)
def test_every_zoo_graph_collapsed_to_depth_1_to_3_is_acyclic(name):
    graph = ZOO[name]
    names = row_names(graph)
    assert len(set(names)) == len(names)
    for depth in (1, 2, 3):
        assert not _cycle(picture(graph, depth)), depth
