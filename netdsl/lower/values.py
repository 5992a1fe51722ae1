"""The values a spec computes with: numbers, sizes and lists are Python values; layers passed
by name (:class:`Thunk`), blocks, networks and builtins are the classes here; :class:`Env` is
a lexical scope."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import Span, SpecNameError, TensorNameError
from ..ir.ops import Symbol, describe
from ..syntax import tree as ast

CONSTANTS = {name: Symbol(name) for name in ("same", "project", "identity", "none")}
CONSTANTS.update(true=True, false=False)


@dataclass(frozen=True)
class Thunk:
    """A layer expression passed as a value, lowered where it is used (call by name)."""

    node: ast.Node
    env: Env
    description = "a layer"


@dataclass(frozen=True)
class BlockValue:
    definition: ast.BlockDef
    env: Env

    @property
    def description(self) -> str:
        return f"the block '{self.definition.name}'"


@dataclass(frozen=True)
class NetworkValue:
    definition: ast.NetworkDef | ast.NetworkAlias
    env: Env

    @property
    def description(self) -> str:
        return f"the network '{self.definition.name}'"


@dataclass(frozen=True)
class Builtin:
    name: str
    handler: Callable
    doc: str
    signature: object  # netdsl.lower.builtins.Signature

    @property
    def description(self) -> str:
        return f"the builtin '{self.name}'"


@dataclass(frozen=True)
class Function:
    """A function of numbers (``round``, ``make_divisible``): a call of it in a value is
    evaluated at once to a number, never run as a layer (netdsl/lower/functions.py)."""

    name: str
    call: Callable  # (function, call node, env) -> number: binds and checks, then computes
    compute: Callable  # the function of bound arguments (or of numbers, for min and max)
    doc: str
    params: tuple[tuple[str, str | None], ...]  # (name, default as a spec writes it or None)
    variadic: bool = False  # min/max: two numbers or more, or a list

    @property
    def description(self) -> str:
        return f"the function '{self.name}'"

    def text(self) -> str:
        if self.variadic:
            return f"{self.name}(a, b, ...) or {self.name}(list)"
        return f"{self.name}({', '.join(n if d is None else f'{n}={d}' for n, d in self.params)})"


@dataclass(frozen=True)
class TensorValue:
    """A tensor a network line named (``skip1 = ...``): used as a layer, it gives that tensor,
    whatever the chain's input (``concat(identity, skip1 -> crop(56x56))``)."""

    node: int
    description = "a tensor"


@dataclass(frozen=True)
class Unbound:
    """A tensor name whose line has not run yet: using it is an error that says so."""

    name: str
    span: Span
    description = "a tensor not yet computed"


class OverrideText(str):
    """An override given as text (``unit=basic``, ``kernel=7x7``): read as a netdsl expression
    in the network's scope, so a command line can name blocks and write sizes."""


@dataclass(frozen=True)
class BadNumber:
    """An override whose text holds a number no literal may be (``eps=1e-400``, 5,000
    digits), found before Hydra read it; lowering reports it at the network."""

    text: str
    problem: str
    description = "a number out of range"


@dataclass(frozen=True)
class ReduceCount:
    value: int
    description = "a reduction count"


ABSENT = object()  # a name no scope holds (None is a value a name may have)


@dataclass
class Env:
    names: dict[str, object]
    parent: Env | None = None
    spans: dict[str, Span] = field(default_factory=dict)
    # names a file's imports see but do not re-export, with why (for "unknown name")
    hidden: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def lookup(self, name: str) -> object | None:
        env: Env | None = self
        while env is not None:
            value = env.names.get(name, ABSENT)  # one dictionary probe per scope, not two
            if value is not ABSENT:
                return value
            env = env.parent
        return None

    def all_names(self) -> set[str]:
        names, env = set(), self
        while env is not None:
            names |= set(env.names)
            env = env.parent
        return names

    def define(self, name: str, value: object, span: Span) -> None:
        if name in self.names:
            first = self.spans.get(name)
            first = name_span(first, name) if first else None
            where = f" at {first.source.filename}:{first.line}:{first.column}" if first else ""
            raise SpecNameError(f"'{name}' is defined twice", name_span(span, name),
                                notes=(f"first defined{where}",) if first else ())
        self.names[name] = value
        self.spans[name] = span


def name_span(span: Span, name: str) -> Span:
    """Where a definition starting at ``span`` writes its ``name`` (the caret goes there)."""
    match = re.compile(rf"\b{re.escape(name)}\b").search(span.source.line(span.line),
                                                         span.column - 1)
    if match is None:
        return span
    return Span(span.source, span.line, match.start() + 1, span.line, match.end() + 1)


def named_tensors(node: ast.Node) -> list[ast.Assign]:
    """The tensor names a line gives: the line's own (``skip1 = ...``) and those named inside
    its chains (``(c2 = layer1: ...)``), in the order written. Block bodies are not lines of
    this scope: each block call names its tensors afresh."""
    return [n for n in ast.walk(node) if isinstance(n, ast.Assign)]


def bind_tensor(env: Env, node: ast.Assign, value: int) -> None:
    """Gives a tensor named mid-chain its node, in the scope that declared it. A layer
    expression that names a tensor and runs twice (inside ``stack``, or a block that uses its
    layer argument twice) would give one name two tensors: an error, not a silent pick."""
    scope: Env | None = env
    while scope is not None and node.name not in scope.names:
        scope = scope.parent
    if scope is None:  # every scope that lowers chains declares their names first
        raise TensorNameError(f"tensor '{node.name}' cannot be named here",
                              name_span(node.span, node.name))
    if not isinstance(scope.names[node.name], Unbound):
        raise TensorNameError(f"tensor '{node.name}' is computed more than once",
                              name_span(node.span, node.name),
                              notes=("the layers that name it run several times (inside "
                                     "'stack', or in a block that uses them twice); name the "
                                     "tensor outside the repeated layers",))
    scope.names[node.name] = TensorValue(value)


def tensor_scope(statements: tuple[ast.Node, ...], env: Env,
                 find: Callable[[ast.Node], list[ast.Assign]] = named_tensors) -> Env:
    """The scope of a network's or block's named tensors (``skip1 = ...``, or ``(c2 = ...)``
    inside a chain), each unbound until its layers have run; a name given twice, or one that
    would hide a layer, block, builtin or parameter, is an error at the name. ``find`` gives
    a statement's named tensors (the lowering passes its per-compile cache)."""
    scope = Env({}, env)
    for stmt in (a for s in statements for a in find(s)):
        where = Span(stmt.span.source, stmt.span.line, stmt.span.column, stmt.span.line,
                     stmt.span.column + len(stmt.name))
        if stmt.name in scope.names:
            first = scope.names[stmt.name].span
            raise TensorNameError(f"tensor '{stmt.name}' is named twice", where,
                                  notes=(f"first named at {first.source.filename}:"
                                         f"{first.line}:{first.column}", "a tensor name is "
                                         "given once; name the new tensor differently"))
        hidden = env.lookup(stmt.name)
        if hidden is not None:
            raise TensorNameError(f"tensor name '{stmt.name}' would hide {describe(hidden)}",
                                  where, notes=(f"name the tensor differently, such as "
                                                f"'{stmt.name}_out'",))
        scope.names[stmt.name] = Unbound(stmt.name, where)
    return scope
