"""How torch lays out each value (its strides, one image, the batch's first), so that the
analysis knows which views are free and which copy: a flatten of a map that a crop or a
permute left strided, or of a channels-last map, copies it
(netdsl.passes.analyse.activation_counts).

The rules are torch's on the CPU, by each record's ``layout`` (netdsl.ir.record.LAYOUTS):
an elementwise op's TensorIterator keeps a dense input's strides and otherwise writes densely
in its input's axis order; convolutions, batch norm, pools and interpolation write
channels-last where ``suggest_memory_format`` finds the input channels-last
(c10's ``is_channels_last_strides_2d_s4``), else row-major; LayerNorm2d always writes
channels-last. tests/test_analysis_differential.py checks the outcome against torch.
"""

from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ir.ops import OPS, Shape
from ..ir.record import Strides, contiguous_strides


def written(graph: Graph, node: Node, inplace: bool,
            layouts: list[Strides]) -> tuple[bool, Strides]:
    """Whether a node writes new values, and its output's strides. A view keeps or
    rearranges its input's strides, or copies where they do not allow it (the record's
    ``view_strides``: flatten after a crop); an op that computes lays its output out by its
    record's ``layout``."""
    record = OPS[node.op]
    ins = [graph.nodes[i].shape for i in node.inputs]
    given = [layouts[i] for i in node.inputs]
    if inplace:
        return False, given[0]
    if not record.writes_nothing(dict(node.attrs), ins, node.shape):
        return True, _computed(record.layout, node.shape, ins, given)
    if record.view_strides is None:
        return False, given[0]
    layout = record.view_strides(dict(node.attrs), ins[0], given[0])
    return (True, contiguous_strides(node.shape)) if layout is None else (False, layout)


def _computed(kind: str, shape: Shape, ins: list[Shape], given: list[Strides]) -> Strides:
    if kind == "channels_last" or (kind == "memory_format" and given and all(
            channels_last_like(s, g) for s, g in zip(ins, given, strict=True))):
        return channels_last_strides(shape)
    if kind == "elementwise":
        first = next((g for s, g in zip(ins, given, strict=True) if s == shape), None)
        if first is not None:
            return first if dense(shape, first) else _dense_in_order(shape, first)
    return contiguous_strides(shape)


def channels_last_strides(shape: Shape) -> Strides:
    """NHWC in memory, for a CxHxW map; other ranks have no channels-last form."""
    if len(shape) != 3:
        return contiguous_strides(shape)
    c, h, w = shape
    return (c * h * w, 1, w * c, c)


def channels_last_like(shape: Shape, strides: Strides) -> bool:
    """c10's ``is_channels_last_strides_2d_s4`` for one image of a CxHxW map: the channels
    step least, then the columns, then the rows, then the batch; ambiguous strides (a batch
    stepping as the channels do) count as row-major."""
    if len(shape) != 3 or strides[1] == 0:
        return False
    sizes = (1, *shape)
    lowest = 0
    for axis in (1, 3, 2, 0):
        if strides[axis] < lowest or (axis == 0 and lowest == strides[1]):
            return False
        lowest = strides[axis] * (sizes[axis] if sizes[axis] > 1 else 1)
    return True


def dense(shape: Shape, strides: Strides) -> bool:
    """Whether the values fill one block with no gaps and no overlap (1-sized axes aside)."""
    step = 1
    for stride, size in sorted((s, n) for n, s in zip(shape, strides[1:], strict=True)
                               if n != 1):
        if stride != step:
            return False
        step *= size
    return True


def _dense_in_order(shape: Shape, strides: Strides) -> Strides:
    """Dense strides with the axes in the order of ``strides`` (largest step first), as
    TensorIterator writes the output of a strided input (a crop's: row-major)."""
    order = sorted(range(len(shape)), key=lambda i: -strides[1 + i])
    out = [0] * len(shape)
    step = 1
    for i in reversed(order):
        out[i] = step
        step *= shape[i]
    return (step, *out)
