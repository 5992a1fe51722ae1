"""optimize=True: batch norm folding, channels_last and torch.compile keep the outputs.

A small spec with every pattern the folding meets (conv -> bn -> relu, residual blocks with a
projection shortcut, concatenated branches, a classifier head); tiny inputs, so one inductor
compile stays short. Speed is measured in benchmarks/, never here.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netdsl
from netdsl.torch.optimize import fold_batch_norm, optimize_module

SPEC = """\
block unit(c, stride=1) = residual(
        conv1: conv3x3(c, stride=stride, bias=false) -> bn1: bn -> relu
        -> conv2: conv3x3(c, bias=false) -> bn2: bn,
        shortcut=downsample: project)
    -> relu

network tiny(num_classes=10):
    input 3x16x16
    stem: conv(8, 3x3, pad=1, bias=false) -> bn -> relu
    block1: unit(8)
    block2: unit(16, stride=2)
    mix: concat(a: (conv1x1(8, bias=false) -> bn -> relu), b: maxpool(3x3, stride=1, pad=1))
    head: gap -> flatten -> dropout(0.5) -> fc(num_classes)
"""


def _eager() -> nn.Module:
    """The tiny network, with batch norm statistics that make folding do real work."""
    torch.manual_seed(0)
    model = netdsl.build(SPEC)
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=generator))
            m.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=generator))
            m.bias.data.copy_(torch.randn(c, generator=generator))
    return model.eval()


@pytest.fixture(scope="module")
def eager() -> nn.Module:
    return _eager()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))


def _batch_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def test_folding_removes_every_batch_norm_and_keeps_the_outputs(eager, x):
    assert _batch_norms(eager) == 7  # stem, 2 per unit, the projection, the branch
    folded = fold_batch_norm(eager)
    assert _batch_norms(folded) == 0
    assert not any("batch_norm" in str(node.target) for node in folded.graph.nodes)
    assert _batch_norms(eager) == 7  # the input module is left as it was
    with torch.no_grad():
        torch.testing.assert_close(folded(x), eager(x), rtol=1e-4, atol=1e-4)


def test_folded_convolutions_keep_their_names(eager):
    folded = fold_batch_norm(eager)
    names = {name for name, m in folded.named_modules() if isinstance(m, nn.Conv2d)}
    assert names == {name for name, m in eager.named_modules() if isinstance(m, nn.Conv2d)}
    assert folded.netdsl_graph is eager.netdsl_graph


def test_the_folded_forward_traces_as_one_graph(eager, x):
    folded = fold_batch_norm(eager).to(memory_format=torch.channels_last)
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(folded)(x.contiguous(memory_format=torch.channels_last))
    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1


def test_optimised_module_matches_eager_within_1e4(eager, x):
    freezing = torch._inductor.config.freezing
    model = optimize_module(eager)  # torch.compile(fullgraph=True): a graph break would raise
    assert model.channels_last and model.compile_seconds is None
    got = model(x)
    assert model.compile_seconds is not None and model.compile_seconds > 0
    assert not got.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(got, eager(x), rtol=1e-4, atol=1e-4)
    assert torch._inductor.config.freezing == freezing  # scoped to this compile only


def test_build_optimize_returns_an_inference_module():
    model = netdsl.build(SPEC, optimize=True)
    assert _batch_norms(model) == 0
    assert not model.training
    assert model.netdsl_graph.name == "tiny"
    with pytest.raises(RuntimeError, match="inference only"):
        model.train()
    model.eval()  # still allowed


def test_bench_command_prints_a_table(tmp_path, capsys):
    from netdsl.cli import main

    spec = tmp_path / "tiny.net"
    spec.write_text(SPEC, encoding="utf-8")
    assert main(["bench", str(spec), "--batch", "2", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| eager forward | tiny | 2 |" in out and "torch " in out
