"""Pooling: max and average windows, global average pooling and adaptive pools."""

from __future__ import annotations

from functools import partial
from math import gcd

from ..params import fmt_shape
from ..record import GLOBAL, Attrs, OpRecord, Param, Shape, ShapeProblem, TorchModule, Window
from .common import kernel_window, no_macs, no_params, sliding, spatial, strided


def _pool_infer(name: str, a: Attrs, ins: list[Shape]) -> Shape:
    """A pool's output (PyTorch's formula), refusing padding over half the window as torch
    does. A plain function bound with ``partial``, so every call runs this code."""
    c, h, w = spatial(name, ins[0])
    for axis in range(2):
        kernel = a["kernel"][axis]  # torch's bound: the kernel, even when dilated
        if 2 * a["pad"][axis] > kernel:
            raise ShapeProblem(f"{name} padding {a['pad'][axis]} is more than half its "
                               f"window {kernel}", expected=f"pad <= {kernel // 2}",
                               found=f"pad={a['pad'][axis]}")
    return (c, *sliding(name, (h, w), a, ceil=a["ceil"]))


def _window_record(name: str, doc: str, params: tuple[Param, ...], cls: str, args,
                   backward_extra_bytes: int = 0) -> OpRecord:
    return OpRecord(
        name=name, doc=doc, params=params, arity=1, infer=partial(_pool_infer, name),
        count_params=no_params, macs=no_macs, window=kernel_window, view=False, inplace=False,
        backward_needs_output=False, weight_layer=False, ends_features=False, init_role=None,
        torch=TorchModule(cls, args),
        display=lambda a, out: f"{name} {fmt_shape(a['kernel'])}{strided(a['stride'])}",
        style="pool", trailing=False, backward_extra_bytes=backward_extra_bytes,
        layout="memory_format",
    )


# a max pool's backward keeps the int64 position of each maximum
_ARGMAX_BYTES = 8

MAXPOOL = _window_record(
    "maxpool", "Max pooling; stride defaults to the kernel.",
    (Param("kernel", "size"), Param("stride", "optsize", None), Param("pad", "pad", 0),
     Param("dilation", "size", 1), Param("ceil", "bool", False)),
    "torch.nn.MaxPool2d", lambda a, ins, inplace: ((), {
        "kernel_size": a["kernel"], "stride": a["stride"], "padding": a["pad"],
        "dilation": a["dilation"], "ceil_mode": a["ceil"]}), _ARGMAX_BYTES)

AVGPOOL = _window_record(
    "avgpool", "Average pooling; count_pad=false excludes padding from the mean.",
    (Param("kernel", "size"), Param("stride", "optsize", None), Param("pad", "pad", 0),
     Param("ceil", "bool", False), Param("count_pad", "bool", True)),
    "torch.nn.AvgPool2d", lambda a, ins, inplace: ((), {
        "kernel_size": a["kernel"], "stride": a["stride"], "padding": a["pad"],
        "ceil_mode": a["ceil"], "count_include_pad": a["count_pad"]}))


def _gap_infer(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = spatial("gap", ins[0])
    return (c, 1, 1)


GAP = OpRecord(
    name="gap", doc="Global average pooling to Cx1x1.", params=(), arity=1, infer=_gap_infer,
    count_params=no_params, macs=no_macs, window=lambda a, ins, out: GLOBAL, view=False,
    inplace=False, backward_needs_output=False, weight_layer=False, ends_features=True,
    init_role=None,
    torch=TorchModule("torch.nn.AdaptiveAvgPool2d", lambda a, ins, inplace: (((1, 1),), {})),
    display=lambda a, out: "global avgpool", style="pool", trailing=False,
    layout="memory_format",
)


def _adaptive_infer(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = spatial("adaptive pool", ins[0])
    return (c, *a["size"])


def _adaptive_window(a: Attrs, ins: list[Shape], out: Shape) -> Window:
    """PyTorch's bins: ``[floor(i*H/O), ceil((i+1)*H/O))``. Bin i is ``ceil((r + H) / O)``
    wide, r = i*H mod O; r runs over the multiples of gcd(H, O) below O, so the widest bin is
    ``ceil((O - gcd + H) / O)``. The step is their mean."""
    extent, step = [], []
    for size, bins in zip(ins[0][1:], a["size"], strict=True):
        extent.append(-(-(bins - gcd(size, bins) + size) // bins))
        step.append(max(1, size // bins))
    return Window((extent[0], extent[1]), (step[0], step[1]))


def _adaptive(kind: str) -> OpRecord:
    return OpRecord(
        name=f"adaptive_{kind}pool", doc=f"Adaptive {kind} pooling to a fixed HxW.",
        params=(Param("size", "size"),), arity=1, infer=_adaptive_infer,
        count_params=no_params, macs=no_macs, window=_adaptive_window,
        # torch writes a new map even to the size the input has (torchvision VGG's 7x7 pool
        # at 224x224): measured by tests/test_analysis_differential.py
        view=False, inplace=False,
        backward_needs_output=kind == "max",  # conservative: no in-place op after a max pool
        weight_layer=False, ends_features=True, init_role=None,
        torch=TorchModule(f"torch.nn.Adaptive{kind.capitalize()}Pool2d",
                          lambda a, ins, inplace: ((a["size"],), {})),
        display=lambda a, out: f"adaptive {kind}pool {fmt_shape(a['size'])}", style="pool",
        trailing=False, backward_extra_bytes=_ARGMAX_BYTES if kind == "max" else 0,
        layout="memory_format",
    )


RECORDS = (MAXPOOL, AVGPOOL, GAP, _adaptive("avg"), _adaptive("max"))
