"""Binding a call's arguments to a callee's parameters, with the same arity, type and "did you
mean" diagnostics for every callee."""

from __future__ import annotations

import difflib

from ..errors import Span, SpecArgumentError, SpecTypeError
from ..ir.ops import REQUIRED, OpRecord, Size, Symbol, ValueProblem, normalize
from ..syntax import tree as ast
from .evaluate import evaluate
from .values import Env, Thunk


def keywords(node: ast.Call, env: Env) -> dict[str, tuple[object, Span, ast.Node]]:
    kwargs: dict[str, tuple[object, Span, ast.Node]] = {}
    for kw in node.kwargs:
        if kw.name in kwargs:
            raise SpecArgumentError(f"argument '{kw.name}' is given twice", kw.span)
        kwargs[kw.name] = (evaluate(kw.value, env), kw.span, kw.value)
    return kwargs


def bind_op(op: OpRecord, args, kwargs, call: ast.Node) -> dict:
    """The op's attributes: every parameter given or defaulted, checked against its kind."""
    names = [p.name for p in op.params]
    values = bind_names(op.name, names, args, kwargs, call)
    attrs = {}
    for p in op.params:
        if p.name in values:
            value, span = values[p.name]
        elif p.default is REQUIRED:
            raise SpecArgumentError(f"{op.name} needs a value for '{p.name}'", call.span,
                                    notes=(f"{op.name}({op.signature()})",))
        else:
            value, span = p.default, call.span
        try:
            attrs[p.name] = normalize(p, value)
        except ValueProblem as problem:
            raise SpecTypeError(f"{op.name}: {problem}", span) from None
    return finish_window(op, attrs, call)


def argument_span(op: OpRecord, args, kwargs, name: str) -> Span | None:
    """Where the call wrote the value of parameter ``name`` (None where it is defaulted)."""
    position = next(i for i, p in enumerate(op.params) if p.name == name)
    if position < len(args):
        return args[position][1]
    if name in kwargs:
        _, span, node = kwargs[name]
        return node.span if node is not None else span
    return None


def binding_key(op: OpRecord, args, kwargs) -> tuple | None:
    """What :func:`bind_op`'s result depends on, as a dict key: the op, the argument values
    with their types, and the keyword names (never the spans, which only its errors read).
    None when an argument is not plain data (a layer passed to an op is an error bind_op
    reports, never a result to share)."""
    try:
        return (op.name, tuple(_value_key(value) for value, _ in args),
                tuple((name, _value_key(value)) for name, (value, _, _) in kwargs.items()))
    except TypeError:
        return None


_SCALARS = frozenset({int, bool, str, Symbol, type(None)})


def _value_key(value: object) -> tuple:
    """``value`` with its type, so that ``1``, ``True`` and ``1.0`` (equal in Python) and
    ``0.0`` and ``-0.0`` (equal, printed differently) bind apart."""
    kind = type(value)
    if kind in _SCALARS:
        return kind, value
    if kind is float:
        return kind, repr(value)
    if kind is tuple or kind is Size:
        return kind, tuple(map(_value_key, value))
    raise TypeError(kind.__name__)


def finish_window(op: OpRecord, attrs: dict, call: ast.Node) -> dict:
    if op.stride_defaults_to_kernel and attrs.get("stride") is None:
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


def bind_names(what: str, names: list[str], args, kwargs, call: ast.Node) -> dict:
    if len(args) > len(names):
        most = f"at most {len(names)} argument{'s' * (len(names) != 1)}" if names else "no arguments"
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






def span_text(span: Span) -> str:
    """Where a span starts, as a diagnostic note names another place: ``file:line:col``."""
    return f"{span.source.filename}:{span.line}:{span.column}"
