"""The zoo: a spec for every torchvision CNN classifier family, proven against torchvision.

Every variant has torchvision's exact parameter count (the figure below is torchvision 0.29's,
and is also measured on the reference) and its state_dict keys, in order; both models are
built on the meta device, so even the 145M-parameter RegNet costs no memory. One variant per
family then loads torchvision's weights with strict=True and gives its outputs in eval mode,
after every batch norm got random statistics and affine parameters (with default ones,
MobileNet's outputs are near 1e-9 and an absolute tolerance would prove nothing).
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch
import torchvision
from torchvision.models import regnet

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
    "mobilenet_v3_large": 5_483_032, "mobilenet_v3_small": 2_542_856,
    "efficientnet_b0": 5_288_548, "efficientnet_b1": 7_794_184, "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232, "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784, "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960, "efficientnet_v2_s": 21_458_488,
    "efficientnet_v2_m": 54_139_356, "efficientnet_v2_l": 118_515_272,
    "convnext_tiny": 28_589_128, "convnext_small": 50_223_688, "convnext_base": 88_591_464,
    "convnext_large": 197_767_336,
    "regnet_x_400mf": 5_495_976, "regnet_x_800mf": 7_259_656, "regnet_x_1_6gf": 9_190_136,
    "regnet_x_3_2gf": 15_296_552, "regnet_x_8gf": 39_572_648, "regnet_x_16gf": 54_278_536,
    "regnet_x_32gf": 107_811_560,
    "regnet_y_400mf": 4_344_144, "regnet_y_800mf": 6_432_512, "regnet_y_1_6gf": 11_202_430,
    "regnet_y_3_2gf": 19_436_338, "regnet_y_8gf": 39_381_472, "regnet_y_16gf": 83_590_140,
    "regnet_y_32gf": 145_046_770,
    "mnasnet0_5": 2_218_512, "mnasnet0_75": 3_170_208, "mnasnet1_0": 4_383_312,
    "mnasnet1_3": 6_282_256,
    "densenet121": 7_978_856, "densenet161": 28_681_000, "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "shufflenet_v2_x0_5": 1_366_792, "shufflenet_v2_x1_0": 2_278_604,
    "shufflenet_v2_x1_5": 3_503_624, "shufflenet_v2_x2_0": 7_393_996,
}

# one variant per family: its weights load and it computes what torchvision does
# (spec, input size; the smallest that every stage takes comfortably)
LOADS = [("resnext50_32x4d", 64), ("wide_resnet50_2", 64), ("squeezenet1_1", 64),
         ("mobilenet_v2", 64), ("shufflenet_v2_x0_5", 64),
         ("mnasnet0_5", 64), ("densenet121", 64),
         ("mobilenet_v3_large", 64), ("mobilenet_v3_small", 64),
         ("efficientnet_b0", 64), ("efficientnet_b5", 64), ("efficientnet_v2_s", 64),
         ("convnext_tiny", 64),
         ("regnet_x_400mf", 64), ("regnet_y_400mf", 64)]


def reference(name: str) -> torch.nn.Module:
    return getattr(torchvision.models, name)(weights=None)


def meta_reference(name: str) -> torch.nn.Module:
    """The reference without weights: on the meta device, except RegNet's width rule, which
    reads tensors back into Python numbers and so runs on the CPU."""
    rule = regnet.BlockParams.from_init_params.__func__

    def on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return rule(cls, *args, **kwargs)

    with mock.patch.object(regnet.BlockParams, "from_init_params", classmethod(on_cpu)), \
            torch.device("meta"):
        return reference(name)


@pytest.mark.parametrize("name,count", ZOO.items(), ids=list(ZOO))
def test_variant_has_torchvisions_parameters_and_state_dict_keys(name, count):
    path = SPECS / f"{name}.net"
    theirs = meta_reference(name)
    with torch.device("meta"):
        ours = netdsl.build(path)
    assert param_count(theirs) == count
    assert param_count(ours) == count
    assert summarize(netdsl.compile(path)).total_params == count
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same keys, same order
    # stochastic depth (EfficientNet, ConvNeXt) grows block by block as torchvision sets it;
    # torchvision makes one in every block but applies it only where the block adds its input
    ours_p, theirs_p = drop_rates(ours), drop_rates(theirs)
    assert {k: theirs_p.get(k) for k in ours_p} == ours_p


def drop_rates(model: torch.nn.Module) -> dict[str, float]:
    return {name: m.p for name, m in model.named_modules()
            if type(m).__name__ == "StochasticDepth"}


@pytest.mark.parametrize("name,size", LOADS, ids=[n for n, _ in LOADS])
def test_family_loads_torchvision_weights_and_agrees(name, size):
    torch.manual_seed(0)
    ours = netdsl.build(SPECS / f"{name}.net", input=(3, size, size))
    load_and_compare(ours, reference(name), torch.randn(1, 3, size, size), rtol=1e-4)
