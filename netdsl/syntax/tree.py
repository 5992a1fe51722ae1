"""The syntax tree: small immutable nodes, each with the span it was written at.

Expressions cover both layers (``conv(64, 3x3) -> relu``) and values (``4*c``, ``[3, 4]``);
lowering decides which is which. Nodes compare by identity (``eq=False``): two identical
calls at different places are different nodes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, fields

from ..errors import Source, Span


@dataclass(frozen=True, eq=False)
class Node:
    span: Span


# --- expressions -------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Int(Node):
    value: int


@dataclass(frozen=True, eq=False)
class Float(Node):
    value: float


@dataclass(frozen=True, eq=False)
class Dims(Node):
    """A size literal: ``7x7`` (a kernel), ``3x224x224`` (a shape)."""

    value: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Str(Node):
    value: str


@dataclass(frozen=True, eq=False)
class Reduce(Node):
    """``r96`` in an inception branch: a 1x1 reduction to 96 channels."""

    value: int


@dataclass(frozen=True, eq=False)
class Ref(Node):
    name: str


@dataclass(frozen=True, eq=False)
class ListExpr(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, eq=False)
class Neg(Node):
    operand: Node


@dataclass(frozen=True, eq=False)
class Compare(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, eq=False)
class Logic(Node):
    """``a and b``, ``a or b``: conditions, evaluated left to right as far as needed."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, eq=False)
class Not(Node):
    operand: Node


@dataclass(frozen=True, eq=False)
class Cond(Node):
    """``then if test else otherwise``."""

    then: Node
    test: Node
    otherwise: Node


@dataclass(frozen=True, eq=False)
class Kwarg(Node):
    name: str
    value: Node


@dataclass(frozen=True, eq=False)
class Call(Node):
    func: Node
    args: tuple[Node, ...]
    kwargs: tuple[Kwarg, ...]


@dataclass(frozen=True, eq=False)
class Index(Node):
    target: Node
    index: Node


@dataclass(frozen=True, eq=False)
class Chain(Node):
    """``a -> b -> c``: each item's output feeds the next."""

    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Label(Node):
    """``name: body``: the body's module (or scope of modules) is called ``name``; a quoted
    label (``"block1-0": body``) is any torch module name that is not a netdsl name."""

    name: str
    body: Node


@dataclass(frozen=True, eq=False)
class Keyed(Node):
    """``3x3: r96 -> 128``: a branch of the inception shorthand, keyed by its kernel."""

    key: tuple[int, ...]
    body: Node


# --- statements ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Param(Node):
    name: str
    default: Node | None


@dataclass(frozen=True, eq=False)
class Import(Node):
    path: str


@dataclass(frozen=True, eq=False)
class BlockDef(Node):
    """``block name(params) = body``. An ``inline`` block opens no scope of its own: its
    layers are numbered as if written where it is called (VGG's stages in ``features``)."""

    name: str
    params: tuple[Param, ...]
    body: Node
    inline: bool = False


@dataclass(frozen=True, eq=False)
class InputStmt(Node):
    dims: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class InitStmt(Node):
    scheme: Node


@dataclass(frozen=True, eq=False)
class Assign(Node):
    """``skip1 = enc1: down(64)``: a line of a network whose output tensor is named, so a
    later line can read it (U-Net's skip connections); parenthesised inside a chain,
    ``(c2 = layer1: ...)``, it names a tensor partway through a module (a feature pyramid's
    backbone stages)."""

    name: str
    value: Node


@dataclass(frozen=True, eq=False)
class OutputStmt(Node):
    """``output p2, p3, "pool": p6``: the network returns these named tensors, in order, as
    a dict (each item a tensor name, or ``key: name``)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Lines(Node):
    """The body of a block written on several lines (``block b(c):``): each line feeds the
    next, and a line may name its tensor (``Assign``) for later lines."""

    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class NetworkDef(Node):
    name: str
    params: tuple[Param, ...]
    body: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class NetworkAlias(Node):
    """``network resnet50 = resnet(bottleneck, [3, 4, 6, 3])``: a network with some
    parameters of another one fixed."""

    name: str
    params: tuple[Param, ...]
    target: Node


@dataclass(frozen=True, eq=False)
class Module:
    """One parsed file."""

    source: Source
    items: tuple[Node, ...]

    @property
    def imports(self) -> tuple[Import, ...]:
        return tuple(i for i in self.items if isinstance(i, Import))

    @property
    def definitions(self) -> tuple[Node, ...]:
        return tuple(i for i in self.items if not isinstance(i, Import))


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """A node class's fields besides its span (``dataclasses.fields`` rebuilds the list at
    every call; walks over a block body ask for it at every node)."""
    return tuple(f.name for f in fields(cls) if f.name != "span")


def children(node: Node) -> Iterator[Node]:
    """The nodes ``node`` holds directly, in the order written."""
    for name in _field_names(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, Node))


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node below it, depth first, in the order written."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))
