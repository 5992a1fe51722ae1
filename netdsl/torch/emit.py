"""Checked IR to PyTorch: generated Python source for an ``nn.Module``, then the module.

The emitted class registers its submodules in spec order under the spec's names (so a spec
can reproduce a reference ``state_dict``) and has a straight-line ``forward``: one statement
per node, no interpreter loop, which ``torch.compile(fullgraph=True)`` and
``torch.export`` trace as they would hand-written code. Intermediate values reuse variable
names as soon as their last reader has run, so eager inference frees memory as early as
torchvision's own forward does, and a value whose name is not reused is deleted after its
last reader. The same source, with imports, is the ``.py`` export.

Torch is imported by the package ``netdsl.torch`` (this module and its neighbours: layers,
init, export, optimisation, runtimes), by ``netdsl.importer`` (which reads torch models), and
lazily, inside the functions that run a module, by ``netdsl.api.build`` and the CLI's build
and bench commands; never by ``import netdsl`` nor the torch-free phases (docs/design.md).
"""

from __future__ import annotations

import linecache
import re

import torch
from torch import nn

from ..ir.dataflow import main_path, reader_counts, runs_in_place, value_holders
from ..ir.graph import Graph, Node
from ..ir.identifiers import identifier, plain
from ..ir.ops import OPS, TorchExpression
from .init import init_lines, initialise
from .layers import RUNTIME_CLASSES
from .source import RUNTIME, class_expression, literal


class Names:
    """Hands out variable names for the forward, reusing the names of dead values."""

    def __init__(self):
        self.free: list[str] = []
        self.count = 0

    def take(self, prefer: list[str]) -> str:
        for name in prefer:
            if name in self.free:
                self.free.remove(name)
                return name
        if self.free:
            return self.free.pop()
        self.count += 1
        return f"x{self.count}"


def docstring(graph: Graph, what: str) -> str:
    """A docstring naming the spec file, as an escaped literal (``repr``): a file or folder
    name is outside input and must never become code. Only the file's own name is kept, so a
    generated file does not carry the machine's folders."""
    spec = graph.filename.rsplit("/", 1)[-1]
    return repr(f"{graph.name}, {what} from {spec}.")


def class_name(graph: Graph) -> str:
    """The network's class: its name in CamelCase, never a keyword (a network ``none``) nor a
    name the generated file binds (``layer_norm2d`` would replace the runtime class)."""
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", graph.name))
    name = name if name[:1].isalpha() else f"Net{name}"
    return identifier(name, set(import_roots(graph)), fallback="Net")


def _containers(graph: Graph) -> dict[str, list[str]]:
    """Each module path (root is '') with its children's names, in registration order."""
    children: dict[str, list[str]] = {"": []}
    for node in graph.named():
        parts = node.name.split(".")
        for depth in range(len(parts)):
            parent, child = ".".join(parts[:depth]), parts[depth]
            children.setdefault(parent, [])
            if child not in children[parent]:
                children[parent].append(child)
    return children


def _sequences(graph: Graph, children: dict[str, list[str]]) -> set[str]:
    """The containers emitted as ``nn.Sequential`` (their children reached as ``m[i]``):
    children named exactly 0, 1, ..., n-1, all modules. A gap (left by an identity shortcut)
    or a parameter among them (``layer_scale``, which ``m[i]`` would not count) makes a plain
    ``nn.Module``; so does the root, the generated class itself."""
    parameters = {node.name for node in graph.named() if node.is_parameter}
    return {parent for parent, names in children.items()
            if parent and names == [str(i) for i in range(len(names))]
            and not any(f"{parent}.{name}" in parameters for name in names)}


def _refs(children: dict[str, list[str]], sequences: set[str]) -> dict[str, str]:
    """Python expressions that reach each module or parameter from ``self``: ``m[i]`` in a
    Sequential, ``m.name`` or ``getattr(m, 'name')`` elsewhere."""
    refs = {"": "self"}
    for parent, names in children.items():
        sequential = parent in sequences
        for name in names:
            path = f"{parent}.{name}" if parent else name
            if sequential:
                refs[path] = f"{refs[parent]}[{name}]"
            elif plain(name):
                refs[path] = f"{refs[parent]}.{name}"
            else:
                refs[path] = f"getattr({refs[parent]}, {name!r})"
    return refs


def _last_readers(graph: Graph, holder: list[int]) -> list[int]:
    """The position of each tensor's last reader (after the last node for an output)."""
    last = [n.id for n in graph.nodes]
    for node in graph.nodes:
        if holder[node.id] == node.id:
            for i in node.inputs:
                last[holder[i]] = node.id
    for kept in graph.kept():
        last[holder[kept]] = len(graph.nodes)
    return last


def _expression(node: Node, args: list[str], refs: dict[str, str]) -> str:
    if node.is_module:
        return f"{refs[node.name]}({args[0]})"
    if node.is_parameter:
        return OPS[node.op].torch.expr(args[0], refs[node.name])
    emission = OPS[node.op].torch
    assert isinstance(emission, TorchExpression), node.op
    return emission.expr(dict(node.attrs), args)


_RUNTIME = {c.__name__: c for c in RUNTIME_CLASSES}


def runtime_classes(graph: Graph) -> list[type]:
    """netdsl's own module classes the graph uses (LayerNorm2d, StochasticDepth)."""
    names = {OPS[n.op].torch.cls.rsplit(".", 1)[1] for n in graph.modules()
             if OPS[n.op].torch.module_path == RUNTIME}
    return [c for name, c in _RUNTIME.items() if name in names]


def parameter(graph: Graph, node: Node) -> str:
    """``nn.Parameter(torch.empty(...))`` for a parameter node; its value is set by
    ``reset_parameters`` like every other tensor."""
    emission = OPS[node.op].torch
    shape = emission.shape(dict(node.attrs), [graph.nodes[i].shape for i in node.inputs])
    return f"nn.Parameter(torch.empty({literal(tuple(shape))}))"


def import_lines(graph: Graph) -> list[str]:
    """``import my_plugin.layers`` for every plugin module the graph's layers come from."""
    paths = []
    for node in graph.modules():
        path = OPS[node.op].torch.module_path
        if path not in ("torch.nn", "torch", RUNTIME) and path not in paths:
            paths.append(path)
    return [f"import {path}" for path in paths]


def import_roots(graph: Graph) -> list[str]:
    """The names the generated file's plugin imports bind (``my_plugin`` for
    ``import my_plugin.layers``): no generated class or parameter may hide them."""
    return [line.split()[1].split(".")[0] for line in import_lines(graph)]


def constructor(graph: Graph, node: Node, inplace: bool) -> str:
    """``nn.Conv2d(3, 64, kernel_size=(7, 7), ...)`` for a module node, from its record."""
    emission = OPS[node.op].torch
    args, kwargs = emission.args(dict(node.attrs), [graph.nodes[i].shape for i in node.inputs],
                                 inplace)
    parts = [literal(a) for a in args] + [f"{k}={literal(v)}" for k, v in kwargs.items()]
    return f"{class_expression(emission.cls)}({', '.join(parts)})"


def python_source(graph: Graph) -> str:
    """The ``nn.Module`` for a checked graph, as standalone Python source (torch only)."""
    if not graph.checked:
        raise ValueError("python_source needs a checked graph (netdsl.compile gives one)")
    children = _containers(graph)
    sequences = _sequences(graph, children)
    refs = _refs(children, sequences)
    holder = value_holders(graph)
    readers = reader_counts(graph, holder)
    cls = class_name(graph)
    out = [f"class {cls}(nn.Module):",
           f"    {docstring(graph, 'generated by netdsl')}", "",
           "    def __init__(self):", "        super().__init__()"]
    made = {""}
    for node in graph.named():  # depth first, in spec order
        parts = node.name.split(".")
        for depth in range(1, len(parts) + 1):
            path, parent = ".".join(parts[:depth]), ".".join(parts[:depth - 1])
            if path in made:
                continue
            made.add(path)
            if path == node.name and node.is_parameter:
                out.append(f"        {refs[parent]}.register_parameter({parts[-1]!r}, "
                           f"{parameter(graph, node)})")
                continue
            if path == node.name:
                ctor = constructor(graph, node, runs_in_place(graph, node, holder, readers))
            else:
                ctor = "nn.Sequential()" if path in sequences else "nn.Module()"
            out.append(f"        {refs[parent]}.add_module({parts[depth - 1]!r}, {ctor})")
    init = init_lines(graph, refs)
    if init:
        out.append("        self.reset_parameters()")
        out += ["", "    def reset_parameters(self):",
                "        # as the reference implementation initialises this network",
                *("        " + line for line in init)]
    out += ["", "    def forward(self, x):", *_forward_lines(graph, refs, holder, readers)]
    return "\n".join(out) + "\n"


def _forward_lines(graph: Graph, refs: dict[str, str], holder: list[int],
                   readers: list[int], segments: tuple[tuple[int, int], ...] = ()) -> list[str]:
    main = main_path(graph)
    last = _last_readers(graph, holder)
    names = Names()
    var = {0: "x"}
    lines: list[str] = []
    in_training_block = False
    starts = {start + 1: (start, end) for start, end in segments}
    opened = None  # (segment, first line) of the recomputed unit being written
    for node in graph.nodes[1:]:
        if node.id in starts:
            opened = (starts[node.id], len(lines))
        if holder[node.id] != node.id:
            var[node.id] = var[holder[node.id]]
            continue
        aux_only = node.id not in main
        if aux_only != in_training_block:
            if aux_only:
                lines.append("        if self.training:")
            in_training_block = aux_only
        args = [var[i] for i in node.inputs]
        dead = sorted(var[i] for i in {holder[i] for i in node.inputs} if last[i] == node.id)
        names.free += dead
        target = names.take(args)
        var[node.id] = target
        indent = "            " if aux_only else "        "
        shape = "x".join(map(str, node.shape))
        emission = OPS[node.op].torch
        if isinstance(emission, TorchExpression) and emission.inplace_statement \
                and target == args[0] and runs_in_place(graph, node, holder, readers):
            # as torchvision's `out += identity`: no new tensor for the residual sum
            lines.append(f"{indent}{emission.inplace_statement(args)}  # {shape}")
        else:
            lines.append(f"{indent}{target} = {_expression(node, args, refs)}  # {shape}")
        lines += delete_lines(indent, dead, target)
        if opened is not None and opened[0][1] == node.id:
            _wrap_segment(graph, lines, opened, var)
            opened = None
    return without_final_deletes(lines) + return_lines(graph, var)


def delete_lines(indent: str, dead: list[str], target: str) -> list[str]:
    """``del`` of the variables whose value had its last reader in the statement just
    written, unless the statement reused the name: a value is freed at its last use, not
    when its name is next taken, as ``forward_peak`` counts it (tests/
    test_analysis_differential.py measures it)."""
    gone = [name for name in dead if name != target]
    return [f"{indent}del {', '.join(gone)}"] if gone else []


def without_final_deletes(lines: list[str]) -> list[str]:
    """The lines before ``return`` less their final ``del``: returning frees those too."""
    while lines and lines[-1].lstrip().startswith("del "):
        lines = lines[:-1]
    return lines


def return_lines(graph: Graph, var: dict[int, str]) -> list[str]:
    """The end of the network's forward, given each output's variable."""
    result = var[graph.output]
    lines = []
    if graph.outputs:  # several named outputs: a dict in their order, as torchvision's FPN
        result = "{" + ", ".join(f"{k!r}: {var[i]}" for k, i in graph.outputs) + "}"
    if graph.aux_outputs:
        # latest auxiliary output first, as torchvision's GoogLeNet and Inception-v3 return
        extra = ", ".join(var[a] for a in reversed(graph.aux_outputs))
        lines += ["        if self.training:", f"            return {result}, {extra}"]
    lines.append(f"        return {result}")
    return lines


_counter = 0


def _wrap_segment(graph: Graph, lines: list[str], opened, var: dict[int, str]) -> None:
    """Turns the lines of a recomputed unit into a nested function run by
    ``run_checkpointed``; one tensor enters it and one leaves (the plan cut it so), so its
    variables are its own. The batch norms inside are named for the recomputation."""
    (start, end), first = opened
    body = ["    " + line for line in lines[first:]]
    inside = tuple(n.name for n in graph.nodes[start + 1:end + 1] if n.is_module)
    del lines[first:]
    name = f"_unit{start}"
    lines += [f"        def {name}({var[start]}):", *body, f"            return {var[end]}",
              f"        {var[end]} = run_checkpointed(self, {name}, {var[start]}, "
              f"{literal(inside)})"]


def planned_class(graph: Graph, base: type[nn.Module], segments: tuple[tuple[int, int], ...],
                  run_checkpointed) -> type[nn.Module]:
    """A subclass of the generated ``base`` whose forward recomputes ``segments`` (node id
    ranges ``start + 1 .. end``, from netdsl.passes.memory) in backward, each through
    ``run_checkpointed(self, unit, x, module_names)`` (netdsl.torch.memory)."""
    global _counter
    _counter += 1
    children = _containers(graph)
    refs = _refs(children, _sequences(graph, children))
    holder = value_holders(graph)
    lines = _forward_lines(graph, refs, holder, reader_counts(graph, holder), segments)
    source = "def forward(self, x):\n" + "\n".join(line[4:] for line in lines) + "\n"
    filename = f"<netdsl:{graph.name}:planned:{_counter}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, object] = {"torch": torch, "nn": nn, "run_checkpointed": run_checkpointed,
                                    "__name__": "netdsl.generated"}
    # our own generated code, as module_class's: only literals and validated names
    exec(compile(source, filename, "exec"), namespace)
    return type(base.__name__, (base,), {"forward": namespace["forward"],
                                         "__module__": base.__module__})



def module_class(graph: Graph) -> type[nn.Module]:
    """Compiles the generated source into a class (registered with linecache, so tracebacks,
    ``inspect`` and ``torch.compile`` see real source lines)."""
    global _counter
    _counter += 1
    source = "\n".join([*import_lines(graph), python_source(graph)])
    filename = f"<netdsl:{graph.name}:{_counter}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, object] = {"torch": torch, "nn": nn, "__name__": "netdsl.generated",
                                    **_RUNTIME}
    # our own generated code: spec values reach it only through literal() and validated names
    exec(compile(source, filename, "exec"), namespace)
    return namespace[class_name(graph)]  # type: ignore[return-value]


def build_module(graph: Graph) -> nn.Module:
    """The module, its weights drawn once from the same distributions as the reference.

    It is constructed on the meta device (no memory, no random numbers), then each tensor is
    initialised once: calling the class directly, like torchvision's constructors, draws
    every convolution's weights twice (PyTorch's default, then the network's scheme), which
    is most of the time a large network takes to build.
    """
    cls = module_class(graph)
    scheme = cls.__dict__.get("reset_parameters")
    if scheme is not None:
        # the scheme's draws on meta tensors set nothing and are slow (every one goes
        # through torch's Python reference ops): a third of ResNet-152's build time
        cls.reset_parameters = lambda self: None
    try:
        with torch.device("meta"):
            module = cls()
    finally:
        if scheme is not None:
            cls.reset_parameters = scheme
    module.to_empty(device=torch.get_default_device())
    initialise(module, graph)
    module.netdsl_graph = graph  # what it was built from, for tools (plain attribute)
    return module
