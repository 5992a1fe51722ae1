"""The builtins of the language: stack, residual, concat, add, aux and inception.

Each receives its arguments unevaluated (layers are expanded where the builtin puts them) and
lowers them with the :class:`~netdsl.lower.expand.Lowerer`. ``residual``, ``concat``, ``add``,
``stack`` and ``aux`` open no module scope: their layers are elements of the scope they are
written in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import limits
from ..errors import Span, SpecArgumentError, SpecLimitError, SpecTypeError
from ..ir.ops import OpRecord, Size, Symbol, describe
from ..syntax import tree as ast
from .evaluate import evaluate, number, truth
from .naming import Context
from .values import BlockValue, Env, ReduceCount

if TYPE_CHECKING:  # pragma: no cover
    from .expand import Lowerer


def _layer_args(lw: Lowerer, call: ast.Node, allowed: set[str]) -> tuple[list, dict]:
    if not isinstance(call, ast.Call):
        return [], {}
    for kw in call.kwargs:
        if kw.name not in allowed:
            name = call.func.name if isinstance(call.func, ast.Ref) else "this"
            raise SpecArgumentError(f"{name} has no parameter '{kw.name}'", kw.span,
                                    notes=(f"it takes: {', '.join(sorted(allowed)) or 'none'}",))
    return list(call.args), {kw.name: kw.value for kw in call.kwargs}


def _stack(lw: Lowerer, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
    """stack(layers, n): the layers repeated n times, one after another (VGG's stages)."""
    args, _ = _layer_args(lw, call, set())
    if len(args) != 2:
        raise SpecArgumentError(f"stack takes a layer and a count, got {len(args)} argument"
                                f"{'' if len(args) == 1 else 's'}",
                                call.span, notes=("stack(conv3x3(64) -> relu, 2)",))
    count = evaluate(args[1], env)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise SpecTypeError(f"stack count must be a whole number of at least 0, found "
                            f"{describe(count)}", args[1].span)
    if count > limits.MAX_NODES:
        raise SpecLimitError(f"stack of {count:,} copies exceeds the limit of {limits.MAX_NODES:,} "
                             "layers", args[1].span)
    for i in range(count):
        before = len(lw.nodes)
        x = lw.lower(args[0], env, x, ctx)
        if i == 0 and before + (len(lw.nodes) - before) * count > limits.MAX_NODES:  # fail now, not later
            raise SpecLimitError(f"stack of {count:,} copies of {len(lw.nodes) - before:,} layers "
                                 f"exceeds the limit of {limits.MAX_NODES:,} layers", args[1].span)
    return x


def _residual(lw: Lowerer, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
    """residual(body, shortcut=identity, scale=1): shortcut(x) + scale * body(x).
    ``shortcut=project`` inserts a 1x1 conv + bn only where the shapes differ (He et al. 2016,
    option B)."""
    args, kwargs = _layer_args(lw, call, {"shortcut", "scale"})
    if len(args) != 1:
        raise SpecArgumentError(f"residual takes one body, got {len(args)}", call.span,
                                notes=("residual(body, shortcut=project, scale=0.2)",))
    body = lw.lower(args[0], env, x, ctx)
    if "scale" in kwargs:
        factor = number(kwargs["scale"], env)
        body = lw.add("scale", [body], {"factor": float(factor)}, kwargs["scale"].span, ctx,
                      element=False)
    shortcut_ctx = Context(ctx.scope, ctx.trace, ctx.blocks, body)
    shortcut = kwargs.get("shortcut")
    short = lw.lower(shortcut, env, x, shortcut_ctx) if shortcut is not None else x
    return lw.add("add", [body, short], {"residual": True}, call.span, ctx, element=False)


def _branches(op: str):
    def lower_branches(lw: Lowerer, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
        args, _ = _layer_args(lw, call, set())
        if not args:
            raise SpecArgumentError(f"{op} needs at least one branch", call.span)
        outs = [lw.lower(branch, env, x, ctx) for branch in args]
        return lw.add(op, outs, {}, call.span, ctx, element=False)
    return lower_branches


def _aux(lw: Lowerer, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
    """aux(layers, when=true): a side output (GoogLeNet's auxiliary classifiers), computed in
    training mode only; the main path goes on from the same input."""
    args, kwargs = _layer_args(lw, call, {"when"})
    if len(args) != 1:
        raise SpecArgumentError(f"aux takes one classifier, got {len(args)}", call.span)
    if "when" in kwargs and not truth(kwargs["when"], env):
        return x
    lw.aux.append(lw.lower(args[0], env, x, ctx))
    return x


_POOLS = {"pool": "maxpool", "maxpool": "maxpool", "avgpool": "avgpool"}


def _inception_branch(arg: ast.Node) -> tuple[str | tuple, list[ast.Node], Span]:
    """Splits ``3x3: r96 -> 128`` / ``pool: 32`` / ``pool`` into its key and its counts."""
    head, rest = (arg.items[0], list(arg.items[1:])) if isinstance(arg, ast.Chain) else (arg, [])
    if isinstance(head, ast.Keyed):
        return head.key, [head.body, *rest], arg.span
    if isinstance(head, ast.Label) and head.name in _POOLS:
        return head.name, [head.body, *rest], arg.span
    if isinstance(head, ast.Ref) and head.name in _POOLS and not rest:
        return head.name, [], arg.span
    raise SpecArgumentError("an inception branch is written 'KxK: [rN ->] N' or 'pool: N'",
                            arg.span, notes=("inception(1x1:64, 3x3:r96->128, 5x5:r16->32, "
                                             "pool:32)",))


def _inception(lw: Lowerer, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
    """inception(1x1:64, 3x3:r96->128, 5x5:r16->32, pool:32, unit=conv_relu, stride=1):
    GoogLeNet's module as its Table 1 writes it (Szegedy et al. 2015). Branch i is named
    ``branch{i}``; ``rN`` is a 1x1 reduction; each conv is ``unit(c, kernel, pad=same)``;
    ``stride`` applies to the last layer of every branch (Inception-v2's grid reductions)."""
    args, kwargs = _layer_args(lw, call, {"unit", "stride"})
    unit = evaluate(kwargs["unit"], env) if "unit" in kwargs else env.lookup("conv_relu")
    if not isinstance(unit, BlockValue | OpRecord):
        raise SpecTypeError(f"unit must be a block, found {describe(unit)}", kwargs["unit"].span)
    stride = number(kwargs["stride"], env) if "stride" in kwargs else 1
    if not args:
        raise SpecArgumentError("inception needs at least one branch", call.span)
    outs = []
    for i, arg in enumerate(args, 1):
        key, counts, span = _inception_branch(arg)
        steps = _inception_steps(lw, env, key, counts, stride, unit)
        site = ast.Call(span, ast.Ref(span, "inception"), (), ())

        def lower_branch(c: Context, steps=steps, span=span, site=site) -> int:
            y = x
            for callee, step_args, step_kwargs in steps:
                kw = {k: (v, span, None) for k, v in step_kwargs.items()}
                y = lw.apply(callee, [(a, span) for a in step_args], kw, site, env, y, c)
            return y

        outs.append(lw.scoped(f"branch{i}", ctx, lower_branch))
    return lw.add("concat", outs, {}, call.span, ctx, element=False)


def _inception_steps(lw: Lowerer, env: Env, key, counts, stride, unit) -> list:
    """The layers of one inception branch as (callee, args, kwargs) triples."""
    steps: list[tuple[object, list, dict]] = []
    if isinstance(key, str):  # a pooling branch, then an optional 1x1 projection
        steps.append((env.lookup(_POOLS[key]), [Size((3, 3))], {"stride": stride, "pad": 1}))
    for position, count_node in enumerate(counts):
        value = evaluate(count_node, env)
        if isinstance(value, ReduceCount):
            if position:
                raise SpecArgumentError("a reduction rN must come first in its branch",
                                        count_node.span)
            steps.append((unit, [value.value, Size((1, 1))], {}))
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            kernel = Size((1, 1)) if isinstance(key, str) else Size(key)
            steps.append((unit, [value, kernel], {"pad": Symbol("same")}))
        else:
            raise SpecTypeError(f"expected a channel count, found {describe(value)}",
                                count_node.span)
    if not isinstance(key, str) and stride != 1:
        steps[-1][2]["stride"] = stride
    return steps


BUILTINS: dict[str, tuple[Callable, str]] = {
    "stack": (_stack, "stack(layers, n): layers repeated n times"),
    "residual": (_residual, "residual(body, shortcut=identity|project|layers, scale=1)"),
    "concat": (_branches("concat"), "concat(a, b, ...): branches joined along channels"),
    "add": (_branches("add"), "add(a, b, ...): branches summed"),
    "aux": (_aux, "aux(layers, when=true): an auxiliary output, active in training"),
    "inception": (_inception, "inception(1x1:64, 3x3:r96->128, 5x5:r16->32, pool:32)"),
}
