"""Leaving netdsl: ONNX, torch.export, safetensors and standalone Python source, each checked
by loading it back and comparing outputs; weights load without running code."""

from __future__ import annotations

import pickle
import subprocess
import sys

import onnx
import onnxruntime
import pytest
import torch

import netdsl
from netdsl.errors import BuildError
from netdsl.torch import export

from conftest import SPECS

SMALL = {"num_classes": 5, "input": (3, 32, 32)}


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    model = netdsl.build(SPECS / "resnet18.net", **SMALL).eval()
    return model, model.netdsl_graph, torch.randn(2, 3, 32, 32)


def test_onnx_runs_in_onnxruntime(tmp_path, resnet18):
    model, graph, x = resnet18
    path = tmp_path / "m.onnx"
    export.save(model, graph, path, x)
    onnx.checker.check_model(onnx.load(path))
    session = onnxruntime.InferenceSession(str(path))
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), rtol=1e-4, atol=1e-4)


def test_pt2_reloads_and_runs(tmp_path, resnet18):
    model, graph, x = resnet18
    path = tmp_path / "m.pt2"
    export.save(model, graph, path, x)
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(path).module()(x), model(x))


def test_safetensors_round_trip(tmp_path, resnet18):
    model, graph, x = resnet18
    path = tmp_path / "m.safetensors"
    export.save(model, graph, path, x)
    fresh = export.load_weights(netdsl.build(SPECS / "resnet18.net", **SMALL).eval(), path)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_python_source_rebuilds_the_same_module_without_netdsl(tmp_path, resnet18):
    model, graph, x = resnet18
    source, weights, data = tmp_path / "m.py", tmp_path / "w.pt", tmp_path / "x.pt"
    export.save(model, graph, source, x)
    export.save(model, graph, weights, x)
    torch.save(x, data)
    with torch.no_grad():
        torch.save(model(x), tmp_path / "expected.pt")
    script = (
        "import sys; sys.modules['netdsl'] = None\n"
        "import importlib.util, torch\n"
        f"spec = importlib.util.spec_from_file_location('m', {str(source)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "model = m.Model().eval()\n"
        f"model.load_state_dict(torch.load({str(weights)!r}, weights_only=True), strict=True)\n"
        f"x = torch.load({str(data)!r}); expected = torch.load({str(tmp_path / 'expected.pt')!r})\n"
        "with torch.no_grad(): torch.testing.assert_close(model(x), expected, rtol=0, atol=0)\n"
        "print(sum(p.numel() for p in model.parameters()))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == sum(p.numel() for p in model.parameters())


def test_generated_source_is_ruff_clean(tmp_path, resnet18):
    model, graph, x = resnet18
    path = tmp_path / "m.py"
    export.save(model, graph, path, x)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
                             str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout


class _Canary:
    def __reduce__(self):
        return (open, ("/tmp/netdsl-canary-created", "w"))


def test_weights_never_run_code(tmp_path, resnet18):
    model, _, _ = resnet18
    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps({"fc.weight": _Canary()}))
    with pytest.raises(BuildError, match="cannot read weights"):
        export.load_weights(model, hostile)
    assert not __import__("os").path.exists("/tmp/netdsl-canary-created")


def test_truncated_and_mismatched_weights_are_clear_errors(tmp_path, resnet18):
    model, graph, x = resnet18
    good = tmp_path / "m.safetensors"
    export.save(model, graph, good, x)
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(BuildError, match="cannot read weights"):
        export.load_weights(model, truncated)
    other = netdsl.build(SPECS / "resnet18.net", num_classes=7, input=(3, 32, 32))
    with pytest.raises(BuildError, match="does not fit") as caught:
        export.load_weights(other, good)
    assert "wrong shape: fc.weight, fc.bias" in str(caught.value)


# --- hostile and wrong .pt files (issue 12, item 9) ----------------------------------------

def _tiny():
    return netdsl.build("network t:\n    input 1x4x4\n    c: conv(2, 1x1)\n")


def test_load_weights_with_non_tensor_values_is_a_coded_error(tmp_path):
    model = _tiny()
    path = tmp_path / "w.pt"
    torch.save({"c.weight": [1.0, 2.0], "c.bias": "zero"}, path)
    with pytest.raises(BuildError, match="not tensors: c.weight \\(list\\), c.bias \\(str\\)"):
        export.load_weights(model, path)
    torch.save({"model": model.state_dict(), "epoch": 3}, path)
    with pytest.raises(BuildError) as caught:
        export.load_weights(model, path)
    assert caught.value.code == "E010" and "pass its 'model' entry" in str(caught.value)


def test_load_weights_refuses_a_compressed_bomb_before_inflating_it(tmp_path, monkeypatch):
    import zipfile

    model = _tiny()
    plain, bomb = tmp_path / "plain.pt", tmp_path / "bomb.pt"
    torch.save({"c.weight": torch.zeros(2, 1, 1, 1), "c.bias": torch.zeros(64 * 2**20)}, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for entry in src.infolist():
            dst.writestr(entry.filename, src.read(entry))
    assert bomb.stat().st_size < 2**20  # 256 MB of zeros in well under a megabyte

    def never(*args, **kwargs):
        raise AssertionError("torch.load was called on the bomb")
    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(BuildError, match="would unpack to 268,4"):
        export.load_weights(model, bomb)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64, torch.bool])
def test_load_weights_refuses_complex_and_integer_weights_for_real_ones(tmp_path, dtype):
    model = _tiny()
    path = tmp_path / "w.pt"
    state = {k: v.to(dtype) for k, v in model.state_dict().items()}
    torch.save(state, path)
    with pytest.raises(BuildError, match="wrong kind of number: c.weight"):
        export.load_weights(model, path)


def test_load_weights_accepts_double_precision_for_float_weights(tmp_path):
    model = _tiny()
    path = tmp_path / "w.pt"
    torch.save({k: torch.ones_like(v, dtype=torch.float64) for k, v in model.state_dict().items()},
               path)
    export.load_weights(model, path)
    assert model.c.bias.dtype == torch.float32 and (model.c.bias == 1).all()


@pytest.fixture(scope="module")
def digits():
    """A small network whose global pooling lets height and width vary."""
    torch.manual_seed(0)
    model = netdsl.build("digits").eval()
    return model, model.netdsl_graph


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_exports_take_any_batch_size(tmp_path, digits, suffix):
    model, graph = digits
    path = tmp_path / f"m{suffix}"
    export.save(model, graph, path, torch.randn(1, 1, 16, 16))  # traced at batch 1
    run = _runner(path)
    for batch in (1, 2, 7):
        x = torch.randn(batch, 1, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(run(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_dynamic_hw_exports_take_other_sizes(tmp_path, digits, suffix):
    model, graph = digits
    path = tmp_path / f"m{suffix}"
    export.save(model, graph, path, torch.randn(1, 1, 16, 16), dynamic="hw")
    run = _runner(path)
    for shape in ((1, 1, 16, 16), (2, 1, 24, 24), (7, 1, 40, 32)):
        x = torch.randn(*shape)
        with torch.no_grad():
            torch.testing.assert_close(run(x), model(x), rtol=1e-4, atol=1e-4)


def test_dynamic_hw_is_refused_where_the_network_fixes_its_size(tmp_path):
    spec = "network flat:\n    input 3x8x8\n    conv(4, 3x3) -> flatten -> fc(5)\n"
    model = netdsl.build(spec).eval()
    with pytest.raises(BuildError, match="takes only its own input size"):
        export.save(model, model.netdsl_graph, tmp_path / "m.pt2", torch.randn(1, 3, 8, 8),
                    dynamic="hw")
    assert not (tmp_path / "m.pt2").exists()


def _runner(path):
    """A callable running the exported file: onnxruntime for .onnx, torch.export.load for .pt2."""
    if path.suffix == ".pt2":
        return torch.export.load(path).module()
    session = onnxruntime.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])
