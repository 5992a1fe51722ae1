"""The ``.py`` export: a checked graph as PyTorch a person would write.

One ``nn.Module`` class per block (its constructor takes the block's parameters, as the spec
names them, that its layers need), stages as ``nn.Sequential`` with loops for repeated units,
and a ``forward`` per class; the module names, so the ``state_dict`` keys, are exactly
``netdsl.build``'s (:mod:`netdsl.torch.blocks` decides the tree, :mod:`netdsl.torch.template`
the constructors). Containers a forward cannot call as a whole are plain ``nn.Module``s
whose layers the enclosing forward runs, as the flat writer (:mod:`netdsl.torch.emit`) does.

Every value reaches the source through :func:`netdsl.torch.source.literal` and every name is
a validated identifier or a ``repr`` literal (``getattr(self, '2')``, ``add_module``).
"""

from __future__ import annotations

import inspect
import re

import torch
from torch import nn

from ..ir.dataflow import reader_counts, runs_in_place
from ..ir.graph import Graph, Node
from ..ir.identifiers import MODULE_ATTRIBUTES, identifier, numbered, plain
from ..ir.ops import OPS
from . import emit
from .blocks import ROOT, Container, Tree
from .forward import forward_lines
from .init import init_lines
from .layers import RUNTIME_CLASSES
from .source import RUNTIME, class_expression
from .template import (
    INPUT_CHANNELS,
    MISSING,
    PAIRS,
    Call,
    Instance,
    Run,
    Slot,
    expand,
    is_default,
    key,
    render,
    resolve,
    slot_literal,
    slots,
)

_RUNTIME = {c.__name__: c for c in RUNTIME_CLASSES}
_INDENT = "        "


def camel(name: str) -> str:
    """``bottleneck`` -> ``Bottleneck``, ``dense_layer`` -> ``DenseLayer`` ('' if no
    identifier comes of it)."""
    out = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", name))
    return out if plain(out) and out.isascii() else ""


def _defaults(cls: str) -> dict[str, object]:
    """The parameters of a torch.nn or netdsl class, with their defaults (``MISSING`` for
    none; a keyword is left out where a call keeps its default); none for a plugin's class,
    which is not imported here."""
    found = None
    if cls.startswith("torch.nn.") and cls.count(".") == 2:
        found = getattr(nn, cls.rsplit(".", 1)[1], None)
    elif cls.rsplit(".", 1)[0] == RUNTIME:
        found = _RUNTIME.get(cls.rsplit(".", 1)[1])
    if found is None:
        return {}
    try:
        params = inspect.signature(found).parameters
    except (TypeError, ValueError):
        return {}
    empty = inspect.Parameter.empty
    return {k: MISSING if p.default is empty else p.default for k, p in params.items()}


class Group:
    """Containers written as one class."""

    def __init__(self, base: str, boxes: list[Container], sequential: bool):
        self.base, self.boxes, self.sequential = base, boxes, sequential
        self.name = base
        self.sig = None


class Writer:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.tree = Tree(graph)
        self.holder = self.tree.holder
        self.readers = reader_counts(graph, self.holder)
        self.templates: dict[str, list] = {}
        self.forwards: dict[str, list[str]] = {}
        self.group_of: dict[str, Group] = {}
        self.args: dict[str, list[tuple[str, object, bool]]] = {}
        self.prints: dict[str, object] = {}
        self.groups: list[Group] = []
        self.renamed: dict[str, dict[str, str]] = {}
        self.stateless: dict[str, bool] = {}

    # --- module tree ---------------------------------------------------------------------

    def _sequential(self, box: Container) -> bool:
        return box.numbered and (box.kind == "seq" or (
            box.kind == "class" and self.group_of.get(box.path) is not None
            and self.group_of[box.path].sequential))

    def attributes(self, box: Container) -> dict[str, str]:
        """Readable names for a container's unlabelled layers without tensors (a ReLU is
        ``self.relu``, not ``getattr(self, '2')``), one module for identical ones as
        torchvision shares its ReLU; the state_dict keys do not change."""
        if box.path in self.renamed:
            return self.renamed[box.path]
        mapping: dict[str, str] = {}
        self.renamed[box.path] = mapping
        if box.kind == "seq" or (box.kind == "class" and self.tree.is_chain(box)):
            return mapping
        taken = set(box.children) | MODULE_ATTRIBUTES
        shared: dict[object, str] = {}
        for name in box.children:
            path = self.tree.child(box, name)
            node = self.graph.nodes[self.tree.leaves[path]] if path in self.tree.leaves else None
            if not name.isdigit() or node is None or not node.is_module \
                    or not self._stateless(node):
                continue
            mark = self.fingerprint(self.constructor(node))
            if mark not in shared:
                shared[mark] = numbered(node.op if plain(node.op) else "layer", taken)
            mapping[name] = shared[mark]
        return mapping

    def _stateless(self, node: Node) -> bool:
        """Whether the layer holds no tensor (built once, on the meta device, to see): only
        torch's and netdsl's own classes, a plugin's is left as it is."""
        call = self.constructor(node)
        text = render(call, [None if is_default(s, s.value) else slot_literal(s, s.value)
                             for s in slots(call)], str)
        if text not in self.stateless:
            namespace = {"nn": nn, "torch": torch, **_RUNTIME}
            if not (text.startswith("nn.") or text.split("(")[0] in _RUNTIME):
                self.stateless[text] = False
            else:
                with torch.device("meta"):  # our own literal source: see source.literal
                    module = eval(text, namespace)  # noqa: S307
                self.stateless[text] = not module.state_dict()
        return self.stateless[text]

    def access(self, expr: str, box: Container, name: str) -> str:
        name = self.attributes(box).get(name, name)
        if self._sequential(box):
            return f"{expr}[{name}]"
        return f"{expr}.{name}" if plain(name) else f"getattr({expr}, {name!r})"

    def ref(self, box: Container, path: str) -> str:
        expr, current = "self", box
        rest = path[len(box.path) + 1:] if box.path else path
        for name in rest.split("."):
            expr = self.access(expr, current, name)
            current = self.tree.containers.get(self.tree.child(current, name), current)
        return expr

    def constructor(self, node: Node) -> Call:
        emission = OPS[node.op].torch
        inplace = runs_in_place(self.graph, node, self.holder, self.readers)
        args, kwargs = emission.args(dict(node.attrs),
                                     [self.graph.nodes[i].shape for i in node.inputs], inplace)
        defaults = _defaults(emission.cls)
        ours = emission.cls.startswith("torch.nn.") or emission.cls.startswith(RUNTIME)
        names = [k for k in defaults if k not in kwargs]
        items = [Slot(a, hint=names[i] if i < len(names) else None)
                 for i, a in enumerate(args)] + [
            Slot(v, kw=k, default=defaults.get(k, MISSING), pair=ours and k in PAIRS)
            for k, v in kwargs.items()]
        return Call(class_expression(emission.cls), items)

    def parameter(self, node: Node) -> Call:
        shape = OPS[node.op].torch.shape(dict(node.attrs),
                                         [self.graph.nodes[i].shape for i in node.inputs])
        return Call("nn.Parameter", [Call("torch.empty", [Slot(tuple(shape))])])

    def child_part(self, box: Container, name: str):
        """A child as one expression, or None where it needs statements."""
        path = self.tree.child(box, name)
        if path in self.tree.leaves:
            node = self.graph.nodes[self.tree.leaves[path]]
            return None if node.is_parameter else self.constructor(node)
        sub = self.tree.containers[path]
        if sub.kind == "class":
            return Instance(path)
        if sub.kind == "seq" and sub.numbered:
            items = [self.child_part(sub, c) for c in sub.children]
            if all(i is not None for i in items):
                return Call("nn.Sequential", self.runs(items), lines=True)
        return None

    def fingerprint(self, part: object) -> object:
        if isinstance(part, Instance):
            if part.path not in self.prints:
                template = self.templates[part.path]
                self.prints[part.path] = (id(self.group_of[part.path]),
                                          self.fingerprint(template))
            return self.prints[part.path]
        if isinstance(part, Slot):
            return ("S", repr(part.value))
        if isinstance(part, Call):
            return (key(part, self.group_of.get), tuple(self.fingerprint(i) for i in part.items))
        if isinstance(part, Run):
            return ("R", part.count, self.fingerprint(part.item))
        if isinstance(part, list):
            return tuple(self.fingerprint(p) for p in part)
        return part

    def runs(self, items: list) -> list:
        """Consecutive identical children as one ``*(x for _ in range(n))``."""
        out: list = []
        i = 0
        while i < len(items):
            j = i + 1
            mark = self.fingerprint(items[i])
            while j < len(items) and self.fingerprint(items[j]) == mark:
                j += 1
            out.append(items[i] if j - i == 1 else Run(j - i, items[i]))
            i = j
        return out

    def body(self, box: Container, pre: str = "self") -> list:
        lines: list = []
        attributes, made = self.attributes(box), set()
        for name in box.children:
            path = self.tree.child(box, name)
            part = self.child_part(box, name)
            if name in attributes:  # a shared, renamed layer: registered once
                if attributes[name] not in made:
                    made.add(attributes[name])
                    lines.append(self._assign(pre, attributes[name], part))
                continue
            if path in self.tree.leaves and part is None:  # a learnable tensor of the block
                node = self.graph.nodes[self.tree.leaves[path]]
                lines.append([f"{pre}.register_parameter({name!r}, ", self.parameter(node), ")"])
            elif part is not None:
                lines.append(self._assign(pre, name, part))
            else:
                sub = self.tree.containers[path]
                empty = "nn.Sequential()" if sub.kind == "seq" else "nn.Module()"
                lines.append(self._assign(pre, name, empty))
                lines += self.body(sub, self.access(pre, box, name))
        return lines

    @staticmethod
    def _assign(pre: str, name: str, part: object) -> list:
        if plain(name):
            return [f"{pre}.{name} = ", part]
        return [f"{pre}.add_module({name!r}, ", part, ")"]

    # --- classes -------------------------------------------------------------------------

    def build(self) -> None:
        boxes = sorted((b for b in self.tree.containers.values() if b.kind == "class"),
                       key=lambda b: (b.height, b.nodes[0]))
        found: dict[object, Group] = {}
        for box in boxes:
            sequential = self.tree.is_chain(box)
            if sequential and box.numbered:
                template = [[Call("super().__init__", self.runs(
                    [self.child_part(box, c) for c in box.children]), lines=True)]]
            else:
                template = [["super().__init__()"], *self.body(box)]
            self.templates[box.path] = template
            self.forwards[box.path] = [] if sequential else forward_lines(self, box)
            # a labelled container is named by its label less a number: inception3a's class
            # is Inception, shared with inception4b where their layers agree
            label = re.sub(r"[0-9]+[a-z]?$", "", box.path.rsplit(".", 1)[-1])
            base = camel(box.call.block) if box.call else camel(label)
            mark = (base, sequential, key(template, self.group_of.get),
                    tuple(self.forwards[box.path]))
            if mark not in found:
                found[mark] = Group(base or "Block", [], sequential)
                self.groups.append(found[mark])
            found[mark].boxes.append(box)
            self.group_of[box.path] = found[mark]
        # classes are named first: a constructor's arguments must not hide them
        self._name_classes()
        hidden = frozenset({*(g.name for g in self.groups), emit.class_name(self.graph),
                            *emit.import_roots(self.graph)})
        for group in self.groups:  # by height: a class's parts are resolved before it
            self._resolve(group, hidden)

    def _calls(self, box: Container) -> dict:
        if box.call is not None:
            return dict(box.call.args)
        return {INPUT_CHANNELS: self.graph.nodes[box.input].shape[0]}

    def _resolve(self, group: Group, hidden: frozenset[str]) -> None:
        expanded = [expand(self.templates[b.path], self.call_of) for b in group.boxes]
        holes = [slots(e) for e in expanded]
        calls = [self._calls(b) for b in group.boxes]
        group.sig = sig = resolve(holes, calls, hidden)
        for box, own, call in zip(group.boxes, holes, calls, strict=True):
            args = [(py, call[spec], False) for spec, py in sig.params.items()]
            args += [(py, own[i].value, own[i].pair) for i, py in sig.extras.items()]
            self.args[box.path] = args

    def call_of(self, path: str) -> Call:
        group, args = self.group_of[path], self.args[path]
        items = [Slot(v, kw=None if i < 2 or len(args) <= 2 else py, pair=pair, hint=py)
                 for i, (py, v, pair) in enumerate(args)]
        return Call(group, items)

    def _name_classes(self) -> None:
        taken = {"Model", emit.class_name(self.graph), *emit.import_roots(self.graph)}
        first: dict[str, Group] = {}
        # the plainest variant of a block (fewest children) takes the block's name
        for group in sorted(self.groups, key=lambda g: (len(g.boxes[0].children),
                                                         g.boxes[0].nodes[0])):
            name = group.base
            if name in first:  # a variant of a block: named by the children it adds
                known = set(first[name].boxes[0].children)
                extra = [c for c in group.boxes[0].children if c not in known]
                if known <= set(group.boxes[0].children):  # else numbered below
                    name = name + "".join(camel(c) for c in extra)
            first.setdefault(group.base, group)
            group.name = identifier(name, taken, fallback="Block")

    def class_source(self, group: Group) -> list[str]:
        box = group.boxes[0]
        template = expand(self.templates[box.path], self.call_of)
        params = ", ".join(["self", *group.sig.params.values(), *group.sig.extras.values()])
        base = "nn.Sequential" if group.sequential else "nn.Module"
        exprs = list(group.sig.exprs)
        out = [f"class {group.name}({base}):", f"    def __init__({params}):"]
        out += [_INDENT + render(line, exprs, lambda g: g.name, _INDENT) for line in template]
        if self.forwards[box.path]:
            out += ["", "    def forward(self, x):", *self.forwards[box.path]]
        return out

    def root_source(self) -> list[str]:
        root = self.tree.containers[ROOT]
        template = expand(self.body(root), self.call_of)
        exprs = [None if is_default(s, s.value) else slot_literal(s, s.value)
                 for s in slots(template)]
        cls = emit.class_name(self.graph)
        out = [f"class {cls}(nn.Module):", f"    {emit.docstring(self.graph, 'generated by netdsl')}",
               "", "    def __init__(self):", "        super().__init__()"]
        out += [_INDENT + render(line, exprs, lambda g: g.name, _INDENT) for line in template]
        refs = {n.name: self.ref(root, n.name) for n in self.graph.named()}
        init = init_lines(self.graph, refs)
        if init:
            out += ["        self.reset_parameters()", "", "    def reset_parameters(self):",
                    "        # as the reference implementation initialises this network",
                    *(_INDENT + line for line in init)]
        return out + ["", "    def forward(self, x):", *forward_lines(self, root)]


def idiomatic_source(graph: Graph) -> str:
    """The ``.py`` export: imports, netdsl helper classes it uses, a class per block, the
    network's class, and ``Model`` naming it."""
    if not graph.checked:
        raise ValueError("the .py export needs a checked graph (netdsl.compile gives one)")
    writer = Writer(graph)
    writer.build()
    parts = [inspect.getsource(c).rstrip("\n") for c in emit.runtime_classes(graph)]
    parts += ["\n".join(writer.class_source(g)) for g in writer.groups]
    parts.append("\n".join(writer.root_source()))
    body = "\n\n\n".join(parts) + "\n"
    imports = [*(["import torch"] if "torch." in body else []), "from torch import nn",
               *emit.import_lines(graph)]
    header = emit.docstring(graph, "as plain PyTorch, generated by netdsl")
    cls = emit.class_name(graph)
    footer = "" if cls == "Model" else f"\n\nModel = {cls}\n"
    return f"{header}\n\n" + "\n".join(imports) + "\n\n\n" + body + footer
