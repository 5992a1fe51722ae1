"""The builtins of the language: stack, residual, concat, add, aux and inception.

Each declares its signature, so a call is bound by the same binder as ops and blocks (same
arity, unknown-parameter and "did you mean" diagnostics); the handler then receives its
arguments unevaluated (layers are expanded where the builtin puts them). ``residual``,
``concat``, ``add``, ``stack`` and ``aux`` open no module scope: their layers are elements of
the scope they are written in. Builtins are hygienic: the layers they add themselves (the
inception pool branch, its default unit) come from the op table and the prelude, never from
names the caller defines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .. import limits
from ..errors import (
    ModuleNameError,
    Span,
    SpecArgumentError,
    SpecLimitError,
    SpecNameError,
    SpecTypeError,
)
from ..ir.ops import OPS, OpRecord, Size, Symbol, describe
from ..syntax import tree as ast
from .binder import bind_names
from .evaluate import evaluate, number, truth
from .naming import Context, check_label
from .values import BlockValue, Env, ReduceCount


class Lowerer(Protocol):
    """What a builtin's handler uses of the expander (``netdsl.lower.expand.Lowerer``, whose
    methods the builtins are, kept in this file): declared here so that this module does not
    import the expander, which imports it to dispatch the builtins."""

    nodes: Sequence[object]  # the nodes added so far (only counted here)
    aux: list[int]  # the auxiliary heads' outputs
    prelude: Env

    def add(self, op: str, inputs: list[int], attrs: Mapping[str, object], span: Span | None,
            ctx: Context | None, element: bool = True,
            where: Callable[[str], Span | None] | None = None) -> int: ...

    def lower(self, node: ast.Node, env: Env, x: int, ctx: Context) -> int: ...

    def apply(self, callee, args, kwargs, call: ast.Node, env: Env, x: int,
              ctx: Context) -> int: ...

    def scoped(self, label: str | None, ctx: Context, lower: Callable[[Context], int],
               where: Span | None = None, origin: tuple | None = None) -> int: ...


@dataclass(frozen=True)
class Signature:
    """A builtin's parameters: required ones in order, optional ones with their default as a
    spec writes it, and an optional variadic tail (``concat(a, b, ...)``) of at least
    ``least`` arguments."""

    required: tuple[str, ...]
    optional: tuple[tuple[str, str], ...] = ()
    variadic: str | None = None
    least: int = 1

    def text(self, name: str) -> str:
        parts = [*self.required, *(f"{k}={v}" for k, v in self.optional)]
        if self.variadic:
            parts.insert(len(self.required), f"{self.variadic}...")
        return f"{name}({', '.join(parts)})"


def bind(name: str, signature: Signature, call: ast.Node) -> dict[str, object]:
    """The call's argument nodes by parameter name (a variadic tail as a list)."""
    args = list(call.args) if isinstance(call, ast.Call) else []
    kwargs = {kw.name: (kw.value, kw.span, kw.value) for kw in call.kwargs} \
        if isinstance(call, ast.Call) else {}
    names = [*signature.required, *(k for k, _ in signature.optional)]
    bound: dict[str, object] = {}
    if signature.variadic:
        tail = args[len(signature.required):]
        if len(tail) < signature.least:
            raise _too_few(name, signature, len(tail), call.span)
        bound[signature.variadic] = tail
        args = args[:len(signature.required)]
        names = [k for k, _ in signature.optional]
        positional = dict(zip(signature.required, args, strict=False))
        values = bind_names(name, names, [], kwargs, call)
    else:
        values = bind_names(name, names, [(a, a.span) for a in args], kwargs, call)
        positional = {}
    bound.update(positional)
    bound.update({k: v[0] for k, v in values.items()})
    for required in signature.required:
        if required not in bound:
            raise SpecArgumentError(f"{name} needs a value for '{required}'", call.span,
                                    notes=(signature.text(name),))
    return bound


def _too_few(name: str, signature: Signature, given: int, span: Span) -> SpecArgumentError:
    """A merge of one branch would compile to nothing (the branch itself): almost always a
    forgotten ``identity`` (a residual sum) or a branch lost in editing."""
    one = signature.variadic[:-2] if signature.variadic else "argument"
    if signature.least == 1:
        return SpecArgumentError(f"{name} needs at least one {one}", span,
                                 notes=(signature.text(name),))
    alone = (f"{name} of one {one} is that {one} itself: write the {one} alone, or give "
             f"the other (identity is the input: {name}(identity, ...))",) if given == 1 else ()
    return SpecArgumentError(
        f"{name} needs at least {signature.least} {signature.variadic}, found {given}", span,
        notes=(*alone, signature.text(name)))


def _stack(lw: Lowerer, a: dict, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
    """stack(layers, n): the layers repeated n times, one after another (VGG's stages)."""
    args = [a["layers"], a["n"]]
    count = evaluate(args[1], env)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise SpecTypeError(f"stack count must be a whole number of at least 0, found "
                            f"{describe(count)}", args[1].span)
    if count > limits.MAX_NODES:
        raise SpecLimitError(f"stack of {count:,} copies exceeds the limit of {limits.MAX_NODES:,} "
                             "layers", args[1].span)
    names, start = _copy_names(a, env)
    index = _index_name(a, env)
    for i in range(count):
        before = len(lw.nodes)
        copy_env = env if index is None else Env({index: i}, env)
        try:
            if names is None:
                x = lw.lower(args[0], copy_env, x, ctx)
            else:  # each copy its own labelled scope: denselayer1, denselayer2, ...
                label = names.replace("{}", str(start + i))
                check_label(label, a["names"].span)
                x = lw.scoped(label, ctx, lambda c, x=x, e=copy_env: lw.lower(args[0], e, x, c),
                              a["names"].span)
        except ModuleNameError as error:
            if i == 0 or names is not None:
                raise
            raise error.within('stack repeats its layers in one scope, so a label inside '
                               'them is taken twice: name the copies with '
                               'stack(..., names="copy{}")') from None
        if i == 0 and before + (len(lw.nodes) - before) * count > limits.MAX_NODES:  # fail now, not later
            raise SpecLimitError(f"stack of {count:,} copies of {len(lw.nodes) - before:,} layers "
                                 f"exceeds the limit of {limits.MAX_NODES:,} layers", args[1].span)
    return x


def _index_name(a: dict, env: Env) -> str | None:
    """stack's ``index=j``: a name the copies' layers read as their position, 0 for the
    first, so each copy can differ (stochastic depth growing block by block, as torchvision's
    EfficientNet and ConvNeXt set it). A new name: it may not hide one in scope."""
    if "index" not in a:
        return None
    node = a["index"]
    if not isinstance(node, ast.Ref):
        raise SpecTypeError("stack's index is a new name for the copy's position, such as "
                            "index=j", node.span)
    hidden = env.lookup(node.name)
    if hidden is not None:
        raise SpecNameError(f"stack's index '{node.name}' would hide {describe(hidden)}",
                            node.span, notes=("choose a name not used here, such as 'copy'",))
    return node.name


def _copy_names(a: dict, env: Env) -> tuple[str | None, int]:
    """stack's ``names="denselayer{}"`` (``{}`` is the copy's number, from ``start=1``)."""
    if "names" not in a:
        if "start" in a:
            raise SpecArgumentError("stack's start= numbers named copies; give names= too",
                                    a["start"].span)
        return None, 1
    names = evaluate(a["names"], env)
    if not isinstance(names, str) or names.count("{}") != 1:
        raise SpecTypeError(f"stack's names must be a string with one '{{}}' for the copy's "
                            f"number, found {describe(names)}", a["names"].span,
                            notes=('stack(denselayer(32), 6, names="denselayer{}")',))
    start = evaluate(a["start"], env) if "start" in a else 1
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise SpecTypeError(f"stack's start must be a whole number of at least 0, found "
                            f"{describe(start)}", a["start"].span)
    return names, start


def _residual(lw: Lowerer, kwargs: dict, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
    """residual(body, shortcut=identity, scale=1): shortcut(x) + scale * body(x).
    ``shortcut=project`` inserts a 1x1 conv + bn only where the shapes differ (He et al. 2016,
    option B)."""
    body = lw.lower(kwargs["body"], env, x, ctx)
    if "scale" in kwargs:
        factor = number(kwargs["scale"], env)
        body = lw.add("scale", [body], {"factor": float(factor)}, kwargs["scale"].span, ctx,
                      element=False)
    shortcut_ctx = Context(ctx.scope, ctx.trace, ctx.blocks, body)
    shortcut = kwargs.get("shortcut")
    short = lw.lower(shortcut, env, x, shortcut_ctx) if shortcut is not None else x
    return lw.add("add", [body, short], {"residual": True}, call.span, ctx, element=False)


def _branches(op: str):
    def lower_branches(lw: Lowerer, a: dict, call: ast.Node, env: Env, x: int,
                       ctx: Context) -> int:
        outs = [lw.lower(branch, env, x, ctx) for branch in a["branches"]]
        return lw.add(op, outs, {}, call.span, ctx, element=False)
    return lower_branches


def _aux(lw: Lowerer, kwargs: dict, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
    """aux(layers, when=true): a side output (GoogLeNet's auxiliary classifiers), computed in
    training mode only; the main path goes on from the same input."""
    if "when" in kwargs and not truth(kwargs["when"], env):
        return x
    lw.aux.append(lw.lower(kwargs["layers"], env, x, ctx))
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


def _inception(lw: Lowerer, kwargs: dict, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
    """inception(1x1:64, 3x3:r96->128, 5x5:r16->32, pool:32, unit=conv_relu, stride=1):
    GoogLeNet's module as its Table 1 writes it (Szegedy et al. 2015). Branch i is named
    ``branch{i}``; ``rN`` is a 1x1 reduction; each conv is ``unit(c, kernel, pad=same)``;
    ``stride`` applies to the last layer of every branch (Inception-v2's grid reductions)."""
    args = kwargs["branches"]
    # the default unit is the prelude's, whatever the caller calls conv_relu
    unit = evaluate(kwargs["unit"], env) if "unit" in kwargs else lw.prelude.lookup("conv_relu")
    if not isinstance(unit, BlockValue | OpRecord):
        raise SpecTypeError(f"unit must be a block, found {describe(unit)}", kwargs["unit"].span)
    stride = number(kwargs["stride"], env) if "stride" in kwargs else 1
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
        steps.append((OPS[_POOLS[key]], [Size((3, 3))], {"stride": stride, "pad": 1}))
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


# name: (handler, signature, doc)
BUILTINS: dict[str, tuple[Callable, Signature, str]] = {
    "stack": (_stack, Signature(("layers", "n"), (("names", "none"), ("start", "1"),
                                                    ("index", "none"))),
              "stack(layers, n, names=none, start=1): layers repeated n times; "
              'names="layer{}" labels each copy with its number'),
    "residual": (_residual, Signature(("body",), (("shortcut", "identity"), ("scale", "1"))),
                 "residual(body, shortcut=identity|project|layers, scale=1)"),
    # a merge of one branch would be a silent no-op: two at least
    "concat": (_branches("concat"), Signature((), (), "branches", least=2),
               "concat(a, b, ...): branches joined along channels"),
    "add": (_branches("add"), Signature((), (), "branches", least=2),
            "add(a, b, ...): branches summed"),
    "mul": (_branches("mul"), Signature((), (), "branches", least=2),
            "mul(a, b, ...): branches multiplied elementwise (squeeze-and-excitation)"),
    "aux": (_aux, Signature(("layers",), (("when", "true"),)),
            "aux(layers, when=true): an auxiliary output, active in training"),
    "inception": (_inception, Signature((), (("unit", "conv_relu"), ("stride", "1")), "branches"),
                  "inception(1x1:64, 3x3:r96->128, 5x5:r16->32, pool:32)"),
}
