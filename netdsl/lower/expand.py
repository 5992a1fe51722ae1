"""Syntax tree to IR: resolve imports and names, expand blocks, name every module.

Lowering evaluates a spec the way a macro expander does: blocks are called with values
(numbers, sizes, lists, other blocks, or unevaluated layer expressions), and layer
expressions are expanded into :mod:`netdsl.ir.graph` nodes along the chain. Shapes are left to
:mod:`netdsl.passes.check`.

Module names follow ``torch.nn`` conventions so a spec can reproduce a reference
``state_dict``: every layer or block call is an *element* of the current scope and is named
by its label, or else by its position among the scope's elements (as ``nn.Sequential``
numbers its children). A block call or a labelled expression opens a new scope; when that
scope ends up holding a single element, the element takes the scope's place (so
``conv3x3(64)`` is just a conv, and ``fc: fc(10)`` is the module ``fc``). ``residual``,
``concat``, ``stack`` and ``aux`` open no scope: their layers are elements of the scope they
are written in.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import gc
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import (
    PRELUDE,
    NetDSLError,
    OverrideError,
    Span,
    SpecArgumentError,
    SpecErrors,
    SpecImportError,
    SpecLimitError,
    SpecNameError,
    SpecRecursionError,
    SpecTypeError,
    call_note,
)
from ..ir.graph import Graph, Node, frozen
from ..ir.ops import (
    INIT_SCHEMES,
    OPS,
    REQUIRED,
    Op,
    Size,
    Symbol,
    ValueProblem,
    describe,
    normalize,
)
from ..syntax import tree as ast
from ..syntax.parser import parse, parse_expression

MAX_NODES = 200_000  # layers in one expanded network (ResNet-152 has 518)
MAX_BLOCK_DEPTH = 64  # blocks called inside blocks
MAX_IMPORT_DEPTH = 32
MAX_REPORTED = 10  # independent errors reported from one network
MAX_NUMBER = 10**15
BUNDLED_SPECS = Path(__file__).resolve().parents[2] / "specs"
CONSTANTS = {name: Symbol(name) for name in ("same", "project", "identity", "none")}
CONSTANTS.update(true=True, false=False)


# --- values ----------------------------------------------------------------------------

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

    @property
    def description(self) -> str:
        return f"the builtin '{self.name}'"


class SpecText(str):
    """An override given as text (``unit=basic``, ``kernel=7x7``): read as a netdsl expression
    in the network's scope, so a command line can name blocks and write sizes."""


@dataclass(frozen=True)
class ReduceCount:
    value: int
    description = "a reduction count"


@dataclass
class Env:
    names: dict[str, object]
    parent: Env | None = None
    spans: dict[str, Span] = field(default_factory=dict)

    def lookup(self, name: str) -> object | None:
        env: Env | None = self
        while env is not None:
            if name in env.names:
                return env.names[name]
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
            first = _name_span(first, name) if first else None
            where = f" at {first.source.filename}:{first.line}:{first.column}" if first else ""
            raise SpecNameError(f"'{name}' is defined twice", _name_span(span, name),
                                notes=(f"first defined{where}",) if first else ())
        self.names[name] = value
        self.spans[name] = span


# --- modules (files) ---------------------------------------------------------------------

@dataclass
class _Loaded:
    module: ast.Module
    env: Env
    own: list[str]  # names this file defines (what an import brings in)


class Loader:
    """Reads spec files and their imports; an import may only reach files under the main
    spec's folder or the bundled ``specs/`` folder (no ``..`` or symlink escape)."""

    def __init__(self, roots: list[Path]):
        self.roots = [r.resolve() for r in roots]
        self.cache: dict[Path, _Loaded] = {}
        self.active: list[Path] = []
        self.prelude = _prelude()

    def load_text(self, text: str, filename: str | None = None) -> _Loaded:
        return self._link(parse(text, filename), Path(filename).resolve() if filename else None)

    def load_file(self, path: Path, span: Span | None = None) -> _Loaded:
        resolved = path.resolve()
        if resolved in self.active:
            chain = " -> ".join(p.name for p in [*self.active, resolved])
            raise SpecImportError(f"import cycle: {chain}", span)
        if resolved in self.cache:
            return self.cache[resolved]
        try:
            text = resolved.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SpecImportError(f"cannot read {path}: {reason}", span) from None
        loaded = self._link(parse(text, _display(resolved)), resolved)
        self.cache[resolved] = loaded
        return loaded

    def _link(self, module: ast.Module, path: Path | None) -> _Loaded:
        env = Env({}, self.prelude)
        if path is not None:
            self.active.append(path)
        try:
            if len(self.active) > MAX_IMPORT_DEPTH:
                raise SpecImportError(f"imports nested more than {MAX_IMPORT_DEPTH} deep",
                                      module.imports[0].span if module.imports else None)
            for item in module.imports:
                target = self._resolve_import(item, path)
                imported = self.load_file(target, item.span)
                for name in imported.own:
                    env.define(name, imported.env.names[name], item.span)
            own = [_define(env, item) for item in module.definitions]
        finally:
            if path is not None:
                self.active.pop()
        return _Loaded(module, env, own)

    def _resolve_import(self, item: ast.Import, importer: Path | None) -> Path:
        base = importer.parent if importer else Path.cwd()
        candidates = [base / item.path, BUNDLED_SPECS / item.path]
        escapes = 0  # decided on the path alone: whether a file exists outside is not told
        for candidate in candidates:
            try:
                resolved = candidate.resolve()
            except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
                raise SpecImportError(f"'{item.path}' is not a valid path", item.span) from None
            if not any(resolved.is_relative_to(root) for root in self.roots):
                escapes += 1
            elif _is_file(resolved):
                return candidate
        if escapes == len(candidates):
            raise SpecImportError(
                f"import '{item.path}' leaves the spec's folder", item.span,
                notes=("imports may only read files under the main spec's folder "
                       "or netdsl's specs/ folder",))
        raise SpecImportError(f"cannot find '{item.path}' to import", item.span,
                              notes=(f"looked in {_display(base)} and {_display(BUNDLED_SPECS)}",))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


@functools.cache
def _prelude() -> Env:
    """Layers, builtins, constants and the prelude's blocks: read once per process, then
    shared (no spec changes them: a spec's own names live in a child scope)."""
    env = Env({**CONSTANTS, **{n: op for n, op in OPS.items() if _is_layer_op(op)}})
    from .builtins import BUILTINS  # builtins use this module's machinery, so imported late

    for name, (handler, doc) in BUILTINS.items():
        env.names[name] = Builtin(name, handler, doc)
    text = resources.files(__package__).joinpath("prelude.net").read_text(encoding="utf-8")
    prelude = Env({}, env)
    for item in parse(text, PRELUDE).definitions:
        _define(prelude, item)
    return prelude


def _display(path: Path) -> str:
    """A path as diagnostics show it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _is_layer_op(op: Op) -> bool:
    return op.name not in ("input", "project", "concat", "add")


def _define(env: Env, item: ast.Node) -> str:
    if isinstance(item, ast.BlockDef):
        value: object = BlockValue(item, env)
    else:
        value = NetworkValue(item, env)  # type: ignore[arg-type]
    _check_params(item.params)  # type: ignore[attr-defined]
    env.define(item.name, value, item.span)  # type: ignore[attr-defined]
    return item.name  # type: ignore[attr-defined]


def _check_params(params: tuple[ast.Param, ...]) -> None:
    seen: set[str] = set()
    defaulted = False
    for p in params:
        if p.name in seen:
            raise SpecNameError(f"parameter '{p.name}' is listed twice", p.span)
        seen.add(p.name)
        if p.default is None and defaulted:
            raise SpecArgumentError(f"parameter '{p.name}' without a default follows one with a "
                                    "default", p.span)
        defaulted = defaulted or p.default is not None


# --- lowering ------------------------------------------------------------------------------

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

    __slots__ = ("id", "op", "inputs", "attrs", "span", "trace", "parent", "name")

    def __init__(self, id, op, inputs, attrs, span, trace):
        self.id, self.op, self.inputs, self.attrs = id, op, inputs, attrs
        self.span, self.trace = span, trace
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


class Lowerer:
    """Expands one network into a flat list of nodes."""

    def __init__(self):
        self.nodes: list[_Pending] = []
        self.aux: list[int] = []

    # -- nodes and scopes ------------------------------------------------------------------
    def add(self, op: str, inputs: list[int], attrs: dict, span: Span | None, ctx: Context | None,
            element: bool = True) -> int:
        if len(self.nodes) >= MAX_NODES:
            raise SpecLimitError(f"network expands to more than {MAX_NODES:,} layers", span)
        if span is not None and span.source.filename == PRELUDE and ctx is not None:
            # point at the user's call of a prelude block, not at the prelude's text
            span = next((s for s in reversed(ctx.trace) if s.source.filename != PRELUDE),
                        span)
        node = _Pending(len(self.nodes), op, tuple(inputs), attrs, span,
                        ctx.trace if ctx else ())
        self.nodes.append(node)
        if element and ctx is not None:
            ctx.scope.adopt(node, None)
        return node.id

    def scoped(self, label: str | None, ctx: Context, lower: Callable[[Context], int]) -> int:
        """Lowers into a fresh scope, then files it (or its single element) under ``label``."""
        child = _Scope(None)
        out = lower(Context(child, ctx.trace, ctx.blocks, ctx.project_target))
        if len(child.elements) == 1:
            ctx.scope.adopt(child.elements[0], label)
        elif child.elements:
            ctx.scope.adopt(child, label)
        return out

    # -- values ----------------------------------------------------------------------------
    def evaluate(self, node: ast.Node, env: Env) -> object:
        if isinstance(node, ast.Int | ast.Float | ast.Str):
            return node.value
        if isinstance(node, ast.Dims):
            return Size(node.value)
        if isinstance(node, ast.Reduce):
            return ReduceCount(node.value)
        if isinstance(node, ast.Ref):
            return self.resolve(node, env)
        if isinstance(node, ast.ListExpr):
            return tuple(self.evaluate(i, env) for i in node.items)
        if isinstance(node, ast.Neg):
            return -self.number(node.operand, env)
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node, env)
        if isinstance(node, ast.Compare):
            return self.compare(node, env)
        if isinstance(node, ast.Cond):
            branch = node.then if self.truth(node.test, env) else node.otherwise
            return self.evaluate(branch, env)
        if isinstance(node, ast.Index):
            return self.index(node, env)
        if isinstance(node, ast.Call):
            callee = self.evaluate(node.func, env)
            if isinstance(callee, Op | BlockValue | Builtin):
                return Thunk(node, env)
            raise SpecTypeError(f"{describe(callee)} cannot be called", node.func.span)
        return Thunk(node, env)  # chains, labels and keyed branches are layers

    def resolve(self, ref: ast.Ref, env: Env) -> object:
        value = env.lookup(ref.name)
        if value is None:
            close = difflib.get_close_matches(ref.name, sorted(env.all_names()), n=1)
            hint = (f"did you mean '{close[0]}'?",) if close else ()
            raise SpecNameError(f"unknown name '{ref.name}'", ref.span, notes=hint)
        return value

    def number(self, node: ast.Node, env: Env) -> int | float:
        value = self.evaluate(node, env)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecTypeError(f"expected a number, found {describe(value)}", node.span)
        return value

    def truth(self, node: ast.Node, env: Env) -> bool:
        value = self.evaluate(node, env)
        if not isinstance(value, bool):
            raise SpecTypeError(f"expected true or false, found {describe(value)}", node.span)
        return value

    def arithmetic(self, node: ast.BinOp, env: Env) -> int | float:
        a, b = self.number(node.left, env), self.number(node.right, env)
        op = node.op
        if op in ("/", "//", "%") and b == 0:
            raise SpecTypeError("division by zero", node.right.span)
        if op == "**" and (abs(b) > 64 or abs(a) > MAX_NUMBER):
            raise SpecLimitError("exponent too large", node.span)
        try:
            result = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                      "/": lambda: a / b, "//": lambda: a // b, "%": lambda: a % b,
                      "**": lambda: a ** b}[op]()
        except ZeroDivisionError:  # 0 ** -1
            raise SpecTypeError("division by zero", node.span) from None
        except OverflowError:  # float ** float
            raise SpecLimitError(f"{node.op} gives a number beyond {MAX_NUMBER:.0e}",
                                 node.span) from None
        if isinstance(result, complex):
            raise SpecTypeError("a negative number to a fractional power has no real value",
                                node.span)
        if abs(result) > MAX_NUMBER:
            raise SpecLimitError(f"{node.op} gives a number beyond {MAX_NUMBER:.0e}", node.span)
        if isinstance(result, float) and result.is_integer() and op != "/":
            return result
        return result

    def compare(self, node: ast.Compare, env: Env) -> bool:
        a, b = self.evaluate(node.left, env), self.evaluate(node.right, env)
        if node.op in ("==", "!="):
            return (a == b) == (node.op == "==")
        a, b = self.number(node.left, env), self.number(node.right, env)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op]

    def index(self, node: ast.Index, env: Env) -> object:
        target = self.evaluate(node.target, env)
        if not isinstance(target, tuple):
            raise SpecTypeError(f"only lists can be indexed, found {describe(target)}",
                                node.target.span)
        i = self.number(node.index, env)
        if not isinstance(i, int) or not -len(target) <= i < len(target):
            raise SpecTypeError(f"index {i} is out of range for a list of {len(target)}",
                                node.index.span)
        return target[i]

    # -- layers ----------------------------------------------------------------------------
    def lower(self, node: ast.Node, env: Env, x: int, ctx: Context) -> int:
        if isinstance(node, ast.Chain):
            for item in node.items:
                x = self.lower(item, env, x, ctx)
            return x
        if isinstance(node, ast.Label):
            return self.scoped(node.name, ctx, lambda c: self.lower(node.body, env, x, c))
        if isinstance(node, ast.Cond):
            branch = node.then if self.truth(node.test, env) else node.otherwise
            return self.lower(branch, env, x, ctx)
        if isinstance(node, ast.Call):
            callee = self.evaluate(node.func, env)
            if isinstance(callee, Builtin):
                return callee.handler(self, node, env, x, ctx)
            args = [(self.evaluate(a, env), a.span) for a in node.args]
            return self.apply(callee, args, self.keywords(node, env), node, env, x, ctx)
        if isinstance(node, ast.Ref):
            return self.use(self.resolve(node, env), node, env, x, ctx)
        if isinstance(node, ast.Keyed):
            raise SpecTypeError("a branch like '3x3: ...' is only meaningful inside inception()",
                                node.span)
        value = self.evaluate(node, env)
        raise SpecTypeError(f"expected a layer, found {describe(value)}", node.span)

    def keywords(self, node: ast.Call, env: Env) -> dict[str, tuple[object, Span, ast.Node]]:
        kwargs: dict[str, tuple[object, Span, ast.Node]] = {}
        for kw in node.kwargs:
            if kw.name in kwargs:
                raise SpecArgumentError(f"argument '{kw.name}' is given twice", kw.span)
            kwargs[kw.name] = (self.evaluate(kw.value, env), kw.span, kw.value)
        return kwargs

    def use(self, value: object, ref: ast.Node, env: Env, x: int, ctx: Context) -> int:
        """A bare name in a chain: a layer with default arguments, or a layer-valued name."""
        if isinstance(value, Thunk):
            return self.lower(value.node, value.env, x, ctx)
        if value == Symbol("identity"):
            return x
        if value == Symbol("project"):
            if ctx.project_target is None:
                raise SpecTypeError("'project' is only meaningful as a residual shortcut",
                                    ref.span)
            return self.add("project", [x], {"like": ctx.project_target}, ref.span, ctx)
        if isinstance(value, Op | BlockValue | Builtin):
            return self.apply(value, [], {}, ref, env, x, ctx)
        raise SpecTypeError(f"expected a layer, found {describe(value)}", ref.span)

    def apply(self, callee, args, kwargs, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
        if isinstance(callee, Op):
            return self.add(callee.name, [x], self.bind_op(callee, args, kwargs, call), call.span,
                            ctx)
        if isinstance(callee, BlockValue):
            return self.call_block(callee, args, kwargs, call, x, ctx)
        if isinstance(callee, Builtin):
            return callee.handler(self, call, env, x, ctx)
        if isinstance(callee, NetworkValue):
            raise SpecTypeError(f"{describe(callee)} cannot be used as a layer; write its layers "
                                "as a block instead", call.span)
        raise SpecTypeError(f"{describe(callee)} cannot be called", call.span)

    def bind_op(self, op: Op, args, kwargs, call: ast.Node) -> dict:
        names = [p.name for p in op.params if p.name != "std" or op.name in ("conv", "fc")]
        values = self.bind_names(op.name, names, args, kwargs, call)
        attrs = {}
        for p in op.params:
            if p.name in values:
                value, span = values[p.name]
            elif p.default is REQUIRED:
                raise SpecArgumentError(f"{op.name} needs a value for '{p.name}'", call.span,
                                        notes=(f"{op.name}({self.signature(op)})",))
            else:
                value, span = p.default, call.span
            try:
                attrs[p.name] = normalize(p, value)
            except ValueProblem as problem:
                raise SpecTypeError(f"{op.name}: {problem}", span) from None
        return self.finish_window(op, attrs, call)

    @staticmethod
    def signature(op: Op) -> str:
        return ", ".join(p.name if p.default is REQUIRED else f"{p.name}={_literal(p.default)}"
                         for p in op.params)

    def finish_window(self, op: Op, attrs: dict, call: ast.Node) -> dict:
        if "stride" in attrs and attrs["stride"] is None:
            attrs["stride"] = attrs["kernel"]
        if attrs.get("pad") == "same":
            pad = []
            for k, d in zip(attrs["kernel"], attrs.get("dilation", (1, 1)), strict=True):
                if (k - 1) * d % 2:
                    raise SpecTypeError(f"{op.name}: pad=same needs an odd kernel, found "
                                        f"{attrs['kernel'][0]}x{attrs['kernel'][1]}", call.span)
                pad.append((k - 1) * d // 2)
            attrs["pad"] = tuple(pad)
        return attrs

    def bind_names(self, what: str, names: list[str], args, kwargs, call: ast.Node) -> dict:
        if len(args) > len(names):
            most = f"at most {len(names)} arguments" if names else "no arguments"
            raise SpecArgumentError(f"{what} takes {most}, got "
                                    f"{len(args)}", args[len(names)][1],
                                    notes=(f"{what}({', '.join(names)})",))
        for value, span in args:  # conv(16, 3x3, stride: 2) means stride=2
            node = value.node if isinstance(value, Thunk) else None
            if isinstance(node, ast.Label) and node.name in names:
                raise SpecArgumentError(f"'{node.name}: ...' labels a layer; to pass the argument "
                                        f"'{node.name}' write '{node.name}=...'", span,
                                        expected=f"{node.name}=...", found=f"{node.name}: ...")
        values = {name: arg for name, arg in zip(names, args, strict=False)}
        for name, (value, span, node) in kwargs.items():
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"did you mean '{close[0]}'?" if close else \
                    f"{what} takes: {', '.join(names) or 'no arguments'}"
                raise SpecArgumentError(f"{what} has no parameter '{name}'", span, notes=(hint,))
            if name in values:
                raise SpecArgumentError(f"'{name}' is given both by position and by name", span)
            values[name] = (value, node.span if node is not None else span)  # caret on the value
        return values

    def call_block(self, block: BlockValue, args, kwargs, call: ast.Node, x: int,
                   ctx: Context) -> int:
        definition = block.definition
        if definition in ctx.blocks and any(  # not twice(twice(x)): that is a layer argument
                _inside(call.span, b.span) for b in ctx.blocks[ctx.blocks.index(definition):]):
            cycle = " -> ".join(b.name for b in (*ctx.blocks[ctx.blocks.index(definition):],
                                                 definition))
            raise SpecRecursionError(f"block '{definition.name}' calls itself ({cycle})",
                                     call.span)
        if len(ctx.blocks) >= MAX_BLOCK_DEPTH:
            raise SpecLimitError(f"blocks nested more than {MAX_BLOCK_DEPTH} deep", call.span)
        names = [p.name for p in definition.params]
        values = self.bind_names(definition.name, names, args, kwargs, call)
        local = Env({}, block.env)
        for p in definition.params:
            if p.name not in values and p.default is None:
                name_at = _name_span(definition.span, definition.name)
                raise SpecArgumentError(f"{definition.name} needs a value for '{p.name}'",
                                        call.span, notes=(f"block {definition.name} is defined "
                                                          f"at {_where(name_at)}",))
        inner = Context(ctx.scope, (*ctx.trace, call.span), (*ctx.blocks, definition),
                     ctx.project_target)
        try:
            for p in definition.params:
                if p.name in values:
                    local.names[p.name] = values[p.name][0]
                else:
                    local.names[p.name] = self.evaluate(p.default, local)
            if definition.inline:
                return self.lower(definition.body, local, x, inner)
            return self.scoped(None, inner, lambda c: self.lower(definition.body, local, x, c))
        except NetDSLError as error:  # say which call of the block it happened in
            user_call = call.span.source.filename != PRELUDE
            raise error.within(call_note(call.span, definition.name) if user_call else None,
                               call.span) from None

    # -- finishing ---------------------------------------------------------------------------
    def graph(self, name: str, output: int, init, params, filename: str) -> Graph:
        nodes = tuple(Node(p.id, p.op, p.inputs, frozen(p.attrs),
                           p.full_name() if OPS[p.op].is_module else None, p.span, p.trace)
                      for p in self.nodes)
        return Graph(name, nodes, output, tuple(self.aux), init, frozen(params), filename)


def _where(span: Span) -> str:
    return f"{span.source.filename}:{span.line}:{span.column}"


def _inside(span: Span, outer: Span) -> bool:
    return span.source is outer.source and (outer.line, outer.column) <= (span.line, span.column) \
        and (span.end_line, span.end_column) <= (outer.end_line, outer.end_column)


def _literal(value: object) -> str:
    """A default value as a spec writes it: true, none, 3x3."""
    if value is None or isinstance(value, bool):
        return {None: "none", True: "true", False: "false"}[value]
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _name_span(span: Span, name: str) -> Span:
    """Where a definition starting at ``span`` writes its ``name`` (the caret goes there)."""
    match = re.compile(rf"\b{re.escape(name)}\b").search(span.source.line(span.line),
                                                         span.column - 1)
    if match is None:
        return span
    return Span(span.source, span.line, match.start() + 1, span.line, match.end() + 1)


# --- networks ------------------------------------------------------------------------------

def network_params(network: NetworkValue, lw: Lowerer) -> dict[str, ast.Param]:
    """The parameters a network takes (for an alias: the target's, then its own)."""
    definition = network.definition
    own = {p.name: p for p in definition.params}
    if isinstance(definition, ast.NetworkDef):
        return own  # type: ignore[return-value]
    return {**network_params(_alias_target(network, lw), lw), **own}


def _alias_target(network: NetworkValue, lw: Lowerer) -> NetworkValue:
    """The network an alias fixes parameters of."""
    definition = network.definition
    call = definition.target  # type: ignore[union-attr]
    func = call.func if isinstance(call, ast.Call) else call
    target = lw.evaluate(func, network.env)
    if not isinstance(target, NetworkValue):
        raise SpecTypeError(f"network '{definition.name}' must be another network with some "
                            f"parameters set, found {describe(target)}", func.span)
    return target


def instantiate(network: NetworkValue, overrides: Mapping[str, object], filename: str,
                lw: Lowerer | None = None) -> Graph:
    """Binds a network's parameters (defaults, then ``overrides``) and expands it."""
    lw = lw or Lowerer()
    overrides = dict(overrides)
    input_override = overrides.pop("input", None)
    definition = network.definition
    if isinstance(definition, ast.NetworkAlias):
        target = _alias_target(network, lw)
        local = _bind_network(network, overrides, lw)
        call = definition.target
        args: dict[str, object] = {}
        if isinstance(call, ast.Call):
            names = list(network_params(target, lw))
            if len(call.args) > len(names):
                raise SpecArgumentError(f"network '{target.definition.name}' takes "
                                        f"{len(names)} parameters", call.span)
            args = {n: lw.evaluate(a, local) for n, a in zip(names, call.args, strict=False)}
            args.update({kw.name: lw.evaluate(kw.value, local) for kw in call.kwargs})
        own = {p.name for p in definition.params}
        rest = {k: v for k, v in overrides.items() if k not in own}
        if input_override is not None:
            rest["input"] = input_override
        graph = instantiate(target, {**args, **rest}, filename, lw)
        return Graph(definition.name, graph.nodes, graph.output, graph.aux_outputs, graph.init,
                     frozen({**graph.params, **{k: local.names[k] for k in own}}), filename)
    local = _bind_network(network, overrides, lw)
    return _lower_body(definition, local, lw, input_override, filename)


def _bind_network(network: NetworkValue, overrides: dict, lw: Lowerer) -> Env:
    """The network's own parameters from ``overrides`` and defaults; an override must name
    one of its parameters (or, for an alias, one of its target's)."""
    definition = network.definition
    known = set(network_params(network, lw))
    for name in overrides:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean '{close[0]}'?" if close else \
                f"its parameters are: {', '.join(sorted(known)) or 'none'} (and input)"
            raise OverrideError(f"network '{definition.name}' has no parameter '{name}'",
                                definition.span, notes=(hint,))
    local = Env({}, network.env)
    for p in definition.params:
        if p.name in overrides:
            value = overrides[p.name]
            if isinstance(value, SpecText):
                try:
                    value = lw.evaluate(parse_expression(value, f"<{p.name}={value}>"), local)
                except NetDSLError as error:
                    raise error.within("an override's value is a netdsl value: a number, a size, "
                                       "a list, or a name the spec defines") from None
            local.names[p.name] = value
        elif p.default is not None:
            local.names[p.name] = lw.evaluate(p.default, local)
        else:
            raise OverrideError(f"network '{definition.name}' needs a value for '{p.name}'",
                                p.span, notes=(f"give it as {p.name}=...",))
    return local


def _lower_body(definition: ast.NetworkDef, env: Env, lw: Lowerer, input_override,
                filename: str) -> Graph:
    root = _Scope(None)
    ctx = Context(root)
    init: tuple[str, tuple] = ("torch", ())
    shape = None
    x = -1
    errors: list[NetDSLError] = []
    for stmt in definition.body:
        if isinstance(stmt, ast.InputStmt):
            if x >= 0:
                raise SpecTypeError("'input' must come before the first layer", stmt.span)
            dims = stmt.dims
            if len(dims) == 1 and isinstance(dims[0], ast.Dims):
                shape = dims[0].value
                if min(shape) < 1:
                    raise SpecTypeError(f"every input dimension must be at least 1, found "
                                        f"{_literal(shape)}", dims[0].span)
            else:
                shape = tuple(_dimension(lw, d, env) for d in dims)
            x = lw.add("input", [], {"shape": shape}, stmt.span, None)
        elif isinstance(stmt, ast.InitStmt):
            init = _init_scheme(lw, stmt, env)
        else:
            if x < 0:
                raise SpecTypeError(f"network '{definition.name}' needs 'input CxHxW' before its "
                                    "first layer", stmt.span)
            try:
                x = lw.lower(stmt, env, x, ctx)
            except (SpecLimitError, SpecRecursionError):
                raise  # a runaway expansion ends everything at once
            except NetDSLError as error:  # names, arguments, types: the next line is independent
                if not any(e.span == error.span and e.message == error.message for e in errors):
                    errors.append(error)
                if len(errors) == MAX_REPORTED:
                    break
    if errors:
        raise errors[0] if len(errors) == 1 else SpecErrors(errors)
    if x < 0:
        raise SpecTypeError(f"network '{definition.name}' has no input statement",
                            definition.span)
    if input_override is not None:
        lw.nodes[0].attrs = {"shape": _override_shape(input_override)}
    params = {k: v for k, v in env.names.items()}
    return lw.graph(definition.name, x, init, params, filename)


def _dimension(lw: Lowerer, node: ast.Node, env: Env) -> int:
    value = lw.evaluate(node, env)
    if isinstance(value, Size):
        raise SpecTypeError("write the input as one size, like 3x224x224", node.span)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecTypeError(f"an input dimension must be a whole number of at least 1, found "
                            f"{describe(value)}", node.span)
    return value


def _override_shape(value: object) -> tuple[int, ...]:
    if isinstance(value, str):
        value = tuple(int(v) for v in value.split("x")) \
            if re.fullmatch(r"[0-9]{1,15}(x[0-9]{1,15})*", value) else ()
    if isinstance(value, tuple | list) and value and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        return tuple(value)
    raise OverrideError(f"input must be a shape like 3x224x224, found {value!r}")


def _init_scheme(lw: Lowerer, stmt: ast.InitStmt, env: Env) -> tuple[str, tuple]:
    node = stmt.scheme
    name_node = node.func if isinstance(node, ast.Call) else node
    if not isinstance(name_node, ast.Ref) or name_node.name not in INIT_SCHEMES:
        raise SpecNameError("unknown init scheme", name_node.span,
                            notes=(f"known schemes: {', '.join(INIT_SCHEMES)}",))
    args = tuple(lw.number(a, env) for a in node.args) if isinstance(node, ast.Call) else ()
    if len(args) != INIT_SCHEMES[name_node.name]:
        raise SpecArgumentError(f"init {name_node.name} takes {INIT_SCHEMES[name_node.name]} "
                                f"arguments, got {len(args)}", node.span)
    return name_node.name, args


# --- entry points ---------------------------------------------------------------------------

def load(spec: str | os.PathLike, filename: str | None = None) -> tuple[_Loaded, str]:
    """Reads a spec given as a path or as source text."""
    path = _as_path(spec)
    if path is None:
        loader = Loader([Path.cwd(), BUNDLED_SPECS])
        return loader.load_text(str(spec), filename), filename or "<string>"
    if not _is_file(path):
        raise SpecImportError(f"no such spec file: {path}")
    loader = Loader([path.resolve().parent, BUNDLED_SPECS])
    return _recursion_guard(lambda: loader.load_file(path)), _display(path.resolve())


def spec_path(name: str | os.PathLike) -> Path:
    """A spec named on a command line: always a file, never spec text (a file name may hold
    quotes, newlines or backslashes). A path that is not a file is looked up in the bundled
    zoo."""
    path = Path(name)
    if not _is_file(path) and not path.is_absolute() and _is_file(BUNDLED_SPECS / path):
        return BUNDLED_SPECS / path
    return path


def _as_path(spec: str | os.PathLike) -> Path | None:
    if isinstance(spec, os.PathLike):
        return Path(spec)
    if "\n" not in spec and spec.strip().endswith(".net") and len(spec) < 4096:
        path = Path(spec.strip())
        if not _is_file(path) and not path.is_absolute() and _is_file(BUNDLED_SPECS / path):
            return BUNDLED_SPECS / path
        return path
    return None


def main_network(loaded: _Loaded) -> NetworkValue:
    networks = [loaded.env.names[n] for n in loaded.own
                if isinstance(loaded.env.names[n], NetworkValue)]
    if not networks:
        raise SpecNameError(f"{loaded.module.source.filename} defines no network",
                            notes=("a spec needs 'network NAME:' with an input and layers",))
    return networks[-1]  # type: ignore[return-value]


def lower_spec(spec: str | os.PathLike, overrides: Mapping[str, object] | None = None,
               filename: str | None = None) -> Graph:
    with paused_gc():  # parsing allocates as much as expanding does
        loaded, name = load(spec, filename)
        network = main_network(loaded)
        return _recursion_guard(lambda: instantiate(network, overrides or {}, name))


@contextlib.contextmanager
def paused_gc():
    """Pauses Python's cyclic garbage collector (lowering and checking use it).

    They allocate many objects that all stay alive (nodes, attrs, shapes), and each automatic
    collection rescans them: with it running, the time per block grew about 1.3x from 1,000
    to 10,000 blocks (benchmarks/run.py, frontend). Nothing here needs the collector; it
    runs as usual afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _recursion_guard(work: Callable):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        return work()
    except RecursionError:
        raise SpecLimitError("spec nests too deeply to expand") from None
    finally:
        sys.setrecursionlimit(limit)


__all__ = ["lower_spec", "load", "instantiate", "main_network", "Loader", "SpecText"]
