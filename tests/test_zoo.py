"""The zoo: a spec for every torchvision CNN classifier family, proven against torchvision.

Every variant has torchvision's exact parameter count (the figure below is torchvision 0.29's,
and is also measured on the reference) and its state_dict keys, in order; both models are
built on the meta device, so even the 145M-parameter RegNet costs no memory. One variant per
family then loads torchvision's weights with strict=True and gives its outputs in eval mode,
after every batch norm got random statistics and affine parameters (with default ones,
MobileNet's outputs are near 1e-9 and an absolute tolerance would prove nothing).
"""

from __future__ import annotations

import pytest
import torch
import torchvision

import netdsl
from netdsl.passes.analyse import summarize

from conftest import SPECS
from reference import load_and_compare, param_count

# spec (and torchvision constructor) name -> torchvision 0.29's parameter count
ZOO = {
    "resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272, "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496,
    "mobilenet_v2": 3_504_872,
    "shufflenet_v2_x0_5": 1_366_792, "shufflenet_v2_x1_0": 2_278_604,
    "shufflenet_v2_x1_5": 3_503_624, "shufflenet_v2_x2_0": 7_393_996,
}

# one variant per family: its weights load and it computes what torchvision does
# (spec, input size; the smallest that every stage takes comfortably)
LOADS = [("resnext50_32x4d", 64), ("wide_resnet50_2", 64), ("squeezenet1_1", 64),
         ("mobilenet_v2", 64), ("shufflenet_v2_x0_5", 64)]


def reference(name: str) -> torch.nn.Module:
    return getattr(torchvision.models, name)(weights=None)


@pytest.mark.parametrize("name,count", ZOO.items(), ids=list(ZOO))
def test_variant_has_torchvisions_parameters_and_state_dict_keys(name, count):
    path = SPECS / f"{name}.net"
    with torch.device("meta"):
        theirs = reference(name)
        ours = netdsl.build(path)
    assert param_count(theirs) == count
    assert param_count(ours) == count
    assert summarize(netdsl.compile(path)).total_params == count
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same keys, same order


@pytest.mark.parametrize("name,size", LOADS, ids=[n for n, _ in LOADS])
def test_family_loads_torchvision_weights_and_agrees(name, size):
    torch.manual_seed(0)
    ours = netdsl.build(SPECS / f"{name}.net", input=(3, size, size))
    load_and_compare(ours, reference(name), torch.randn(1, 3, size, size), rtol=1e-4)
