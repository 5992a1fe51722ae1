"""How torch lays out each value (its strides), so that the analysis knows which views
are free and which copy: a flatten of a map a crop or a permute left strided copies it
(netdsl.passes.analyse.activation_counts)."""

from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ir.ops import OPS, Shape
from ..ir.record import UNKNOWN_LAYOUT, Strides, contiguous_strides


def written(graph: Graph, node: Node, inplace: bool,
             layouts: list[Strides]) -> tuple[bool, Strides]:
    """Whether a node writes new values, and its output's strides. An op that computes
    writes row-major strides (or its record's ``output_strides``) when its inputs' axes are
    in row-major order (a crop's are); after a permute or a channels-last layer norm,
    torch's memory-format rules pick them (:data:`UNKNOWN_LAYOUT`). A view keeps or
    rearranges its input's strides, or copies where they do not allow it (the record's
    ``view_strides``: flatten after a crop)."""
    given = layouts[node.inputs[0]] if node.inputs else UNKNOWN_LAYOUT
    if inplace:
        return False, given
    ins = [graph.nodes[i].shape for i in node.inputs]
    if not OPS[node.op].writes_nothing(dict(node.attrs), ins, node.shape):
        ordered = all(_row_major_order(graph.nodes[i].shape, layouts[i]) for i in node.inputs)
        if not ordered:
            return True, UNKNOWN_LAYOUT
        own = OPS[node.op].output_strides
        return True, contiguous_strides(node.shape) if own is None else own(node.shape)
    rule = OPS[node.op].view_strides
    if rule is None:
        return False, given
    layout = rule(dict(node.attrs), ins[0], given)
    return (True, contiguous_strides(node.shape)) if layout is None else (False, layout)


def _row_major_order(shape: Shape, strides: Strides) -> bool:
    """Whether the axes wider than 1 step over fewer values from first to last."""
    if strides == UNKNOWN_LAYOUT:
        return False
    steps = [s for n, s in zip(shape, strides, strict=True) if n != 1]
    return all(a >= b for a, b in zip(steps, steps[1:], strict=False))
