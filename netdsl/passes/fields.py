"""Receptive fields: the classic figure of every node (:func:`receptive_fields`, the papers'
window side, padding included, so it may exceed the input) and, exactly, which input pixels
one value depends on (:func:`input_window`: the window of its central position, clipped to the
input, as the gradient of that value with respect to the input shows it;
tests/test_analysis_differential.py measures it so in torch).

:func:`input_window` takes the central value of a node (position ``(H - 1) // 2,
(W - 1) // 2``, every channel) and walks back through the graph to the first and last input
row and column it reads, with each op's window (kernel, stride, dilation, padding; padding
reads nothing), global ops (gap, fc: the whole grid) and broadcasting (a 1x1 map read by a
larger one: its only value). A flat value (after flatten) stands for its whole grid. Exact
for every op whose record window is its index map; upsampling, transposed convolutions,
crops, permutes, channel chunks and layers over the last axis have approximate windows (see
their records), and so do adaptive pools whose output does not divide their input.
"""

from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import GLOBAL, OPS, Shape

Span = tuple[int, int]  # first and last position; first > last when nothing is read
Pair = tuple[int, int]


def _sides(shape: Shape) -> tuple[int, int]:
    return (shape[1], shape[2]) if len(shape) == 3 else (1, 1)


def _reads(window, axis: int, q: int, n: int, flat_from_grid: bool) -> range | list[int]:
    """The input positions output position ``q`` reads on ``axis`` of an input of ``n``
    positions (padding, outside them, reads nothing)."""
    if window == GLOBAL or flat_from_grid:
        return range(n)
    k, s, d, p = window.kernel[axis], window.stride[axis], window.dilation[axis], window.pad[axis]
    if n == 1 and k == 1 and p == 0:  # broadcast: every output position reads the only one
        return [0]
    return [x for x in range(q * s - p, q * s - p + (k - 1) * d + 1, d) if 0 <= x < n]


def central(shape: Shape) -> tuple[int, int]:
    """The position measured: the central one, rounding up-left on an even side."""
    h, w = _sides(shape)
    return (h - 1) // 2, (w - 1) // 2


def input_window(graph: Graph, node: int | None = None) -> tuple[Span, Span]:
    """The input rows and columns (first, last) the central value of ``node`` (the output
    when None) depends on; ``(1, 0)`` on an axis where it reads no input pixel. The positions
    needed are walked back as sets per axis, not spans: a strided or dilated read leaves
    gaps, and a gap's neighbours must not count."""
    target = graph.output if node is None else node
    need: dict[int, list[set[int]]] = {target: [{q} for q in central(graph.nodes[target].shape)]}
    for v in range(target, -1, -1):
        wanted = need.pop(v, None)
        if wanted is None:
            continue
        n = graph.nodes[v]
        if not n.inputs:
            return tuple((min(w), max(w)) for w in wanted)
        ins = [graph.nodes[i].shape for i in n.inputs]
        window = OPS[n.op].window(dict(n.attrs), ins, n.shape)
        for i, shape in zip(n.inputs, ins, strict=True):
            flat = len(shape) == 3 and len(n.shape) != 3
            got = [{x for q in wanted[axis] for x in _reads(window, axis, q, side, flat)}
                   for axis, side in enumerate(_sides(shape))]
            if all(got):  # a value that reads nothing on one axis reads nothing at all
                old = need.get(i)
                need[i] = got if old is None else [a | b for a, b in zip(old, got, strict=True)]
    return (1, 0), (1, 0)


def seen(graph: Graph, node: int | None = None) -> tuple[int, int]:
    """How many input rows and columns the central value of ``node`` spans."""
    return tuple(max(0, b - a + 1) for a, b in input_window(graph, node))


# --- the classic figure --------------------------------------------------------------------

class _Axis:
    """What position ``q`` of a node sees along one axis, in input pixels, padding included:
    ``[q * jump + first, q * jump + last]`` (the affine part, None once everything is global)
    together with the fixed window ``[low, high]`` of the global values read (a
    squeeze-excitation's pooled map: the same for every position)."""

    __slots__ = ("jump", "first", "last", "low", "high")

    def __init__(self, jump, first, last, low=None, high=None):
        self.jump, self.first, self.last, self.low, self.high = jump, first, last, low, high

    def fixed(self, side: int) -> tuple[int, int]:
        """The window every position of a ``side``-wide map sees together."""
        lows = [x for x in (self.low, self.first) if x is not None]
        highs = [x for x in (self.high, None if self.last is None
                             else (side - 1) * self.jump + self.last) if x is not None]
        return min(lows), max(highs)

    def extent(self, q: int) -> int:
        lows = [x for x in (self.low, None if self.first is None else q * self.jump + self.first)
                if x is not None]
        highs = [x for x in (self.high, None if self.last is None else q * self.jump + self.last)
                 if x is not None]
        return max(highs) - min(lows) + 1


def _merge(axes: list[_Axis]) -> _Axis:
    affine = [a for a in axes if a.first is not None]
    lows = [a.low for a in axes if a.low is not None]
    highs = [a.high for a in axes if a.high is not None]
    return _Axis(max([a.jump for a in affine] or [a.jump for a in axes]),
                 min(a.first for a in affine) if affine else None,
                 max(a.last for a in affine) if affine else None,
                 min(lows) if lows else None, max(highs) if highs else None)


def _step(graph: Graph, node, fields: list[list[_Axis]], axis: int) -> _Axis:
    ins = [graph.nodes[i].shape for i in node.inputs]
    window = OPS[node.op].window(dict(node.attrs), ins, node.shape)
    seen = []
    for i, shape in zip(node.inputs, ins, strict=True):
        a, side = fields[i][axis], _sides(shape)[axis]
        everywhere = window == GLOBAL or (len(shape) == 3 and len(node.shape) != 3)
        if everywhere or (side == 1 < _sides(node.shape)[axis] and len(shape) == 3):
            # a global op, a flattened grid, or a 1-wide map broadcast: one fixed window
            low, high = a.fixed(side)
            seen.append(_Axis(a.jump * (side if everywhere else 1), None, None, low, high))
        else:
            seen.append(a)
    a = _merge(seen)
    if window == GLOBAL or a.first is None:
        return a
    k, s, d, p = window.kernel[axis], window.stride[axis], window.dilation[axis], window.pad[axis]
    return _Axis(a.jump * s, a.first - p * a.jump, a.last + ((k - 1) * d - p) * a.jump,
                 a.low, a.high)


def receptive_fields(graph: Graph) -> list[tuple[Pair, Pair]]:
    """(receptive field, jump) of every node, per axis: the side of the input window its
    central value sees, padding included, through every path (``r = r_in + (k - 1) * j_in``
    and ``j = j_in * s`` along a chain); a global op sees its input's whole grid, and a map
    broadcast into a wider one (a squeeze-excitation's weights) adds that fixed window to
    every position, not its jump.

    >>> import netdsl
    >>> text = "network t:\\n input 1x32x32\\n stack(conv3x3(1), 3) -> maxpool(2)"
    >>> g = netdsl.compile(netdsl.SpecText(text))
    >>> receptive_fields(g)[-1]
    ((8, 8), (2, 2))
    """
    fields: list[list[_Axis]] = []
    out: list[tuple[Pair, Pair]] = []
    for node in graph.nodes:
        if not node.inputs:
            fields.append([_Axis(1, 0, 0), _Axis(1, 0, 0)])
        else:
            fields.append([_step(graph, node, fields, axis) for axis in range(2)])
        q = central(node.shape)
        out.append((tuple(fields[-1][x].extent(q[x]) for x in range(2)),
                    tuple(fields[-1][x].jump for x in range(2))))
    return out


def _cuts(graph: Graph) -> list[bool]:
    """Whether each node lies on every path from the input to the output (no edge between
    two of the output's ancestors jumps over it): a squeeze-excitation's pooling does not."""
    needed = {graph.output}
    for node in reversed(graph.nodes):
        if node.id in needed:
            needed.update(node.inputs)
    far = [0] * len(graph.nodes)  # each node's last reader among the output's ancestors
    for node in graph.nodes:
        if node.id in needed:
            for i in node.inputs:
                far[i] = max(far[i], node.id)
    cut, reach = [], 0
    for node in graph.nodes:
        cut.append(node.id in needed and reach <= node.id)
        reach = max(reach, far[node.id])
    return cut


def feature_rf(graph: Graph, fields: list[tuple[Pair, Pair]] | None = None) -> Pair:
    """The receptive field of the features a classifier head sees: the input of the first
    global/adaptive pool or flatten that every path to the output goes through (VGG-16:
    pool5, 212; not a squeeze-excitation's pooling), else the output's."""
    fields = fields or receptive_fields(graph)
    cut = _cuts(graph)
    for node in graph.nodes:
        if cut[node.id] and OPS[node.op].ends_features:
            return fields[node.inputs[0]][0]
    return fields[graph.output][0]
