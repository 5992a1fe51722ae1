"""What the op records refuse and how they are written: each refusal branch of a shape rule
with its message, each display text, and the summary's JSON figures. Mutation testing
(cosmic-ray, mutmut) found these branches unguarded by the property tests, whose strategies
draw valid inputs."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.ir.ops import OPS, ShapeProblem
from netdsl.passes.analyse import summarize

CONV = {"out": 4, "kernel": (3, 3), "stride": (1, 1), "pad": (0, 0), "dilation": (1, 1),
        "groups": 1, "bias": True, "std": None}
POOL = {"kernel": (3, 3), "stride": (2, 2), "pad": (2, 2), "dilation": (1, 1), "ceil": False}
TRANSPOSED = {"out": 4, "kernel": (1, 1), "stride": (1, 1), "pad": (1, 1), "output_pad": (0, 0),
              "dilation": (1, 1), "groups": 1, "bias": True}


@pytest.mark.parametrize(("op", "attrs", "shapes", "message"), [
    ("conv", {**CONV, "groups": 3}, [(4, 8, 8)], "groups=3 must divide both the input "
     "channels (4) and the output channels (4)"),
    ("conv", {**CONV, "groups": 3}, [(6, 8, 8)], "groups=3 must divide both the input "
     "channels (6) and the output channels (4)"),
    ("conv", {**CONV, "groups": 2, "out": 6}, [(3, 8, 8)], "groups=2 must divide both"),
    ("conv_transpose", {**TRANSPOSED, "groups": 2, "out": 3, "pad": (0, 0)}, [(4, 2, 2)],
     "groups=2"),
    ("conv_transpose", {**TRANSPOSED, "groups": 2, "pad": (0, 0)}, [(3, 2, 2)], "groups=2"),
    ("conv", CONV, [(4, 2, 8)], "conv gets 2x8, needs at least 3x3"),
    ("maxpool", {**POOL, "pad": (2, 0), "dilation": (2, 2)}, [(1, 8, 8)],
     "maxpool padding 2 is more than half its window 3"),  # torch: the undilated kernel
    ("concat", {}, [(2, 4, 4), (8,)], "concat branch 2 needs a CxHxW feature map, found the "
     "flat 8"),
    ("conv", CONV, [(16,)], "conv needs a CxHxW feature map, found the flat 16"),
    ("fc", {"out": 2, "bias": True, "std": None}, [(4, 2, 2)], "fc needs a flat input, found "
     "4x2x2; put flatten (or gap -> flatten) before it"),
    ("bn", {"eps": 1e-5, "momentum": 0.1, "affine": True}, [(8,)], "bn needs a CxHxW"),
    ("maxpool", POOL, [(1, 8, 8)], "maxpool padding 2 is more than half its window 3"),
    ("conv_transpose", TRANSPOSED, [(2, 1, 1)], "conv_transpose gives -1x-1"),
    ("conv_transpose", {**TRANSPOSED, "kernel": (2, 3)}, [(2, 1, 1)], "conv_transpose gives 0x1"),
    ("conv_transpose", {**TRANSPOSED, "groups": 3, "pad": (0, 0)}, [(4, 2, 2)], "groups=3"),
    ("concat", {}, [(2, 4, 4), (3, 4, 5)], "concat branches disagree spatially: branch 1 "
     "gives 2x4x4, branch 2 gives 3x4x5"),
    ("add", {}, [(2, 4, 4), (2, 4, 5)], "added tensors differ in shape: 2x4x4 vs 2x4x5"),
    ("mul", {}, [(2, 4, 4), (3, 1, 1)], "multiplied tensors do not broadcast: 2x4x4 vs 3x1x1"),
    ("mul", {}, [(2, 4, 4), (2, 4)], "multiplied tensors do not broadcast"),
    ("chunk", {"index": 0, "parts": 2}, [(3, 4, 4)], "chunk 0 of 2 needs fewer than 2 as "
     "index and 2 dividing the 3 channels"),
    ("chunk", {"index": 2, "parts": 2}, [(4, 4, 4)], "chunk 2 of 2"),
    ("chunk", {"index": 5, "parts": 2}, [(4, 4, 4)], "chunk 5 of 2"),
    ("shuffle", {"groups": 2}, [(3, 4, 4)], "shuffle groups=2 must divide the 3 channels"),
    ("crop", {"size": (5, 2)}, [(1, 4, 4)], "crop to 5x2 needs an input at least that large, "
     "found 4x4"),
    ("crop", {"size": (2, 5)}, [(1, 4, 4)], "crop to 2x5"),
    ("upsample", {"size": (4, 4), "scale": (2, 2), "mode": "nearest"}, [(1, 2, 2)],
     "upsample takes a size or a scale (one of them)"),
    ("upsample", {"size": None, "scale": None, "mode": "nearest"}, [(1, 2, 2)],
     "upsample takes a size or a scale"),
    ("shuffle", {"groups": 2}, [(8,)], "shuffle needs a CxHxW feature map, found the flat 8"),
    ("crop", {"size": (1, 1)}, [(8,)], "crop needs a CxHxW feature map"),
    ("upsample", {"size": (4, 4), "scale": None, "mode": "nearest"}, [(8,)],
     "upsample needs a CxHxW feature map"),
    ("permute", {"order": (1, 0)}, [(1, 2, 2)], "permute order [1, 0] does not fit the 3-axis "
     "1x2x2"),
])
def test_each_shape_rule_refuses_what_does_not_fit(op, attrs, shapes, message):
    with pytest.raises(ShapeProblem) as caught:
        OPS[op].infer(attrs, shapes)
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.expected and caught.value.found


@pytest.mark.parametrize(("op", "attrs", "shapes", "expected", "found"), [
    ("upsample", {"size": (4, 4), "scale": (2, 2), "mode": "nearest"}, [(1, 2, 2)],
     "size=HxW or scale=N", "both"),
    ("upsample", {"size": None, "scale": None, "mode": "nearest"}, [(1, 2, 2)],
     "size=HxW or scale=N", "none"),
    ("chunk", {"index": 0, "parts": 2}, [(3, 4, 4)], "a multiple of 2", "3"),
    ("shuffle", {"groups": 2}, [(3, 4, 4)], "a multiple of 2", "3"),
    ("mul", {}, [(2, 4, 4), (3, 1, 1)], "2x4x4", "3x1x1"),
    ("concat", {}, [(2, 4, 4), (3, 4, 5)], "the same HxW in every branch", "4x4, 4x5"),
    ("add", {}, [(2, 4, 4), (2, 4, 4), (2, 4, 5)], "2x4x4", "2x4x5"),
    ("add", {}, [(2, 4, 4), (2, 4, 3), (2, 4, 5)], "2x4x4", "2x4x3"),  # the first that differs
    ("maxpool", {**POOL, "kernel": (5, 5), "pad": (1, 3)}, [(1, 8, 8)], "pad <= 2", "pad=3"),
    ("conv", {**CONV, "groups": 3}, [(6, 8, 8)], "multiples of 3", "6 in, 4 out"),
    ("crop", {"size": (5, 2)}, [(1, 4, 4)], "at least 5x2", "4x4"),
    ("permute", {"order": (1, 0)}, [(1, 2, 2)], "3 axes", "2 axes"),
    ("fc", {"out": 2, "bias": True, "std": None}, [(4, 2, 2)], "a flat vector", "4x2x2"),
    ("conv", CONV, [(16,)], "CxHxW", "16"),
    ("conv_transpose", TRANSPOSED, [(2, 1, 1)], "at least 1x1", "-1x-1"),
    ("conv_transpose", {**TRANSPOSED, "kernel": (2, 3)}, [(2, 1, 1)], "at least 1x1", "0x1"),
    # per axis, below the stride or the dilation, whichever is larger (torch's rule)
    ("conv_transpose", {**TRANSPOSED, "stride": (2, 1), "dilation": (1, 3), "output_pad": (2, 1)},
     [(2, 4, 4)], "output_pad <= 1x2", "output_pad=2x1"),
    ("conv_transpose", {**TRANSPOSED, "stride": (2, 1), "dilation": (1, 3), "output_pad": (1, 3)},
     [(2, 4, 4)], "output_pad <= 1x2", "output_pad=1x3"),
])
def test_a_refusal_says_what_was_expected_and_found(op, attrs, shapes, expected, found):
    with pytest.raises(ShapeProblem) as caught:
        OPS[op].infer(attrs, shapes)
    assert (caught.value.expected, caught.value.found) == (expected, found)


@pytest.mark.parametrize(("op", "attrs", "shapes", "out"), [
    ("chunk", {"index": 1, "parts": 2}, [(4, 3, 3)], (2, 3, 3)),
    ("shuffle", {"groups": 2}, [(4, 3, 3)], (4, 3, 3)),
    ("crop", {"size": (2, 3)}, [(5, 4, 4)], (5, 2, 3)),
    ("upsample", {"size": None, "scale": (2, 3), "mode": "nearest"}, [(1, 2, 2)], (1, 4, 6)),
    ("upsample", {"size": (5, 7), "scale": None, "mode": "bilinear"}, [(1, 2, 2)], (1, 5, 7)),
    ("permute", {"order": (1, 2, 0)}, [(3, 4, 5)], (4, 5, 3)),
    ("conv_transpose", {**TRANSPOSED, "kernel": (3, 3)}, [(2, 1, 1)], (4, 1, 1)),
    ("crop", {"size": (4, 4)}, [(5, 4, 4)], (5, 4, 4)),
    ("maxpool", {**POOL, "kernel": (2, 2), "pad": (1, 1)}, [(1, 4, 4)], (1, 3, 3)),
    ("maxpool", {**POOL, "pad": (1, 1), "dilation": (2, 2)}, [(1, 8, 8)], (1, 3, 3)),
    ("conv", {**CONV, "groups": 2, "out": 6}, [(4, 5, 5)], (6, 3, 3)),
    ("mul", {}, [(2, 4, 4), (2, 1, 1), (1, 4, 4)], (2, 4, 4)),
    ("mul", {}, [(2, 1, 1), (2, 4, 4)], (2, 4, 4)),
])
def test_each_shape_rule_gives_its_shape(op, attrs, shapes, out):
    got = OPS[op].infer(attrs, shapes)
    assert got == out and all(type(d) is int for d in got)


def test_bilinear_upsampling_reads_a_2x2_neighbourhood_without_striding():
    from netdsl.ir.ops import POINTWISE, Window

    upsample = OPS["upsample"]
    args = ({"size": (4, 4), "scale": None}, [(1, 2, 2)], (1, 4, 4))
    assert upsample.window({**args[0], "mode": "bilinear"}, *args[1:]) == Window((2, 2), (1, 1))
    assert upsample.window({**args[0], "mode": "nearest"}, *args[1:]) == POINTWISE


@pytest.mark.parametrize(("line", "text"), [
    ("conv(64, 3x3, stride=2, pad=1)", "conv 3x3/2, 64"),
    ("conv(64, 1x7, pad=0x3, groups=2)", "conv 1x7, 64, g2"),
    ("conv(64, 3x3, stride=2x1, pad=1)", "conv 3x3/2x1, 64"),
    ("maxpool(3x3, stride=2, ceil=true)", "maxpool 3x3/2"),
    ("avgpool(2x2)", "avgpool 2x2/2"),
    ("gap", "global avgpool"), ("adaptive_avgpool(7x7)", "adaptive avgpool 7x7"),
    ("adaptive_maxpool(2x3)", "adaptive maxpool 2x3"), ("dropout(0.2)", "dropout 0.2"),
    ("bn", "bn"), ("frozen_bn", "frozen bn"), ("relu", "relu"), ("hardswish", "hardswish"),
    ("flatten", "flatten"),
    ("conv_transpose(8, 2x2, stride=2)", "up-conv 2x2/2, 8"), ("shuffle(2)", "shuffle 2"),
    ("chunk(1, 2)", "chunk 1/2"), ("crop(4x4)", "crop 4x4"), ("scale(0.5)", "x0.5"),
    ("upsample(scale=2)", "upsample nearest 16x16"), ("layer_scale", "layer scale"),
    ("stochastic_depth(0.1)", "stochastic depth 0.1"), ("layernorm2d", "layernorm"),
    ("permute([1, 2, 0])", "permute [1, 2, 0]"),
])
def test_each_layer_is_written_as_a_slide_writes_it(line, text):
    graph = netdsl.compile(f"network t:\n    input 4x8x8\n    {line}\n")
    node = graph.nodes[-1]
    assert OPS[node.op].display(dict(node.attrs), node.shape) == text


def test_the_summary_json_carries_every_figure_of_every_row():
    graph = netdsl.compile("network t:\n    input 3x16x16\n    c: conv(4, 3x3, stride=2) -> relu"
                           "\n    gap -> flatten -> fc(5)\n")
    summary = summarize(graph, batch=2, dtype="float16")
    data = summary.to_json()
    assert data["network"] == "t" and data["input"] == [3, 16, 16] and data["output"] == [5]
    assert (data["batch"], data["dtype"]) == (2, "float16")
    for row, layer in zip(data["layers"], summary.layers, strict=True):
        assert row == {"name": layer.name, "op": layer.op, "shape": list(layer.shape),
                       "params": layer.params, "macs": layer.macs,
                       "activations": layer.activations, "bytes": layer.activations * 2 * 2,
                       "receptive_field": list(layer.rf), "jump": list(layer.jump),
                       "aux": layer.aux, "layers": layer.count}
    assert data["total"] == {"params": summary.total_params, "macs": summary.total_macs,
                             "activations": summary.total_activations, "depth": summary.depth,
                             "receptive_field": list(summary.feature_rf)}
    assert data["total"]["params"] == 4 * 3 * 9 + 4 + 4 * 5 + 5
    assert data["inference"] == summary.inference()
    # batch 2 of float16 (2 bytes): peak values x 4 bytes; training keeps every value twice
    assert data["memory"] == {"forward_bytes": summary.forward_peak * 4,
                              "forward_backward_bytes": 2 * summary.total_activations * 4}
    assert summarize(graph, batch=3, dtype="float32").forward_bytes() == summary.forward_peak * 12
    with pytest.raises(ValueError, match="^depth must be at least 1$"):
        summarize(graph, depth=0)
    assert data["by_op"] == summary.by_op() and data["conventions"]


def _shape_error(source: str):
    from netdsl.errors import SpecShapeError

    with pytest.raises(SpecShapeError) as caught:
        netdsl.compile(source)
    error = caught.value
    return error.message, error.expected, error.found, error.notes


def test_a_plain_sum_reports_its_own_mismatch_without_the_residual_note():
    got = _shape_error("network t:\n    input 3x8x8\n    add(conv(4, 3x3), conv(4, 3x3, pad=1))\n")
    assert got == ("added tensors differ in shape: 4x6x6 vs 4x8x8", "4x6x6", "4x8x8", ())


def test_a_residual_mismatch_names_body_and_shortcut():
    got = _shape_error("block b(c) = residual(conv3x3(c, stride=2))\nnetwork t:\n"
                       "    input 3x8x8\n    b(3)\n")
    assert got == ("residual body gives 3x4x4 but its shortcut gives 3x8x8", "3x8x8", "3x4x4",
                   ("the body must keep its input's shape, or use shortcut=project",
                    "in 'b', called at <string>:4:5"))


def test_shape_notes_list_the_block_calls_innermost_first():
    got = _shape_error("block inner(c) = conv(c, 9x9)\nblock outer(c) = conv(c, 1x1) -> inner(c)\n"
                       "network t:\n    input 3x8x8\n    outer(4)\n")
    assert got == ("conv gets 8x8, needs at least 9x9", "at least 9x9", "8x8",
                   ("in 'inner', called at <string>:2:34", "in 'outer', called at <string>:5:5"))


def test_shape_notes_leave_out_calls_made_inside_the_prelude():
    # the prelude's stage() calls the user's unit: that call is netdsl's text, not the user's
    got = _shape_error("block unit(c, stride=1) = conv(c, 9x9, stride=stride)\nnetwork t:\n"
                       "    input 3x8x8\n    stage(unit, 4, 2)\n")
    assert got[3] == ("in 'stage', called at <string>:4:5",)


def test_rechecking_at_another_size_notes_the_user_calls_innermost_first():
    """check() at a new input size re-derives the shapes with each node's call trace: the
    notes name the user's calls, innermost first, and skip stage()'s own call of unit."""
    from netdsl.errors import SpecShapeError
    from netdsl.passes.check import check

    graph = netdsl.compile("block unit(c, stride=1) = conv(c, 9x9, stride=stride)\n"
                           "block outer(c) = conv(c, 1x1) -> stage(unit, c, 1)\n"
                           "network t:\n    input 3x9x9\n    outer(4)\n")
    assert check(graph, (3, 10, 10)).output_shape == (4, 2, 2)
    with pytest.raises(SpecShapeError) as caught:
        check(graph, (3, 8, 8))
    assert caught.value.message == "conv gets 8x8, needs at least 9x9"
    assert caught.value.notes == ("in 'stage', called at <string>:2:34",
                                  "in 'outer', called at <string>:5:5")


def test_a_block_row_is_auxiliary_only_when_all_its_nodes_are():
    # the block's last node is the auxiliary head's, but its conv feeds the main path
    graph = netdsl.compile("network t:\n    input 3x8x8\n"
                           "    tail: (conv(4, 3x3) -> aux(gap -> flatten -> fc(2)))\n"
                           "    gap -> flatten -> fc(3)\n")
    row = next(x for x in summarize(graph, depth=1).layers if x.name == "tail")
    assert (row.op, row.count, row.shape, row.aux) == ("block", 4, (2,), False)


COLLAPSING = """block unit(c) = conv(c, 3x3, pad=1) -> relu
network t:
    input 3x8x8
    concat(identity, identity)
    concat(identity, identity)
    stem: conv(4, 3x3, pad=1)
    side: aux(gap -> flatten -> fc(2))
    stage: (unit(4) -> aux(gap -> flatten -> fc(2)) -> unit(4))
    pool: (maxpool(2) -> maxpool(2))
    gap -> flatten -> fc(3)
"""


@pytest.mark.parametrize(("depth", "rows"), [
    # (id, name, op, count, shape, params, macs, activations, aux): a merged row reports its
    # block's last node and the sums of its rows; one op kind keeps its name, mixed ones are a
    # "block"; a row is auxiliary when all of its nodes are; two unscoped concats stay two rows,
    # the second named concat#2 (names are unique)
    (1, [(0, "input", "input", 1, (3, 8, 8), 0, 0, 192, False),
         (1, "concat", "concat", 1, (6, 8, 8), 0, 0, 384, False),
         (2, "concat#2", "concat", 1, (12, 8, 8), 0, 0, 768, False),
         (3, "stem", "conv", 1, (4, 8, 8), 436, 27648, 256, False),
         (6, "side", "block", 3, (2,), 10, 8, 6, True),
         (13, "stage", "block", 7, (4, 8, 8), 306, 18440, 518, False),
         (15, "pool", "maxpool", 2, (4, 2, 2), 0, 0, 80, False),
         (16, "4", "gap", 1, (4, 1, 1), 0, 0, 4, False),
         (17, "5", "flatten", 1, (4,), 0, 0, 0, False),
         (18, "6", "fc", 1, (3,), 15, 12, 3, False)]),
    (2, [(0, "input", "input", 1, (3, 8, 8), 0, 0, 192, False),
         (1, "concat", "concat", 1, (6, 8, 8), 0, 0, 384, False),
         (2, "concat#2", "concat", 1, (12, 8, 8), 0, 0, 768, False),
         (3, "stem", "conv", 1, (4, 8, 8), 436, 27648, 256, False),
         (4, "side.0", "gap", 1, (4, 1, 1), 0, 0, 4, True),
         (5, "side.1", "flatten", 1, (4,), 0, 0, 0, True),
         (6, "side.2", "fc", 1, (2,), 10, 8, 2, True),
         (8, "stage.0", "block", 2, (4, 8, 8), 148, 9216, 256, False),
         (9, "stage.1", "gap", 1, (4, 1, 1), 0, 0, 4, True),
         (10, "stage.2", "flatten", 1, (4,), 0, 0, 0, True),
         (11, "stage.3", "fc", 1, (2,), 10, 8, 2, True),
         (13, "stage.4", "block", 2, (4, 8, 8), 148, 9216, 256, False),
         (14, "pool.0", "maxpool", 1, (4, 4, 4), 0, 0, 64, False),
         (15, "pool.1", "maxpool", 1, (4, 2, 2), 0, 0, 16, False),
         (16, "4", "gap", 1, (4, 1, 1), 0, 0, 4, False),
         (17, "5", "flatten", 1, (4,), 0, 0, 0, False),
         (18, "6", "fc", 1, (3,), 15, 12, 3, False)]),
])
def test_depth_merges_the_rows_of_each_block(depth, rows):
    summary = summarize(netdsl.compile(COLLAPSING), depth=depth)
    got = [(x.id, x.name, x.op, x.count, x.shape, x.params, x.macs, x.activations, x.aux)
           for x in summary.layers]
    assert got == rows
    full = summarize(netdsl.compile(COLLAPSING))
    assert summary.by_op() == full.by_op() and summary.total_params == full.total_params


def test_figures_per_op_are_the_sums_of_their_layers():
    # conv 3->4 3x3 on 8x8: 112 params, 4x6x6 = 144 values, 144 * 27 MACs; conv 4->2 3x3:
    # 74 params, 2x4x4 = 32 values, 32 * 36 MACs; the ReLU runs in place
    graph = netdsl.compile("network t:\n    input 3x8x8\n    conv(4, 3x3) -> relu -> conv(2, 3x3)"
                           "\n    gap -> flatten -> fc(5)\n")
    assert summarize(graph).by_op() == {
        "input": {"params": 0, "macs": 0, "activations": 192},
        "conv": {"params": 112 + 74, "macs": 144 * 27 + 32 * 36, "activations": 144 + 32},
        "relu": {"params": 0, "macs": 0, "activations": 0},
        "gap": {"params": 0, "macs": 0, "activations": 2},
        "flatten": {"params": 0, "macs": 0, "activations": 0},
        "fc": {"params": 15, "macs": 10, "activations": 5}}


def test_an_unknown_dtype_names_the_known_ones():
    graph = netdsl.compile("network t:\n    input 3x4x4\n    flatten -> fc(4)\n")
    with pytest.raises(ValueError) as caught:
        summarize(graph, dtype="int8")
    assert str(caught.value) == "unknown dtype 'int8'; known: float32, float16, bfloat16, float64"


def test_a_network_on_a_two_axis_input_sees_one_position():
    # only a CxHxW input has a grid; a fully connected layer on anything else sees 1x1
    graph = netdsl.compile("network t:\n    input 1x16\n    flatten -> fc(4)\n")
    assert [x.rf for x in summarize(graph).layers] == [(1, 1)] * 3


def test_an_inplace_relu_keeps_its_input_storage_alive_until_its_own_last_reader():
    # input 64 -> conv 4x6x6 (144) -> ReLU in place (the conv's storage) -> conv 16x6x6 (576):
    # the first conv's values are alive while the second conv runs, so the peak is 144 + 576,
    # and the input's 64, which the caller holds
    graph = netdsl.compile("network t:\n    input 1x8x8\n    conv(4, 3x3) -> relu -> conv(16, 1x1)\n")
    assert summarize(graph).forward_peak == 64 + 144 + 576


def test_a_classifier_after_global_pooling_sees_the_pooled_field():
    # conv 3x3 on 8x8: field 3 on a 6x6 grid of jump 1; global pooling sees all 6x6: 3 + 5 = 8;
    # the classifier after it sees one pooled position, so its field stays 8
    graph = netdsl.compile("network t:\n    input 3x8x8\n    conv(4, 3x3)\n    gap -> flatten -> fc(5)\n")
    assert [x.rf for x in summarize(graph).layers] == [(1, 1), (3, 3), (8, 8), (8, 8), (8, 8)]


def test_the_feature_field_is_the_one_the_head_sees():
    # conv 3x3/2 then conv 3x3: field 3 then 3 + 2 * 2 = 7 (jump 2); the head starts at gap
    spec = "network t:\n    input 3x16x16\n    conv(4, 3x3, stride=2) -> conv(4, 3x3)\n{}"
    assert summarize(netdsl.compile(spec.format("    gap -> flatten -> fc(5)\n"))).feature_rf \
        == (7, 7)
    assert summarize(netdsl.compile(spec.format(""))).feature_rf == (7, 7)  # no head: the output
