"""Activations: shape-preserving, pointwise, no parameters and no MACs (as
``torch.utils.flop_counter`` counts them). ReLU-like ones may run in place."""

from __future__ import annotations

from ..record import OpRecord, Param, TorchModule
from .common import inplace_arg, no_args, no_macs, no_params, pointwise, same_shape


def activation(name: str, doc: str, cls: str, *, inplace: bool, needs_output: bool,
               params: tuple[Param, ...] = (), args=None) -> OpRecord:
    """A pointwise activation. ``needs_output``: its backward reads its own output (sigmoid,
    tanh, and the in-place ReLUs, whose output is all autograd keeps), so the next op may not
    overwrite it."""
    return OpRecord(
        name=name, doc=doc, params=params, arity=1, infer=same_shape, count_params=no_params,
        macs=no_macs, window=pointwise, view=False, inplace=inplace,
        backward_needs_output=needs_output, weight_layer=False, ends_features=False,
        init_role=None,
        torch=TorchModule(cls, args or (inplace_arg if inplace else no_args)),
        display=lambda a, out: name, style="activation", trailing=True, layout="elementwise",
    )


RECORDS = (
    activation("relu", "max(x, 0).", "torch.nn.ReLU", inplace=True, needs_output=True),
    activation("relu6", "min(max(x, 0), 6).", "torch.nn.ReLU6", inplace=True, needs_output=True),
    activation("leaky_relu", "Leaky ReLU: x for x > 0, slope * x otherwise.",
               "torch.nn.LeakyReLU", inplace=True, needs_output=True,
               params=(Param("slope", "float", 0.01),),
               args=lambda a, ins, inplace: ((a["slope"],), {"inplace": inplace})),
    activation("gelu", "GELU (Gaussian error linear unit).", "torch.nn.GELU", inplace=False,
               needs_output=True),
    activation("silu", "SiLU (swish): x * sigmoid(x).", "torch.nn.SiLU", inplace=True,
               needs_output=True),
    activation("sigmoid", "Logistic sigmoid.", "torch.nn.Sigmoid", inplace=False,
               needs_output=True),
    activation("tanh", "Hyperbolic tangent.", "torch.nn.Tanh", inplace=False,
               needs_output=True),
    # MobileNetV3 (Howard et al. 2019): piecewise-linear sigmoid and swish
    activation("hardsigmoid", "relu6(x + 3) / 6 (MobileNetV3's squeeze-and-excitation gate).",
               "torch.nn.Hardsigmoid", inplace=False, needs_output=True),
    activation("hardswish", "x * relu6(x + 3) / 6 (MobileNetV3).", "torch.nn.Hardswish",
               inplace=True, needs_output=True),
)
