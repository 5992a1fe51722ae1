"""Dotted labels (module paths written a line at a time) and tensors named inside a chain:
what torchvision's FPN backbone and LR-ASPP head need (issue 11: a feature pyramid, a tensor
from partway through a labelled module)."""

from __future__ import annotations

import pytest
import torch
from test_names import names, net

import netdsl
from netdsl.errors import ModuleNameError, TensorNameError
from netdsl.syntax.fmt import format_text


def test_a_dotted_label_adds_to_a_module_an_earlier_label_made():
    text = net('''
body: (conv1: conv(4, 3x3, pad=1) -> relu)
"body.layer1": conv(4, 3x3, pad=1)
"fpn.inner.1": conv(2, 1x1)
"fpn.inner.0": conv(2, 1x1)''')
    assert names(text) == ["body.conv1", "body.1", "body.layer1", "fpn.inner.1", "fpn.inner.0"]
    model = netdsl.build(text)
    assert [n for n, _ in model.named_children()] == ["body", "fpn"]
    assert [n for n, _ in model.body.named_children()] == ["conv1", "1", "layer1"]
    assert list(model.state_dict()) == [
        "body.conv1.weight", "body.conv1.bias", "body.layer1.weight", "body.layer1.bias",
        "fpn.inner.1.weight", "fpn.inner.1.bias", "fpn.inner.0.weight", "fpn.inner.0.bias"]


def test_a_dotted_label_keeps_its_leaf_rules():
    # a block holding one labelled layer keeps it (torchvision's inner_blocks.3.0), and the
    # leaf is checked for duplicates like any label
    header = 'block lateral(c) = "0": conv(c, 1x1)'
    assert names(net('"fpn.inner.3": lateral(2)', header)) == ["fpn.inner.3.0"]
    with pytest.raises(ModuleNameError, match="two modules in one scope are named 'a'"):
        netdsl.compile(net('"m.a": conv(2, 1x1)\n"m.a": conv(2, 1x1)'))


@pytest.mark.parametrize("body", [
    'stem: conv(4, 3x3)\n"stem.extra": relu',     # a layer holds no modules
    '"m.w.x": conv(4, 3x3)\n"m.w.x.y": relu',     # nor does one reached by a path
])
def test_a_path_cannot_go_through_a_layer(body):
    with pytest.raises(ModuleNameError, match="is a layer, not a module that holds others"):
        netdsl.compile(net(body))


def test_a_tensor_named_inside_a_chain_is_that_tensor():
    """(low = ...) in the middle of a labelled module gives later lines the tensor there:
    the built module computes exactly what the layers written out by hand compute."""
    text = net('''
high = backbone: (conv(4, 3x3, pad=1) -> (low = relu) -> conv(4, 3x3, pad=1) -> relu)
low -> add(identity, high)''')
    assert names(text) == ["backbone.0", "backbone.1", "backbone.2", "backbone.3"]
    torch.manual_seed(0)
    model = netdsl.build(text).eval()
    x = torch.randn(2, 3, 8, 8)
    b = model.backbone
    low = torch.relu(b[0](x))
    high = torch.relu(b[2](low))
    torch.testing.assert_close(model(x), low + high)


def test_a_block_names_its_tensors_afresh_on_every_call():
    header = "block twice(c) = (t = conv(c, 3x3, pad=1)) -> relu -> add(identity, t)"
    text = net("a: twice(4) -> b: twice(4)", header)
    model = netdsl.build(text).eval()
    x = torch.randn(1, 3, 8, 8)
    t = model.a[0](x)  # a.0 is the conv, a.1 the relu; the add is no module
    first = torch.relu(t) + t
    t2 = model.b[0](first)
    torch.testing.assert_close(model(x), torch.relu(t2) + t2)


def test_a_tensor_named_in_repeated_layers_is_an_error():
    with pytest.raises(TensorNameError, match="computed more than once"):
        netdsl.compile(net("stack((t = conv(3, 3x3, pad=1)), 2)\nadd(identity, t)"))
    header = "block both(f) = f -> f"
    with pytest.raises(TensorNameError, match="computed more than once"):
        netdsl.compile(net("both((t = relu))\nadd(identity, t)", header))


def test_a_tensor_named_inside_a_chain_is_unbound_until_it_runs():
    with pytest.raises(TensorNameError):
        netdsl.compile(net("add(identity, t)\nconv(3, 1x1) -> (t = relu)"))
    with pytest.raises(TensorNameError, match="named twice"):
        netdsl.compile(net("t = relu\nconv(3, 1x1) -> (t = relu)"))


def test_fmt_spaces_a_tensor_name_like_a_line_and_keeps_keyword_arguments_tight():
    text = "network n:\n    input 3x8x8\n    f(k=1) -> (x=relu) -> g((y=conv(3, 1x1)), a=2)\n"
    assert format_text(text).splitlines()[-1] == \
        "    f(k=1) -> (x = relu) -> g((y = conv(3, 1x1)), a=2)"
