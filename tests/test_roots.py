"""A network's top level is the generated class itself, an ``nn.Module``: whatever its
children are called, the module must run. Issue 12, item 2: a spec without a top-level label
built a module whose forward raised ``TypeError: 'T' object is not subscriptable``."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import netdsl
from netdsl.torch.pyexport import idiomatic_source as standalone_source

UNLABELLED = {
    "chain": "conv(8, 3x3) -> relu",
    "one_layer": "conv(8, 3x3)",
    "block_call": "b(8)",
    "stack_head": "stack(conv(4, 3x3) -> relu, 2) -> gap -> flatten -> fc(10)",
    "two_lines": "conv(8, 3x3)\n    relu\n    b(4)",
    "mixed": "conv(8, 3x3) -> act: relu -> b(4)",
    "residual": "conv(8, 1x1) -> residual(conv(8, 3x3, pad=1) -> relu)",
}


def _spec(body: str) -> str:
    return ("block b(c) = conv(c, 3x3, pad=1) -> bn -> relu\n"
            f"network t:\n    input 3x12x12\n    {body}\n")


def _import(path):
    spec = importlib.util.spec_from_file_location("exported_root", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("body", UNLABELLED.values(), ids=UNLABELLED.keys())
def test_unlabelled_top_level_runs(body, tmp_path):
    torch.manual_seed(0)
    model = netdsl.build(_spec(body)).eval()
    graph = model.netdsl_graph
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape[1:]) == graph.output_shape
    path = tmp_path / "exported_root.py"
    path.write_text(standalone_source(graph), encoding="utf-8")
    copy = _import(path).Model().eval()
    copy.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(copy(x), y)


def test_unlabelled_top_level_keeps_sequential_keys():
    # the state_dict keys stay what nn.Sequential would give: 0.weight, 2.0.weight, ...
    model = netdsl.build(_spec("conv(8, 3x3) -> relu -> b(4)"))
    assert list(model.state_dict())[:4] == ["0.weight", "0.bias", "2.0.weight", "2.0.bias"]


def test_parameter_among_numbered_children_is_not_indexed():
    """Found by the differential test: ``l1: (layer_scale -> conv(...))`` made ``l1`` an
    ``nn.Sequential`` whose conv was reached as ``l1[1]``, but a parameter is not one of a
    Sequential's positions (IndexError while building)."""
    spec = ("network t:\n    input 2x6x6\n    l1: (layer_scale -> conv(4, 3x3))\n"
            "    b: (conv(4, 1x1) -> layer_scale(value=0.5) -> relu)\n")
    model = netdsl.build(spec, max_params=None).eval()
    assert [k for k in model.state_dict() if k.startswith("l1.")] == \
        ["l1.0", "l1.1.weight", "l1.1.bias"]
    with torch.no_grad():
        assert model(torch.randn(1, 2, 6, 6)).shape == (1, 4, 4, 4)
