"""Module names under construction: scopes, pending nodes and the lowering context.

Every layer or block call is an *element* of the current scope and is named by its label, or
else by its position among the scope's elements (as ``nn.Sequential`` numbers its children).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Span
from ..syntax import tree as ast


class _Scope:
    """A module namespace under construction. Elements are nodes or child scopes."""

    __slots__ = ("parent", "name", "elements")

    def __init__(self, parent: _Scope | None):
        self.parent = parent
        self.name: str | None = None
        self.elements: list[_Pending | _Scope] = []

    def adopt(self, element: _Pending | _Scope, label: str | None) -> None:
        element.parent = self
        element.name = label if label is not None else str(len(self.elements))
        self.elements.append(element)

    def path(self) -> str:
        parts, scope = [], self
        while scope is not None and scope.parent is not None:
            parts.append(scope.name)
            scope = scope.parent
        return ".".join(reversed(parts))  # type: ignore[arg-type]


class _Pending:
    """A node being built; becomes an immutable ir.Node once all names are known."""

    __slots__ = ("id", "op", "inputs", "attrs", "span", "trace", "shape", "parent", "name")

    def __init__(self, id, op, inputs, attrs, span, trace, shape):
        self.id, self.op, self.inputs, self.attrs = id, op, inputs, attrs
        self.span, self.trace, self.shape = span, trace, shape
        self.parent: _Scope | None = None
        self.name: str | None = None

    def full_name(self) -> str | None:
        if self.parent is None:
            return None
        prefix = self.parent.path()
        return f"{prefix}.{self.name}" if prefix else self.name


@dataclass(frozen=True)
class Context:
    scope: _Scope
    trace: tuple[Span, ...] = ()
    blocks: tuple[ast.BlockDef, ...] = ()
    project_target: int | None = None
