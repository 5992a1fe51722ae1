"""Module names (issue 11 item 3, issue 12 item 3): any torch module name can be a label,
a label is never dropped, two modules never share a name, stack names its copies; and the
conditions `and`, `or`, `not`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import netdsl
from netdsl.errors import ModuleNameError, SpecArgumentError, SpecTypeError
from netdsl.lower.naming import MODULE_ATTRIBUTES, module_name_problem


def net(body: str, header: str = "", shape: str = "3x8x8") -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{header}\nnetwork n:\n    input {shape}\n{lines}\n"


def names(text: str) -> list[str]:
    return [n.name for n in netdsl.compile(text).named()]


def test_quoted_labels_name_modules_that_are_not_netdsl_names():
    text = net('"block": conv(4, 3x3) -> "block1-0": relu -> "class": (conv(2, 1x1) -> relu)')
    assert names(text) == ["block", "block1-0", "class.0", "class.1"]
    model = netdsl.build(text)
    assert list(model.state_dict()) == ["block.weight", "block.bias", "class.0.weight",
                                        "class.0.bias"]
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 2, 6, 6)


def test_every_nn_module_attribute_is_refused_as_a_label():
    # in a fresh interpreter: other tests import libraries that patch nn.Module (OpenVINO's
    # and other backends' helpers), which is not what a user's build sees
    code = "from torch import nn; print(*(set(dir(nn.Module)) | set(vars(nn.Module()))))"
    torch_names = set(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, check=True, timeout=120).stdout.split())
    missing = {n for n in torch_names if module_name_problem(n) is None}
    assert not missing, f"torch added nn.Module attributes: {sorted(missing)}"
    assert {"forward", "training", "eval", "cuda", "_modules", "add_module"} <= MODULE_ATTRIBUTES


@pytest.mark.parametrize("label", ["forward", "training", "eval", "cuda", "_modules",
                                   "add_module", "reset_parameters", "__init__"])
def test_a_label_that_is_a_module_attribute_is_an_error_at_the_label(label):
    with pytest.raises(ModuleNameError, match="attribute every nn.Module has") as caught:
        netdsl.compile(net(f'relu -> "{label}": conv(4, 3x3)'))
    assert (caught.value.line, caught.value.column) == (4, 13)


@pytest.mark.parametrize("label", ["", "a..b", ".a", "a.", "tab\there", "a.__init__"])
def test_a_label_that_cannot_be_a_module_name_is_an_error(label):
    with pytest.raises(ModuleNameError, match="cannot name a module"):
        netdsl.compile(net(f'"{label}": conv(4, 3x3)'))


def test_a_label_is_never_dropped():
    assert names(net("outer: (inner: conv(4, 3x3))")) == ["outer.inner"]
    # a labelled block whose one layer is labelled keeps both labels
    header = "block head(n) = fc: fc(n)"
    assert names(net("flatten -> top: head(10)", header)) == ["0", "top.fc"]
    # an unlabelled call of it keeps the layer as its child (torchvision's MobileNetV2 block)
    assert names(net("flatten -> head(10)", header)) == ["0", "1.fc"]
    # a single unlabelled element still takes its scope's place: fc: fc(10) is `fc`
    assert names(net("flatten -> fc: fc(10)")) == ["0", "fc"]


@pytest.mark.parametrize("body", [
    "a: conv(4, 3x3) -> a: conv(8, 3x3)",
    "k: concat(c: conv(1, 1x1), c: conv(2, 1x1))",
    "stack(c: conv(8, 1x1), 2)",
    "a: conv(4, 3x3)\na: (relu -> conv(4, 1x1))",
    '"1": conv(4, 3x3) -> relu',
])
def test_two_modules_with_one_name_are_an_error_at_check_time(body):
    with pytest.raises(ModuleNameError, match="two modules in one scope are named"):
        netdsl.compile(net(body))


def test_the_same_label_in_different_scopes_is_fine():
    header = "block unit(c) = conv: conv(c, 1x1) -> relu"
    assert names(net("unit(4) -> unit(4)\nk: concat(a: conv(1, 1x1), b: conv(2, 1x1))",
                     header)) == ["0.conv", "0.1", "1.conv", "1.1", "k.a", "k.b"]


def test_stack_names_its_copies():
    header = "block dense(g) = norm1: bn -> relu1: relu -> conv1: conv(g, 3x3, pad=1)"
    text = net('features: stack(dense(4), 3, names="denselayer{}")', header)
    assert names(text) == [f"features.denselayer{i}.{m}" for i in (1, 2, 3)
                           for m in ("norm1", "relu1", "conv1")]
    assert names(net('stack(conv(4, 1x1), 2, names="l{}", start=0)')) == ["l0", "l1"]
    # a labelled layer inside named copies is fine: each copy is its own scope
    assert names(net('stack(c: conv(4, 1x1) -> relu, 2, names="d{}")')) == [
        "d1.c", "d1.1", "d2.c", "d2.1"]


@pytest.mark.parametrize("call, error", [
    ('stack(relu, 2, names="layer")', SpecTypeError),
    ('stack(relu, 2, names=3)', SpecTypeError),
    ('stack(relu, 2, names="l{}", start=-1)', SpecTypeError),
    ('stack(relu, 2, start=1)', SpecArgumentError),
    ('stack(relu, 2, names="l.{}")', ModuleNameError),
])
def test_stack_names_are_checked(call, error):
    with pytest.raises(error):
        netdsl.compile(net(call))


@pytest.mark.parametrize("test, expected", [
    ("a > 1 and b", True), ("a > 5 and b", False), ("not b", False), ("a > 5 or b", True),
    ("not (a > 5 or not b)", True), ("a == 2 and not false or false", True),
    # short-circuit: the right side is not evaluated when the left decides
    ("a > 5 and 1 // 0 == 1", False), ("a > 1 or 1 // 0 == 1", True),
])
def test_and_or_not_in_conditions(test, expected):
    text = f"network n(a=2, b=true):\n    input 3x8x8\n    relu if {test} else identity\n"
    assert len(netdsl.compile(text).nodes) == (2 if expected else 1)


def test_and_needs_booleans():
    with pytest.raises(SpecTypeError, match="expected true or false"):
        netdsl.compile("network n(a=2):\n    input 3x8x8\n    relu if a and true else identity\n")
