"""Module names under construction: scopes, pending nodes and the lowering context.

Every layer or block call is an *element* of the current scope and is named by its label, or
else by its position among the scope's elements (as ``nn.Sequential`` numbers its children).
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

from .. import limits
from ..errors import ModuleNameError, Span, SpecLimitError
from ..ir.identifiers import MODULE_ATTRIBUTES, stable
from ..syntax import tree as ast


def module_name_problem(name: str) -> tuple[str, str] | None:
    """Why ``name`` cannot name a torch module, and what to do (None when it can)."""
    if not name:
        return "a module name cannot be empty", "write a name between the quotes"
    if "." in name:
        return ("a module name cannot contain '.' (it separates the parts of a path)",
                'nest labels for a path: layer1: ("0": ...), or write it as a label: '
                '"layer1.0": ...')
    if not name.isprintable():
        return "a module name cannot contain control characters", "use printable characters"
    if not stable(name):  # 'ｘ' would alias 'x' wherever it is written as an attribute
        plain = unicodedata.normalize("NFKC", name)
        return (f"Python reads '{name}' as '{plain}' (NFKC normalisation), so code that "
                f"writes it as a name (torch.export's, ONNX's) would reach another module",
                f"write it as '{plain}', or choose another name")
    if name in MODULE_ATTRIBUTES or (name.startswith("__") and name.endswith("__")):
        return (f"'{name}' is an attribute every nn.Module has",
                f"choose another name, such as '{name.strip('_')}_'")
    return None


def check_label(name: str, span: Span, path: bool = False) -> None:
    """A label names a module; with ``path``, a dotted one names a path of them
    (``"fpn.inner_blocks.3"``), each part of which must be able to name a module. Each part
    is a module nested in the previous one, so the parts are counted before they are split."""
    if path and name.count(".") >= limits.MAX_LABEL_PARTS:
        raise SpecLimitError(f"label has {name.count('.') + 1:,} dotted parts; at most "
                             f"{limits.MAX_LABEL_PARTS} modules nest in one label", span)
    parts = name.split(".") if path else [name]
    problem = next(filter(None, map(module_name_problem, parts)), None)
    if problem is not None and "." in name and "" in name.split("."):
        problem = ("a dotted label is a path of module names, and one of them is empty",
                   "write each part: \"layer1.0\", not \"layer1..0\" or \"layer1.\"")
    if problem is not None:
        raise ModuleNameError(f"label '{name}' cannot name a module: {problem[0]}", span,
                              notes=(problem[1],))


def label_span(node: ast.Label) -> Span:
    """Where a label writes its name (quotes included), for the caret."""
    s = node.span
    width = len(node.name) + (2 if s.source.line(s.line)[s.column - 1:s.column] == '"' else 0)
    return Span(s.source, s.line, s.column, s.line, s.column + width)


class Scope:
    """A module namespace under construction. Elements are nodes or child scopes, each
    named by its label or else by its position; ``labelled`` says which."""

    __slots__ = ("parent", "name", "elements", "labelled", "where", "names", "origin", "merged")

    def __init__(self, parent: Scope | None, origin: tuple | None = None):
        self.parent = parent
        # the block call this scope expands, (definition, input channels, parameters' Env),
        # for the .py export's classes; and the scope that took its place where it collapsed
        self.origin = origin
        self.merged: Scope | None = None
        self.name: str | None = None
        self.labelled = False
        self.where: Span | None = None  # the label or layer that named it
        self.elements: list[PendingNode | Scope] = []
        self.names: dict[str, PendingNode | Scope] = {}

    def adopt(self, element: PendingNode | Scope, label: str | None,
              where: Span | None = None) -> None:
        """Files ``element`` under ``label`` (or its position); a name already taken in this
        scope is an error, never a module silently shared or dropped."""
        name = label if label is not None else str(len(self.elements))
        where = where or element.where
        first = self.names.get(name)
        if first is not None:
            at = first.where
            notes = (f"first used at {at.source.filename}:{at.line}:{at.column}",) \
                if at is not None and at != where else ()
            if label is None:
                notes += ("an unlabelled layer is named by its position; a label that is a "
                          "number takes that position's name",)
            raise ModuleNameError(f"two modules in one scope are named '{name}'", where,
                                  notes=(*notes, "give each module in a scope its own label"))
        element.parent = self
        element.name = name
        element.labelled = label is not None
        element.where = where
        self.names[name] = element
        self.elements.append(element)

    def resolved(self) -> Scope:
        """The scope this one's functional nodes belong to (itself unless it collapsed)."""
        scope = self
        while scope.merged is not None:
            scope = scope.merged
        return scope

    def path(self) -> str:
        parts, scope = [], self
        while scope is not None and scope.parent is not None:
            parts.append(scope.name)
            scope = scope.parent
        return ".".join(reversed(parts))  # type: ignore[arg-type]


def enter(scope: Scope, path: tuple[str, ...], where: Span) -> Scope:
    """The scope a dotted label's leaf goes into: ``"fpn.inner_blocks.3": ...`` files the
    module as ``3`` in ``inner_blocks`` in ``fpn``, creating the modules on the way or
    adding to ones an earlier label made (torchvision's ``body.layer1``, ``body.layer2``, ...
    written on separate lines, each naming a tensor). A layer cannot hold others."""
    for depth, part in enumerate(path):
        found = scope.names.get(part)
        if found is None:
            found = Scope(None)
            scope.adopt(found, part, where)
        elif not isinstance(found, Scope):
            name = ".".join(path[:depth + 1])
            raise ModuleNameError(f"'{name}' is a layer, not a module that holds others",
                                  where, notes=(f"a dotted label puts its layers inside "
                                                f"'{name}'; choose a path of modules",))
        scope = found
    return scope


class PendingNode:
    """A node being built; becomes an immutable ir.Node once all names are known."""

    __slots__ = ("id", "op", "inputs", "attrs", "span", "trace", "shape", "parent", "name",
                 "labelled", "where", "scope")

    def __init__(self, id, op, inputs, attrs, span, trace, shape, scope=None):
        self.id, self.op, self.inputs, self.attrs = id, op, inputs, attrs
        self.span, self.trace, self.shape = span, trace, shape
        self.parent: Scope | None = None
        self.name: str | None = None
        self.labelled = False
        self.where: Span | None = span
        self.scope: Scope | None = scope  # where it was written (functional nodes' owner)


def module_paths(nodes: list[PendingNode]) -> tuple[list[str | None], tuple[str, ...]]:
    """Each node's module name (None where no scope adopted it) and the module path of the
    scope it belongs to ('' for the network itself; a functional node belongs to the scope it
    was written in), each scope's path walked once rather than once per node."""
    paths: dict[Scope, str] = {}

    def path(scope: Scope) -> str:
        found = paths.get(scope)
        if found is None:
            found = paths[scope] = scope.path()
        return found

    names: list[str | None] = []
    scopes: list[str] = []
    for node in nodes:
        if node.parent is not None:
            prefix = path(node.parent)
            names.append(f"{prefix}.{node.name}" if prefix else node.name)
            scopes.append(prefix)
        else:
            names.append(None)
            scopes.append(path(node.scope.resolved()) if node.scope is not None else "")
    return names, tuple(scopes)



def unlink(nodes: list[PendingNode]) -> None:
    """Breaks the reference cycles of a finished (or failed) lowering's scope tree (a scope
    and its elements point at each other, a node at the scope it was written in) and empties
    ``nodes`` (a failed lowering's traceback keeps closures that reach the list), so that
    reference counting frees the nodes, scopes and Envs at once rather than the cyclic
    collector, at about 2 us an object (a refused hostile spec leaves 1M)."""
    seen: set[int] = set()
    for node in nodes:
        scopes = [node.parent, node.scope]
        node.parent = node.scope = None
        while scopes:
            scope = scopes.pop()
            if scope is None or id(scope) in seen:
                continue
            seen.add(id(scope))
            scopes += (scope.parent, scope.merged)
            scope.parent = scope.merged = None
            scope.elements.clear()
            scope.names.clear()
    nodes.clear()

class Context(NamedTuple):
    """Where lowering is: the scope layers are filed in, the block calls that led here (for
    notes and recursion), and a residual's output for ``project``. A named tuple rather than a
    frozen dataclass because every block call makes two (its creation is in the hot path)."""

    scope: Scope
    trace: tuple[Span, ...] = ()
    blocks: tuple[ast.BlockDef, ...] = ()
    project_target: int | None = None
