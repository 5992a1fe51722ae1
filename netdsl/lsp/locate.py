"""The syntax node under the cursor, and what a name written there refers to.

Scopes are the compiler's: a block's or network's parameters, then a network's (or a
several-line block's) named tensors, then the file's own definitions and imports, then the
prelude, builtins and ops (netdsl.lower.loader links them into one chain of Envs).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Span
from ..ir.ops import OpRecord
from ..lower.naming import label_span
from ..lower.values import BlockValue, Builtin, Function, NetworkValue, name_span
from ..syntax import tree as ast
from ..syntax.tree import children, walk

Definition = ast.BlockDef | ast.NetworkDef | ast.NetworkAlias


def contains(span: Span, line: int, column: int) -> bool:
    """Whether the cursor at (line, column) touches the span (its end included: a cursor
    just after a name is on it, as editors place it)."""
    return (span.line, span.column) <= (line, column) <= (span.end_line, span.end_column)


def inside(span: Span, outer: Span) -> bool:
    return (outer.line, outer.column) <= (span.line, span.column) and \
        (span.end_line, span.end_column) <= (outer.end_line, outer.end_column)


def extent(node: ast.Node) -> Span:
    """The text a node covers: a network's span is its header line only, its body follows."""
    span = node.span
    if not isinstance(node, ast.NetworkDef | ast.BlockDef | ast.Lines):
        return span
    end = max([(span.end_line, span.end_column),
               *((e.end_line, e.end_column) for e in map(extent, children(node)))])
    return Span(span.source, span.line, span.column, *end)


def path_at(module: ast.Module, line: int, column: int) -> list[ast.Node]:
    """The nodes that contain the cursor, outermost first."""
    path: list[ast.Node] = []
    candidates: list[ast.Node] = list(module.items)
    while candidates:
        here = next((n for n in candidates if contains(extent(n), line, column)), None)
        if here is None:
            break
        path.append(here)
        candidates = list(children(here))
    return path


@dataclass(frozen=True)
class Target:
    """What a name refers to: where it is defined (None for ops and builtins) and the value."""

    name: str
    kind: str  # block, network, parameter, tensor, op, builtin, constant
    span: Span | None  # the name in its definition
    value: object = None
    owner: ast.Node | None = None  # the definition a parameter belongs to


def _tensor_names(body) -> dict[str, ast.Assign]:
    return {s.name: s for s in body if isinstance(s, ast.Assign)}


def _name_at(node: ast.Node, name: str) -> Span:
    span = node.span
    return Span(span.source, span.line, span.column, span.line, span.column + len(name))


def resolve(name: str, path: list[ast.Node], env) -> Target | None:
    """The definition ``name`` refers to, written inside ``path`` (outermost first);
    ``env`` is the file's linked scope (None when linking failed: own definitions only)."""
    for node in reversed(path):
        if isinstance(node, ast.Lines) and name in _tensor_names(node.items):
            return Target(name, "tensor", _name_at(_tensor_names(node.items)[name], name))
        if isinstance(node, ast.NetworkDef) and name in _tensor_names(node.body):
            return Target(name, "tensor", _name_at(_tensor_names(node.body)[name], name),
                          owner=node)
        if isinstance(node, Definition):
            for p in node.params:
                if p.name == name:
                    return Target(name, "parameter", _name_at(p, name), p, owner=node)
    return _of_value(name, env.lookup(name)) if env is not None else None


def resolve_in(module: ast.Module, env, name: str, line: int, column: int) -> Target | None:
    path = path_at(module, line, column)
    target = resolve(name, path, env)
    if target is None and env is None:  # linking failed: own definitions still resolve
        found = [d for d in module.definitions if getattr(d, "name", None) == name]
        return _definition(found[-1]) if found else None
    return target


def _definition(definition: Definition) -> Target:
    kind = "block" if isinstance(definition, ast.BlockDef) else "network"
    return Target(definition.name, kind, name_span(definition.span, definition.name),
                  definition)


def _of_value(name: str, value: object) -> Target | None:
    if isinstance(value, BlockValue | NetworkValue):
        return _definition(value.definition)
    if isinstance(value, OpRecord):
        return Target(name, "op", None, value)
    if isinstance(value, Builtin):
        return Target(name, "builtin", None, value)
    if isinstance(value, Function):
        return Target(name, "function", None, value)
    if value is not None:
        return Target(name, "constant", None, value)
    return None


def name_under(path: list[ast.Node], line: int, column: int) -> tuple[str, Span] | None:
    """The name the cursor is on: a reference, or the name in a definition or label."""
    if not path:
        return None
    node = path[-1]
    if isinstance(node, ast.Ref):
        return node.name, node.span
    if isinstance(node, Definition | ast.Param):
        span = name_span(node.span, node.name) if not isinstance(node, ast.Param) \
            else _name_at(node, node.name)
        if contains(span, line, column):
            return node.name, span
    if isinstance(node, ast.Assign) and contains(_name_at(node, node.name), line, column):
        return node.name, _name_at(node, node.name)
    if isinstance(node, ast.Label) and contains(label_span(node), line, column):
        return node.name, label_span(node)
    return None


def references(module: ast.Module, env, target: Target) -> list[Span]:
    """Every reference in ``module`` to ``target``'s definition (compared by place)."""
    found = []
    for item in module.items:
        for node in walk(item):
            if isinstance(node, ast.Ref) and node.name == target.name:
                here = resolve_in(module, env, node.name, node.span.line, node.span.column)
                if here is not None and same(here, target):
                    found.append(node.span)
    return found


def same(a: Target, b: Target) -> bool:
    if a.span is None or b.span is None:
        return a.span is None and b.span is None and a.name == b.name and a.kind == b.kind
    return (a.span.source.filename, a.span.line, a.span.column) == \
        (b.span.source.filename, b.span.line, b.span.column)


def text_of(span: Span) -> str:
    """The source text a span covers (several lines joined by single spaces)."""
    source = span.source
    if span.line == span.end_line:
        return source.line(span.line)[span.column - 1:span.end_column - 1]
    parts = [source.line(span.line)[span.column - 1:]]
    parts += [source.line(n).strip() for n in range(span.line + 1, span.end_line)]
    parts.append(source.line(span.end_line)[:span.end_column - 1].strip())
    return " ".join(p.strip() for p in parts if p.strip())
