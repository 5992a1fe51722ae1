"""Ops that move or combine tensors: the network input, dropout, flatten, a constant scale,
and the joins the builtins make (concat along channels, sums)."""

from __future__ import annotations

from math import prod

from ..params import fmt_shape
from ..record import (
    Attrs,
    OpRecord,
    Param,
    Shape,
    ShapeProblem,
    Strides,
    TorchExpression,
    TorchModule,
    folded_partials,
    viewed_strides,
)
from .common import no_macs, no_params, one_operand, pointwise, same_shape, spatial

INPUT = OpRecord(
    name="input", doc="The network input.", params=(), arity=0,
    infer=lambda a, ins: a["shape"], count_params=no_params, macs=no_macs, window=pointwise,
    view=False, inplace=False,
    backward_needs_output=True,  # the caller's tensor: nothing may overwrite it
    weight_layer=False,
    ends_features=False, init_role=None, torch=None,
    display=lambda a, out: f"input {fmt_shape(out)}", style="io", trailing=False,
)

DROPOUT = OpRecord(
    name="dropout", doc="Dropout (active in training only).", params=(Param("p", "prob", 0.5),),
    arity=1, infer=same_shape, count_params=no_params, macs=no_macs, window=pointwise,
    view=True,  # the identity at inference
    inplace=False, backward_needs_output=True, weight_layer=False, ends_features=False,
    init_role=None,
    torch=TorchModule("torch.nn.Dropout", lambda a, ins, inplace: ((), {"p": a["p"]})),
    display=lambda a, out: f"dropout {a['p']}", style="activation", trailing=True,
    training_mask_bytes=1,  # a bool per value
)


def _flatten(a: Attrs, ins: list[Shape]) -> Shape:
    return (prod(ins[0]),)


def _flattened_strides(a: Attrs, shape: Shape, strides: Strides) -> Strides | None:
    """torch.flatten's rule: a view when the axes merge (each, 1-sized ones aside, steps
    over exactly the next one), else a copy (after a crop, a permute, or of a channels-last
    map)."""
    return viewed_strides((1, *shape), strides, (1, prod(shape)))


FLATTEN = OpRecord(
    name="flatten", doc="CxHxW to a flat vector of C*H*W.", params=(), arity=1, infer=_flatten,
    count_params=no_params, macs=no_macs, window=pointwise, view=True, inplace=False,
    backward_needs_output=True, weight_layer=False, ends_features=True, init_role=None,
    torch=TorchModule("torch.nn.Flatten", lambda a, ins, inplace: ((1,), {})),
    display=lambda a, out: "flatten", style="shape", trailing=True,
    view_strides=_flattened_strides,
)

SCALE = OpRecord(
    name="scale", doc="Multiplies by a constant (Inception-ResNet's residual scaling).",
    params=(Param("factor", "float"),), arity=1, infer=same_shape, count_params=no_params,
    macs=no_macs, window=pointwise, view=False, inplace=False, backward_needs_output=False,
    weight_layer=False, ends_features=False, init_role=None,
    torch=TorchExpression(lambda a, xs: f"{xs[0]} * {a['factor']!r}"),
    display=lambda a, out: f"x{a['factor']}", style="merge", trailing=False, layout="elementwise",
)


def _concat_infer(a: Attrs, ins: list[Shape]) -> Shape:
    for i, shape in enumerate(ins):
        spatial(f"concat branch {i + 1}", shape)
    if len({s[1:] for s in ins}) > 1:
        listing = ", ".join(f"branch {i + 1} gives {fmt_shape(s)}" for i, s in enumerate(ins))
        raise ShapeProblem(f"concat branches disagree spatially: {listing}",
                           expected="the same HxW in every branch",
                           found=", ".join(f"{s[1]}x{s[2]}" for s in ins))
    return (sum(s[0] for s in ins), *ins[0][1:])


CONCAT = OpRecord(
    name="concat", doc="Concatenates its branches along channels.", params=(), arity=-1,
    infer=_concat_infer, count_params=no_params, macs=no_macs, window=pointwise, view=False,
    inplace=False, backward_needs_output=False, weight_layer=False, ends_features=False,
    init_role=None, torch=TorchExpression(lambda a, xs: f"torch.cat([{', '.join(xs)}], 1)"),
    layout="memory_format",  # channels-last when every input is
    display=lambda a, out: "concat", style="merge", trailing=False,
    gradient_passes_through=True,  # each input's gradient is a slice of the output's
)


def _add_infer(a: Attrs, ins: list[Shape]) -> Shape:
    if any(s != ins[0] for s in ins):
        raise ShapeProblem("added tensors differ in shape: "
                           + " vs ".join(fmt_shape(s) for s in ins),
                           expected=fmt_shape(ins[0]),
                           found=next(fmt_shape(s) for s in ins if s != ins[0]))
    return ins[0]


ADD = OpRecord(
    name="add", doc="Sums its branches.", params=(), arity=-1, infer=_add_infer,
    count_params=no_params, macs=no_macs, window=pointwise, view=one_operand,
    inplace=True,  # torchvision's `out += identity`: a two-way sum may reuse its first input
    backward_needs_output=False, weight_layer=False, ends_features=False, init_role=None,
    torch=TorchExpression(lambda a, xs: " + ".join(xs),
                          inplace_statement=lambda xs: f"{xs[0]} += {xs[1]}"),
    display=lambda a, out: "+", style="merge", trailing=False, layout="elementwise",
    temporaries=folded_partials,  # `a + b + c` (three branches or more)
    gradient_passes_through=True,  # each input's gradient is the output's
)

RECORDS = (INPUT, DROPOUT, FLATTEN, SCALE, CONCAT, ADD)
