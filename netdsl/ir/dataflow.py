"""Dataflow facts that emission and analysis share: who reads each tensor, which nodes only
auxiliary heads need, and which ops may overwrite their input (from the op records)."""

from __future__ import annotations

from .graph import Graph, Node
from .ops import OPS, TorchExpression


def value_holders(graph: Graph) -> list[int]:
    """The node whose tensor each node's value is. Every node holds its own today (no op
    aliases its input), but emission and analysis ask, so an aliasing op needs one change."""
    return [node.id for node in graph.nodes]


def reader_counts(graph: Graph, holder: list[int]) -> list[int]:
    """How many nodes read each tensor; the network's outputs count as a reader."""
    readers = [0] * len(graph.nodes)
    for node in graph.nodes:
        if holder[node.id] == node.id:
            for i in node.inputs:
                readers[holder[i]] += 1
    for kept in graph.kept():
        readers[holder[kept]] += 1
    return readers


def main_path(graph: Graph) -> set[int]:
    """The nodes the main output needs; the others feed auxiliary outputs only."""
    needed, stack = set(), [graph.output, *(i for _, i in graph.outputs)]
    while stack:
        i = stack.pop()
        if i not in needed:
            needed.add(i)
            stack.extend(graph.nodes[i].inputs)
    return needed


def runs_in_place(graph: Graph, node: Node, holder: list[int], readers: list[int]) -> bool:
    """Whether ``node`` may overwrite its (first) input: its record allows it (a ReLU, or a
    two-way sum like torchvision's ``out += identity``), nothing else reads that input, and
    autograd does not keep it (a sigmoid's output, the caller's input)."""
    record = OPS[node.op]
    if not record.inplace or (record.arity != 1 and len(node.inputs) != 2):
        return False
    source = graph.nodes[holder[node.inputs[0]]]
    while True:  # through views: writing into one writes into the tensor it views
        if OPS[source.op].backward_needs_output or readers[source.id] != 1:
            return False
        if not may_alias(graph, source):
            return True
        source = graph.nodes[holder[source.inputs[0]]]


def may_alias(graph: Graph, node: Node) -> bool:
    """Whether ``node``'s output may share memory with its first input, as torch runs it: a
    view (flatten, chunk, crop, dropout and stochastic depth at inference), or an inline
    expression of one input, which may return a view (``permute``; ``shuffle`` of 1 group)
    or the input itself (``add`` of one branch). A node that ran in place needs no walk: its
    own check made its storage exclusive."""
    if not node.inputs:
        return False
    record = OPS[node.op]
    ins = [graph.nodes[i].shape for i in node.inputs]
    return record.writes_nothing(dict(node.attrs), ins, node.shape) or (
        len(node.inputs) == 1 and isinstance(record.torch, TorchExpression))
