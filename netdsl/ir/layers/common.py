"""Helpers the built-in records share: shape checks, PyTorch's sliding-window formula, and
constant rules (no parameters, no MACs, a pointwise window).

Shape rules follow PyTorch's documented formulas (``torch.nn.Conv2d``, ``MaxPool2d`` incl. ceil
mode); ``tests/test_op_records.py`` checks every rule against the real layer.
"""

from __future__ import annotations

from ..params import fmt_side
from ..record import POINTWISE, Attrs, Shape, ShapeProblem, Window, fmt_shape


def spatial(op: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeProblem(f"{op} needs a CxHxW feature map, found the flat {fmt_shape(shape)}",
                           expected="CxHxW", found=fmt_shape(shape))
    return shape  # type: ignore[return-value]


def window_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """PyTorch's ``pooling_output_shape`` (conv is the floor case): may be < 1."""
    n = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (n - 1) * s >= size + p:  # the last window must start inside the input
        n -= 1
    return n


def sliding(op: str, size: tuple[int, int], a: Attrs, ceil: bool = False) -> tuple[int, int]:
    """Output size of a sliding window (conv or pool), PyTorch's formula."""
    dilation = a.get("dilation", (1, 1))  # avgpool has none
    args = [(a["kernel"][i], a["stride"][i], a["pad"][i], dilation[i]) for i in range(2)]
    out = tuple(window_size(size[i], *args[i], ceil) for i in range(2))
    if min(out) < 1:  # the least size giving one window: numerator 0 in window_size
        need = [max(1, d * (k - 1) + 1 - 2 * p - (s - 1 if ceil else 0)) for k, s, p, d in args]
        raise ShapeProblem(f"{op} gets {size[0]}x{size[1]}, needs at least {need[0]}x{need[1]}",
                           expected=f"at least {need[0]}x{need[1]}", found=f"{size[0]}x{size[1]}")
    return out  # type: ignore[return-value]


def kernel_window(a: Attrs, ins: list[Shape], out: Shape) -> Window:
    """The window of a conv or pool: its kernel, stride, dilation and padding (``same``
    pads ``(k - 1) * d // 2`` before, as torch does)."""
    dilation = a.get("dilation", (1, 1))
    pad = a.get("pad", (0, 0))
    if pad == "same":
        pad = tuple((d * (k - 1)) // 2 for k, d in zip(a["kernel"], dilation, strict=True))
    return Window(a["kernel"], a["stride"], dilation, pad)


def same_shape(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


def no_params(a: Attrs, ins: list[Shape]) -> int:
    return 0


def no_macs(a: Attrs, ins: list[Shape], out: Shape) -> int:
    return 0


def one_operand(a: Attrs, ins: list[Shape], out: Shape) -> bool:
    """A merge's ``view``: a sum or product of one tensor is written as that tensor."""
    return len(ins) == 1


def pointwise(a: Attrs, ins: list[Shape], out: Shape) -> Window:
    return POINTWISE


def strided(stride) -> str:
    """``/2`` after a kernel when the stride is not 1."""
    return "" if tuple(stride) == (1, 1) else "/" + fmt_side(stride)


def no_args(a: Attrs, ins: list[Shape], inplace: bool) -> tuple[tuple, dict]:
    return (), {}


def inplace_arg(a: Attrs, ins: list[Shape], inplace: bool) -> tuple[tuple, dict]:
    """``nn.ReLU(inplace=True)`` where the emitter found it safe, ``nn.ReLU()`` elsewhere."""
    return (), ({"inplace": True} if inplace else {})


def last_axis(a: Attrs, ins: list[Shape], out: Shape) -> Window:
    """An op that mixes the whole last axis (a layer norm or linear layer over it). Netdsl's
    receptive field reads axes 1 and 2 of a 3-D tensor as height and width, so on a CxHxW map
    this window spans the width; on a channels-last HxWxC block (ConvNeXt) the figure is an
    over-estimate, since the mixed axis there is the channels."""
    if len(ins[0]) != 3:
        return POINTWISE
    return Window((1, ins[0][2]), (1, 1))
