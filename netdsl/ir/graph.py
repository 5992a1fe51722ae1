"""The intermediate representation: a flat, immutable graph of layer nodes, free of torch.

A :class:`Graph` lists its nodes in a valid execution order (every input comes earlier), like
``torch.fx.Graph``. The closed set of opcodes is :data:`netdsl.ir.ops.OPS`; ``attrs`` holds an op's
canonical parameters. Every node keeps the span it was written at, the block calls it was
expanded from (``trace``), its hierarchical module name (``name``, ``None`` for the
functional ops concat/add/scale/input) and, once checked, its output ``shape``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import Source, Span
from .ops import OPS, REQUIRED, Shape, fmt_shape, normalize


def outputs_text(main: Shape | None, outputs: tuple) -> str:
    """``8x16x16``, or ``0: 8x16x16, pool: 8x4x4`` for several named outputs
    (``outputs``: ``((key, shape), ...)``, empty for one output)."""
    if not outputs:
        return fmt_shape(main)
    return ", ".join(f"{k}: {fmt_shape(s)}" for k, s in outputs)


def frozen(attrs: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(attrs))


@dataclass(frozen=True)
class Node:
    id: int
    op: str
    inputs: tuple[int, ...]
    attrs: Mapping[str, object]
    name: str | None
    span: Span | None
    trace: tuple[Span, ...] = ()
    shape: Shape | None = None
    # what the op's record emits: "module" (an nn.Module), "parameter" (a tensor of the
    # enclosing module) or "value" (functional). Fixed when the node is made (None: read from
    # the op table then), so a graph answers alike after a plugin op is unregistered.
    emits: str | None = None

    def __post_init__(self) -> None:
        if self.emits is None:
            object.__setattr__(self, "emits", emission(OPS[self.op]))

    @property
    def label(self) -> str:
        return self.name or f"%{self.id}"

    @property
    def is_module(self) -> bool:
        """Whether the node becomes an ``nn.Module`` (its record says so; it then has a name)."""
        return self.emits == "module" and self.name is not None

    @property
    def is_parameter(self) -> bool:
        """Whether the node is a learnable tensor of its enclosing module (a layer scale)."""
        return self.emits == "parameter" and self.name is not None


def emission(record) -> str:
    """What a node of ``record``'s op becomes in torch (see :attr:`Node.emits`)."""
    return "module" if record.is_module else "parameter" if record.is_named else "value"


@dataclass(frozen=True)
class BlockCall:
    """The block call a container (a module holding others) was expanded from: the block's
    name and its plain arguments, ``in_channels`` (what it was applied to) first. The
    ``.py`` export turns each block into a class; nothing else reads it."""

    path: str
    block: str
    args: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Graph:
    """One network, expanded. ``checked`` graphs have a shape on every node."""

    name: str
    nodes: tuple[Node, ...]
    output: int
    aux_outputs: tuple[int, ...] = ()
    init: tuple[str, tuple] = ("torch", ())
    params: Mapping[str, object] = field(default_factory=lambda: frozen({}))
    filename: str = "<string>"
    checked: bool = False
    # several named outputs (``output p2, p3``): (key, node) in order, returned as a dict;
    # empty for a network that returns one tensor, ``output``
    outputs: tuple[tuple[str, int], ...] = ()
    # the module path of the scope each node was written in ('' for the network's own), and
    # the block calls behind containers: what the .py export groups into classes (empty
    # for a graph read from JSON, which the export then groups by structure alone)
    scopes: tuple[str, ...] = ()
    calls: tuple[BlockCall, ...] = ()

    def kept(self) -> tuple[int, ...]:
        """Every node whose tensor the forward returns (main, named and auxiliary outputs)."""
        return (self.output, *(i for _, i in self.outputs), *self.aux_outputs)

    @property
    def input(self) -> Node:
        return self.nodes[0]

    @property
    def output_shape(self) -> Shape | None:
        return self.nodes[self.output].shape

    def output_text(self) -> str:
        """What the network returns, as summaries and pictures title it."""
        return outputs_text(self.output_shape,
                            tuple((k, self.nodes[i].shape) for k, i in self.outputs))

    def modules(self) -> list[Node]:
        """Nodes that become ``nn.Module``s, in spec order."""
        return [n for n in self.nodes if n.is_module]

    def named(self) -> list[Node]:
        """Nodes with a place in the module tree (modules and parameters), in spec order."""
        return [n for n in self.nodes if n.name is not None]

    def consumers(self) -> dict[int, list[int]]:
        readers: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                readers[i].append(n.id)
        return readers

    def __str__(self) -> str:
        return format_graph(self)


def _fmt_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return str(value[0])
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return str(value)


def format_attrs(node: Node) -> str:
    """The attributes that differ from the op's defaults, as the spec would write them."""
    op = OPS[node.op]
    shown = []
    for p in op.params:
        value = node.attrs.get(p.name)
        if p.default is not REQUIRED:
            default = p.default if p.default is None else normalize(p, p.default)
            if value == default or (p.name == "stride" and op.stride_is_implied(node.attrs)):
                continue
        shown.append(_fmt_value(value) if p.default is REQUIRED else
                     f"{p.name}={_fmt_value(value)}")
    if node.op == "input":
        shown.append(fmt_shape(node.attrs["shape"]))
    return ", ".join(shown)


def format_node(node: Node, filename: str = "") -> str:
    args = ", ".join(f"%{i}" for i in node.inputs)
    attrs = format_attrs(node)
    call = f"{node.op}({args}{', ' if args and attrs else ''}{attrs})"
    target = f"{node.name} = " if node.name else ""
    shape = fmt_shape(node.shape) if node.shape is not None else "?"
    where = ""
    if node.span:
        where = f"  @{node.span.line}:{node.span.column}"
        if node.span.source.filename != filename:
            where = f"  @{node.span.source.filename.rsplit('/', 1)[-1]}:{where[3:]}"
    return f"%{node.id:<4} {target}{call}  -> {shape}{where}"


def format_graph(graph: Graph) -> str:
    scheme, args = graph.init
    init = scheme + (f"({', '.join(map(str, args))})" if args else "")
    lines = [f"network {graph.name}  # {graph.filename}, init {init}"]
    lines += ["  " + format_node(n, graph.filename) for n in graph.nodes]
    outputs = [f"{k!r}: %{i}" for k, i in graph.outputs] or [f"%{graph.output}"]
    outputs += [f"%{a} (aux)" for a in graph.aux_outputs]
    lines.append("  return " + ", ".join(outputs))
    return "\n".join(lines)


def lint(graph: Graph) -> None:
    """Checks the structural invariants; raises ``ValueError`` naming the first bad node."""
    names: set[str] = set()
    for index, node in enumerate(graph.nodes):
        where = f"node %{node.id} ({node.op})"
        if node.id != index:
            raise ValueError(f"{where}: id does not match its position {index}")
        if node.op not in OPS:
            raise ValueError(f"{where}: unknown op")
        arity = OPS[node.op].arity
        if (arity >= 0 and len(node.inputs) != arity) or (arity < 0 and not node.inputs):
            raise ValueError(f"{where}: has {len(node.inputs)} inputs")
        if any(i >= node.id for i in node.inputs):
            raise ValueError(f"{where}: reads a later node")
        if OPS[node.op].is_named:
            if not node.name:
                raise ValueError(f"{where}: module without a name")
            if node.name in names:
                raise ValueError(f"{where}: two modules are named {node.name}")
            names.add(node.name)
        if graph.checked and node.shape is None:
            raise ValueError(f"{where}: checked graph node without a shape")
    clash = names & _containers(names)
    if clash:
        raise ValueError(f"module {min(clash)} also holds other modules")


def _containers(names: set[str]) -> set[str]:
    """Every proper prefix path of the names (``a`` and ``a.b`` of ``a.b.c``). A prefix
    already seen had its own prefixes added then: each name stops at the first one."""
    containers: set[str] = set()
    for name in names:
        end = name.rfind(".")
        while end >= 0 and name[:end] not in containers:
            containers.add(name[:end])
            end = name.rfind(".", 0, end)
    return containers


# --- JSON ----------------------------------------------------------------------------------

SCHEMA = "netdsl.ir.graph/2"  # /2 adds "outputs"; /1 documents still load


def _plain(value: object) -> object:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return repr(value)  # a block or another non-data parameter value: shown, not rebuilt


def _tuples(value: object) -> object:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _span_json(span: Span | None) -> list | None:
    if span is None:
        return None
    return [span.source.filename, span.line, span.column, span.end_line, span.end_column]


def _span_from(data: list | None, sources: dict) -> Span | None:
    if data is None:
        return None
    filename, *position = data
    source = sources.setdefault(filename, Source("", filename))
    return Span(source, *position)


def to_json(graph: Graph) -> dict:
    """The graph as JSON-ready data (``netdsl show --format json``); see :func:`from_json`."""
    return {
        "schema": SCHEMA, "name": graph.name, "filename": graph.filename,
        "checked": graph.checked, "init": [graph.init[0], list(graph.init[1])],
        "params": {k: _plain(v) for k, v in graph.params.items()},
        "output": graph.output, "aux_outputs": list(graph.aux_outputs),
        "outputs": [[k, i] for k, i in graph.outputs],
        "nodes": [{"id": n.id, "op": n.op, "inputs": list(n.inputs),
                   "attrs": {k: _plain(v) for k, v in n.attrs.items()}, "name": n.name,
                   "shape": _plain(n.shape), "span": _span_json(n.span),
                   "trace": [_span_json(s) for s in n.trace]} for n in graph.nodes],
    }


def from_json(data: dict) -> Graph:
    """Rebuilds a graph from :func:`to_json` data (source text is not stored: spans keep
    their file, line and column)."""
    if data.get("schema") not in (SCHEMA, "netdsl.ir.graph/1"):
        raise ValueError(f"not a netdsl IR document (schema {data.get('schema')!r}, "
                         f"expected {SCHEMA!r})")
    sources: dict[str, Source] = {}
    nodes = tuple(Node(n["id"], n["op"], tuple(n["inputs"]),
                       frozen({k: _tuples(v) for k, v in n["attrs"].items()}), n["name"],
                       _span_from(n["span"], sources),
                       tuple(_span_from(s, sources) for s in n["trace"]),
                       _tuples(n["shape"])) for n in data["nodes"])
    graph = Graph(data["name"], nodes, data["output"], tuple(data["aux_outputs"]),
                  (data["init"][0], tuple(data["init"][1])), frozen(data["params"]),
                  data["filename"], data["checked"],
                  tuple((k, i) for k, i in data.get("outputs", ())))
    lint(graph)
    return graph
