"""Normalisation layers: batch norm and AlexNet's local response normalisation."""

from __future__ import annotations

from ..ops import Attrs, OpRecord, Param, Shape, TorchModule
from .common import no_macs, no_params, pointwise, spatial


def _feature_map(op: str):
    def infer(a: Attrs, ins: list[Shape]) -> Shape:
        spatial(op, ins[0])
        return ins[0]
    return infer


BN = OpRecord(
    name="bn",
    doc="Batch normalisation over channels.",
    params=(Param("eps", "float", 1e-5), Param("momentum", "float", 0.1),
            Param("affine", "bool", True)),
    arity=1, infer=_feature_map("bn"),
    count_params=lambda a, ins: 2 * ins[0][0] if a["affine"] else 0,
    macs=no_macs, window=pointwise, view=False, inplace=False, backward_needs_output=False,
    weight_layer=False, ends_features=False, init_role="norm",
    torch=TorchModule("torch.nn.BatchNorm2d", lambda a, ins, inplace: (
        (ins[0][0],), {"eps": a["eps"], "momentum": a["momentum"], "affine": a["affine"]})),
    display=lambda a, out: "bn", style="norm", trailing=True,
)

# PyTorch's and Caffe's convention: alpha is divided by the window size n (AlexNet: n=5, k=2,
# alpha=1e-4, beta=0.75). The window runs across channels, so the spatial field is pointwise.
LRN = OpRecord(
    name="lrn",
    doc="Local response normalisation across channels (AlexNet: n=5, k=2, alpha=1e-4, "
        "beta=0.75).",
    params=(Param("size", "count", 5), Param("alpha", "float", 1e-4),
            Param("beta", "float", 0.75), Param("k", "float", 2.0)),
    arity=1, infer=_feature_map("lrn"), count_params=no_params, macs=no_macs, window=pointwise,
    view=False, inplace=False, backward_needs_output=False, weight_layer=False,
    ends_features=False, init_role=None,
    torch=TorchModule("torch.nn.LocalResponseNorm", lambda a, ins, inplace: (
        (a["size"],), {"alpha": a["alpha"], "beta": a["beta"], "k": a["k"]})),
    display=lambda a, out: "lrn", style="norm", trailing=True,
)

RECORDS = (BN, LRN)
