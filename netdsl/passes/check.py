"""Static shape checking: propagate (C, H, W) through the IR without allocating a tensor.

Every failure becomes a :class:`~netdsl.errors.SpecShapeError` at the span of the layer that
cannot take its input, with the expected and found shapes, and a note for each block call it
was expanded from. ``project`` shortcuts are resolved here, since whether a residual needs a
projection depends on shapes: identity where the body keeps the shape, else a strided 1x1
convolution with batch norm (He et al. 2016, option B).
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import PRELUDE, SpecShapeError, call_note
from ..ir.graph import Graph, Node, frozen
from ..ir.ops import OPS, Shape, ShapeProblem, fmt_shape
from ..limits import paused_gc


def check(graph: Graph, input_shape: Shape | None = None) -> Graph:
    """Returns the graph with every node's output shape; raises on the first misfit.

    ``input_shape`` replaces the network's declared input (to sweep input sizes).
    """
    with paused_gc():  # linear time on very deep networks (see paused_gc)
        return _check(graph, input_shape)


def _check(graph: Graph, input_shape: Shape | None) -> Graph:
    shapes: list[Shape] = []
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op == "input" and input_shape is not None:
            node = replace(node, attrs=frozen({"shape": tuple(input_shape)}))
        ins = [shapes[i] for i in node.inputs]
        try:
            if node.op == "project":
                node = replace(node, attrs=frozen(resolve_projection(node, ins[0],
                                                                      shapes[node.attrs["like"]])))
            shape = OPS[node.op].infer(dict(node.attrs), ins)
        except ShapeProblem as problem:
            raise _shape_error(node, problem, ins) from None
        shapes.append(shape)
        nodes.append(replace(node, shape=shape))
    return replace(graph, nodes=tuple(nodes), checked=True)


def resolve_projection(node: Node, given: Shape, wanted: Shape) -> dict:
    """A ``project`` node's attributes once its input (``given``) and the residual body's
    output (``wanted``) are known: inactive where they agree, else the 1x1 stride that maps one
    onto the other."""
    attrs = {"like": node.attrs["like"], "active": given != wanted}
    if not attrs["active"]:
        return attrs
    if len(given) != 3 or len(wanted) != 3:
        raise ShapeProblem(f"cannot project {fmt_shape(given)} to {fmt_shape(wanted)}",
                           expected=fmt_shape(wanted), found=fmt_shape(given))
    stride = []
    for axis in (1, 2):
        # the least s with (g - 1) // s + 1 == w, without trying every s up to g (g may be huge)
        g, w = given[axis], wanted[axis]
        least = (g - 1) // w + 1 if w > 1 else max(g, 1)
        if not (1 <= least <= g and (g - 1) // least + 1 == w):
            raise ShapeProblem(f"no strided 1x1 convolution takes {fmt_shape(given)} to "
                               f"{fmt_shape(wanted)}", expected=fmt_shape(wanted),
                               found=fmt_shape(given))
        stride.append(least)
    attrs.update(out=wanted[0], stride=tuple(stride), spatial=wanted[1:])
    return attrs


def _shape_error(node: Node, problem: ShapeProblem, ins: list[Shape]) -> SpecShapeError:
    message, expected, found = problem.message, problem.expected, problem.found
    notes = []
    if node.op == "add" and node.attrs.get("residual"):
        body, shortcut = ins
        message = (f"residual body gives {fmt_shape(body)} but its shortcut gives "
                   f"{fmt_shape(shortcut)}")
        expected, found = fmt_shape(shortcut), fmt_shape(body)
        notes.append("the body must keep its input's shape, or use shortcut=project")
    notes += [call_note(s) for s in reversed(node.trace) if s.source.filename != PRELUDE]
    return SpecShapeError(message, node.span, expected=expected, found=found, notes=tuple(notes))
