"""The module tree of a checked graph as the ``.py`` export writes it: which containers a
forward can call as a whole, which are chains (``nn.Sequential``), and the steps of each
container's own ``forward``.

A container (a module path holding others) is *callable* when its nodes read one tensor from
outside and only its last node is read from outside: then it is a module with its own
``forward(x)``, a class or an ``nn.Sequential``. Otherwise (a U-Net level reading a skip
tensor by name, an auxiliary head inside) it is a plain ``nn.Module`` holding its children,
and the forward of the nearest callable container above runs its nodes itself, as the flat
writer does for every node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.dataflow import main_path, value_holders
from ..ir.graph import BlockCall, Graph

ROOT = ""


@dataclass
class Container:
    path: str
    children: list[str] = field(default_factory=list)  # in registration order
    nodes: list[int] = field(default_factory=list)  # every node below it, in graph order
    input: int | None = None  # the one tensor it reads from outside, when callable
    output: int | None = None  # its last node, the only one read from outside
    kind: str = "struct"  # root, struct (nn.Module), seq (inline nn.Sequential), class
    call: BlockCall | None = None  # the block call it expands, if any
    height: int = 0  # 1 + the height of its tallest child container

    @property
    def numbered(self) -> bool:
        """Children named 0, 1, ..., n-1: an ``nn.Sequential(a, b, ...)`` expression."""
        return self.children == [str(i) for i in range(len(self.children))]


@dataclass(frozen=True)
class Step:
    """One statement of a container's forward: a node of its own, or a call of a child
    container (``unit`` is its path) that stands for all of that container's nodes."""

    node: int  # the node whose value the statement computes
    inputs: tuple[int, ...]
    unit: str | None = None


def parent_of(path: str) -> str:
    return path.rpartition(".")[0]


def _owner(graph: Graph, index: int) -> str:
    """The container a node belongs to: a module's parent; a functional node's scope."""
    node = graph.nodes[index]
    if node.name is not None:
        return parent_of(node.name)
    return graph.scopes[index] if index < len(graph.scopes) else ROOT


def _inside(path: str, container: str) -> bool:
    return container == ROOT or path == container or path.startswith(container + ".")


class Tree:
    """Containers, ownership and steps of one graph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.holder = value_holders(graph)
        self.main = main_path(graph)
        self.leaves = {n.name: n.id for n in graph.named()}
        self.containers: dict[str, Container] = {ROOT: Container(ROOT, kind="root")}
        for node in graph.named():
            parts = node.name.split(".")
            for depth in range(len(parts)):
                parent = ".".join(parts[:depth])
                box = self.containers.setdefault(parent, Container(parent))
                if parts[depth] not in box.children:
                    box.children.append(parts[depth])
        self.owner = [self._known(_owner(graph, n.id)) for n in graph.nodes]
        for node in graph.nodes[1:]:
            path = self.owner[node.id]
            for box in self.containers.values():
                if _inside(path, box.path):
                    box.nodes.append(node.id)
        for call in graph.calls:
            if call.path in self.containers:
                self.containers[call.path].call = call
        self._kinds()

    def _known(self, path: str) -> str:
        """The nearest container at or above ``path`` (a scope that holds only functional
        nodes is no module of its own)."""
        while path and path not in self.containers:
            path = parent_of(path)
        return path

    def _kinds(self) -> None:
        deepest_first = sorted(self.containers.values(), key=lambda b: -b.path.count("."))
        for box in deepest_first:
            kids = [self.containers[self.child(box, c)] for c in box.children
                    if self.child(box, c) in self.containers]
            box.height = 1 + max((k.height for k in kids), default=0)
            if box.kind == "root" or not self._callable(box):
                continue
            # a chain is an nn.Sequential; a block's chain of layers (U-Net's double
            # convolution) its own Sequential class, a chain of blocks (a ResNet stage) not
            chain = self.is_chain(box)
            leaves = all(self.child(box, c) in self.leaves for c in box.children)
            box.kind = "class" if not chain or (box.call is not None and leaves) else "seq"

    def child(self, box: Container, name: str) -> str:
        return f"{box.path}.{name}" if box.path else name

    def _callable(self, box: Container) -> bool:
        inside = set(box.nodes)
        if not inside:
            return False
        sources = {self.holder[i] for n in box.nodes for i in self.graph.nodes[n].inputs
                   if i not in inside}
        kept = set(self.graph.kept())
        read_outside = {i for n in self.graph.nodes if n.id not in inside
                        for i in n.inputs if i in inside} | (inside & kept)
        if len(sources) != 1 or len(read_outside) != 1:
            return False
        output = read_outside.pop()
        if output in self.graph.aux_outputs or len({n in self.main for n in inside}) > 1:
            return False
        needed, stack = set(), [output]
        while stack:  # every node of it feeds its output: nothing is left dangling
            i = stack.pop()
            if i in inside and i not in needed:
                needed.add(i)
                stack.extend(self.graph.nodes[i].inputs)
        if needed != inside:
            return False
        box.input, box.output = sources.pop(), output
        return True

    def unit_of(self, box: Container, index: int) -> str | None:
        """The called container directly below ``box`` that runs node ``index`` (None when
        ``box``'s own forward runs it)."""
        path = self.owner[index]
        if not _inside(path, box.path) or path == box.path:
            return None
        rest = path[len(box.path) + 1:] if box.path else path
        parts = rest.split(".")
        for depth in range(1, len(parts) + 1):
            candidate = self.child(box, ".".join(parts[:depth]))
            if self.containers[candidate].kind in ("seq", "class"):
                return candidate
        return None

    def steps(self, box: Container) -> list[Step]:
        out = []
        for index in box.nodes:
            unit = self.unit_of(box, index)
            if unit is None:
                out.append(Step(index, self.graph.nodes[index].inputs))
            elif index == self.containers[unit].output:
                out.append(Step(index, (self.containers[unit].input,), unit))
        return out

    def is_chain(self, box: Container) -> bool:
        """Whether ``box``'s forward applies its children one after another and nothing
        else: it is then an ``nn.Sequential``."""
        steps = self.steps(box)
        if len(steps) != len(box.children):
            return False
        previous = box.input
        for step, name in zip(steps, box.children, strict=True):
            path = self.child(box, name)
            node = self.graph.nodes[step.node]
            own = step.unit == path or (step.unit is None and node.name == path
                                        and node.is_module)
            if not own or step.inputs != (previous,):
                return False
            previous = step.node
        return previous == box.output
