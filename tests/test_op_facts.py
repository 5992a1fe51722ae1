"""Every field of every built-in op record, pinned against an explicit table.

The property tests (tests/test_op_records.py) compare the rules that compute something (shape,
parameters, MACs, the measured window) with torch; they cannot see the flags a record merely
states: which pictures style it gets, whether it counts towards depth, whether it may run in
place. Mutation testing showed those flags could flip unnoticed. This table is the reviewer's
copy: each row can be read against the PyTorch docs and the papers cited in the layer modules,
and tests/test_op_torch_facts.py derives the rows it can from the torch layers themselves.
This file imports no torch, so it runs first and fast in a mutation run.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch

from netdsl.ir.layers import BUILTIN_OPS
from netdsl.ir.ops import (
    GLOBAL,
    OPS,
    POINTWISE,
    TorchExpression,
    TorchModule,
    TorchParameter,
    Window,
)


class Facts(NamedTuple):
    arity: int  # -1: any number of branches
    style: str  # how pictures draw it
    trailing: bool  # written after the layer it follows: "conv 3x3, 64 · bn · relu"
    weight_layer: bool  # counted in depth as the papers count (conv, fc)
    ends_features: bool  # a classifier head starts here
    init_role: str | None
    view: bool | str  # "fn": decided per node (shuffle of one group, a one-branch sum)
    inplace: bool
    backward_needs_output: bool


# why each non-obvious entry is what it is:
# - input: the caller's tensor, so nothing may overwrite it (backward_needs_output).
# - dropout, stochastic_depth, flatten, chunk, crop, permute: the identity or a view at inference;
#   shuffle is a view with one group or groups of one channel (its flatten copies nothing);
#   add and mul of one tensor are that tensor.
# - relu, relu6, leaky_relu, silu, hardswish: nn.* takes inplace=True (torchvision uses it);
#   gelu, sigmoid, tanh have no inplace argument; hardsigmoid has one but torchvision's
#   MobileNetV3 gate never uses it; add: torchvision's `out += identity`.
# - every activation keeps backward_needs_output (relu, leaky_relu, sigmoid and tanh do keep
#   their output, see test_op_torch_facts; the others conservatively); adaptive max pool and
#   flatten are conservative too (no in-place op right after them).
FACTS = {
    "input": Facts(0, "io", False, False, False, None, False, False, True),
    "dropout": Facts(1, "activation", True, False, False, None, True, False, True),
    "flatten": Facts(1, "shape", True, False, True, None, True, False, True),
    "scale": Facts(1, "merge", False, False, False, None, False, False, False),
    "concat": Facts(-1, "merge", False, False, False, None, False, False, False),
    "add": Facts(-1, "merge", False, False, False, None, "fn", True, False),
    "conv": Facts(1, "weight", False, True, False, "conv", False, False, False),
    "fc": Facts(1, "weight", False, True, False, "linear", False, False, False),
    "conv_transpose": Facts(1, "weight", False, True, False, "conv", False, False, False),
    "linear": Facts(1, "weight", False, True, False, "linear", False, False, False),
    "bn": Facts(1, "norm", True, False, False, "norm", False, False, False),
    "frozen_bn": Facts(1, "norm", True, False, False, "norm", False, False, False),
    "lrn": Facts(1, "norm", True, False, False, None, False, False, False),
    "layernorm2d": Facts(1, "norm", True, False, False, "norm", False, False, False),
    "layernorm": Facts(1, "norm", True, False, False, "norm", False, False, False),
    "layer_scale": Facts(1, "norm", True, False, False, None, False, False, False),
    "relu": Facts(1, "activation", True, False, False, None, False, True, True),
    "relu6": Facts(1, "activation", True, False, False, None, False, True, True),
    "leaky_relu": Facts(1, "activation", True, False, False, None, False, True, True),
    "gelu": Facts(1, "activation", True, False, False, None, False, False, True),
    "silu": Facts(1, "activation", True, False, False, None, False, True, True),
    "sigmoid": Facts(1, "activation", True, False, False, None, False, False, True),
    "tanh": Facts(1, "activation", True, False, False, None, False, False, True),
    "hardsigmoid": Facts(1, "activation", True, False, False, None, False, False, True),
    "hardswish": Facts(1, "activation", True, False, False, None, False, True, True),
    "maxpool": Facts(1, "pool", False, False, False, None, False, False, False),
    "avgpool": Facts(1, "pool", False, False, False, None, False, False, False),
    "gap": Facts(1, "pool", False, False, True, None, False, False, False),
    "adaptive_avgpool": Facts(1, "pool", False, False, True, None, False, False, False),
    "adaptive_maxpool": Facts(1, "pool", False, False, True, None, False, False, True),
    "permute": Facts(1, "shape", True, False, False, None, True, False, False),
    "shuffle": Facts(1, "shape", True, False, False, None, "fn", False, False),
    "chunk": Facts(1, "shape", True, False, False, None, True, False, False),
    "crop": Facts(1, "shape", True, False, False, None, True, False, False),
    "upsample": Facts(1, "shape", True, False, False, None, False, False, False),
    "mul": Facts(-1, "merge", False, False, False, None, "fn", False, False),
    "stochastic_depth": Facts(1, "activation", True, False, False, None, True, False, False),
}

# parameters as a spec writes them (name=default), and their kinds; defaults follow the torch
# constructor (test_op_torch_facts checks those) except lrn (AlexNet's k=2), layernorm2d and
# layer_scale (ConvNeXt's 1e-6), shuffle and chunk (ShuffleNet's two groups)
PARAMS = {
    "input": ("", ()), "flatten": ("", ()), "concat": ("", ()), "add": ("", ()),
    "mul": ("", ()), "gap": ("", ()),
    **{name: ("", ()) for name in ("relu", "relu6", "gelu", "silu", "sigmoid", "tanh",
                                   "hardsigmoid", "hardswish")},
    "dropout": ("p=0.5", ("prob",)),
    "stochastic_depth": ("p=0.0", ("prob",)),
    "scale": ("factor", ("float",)),
    "conv": ("out, kernel, stride=1, pad=0, dilation=1, groups=1, bias=true, std=none",
             ("count", "size", "size", "pad", "size", "count", "bool", "optfloat")),
    "fc": ("out, bias=true, std=none", ("count", "bool", "optfloat")),
    "conv_transpose": ("out, kernel, stride=1, pad=0, output_pad=0, dilation=1, groups=1, "
                       "bias=true", ("count", "size", "size", "pad", "pad", "size", "count",
                                     "bool")),
    "linear": ("out, bias=true", ("count", "bool")),
    "bn": ("eps=1e-05, momentum=0.1, affine=true", ("float", "float", "bool")),
    "frozen_bn": ("eps=1e-05", ("float",)),
    "lrn": ("size=5, alpha=0.0001, beta=0.75, k=2.0", ("count", "float", "float", "float")),
    "layernorm2d": ("eps=1e-06", ("float",)),
    "layernorm": ("eps=1e-05", ("float",)),
    "layer_scale": ("value=1e-06", ("float",)),
    "leaky_relu": ("slope=0.01", ("float",)),
    "maxpool": ("kernel, stride=none, pad=0, dilation=1, ceil=false",
                ("size", "optsize", "pad", "size", "bool")),
    "avgpool": ("kernel, stride=none, pad=0, ceil=false, count_pad=true",
                ("size", "optsize", "pad", "bool", "bool")),
    "adaptive_avgpool": ("size", ("size",)), "adaptive_maxpool": ("size", ("size",)),
    "permute": ("order", ("perm",)),
    "shuffle": ("groups=2", ("count",)),
    "chunk": ("index, parts=2", ("int", "count")),
    "crop": ("size", ("size",)),
    "upsample": ("size=none, scale=none, mode=nearest", ("optsize", "optsize", "choice")),
}

EMITTED = {  # how each op reaches torch: a module (its class), a parameter, or an expression
    "input": None, "scale": TorchExpression, "concat": TorchExpression, "add": TorchExpression,
    "permute": TorchExpression, "shuffle": TorchExpression, "chunk": TorchExpression,
    "crop": TorchExpression, "upsample": TorchExpression, "mul": TorchExpression,
    "layer_scale": TorchParameter,
    "dropout": "torch.nn.Dropout", "flatten": "torch.nn.Flatten", "conv": "torch.nn.Conv2d",
    "fc": "torch.nn.Linear", "conv_transpose": "torch.nn.ConvTranspose2d",
    "linear": "torch.nn.Linear", "bn": "torch.nn.BatchNorm2d",
    "frozen_bn": "netdsl.torch.layers.FrozenBatchNorm2d",
    "lrn": "torch.nn.LocalResponseNorm", "layernorm2d": "netdsl.torch.layers.LayerNorm2d",
    "layernorm": "torch.nn.LayerNorm", "relu": "torch.nn.ReLU", "relu6": "torch.nn.ReLU6",
    "leaky_relu": "torch.nn.LeakyReLU", "gelu": "torch.nn.GELU", "silu": "torch.nn.SiLU",
    "sigmoid": "torch.nn.Sigmoid", "tanh": "torch.nn.Tanh", "hardsigmoid": "torch.nn.Hardsigmoid",
    "hardswish": "torch.nn.Hardswish", "maxpool": "torch.nn.MaxPool2d",
    "avgpool": "torch.nn.AvgPool2d", "gap": "torch.nn.AdaptiveAvgPool2d",
    "adaptive_avgpool": "torch.nn.AdaptiveAvgPool2d",
    "adaptive_maxpool": "torch.nn.AdaptiveMaxPool2d",
    "stochastic_depth": "netdsl.torch.layers.StochasticDepth",
}


def test_the_tables_name_every_builtin_op():
    names = {r.name for r in BUILTIN_OPS}
    assert set(FACTS) == set(PARAMS) == set(EMITTED) == set(DISPLAY) == names


@pytest.mark.parametrize("name", sorted(FACTS))
def test_each_record_states_its_facts(name):
    record = OPS[name]
    view = record.view if isinstance(record.view, bool) else "fn"
    got = Facts(record.arity, record.style, record.trailing, record.weight_layer,
                record.ends_features, record.init_role, view, record.inplace,
                record.backward_needs_output)
    assert got == FACTS[name]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_each_record_declares_its_parameters(name):
    record = OPS[name]
    assert (record.signature(), tuple(p.kind for p in record.params)) == PARAMS[name]
    choices = {p.name: p.choices for p in record.params if p.choices}
    assert choices == ({"mode": ("nearest", "bilinear")} if name == "upsample" else {})


@pytest.mark.parametrize("name", sorted(EMITTED))
def test_each_record_names_its_emission(name):
    emission, expected = OPS[name].torch, EMITTED[name]
    if isinstance(expected, str):
        assert isinstance(emission, TorchModule) and emission.cls == expected
        assert emission.module_path == expected.rsplit(".", 1)[0]
    elif expected is None:
        assert emission is None
    else:
        assert type(emission) is expected
    assert OPS[name].is_module == isinstance(expected, str)
    assert OPS[name].is_named == (isinstance(expected, str) or expected is TorchParameter)


def test_only_a_sum_has_an_inplace_statement():
    statements = {name for name, r in OPS.items()
                  if isinstance(r.torch, TorchExpression) and r.torch.inplace_statement}
    assert statements == {"add"}
    assert OPS["add"].torch.inplace_statement(["a", "b"]) == "a += b"


CONV = {"out": 64, "kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "dilation": (1, 1),
        "groups": 1, "bias": True, "std": None}
POOL = {"kernel": (3, 3), "stride": (2, 2), "pad": (0, 0), "dilation": (1, 1), "ceil": False}

# (attrs, output shape, text): as the papers' figures write each layer
DISPLAY = {
    "input": ({"shape": (3, 224, 224)}, (3, 224, 224), "input 3x224x224"),
    "dropout": ({"p": 0.5}, (10,), "dropout 0.5"),
    "flatten": ({}, (10,), "flatten"),
    "scale": ({"factor": 0.17}, (8, 4, 4), "x0.17"),
    "concat": ({}, (8, 4, 4), "concat"),
    "add": ({}, (8, 4, 4), "+"),
    "mul": ({}, (8, 4, 4), "×"),
    "conv": (CONV, (64, 8, 8), "conv 3x3/2, 64"),
    "fc": ({"out": 1000, "bias": True, "std": None}, (1000,), "fc 1000"),
    "conv_transpose": ({**CONV, "kernel": (2, 2), "output_pad": (0, 0)}, (64, 8, 8),
                       "up-conv 2x2/2, 64"),
    "linear": ({"out": 384, "bias": True}, (7, 7, 384), "linear 384"),
    "bn": ({"eps": 1e-5, "momentum": 0.1, "affine": True}, (8, 4, 4), "bn"),
    "frozen_bn": ({"eps": 1e-5}, (8, 4, 4), "frozen bn"),
    "lrn": ({"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}, (8, 4, 4), "lrn"),
    "layernorm2d": ({"eps": 1e-6}, (8, 4, 4), "layernorm"),
    "layernorm": ({"eps": 1e-6}, (4, 4, 8), "layernorm"),
    "layer_scale": ({"value": 1e-6}, (8, 4, 4), "layer scale"),
    **{name: ({}, (8, 4, 4), name) for name in ("relu", "relu6", "gelu", "silu", "sigmoid",
                                                 "tanh", "hardsigmoid", "hardswish")},
    "leaky_relu": ({"slope": 0.2}, (8, 4, 4), "leaky_relu"),
    "maxpool": ({**POOL, "stride": (2, 1)}, (8, 4, 4), "maxpool 3x3/2x1"),
    "avgpool": ({**POOL, "kernel": (2, 2), "stride": (1, 1)}, (8, 4, 4), "avgpool 2x2"),
    "gap": ({}, (8, 1, 1), "global avgpool"),
    "adaptive_avgpool": ({"size": (6, 6)}, (8, 6, 6), "adaptive avgpool 6x6"),
    "adaptive_maxpool": ({"size": (1, 2)}, (8, 1, 2), "adaptive maxpool 1x2"),
    "permute": ({"order": (1, 2, 0)}, (4, 4, 8), "permute [1, 2, 0]"),
    "shuffle": ({"groups": 3}, (9, 4, 4), "shuffle 3"),
    "chunk": ({"index": 0, "parts": 2}, (4, 4, 4), "chunk 0/2"),
    "crop": ({"size": (3, 2)}, (8, 3, 2), "crop 3x2"),
    "upsample": ({"size": (9, 9), "scale": None, "mode": "bilinear"}, (8, 9, 9),
                 "upsample bilinear 9x9"),
    "stochastic_depth": ({"p": 0.1}, (8, 4, 4), "stochastic depth 0.1"),
}


@pytest.mark.parametrize("name", sorted(DISPLAY))
def test_each_record_writes_its_display_text(name):
    attrs, out, text = DISPLAY[name]
    assert OPS[name].display(attrs, out) == text


def test_grouped_convolutions_name_their_groups():
    assert OPS["conv"].display({**CONV, "groups": 32, "stride": (1, 1)}, (64, 8, 8)) \
        == "conv 3x3, 64, g32"
    assert OPS["conv"].display({**CONV, "groups": 1, "kernel": (1, 7), "stride": (1, 2)},
                               (64, 8, 8)) == "conv 1x7/1x2, 64"


# (attrs, input shapes, output shape, window): the input window one output value reads.
# A conv or pool window is its kernel, stride and dilation; a transposed convolution's output
# gathers ceil(extent / stride) inputs per axis; PyTorch's adaptive bins of H inputs into O
# outputs are [floor(i*H/O), ceil((i+1)*H/O)), at most 3 wide for 7->3 and 5->2, 2 wide for
# 6->4, 1 wide for 2->4, 4 for 8->2 (the step: input over output, at least 1); a layer over
# the last axis of CxHxW spans the width. A conv's or pool's window starts its padding before
# the first input (``same``: (k - 1) * d // 2, as torch pads).
WINDOWS = [
    ("conv", {**CONV, "kernel": (3, 5), "stride": (2, 1), "dilation": (2, 1)}, [(3, 9, 9)],
     (64, 3, 5), Window((3, 5), (2, 1), (2, 1), CONV["pad"])),
    ("conv", {**CONV, "kernel": (3, 5), "stride": (1, 1), "pad": "same", "dilation": (2, 1)}, [(3, 9, 9)],
     (64, 9, 9), Window((3, 5), (1, 1), (2, 1), (2, 2))),
    ("maxpool", {**POOL, "dilation": (2, 2)}, [(3, 9, 9)], (3, 3, 3),
     Window((3, 3), (2, 2), (2, 2), POOL["pad"])),
    ("avgpool", {"kernel": (2, 3), "stride": (2, 3), "pad": (0, 0), "ceil": False,
                 "count_pad": True}, [(3, 8, 9)], (3, 4, 3), Window((2, 3), (2, 3))),
    ("conv_transpose", {**CONV, "kernel": (4, 3), "stride": (2, 3), "pad": (0, 0),
                        "output_pad": (0, 0)}, [(3, 4, 4)], (64, 10, 12), Window((2, 1), (1, 1))),
    ("conv_transpose", {**CONV, "kernel": (3, 3), "stride": (2, 1), "pad": (0, 0),
                        "dilation": (2, 1), "output_pad": (0, 0)}, [(3, 4, 4)], (64, 11, 6),
     Window((3, 3), (1, 1))),
    ("adaptive_avgpool", {"size": (3, 2)}, [(8, 7, 5)], (8, 3, 2), Window((3, 3), (2, 2))),
    ("adaptive_maxpool", {"size": (4, 4)}, [(8, 6, 2)], (8, 4, 4), Window((2, 1), (1, 1))),
    ("adaptive_avgpool", {"size": (2, 2)}, [(8, 8, 8)], (8, 2, 2), Window((4, 4), (4, 4))),
    ("adaptive_maxpool", {"size": (2, 3)}, [(8, 8, 6)], (8, 2, 3), Window((4, 2), (4, 2))),
    ("linear", {"out": 4, "bias": True}, [(8, 6, 5)], (8, 6, 4), Window((1, 5), (1, 1))),
    ("layernorm", {"eps": 1e-5}, [(8, 6, 5)], (8, 6, 5), Window((1, 5), (1, 1))),
    ("linear", {"out": 4, "bias": True}, [(8,)], (4,), POINTWISE),
    ("linear", {"out": 4, "bias": True}, [(8, 6)], (8, 4), POINTWISE),
    ("layernorm", {"eps": 1e-5}, [(2, 8, 6, 5)], (2, 8, 6, 5), POINTWISE),
    ("upsample", {"size": None, "scale": (2, 2), "mode": "bilinear"}, [(8, 4, 4)], (8, 8, 8),
     Window((2, 2), (1, 1))),
    ("upsample", {"size": None, "scale": (2, 2), "mode": "nearest"}, [(8, 4, 4)], (8, 8, 8),
     POINTWISE),
    ("fc", {"out": 4, "bias": True, "std": None}, [(8,)], (4,), GLOBAL),
    ("gap", {}, [(8, 4, 4)], (8, 1, 1), GLOBAL),
    *[(name, DISPLAY[name][0], [(8, 4, 4)], (8, 4, 4), POINTWISE)
      for name in ("relu", "relu6", "leaky_relu", "gelu", "silu", "sigmoid", "tanh",
                   "hardsigmoid", "hardswish", "bn", "frozen_bn", "lrn", "layernorm2d", "layer_scale",
                   "dropout", "scale", "stochastic_depth", "shuffle", "crop", "permute")],
    *[(name, {}, [(8, 4, 4), (8, 4, 4)], (8, 4, 4), POINTWISE) for name in ("add", "mul")],
    ("concat", {}, [(8, 4, 4), (2, 4, 4)], (10, 4, 4), POINTWISE),
    ("chunk", {"index": 1, "parts": 2}, [(8, 4, 4)], (4, 4, 4), POINTWISE),
    ("flatten", {}, [(8, 4, 4)], (128,), POINTWISE),
    ("input", {"shape": (3, 4, 4)}, [], (3, 4, 4), POINTWISE),
]


@pytest.mark.parametrize(("name", "attrs", "ins", "out", "window"), WINDOWS,
                         ids=[f"{w[0]}-{i}" for i, w in enumerate(WINDOWS)])
def test_each_record_gives_its_receptive_field_window(name, attrs, ins, out, window):
    assert OPS[name].window(attrs, ins, out) == window


def test_every_op_has_a_window_case():
    assert {w[0] for w in WINDOWS} == set(FACTS)


def test_window_extents_include_dilation():
    assert Window((3, 5), (1, 1), (2, 3)).extent == (5, 13)
    assert Window((1, 1), (2, 2)).dilation == (1, 1) and POINTWISE.extent == (1, 1)


@pytest.mark.parametrize("name", ["adaptive_avgpool", "adaptive_maxpool"])
def test_adaptive_pool_to_its_own_size_writes_a_new_map_as_torch_does(name):
    """torchvision VGG's 7x7 adaptive pool at 224x224 copies its 7x7 input: netdsl counts it."""
    assert not OPS[name].writes_nothing({"size": (7, 7)}, [(512, 7, 7)], (512, 7, 7))
    pool = getattr(torch.nn, OPS[name].torch.cls.rsplit(".", 1)[1])(7)
    x = torch.rand(1, 4, 7, 7)
    assert pool(x).untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


@pytest.mark.parametrize(("name", "attrs", "ins", "out"), [
    ("input", {"shape": (3, 8, 8)}, [], (3, 8, 8)),
    ("layernorm", {"eps": 1e-5}, [(4, 4, 8)], (4, 4, 8)),
    ("layernorm2d", {"eps": 1e-6}, [(8, 4, 4)], (8, 4, 4)),
    ("layer_scale", {"value": 1e-6}, [(8, 4, 4)], (8, 4, 4)),
    ("flatten", {}, [(8, 4, 3)], (96,)),
    ("gap", {}, [(8, 4, 3)], (8, 1, 1)),
    ("adaptive_maxpool", {"size": (2, 3)}, [(8, 5, 5)], (8, 2, 3)),
    ("linear", {"out": 6, "bias": False}, [(4, 4, 8)], (4, 4, 6)),
    ("concat", {}, [(2, 4, 4), (3, 4, 4), (1, 4, 4)], (6, 4, 4)),
])
def test_each_record_infers_its_shape(name, attrs, ins, out):
    assert OPS[name].infer(attrs, ins) == out


@pytest.mark.parametrize(("name", "attrs", "ins", "params"), [
    ("bn", {"eps": 1e-5, "momentum": 0.1, "affine": False}, [(8, 4, 4)], 0),
    ("bn", {"eps": 1e-5, "momentum": 0.1, "affine": True}, [(8, 4, 4)], 16),
    ("frozen_bn", {"eps": 1e-5}, [(8, 4, 4)], 0),  # four buffers, no parameters
    ("layernorm2d", {"eps": 1e-6}, [(8, 4, 4)], 16),
    ("layernorm", {"eps": 1e-6}, [(4, 4, 8)], 16),
    ("layer_scale", {"value": 1e-6}, [(8, 4, 4)], 8),
    ("fc", {"out": 10, "bias": False, "std": None}, [(6,)], 60),
    ("linear", {"out": 10, "bias": False}, [(4, 4, 6)], 60),
    ("conv_transpose", {**CONV, "out": 4, "kernel": (2, 3), "groups": 2, "bias": False,
                        "output_pad": (0, 0)}, [(6, 4, 4)], 6 * 2 * 2 * 3),
])
def test_each_record_counts_its_parameters(name, attrs, ins, params):
    assert OPS[name].count_params(attrs, ins) == params


def test_layer_scale_is_a_parameter_of_one_value_per_channel():
    emission = OPS["layer_scale"].torch
    assert emission.shape({"value": 0.5}, [(8, 4, 4)]) == (8, 1, 1)
    assert emission.shape({"value": 0.5}, [(4, 4, 8)]) == (4, 1, 1)
    assert emission.fill({"value": 0.5}) == 0.5
    assert emission.expr("x", "self.gamma") == "self.gamma * x"
