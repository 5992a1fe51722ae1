"""Layers with weights: convolution and fully connected.

A MAC is one multiply-accumulate: ``out_numel * in_channels/groups * kh * kw`` for a
convolution and ``in * out`` for a fully connected layer, as ``torch.utils.flop_counter``
counts them (two FLOPs per MAC; biases are not counted).
"""

from __future__ import annotations

from ..ops import GLOBAL, Attrs, OpRecord, Param, Shape, ShapeProblem, TorchModule, fmt_shape
from .common import kernel_window, sliding, spatial, strided

# per-layer standard deviation for `init trunc_normal` (Inception-v3's auxiliary head)
_STD = Param("std", "optfloat", None)


def _conv_infer(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = spatial("conv", ins[0])
    g = a["groups"]
    if c % g or a["out"] % g:
        raise ShapeProblem(f"groups={g} must divide both the input channels ({c}) and the "
                           f"output channels ({a['out']})", expected=f"multiples of {g}",
                           found=f"{c} in, {a['out']} out")
    return (a["out"], *sliding("conv", (h, w), a))


def _conv_params(a: Attrs, ins: list[Shape]) -> int:
    kh, kw = a["kernel"]
    return a["out"] * (ins[0][0] // a["groups"]) * kh * kw + (a["out"] if a["bias"] else 0)


def _conv_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    kh, kw = a["kernel"]
    return out[0] * out[1] * out[2] * (ins[0][0] // a["groups"]) * kh * kw


def _conv_args(a: Attrs, ins: list[Shape], inplace: bool) -> tuple[tuple, dict]:
    return (ins[0][0], a["out"]), {"kernel_size": a["kernel"], "stride": a["stride"],
                                    "padding": a["pad"], "dilation": a["dilation"],
                                    "groups": a["groups"], "bias": a["bias"]}


def _conv_display(a: Attrs, out: Shape) -> str:
    groups = f", g{a['groups']}" if a["groups"] > 1 else ""
    return f"conv {fmt_shape(a['kernel'])}{strided(a['stride'])}, {a['out']}{groups}"


CONV = OpRecord(
    name="conv",
    doc="2-D convolution; input channels are inferred. pad=same keeps HxW at stride 1 (odd "
        "kernels).",
    params=(Param("out", "count"), Param("kernel", "size"), Param("stride", "size", 1),
            Param("pad", "pad", 0), Param("dilation", "size", 1), Param("groups", "count", 1),
            Param("bias", "bool", True), _STD),
    arity=1, infer=_conv_infer, count_params=_conv_params, macs=_conv_macs,
    window=kernel_window, view=False, inplace=False, backward_needs_output=False,
    weight_layer=True, ends_features=False, init_role="conv",
    torch=TorchModule("torch.nn.Conv2d", _conv_args), display=_conv_display,
    style="weight", trailing=False,
)


def _fc_infer(a: Attrs, ins: list[Shape]) -> Shape:
    if len(ins[0]) != 1:
        raise ShapeProblem(f"fc needs a flat input, found {fmt_shape(ins[0])}; put flatten "
                           "(or gap -> flatten) before it", expected="a flat vector",
                           found=fmt_shape(ins[0]))
    return (a["out"],)


FC = OpRecord(
    name="fc",
    doc="Fully connected layer on a flat input.",
    params=(Param("out", "count"), Param("bias", "bool", True), _STD),
    arity=1, infer=_fc_infer,
    count_params=lambda a, ins: ins[0][0] * a["out"] + (a["out"] if a["bias"] else 0),
    macs=lambda a, ins, out: ins[0][0] * a["out"],
    window=lambda a, ins, out: GLOBAL,  # every output sees the whole grid it was flattened from
    view=False, inplace=False, backward_needs_output=False, weight_layer=True,
    ends_features=False, init_role="linear",
    torch=TorchModule("torch.nn.Linear",
                      lambda a, ins, inplace: ((ins[0][0], a["out"]), {"bias": a["bias"]})),
    display=lambda a, out: f"fc {a['out']}", style="weight", trailing=False,
)

RECORDS = (CONV, FC)
