"""Tracing: a PyTorch module to a flat list of netdsl-level items with torch.fx.

Each item is one netdsl op (a layer, a concat, an add) with its attributes, its inputs, the
qualified names of the modules it sits in, and its output shape (from one forward pass on
zeros). Anything that has no netdsl op raises :class:`ModuleImportError` naming the module
and the fx node, pointing into the traced code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import ModuleImportError, Source, Span
from ..ir.layers.tensor import ADD as SUM
from ..ir.layers.tensor import CONCAT, INPUT, SCALE
from . import ops_map
from .ops_map import Unsupported


@dataclass
class Item:
    id: int
    op: str
    attrs: dict
    inputs: list[int]
    path: tuple[str, ...]  # qualified names of the enclosing (non-leaf) modules, outermost first
    name: str | None = None  # the leaf module's qualified name
    stateful: bool = False  # has parameters or buffers (so its name reaches the state_dict)
    shape: tuple[int, ...] = ()


@dataclass
class Traced:
    items: list[Item]
    output: int
    aux: list[int]  # auxiliary outputs, in the order the module returns them
    classes: dict[str, type] = field(default_factory=dict)  # scope qualname -> module class


def fx_kind(node: fx.Node) -> str:
    """What an fx node does (``call_module``, ``output``, ...): fx's ``op``, not a netdsl op."""
    return node.op


class _Tracer(fx.Tracer):
    """Keeps netdsl's layers whole (leaves) and remembers where tracing was when it failed."""

    def __init__(self):
        super().__init__()
        self.where = ""

    def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
        return ops_map.knows(type(m)) or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        outer, self.where = self.where, self.path_of_module(m)
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self.where = outer


def trace(module: torch.nn.Module, input_shape: tuple[int, ...]) -> Traced:
    """Traces in training mode (so auxiliary heads are part of the graph), then propagates
    shapes in eval mode (so batch norm statistics are left alone)."""
    training = module.training
    tracer = _Tracer()
    try:
        module.train()
        graph = tracer.trace(module)
    except Exception as error:  # fx's TraceError, or whatever the forward raised on a Proxy
        where = tracer.where or type(module).__name__
        raise ModuleImportError(
            f"cannot trace module '{where}': {str(error).splitlines()[0]}",
            notes=("data-dependent control flow (an if or a loop on tensor values) has no "
                   "netdsl form",)) from None
    finally:
        module.train(training)
    gm = fx.GraphModule(tracer.root, graph)
    try:
        module.eval()
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    except Exception as error:
        raise ModuleImportError(f"a forward pass on 1x{'x'.join(map(str, input_shape))} "
                                f"failed: {str(error).splitlines()[0]}") from None
    finally:
        module.train(training)
    return _Convert(gm).run()


class _Convert:
    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.items: list[Item] = []
        self.of: dict[fx.Node, int] = {}  # fx node -> item id (identities map to their input)
        self.classes: dict[str, type] = {}
        self.tuples: dict[fx.Node, tuple] = {}  # namedtuple outputs (GoogLeNetOutputs)
        self.source = Source(gm.code, f"<fx trace of {type(gm).__name__}>")

    def run(self) -> Traced:
        output = None
        for node in self.gm.graph.nodes:
            if fx_kind(node) == "output":
                output = node.args[0]
            else:
                self.node(node)
        if isinstance(output, fx.Node) and output in self.tuples:
            output = self.tuples[output]
        outs = list(output) if isinstance(output, tuple | list) else [output]
        ids = [self.value(o, o) for o in outs]
        return Traced(self.items, ids[0], ids[1:], self.classes)

    def fail(self, node: fx.Node, message: str, scope: str) -> ModuleImportError:
        """The error for ``node``, pointing at its line of the traced code."""
        lines = self.source.lines()
        pattern = re.compile(rf"\s*{re.escape(node.name)}\b.*=")
        number = next((i + 1 for i, text in enumerate(lines) if pattern.match(text)), None)
        span = None
        if number is not None:
            text = lines[number - 1]
            start = len(text) - len(text.lstrip()) + 1
            span = Span(self.source, number, start, number, len(text) + 1)
        cls = getattr(self.classes.get(scope), "__name__", "?")
        where = f"module '{scope}' ({cls})" if scope else "the top-level module"
        return ModuleImportError(f"{where}, fx node '{node.name}': {message}", span,
                                 notes=("a module class netdsl does not know is traced "
                                        "through; a plugin's op record makes it one layer",))

    def value(self, node: fx.Node, arg) -> int:
        if not isinstance(arg, fx.Node) or arg not in self.of:
            raise self.fail(node, "an output or input that is not a traced tensor", "")
        return self.of[arg]

    def scopes(self, node: fx.Node) -> tuple[str, ...]:
        stack = node.meta.get("nn_module_stack", {})
        for qualname, (_, cls) in stack.items():
            self.classes[qualname] = cls
        path = tuple(stack)
        return path[:-1] if fx_kind(node) == "call_module" else path

    def add(self, node: fx.Node, op: str, attrs: dict, inputs: list[int], **extra) -> None:
        meta = node.meta.get("tensor_meta")
        shape = tuple(meta.shape)[1:] if hasattr(meta, "shape") else ()
        item = Item(len(self.items), op, attrs, inputs, self.scopes(node), shape=shape, **extra)
        self.items.append(item)
        self.of[node] = item.id

    def node(self, node: fx.Node) -> None:
        if fx_kind(node) == "placeholder":
            if self.items:
                raise self.fail(node, "a second input (netdsl networks take one tensor)", "")
            return self.add(node, INPUT.name, {}, [])
        scope = self.scopes(node)
        where = node.target if fx_kind(node) == "call_module" else (scope[-1] if scope else "")
        try:
            if fx_kind(node) == "call_module":
                return self.module(node)
            if fx_kind(node) in ("call_function", "call_method"):
                return self.function(node)
            raise Unsupported(f"'{node.op}' nodes (reading {node.target!r})")
        except Unsupported as error:
            raise self.fail(node, str(error), where) from None

    def module(self, node: fx.Node) -> None:
        m = self.gm.get_submodule(node.target)
        read = ops_map.read_module(m)
        source = self.value(node, node.args[0])
        if read is None:  # nn.Identity: the value passes through
            self.of[node] = source
            return
        if isinstance(read, list) and len(read) > 1:  # several ops: the first carries the name
            (op, attrs), *rest = read
            self.add(node, op, attrs, [source], name=node.target, stateful=True)
            for op, attrs in rest:
                self.add(node, op, attrs, [self.of[node]])
            return
        op, attrs = read[0] if isinstance(read, list) else read
        # a stateless module keeps its name unless it is called more than once
        stateful = any(True for _ in m.parameters()) or any(True for _ in m.buffers()) or \
            sum(n.target == node.target for n in node.graph.nodes if fx_kind(n) == "call_module") == 1
        self.add(node, op, attrs, [source], name=node.target, stateful=stateful)

    def function(self, node: fx.Node) -> None:
        target = ops_map.method(node.target)
        if isinstance(target, type) and issubclass(target, tuple):
            self.tuples[node] = (*node.args, *node.kwargs.values())
            return
        if target in ops_map.CONCAT:
            tensors = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if dim not in (1, -3):
                raise Unsupported(f"concatenation along dim {dim} (netdsl joins channels)")
            inputs = [self.value(node, t) for t in tensors]
            if len(inputs) == 1:  # a cat of one tensor is that tensor (netdsl has no such merge)
                self.of[node] = inputs[0]
                return
            return self.add(node, CONCAT.name, {}, inputs)
        if target in ops_map.ADD:
            a, b = node.args[:2]
            if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)) or node.kwargs:
                raise Unsupported("adding a constant")
            return self.add(node, SUM.name, {}, [self.value(node, a), self.value(node, b)])
        if target in ops_map.MUL:
            a, b = node.args[:2]
            tensor, factor = (a, b) if isinstance(a, fx.Node) else (b, a)
            if not isinstance(factor, int | float) or isinstance(factor, bool):
                raise Unsupported("a product of two tensors")
            return self.add(node, SCALE.name, {"factor": float(factor)},
                            [self.value(node, tensor)])
        if target not in ops_map.FUNCTIONS or not node.args:
            name = target if isinstance(target, str) else getattr(target, "__name__", target)
            raise Unsupported(f"the function '{name}' has no netdsl op")
        if any(isinstance(a, fx.Node) for a in node.args[1:]):
            raise Unsupported("a tensor-valued argument")
        op, attrs = ops_map.read_function(target, node.args[1:], node.kwargs)
        self.add(node, op, attrs, [self.value(node, node.args[0])])
