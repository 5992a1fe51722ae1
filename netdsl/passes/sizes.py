"""Which square input sizes a network takes, and where each other one fails (``netdsl check
--sizes``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .. import limits
from ..errors import SpecLimitError, SpecShapeError
from ..ir.graph import Graph, Node
from ..ir.ops import OPS, Shape, ShapeProblem
from .check import check


@dataclass(frozen=True)
class SizeResult:
    """One size of a sweep: ``node`` is the first node that fails (None when valid)."""

    size: int
    node: Node | None = None
    message: str = ""
    where: str = ""


def sweep(graph: Graph, sizes: Sequence[int]) -> list[SizeResult]:
    """Checks square inputs of each size; for each invalid one, the first node that fails and
    why. A fast shape pass (no IR rebuilt) decides; a failing size is re-checked with
    :func:`netdsl.passes.check.check` for its exact diagnostic.

    >>> import netdsl
    >>> g = netdsl.compile(netdsl.SpecText("network t:\\n input 3x8x8\\n conv(4, 5x5) -> maxpool(3x3)"))
    >>> [(r.size, r.node and r.node.op) for r in sweep(g, range(4, 8))]
    [(4, 'conv'), (5, 'maxpool'), (6, 'maxpool'), (7, None)]
    """

    count = limits.length(sizes)  # a range's length is known before any work
    if count > limits.MAX_SIZES:
        raise SpecLimitError(f"a sweep of {count:,} input sizes; at most "
                             f"{limits.MAX_SIZES:,} are checked at once", graph.input.span,
                             notes=("sweep a coarser range with a step: 32:4096:32",))
    if count * len(graph.nodes) > limits.MAX_SIZE_CHECKS:  # each size checks every layer
        raise SpecLimitError(f"a sweep of {count:,} input sizes over {len(graph.nodes):,} layers; "
                             f"at most {limits.MAX_SIZE_CHECKS:,} layer checks are done at once",
                             graph.input.span, notes=("sweep fewer sizes: 32:512:32",))
    channels = graph.input.attrs["shape"][0]
    out = []
    for size in sizes:
        failing = _first_failure(graph, (channels, size, size))
        if failing is None:
            out.append(SizeResult(size))
            continue
        try:
            check(graph, (channels, size, size))
            message, where = "fails", ""  # pragma: no cover - the two passes agree
        except SpecShapeError as error:
            message = error.message
            where = f"{error.filename}:{error.line}:{error.column}" if error.span else ""
        out.append(SizeResult(size, failing, message, where))
    return out


def _first_failure(graph: Graph, input_shape: Shape) -> Node | None:
    shapes: list[Shape] = []
    for node in graph.nodes:
        ins = [shapes[i] for i in node.inputs]
        try:
            shapes.append(input_shape if not node.inputs
                          else OPS[node.op].infer(dict(node.attrs), ins))
        except ShapeProblem:
            return node
    return None

