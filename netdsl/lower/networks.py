"""Networks: binding their parameters (defaults, overrides, aliases) and lowering their bodies
into a :class:`~netdsl.ir.graph.Graph`; :func:`lower_spec` is lowering's entry point."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import replace

from .. import limits
from ..errors import (
    NetDSLError,
    OverrideError,
    SpecArgumentError,
    SpecErrors,
    SpecLimitError,
    SpecNameError,
    SpecRecursionError,
    SpecShapeError,
    SpecTypeError,
    TensorNameError,
)
from ..ir.graph import Graph, frozen
from ..ir.init import SCHEMES
from ..ir.ops import Size, describe
from ..ir.params import spec_literal
from ..limits import paused_gc, recursion_guard
from ..syntax import tree as ast
from ..syntax.parser import parse_expression
from .evaluate import evaluate, finite, number, resolve
from .expand import Lowerer
from .loader import load, main_network, prelude
from .naming import Context, Scope, unlink
from .values import BadNumber, Env, NetworkValue, OverrideText, TensorValue, tensor_scope


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
    target = evaluate(func, network.env)
    if not isinstance(target, NetworkValue):
        raise SpecTypeError(f"network '{definition.name}' must be another network with some "
                            f"parameters set, found {describe(target)}", func.span)
    return target


def instantiate(network: NetworkValue, overrides: Mapping[str, object], filename: str,
                lw: Lowerer | None = None) -> Graph:
    """Binds a network's parameters (defaults, then ``overrides``) and expands it."""
    if lw is None:  # this compile's own lowering: its scopes are unlinked when it is done
        lw = Lowerer(prelude())
        try:
            return instantiate(network, overrides, filename, lw)
        finally:
            unlink(lw.nodes)
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
            args = {n: evaluate(a, local) for n, a in zip(names, call.args, strict=False)}
            args.update({kw.name: evaluate(kw.value, local) for kw in call.kwargs})
        own = {p.name for p in definition.params}
        rest = {k: v for k, v in overrides.items() if k not in own}
        if input_override is not None:
            rest["input"] = input_override
        graph = instantiate(target, {**args, **rest}, filename, lw)
        # the target's graph under the alias's name: nodes, shapes and outputs as they are
        return replace(graph, name=definition.name, filename=filename,
                       params=frozen({**graph.params, **{k: local.names[k] for k in own}}))
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
            if isinstance(value, OverrideText):
                try:
                    value = evaluate(parse_expression(value, f"<{p.name}={value}>"), local)
                except NetDSLError as error:
                    raise error.within("an override's value is a netdsl value: a number, a size, "
                                       "a list, or a name the spec defines") from None
            _check_override(p.name, value, definition)
            local.names[p.name] = value
        elif p.default is not None:
            local.names[p.name] = evaluate(p.default, local)
        else:
            raise OverrideError(f"network '{definition.name}' needs a value for '{p.name}'",
                                p.span, notes=(f"give it as {p.name}=...",))
    return local


OVERRIDE_NOTE = "whole numbers have at most 15 digits, decimals at most 40 characters, and " \
    "every number is at most 10^15, as for a spec's literals (docs/security.md)"


def _check_override(name: str, value: object, definition: ast.Node) -> None:
    """What Hydra or a Python caller may hand over that no netdsl literal can be: null,
    nan/inf, and numbers beyond the rule every literal obeys (limits.decimal_problem)."""
    if value is None:
        raise OverrideError(f"override {name}=null gives no value", definition.span,
                            notes=("netdsl has no null: give a number, a size, a list, or a "
                                   "name the spec defines",))
    if isinstance(value, BadNumber):  # found in the command line's text (cli._checked_numbers)
        raise SpecLimitError(f"override {name}={value.text} {value.problem}", definition.span,
                             notes=(OVERRIDE_NOTE,))
    if not finite(value):  # a Python or Hydra nan/inf: no output could write it
        raise OverrideError(f"override {name}={value!r} is not a finite number", definition.span)
    if _out_of_range(value, lambda v: abs(v) > limits.MAX_NUMBER):
        raise SpecLimitError(f"override {name}={_shown(value)} is beyond {limits.MAX_NUMBER:.0e}",
                             definition.span, notes=(OVERRIDE_NOTE,))
    if _out_of_range(value, lambda v: isinstance(v, float) and 0 < abs(v) < limits.MIN_FLOAT):
        raise SpecLimitError(f"override {name}={_shown(value)} is below "
                             f"{limits.MIN_FLOAT:.1e}, the least normal double",
                             definition.span, notes=(OVERRIDE_NOTE,))


def _out_of_range(value: object, test) -> bool:
    if isinstance(value, tuple | list):
        return any(_out_of_range(v, test) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool) and test(value)


def _shown(value: object) -> str:
    """``value`` for a message: a Python int of 5,000 digits has no str (ValueError)."""
    try:
        return limits.shown(repr(value))
    except ValueError:
        return "a number of thousands of digits"


def _lower_body(definition: ast.NetworkDef, env: Env, lw: Lowerer, input_override,
                filename: str) -> Graph:
    root = Scope(None)
    ctx = Context(root)
    init: tuple[str, tuple] = ("torch", ())
    shape = None
    x = -1
    errors: list[NetDSLError] = []
    params, env = env, tensor_scope(definition.body, env)
    outputs: tuple[tuple[str, int], ...] = ()
    for stmt in definition.body:
        if isinstance(stmt, ast.InputStmt):
            if x >= 0:
                raise SpecTypeError("'input' must come before the first layer", stmt.span)
            dims = stmt.dims
            if len(dims) == 1 and isinstance(dims[0], ast.Dims):
                shape = dims[0].value
                if min(shape) < 1:
                    raise SpecTypeError(f"every input dimension must be at least 1, found "
                                        f"{spec_literal(shape)}", dims[0].span)
            else:
                shape = tuple(_dimension(lw, d, env) for d in dims)
            if input_override is not None:  # before any layer: every shape follows from it
                shape = _override_shape(input_override)
            x = lw.add("input", [], {"shape": shape}, stmt.span, None)
        elif isinstance(stmt, ast.OutputStmt):
            if outputs:
                raise TensorNameError("a network has one 'output' statement", stmt.span)
            outputs = named_outputs(stmt, env)
        elif isinstance(stmt, ast.InitStmt):
            init = _init_scheme(lw, stmt, env)
        else:
            if x < 0:
                raise SpecTypeError(f"network '{definition.name}' needs 'input CxHxW' before its "
                                    "first layer", stmt.span)
            try:
                if isinstance(stmt, ast.Assign):
                    x = lw.lower(stmt.value, env, x, ctx)
                    env.names[stmt.name] = TensorValue(x)
                else:
                    x = lw.lower(stmt, env, x, ctx)
            except (SpecLimitError, SpecRecursionError):
                raise  # a runaway expansion ends everything at once
            except NetDSLError as error:  # names, arguments, types: the next line is independent
                if not any(e.span == error.span and e.message == error.message for e in errors):
                    errors.append(error)
                if len(errors) == limits.MAX_REPORTED or isinstance(error, SpecShapeError):
                    break  # later shapes depend on this one: their errors would be noise
    if errors:
        raise errors[0] if len(errors) == 1 else SpecErrors(errors)
    if x < 0:
        raise SpecTypeError(f"network '{definition.name}' has no input statement",
                            definition.span)
    params = {k: v for k, v in params.names.items()}
    return lw.graph(definition.name, x, init, params, filename, outputs)


def named_outputs(stmt: ast.OutputStmt, env: Env) -> tuple[tuple[str, int], ...]:
    """``output p2, "0": p3``: each item a tensor name, keyed by itself or by its label."""
    out: dict[str, int] = {}
    for item in stmt.items:
        key, ref = (item.name, item.body) if isinstance(item, ast.Label) else (None, item)
        if not isinstance(ref, ast.Ref):
            raise SpecTypeError("an output is a tensor name, or 'key: name'", item.span,
                                notes=("name the tensor on its line (p5 = ...), then "
                                       "output p5",))
        value = resolve(ref, env)
        if not isinstance(value, TensorValue):
            raise TensorNameError(f"output '{ref.name}' is not a named tensor, but "
                                  f"{describe(value)}", ref.span)
        key = ref.name if key is None else key
        if not key or key in out:
            raise TensorNameError(f"output key '{key}' is given twice" if key else
                                  "an output key cannot be empty", item.span)
        out[key] = value.node
    return tuple(out.items())


def _dimension(lw: Lowerer, node: ast.Node, env: Env) -> int:
    value = evaluate(node, env)
    if isinstance(value, Size):
        raise SpecTypeError("write the input as one size, like 3x224x224", node.span)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecTypeError(f"an input dimension must be a whole number of at least 1, found "
                            f"{describe(value)}", node.span)
    return value


def _override_shape(given: object) -> tuple[int, ...]:
    value = given
    if isinstance(value, str):
        value = tuple(int(v) for v in value.split("x")) \
            if re.fullmatch(r"[0-9]{1,15}(x[0-9]{1,15})*", value) else ()
    if isinstance(value, tuple | list) and value and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= limits.MAX_NUMBER
            for v in value):
        return tuple(value)
    try:
        shown = given if isinstance(given, str) else given.text \
            if isinstance(given, BadNumber) else \
            str(list(given)) if isinstance(given, tuple | list) else repr(given)
    except ValueError:  # a Python int of 5,000 digits has no str
        shown = "a number of thousands of digits"
    raise OverrideError(f"input must be a shape like 3x224x224, found {shown}",
                        notes=("every dimension a whole number from 1 to 10^15: input=3x64x64 "
                               "or input=[3,64,64]",))


def _init_scheme(lw: Lowerer, stmt: ast.InitStmt, env: Env) -> tuple[str, tuple]:
    node = stmt.scheme
    name_node = node.func if isinstance(node, ast.Call) else node
    if not isinstance(name_node, ast.Ref) or name_node.name not in SCHEMES:
        raise SpecNameError("unknown init scheme", name_node.span,
                            notes=(f"known schemes: {', '.join(SCHEMES)}",))
    args = tuple(number(a, env) for a in node.args) if isinstance(node, ast.Call) else ()
    wanted = len(SCHEMES[name_node.name].params)
    if len(args) != wanted:
        raise SpecArgumentError(f"init {name_node.name} takes {wanted} arguments, got "
                                f"{len(args)}", node.span)
    return name_node.name, args


def lower_spec(spec: str | os.PathLike, overrides: Mapping[str, object] | None = None,
               filename: str | None = None, base: str | os.PathLike | None = None) -> Graph:
    with paused_gc():  # parsing allocates as much as expanding does
        loaded, name = load(spec, filename, base)
        network = main_network(loaded)
        return recursion_guard(lambda: instantiate(network, overrides or {}, name))
