"""Normalisation layers: batch norm and AlexNet's local response normalisation."""

from __future__ import annotations

from functools import partial

from ..record import Attrs, OpRecord, Param, Shape, TorchModule, TorchParameter
from .common import last_axis, no_macs, no_params, pointwise, spatial


def _feature_map(op: str, a: Attrs, ins: list[Shape]) -> Shape:
    spatial(op, ins[0])
    return ins[0]


BN = OpRecord(
    name="bn",
    doc="Batch normalisation over channels.",
    params=(Param("eps", "float", 1e-5), Param("momentum", "float", 0.1),
            Param("affine", "bool", True)),
    arity=1, infer=partial(_feature_map, "bn"),
    count_params=lambda a, ins: 2 * ins[0][0] if a["affine"] else 0,
    macs=no_macs, window=pointwise, view=False, inplace=False, backward_needs_output=False,
    weight_layer=False, ends_features=False, init_role="norm",
    torch=TorchModule("torch.nn.BatchNorm2d", lambda a, ins, inplace: (
        (ins[0][0],), {"eps": a["eps"], "momentum": a["momentum"], "affine": a["affine"]})),
    display=lambda a, out: "bn", style="norm", trailing=True, layout="memory_format",
)

# PyTorch's and Caffe's convention: alpha is divided by the window size n (AlexNet: n=5, k=2,
# alpha=1e-4, beta=0.75). The window runs across channels, so the spatial field is pointwise.
LRN = OpRecord(
    name="lrn",
    doc="Local response normalisation across channels (AlexNet: n=5, k=2, alpha=1e-4, "
        "beta=0.75).",
    params=(Param("size", "count", 5), Param("alpha", "float", 1e-4),
            Param("beta", "float", 0.75), Param("k", "float", 2.0)),
    arity=1, infer=partial(_feature_map, "lrn"), count_params=no_params, macs=no_macs, window=pointwise,
    view=False, inplace=False, backward_needs_output=False, weight_layer=False,
    ends_features=False, init_role=None,
    torch=TorchModule("torch.nn.LocalResponseNorm", lambda a, ins, inplace: (
        (a["size"],), {"alpha": a["alpha"], "beta": a["beta"], "k": a["k"]})),
    display=lambda a, out: "lrn", style="norm", trailing=True, layout="elementwise",
)

# torchvision.ops.FrozenBatchNorm2d, which its detection backbones (resnet_fpn_backbone) use:
# batch norm with fixed statistics and affine terms, all four buffers, so it holds no
# parameters, trains nothing and behaves the same in training and in evaluation.
FROZEN_BN = OpRecord(
    name="frozen_bn",
    doc="Batch normalisation with frozen statistics and affine terms (buffers, not "
        "parameters), as torchvision's detection backbones use it.",
    params=(Param("eps", "float", 1e-5),),
    arity=1, infer=partial(_feature_map, "frozen_bn"), count_params=no_params,
    macs=no_macs, window=pointwise, view=False, inplace=False, backward_needs_output=False,
    weight_layer=False, ends_features=False, init_role="norm",
    torch=TorchModule("netdsl.torch.layers.FrozenBatchNorm2d",
                      lambda a, ins, inplace: ((ins[0][0],), {"eps": a["eps"]})),
    display=lambda a, out: "frozen bn", style="norm", trailing=True, layout="elementwise",
)

RECORDS = (BN, LRN, FROZEN_BN)


def _channels_last_norm(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


LAYERNORM2D = OpRecord(
    name="layernorm2d",
    doc="Layer norm over the channels at every position of a CxHxW map (ConvNeXt's stem and "
        "downsampling).",
    params=(Param("eps", "float", 1e-6),), arity=1, infer=partial(_feature_map, "layernorm2d"),
    count_params=lambda a, ins: 2 * ins[0][0], macs=no_macs, window=pointwise, view=False,
    inplace=False, backward_needs_output=False, weight_layer=False, ends_features=False,
    init_role="norm",
    torch=TorchModule("netdsl.torch.layers.LayerNorm2d",
                      lambda a, ins, inplace: ((ins[0][0],), {"eps": a["eps"]})),
    display=lambda a, out: "layernorm", style="norm", trailing=True,
    layout="channels_last",  # normalised channels-last, returned through a permute
)

LAYERNORM = OpRecord(
    name="layernorm",
    doc="Layer norm over the last axis (a channels-last tensor, as in ConvNeXt's blocks).",
    params=(Param("eps", "float", 1e-5),), arity=1, infer=_channels_last_norm,
    count_params=lambda a, ins: 2 * ins[0][-1], macs=no_macs, window=last_axis, view=False,
    inplace=False, backward_needs_output=False, weight_layer=False, ends_features=False,
    init_role="norm",
    torch=TorchModule("torch.nn.LayerNorm",
                      lambda a, ins, inplace: ((ins[0][-1],), {"eps": a["eps"]})),
    display=lambda a, out: "layernorm", style="norm", trailing=True,
)


def _layer_scale_shape(a: Attrs, ins: list[Shape]) -> tuple[int, ...]:
    return (ins[0][0], *([1] * (len(ins[0]) - 1)))


# A learnable per-channel scale, initialised to a small constant (Touvron et al. 2021, CaiT;
# ConvNeXt: 1e-6). torchvision keeps it as a bare parameter of the block, not a module.
LAYER_SCALE = OpRecord(
    name="layer_scale",
    doc="Multiplies each channel by a learnable scale, initialised to `value` (ConvNeXt).",
    params=(Param("value", "float", 1e-6),), arity=1, infer=lambda a, ins: ins[0],
    count_params=lambda a, ins: ins[0][0], macs=no_macs, window=pointwise, view=False,
    inplace=False, backward_needs_output=False, weight_layer=False, ends_features=False,
    init_role=None,
    torch=TorchParameter(_layer_scale_shape, lambda a: a["value"],
                         lambda x, parameter: f"{parameter} * {x}"),
    display=lambda a, out: "layer scale", style="norm", trailing=True, layout="elementwise",
)

RECORDS = (*RECORDS, LAYERNORM2D, LAYERNORM, LAYER_SCALE)
