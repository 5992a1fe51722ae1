"""The first specs reproduce torchvision exactly: parameter counts, state_dict keys (strict
loading) and outputs. Both models are built in the test; nothing is restated from memory."""

from __future__ import annotations

import pytest
import torch
import torchvision

import netdsl

from conftest import SPECS
from reference import load_and_compare, param_count

# spec, torchvision constructor, netdsl overrides, input size used for the comparison
CASES = [
    ("resnet18", lambda: torchvision.models.resnet18(), {}, 64),
    ("resnet34", lambda: torchvision.models.resnet34(), {}, 64),
    ("resnet50", lambda: torchvision.models.resnet50(), {}, 64),
    ("resnet101", lambda: torchvision.models.resnet101(), {}, 64),
    ("resnet152", lambda: torchvision.models.resnet152(), {}, 64),
    ("vgg16", lambda: torchvision.models.vgg16(), {}, 32),
    ("googlenet", lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True),
     {"aux_logits": False}, 64),
]


@pytest.mark.parametrize("name,reference,overrides,size", CASES, ids=[c[0] for c in CASES])
def test_weights_load_strictly_and_outputs_agree(name, reference, overrides, size):
    torch.manual_seed(0)
    theirs = reference()
    ours = netdsl.build(SPECS / f"{name}.net", **overrides)
    assert param_count(ours) == param_count(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same keys, same order
    load_and_compare(ours, theirs, torch.randn(2, 3, size, size))


def test_googlenet_auxiliary_outputs_match_in_training_mode():
    torch.manual_seed(0)
    theirs = torchvision.models.googlenet(init_weights=True)  # aux classifiers on by default
    ours = netdsl.build(SPECS / "googlenet.net")
    assert param_count(ours) == param_count(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    torch.manual_seed(1)
    expected = theirs.train()(x)
    torch.manual_seed(1)  # same dropout masks: both run their layers in the same order
    got = ours.train()(x)
    assert isinstance(got, tuple) and len(got) == 3
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        assert ours.eval()(x).shape == (2, 1000)  # eval: the main output alone


def test_num_classes_override_changes_the_head():
    model = netdsl.build(SPECS / "resnet50.net", num_classes=10)
    assert model.fc.out_features == 10
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)
