"""optimize=True: batch norm folding, channels_last and torch.compile keep the outputs.

A small spec with every pattern the folding meets (conv -> bn -> relu, residual blocks with a
projection shortcut, concatenated branches, a classifier head); tiny inputs, so one inductor
compile stays short. Speed is measured in benchmarks/, never here.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import netdsl
from netdsl.torch import backends, runtimes
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


BACKENDS = ["inductor", *(r for r in runtimes.RUNTIMES if runtimes.installed(r))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_optimised_module_matches_eager_within_1e4(eager, x, backend):
    freezing = torch._inductor.config.freezing
    model = optimize_module(eager, backend=backend)  # inductor: fullgraph, a break would raise
    assert model.backend == backend and model.channels_last == (backend == "inductor")
    assert model.compile_seconds is None
    got = model(x)
    assert model.compile_seconds is not None and model.compile_seconds > 0
    assert not got.requires_grad and model.agreement is None  # fp32: nothing to report
    with torch.no_grad():
        expected = eager(x)
    assert float((got - expected).abs().max() / expected.abs().max()) <= 1e-4
    assert model(x[:1]).shape == (1, 10)  # a new batch size compiles again
    assert torch._inductor.config.freezing == freezing  # scoped to this compile only


def test_auto_backend_races_the_installed_runtimes(eager, x, monkeypatch):
    installed = BACKENDS[1:]
    model = optimize_module(eager)
    assert model.backend == {0: "inductor", 1: "".join(installed)}.get(len(installed), "fastest")
    if model.backend != "fastest":
        return
    exports = []
    export = torch.export.export
    monkeypatch.setattr(torch.export, "export", lambda *a, **k: exports.append(1) or export(*a, **k))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = model(x)
    assert len(exports) == 1  # one program for both runtimes, freed after the race
    assert not model._run.programs._programs
    assert not [w for w in caught if "torch.jit" in str(w.message)]  # no deprecated tracing
    chosen, seconds = model.choices[tuple(x.shape)]
    assert set(seconds) == set(installed) and all(s > 0 for s in seconds.values())
    assert chosen == min(seconds, key=seconds.__getitem__)
    with torch.no_grad():
        assert runtimes.relative_error(got, eager(x)) <= 1e-4
    assert model(x[:2]).shape == (2, 10) and len(model.choices) == 2  # raced per shape


def _check_agreement(model, eager, x, max_error):
    got = model(x)
    with torch.no_grad():
        expected = eager(x)
    error = float((got - expected).abs().max() / expected.abs().max())
    assert model.agreement["max_rel_error"] == pytest.approx(error, rel=1e-3, abs=1e-6)
    assert 0 < error <= max_error  # lower precision: close, but not bit-identical
    assert 0.0 <= model.agreement["top1_agreement"] <= 1.0


@pytest.mark.skipif(not backends.cpu_has_bf16(), reason="this CPU has no bf16 instructions")
def test_bf16_reports_its_agreement_with_fp32(eager, x):
    model = optimize_module(eager, mode="bf16",
                            backend="openvino" if backends.has_openvino() else "inductor")
    assert model.mode == "bf16" and model.agreement is None
    _check_agreement(model, eager, x, 0.05)


def test_bf16_is_refused_where_the_cpu_would_emulate_it(eager, monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    with pytest.raises(netdsl.NetDSLError, match="bf16 instructions") as caught:
        optimize_module(eager, mode="bf16")
    assert caught.value.code == "E010"


def test_bf16_is_refused_on_onnx_runtime(eager, monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)  # whatever this CPU has
    monkeypatch.setattr(runtimes, "installed", lambda name: True)
    with pytest.raises(netdsl.NetDSLError, match="not ONNX Runtime") as caught:
        optimize_module(eager, mode="bf16", backend="onnxruntime")
    assert caught.value.code == "E010"


@pytest.mark.parametrize("runtime", runtimes.RUNTIMES)
def test_a_runtime_that_is_not_installed_is_a_build_error(eager, monkeypatch, runtime):
    monkeypatch.setattr(runtimes, "installed", lambda name: name != runtime)
    with pytest.raises(netdsl.NetDSLError, match=f"needs the {runtime} package") as caught:
        optimize_module(eager, backend=runtime)
    assert caught.value.code == "E010"


def test_auto_without_runtimes_compiles_with_inductor(eager, monkeypatch):
    monkeypatch.setattr(runtimes, "installed", lambda name: False)
    assert optimize_module(eager, compile=False).backend == "inductor"


def test_int8_is_calibrated_and_reports_its_agreement(eager, x):
    calibration = [torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(i))
                   for i in range(2)]
    model = optimize_module(eager, mode="int8", calibration=iter(calibration))
    assert (model.mode, model.backend) == ("int8", "inductor")
    _check_agreement(model, eager, x, 0.1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mode": "int8"}, "needs calibration data"),
    ({"mode": "fp16"}, "unknown optimize mode"),
])
def test_bad_optimize_arguments_are_build_errors(eager, kwargs, message):
    with pytest.raises(netdsl.NetDSLError, match=message) as caught:
        optimize_module(eager, **kwargs)
    assert caught.value.code == "E010"


def test_build_optimize_returns_an_inference_module():
    model = netdsl.build(SPEC, optimize=True)
    assert _batch_norms(model) == 0
    assert not model.training
    assert model.netdsl_graph.name == "tiny"
    with pytest.raises(RuntimeError, match="inference only"):
        model.train()
    model.eval()  # still allowed


def test_bench_command_prints_a_table(capsys):
    from netdsl.cli import main

    argv = ["bench", "resnet18", "input=3x32x32", "--batch", "2", "--repeats", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| eager forward | resnet18 | 2 |" in out and "torch " in out


def test_bench_without_a_reference_says_there_is_none(tmp_path, capsys):
    from netdsl.cli import main

    spec = tmp_path / "tiny.net"
    spec.write_text(SPEC, encoding="utf-8")
    assert main(["bench", str(spec), "--batch", "2", "--repeats", "1"]) == 1
    captured = capsys.readouterr()
    assert "tiny has no reference implementation" in captured.err and "eager" not in captured.out


def test_bench_engines_runs_each_engine_in_its_own_process(tmp_path, capsys):
    from netdsl.cli import main

    spec = tmp_path / "tiny.net"
    spec.write_text(SPEC, encoding="utf-8")
    assert main(["bench", str(spec), "--engines", "eager", "ort", "--batch", "2",
                 "--repeats", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| ONNX Runtime (fp32) |" in out and "| netdsl eager |" in out
    assert main(["bench", str(spec), "--engines", "tensorrt"]) == 2
