"""The public contract of docs/design.md: parse, compile, build, NetDSLError; torch stays out of
the frontend; the emitted module works under torch.compile and torch.export."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torchvision

import netdsl
from netdsl.ir import graph as ir
from netdsl.syntax import tree as syntax

from conftest import ROOT, SPECS, all_specs

TINY = """
network tiny(width=8, num_classes=10):
    input 3x32x32
    conv(width, 3x3, pad=1) -> bn -> relu -> maxpool(2x2)
    residual(conv3x3(width) -> bn -> relu -> conv3x3(width) -> bn) -> relu
    gap -> flatten -> head: fc(num_classes)
"""


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_frontend_never_imports_torch():
    out = run_python(
        "import sys, netdsl\n"
        "netdsl.compile('specs/resnet152.net', num_classes=10)\n"
        "netdsl.parse(open('specs/googlenet.net').read())\n"
        "from netdsl.cli import main\n"
        "assert main(['check', 'specs/resnet50.net']) == 0\n"
        "assert main(['show', 'specs/vgg16.net']) == 0\n"
        "print('torch' in sys.modules)\n")
    assert out.strip().splitlines()[-1] == "False"


def test_parse_gives_a_syntax_tree_with_positions():
    module = netdsl.parse(TINY, "tiny.net")
    (network,) = module.items
    assert isinstance(network, syntax.NetworkDef)
    assert network.name == "tiny" and [p.name for p in network.params] == ["width", "num_classes"]
    assert (network.span.line, network.span.column) == (2, 1)
    assert module.source.filename == "tiny.net"


def test_compile_takes_text_or_a_path_and_overrides():
    graph = netdsl.compile(TINY, width=16, num_classes=5)
    assert graph.output_shape == (5,)
    assert graph.nodes[1].shape == (16, 32, 32)
    from_path = netdsl.compile(SPECS / "resnet18.net")
    assert from_path.name == "resnet18" and from_path.output_shape == (1000,)
    assert netdsl.compile(str(SPECS / "resnet18.net"), input=(3, 64, 64)).nodes[1].shape == \
        (64, 32, 32)


@pytest.mark.parametrize("entry", [netdsl.compile, netdsl.summary, netdsl.api.link,
                                   netdsl.screen], ids=lambda f: f.__name__)
def test_spec_text_in_a_plain_str_still_works_and_warns_at_the_caller(entry):
    with pytest.warns(DeprecationWarning, match=r"pass netdsl\.SpecText\(text\)") as caught:
        entry(TINY)
    assert [w.filename for w in caught] == [__file__]  # the user's line, not netdsl's


def test_explicit_specs_never_warn_and_never_guess(tmp_path, monkeypatch):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert netdsl.compile(netdsl.SpecText(TINY)).output_shape == (10,)
        assert netdsl.compile(netdsl.zoo_spec("resnet18")).name == "resnet18"
        assert netdsl.compile("resnet18").name == "resnet18"  # a name: not deprecated
    # a file called like a bundled network: a plain name reads the file first (as the CLI
    # does), zoo_spec reads the zoo, and SpecText reads the string itself as spec text
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet18.net").write_text(TINY)
    assert netdsl.compile(netdsl.zoo_spec("resnet18")).name == "resnet18"
    assert netdsl.compile("resnet18.net").name == "tiny"
    with pytest.raises(netdsl.NetDSLError, match="defines no network|expected"):
        netdsl.compile(netdsl.SpecText("resnet18"))
    with pytest.raises(netdsl.NetDSLError, match="did you mean 'resnet50'"):
        netdsl.zoo_spec("resnet5")


def test_errors_carry_position_and_render_a_caret():
    with pytest.raises(netdsl.NetDSLError) as caught:
        netdsl.compile(TINY.replace("bn -> relu -> maxpool", "bn -> rleu -> maxpool"))
    error = caught.value
    assert (error.filename, error.line, error.column) == ("<string>", 4, 38)
    text = str(error).splitlines()
    assert text[0] == "<string>:4:38: error: unknown name 'rleu'"
    assert text[2] == "4 |     conv(width, 3x3, pad=1) -> bn -> rleu -> maxpool(2x2)"
    assert text[3] == "  | " + " " * 37 + "^^^^"
    assert "did you mean 'relu'?" in text[4]


# What each family file's network needs, small (the zoo's own networks call the families at
# full size, e.g. resnet50.net): a family is compiled with these, and a family added without
# an entry here fails test_every_spec_lowers_to_a_well_formed_graph.
FAMILY_VALUES = {
    "convnext": {"widths": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "sd": 0.1},
    "densenet": {"growth": 8, "depths": [1, 1, 1, 1], "init_width": 16},
    "efficientnet": {"features": "b(100, 100, bn)", "drop": 0.2},
    "mnasnet": {"widths": [16, 8, 16, 24, 40, 48, 96, 160]},
    "mobilenet_v3": {"rows": "small", "last_channel": 1024},
    "regnet": {"widths": [32, 64, 160, 400], "depths": [1, 1, 1, 1], "group_width": 16},
    "resnet": {"unit": "basic", "depths": [1, 1, 1, 1]},
    "segmentation": {"head": "fcn", "size": 64},
    "shufflenet_v2": {"widths": [24, 48, 96, 192, 1024]},
    "squeezenet": {"version": "v1_1"},
    "vgg": {"depths": [1, 1, 2, 2, 2]},
}


def _compile_spec(spec):
    """A network of the zoo as it is; a family file is refused without the values its
    network needs (at that network's first parameter without a default), then compiled with
    them."""
    if not spec.stem.endswith("_family"):
        return netdsl.compile(spec)
    name = spec.stem.removesuffix("_family")
    with pytest.raises(netdsl.NetDSLError) as open_:
        netdsl.compile(spec)
    error = open_.value
    first = next(p for p in netdsl.parse(spec.read_text(), str(spec)).items[-1].params
                 if p.default is None)
    assert (error.code, error.message) == ("E009", f"network '{name}' needs a value for "
                                           f"'{first.name}'")
    assert (error.line, error.column) == (first.span.line, first.span.column)
    values = FAMILY_VALUES[name]
    return netdsl.compile(spec, **({"input": (3, 64, 64)} | values))


@pytest.mark.parametrize("spec", all_specs(), ids=lambda p: p.stem)
def test_every_spec_lowers_to_a_well_formed_graph(spec):
    graph = _compile_spec(spec)
    ir.lint(graph)
    assert graph.checked and all(node.shape for node in graph.nodes)
    # a classifier's scores, or a segmentation map (U-Net: a score per class and pixel)
    assert len(graph.output_shape) in (1, 3) and min(graph.output_shape) >= 1


def test_summary_gives_the_rows_and_totals_netdsl_summary_prints(capsys):
    from netdsl.cli import main

    assert main(["summary", "resnet50", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    figures = netdsl.summary("resnet50")
    assert printed == {"spec": "resnet50", **figures.to_json()}
    assert [(x.name, x.op, list(x.shape), x.params, x.macs, list(x.rf)) for x in figures.layers] \
        == [(x["name"], x["op"], x["shape"], x["params"], x["macs"], x["receptive_field"])
            for x in printed["layers"]]
    assert figures.total_params == printed["total"]["params"] == 25_557_032


def test_summary_takes_a_graph_the_cli_options_and_a_memory_budget():
    graph = netdsl.compile(TINY)
    deep = netdsl.summary(graph, batch=4, dtype="float16", depth=1,
                          memory_budget="1GB").to_json()
    assert (deep["batch"], deep["dtype"]) == (4, "float16")
    assert deep["memory_plan"]["budget"] == 10**9 and deep["memory_plan"]["batch"] == 4
    assert "memory_plan" not in netdsl.summary(TINY).to_json()
    for bad in ({"dtype": "int3"}, {"batch": 0}, {"depth": 0}, {"num_classes": 3}):
        with pytest.raises(netdsl.NetDSLError) as caught:
            netdsl.summary(graph, **bad)
        assert caught.value.code == "E010"


def test_plugin_authors_find_their_exceptions_in_netdsl():
    from netdsl.errors import RegistrationError
    from netdsl.ir.params import ShapeProblem

    assert netdsl.RegistrationError is RegistrationError
    assert netdsl.ShapeProblem is ShapeProblem
    assert {"summary", "RegistrationError", "ShapeProblem"} <= set(netdsl.__all__)


def test_show_is_stable_text(update_golden, monkeypatch):
    """The IR as `netdsl show` prints it (golden file; `pytest --update-golden` rewrites)."""
    monkeypatch.chdir(ROOT)
    golden = ROOT / "tests" / "golden" / "resnet18.ir"
    text = str(netdsl.compile("specs/resnet18.net")) + "\n"
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_build_is_deterministic_under_a_seed():
    torch.manual_seed(7)
    a = netdsl.build(TINY).state_dict()
    torch.manual_seed(7)
    b = netdsl.build(TINY).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("spec,reference", [
    ("resnet18", torchvision.models.resnet18),
    ("vgg16", torchvision.models.vgg16),
    ("googlenet", lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True)),
])
def test_initialisation_follows_the_reference(spec, reference):
    """Same distributions as the reference constructor, layer by layer (std within 5%)."""
    torch.manual_seed(0)
    ours = netdsl.build(SPECS / f"{spec}.net", **({"aux_logits": False} if spec == "googlenet"
                                                 else {})).state_dict()
    theirs = reference().state_dict()
    for key, value in theirs.items():
        if value.dtype.is_floating_point and value.numel() > 1000:
            assert ours[key].std().item() == pytest.approx(value.std().item(), rel=0.05), key
            assert ours[key].abs().max() <= max(value.abs().max() * 1.5, 2.0), key


@pytest.mark.timeout(900)  # torch.compile: 300 s at a load of 10
def test_resnet18_compiles_with_fullgraph_and_exports():
    model = netdsl.build(SPECS / "resnet18.net").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        # fullgraph: Dynamo traces the generated forward with no graph break. aot_eager stops
        # before Inductor's code generation (a minute on 2 cores), which test_optimize.py's
        # inductor backend covers
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(x), expected, rtol=1e-4, atol=1e-4)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), expected)


def test_resnet152_is_a_short_file():
    """ResNet-152 plus the family file it imports stays under 40 lines (Caffe: 6,775), not
    counting the family's contract header: its API documentation (docs/zoo.md), as a
    docstring, not the network."""
    def network_lines(name):
        lines = (SPECS / name).read_text().splitlines()
        code = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        contract = [i for i, line in enumerate(lines[:code]) if line.startswith("# Contract")]
        return len(lines) - (code - contract[0] + 1 if contract else 0)  # + the "#" above it

    lines = sum(network_lines(name) for name in ("resnet152.net", "resnet_family.net"))
    assert lines < 40
    assert netdsl.compile(SPECS / "resnet152.net").name == "resnet152"


def test_build_refuses_a_network_over_the_parameter_budget_before_allocating():
    text = "network huge:\n    input 3x8x8\n    conv(1000000, 3x3) -> conv(1000000, 1x1)\n"
    with pytest.raises(netdsl.NetDSLError, match="more than the budget") as caught:
        netdsl.build(text)
    assert (caught.value.line, caught.value.column) == (3, 27)  # the largest layer
    with pytest.raises(netdsl.NetDSLError, match="budget of 1,000"):
        netdsl.build(TINY, max_params=1_000)


def test_ir_json_round_trips_and_builds():
    graph = netdsl.compile(SPECS / "googlenet.net")
    data = ir.to_json(graph)
    assert data["schema"] == "netdsl.ir.graph/2" and data["outputs"] == []
    again = ir.from_json(json.loads(json.dumps(data)))
    assert ir.to_json(again) == data
    # a /1 document (before several outputs) still loads
    old = {k: v for k, v in data.items() if k != "outputs"} | {"schema": "netdsl.ir.graph/1"}
    assert ir.to_json(ir.from_json(old)) == data
    from netdsl.torch.emit import build_module

    keys = list(build_module(again).state_dict())
    assert keys == list(netdsl.build(SPECS / "googlenet.net").state_dict())


def test_same_seed_gives_bitwise_identical_weights_in_two_processes(tmp_path):
    code = ("import sys, torch, netdsl\n"
            "torch.manual_seed(3)\n"
            "torch.save(netdsl.build('specs/googlenet.net').state_dict(), sys.argv[1])\n")
    for name in ("a.pt", "b.pt"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True, cwd=ROOT,
                       timeout=120)
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_independent_syntax_errors_are_reported_together():
    text = ("block a(c) = conv(c 3x3)\n\nblock b = relu\n\n"
            "network n:\n    input 3x8x8\n    relu -> x = a(4)\n    b\n")
    with pytest.raises(netdsl.NetDSLError) as caught:
        netdsl.compile(text)
    error = caught.value
    assert (error.line, error.column) == (1, 21)  # the first one is the error's own position
    assert [(e.line, e.column) for e in error.errors] == [(1, 21), (7, 15)]
    assert str(error).endswith("2 errors")
