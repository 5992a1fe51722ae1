"""A layer from outside netdsl: the `blurpool` plugin of examples/plugin, found through its
`netdsl.ops` entry point, goes through check, summary, graph, build and the exports, and its
figures agree with the module that is built, as the built-in ops' do."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import netdsl
from netdsl.errors import RegistrationError

from conftest import ROOT

PLUGIN = ROOT / "examples" / "plugin"
SPEC = """network blurred(num_classes=10):
    input 3x32x32
    stem: (conv(16, 3x3, pad=1) -> bn -> relu)
    down: blurpool(stride=2)
    body: (conv(32, 3x3, pad=1) -> relu -> blurpool)
    head: (gap -> flatten -> fc(num_classes))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The plugin as pip would leave it: its package and a dist-info with the entry point."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(PLUGIN / "netdsl_blurpool", root / "netdsl_blurpool")
    info = root / "netdsl_blurpool-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: netdsl-blurpool\n"
                                   "Version: 0.1.0\n")
    (info / "entry_points.txt").write_text("[netdsl.ops]\nblurpool = netdsl_blurpool:RECORD\n")
    return root


def run(site: Path, cwd: Path, *args: str, code: str | None = None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    command = [sys.executable, "-c", code] if code else [
        sys.executable, "-c", "import sys; from netdsl.cli import main; sys.exit(main(sys.argv[1:]))",
        *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_checks_summarises_draws_and_builds_a_spec_using_the_plugin(site, tmp_path):
    spec = tmp_path / "blurred.net"
    spec.write_text(SPEC)
    # one process, as a fresh interpreter finds the plugin: the commands through the CLI's
    # main (each prints what it would in a shell), then the built module against the summary
    # and the two exports against the module
    code = f"""
import contextlib, io, json, sys, torch, onnxruntime, netdsl
from torch.utils.flop_counter import FlopCounterMode
from netdsl.cli import main

def cli(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) in (0, None), args
    return out.getvalue()

spec = {str(spec)!r}
assert "maps 3x32x32 to 10" in cli("check", spec)
summary = json.loads(cli("summary", spec, "--format", "json"))
rows = {{row["name"]: row for row in summary["layers"]}}
assert rows["down"]["shape"] == [16, 16, 16] and rows["down"]["params"] == 0
assert rows["down"]["macs"] == 9 * 16 * 16 * 16
assert rows["down"]["receptive_field"] == [5, 5], rows["down"]  # the stem's 3x3, then 3x3 at jump 1
assert rows["body.2"]["receptive_field"] == [13, 13]  # conv 3x3 at jump 2, blur at jump 2
assert rows["body.2"]["jump"] == [4, 4]
cli("graph", spec, "-o", "g.dot")
assert "blurpool /2" in open("g.dot").read()
cli("build", spec, "-o", "model.py")
cli("build", spec, "-o", "model.onnx")
torch.manual_seed(0)
model = netdsl.build(spec).eval()
shapes = {{}}
for name, module in model.named_modules():
    if name:
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, list(o.shape[1:])))
x = torch.randn(2, 3, 32, 32)
with FlopCounterMode(display=False) as counter, torch.no_grad():
    y = model(x)
assert all(rows[n]["shape"] == s for n, s in shapes.items()), shapes
assert sum(p.numel() for p in model.parameters()) == summary["total"]["params"]
assert counter.get_total_flops() == 2 * 2 * summary["total"]["macs"]
sys.path.insert(0, ".")
import model as exported
copy = exported.Model().eval()
copy.load_state_dict(model.state_dict())
assert torch.equal(copy(x), y)
session = onnxruntime.InferenceSession("model.onnx")
got = session.run(None, {{session.get_inputs()[0].name: x[:1].numpy()}})[0]
assert abs(got - y[:1].numpy()).max() <= 1e-4 * abs(y).max().item()
print("agree")
"""
    assert run(site, tmp_path, code=code).strip().endswith("agree")
    assert "import netdsl_blurpool.layers" in (tmp_path / "model.py").read_text()


def test_a_record_registered_in_python_is_a_layer_at_once():
    from netdsl.ir.layers.activation import activation

    record = activation("swish_plugin", "x * sigmoid(x).", "torch.nn.SiLU", inplace=False,
                        needs_output=True)
    netdsl.register_op(record)
    try:
        model = netdsl.build("network t:\n    input 3x8x8\n    conv(4, 3x3) -> swish_plugin\n")
        assert isinstance(model[1] if isinstance(model, torch.nn.Sequential)
                          else dict(model.named_children())["1"], torch.nn.SiLU)
        with pytest.raises(RegistrationError, match="already registered"):
            netdsl.register_op(record)
    finally:
        netdsl.unregister_op("swish_plugin")
    with pytest.raises(netdsl.NetDSLError, match="unknown name 'swish_plugin'"):
        netdsl.compile("network t:\n    input 3x8x8\n    swish_plugin\n")


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "conv"}, "already registered"),
    ({"name": "stack"}, "not reserved|builtin"),
    ({"name": "block"}, "not reserved"),
    ({"window": None}, "'window' must be a function"),
    ({"init_role": "embedding"}, "init_role"),
    ({"style": "sparkly"}, "style"),
    ({"torch": None}, "torch emission"),
    ({"params": ("out",)}, "kind"),
    ({"layout": "nhwc"}, "layout must be one of"),
    ({"view_strides": (1, 1)}, "view_strides must be None or a function"),
    ({"temporaries": 3}, "temporaries must be None or a function"),
])
def test_a_malformed_record_is_a_registration_error(change, message):
    from netdsl.ir.ops import OPS

    record = dataclasses.replace(OPS["relu"], **{"name": "my_relu", **change})
    with pytest.raises(RegistrationError, match=message):
        netdsl.register_op(record)
    assert "my_relu" not in OPS


def test_a_plugin_that_fails_to_load_names_its_entry_point():
    from netdsl.ir.ops import load_plugins

    class Broken:
        name, value = "broken", "broken_plugin:RECORD"

        def load(self):
            raise ImportError("No module named 'broken_plugin'")

    with pytest.raises(RegistrationError, match="'broken' \\(broken_plugin:RECORD\\) failed"):
        load_plugins([Broken()])


def test_a_record_missing_a_field_cannot_be_made():
    with pytest.raises(TypeError, match="window"):
        netdsl.OpRecord(**{f.name: None for f in dataclasses.fields(netdsl.OpRecord)
                           if f.name != "window"})


PLAIN = "network t:\n    input 3x8x8\n    conv(4, 3x3) -> relu\n"


def test_an_installed_plugin_is_imported_only_by_a_spec_that_names_its_op(site, tmp_path):
    """Checking a spec runs no plugin code it does not use; the plugin's name is still
    suggested for a misspelling (names are metadata, read without importing anything)."""
    code = f"""
import sys, netdsl
netdsl.compile({PLAIN!r})
try:
    netdsl.compile({PLAIN.replace("relu", "blurpol")!r})
except netdsl.NetDSLError as error:
    assert "did you mean 'blurpool'" in str(error), str(error)
assert "netdsl_blurpool" not in sys.modules
netdsl.compile({SPEC!r})
assert "netdsl_blurpool" in sys.modules
print("lazy")
"""
    assert run(site, tmp_path, code=code).strip() == "lazy"


def test_a_dist_info_in_the_working_folder_is_not_a_plugin(tmp_path):
    """`python -m` puts the working folder on sys.path: a *.dist-info lying there must not
    make `netdsl check` import the module its entry point names, whether or not a spec
    names the op (then it is an unknown name, as without the folder)."""
    info = tmp_path / "evil-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[netdsl.ops]\nevil = evil_plugin:RECORD\n")
    (tmp_path / "evil_plugin.py").write_text("open('RAN', 'w').close()\nRECORD = []\n")
    (tmp_path / "plain.net").write_text(PLAIN)
    (tmp_path / "named.net").write_text(PLAIN.replace("relu", "evil"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    checks = [subprocess.run([sys.executable, "-m", "netdsl", "check", name], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
              for name in ("plain.net", "named.net")]
    assert checks[0].returncode == 0, checks[0].stderr
    assert checks[1].returncode == 1 and "unknown name 'evil'" in checks[1].stderr
    assert not (tmp_path / "RAN").exists()


# Registers an op named like the prelude block `stage` before or after the process's first
# compile; prints whether it was registered and whether two other specs still compile (one
# calling a prelude block, one a builtin).
_STAGE_ORDER = """
import dataclasses, sys
import netdsl
from netdsl.errors import RegistrationError

def register():
    try:
        netdsl.register_op(dataclasses.replace(netdsl.OPS["relu"], name="stage"))
        return "registered"
    except RegistrationError as error:
        return "refused: " + error.message

def compiles():
    specs = ("network a:\\n    input 3x8x8\\n    conv3x3(4) -> relu\\n",
             "network b:\\n    input 3x8x8\\n    stack(conv(4, 1x1), 2)\\n")
    try:
        return all(netdsl.compile(s).output_shape == (4, 8, 8) for s in specs)
    except netdsl.NetDSLError as error:
        return "fails: " + error.message

if sys.argv[1] == "first":
    answer = register()
    print(answer, compiles(), sep="\\n")
else:
    compiled = compiles()
    print(register(), compiled and compiles(), sep="\\n")
"""


@pytest.mark.parametrize("order", ["first", "after a compile"])
def test_a_prelude_name_is_refused_whether_or_not_a_spec_was_compiled_first(order):
    """Once the prelude's names were reserved only as the first compile read the prelude:
    registering `stage` first succeeded and then broke every compile."""
    result = subprocess.run([sys.executable, "-c", _STAGE_ORDER, order], capture_output=True,
                            text=True, timeout=60, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "refused: op record 'stage': the name must be a netdsl name that is not reserved",
        "True"]


def test_reserved_names_are_the_languages_own():
    """ir.ops.RESERVED_NAMES is data (so registration never waits for lowering): it must list
    exactly the names a spec gives another meaning."""
    from netdsl.ir.ops import RESERVED_NAMES
    from netdsl.lower.builtins import BUILTINS
    from netdsl.lower.functions import FUNCTIONS
    from netdsl.lower.loader import prelude
    from netdsl.lower.values import CONSTANTS
    from netdsl.syntax.diagnostics import RESERVED

    language = {*RESERVED, *CONSTANTS, *BUILTINS, *FUNCTIONS, *prelude().names}
    assert set(RESERVED_NAMES) == language


def test_a_graph_keeps_what_its_nodes_emit_after_their_op_is_unregistered():
    """Whether a node is a module is fixed when lowering makes it, not read from the op
    table later: a graph stays usable once a plugin op is gone."""
    netdsl.register_op(dataclasses.replace(netdsl.OPS["relu"], name="my_act"))
    try:
        graph = netdsl.compile("network t:\n    input 3x8x8\n    conv(4, 1x1) -> my_act\n")
    finally:
        netdsl.unregister_op("my_act")
    assert [n.name for n in graph.modules()] == ["0", "1"]
    assert not any(n.is_parameter for n in graph.nodes)
