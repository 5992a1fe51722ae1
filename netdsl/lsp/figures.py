"""The checked graph seen from the source: which nodes a piece of text expanded to, and their
figures (output shape, parameters, MACs, receptive field).

Every IR node keeps the span it was written at and the spans of the block calls it was
expanded from (outermost first). The nodes of a call, label or line are those with one of
these spans inside it; the calls outside it (the span list before that point) tell its
expansions apart: a block body is expanded once per call of the block. A ``stack`` repeats
a call under the same outer calls, so for a call that is itself repeated, a run of nodes
that starts again at the first node's own position is its next copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Span
from ..ir.graph import Graph, Node
from ..ir.ops import OPS, fmt_shape
from .analysis import Analysis
from .locate import inside


@dataclass(frozen=True)
class Figures:
    """One expansion of a piece of text."""

    nodes: tuple[int, ...]
    input: tuple[int, ...] | None
    output: tuple[int, ...]
    params: int
    macs: int
    rf: tuple[int, int]
    jump: tuple[int, int]

    def summary(self) -> tuple:
        """What copies share (the receptive field grows from copy to copy)."""
        return self.input, self.output, self.params, self.macs


def _owner(analysis: Analysis, own_graph: bool):
    """A test of span sources against the document, remembered per Source object: by name
    for its own graph, by name and text for another document's (which read it from disk)."""
    known: dict[int, bool] = {}
    test = analysis.owns if own_graph else analysis.current

    def owns(source) -> bool:
        key = id(source)
        if key not in known:
            known[key] = test(source)
        return known[key]
    return owns


def expansions(graph_of: Analysis, document: Analysis, subject: Span) -> list[list[Node]]:
    """The nodes ``subject`` (a span of ``document``) expanded to in ``graph_of``'s graph,
    one list per expansion, in graph order."""
    graph = graph_of.graph
    if graph is None:
        return []
    owns = _owner(document, graph_of is document)
    groups: dict[tuple, list[tuple[tuple, Node]]] = {}
    for node in graph.nodes:
        chain = (*node.trace, node.span) if node.span is not None else node.trace
        for k, span in enumerate(chain):
            if owns(span.source) and inside(span, subject):
                groups.setdefault(chain[:k], []).append((chain[k:], node))
                break
    out: list[list[Node]] = []
    for members in groups.values():
        first = members[0][0]
        repeated = first[0] == subject  # the subject itself, not a part of it, is repeated
        current: list[Node] = []
        for rest, node in members:
            # a stack's next copy starts where the first node's position and op come again;
            # the nodes of one expansion may share a position (``project``: conv, then bn)
            if repeated and rest == first and current and node.op == members[0][1].op:
                out.append(current)
                current = []
            current.append(node)
        out.append(current)
    return sorted(out, key=lambda nodes: nodes[0].id)


def figures(graph_of: Analysis, nodes: list[Node]) -> Figures:
    graph: Graph = graph_of.graph  # type: ignore[assignment]
    params = macs = 0
    for node in nodes:
        ins = [graph.nodes[i].shape for i in node.inputs]
        op = OPS[node.op]
        params += op.count_params(dict(node.attrs), ins)
        macs += op.macs(dict(node.attrs), ins, node.shape)
    last = max(nodes, key=lambda n: n.id)
    first = min(nodes, key=lambda n: n.id)
    given = graph.nodes[first.inputs[0]].shape if first.inputs else None
    rf, jump = graph_of.fields[last.id]
    return Figures(tuple(n.id for n in nodes), given, last.shape, params, macs, rf, jump)


def pair(value: tuple[int, int]) -> str:
    """A receptive field or jump: ``7`` for 7x7, ``3x7`` otherwise."""
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


def describe(f: Figures) -> str:
    """Markdown lines for one expansion's figures."""
    given = f" (input `{fmt_shape(f.input)}`)" if f.input else ""
    rf = f"{f.rf[0]}x{f.rf[1]}"
    return (f"output `{fmt_shape(f.output)}`{given}  \n"
            f"params {f.params:,} · MACs {f.macs:,} · receptive field {rf}, jump {pair(f.jump)}")
