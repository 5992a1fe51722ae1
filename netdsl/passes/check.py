"""Static shape checking of a finished graph: re-derive every node's shape from its inputs
without allocating a tensor.

The expander already computed each shape as it built the graph (it has to: blocks read their
input's channels, and ``shortcut=project`` becomes a real convolution or nothing). ``check``
re-derives them with the same rule (:func:`netdsl.ir.shapes.infer_shape`) for a different
input size (``netdsl check --sizes``) or a graph read back from JSON, and lints the result.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, Node, frozen, lint
from ..ir.ops import Shape
from ..ir.shapes import infer_shape
from ..limits import paused_gc


def check(graph: Graph, input_shape: Shape | None = None) -> Graph:
    """Returns the graph with every node's output shape; raises on the first misfit.

    ``input_shape`` replaces the network's declared input (to sweep input sizes).
    """
    with paused_gc():  # linear time on very deep networks (see paused_gc)
        checked = _check(graph, input_shape)
    lint(checked)
    return checked


def _check(graph: Graph, input_shape: Shape | None) -> Graph:
    shapes: list[Shape] = []
    nodes: list[Node] = []
    for node in graph.nodes:
        if node is graph.input and input_shape is not None:
            node = replace(node, attrs=frozen({"shape": tuple(input_shape)}))
        shape = infer_shape(node.op, node.attrs, [shapes[i] for i in node.inputs], node.span,
                            node.trace)
        shapes.append(shape)
        nodes.append(node if node.shape == shape else replace(node, shape=shape))
    return replace(graph, nodes=tuple(nodes), checked=True)
