"""Beyond classification: the original U-Net (Ronneberger et al. 2015), checked stage by
stage against its Fig. 1 (no reference implementation reproduces the paper's unpadded net),
and torchvision's segmentation models, whose weights load."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import segmentation
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

import netdsl
from netdsl.passes.analyse import summarize

from conftest import SPECS
from reference import assert_same_outputs, param_count, randomize_batch_norm

# Fig. 1, in the order the network computes them: (layer, channels, side) for every 3x3
# convolution ("conv"), 2x2 max pool, crop of a copied map and 2x2 up-convolution.
FIG1 = [
    ("conv", 64, 570), ("conv", 64, 568), ("crop", 64, 392), ("maxpool", 64, 284),
    ("conv", 128, 282), ("conv", 128, 280), ("crop", 128, 200), ("maxpool", 128, 140),
    ("conv", 256, 138), ("conv", 256, 136), ("crop", 256, 104), ("maxpool", 256, 68),
    ("conv", 512, 66), ("conv", 512, 64), ("crop", 512, 56), ("maxpool", 512, 32),
    ("conv", 1024, 30), ("conv", 1024, 28),
    ("conv_transpose", 512, 56), ("concat", 1024, 56), ("conv", 512, 54), ("conv", 512, 52),
    ("conv_transpose", 256, 104), ("concat", 512, 104), ("conv", 256, 102), ("conv", 256, 100),
    ("conv_transpose", 128, 200), ("concat", 256, 200), ("conv", 128, 198), ("conv", 128, 196),
    ("conv_transpose", 64, 392), ("concat", 128, 392), ("conv", 64, 390), ("conv", 64, 388),
    ("conv", 2, 388),  # the final 1x1 convolution: two classes
]


def fig1_params() -> int:
    """Weights and biases of every layer in Fig. 1, from its channel counts alone."""
    total, c_in = 0, 1
    for op, c, _ in FIG1:
        if op == "concat":
            c_in = c
        elif op in ("conv", "conv_transpose"):
            k = 1 if c == 2 else (2 if op == "conv_transpose" else 3)
            total += c_in * c * k * k + c
            c_in = c
    return total


def test_unet_follows_fig1():
    graph = netdsl.compile(SPECS / "unet.net")
    layers = [(n.op, n.shape[0], n.shape[1]) for n in graph.nodes
              if n.op in ("conv", "conv_transpose", "maxpool", "crop", "concat")]
    assert layers == FIG1
    assert graph.input.shape == (1, 572, 572) and graph.output_shape == (2, 388, 388)
    assert fig1_params() == 31_030_658  # the count usually quoted for the paper's U-Net
    assert summarize(graph).total_params == fig1_params()
    with torch.device("meta"):  # the module computes the same shapes (no memory used)
        model = netdsl.build(SPECS / "unet.net")
        assert model(torch.empty(1, 1, 572, 572)).shape == (1, 2, 388, 388)
    assert param_count(model) == fig1_params()


# spec (and torchvision constructor) -> torchvision 0.29's parameter count without aux head
SEGMENTATION = {"fcn_resnet50": 32_957_013, "deeplabv3_resnet50": 39_638_869,
                "lraspp_mobilenet_v3_large": 3_221_538}


def reference(name: str) -> torch.nn.Module:
    aux = {} if name.startswith("lraspp") else {"aux_loss": False}  # LR-ASPP has no aux head
    return getattr(segmentation, name)(weights=None, weights_backbone=None, **aux)


@pytest.mark.parametrize("name,count", SEGMENTATION.items(), ids=list(SEGMENTATION))
def test_segmentation_model_loads_torchvision_weights_and_agrees(name, count):
    with torch.device("meta"):
        assert param_count(reference(name)) == count
        assert param_count(netdsl.build(SPECS / f"{name}.net")) == count
    assert summarize(netdsl.compile(SPECS / f"{name}.net")).total_params == count
    torch.manual_seed(0)
    theirs = reference(name)
    randomize_batch_norm(theirs)
    ours = netdsl.build(SPECS / f"{name}.net", size=64)  # scores upsampled to 64x64
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = theirs.eval()(x)["out"]  # torchvision returns {"out": ...}
        assert expected.shape == (1, 21, 64, 64)
        assert_same_outputs(ours.eval()(x), expected, rtol=1e-4)


FPN_PARAMS = 26_799_296  # torchvision 0.29's resnet_fpn_backbone("resnet50"); its norm is frozen


def test_resnet50_fpn_loads_torchvision_weights_and_returns_five_maps():
    """torchvision's FPN backbone (Lin et al. 2017): five named outputs, strides 4 to 64;
    frozen batch norm holds buffers, not parameters, so the counts agree only if it is one."""
    with torch.device("meta"):
        assert param_count(resnet_fpn_backbone(backbone_name="resnet50", weights=None)) \
            == FPN_PARAMS
        assert param_count(netdsl.build(SPECS / "resnet50_fpn.net")) == FPN_PARAMS
    graph = netdsl.compile(SPECS / "resnet50_fpn.net")
    assert summarize(graph).total_params == FPN_PARAMS
    assert [(key, graph.nodes[i].shape) for key, i in graph.outputs] == [
        ("0", (256, 56, 56)), ("1", (256, 28, 28)), ("2", (256, 14, 14)), ("3", (256, 7, 7)),
        ("pool", (256, 4, 4))]
    torch.manual_seed(0)
    theirs = resnet_fpn_backbone(backbone_name="resnet50", weights=None)
    randomize_batch_norm(theirs)
    ours = netdsl.build(SPECS / "resnet50_fpn.net", input="3x96x80")  # any size, not square
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        expected, got = theirs.eval()(x), ours.train()(x)  # frozen: training changes nothing
    assert list(got) == list(expected) == ["0", "1", "2", "3", "pool"]
    for key in expected:
        assert_same_outputs(got[key], expected[key], rtol=1e-4)
