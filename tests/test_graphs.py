"""Networks that are graphs (issue 11 item 2): a line's output tensor named (`skip1 = ...`)
and read by later lines, checked against the same network written by hand in torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import netdsl
from netdsl.errors import TensorNameError
from netdsl.syntax.fmt import format_text

UNET = """
block down(c) = conv(c, 3x3, pad=1) -> relu

network unetish:
    input 3x16x16
    skip1 = enc1: down(8)
    skip2 = enc2: (maxpool(2) -> down(16))
    bottom: (maxpool(2) -> down(32)) -> upsample(scale=2)
    dec2: (concat(identity, skip2) -> down(16)) -> upsample(scale=2)
    dec1: (concat(skip1, identity) -> down(8))
    head: conv(2, 1x1)
"""


def _by_hand(model, x):
    """The U-Net-like graph above, written out with torch's functions and the model's own
    weights: long skip connections into the decoder."""
    w = dict(model.named_parameters())

    def down(prefix, t):
        return F.relu(F.conv2d(t, w[f"{prefix}.weight"], w[f"{prefix}.bias"], padding=1))

    skip1 = down("enc1.0", x)
    skip2 = down("enc2.1.0", F.max_pool2d(skip1, 2))
    t = F.interpolate(down("bottom.1.0", F.max_pool2d(skip2, 2)), scale_factor=2.0)
    t = F.interpolate(down("dec2.0", torch.cat([t, skip2], 1)), scale_factor=2.0)
    t = down("dec1.0", torch.cat([skip1, t], 1))
    return F.conv2d(t, w["head.weight"], w["head.bias"])


def test_named_tensors_make_a_unet_like_graph_that_runs_as_written_by_hand():
    torch.manual_seed(0)
    model = netdsl.build(UNET).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ours, theirs = model(x), _by_hand(model, x)
    assert ours.shape == (2, 2, 16, 16)
    torch.testing.assert_close(ours, theirs)
    graph = netdsl.compile(UNET)
    assert [n.op for n in graph.nodes if n.op == "concat"] == ["concat", "concat"]
    # skip1 (enc1's relu) is read twice: it must never be overwritten in place
    relu = next(n for n in graph.nodes if n.name == "enc1.1")
    assert sum(relu.id in n.inputs for n in graph.nodes) == 2


def test_a_named_tensor_keeps_its_value_when_an_in_place_relu_follows():
    text = ("network n:\n    input 4x8x8\n    a = conv(4, 1x1)\n    relu\n"
            "    add(identity, a)\n")
    torch.manual_seed(0)
    model = netdsl.build(text).eval()
    x = torch.randn(1, 4, 8, 8)
    conv = getattr(model, "0")
    with torch.no_grad():
        a = conv(x)
        torch.testing.assert_close(model(x), F.relu(a) + a)


def test_fmt_keeps_named_tensors():
    scrambled = UNET.replace("skip1 = enc1:", "skip1=enc1 :").replace("    dec1", "  dec1")
    formatted = format_text(scrambled)
    assert "    skip1 = enc1: down(8)" in formatted
    def ir(text):
        return [(n.op, n.inputs, dict(n.attrs), n.name, n.shape)
                for n in netdsl.compile(text).nodes]
    assert ir(formatted) == ir(UNET)


@pytest.mark.parametrize("body, message", [
    ("relu -> add(identity, later)\nlater = conv(3, 1x1)",
     "tensor 'later' is used before the line that computes it"),
    ("a = relu\na = conv(3, 1x1)", "tensor 'a' is named twice"),
    ("conv = relu", "tensor name 'conv' would hide"),
    ("n = relu", "tensor name 'n' would hide the number 3"),
])
def test_tensor_names_are_checked(body, message):
    lines = "\n".join("    " + line for line in body.splitlines())
    with pytest.raises(TensorNameError, match=message):
        netdsl.compile(f"network t(n=3):\n    input 3x8x8\n{lines}\n")


FPN = """
network fpnish:
    input 3x32x32
    c2 = layer1: conv(8, 3x3, stride=2, pad=1) -> relu
    c3 = layer2: conv(16, 3x3, stride=2, pad=1) -> relu
    p3 = inner3: conv(8, 1x1)
    p2 = add(c2 -> inner2: conv(8, 1x1), p3 -> upsample(scale=2))
    pool = p3 -> maxpool(1, stride=2)
    output "0": p2, "1": p3, pool
"""


def test_several_named_outputs_are_returned_as_a_dict_like_torchvisions_fpn(tmp_path):
    torch.manual_seed(0)
    model = netdsl.build(FPN).eval()
    x = torch.randn(2, 3, 32, 32)
    w = dict(model.named_parameters())
    c2 = F.relu(F.conv2d(x, w["layer1.weight"], w["layer1.bias"], stride=2, padding=1))
    c3 = F.relu(F.conv2d(c2, w["layer2.weight"], w["layer2.bias"], stride=2, padding=1))
    p3 = F.conv2d(c3, w["inner3.weight"], w["inner3.bias"])
    p2 = F.conv2d(c2, w["inner2.weight"], w["inner2.bias"]) + F.interpolate(p3, scale_factor=2.0)
    expected = {"0": p2, "1": p3, "pool": F.max_pool2d(p3, 1, 2)}
    with torch.no_grad():
        ours = model(x)
    assert list(ours) == ["0", "1", "pool"]  # compared key by key, in order
    for key, value in expected.items():
        torch.testing.assert_close(ours[key], value)
    graph = netdsl.compile(FPN)
    assert [k for k, _ in graph.outputs] == ["0", "1", "pool"]
    assert graph.output_shape == (8, 16, 16)  # the first output is the main one
    from netdsl.ir.graph import from_json, to_json
    assert from_json(to_json(graph)).outputs == graph.outputs
    program = torch.export.export(model, (x,))
    assert set(program.module()(x)) == {"0", "1", "pool"}


@pytest.mark.parametrize("line, message", [
    ("output p2, p2", "output key 'p2' is given twice"),
    ("output relu", "output 'relu' is not a named tensor"),
    ("output nope", "unknown name 'nope'"),
])
def test_outputs_are_checked(line, message):
    with pytest.raises(netdsl.NetDSLError, match=message):
        netdsl.compile(FPN.replace('output "0": p2, "1": p3, pool', line))


BLOCK = """
block unit(c):
    a = conv1: conv(c, 3x3, pad=1)
    relu -> conv2: conv(c, 3x3, pad=1)
    add(identity, a)

network n:
    input 4x8x8
    u: unit(4)
    v: unit(4)
"""


def test_a_block_of_several_lines_is_a_graph_with_its_own_tensor_names():
    torch.manual_seed(0)
    model = netdsl.build(BLOCK).eval()
    x = torch.randn(1, 4, 8, 8)
    w = dict(model.named_parameters())

    def unit(prefix, t):
        a = F.conv2d(t, w[f"{prefix}.conv1.weight"], w[f"{prefix}.conv1.bias"], padding=1)
        return F.conv2d(F.relu(a), w[f"{prefix}.conv2.weight"], w[f"{prefix}.conv2.bias"],
                        padding=1) + a

    with torch.no_grad():
        torch.testing.assert_close(model(x), unit("v", unit("u", x)))
    scrambled = BLOCK.replace("    a = conv1:", "  a=conv1 :").replace("    relu ->", "  relu->")
    assert format_text(scrambled) == format_text(BLOCK)


def test_a_block_line_cannot_read_a_later_tensor():
    text = BLOCK.replace("add(identity, a)", "add(identity, b)\n    b = relu")
    with pytest.raises(TensorNameError, match="tensor 'b' is used before"):
        netdsl.compile(text)


def test_summary_lists_every_named_output():
    from netdsl.passes.analyse import summarize
    from netdsl.render.tables import format_table
    summary = summarize(netdsl.compile(FPN))
    assert summary.to_json()["outputs"] == {"0": [8, 16, 16], "1": [8, 8, 8], "pool": [8, 4, 4]}
    assert "-> 0: 8x16x16, 1: 8x8x8, pool: 8x4x4" in format_table(summary, "fpn.net")
    assert summarize(netdsl.compile(UNET)).to_json()["outputs"] == {}


def test_a_pictures_title_lists_every_named_output():
    from netdsl.render.graph import picture
    assert picture(netdsl.compile(FPN)).title.endswith(
        "-> 0: 8x16x16, 1: 8x8x8, pool: 8x4x4")
    assert picture(netdsl.compile(UNET)).title == "unetish: 3x16x16 -> 2x16x16"
