"""Every case-study network in specs/, proven.

Specs with a reference implementation (torchvision, timm) load the reference's weights with
``strict=True`` and give its outputs; their parameter counts are measured on the reference
model, never restated. Specs without one (the papers' own networks) are checked against the
paper's table: every stage's output shape, and the parameter count that the table's filter
columns imply (worked out here, layer by layer, independently of the spec).
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

import netdsl
from netdsl.passes.analyse import summarize

from conftest import SPECS, all_specs
from reference import assert_same_outputs, param_count, randomize_batch_norm

# --- helpers ------------------------------------------------------------------------------


def static_params(graph) -> int:
    """The parameter count the compiler works out without building anything."""
    return summarize(graph).total_params


def stage_shapes(graph, depth: int = 1) -> dict[str, tuple[int, ...]]:
    """Output shape of every labelled stage (module name cut to ``depth`` parts): the shape of
    the last node the stage holds. Unlabelled layers (``conv1: conv(...) -> relu``) and unnamed
    nodes (the concat or sum that joins a module's branches) belong to the stage they follow."""
    shapes: dict[str, tuple[int, ...]] = {}
    current = None
    for node in graph.nodes[1:]:
        if node.name is not None and not node.name.split(".")[0].isdigit():
            current = ".".join(node.name.split(".")[:depth])
        if current is not None:
            shapes[current] = tuple(node.shape)
    return shapes


def conv(c_in: int, c_out: int, k: int | tuple[int, int], groups: int = 1, bias: bool = True,
         bn: bool = False) -> int:
    """Weights of one convolution (and its batch norm's scale and shift)."""
    kh, kw = (k, k) if isinstance(k, int) else k
    return c_out * (c_in // groups) * kh * kw + (c_out if bias else 0) + (2 * c_out if bn else 0)


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def load_reference(name: str, reference, overrides: dict):
    """Builds the reference and the spec's module, checks that their parameter counts (and the
    compiler's static count) agree, and loads the reference's weights with strict=True, its
    batch norms first given random statistics. Returns (ours, theirs)."""
    torch.manual_seed(0)
    theirs = reference()
    randomize_batch_norm(theirs)
    with torch.device("meta"):  # no weights allocated or initialised: they come from theirs
        ours = netdsl.build(SPECS / f"{name}.net", **overrides)
    expected = param_count(theirs)
    assert param_count(ours) == expected
    assert static_params(netdsl.compile(SPECS / f"{name}.net", **overrides)) == expected
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same keys, same order
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    return ours, theirs


def compare_with_reference(name: str, reference, overrides: dict, size: int) -> None:
    """Strict weight loading, equal parameter counts, equal eval outputs (1 image)."""
    ours, theirs = load_reference(name, reference, overrides)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert_same_outputs(ours.eval()(x), theirs.eval()(x))


# --- specs with a reference implementation ------------------------------------------------

def _vgg(name: str):
    return lambda: getattr(torchvision.models, name)()


# spec, reference constructor, netdsl overrides, input size (the smallest the reference takes
# comfortably: VGG and AlexNet end in adaptive pools; the Inceptions need 75x75)
REFERENCE_CASES = [
    pytest.param("alexnet_torchvision", lambda: torchvision.models.alexnet(), {}, 64,
                 id="alexnet_torchvision"),
    *[pytest.param(v, _vgg(v), {}, 32, id=v)
      for v in ("vgg11", "vgg13", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")],
    pytest.param("inception_v3", lambda: torchvision.models.inception_v3(
        weights=None, aux_logits=False, init_weights=True), {"aux_logits": False}, 75,
        id="inception_v3-no-aux"),  # with aux: test_inception_v3_with_its_auxiliary_...
    pytest.param("inception_v4", lambda: timm.create_model("inception_v4", pretrained=False),
                 {}, 75, id="inception_v4"),
    pytest.param("inception_resnet_v2",
                 lambda: timm.create_model("inception_resnet_v2", pretrained=False), {}, 75,
                 id="inception_resnet_v2"),
]


@pytest.mark.parametrize("name,reference,overrides,size", REFERENCE_CASES)
def test_spec_loads_reference_weights_and_agrees(name, reference, overrides, size):
    compare_with_reference(name, reference, overrides, size)


def test_inception_v3_with_its_auxiliary_classifier_agrees_in_eval_and_training_mode():
    def reference():
        return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)

    ours, theirs = load_reference("inception_v3", reference, {})
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        assert_same_outputs(ours.eval()(x), theirs.eval()(x))  # eval: the main output alone
    x = torch.randn(2, 3, 299, 299)  # the auxiliary head needs the full 17x17 grid
    torch.manual_seed(1)
    with torch.no_grad():
        expected = theirs.train()(x)  # InceptionOutputs(logits, aux_logits)
    torch.manual_seed(1)  # same dropout mask: both run their layers in the same order
    with torch.no_grad():
        got = ours.train()(x)
    assert isinstance(got, tuple) and len(got) == 2
    assert_same_outputs(got, tuple(expected))


def test_inception_v3_initialises_each_layer_as_torchvision_does():
    torch.manual_seed(0)
    model = netdsl.build(SPECS / "inception_v3.net")
    assert model.AuxLogits.fc.weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert model.fc.weight.std().item() == pytest.approx(0.1, rel=0.1)
    # torchvision sets stddev=0.01 on conv1's wrapper module, which its init loop never reads
    assert model.AuxLogits.conv1.conv.weight.std().item() == pytest.approx(0.1, rel=0.1)
    assert model.Mixed_5b.branch1x1.bn.weight.eq(1).all()


def test_inception_resnet_v2_scales_its_residual_branches_like_timm():
    graph = netdsl.compile(SPECS / "inception_resnet_v2.net")
    factors = [n.attrs["factor"] for n in graph.nodes if n.op == "scale"]
    assert factors == [0.17] * 10 + [0.1] * 20 + [0.2] * 9 + [1.0]


# --- AlexNet, the paper (Krizhevsky et al. 2012, Sec. 3.5 and Fig. 2) ----------------------

def alexnet_paper_params(towers: int) -> int:
    # conv2, conv4, conv5 connect only to the kernel maps on their own GPU (groups=towers)
    return (conv(3, 96, 11) + conv(96, 256, 5, towers) + conv(256, 384, 3)
            + conv(384, 384, 3, towers) + conv(384, 256, 3, towers)
            + fc(256 * 6 * 6, 4096) + fc(4096, 4096) + fc(4096, 1000))


def test_alexnet_follows_the_paper():
    graph = netdsl.compile(SPECS / "alexnet.net")
    # Fig. 2 and Sec. 3.5, per layer: 227x227x3 in, 55x55x96 after conv1, features end at 6x6x256
    assert stage_shapes(graph) == {
        "conv1": (96, 55, 55), "norm1": (96, 55, 55), "pool1": (96, 27, 27),
        "conv2": (256, 27, 27), "norm2": (256, 27, 27), "pool2": (256, 13, 13),
        "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13),
        "pool5": (256 * 6 * 6,), "fc6": (4096,), "fc7": (4096,), "fc8": (1000,),
    }
    assert [n.shape for n in graph.nodes if n.name == "pool5"] == [(256, 6, 6)]
    assert alexnet_paper_params(2) == 60_965_224  # the figure quoted for the two-tower net
    assert static_params(graph) == alexnet_paper_params(2)
    one_tower = netdsl.compile(SPECS / "alexnet.net", towers=1)
    assert static_params(one_tower) == alexnet_paper_params(1) == 62_378_344
    model = netdsl.build(SPECS / "alexnet.net")
    assert param_count(model) == alexnet_paper_params(2)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 227, 227)).shape == (1, 1000)


# --- ZF-Net (Zeiler & Fergus 2014, Fig. 3) -------------------------------------------------

@pytest.mark.parametrize("widths", [(384, 384, 256), (512, 1024, 512)], ids=["paper", "wide"])
def test_zfnet_follows_fig3(widths):
    c3, c4, c5 = widths
    overrides = {} if widths == (384, 384, 256) else {"widths": list(widths)}
    graph = netdsl.compile(SPECS / "zfnet.net", **overrides)
    # Fig. 3: 224x224x3 -> 110x110x96 -> (pool 3x3/2) 55x55x96 -> 26x26x256 -> 13x13x256
    # -> 13x13x384 -> 13x13x384 -> 13x13x256 -> (pool) 6x6x256 -> 4096 -> 4096 -> C
    assert stage_shapes(graph) == {
        "conv1": (96, 110, 110), "pool1": (96, 55, 55), "norm1": (96, 55, 55),
        "conv2": (256, 26, 26), "pool2": (256, 13, 13), "norm2": (256, 13, 13),
        "conv3": (c3, 13, 13), "conv4": (c4, 13, 13), "conv5": (c5, 13, 13),
        "pool5": (c5 * 36,), "fc6": (4096,), "fc7": (4096,), "fc8": (1000,),
    }
    assert [n.shape for n in graph.nodes if n.name == "pool5"] == [(c5, 6, 6)]
    expected = (conv(3, 96, 7) + conv(96, 256, 5) + conv(256, c3, 3) + conv(c3, c4, 3)
                + conv(c4, c5, 3) + fc(c5 * 36, 4096) + fc(4096, 4096) + fc(4096, 1000))
    assert static_params(graph) == expected


# --- VGG configuration C (Simonyan & Zisserman 2015, Table 1) ------------------------------

def test_vgg16_c_follows_table1():
    # Table 1, column C: conv3-64 x2 | conv3-128 x2 | conv3-256 x2, conv1-256
    # | conv3-512 x2, conv1-512 | conv3-512 x2, conv1-512 | FC-4096, FC-4096, FC-1000
    table = [[(64, 3)] * 2, [(128, 3)] * 2, [(256, 3)] * 2 + [(256, 1)],
             [(512, 3)] * 2 + [(512, 1)], [(512, 3)] * 2 + [(512, 1)]]
    expected, c_in, kernels = 0, 3, []
    for stage in table:
        for c_out, k in stage:
            expected += conv(c_in, c_out, k)
            kernels.append(k)
            c_in = c_out
    expected += fc(512 * 7 * 7, 4096) + fc(4096, 4096) + fc(4096, 1000)
    graph = netdsl.compile(SPECS / "vgg16_c.net")
    assert expected == 133_638_952
    assert static_params(graph) == expected
    convs = [n for n in graph.nodes if n.op == "conv"]
    assert [n.attrs["kernel"][0] for n in convs] == kernels
    pools = [n.shape for n in graph.nodes if n.op == "maxpool"]
    assert pools == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]


# --- GoogLeNet as published (Szegedy et al. 2015, Table 1) ---------------------------------

# Table 1: output size, then #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
GOOGLENET_TABLE = {
    "inception3a": ((256, 28, 28), 64, 96, 128, 16, 32, 32),
    "inception3b": ((480, 28, 28), 128, 128, 192, 32, 96, 64),
    "inception4a": ((512, 14, 14), 192, 96, 208, 16, 48, 64),
    "inception4b": ((512, 14, 14), 160, 112, 224, 24, 64, 64),
    "inception4c": ((512, 14, 14), 128, 128, 256, 24, 64, 64),
    "inception4d": ((528, 14, 14), 112, 144, 288, 32, 64, 64),
    "inception4e": ((832, 14, 14), 256, 160, 320, 32, 128, 128),
    "inception5a": ((832, 7, 7), 256, 160, 320, 32, 128, 128),
    "inception5b": ((1024, 7, 7), 384, 192, 384, 48, 128, 128),
}


def googlenet_paper_params(aux: bool) -> int:
    # the table's own "params" column is rounded and omits biases (conv1: 2.7K listed, 9.4K
    # weights), so the count is worked out from its filter columns
    total = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    c_in = 192
    for (c_out, _, _), n1, r3, n3, r5, n5, pp in GOOGLENET_TABLE.values():
        total += (conv(c_in, n1, 1) + conv(c_in, r3, 1) + conv(r3, n3, 3) + conv(c_in, r5, 1)
                  + conv(r5, n5, 5) + conv(c_in, pp, 1))
        c_in = c_out
    total += fc(1024, 1000)
    if aux:  # Sec. 5: 1x1 conv with 128 filters on the 4x4 grid, fc 1024, linear classifier
        for width in (512, 528):  # on inception 4a and 4d
            total += conv(width, 128, 1) + fc(128 * 4 * 4, 1024) + fc(1024, 1000)
    return total


@pytest.mark.parametrize("aux", [True, False])
def test_googlenet_paper_follows_table1(aux):
    graph = netdsl.compile(SPECS / "googlenet_paper.net", aux_logits=aux)
    shapes = stage_shapes(graph)
    expected = {"conv1": (64, 112, 112), "maxpool1": (64, 56, 56), "conv3": (192, 56, 56),
                "maxpool2": (192, 28, 28), "maxpool3": (480, 14, 14), "maxpool4": (832, 7, 7),
                "avgpool": (1024,), "fc": (1000,)}
    expected.update({name: row[0] for name, row in GOOGLENET_TABLE.items()})
    if aux:
        expected.update(aux1=(1000,), aux2=(1000,))
    assert {k: v for k, v in shapes.items() if k in expected} == expected
    assert [n.shape for n in graph.nodes if n.name == "avgpool"] == [(1024, 1, 1)]
    if aux:  # Sec. 5: 5x5/3 average pooling gives 4x4x512 (4a) and 4x4x528 (4d)
        assert [n.shape for n in graph.nodes if n.name in ("aux1.0", "aux2.0")] == [
            (512, 4, 4), (528, 4, 4)]
    assert not any(n.op == "bn" for n in graph.nodes)
    assert static_params(graph) == googlenet_paper_params(aux)


def test_googlenet_paper_returns_auxiliary_outputs_in_training_mode():
    torch.manual_seed(0)
    model = netdsl.build(SPECS / "googlenet_paper.net")
    assert param_count(model) == googlenet_paper_params(True)
    x = torch.randn(1, 3, 224, 224)  # no batch norm, so one image trains too
    with torch.no_grad():
        main, aux2, aux1 = model.train()(x)  # latest first, as torchvision's GoogLeNet
        assert main.shape == aux2.shape == aux1.shape == (1, 1000)
        assert model.eval()(x).shape == (1, 1000)


# --- Inception-v2 / BN-Inception (Ioffe & Szegedy 2015, Appendix, Fig. 5) ------------------

# Fig. 5, one row per module: output size, #1x1, #3x3 reduce, #3x3, double #3x3 reduce,
# double #3x3, pool + proj ("pass" = pass through, no projection). The printed depth of 4c and
# 4d (576) and of 4e (1024) disagrees with the row's own filter columns, which give 608, 608
# and 1056; the network (and every BN-Inception port, e.g. Caffe's) follows the columns.
BN_INCEPTION_TABLE = {
    "inception3a": ((256, 28, 28), 64, 64, 64, 64, 96, ("avg", 32)),
    "inception3b": ((320, 28, 28), 64, 64, 96, 64, 96, ("avg", 64)),
    "inception3c": ((576, 14, 14), 0, 128, 160, 64, 96, ("max", "pass")),
    "inception4a": ((576, 14, 14), 224, 64, 96, 96, 128, ("avg", 128)),
    "inception4b": ((576, 14, 14), 192, 96, 128, 96, 128, ("avg", 128)),
    "inception4c": ((608, 14, 14), 160, 128, 160, 128, 160, ("avg", 128)),  # printed 576
    "inception4d": ((608, 14, 14), 96, 128, 192, 160, 192, ("avg", 128)),   # printed 576
    "inception4e": ((1056, 7, 7), 0, 128, 192, 192, 256, ("max", "pass")),   # printed 1024
    "inception5a": ((1024, 7, 7), 352, 192, 320, 160, 224, ("avg", 128)),
    "inception5b": ((1024, 7, 7), 352, 192, 320, 192, 224, ("max", 128)),
}


def test_inception_v2_follows_the_table():
    graph = netdsl.compile(SPECS / "inception_v2.net")
    shapes = stage_shapes(graph)
    expected = {"conv1": (64, 112, 112), "pool1": (64, 56, 56), "conv2": (64, 56, 56),
                "conv3": (192, 56, 56), "pool2": (192, 28, 28), "avgpool": (1024,),
                "fc": (1000,)}
    expected.update({name: row[0] for name, row in BN_INCEPTION_TABLE.items()})
    assert shapes == expected
    assert [n.shape for n in graph.nodes if n.name == "avgpool"] == [(1024, 1, 1)]

    # parameters from the table's columns: every convolution without bias, then batch norm
    def unit(c_in, c_out, k):
        return conv(c_in, c_out, k, bias=False, bn=True)

    total = unit(3, 64, 7) + unit(64, 64, 1) + unit(64, 192, 3)
    c_in = 192
    for (c_out, _, _), n1, r3, n3, rd, nd, (_, proj) in BN_INCEPTION_TABLE.values():
        total += (unit(c_in, n1, 1) if n1 else 0) + unit(c_in, r3, 1) + unit(r3, n3, 3)
        total += unit(c_in, rd, 1) + unit(rd, nd, 3) + unit(nd, nd, 3)
        total += unit(c_in, proj, 1) if proj != "pass" else 0
        assert c_out == n1 + n3 + nd + (c_in if proj == "pass" else proj)
        c_in = c_out
    total += fc(1024, 1000)
    assert static_params(graph) == total
    pools = {n.name: n.op for n in graph.nodes if n.op in ("maxpool", "avgpool")}
    for name, row in BN_INCEPTION_TABLE.items():
        kind = row[-1][0]
        branch = [op for module, op in pools.items() if module.startswith(name + ".")]
        assert branch == [f"{kind}pool"], name


# --- Inception-ResNet-v1 (Szegedy et al. 2016, Figs. 7 and 10-15) --------------------------

def test_inception_resnet_v1_follows_the_figures():
    graph = netdsl.compile(SPECS / "inception_resnet_v1.net")
    stem = stage_shapes(graph, depth=2)
    # Fig. 14, the stem, layer by layer
    assert [stem[f"stem.{i}"] for i in range(7)] == [
        (32, 149, 149), (32, 147, 147), (64, 147, 147), (64, 73, 73), (80, 73, 73),
        (192, 71, 71), (256, 35, 35)]
    # Fig. 15: 5 x Inception-ResNet-A, Reduction-A, 10 x B, Reduction-B, 5 x C, average pool
    assert stage_shapes(graph) == {
        "stem": (256, 35, 35), "inception_a": (256, 35, 35), "reduction_a": (896, 17, 17),
        "inception_b": (896, 17, 17), "reduction_b": (1792, 8, 8),
        "inception_c": (1792, 8, 8), "avgpool": (1792,), "dropout": (1792,),
        "fc": (1000,)}
    assert sum(1 for n in graph.nodes if n.op == "add") == 5 + 10 + 5

    def unit(c_in, c_out, k):  # batch norm on the ordinary layers (Sec. 3.2)
        return conv(c_in, c_out, k, bias=False, bn=True)

    stem_params = (unit(3, 32, 3) + unit(32, 32, 3) + unit(32, 64, 3) + unit(64, 80, 1)
                   + unit(80, 192, 3) + unit(192, 256, 3))
    block_a = (unit(256, 32, 1) + unit(256, 32, 1) + unit(32, 32, 3) + unit(256, 32, 1)
               + unit(32, 32, 3) + unit(32, 32, 3) + conv(96, 256, 1))  # Fig. 10
    k, l, m, n = 192, 192, 256, 384  # noqa: E741 - Table 1 names them k, l, m, n
    reduction_a = unit(256, n, 3) + unit(256, k, 1) + unit(k, l, 3) + unit(l, m, 3)  # Fig. 7
    block_b = (unit(896, 128, 1) + unit(896, 128, 1) + unit(128, 128, (1, 7))
               + unit(128, 128, (7, 1)) + conv(256, 896, 1))  # Fig. 11
    reduction_b = (unit(896, 256, 1) + unit(256, 384, 3) + unit(896, 256, 1) + unit(256, 256, 3)
                   + unit(896, 256, 1) + unit(256, 256, 3) + unit(256, 256, 3))  # Fig. 12
    block_c = (unit(1792, 192, 1) + unit(1792, 192, 1) + unit(192, 192, (1, 3))
               + unit(192, 192, (3, 1)) + conv(384, 1792, 1))  # Fig. 13
    expected = (stem_params + 5 * block_a + reduction_a + 10 * block_b + reduction_b
                + 5 * block_c + fc(1792, 1000))
    assert static_params(graph) == expected


# --- every spec ------------------------------------------------------------------------------

# parametric networks other specs import
LIBRARIES = {p.name for p in all_specs() if p.stem.endswith("_family")}


@pytest.mark.parametrize("path", [p for p in all_specs() if p.name not in LIBRARIES],
                         ids=lambda p: p.stem)
def test_every_spec_compiles_and_builds_with_its_static_parameter_count(path):
    graph = netdsl.compile(path)
    assert graph.checked and all(n.shape is not None for n in graph.nodes)
    with torch.device("meta"):  # allocation-free: only the module structure is wanted
        model = netdsl.build(path)
    assert param_count(model) == static_params(graph)


def test_library_specs_are_used():
    users = "".join(p.read_text() for p in all_specs() if p.name not in LIBRARIES)
    for library in LIBRARIES:
        assert (SPECS / library).is_file()
        assert f'import "{library}"' in users
