"""The .py export as PyTorch a person would write (issue 15, item 4): a class per block,
stages as nn.Sequential with loops, torchvision's state_dict keys, equal outputs, only torch
imported; and the round trip spec -> PyTorch -> spec."""

from __future__ import annotations

import ast
import importlib.util
import itertools
from pathlib import Path

import pytest
import torch

import netdsl
from netdsl.importer import from_module
from netdsl.torch import emit
from netdsl.torch.pyexport import idiomatic_source
from tests.reference import param_count, randomize_batch_norm
from tests.test_graphs import BLOCK, FPN, UNET

SPECS = Path(__file__).parent.parent / "specs"
# family files define the networks the others name; alone they need overrides
BUNDLED = sorted(p.name for p in SPECS.glob("*.net") if not p.stem.endswith("_family"))
_count = itertools.count()


def _load(source: str, folder: Path):
    """The exported file imported as a module from disk, in a fresh namespace."""
    name = f"netdsl_pyexport_{next(_count)}"
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _imports(source: str) -> set[str]:
    tree = ast.parse(source)
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    return torch.equal(a, b)


def test_resnet50_reads_like_torchvision_and_loads_its_weights(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    source = idiomatic_source(netdsl.compile(SPECS / "resnet50.net"))
    assert len(source.splitlines()) < 120
    assert _imports(source) == {"torch"}  # `from torch import nn`
    assert "class Bottleneck(nn.Module):" in source
    assert "def __init__(self, in_channels, c, stride):" in source  # the spec's names
    assert "self.conv3 = nn.Conv2d(c, 4 * c, kernel_size=1, bias=False)" in source
    assert "*(Bottleneck(1024, 256) for _ in range(5))" in source  # a stage as a loop
    assert "add_module" not in source and "getattr" not in source
    model = _load(source, tmp_path).Model().eval()
    reference = torchvision.models.resnet50()
    randomize_batch_norm(reference)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), reference.eval()(x))


def test_import_of_the_exported_resnet50_gives_back_a_spec_of_the_same_network(tmp_path):
    source = idiomatic_source(netdsl.compile(SPECS / "resnet50.net"))
    model = _load(source, tmp_path).Model().eval()
    randomize_batch_norm(model)
    text = from_module(model, (3, 64, 64))
    assert "block bottleneck(c)" in text and "stack(bottleneck(256), 5)" in text
    again = netdsl.build(text, progress=False).eval()
    assert param_count(again) == param_count(model)
    again.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_spec_exports_with_builds_state_dict(name):
    graph = netdsl.compile(SPECS / name)
    source = idiomatic_source(graph)
    assert _imports(source) == {"torch"}
    namespace: dict = {}
    exec(compile(source, name, "exec"), namespace)  # our own output, of a bundled spec
    with torch.device("meta"):
        ours, built = namespace["Model"](), emit.module_class(graph)()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
        [(k, v.shape) for k, v in built.state_dict().items()]


CASES = {  # a representative handful: blocks, graphs, aux heads, layer scale, dict outputs
    "resnet18": (SPECS / "resnet18.net", {"input": (3, 32, 32)}),
    "unet": (SPECS / "unet.net", {}),
    "densenet121": (SPECS / "densenet121.net", {"input": (3, 32, 32)}),
    "googlenet": (SPECS / "googlenet.net", {"input": (3, 64, 64)}),
    "convnext_tiny": (SPECS / "convnext_tiny.net", {"input": (3, 32, 32)}),
    "mobilenet_v3_small": (SPECS / "mobilenet_v3_small.net", {"input": (3, 32, 32)}),
    "resnet50_fpn": (SPECS / "resnet50_fpn.net", {"input": (3, 32, 32)}),  # dotted labels
    "lraspp": (SPECS / "lraspp_mobilenet_v3_large.net", {"size": 32}),  # a mid-chain tensor
    "named_tensors": (UNET, {}),
    "named_outputs": (FPN, {}),
    "block_of_lines": (BLOCK, {}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_exported_module_computes_what_build_does(case, tmp_path):
    spec, params = case
    torch.manual_seed(0)
    built = netdsl.build(spec, progress=False, **params)
    randomize_batch_norm(built)
    source = idiomatic_source(built.netdsl_graph)
    model = _load(source, tmp_path).Model()
    model.load_state_dict(built.state_dict(), strict=True)
    shape = built.netdsl_graph.input.attrs["shape"]
    x = torch.randn(1 if shape[-1] > 100 else 2, *shape)  # U-Net takes 572x572 only
    with torch.no_grad():
        assert _same(model.eval()(x), built.eval()(x))
        if x.shape[0] == 1:
            return
        model.train(), built.train()
        torch.manual_seed(1)
        ours = model(x)
        torch.manual_seed(1)
        assert _same(ours, built(x))  # training mode too: auxiliary heads, dropout


def test_block_calls_are_recorded_on_the_graph():
    graph = netdsl.compile(SPECS / "resnet18.net")
    calls = {c.path: c for c in graph.calls}
    assert calls["layer2.0"].block == "basic"
    assert dict(calls["layer2.0"].args) == {"in_channels": 64, "c": 128, "stride": 2,
                                            "groups": 1, "base_width": 64}
    assert calls["layer1"].block == "layer"
    # the residual sum belongs to the block that wrote it
    adds = [graph.scopes[n.id] for n in graph.nodes if n.op == "add"]
    assert adds[:3] == ["layer1.0", "layer1.1", "layer2.0"]


def test_a_block_that_names_a_tensor_records_its_arguments():
    """A one-line body naming a tensor gets a scope of its own for the name; the call's
    arguments are still the block's parameters (they were lost to the .py export)."""
    graph = netdsl.compile("block unit(c) = (t = conv(c, 3x3, pad=1)) -> relu\n"
                           "network n:\n    input 3x8x8\n    a: unit(4)\n    b: unit(8)\n")
    assert [dict(c.args) for c in graph.calls] == [{"in_channels": 3, "c": 4},
                                                   {"in_channels": 4, "c": 8}]


def test_the_input_channels_never_stand_for_a_window_size(tmp_path):
    """A block applied to RGB with a 3x3 kernel: 3 == in_channels by value, but the class
    writes kernel_size=3, so Unit(16, 8) still makes a 3x3 convolution."""
    graph = netdsl.compile("block unit(c) = conv(c, 3x3, pad=1) -> relu\n"
                           "network n:\n    input 3x8x8\n    a: unit(4)\n    x: conv(3, 1x1)\n"
                           "    b: unit(8)\n")
    module = _load(idiomatic_source(graph), tmp_path)
    assert module.Unit(16, 8)[0].kernel_size == (3, 3)


HOSTILE = '''
block blk(nn, self, torch, c) = "x); import os #": conv(c, 1x1) -> "9 lives": relu
    -> conv(nn + self + torch, 1x1)

network n:
    input 3x8x8
    "a b": blk(1, 1, 1, 4)
    "for": blk(2, 2, 2, 4)
    "it's": blk(1, 2, 3, 6)
'''


def test_labels_and_parameter_names_reach_the_source_only_escaped(tmp_path):
    torch.manual_seed(0)
    built = netdsl.build(HOSTILE, progress=False)
    source = idiomatic_source(built.netdsl_graph)
    tree = ast.parse(source)
    identifiers = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    identifiers |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "os" not in identifiers and _imports(source) == {"torch"}
    assert "self.add_module('x); import os #', nn.Conv2d(" in source
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        names = [a.arg for a in function.args.args]
        # a parameter never hides nn, torch or self: the spec's `self` is self_
        assert names[0] == "self" and not {"nn", "torch"} & set(names)
        assert names.count("self") == 1
    assert "self_" in source
    model = _load(source, tmp_path).Model()
    model.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), built.eval()(x))


def test_labelled_modules_of_one_form_share_a_class():
    # GoogLeNet's nine inception modules: one class, each branch's width an argument, and a
    # value that one argument already carries (the 3x3 branch's reduction) reuses it
    source = idiomatic_source(netdsl.compile(SPECS / "googlenet.net"))
    assert source.count("class Inception(") == 1 and "class Inception3b" not in source
    assert "def __init__(self, in_channels, c, c2, c3, c4, c5, c6):" in source
    assert "Unit(c2, c3, stride=1, kernel_size=3, padding=1)" in source
    assert "self.inception4a = Inception(480, 192, c2=96, c3=208, c4=16, c5=48, c6=64)" in source
    assert len(source.splitlines()) < 150  # the flat writer's: 340
