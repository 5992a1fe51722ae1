"""Ops that rearrange or resize a feature map without weights: axis permutations, channel
shuffle and chunks (ShuffleNet), upsampling and centre crops (U-Net, FCN), stochastic depth,
and the elementwise product (squeeze-and-excitation)."""

from __future__ import annotations

from ..params import fmt_shape
from ..record import (
    POINTWISE,
    Attrs,
    OpRecord,
    Param,
    Shape,
    ShapeProblem,
    Strides,
    TorchExpression,
    TorchModule,
    Window,
    folded_partials,
    viewed_strides,
)
from .common import no_macs, no_params, one_operand, pointwise, same_shape, spatial


def _shape_op(name: str, doc: str, params, infer, expr, display, *, window=pointwise,
              view: bool = False, view_strides=None, layout: str = "contiguous") -> OpRecord:
    return OpRecord(
        name=name, doc=doc, params=params, arity=1, infer=infer, count_params=no_params,
        macs=no_macs, window=window, view=view, inplace=False, backward_needs_output=False,
        weight_layer=False, ends_features=False, init_role=None,
        torch=TorchExpression(expr), display=display, style="shape", trailing=True,
        view_strides=view_strides, layout=layout,
    )


def _permute_infer(a: Attrs, ins: list[Shape]) -> Shape:
    if len(a["order"]) != len(ins[0]):
        raise ShapeProblem(f"permute order {list(a['order'])} does not fit the "
                           f"{len(ins[0])}-axis {fmt_shape(ins[0])}",
                           expected=f"{len(ins[0])} axes", found=f"{len(a['order'])} axes")
    return tuple(ins[0][i] for i in a["order"])


PERMUTE = _shape_op(
    "permute", "Reorders the axes after the batch: [1, 2, 0] takes CxHxW to HxWxC.",
    (Param("order", "perm"),), _permute_infer,
    lambda a, xs: f"{xs[0]}.permute(0, {', '.join(str(i + 1) for i in a['order'])})",
    lambda a, out: f"permute {list(a['order'])}", view=True,  # torch's permute copies nothing
    view_strides=lambda a, shape, strides: (strides[0], *(strides[1 + i] for i in a["order"])))


def _shuffle_infer(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = spatial("shuffle", ins[0])
    if c % a["groups"]:
        raise ShapeProblem(f"shuffle groups={a['groups']} must divide the {c} channels",
                           expected=f"a multiple of {a['groups']}", found=str(c))
    return ins[0]


def _shuffled_strides(a: Attrs, shape: Shape, strides: Strides) -> Strides | None:
    """The strides torch's unflatten, transpose and flatten leave (a one-group shuffle's: the
    1-sized axis it adds and removes may change the batch's stride, and with it whether the
    map looks channels-last to torch)."""
    c, g = shape[0], a["groups"]
    split = viewed_strides((1, *shape), strides, (1, g, c // g, *shape[1:]))
    if split is None:
        return None
    swapped = (split[0], split[2], split[1], *split[3:])
    return viewed_strides((1, c // g, g, *shape[1:]), swapped, (1, *shape))


# ShuffleNet (Zhang et al. 2018): channels reshaped to groups x (C/groups), transposed back
SHUFFLE = _shape_op(
    "shuffle", "Channel shuffle: interleaves the channels of `groups` groups (ShuffleNet).",
    (Param("groups", "count", 2),), _shuffle_infer,
    lambda a, xs: f"{xs[0]}.unflatten(1, ({a['groups']!r}, -1)).transpose(1, 2).flatten(1, 2)",
    lambda a, out: f"shuffle {a['groups']}",
    # one group, or groups of one channel, leave the order as it is: flatten copies nothing
    view=lambda a, ins, out: a["groups"] in (1, ins[0][0]), view_strides=_shuffled_strides)


def _chunk_infer(a: Attrs, ins: list[Shape]) -> Shape:
    c = ins[0][0]
    if c % a["parts"] or a["index"] >= a["parts"]:
        raise ShapeProblem(f"chunk {a['index']} of {a['parts']} needs fewer than {a['parts']} "
                           f"as index and {a['parts']} dividing the {c} channels",
                           expected=f"a multiple of {a['parts']}", found=str(c))
    return (c // a["parts"], *ins[0][1:])


CHUNK = _shape_op(
    "chunk", "One of `parts` equal slices of the channels (ShuffleNetV2's channel split).",
    (Param("index", "int"), Param("parts", "count", 2)), _chunk_infer,
    lambda a, xs: f"{xs[0]}.chunk({a['parts']!r}, 1)[{a['index']!r}]",
    lambda a, out: f"chunk {a['index']}/{a['parts']}", view=True)


def _crop_infer(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = spatial("crop", ins[0])
    th, tw = a["size"]
    if th > h or tw > w:
        raise ShapeProblem(f"crop to {th}x{tw} needs an input at least that large, found "
                           f"{h}x{w}", expected=f"at least {th}x{tw}", found=f"{h}x{w}")
    return (c, th, tw)


def _crop_expr(a: Attrs, xs: list[str]) -> str:
    # the window around the centre; U-Net's size differences are even, so it is symmetric
    th, tw = a["size"]
    top, left = f"({xs[0]}.shape[2] - {th}) // 2", f"({xs[0]}.shape[3] - {tw}) // 2"
    return f"{xs[0]}[:, :, {top}:{top} + {th}, {left}:{left} + {tw}]"


# U-Net's crop-and-copy (Ronneberger et al. 2015): the contracting path's map, cut to the
# expanding path's size around its centre
CROP = _shape_op("crop", "Centre crop to HxW (U-Net's crop-and-copy).",
                 (Param("size", "size"),), _crop_infer, _crop_expr,
                 lambda a, out: f"crop {fmt_shape(a['size'])}", view=True)


def _upsample_infer(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = spatial("upsample", ins[0])
    if (a["size"] is None) == (a["scale"] is None):
        raise ShapeProblem("upsample takes a size or a scale (one of them)",
                           expected="size=HxW or scale=N", found="both" if a["size"] else "none")
    if a["size"] is not None:
        return (c, *a["size"])
    return (c, h * a["scale"][0], w * a["scale"][1])


def _upsample_expr(a: Attrs, xs: list[str]) -> str:
    target = f"size={a['size']!r}" if a["size"] is not None \
        else f"scale_factor={tuple(float(s) for s in a['scale'])!r}"
    corners = ", align_corners=False" if a["mode"] == "bilinear" else ""
    return (f"torch.nn.functional.interpolate({xs[0]}, {target}, mode={a['mode']!r}"
            f"{corners})")


def _upsample_window(a: Attrs, ins: list[Shape], out: Shape) -> Window:
    # An output value reads a 2x2 neighbourhood (bilinear) or one input value (nearest). The
    # jump stays the input's: netdsl's jumps are whole input pixels, and an upsampled map's
    # finer spacing cannot be written as one; the receptive field is still exact.
    return Window((2, 2), (1, 1)) if a["mode"] == "bilinear" else POINTWISE


UPSAMPLE = _shape_op(
    "upsample", "Nearest or bilinear resizing to a size or by a whole scale (FCN, FPN).",
    (Param("size", "optsize", None), Param("scale", "optsize", None),
     Param("mode", "choice", "nearest", choices=("nearest", "bilinear"))),
    _upsample_infer, _upsample_expr, lambda a, out: f"upsample {a['mode']} {fmt_shape(out[1:])}",
    window=_upsample_window, layout="memory_format")


def _broadcast_infer(a: Attrs, ins: list[Shape]) -> Shape:
    out = list(ins[0])
    for shape in ins[1:]:
        if len(shape) != len(out) or not all(
                d == o or 1 in (d, o) for d, o in zip(shape, out, strict=True)):
            raise ShapeProblem("multiplied tensors do not broadcast: "
                               + " vs ".join(fmt_shape(s) for s in ins),
                               expected=fmt_shape(ins[0]), found=fmt_shape(shape))
        out = [max(d, o) for d, o in zip(shape, out, strict=True)]
    return tuple(out)


# Squeeze-and-excitation (Hu et al. 2018): the map times its per-channel gate
MUL = OpRecord(
    name="mul", doc="Multiplies its branches elementwise, broadcasting 1-sized axes.",
    params=(), arity=-1, infer=_broadcast_infer, count_params=no_params,
    # elementwise products are not MACs in torch's flop counter
    macs=no_macs, window=pointwise, view=one_operand, inplace=False, backward_needs_output=False,
    weight_layer=False, ends_features=False, init_role=None,
    torch=TorchExpression(lambda a, xs: " * ".join(xs)), layout="elementwise",
    display=lambda a, out: "×", style="merge", trailing=False,
    temporaries=folded_partials,  # `a * b * c` (three branches or more)
)

STOCHASTIC_DEPTH = OpRecord(
    name="stochastic_depth",
    doc="Drops the whole branch per sample with probability p in training (Huang et al. "
        "2016); the identity in eval.",
    params=(Param("p", "prob", 0.0),), arity=1, infer=same_shape, count_params=no_params,
    macs=no_macs, window=pointwise, view=True, inplace=False, backward_needs_output=False,
    weight_layer=False, ends_features=False, init_role=None,
    torch=TorchModule("netdsl.torch.layers.StochasticDepth",
                      lambda a, ins, inplace: ((a["p"],), {})),
    display=lambda a, out: f"stochastic depth {a['p']}", style="activation", trailing=True,
)

RECORDS = (PERMUTE, SHUFFLE, CHUNK, CROP, UPSAMPLE, MUL, STOCHASTIC_DEPTH)
