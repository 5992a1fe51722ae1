"""Per-layer figures of a checked graph: parameters, MACs, activation memory, receptive field.

Everything is computed from the IR's shapes; no tensor is allocated and torch is never
imported, so ``netdsl summary`` on Inception-v4 takes milliseconds.

>>> import netdsl
>>> text = "network t:\\n input 64x56x56\\n stack(conv3x3(64) -> relu, 3)"
>>> s = summarize(netdsl.compile(netdsl.SpecText(text)))
>>> s.total_params, s.layers[-1].rf
(110784, (7, 7))

Conventions (printed by ``netdsl summary`` as well, see :data:`CONVENTIONS`):

- A MAC is one multiply-accumulate. Only convolutions, fully connected layers and projection
  shortcuts have MACs (``out_numel * in_channels/groups * kh * kw`` and ``in * out``); biases,
  batch norm, pooling and activations are not counted, as in ``torch.utils.flop_counter``,
  which reports 2 FLOPs per MAC.
- Activations are the values a forward pass writes, per image. The input counts, and every
  layer output counts once, except outputs that write no new memory: a ReLU (or ReLU6, leaky
  ReLU, SiLU) that netdsl emits in place, views (flatten, identity shortcuts) and dropout (the
  identity at inference). A flatten of a map that a crop or permute left strided copies it,
  and an adaptive pool to the size its input has writes a new map, as torch does: torchvision
  VGG-16 thus has 15,262,696 values, its 7x7 pool's 25,088 included (tests/test_analyse.py).
- Forward memory is the peak of values alive at once in inference, each freed after its
  last reader, as netdsl's generated forward does (it deletes each variable there), except
  the input, which the caller holds throughout, plus the partial results of ``a + b + c``.
  Forward + backward keeps every activation of the training-mode pass (auxiliary classifiers
  included) for the backward pass, plus a gradient of the same size: 2 x activations (the
  case-study rule of thumb, an upper bound).
- The receptive field is the side of the input window the central output value can see
  (position ``(H - 1) // 2, (W - 1) // 2``) through every path, padding included (so it may
  exceed the input); the jump is the distance in input pixels between neighbouring outputs
  (the effective stride). A global op (gap, fc) sees its whole input grid, and a map
  broadcast into a wider one (squeeze-excitation) adds that fixed window to every position.
  ``netdsl.passes.fields.input_window`` gives the exact input rows and columns that value
  depends on, clipped to the input (tests/test_analysis_differential.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod

from ..ir.dataflow import main_path, reader_counts, runs_in_place, value_holders
from ..ir.graph import Graph, Node, outputs_text
from ..ir.identifiers import numbered
from ..ir.ops import OPS, Shape
from ..ir.record import Strides
from .fields import Pair, feature_rf, receptive_fields  # noqa: F401 - part of this API
from .layout import written

CONVENTIONS = (
    "a MAC is one multiply-accumulate (conv, fc and projection shortcuts; torch's "
    "FlopCounterMode counts 2 FLOPs per MAC)",
    "activations: the input and every layer output count once, except in-place ReLUs, views "
    "(flatten, identity shortcuts) and dropout",
    "forward: peak of values alive at once in inference (the input throughout); "
    "forward+backward: every training-mode activation kept, plus its gradient (2x)",
    "receptive field: the central value's window through every path, padding included; "
    "jump: effective stride in input pixels",
)

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(frozen=True)
class Layer:
    """One row of a summary: a node, or a block of ``count`` nodes collapsed by ``depth``."""

    id: int  # the node whose output the row reports (a block's last node)
    name: str  # hierarchical name; functional nodes are named ``scope.op`` (``layer1.0.add``)
    op: str  # the node's op, or "block"
    shape: Shape
    params: int
    macs: int
    activations: int  # values per image this row writes (0: in place or a view)
    rf: Pair  # receptive field (height, width) in input pixels
    jump: Pair  # effective stride (height, width)
    aux: bool = False  # only on an auxiliary classifier's path (training mode)
    module: bool = True  # an nn.Module (False for input, concat, add, scale)
    count: int = 1


@dataclass(frozen=True)
class Summary:
    """The figures of one network for a batch size and dtype."""

    network: str
    input: Shape
    output: Shape
    layers: tuple[Layer, ...]
    depth: int  # weight layers (conv, fc, projection) on the longest path to the output
    feature_rf: Pair  # receptive field of the last feature map before global pooling/flatten
    forward_peak: int  # values alive at once at the peak of an inference pass, per image
    batch: int = 1
    dtype: str = "float32"
    op_totals: tuple = ()  # ((op, ((figure, sum), ...)), ...), from the uncollapsed rows
    outputs: tuple = ()  # ((key, shape), ...) of a network with several named outputs
    # the activation checkpointing plan for a memory budget (netdsl.passes.memory.MemoryPlan),
    # when one was asked for (netdsl.summary(memory_budget=), netdsl summary --memory-budget)
    memory_plan: object = None

    def output_text(self) -> str:
        """``8x16x16``, or ``0: 8x16x16, pool: 8x4x4`` for several named outputs."""
        return outputs_text(self.output, self.outputs)

    @property
    def bytes_per_value(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_activations(self) -> int:
        return sum(layer.activations for layer in self.layers)

    def inference(self) -> dict[str, int]:
        """Totals without the auxiliary classifiers (inactive at inference)."""
        main = [layer for layer in self.layers if not layer.aux]
        return {"params": sum(x.params for x in main), "macs": sum(x.macs for x in main),
                "activations": sum(x.activations for x in main)}

    def forward_bytes(self) -> int:
        return self.forward_peak * self.batch * self.bytes_per_value

    def training_bytes(self) -> int:
        return 2 * self.total_activations * self.batch * self.bytes_per_value

    def by_op(self) -> dict[str, dict[str, int]]:
        """Params, MACs and activations summed per op, over every node even when rows are
        collapsed (VGG-16: 89.4% of the parameters in fc)."""
        return {op: dict(figures) for op, figures in self.op_totals}

    def to_json(self) -> dict:
        """The ``netdsl summary --format json`` object (docs/design.md's keys, and more)."""
        per = self.batch * self.bytes_per_value
        layers = [{"name": x.name, "op": x.op, "shape": list(x.shape), "params": x.params,
                   "macs": x.macs, "activations": x.activations, "bytes": x.activations * per,
                   "receptive_field": list(x.rf), "jump": list(x.jump), "aux": x.aux,
                   "layers": x.count} for x in self.layers]
        return {
            "network": self.network, "input": list(self.input), "output": list(self.output),
            "outputs": {k: list(s) for k, s in self.outputs},
            "batch": self.batch, "dtype": self.dtype, "layers": layers,
            "total": {"params": self.total_params, "macs": self.total_macs,
                      "activations": self.total_activations, "depth": self.depth,
                      "receptive_field": list(self.feature_rf)},
            "inference": self.inference(),
            "memory": {"forward_bytes": self.forward_bytes(),
                       "forward_backward_bytes": self.training_bytes()},
            "by_op": self.by_op(),
            "conventions": list(CONVENTIONS),
            **({"memory_plan": self.memory_plan.to_json()}  # type: ignore[attr-defined]
               if self.memory_plan is not None else {}),
        }


def summarize(graph: Graph, batch: int = 1, dtype: str = "float32",
              depth: int | None = None) -> Summary:
    """The per-layer figures of a checked graph; ``depth`` collapses blocks below it.

    >>> import netdsl
    >>> s = summarize(netdsl.compile(netdsl.SpecText("network t:\\n input 3x32x32\\n conv(8, 3x3) -> relu")))
    >>> [(x.name, x.params, x.macs, x.activations) for x in s.layers]
    [('input', 0, 0, 3072), ('0', 224, 194400, 7200), ('1', 0, 0, 0)]
    """
    if not graph.checked:
        raise ValueError("summarize needs a checked graph (netdsl.compile gives one)")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    names = row_names(graph)
    fields = receptive_fields(graph)
    counts = activation_counts(graph)
    aux = aux_only(graph)
    layers = []
    for node in graph.nodes:
        ins = [graph.nodes[i].shape for i in node.inputs]
        op = OPS[node.op]
        layers.append(Layer(node.id, names[node.id], node.op, node.shape,
                            op.count_params(dict(node.attrs), ins),
                            op.macs(dict(node.attrs), ins, node.shape), counts[node.id],
                            *fields[node.id], aux=node.id in aux, module=node.is_module))
    rows = tuple(layers) if depth is None else collapse(graph, layers, depth)
    return Summary(graph.name, graph.input.shape, graph.output_shape, rows, weight_depth(graph),
                   feature_rf(graph, fields), forward_peak(graph, counts), batch, dtype,
                   _op_totals(layers),
                   tuple((k, graph.nodes[i].shape) for k, i in graph.outputs))


def node_params(graph: Graph) -> list[int]:
    """Each node's learnable values, from its op record alone: no receptive fields, names or
    activations, so ``netdsl.build``'s budget check costs one pass over the nodes."""
    return [OPS[n.op].count_params(dict(n.attrs), [graph.nodes[i].shape for i in n.inputs])
            for n in graph.nodes]


def _op_totals(layers: list[Layer]) -> tuple:
    out: dict[str, dict[str, int]] = {}
    for layer in layers:
        row = out.setdefault(layer.op, {"params": 0, "macs": 0, "activations": 0})
        row["params"] += layer.params
        row["macs"] += layer.macs
        row["activations"] += layer.activations
    return tuple((op, tuple(figures.items())) for op, figures in out.items())


# --- names and scopes ----------------------------------------------------------------------

def _parent(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def containers(graph: Graph) -> list[str]:
    """The block each node sits in: a named node's parent path; a functional node's is the
    scope it was written in (a residual ``add`` sits in its unit, ``layer1.0``, even when its
    shortcut is the unit's input; an inception ``concat`` in its module, ``inception3a``).
    A graph read from JSON keeps no scopes: there, the common prefix of its inputs' blocks."""
    out: list[str] = []
    written = len(graph.scopes) == len(graph.nodes)
    for node in graph.nodes:
        if node.name is not None:
            out.append(_parent(node.name))
        elif written or not node.inputs:
            out.append(graph.scopes[node.id] if written else "")
        else:
            paths = [out[i].split(".") if out[i] else [] for i in node.inputs]
            common = []
            for parts in zip(*paths, strict=False):
                if any(p != parts[0] for p in parts):
                    break
                common.append(parts[0])
            out.append(".".join(common))
    return out


def row_names(graph: Graph) -> list[str]:
    """Module names, ``input``, and ``block.op`` for functional nodes (``layer1.0.add``).
    Names are unique: a second functional node of one op in one block (or one whose name a
    module already has) is ``block.op#2``, ``#3``, ... in graph order."""
    scope = containers(graph)
    taken = {node.name for node in graph.nodes if node.name is not None}
    names = []
    for node in graph.nodes:
        if node.name is not None:
            names.append(node.name)
            continue
        base = f"{scope[node.id]}.{node.op}" if scope[node.id] else node.op
        names.append(numbered(base, taken, "#"))
    return names


def collapse(graph: Graph, layers: list[Layer], depth: int) -> tuple[Layer, ...]:
    """Merges the rows whose names share their first ``depth`` parts into one ``block`` row,
    which reports the block's last node (its output) and the sums of its figures.

    At depth 1, ResNet-50 becomes conv1, bn1, the stem relu, maxpool, layer1..4, avgpool, fc.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    groups: dict[object, list[Layer]] = {}
    for layer in layers:
        parts = layer.name.split(".")
        key = tuple(parts[:depth]) if len(parts) > depth else ("#", layer.id)
        groups.setdefault(key, []).append(layer)
    rows = []
    for key, members in groups.items():
        if len(members) == 1 and members[0].count == 1:
            rows.append(members[0])
            continue
        last = members[-1]
        ops = {m.op for m in members}
        rows.append(replace(last, name=".".join(key), op=ops.pop() if len(ops) == 1 else "block",
                            params=sum(m.params for m in members),
                            macs=sum(m.macs for m in members),
                            activations=sum(m.activations for m in members),
                            aux=all(m.aux for m in members), count=len(members)))
    return tuple(sorted(rows, key=lambda r: r.id))


# --- activations ---------------------------------------------------------------------------

def inplace_nodes(graph: Graph) -> set[int]:
    """The nodes netdsl emits in place (ReLUs, residual sums): they write no new values."""
    holder = value_holders(graph)
    readers = reader_counts(graph, holder)
    return {n.id for n in graph.nodes if runs_in_place(graph, n, holder, readers)}


def activation_counts(graph: Graph) -> list[int]:
    """Values each node writes per image (see the module docstring for the convention).

    >>> import netdsl
    >>> g = netdsl.compile(netdsl.SpecText("network t:\\n input 3x8x8\\n conv(4, 3x3) -> relu -> flatten"))
    >>> activation_counts(g)
    [192, 144, 0, 0]
    """
    inplace = inplace_nodes(graph)
    counts: list[int] = []
    layouts: list[Strides] = []  # each value's strides, as torch lays it out
    for node in graph.nodes:
        writes, layout = written(graph, node, node.id in inplace, layouts)
        counts.append(prod(node.shape) if writes else 0)
        layouts.append(layout)
    return counts


def aux_only(graph: Graph) -> set[int]:
    """Nodes that only auxiliary classifiers read (run in training mode only)."""
    needed = main_path(graph)
    return {n.id for n in graph.nodes if n.id not in needed}


def _temporaries(graph: Graph, node: Node, counts: list[int]) -> int:
    """Values a node's expression allocates and frees while it runs (``a + b + c``'s partial
    sum), for one that writes a new tensor."""
    measure = OPS[node.op].temporaries
    if measure is None or not counts[node.id]:
        return 0
    return measure([graph.nodes[i].shape for i in node.inputs])


def forward_peak(graph: Graph, counts: list[int]) -> int:
    """The most values alive at once in an inference pass (auxiliary heads skipped), each
    storage freed after the last reader of any node sharing it (in-place ops and views share
    their input's storage; the emitted forward deletes a variable at its last reader), and
    counting the partial results an expression makes while it runs."""
    skip = aux_only(graph)
    storage: list[int] = []
    for node in graph.nodes:
        shares = counts[node.id] == 0 and node.inputs
        storage.append(storage[node.inputs[0]] if shares else node.id)
    last = {}
    for node in graph.nodes:
        if node.id not in skip:
            for i in node.inputs:
                last[storage[i]] = node.id
    # the outputs outlive the pass (an auxiliary one on the main path too: its variable
    # waits for the training-mode return), and so does the input: the caller holds it (a
    # forward cannot free its argument; tests/test_analysis_differential.py measures it alive)
    for kept in (0, *graph.kept()):
        if kept not in skip:
            last[storage[kept]] = len(graph.nodes)
    alive, peak = {}, 0
    for node in graph.nodes:
        if node.id in skip:
            continue
        if storage[node.id] == node.id:
            alive[node.id] = counts[node.id]
        peak = max(peak, sum(alive.values()) + _temporaries(graph, node, counts))
        for s in [s for s in alive if last.get(s, -1) <= node.id]:
            del alive[s]
    return peak


def weight_depth(graph: Graph) -> int:
    """Weight layers (conv, fc, projection) on the longest path to the output: VGG-16 16,
    ResNet-50 50, GoogLeNet 22 (the papers' counts)."""
    depth: list[int] = []
    for node in graph.nodes:
        before = max((depth[i] for i in node.inputs), default=0)
        depth.append(before + OPS[node.op].weight_layer)
    return max(depth[i] for i in (graph.output, *(i for _, i in graph.outputs)))
