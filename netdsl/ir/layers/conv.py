"""Layers with weights: convolution and fully connected.

A MAC is one multiply-accumulate: ``out_numel * in_channels/groups * kh * kw`` for a
convolution and ``in * out`` for a fully connected layer, as ``torch.utils.flop_counter``
counts them (two FLOPs per MAC; biases are not counted).
"""

from __future__ import annotations

from math import prod

from ..params import fmt_side
from ..record import (
    GLOBAL,
    Attrs,
    OpRecord,
    Param,
    Shape,
    ShapeProblem,
    TorchModule,
    Window,
    fmt_shape,
)
from .common import kernel_window, last_axis, sliding, spatial, strided

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
    style="weight", trailing=False, layout="memory_format",
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



def _transposed_infer(a: Attrs, ins: list[Shape]) -> Shape:
    """PyTorch's ConvTranspose2d: (H - 1) * s - 2p + d * (k - 1) + output_pad + 1."""
    _check_output_pad(a)
    c, h, w = spatial("conv_transpose", ins[0])
    if c % a["groups"] or a["out"] % a["groups"]:
        raise ShapeProblem(f"groups={a['groups']} must divide both the input channels ({c}) "
                           f"and the output channels ({a['out']})",
                           expected=f"multiples of {a['groups']}", found=f"{c} in, {a['out']} out")
    size = [(n - 1) * a["stride"][i] - 2 * a["pad"][i] + a["dilation"][i] * (a["kernel"][i] - 1)
            + a["output_pad"][i] + 1 for i, n in enumerate((h, w))]
    if min(size) < 1:
        raise ShapeProblem(f"conv_transpose gives {size[0]}x{size[1]}", expected="at least 1x1",
                           found=f"{size[0]}x{size[1]}")
    return (a["out"], *size)


def _check_output_pad(a: Attrs) -> None:
    """torch refuses an output padding not below the stride or the dilation on either axis
    (it would add rows that no input value reaches), whatever the input."""
    below = tuple(max(a["stride"][i], a["dilation"][i]) for i in range(2))
    if any(a["output_pad"][i] >= below[i] for i in range(2)):
        raise ShapeProblem(f"conv_transpose output_pad={fmt_side(a['output_pad'])} must be smaller "
                           f"than its stride ({fmt_side(a['stride'])}) or its dilation "
                           f"({fmt_side(a['dilation'])})",
                           expected=f"output_pad <= {fmt_side(tuple(b - 1 for b in below))}",
                           found=f"output_pad={fmt_side(a['output_pad'])}", argument="output_pad")


def _transposed_window(a: Attrs, ins: list[Shape], out: Shape):
    """An output value gathers, along each axis, the inputs whose taps land on it: taps k
    and k' of a kernel land together where (k' - k) * dilation is a multiple of the stride,
    so the taps split by ``k * dilation mod stride`` and the widest group is the window
    (U-Net's 2x2 up-conv at stride 2: 1; stride 3 with taps 0, 2, 4: 1, not 2)."""
    return Window(tuple(_transposed_extent(a["kernel"][i], a["stride"][i], a["dilation"][i])
                        for i in range(2)), (1, 1))


def _transposed_extent(kernel: int, stride: int, dilation: int) -> int:
    taps: dict[int, list[int]] = {}
    for k in range(kernel):
        taps.setdefault(k * dilation % stride, []).append(k)
    return max((group[-1] - group[0]) * dilation // stride + 1 for group in taps.values())


# U-Net's "up-convolution" (Ronneberger et al. 2015), FCN's learned upsampling
CONV_TRANSPOSE = OpRecord(
    name="conv_transpose",
    doc="Transposed 2-D convolution (learned upsampling); input channels are inferred.",
    params=(Param("out", "count"), Param("kernel", "size"), Param("stride", "size", 1),
            Param("pad", "pad", 0),
            Param("output_pad", "pad", 0), Param("dilation", "size", 1),
            Param("groups", "count", 1), Param("bias", "bool", True)),
    arity=1, infer=_transposed_infer,
    count_params=lambda a, ins: ins[0][0] * (a["out"] // a["groups"]) * a["kernel"][0]
    * a["kernel"][1] + (a["out"] if a["bias"] else 0),
    # torch's flop counter: every input value meets every weight of its group once
    macs=lambda a, ins, out: ins[0][1] * ins[0][2] * ins[0][0] * (a["out"] // a["groups"])
    * a["kernel"][0] * a["kernel"][1],
    window=_transposed_window, view=False, inplace=False, backward_needs_output=False,
    weight_layer=True, ends_features=False, init_role="conv",
    torch=TorchModule("torch.nn.ConvTranspose2d", lambda a, ins, inplace: (
        (ins[0][0], a["out"]), {"kernel_size": a["kernel"], "stride": a["stride"],
                                "padding": a["pad"], "output_padding": a["output_pad"],
                                "groups": a["groups"], "bias": a["bias"],
                                "dilation": a["dilation"]})),
    display=lambda a, out: f"up-conv {fmt_shape(a['kernel'])}{strided(a['stride'])}, "
                           f"{a['out']}",
    style="weight", trailing=False, layout="memory_format",
)

# ConvNeXt's pointwise layers run on channels-last tensors: a fully connected layer over the
# last axis (torchvision keeps them as nn.Linear, so the weights load as they are)
LINEAR = OpRecord(
    name="linear",
    doc="Fully connected layer over the last axis of a tensor of any rank (channels-last "
        "blocks).",
    params=(Param("out", "count"), Param("bias", "bool", True)), arity=1,
    infer=lambda a, ins: (*ins[0][:-1], a["out"]),
    count_params=lambda a, ins: ins[0][-1] * a["out"] + (a["out"] if a["bias"] else 0),
    macs=lambda a, ins, out: prod(ins[0][:-1]) * ins[0][-1] * a["out"],
    window=last_axis, view=False, inplace=False,
    backward_needs_output=False, weight_layer=True, ends_features=False, init_role="linear",
    torch=TorchModule("torch.nn.Linear",
                      lambda a, ins, inplace: ((ins[0][-1], a["out"]), {"bias": a["bias"]})),
    display=lambda a, out: f"linear {a['out']}", style="weight", trailing=False,
)


RECORDS = (CONV, FC, CONV_TRANSPOSE, LINEAR)
