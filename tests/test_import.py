"""``netdsl import``: a PyTorch model to a spec that builds the same network. Each round trip
imports the model, builds the written spec, loads the model's state_dict with strict=True and
compares eval outputs (batch norm statistics randomised) and parameter counts."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
import timm
import torch
import torchvision
from torch import nn

import netdsl
from netdsl.errors import ModuleImportError
from netdsl.importer import from_module

from conftest import ROOT, SPECS
from reference import load_and_compare, param_count

tv = torchvision.models

# name, constructor, input size (small where the network allows; aux heads need 299 in v3)
CASES = [
    ("resnet18", lambda: tv.resnet18(), 64),
    ("resnet50", lambda: tv.resnet50(), 64),
    ("vgg16", lambda: tv.vgg16(), 32),
    ("vgg16_bn", lambda: tv.vgg16_bn(), 32),
    ("alexnet", lambda: tv.alexnet(), 64),
    ("googlenet", lambda: tv.googlenet(init_weights=True), 64),
    ("inception_v3", lambda: tv.inception_v3(init_weights=True), 299),
    ("mobilenet_v2", lambda: tv.mobilenet_v2(), 32),
    ("inception_v4", lambda: timm.create_model("inception_v4"), 75),
    ("inception_resnet_v2", lambda: timm.create_model("inception_resnet_v2"), 75),
]


@functools.cache
def imported(name: str) -> tuple[nn.Module, str]:
    """The model and its imported spec (each network is traced once per process)."""
    _, make, size = next(c for c in CASES if c[0] == name)
    torch.manual_seed(0)
    model = make()
    return model, from_module(model, (3, size, size), name)


@pytest.mark.parametrize("name,make,size", CASES, ids=[c[0] for c in CASES])
def test_imported_spec_loads_the_weights_and_computes_the_same(name, make, size):
    theirs, text = imported(name)
    assert text == netdsl.syntax.fmt.format_text(text)  # canonical layout
    ours = netdsl.build(text)
    assert param_count(ours) == param_count(theirs)
    load_and_compare(ours, theirs, torch.randn(2, 3, size, size))


def test_repeated_modules_become_one_parametric_block():
    _, text = imported("resnet50")
    assert "block bottleneck(c, stride=1) =" in text  # 16 instances, one block
    assert "conv3: conv(4 * c, 1x1, bias=false)" in text  # a multiple of a parameter
    assert "shortcut=downsample: project" in text  # projects only where the shape changes
    assert "layer2: (bottleneck(128, stride=2) -> stack(bottleneck(128), 3))" in text
    assert "# 2048x2x2" in text  # output shapes as comments


# hand-written spec files (with the family file they import) for each imported network
# (the line count does not depend on the input size: only the shape comments change)
READABLE = [
    ("resnet50", ["resnet50.net", "resnet_family.net"]),
    ("vgg16", ["vgg16.net", "vgg_family.net"]),
    ("googlenet", ["googlenet.net"]),
    ("inception_v3", ["inception_v3.net"]),
    ("mobilenet_v2", ["mobilenet_v2.net"]),
    ("inception_v4", ["inception_v4.net"]),
    ("inception_resnet_v2", ["inception_resnet_v2.net"]),
]


@pytest.mark.parametrize("name,files", READABLE, ids=[c[0] for c in READABLE])
def test_imported_spec_is_at_most_twice_the_hand_written_one(name, files):
    imported_lines = len(imported(name)[1].splitlines())
    hand = sum(len((SPECS / f).read_text().splitlines()) for f in files)
    assert imported_lines <= 2 * hand, (imported_lines, hand)


class _Erf(nn.Module):
    def forward(self, x):
        return torch.erf(x)


class _WithCustomOp(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.act = _Erf()

    def forward(self, x):
        return self.act(self.conv(x))


def test_an_op_without_a_record_is_a_named_error():
    with pytest.raises(ModuleImportError) as caught:
        from_module(_WithCustomOp(), (3, 16, 16))
    error = caught.value
    assert error.code == "E013"
    assert "module 'act' (_Erf), fx node 'erf'" in error.message
    assert "'erf' has no netdsl op" in error.message
    assert error.span is not None and "torch.erf" in error.span.source.line(error.span.line)


def test_a_network_name_that_is_not_an_identifier_is_a_coded_error():
    with pytest.raises(ModuleImportError, match="network name 'my net' is not an identifier") \
            as caught:
        from_module(nn.Sequential(nn.Conv2d(3, 8, 3)), (3, 16, 16), "my net")
    # coded (issue 27: it was a bare ValueError), still a ValueError for earlier callers
    assert caught.value.code == "E013" and isinstance(caught.value, ValueError)


def test_a_layer_class_without_a_record_is_a_named_error():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LayerNorm([8, 14, 14]))
    with pytest.raises(ModuleImportError,
                       match=r"module '1' \(LayerNorm\), fx node '_1'.*LayerNorm has no netdsl op"):
        from_module(model, (3, 16, 16))


class _DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        x = self.conv(x)
        return x if x.sum() > 0 else -x


def test_data_dependent_control_flow_is_a_named_error():
    with pytest.raises(ModuleImportError, match="cannot trace module '_DataDependent'"):
        from_module(_DataDependent(), (3, 16, 16))


def test_weights_the_spec_could_not_hold_are_a_named_error():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3)), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 14 * 14, 4))
    with pytest.raises(ModuleImportError, match="would not hold the weights of '0.0'"):
        from_module(model, (3, 16, 16))


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    code = "import sys; from netdsl.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_cli_writes_a_spec_that_builds(tmp_path):
    (tmp_path / "mynets.py").write_text(
        "import torch.nn as nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))\n")
    done = _cli("import", "mynets:make", "--input", "3x16x16", "-o", "net.net", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "net.net").read_text()
    assert "network make:" in text and "input 3x16x16" in text
    assert netdsl.compile(text).output_shape == (4,)


def test_cli_refuses_bad_names_and_writes_nothing(tmp_path):
    for module in ("torchvision:no_such_net", "os;rm:x", "mynets"):
        done = _cli("import", module, "-o", "net.net", cwd=tmp_path)
        assert done.returncode == 1 and "error:" in done.stderr, done.stderr
    assert not (tmp_path / "net.net").exists()


def _blurred():
    sys.path.insert(0, str(ROOT / "examples" / "plugin"))
    try:
        from netdsl_blurpool import RECORD
        from netdsl_blurpool.layers import BlurPool
    finally:
        sys.path.pop(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), BlurPool(8, stride=2),
                          nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    return RECORD, model


def test_a_plugin_layer_imports_once_its_record_is_registered():
    record, model = _blurred()
    with pytest.raises(ModuleImportError, match=r"module '2' \(BlurPool\), fx node '_2_filter'"):
        from_module(model, (3, 16, 16))
    netdsl.register_op(record)
    try:
        text = from_module(model, (3, 16, 16), "blurred")
        assert "blurpool" in text
        load_and_compare(netdsl.build(text), model, torch.randn(2, 3, 16, 16))
    finally:
        netdsl.unregister_op(record.name)


class SE(nn.Module):  # named like the prelude's block `se`
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Mul(SE):  # named like the builtin `mul`
    pass


def test_render_never_names_a_block_like_a_reserved_word():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), SE(), Mul())
    text = from_module(model, (3, 8, 8), "named")
    assert "block se_block" in text and "block mul_block" in text
    load_and_compare(netdsl.build(text), model, torch.randn(2, 3, 8, 8))
