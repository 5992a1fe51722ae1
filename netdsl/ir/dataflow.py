"""Dataflow facts that emission and analysis share: who reads each tensor, which nodes only
auxiliary heads need, and which ops may overwrite their input (from the op records)."""

from __future__ import annotations

from .graph import Graph, Node
from .ops import OPS


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
    for kept in (graph.output, *graph.aux_outputs):
        readers[holder[kept]] += 1
    return readers


def main_path(graph: Graph) -> set[int]:
    """The nodes the main output needs; the others feed auxiliary outputs only."""
    needed, stack = set(), [graph.output]
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
    return not OPS[source.op].backward_needs_output and readers[source.id] == 1
