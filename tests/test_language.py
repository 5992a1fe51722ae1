"""Language semantics: module naming, blocks, residuals, branches, values, imports; and each
shape rule against the real torch layer (property tests)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netdsl
from netdsl.errors import SpecImportError, SpecShapeError
from netdsl.ir.ops import OPS, ShapeProblem
from netdsl.passes.check import check


def modules(text: str, **params) -> dict[str, tuple]:
    """Module name -> (op, output shape) for a spec text."""
    graph = netdsl.compile(text, **params)
    return {n.name: (n.op, n.shape) for n in graph.modules()}


def net(body: str, header: str = "", shape: str = "3x32x32") -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{header}\nnetwork n:\n    input {shape}\n{lines}\n"


def test_unlabelled_elements_are_numbered_like_nn_sequential():
    names = modules(net("features: (conv3x3(8) -> relu -> conv3x3(8) -> relu -> maxpool(2x2))"))
    assert list(names) == [f"features.{i}" for i in range(5)]
    assert names["features.4"] == ("maxpool", (8, 16, 16))


def test_a_block_call_opens_a_scope_unless_it_holds_one_layer():
    header = "block unit(c) = conv: conv(c, 3x3, pad=1) -> bn: bn -> relu"
    names = modules(net("stem: unit(8)\nunit(16)\nconv1x1(4)", header))
    assert {"stem.conv", "stem.bn", "stem.2", "1.conv", "1.bn", "1.2", "2"} == set(names)
    assert names["2"] == ("conv", (4, 32, 32))  # conv1x1 is one layer: no scope of its own


def test_a_labelled_single_element_keeps_its_label():
    # torchvision's MobileNetV2 block holds one child, `conv`: features.1.conv.0
    header = "block inv(c) = residual(conv: (conv1x1(c) -> bn))"
    names = modules(net("outer: (inner: conv1x1(4))\nfeatures: (conv1x1(4) -> inv(4))", header))
    assert set(names) == {"outer.inner", "features.0", "features.1.conv.0",
                          "features.1.conv.1"}


def test_an_inline_block_numbers_its_layers_where_it_is_called():
    header = "inline block stage(c, n) = stack(conv3x3(c) -> relu, n) -> maxpool(2x2)"
    names = modules(net("features: (stage(8, 2) -> stage(16, 1))", header))
    assert list(names) == [f"features.{i}" for i in range(8)]


def test_stack_of_blocks_numbers_each_copy():
    header = "block b(c) = x: conv3x3(c) -> relu"
    names = modules(net("layer: stack(b(8), 3)", header))
    assert [n for n in names if n.endswith(".x")] == ["layer.0.x", "layer.1.x", "layer.2.x"]


def test_residual_project_is_nothing_unless_the_shape_changes_then_a_real_conv_and_bn():
    """`shortcut=project` is decided once, at expansion: no node where the shapes agree,
    else a strided 1x1 conv without bias and a batch norm (He et al. 2016, option B)."""
    header = ("block down(c, stride=1) = residual(conv3x3(c, stride=stride) -> bn,"
              " shortcut=proj: project) -> relu")
    graph = netdsl.compile(net("a: down(3)\nb: down(16, stride=2)", header))
    names = {n.name: n for n in graph.nodes if n.name}
    assert not any(name.startswith("a.proj") for name in names)
    conv, bn = names["b.proj.0"], names["b.proj.1"]
    assert (conv.op, bn.op) == ("conv", "bn")
    assert conv.attrs["stride"] == (2, 2) and conv.attrs["kernel"] == (1, 1)
    assert conv.attrs["bias"] is False and conv.shape == bn.shape == (16, 16, 16)
    assert not any(n.op == "project" for n in graph.nodes)


def test_residual_scale_multiplies_the_body():
    graph = netdsl.compile(net("residual(conv3x3(3), scale=0.17)"))
    (scale,) = [n for n in graph.nodes if n.op == "scale"]
    assert scale.attrs["factor"] == 0.17


def test_inception_shorthand_reads_like_the_paper_table():
    names = modules(net("i: inception(1x1:64, 3x3:r96->128, 5x5:r16->32, pool:32)",
                        shape="192x28x28"))
    assert names["i.branch1.0"] == ("conv", (64, 28, 28))
    assert names["i.branch2.0.0"] == ("conv", (96, 28, 28))  # conv_relu units: conv, relu
    assert names["i.branch3.1.0"] == ("conv", (32, 28, 28))
    assert names["i.branch4.0"] == ("maxpool", (192, 28, 28))
    graph = netdsl.compile(net("i: inception(1x1:64, 3x3:r96->128, 5x5:r16->32, pool:32)",
                               shape="192x28x28"))
    assert graph.output_shape == (256, 28, 28)  # 64 + 128 + 32 + 32, Table 1's 3a


def test_aux_outputs_are_side_branches_and_can_be_switched_off():
    text = ("network n(aux_on=true):\n    input 8x16x16\n"
            "    conv3x3(8)\n    side: aux(gap -> flatten -> fc(3), when=aux_on)\n"
            "    gap -> flatten -> fc(5)\n")
    with_aux = netdsl.compile(text)
    assert len(with_aux.aux_outputs) == 1
    assert with_aux.nodes[with_aux.aux_outputs[0]].shape == (3,)
    assert netdsl.compile(text, aux_on=False).aux_outputs == ()
    model = netdsl.build(text)
    main, side = model.train()(torch.randn(2, 8, 16, 16))
    assert main.shape == (2, 5) and side.shape == (2, 3)
    assert model.eval()(torch.randn(2, 8, 16, 16)).shape == (2, 5)


def test_values_arithmetic_lists_conditions_and_block_parameters():
    header = ("block b(c, wide=false, out=2 * c) = conv(out * 2 if wide else out, 1x1)\n"
              "block apply(f, c) = f(c)")
    names = modules(net("x: b(4)\ny: b(4, wide=true)\nz: apply(b, [1, 8][1] // 2)", header))
    assert names["x"][1][0] == 8 and names["y"][1][0] == 16 and names["z"][1][0] == 8


def test_network_alias_fixes_some_parameters_and_leaves_the_rest():
    text = ("network base(width, num_classes=1000):\n    input 3x8x8\n"
            "    conv(width, 1x1) -> gap -> flatten -> fc(num_classes)\n"
            "network small = base(4)\n")
    assert netdsl.compile(text).output_shape == (1000,)
    assert netdsl.compile(text, num_classes=7).output_shape == (7,)
    assert netdsl.compile(text, width=6).nodes[1].shape == (6, 8, 8)


def test_imports_are_relative_and_cycles_are_reported(tmp_path):
    (tmp_path / "lib.net").write_text("block two(c) = conv3x3(c) -> conv3x3(c)\n")
    (tmp_path / "main.net").write_text('import "lib.net"\n' + net("two(4)"))
    assert netdsl.compile(tmp_path / "main.net").output_shape == (4, 32, 32)
    (tmp_path / "a.net").write_text('import "b.net"\n')
    (tmp_path / "b.net").write_text('import "a.net"\n')
    with pytest.raises(SpecImportError, match="import cycle"):
        netdsl.compile(tmp_path / "a.net")


def test_sweeping_input_sizes_reports_the_first_failing_layer():
    graph = netdsl.compile(net("conv(4, 5x5) -> maxpool(3x3, stride=2)"))
    check(graph, (3, 7, 7))
    with pytest.raises(SpecShapeError, match="maxpool gets 2x2, needs at least 3x3"):
        check(graph, (3, 6, 6))


# --- shape rules against torch -----------------------------------------------------------

def _attrs(op: str, **given) -> dict:
    return {p.name: given.get(p.name, p.default) for p in OPS[op].params} | given


def _torch_shape(layer: torch.nn.Module, shape: tuple) -> tuple | None:
    try:
        with torch.no_grad():
            return tuple(layer(torch.zeros(1, *shape)).shape[1:])
    except RuntimeError:
        return None


def _our_shape(op: str, attrs: dict, shape: tuple) -> tuple | None:
    try:
        return OPS[op].infer(attrs, [shape])
    except ShapeProblem:
        return None


pairs = st.tuples(st.integers(1, 5), st.integers(1, 5))


@settings(max_examples=150, deadline=None)
@given(c=st.integers(1, 4), groups=st.integers(1, 2), out=st.integers(1, 4), k=pairs,
       s=pairs, p=st.tuples(st.integers(0, 3), st.integers(0, 3)), d=st.tuples(
           st.integers(1, 2), st.integers(1, 2)), h=st.integers(1, 12), w=st.integers(1, 12))
def test_conv_shape_rule_agrees_with_torch(c, groups, out, k, s, p, d, h, w):
    c, out = c * groups, out * groups
    attrs = _attrs("conv", out=out, kernel=k, stride=s, pad=p, dilation=d, groups=groups)
    layer = torch.nn.Conv2d(c, out, k, stride=s, padding=p, dilation=d, groups=groups)
    assert _our_shape("conv", attrs, (c, h, w)) == _torch_shape(layer, (c, h, w))


@settings(max_examples=150, deadline=None)
@given(k=pairs, s=pairs, p=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       ceil=st.booleans(), h=st.integers(1, 12), w=st.integers(1, 12), maxpool=st.booleans())
def test_pool_shape_rules_agree_with_torch(k, s, p, ceil, h, w, maxpool):
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        return  # torch refuses such padding outright; our rule says so too (tested below)
    op = "maxpool" if maxpool else "avgpool"
    attrs = _attrs(op, kernel=k, stride=s, pad=p, dilation=(1, 1), ceil=ceil)
    layer = (torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil) if maxpool
             else torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil))
    assert _our_shape(op, attrs, (2, h, w)) == _torch_shape(layer, (2, h, w))


def test_pool_padding_larger_than_half_the_window_is_refused():
    with pytest.raises(ShapeProblem, match="more than half"):
        OPS["maxpool"].infer(_attrs("maxpool", kernel=(2, 2), stride=(2, 2), pad=(2, 2),
                                    dilation=(1, 1)), [(1, 8, 8)])


def test_same_padding_keeps_the_size_at_stride_one():
    graph = netdsl.compile(net("conv(4, 1x7, pad=same) -> conv(4, 5x5, dilation=2, pad=same)"))
    assert [n.shape for n in graph.nodes[1:]] == [(4, 32, 32), (4, 32, 32)]


def test_an_identity_shortcut_takes_no_position_and_the_module_still_runs():
    header = "block unit(c) = residual(conv3x3(c) -> relu -> conv3x3(c), shortcut=project) -> relu"
    model = netdsl.build(net("b: unit(3)", header, shape="3x8x8"))
    assert [name for name, _ in model.b.named_children()] == ["0", "1", "2", "3"]
    assert isinstance(model.b, torch.nn.Sequential)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 3, 8, 8)


def test_a_block_reads_its_inputs_width_and_shape():
    """DenseNet's transition halves whatever width it gets (Huang et al. 2017)."""
    header = ("block transition(out=in_channels // 2) = bn -> relu -> conv(out, 1x1) -> avgpool(2)\n"
              "block widen(c) = conv(in_channels + c, 3x3, pad=1)\n"
              "block head = gap -> flatten -> fc(in_shape[1] * in_shape[2])")
    graph = netdsl.compile(net("widen(32) -> transition -> widen(8) -> head", header,
                               shape="64x8x8"))
    convs = [n.shape for n in graph.nodes if n.op == "conv"]
    assert convs == [(96, 8, 8), (48, 8, 8), (56, 4, 4)]
    assert graph.output_shape == (16,)


def test_a_parameter_named_in_channels_wins_over_the_input():
    graph = netdsl.compile(net("b(5)", "block b(in_channels) = conv(in_channels, 1x1)"))
    assert graph.output_shape[0] == 5


@pytest.mark.parametrize("first, second, problem", [
    ("8, 3x3, bias=true", "8, 3x3, bias=1", "bias must be true or false"),
    ("8, 3x3, stride=2", "8, 3x3, stride=2.0", "stride must be"),
    ("8, 3x3", "8.0, 3x3", "out must be a whole number"),
])
def test_equal_values_of_other_types_bind_apart(first, second, problem):
    """Identical op calls share one binding per compile; 1 and true, or 2 and 2.0, are equal
    in Python but not the same argument: the second call is still refused, at its own place."""
    text = f"network n:\n    input 3x8x8\n    conv({first})\n    conv({second})\n"
    with pytest.raises(netdsl.NetDSLError, match=problem) as caught:
        netdsl.compile(text)
    assert caught.value.span.line == 4


def test_zero_and_negative_zero_bind_apart():
    graph = netdsl.compile("network n:\n    input 3x8x8\n    dropout(0.0)\n    dropout(-0.0)\n")
    assert [str(n.attrs["p"]) for n in graph.nodes[1:]] == ["0.0", "-0.0"]


def test_identical_calls_share_one_binding_and_each_misfit_is_reported_where_it_happens():
    graph = netdsl.compile("network n:\n    input 3x8x8\n    conv(8, 3x3, pad=1)\n"
                           "    conv(8, 3x3, pad=1)\n")
    assert graph.nodes[1].attrs is graph.nodes[2].attrs  # shared, read-only
    with pytest.raises(SpecShapeError) as caught:  # the same conv fits once, then not
        netdsl.compile("network n:\n    input 3x4x4\n    conv(8, 3x3)\n    conv(8, 3x3)\n")
    assert caught.value.span.line == 4
