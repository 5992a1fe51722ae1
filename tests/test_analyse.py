"""netdsl.passes.analyse and the summary/compare/graph/list commands, cross-checked against torch.

Every spec in specs/ is built once (small input where the network allows) and run once in
training mode under FlopCounterMode with forward hooks on every module; the static figures
must equal what torch counts and sees.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys

import pytest

import netdsl
from netdsl.cli import main
from netdsl.errors import NetDSLError, OverrideError
from netdsl.passes import analyse, sizes

from conftest import ROOT, SPECS, all_specs

SMALL = (3, 64, 64)


@functools.cache
def compiled(path: str):
    """The spec at 3x64x64 where it allows, else at its declared input; None for a family."""
    try:
        return netdsl.compile(path, input=SMALL)
    except OverrideError:
        return None
    except NetDSLError:
        return netdsl.compile(path)


def graph_for(path) -> netdsl.ir.graph.Graph:
    graph = compiled(str(path))
    assert graph is not None, f"{path.name} is a family file: not in BUILDABLE"
    return graph


@functools.cache
def measured(path: str) -> dict:
    """What torch sees: parameter count, FLOPs, each module's output shape and whether it
    wrote into its input's memory (in place, or a view). Training mode (batch 2), so auxiliary
    heads run. On the meta device: the real module code and torch's own shape and FLOP rules,
    without allocating the weights (VGG's 138M), so every spec takes well under a second."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from netdsl.torch import emit

    graph = compiled(path)
    with torch.device("meta"):
        model = emit.build_module(graph).train()
        x = torch.empty(2, *graph.input.shape)
    modules = dict(model.named_modules())
    seen: dict[str, tuple] = {}

    def hook(name):
        def record(module, inputs, output):
            source = inputs[0]
            # by identity: `in` would compare tensors elementwise (a permuted view broadcasts)
            shared = output is source or (output._base is not None and any(
                output._base is t for t in (source, source._base) if t is not None))
            seen[name] = (tuple(output.shape[1:]), shared, getattr(module, "inplace", None))
        return record

    for node in graph.modules():
        modules[node.name].register_forward_hook(hook(node.name))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return {"params": sum(p.numel() for p in model.parameters()),
            "flops": counter.get_total_flops(), "seen": seen}


BUILDABLE = [p for p in all_specs() if compiled(str(p)) is not None]  # not family files
SPEC_IDS = [p.name for p in BUILDABLE]


# --- against torch, for every spec ---------------------------------------------------------

@pytest.mark.parametrize("path", BUILDABLE, ids=SPEC_IDS)
def test_params_equal_the_built_module(path):
    graph = graph_for(path)
    assert analyse.summarize(graph).total_params == measured(str(path))["params"]
    # the budget check's shortcut (no full summary) counts the same
    assert sum(analyse.node_params(graph)) == measured(str(path))["params"]


@pytest.mark.parametrize("path", BUILDABLE, ids=SPEC_IDS)
def test_macs_equal_flop_counter_over_two(path):
    # No per-op difference: FlopCounterMode counts 2 FLOPs per multiply-accumulate of
    # convolutions and matrix products only (bias, bn, pooling and activations are free), and
    # so does ops.py. Training mode runs the auxiliary classifiers, whose MACs summary counts.
    graph = graph_for(path)
    flops = measured(str(path))["flops"]
    assert flops % 2 == 0
    assert analyse.summarize(graph).total_macs * 2 == flops // 2  # measured on a batch of 2


@pytest.mark.parametrize("path", BUILDABLE, ids=SPEC_IDS)
def test_every_layer_shape_equals_the_module_output(path):
    graph = graph_for(path)
    seen = measured(str(path))["seen"]
    rows = {x.name: x for x in analyse.summarize(graph).layers}
    assert set(seen) == {n.name for n in graph.modules()}
    for name, (shape, _, _) in seen.items():
        assert rows[name].shape == shape, name


@pytest.mark.parametrize("path", BUILDABLE, ids=SPEC_IDS)
def test_activation_convention_matches_torch_storage(path):
    """A layer counted as writing nothing shares its input's storage in torch (in-place
    ReLU, flatten), and one counted as writing values does not; dropout and stochastic depth
    are counted as nothing by convention (identity at inference), so are left out."""
    graph = graph_for(path)
    seen = measured(str(path))["seen"]
    counts = analyse.activation_counts(graph)
    inplace = analyse.inplace_nodes(graph)
    for node in graph.modules():
        shape, shared, module_inplace = seen[node.name]
        if module_inplace is not None:  # the emitted ReLU agrees with analyse's mirror
            assert module_inplace == (node.id in inplace), node.name
        if node.op in ("dropout", "stochastic_depth"):
            continue
        assert shared == (counts[node.id] == 0), node.name


# --- receptive field -----------------------------------------------------------------------

def expression_graph(expr: str, shape=(64, 56, 56)):
    from netdsl.cli.analyse import expression_spec

    return netdsl.compile(expression_spec(expr, shape))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_stacked_3x3_receptive_field_is_2n_plus_1(n):
    graph = expression_graph(f"stack(conv3x3(8) -> relu, {n})", (8, 32, 32))
    assert analyse.summarize(graph).layers[-1].rf == (2 * n + 1, 2 * n + 1)


def test_three_3x3_see_7x7_with_27_c2_weights_against_49():
    c = 64
    stack = analyse.summarize(expression_graph("stack(conv3x3(64, bias=false) -> relu, 3)"))
    single = analyse.summarize(expression_graph("conv(64, 7x7, pad=3, bias=false) -> relu"))
    assert stack.layers[-1].rf == single.layers[-1].rf == (7, 7)
    assert (stack.total_params, single.total_params) == (27 * c * c, 49 * c * c)


def test_vgg16_pool5_receptive_field_closed_form():
    # Each 3x3 conv adds 2 * jump, each 2x2/2 pool adds 1 * jump then doubles it.
    rf, jump = 1, 1
    for convs in (2, 2, 3, 3, 3):
        rf += convs * 2 * jump
        rf, jump = rf + jump, jump * 2
    rows = {x.name: x for x in analyse.summarize(netdsl.compile(SPECS / "vgg16.net")).layers}
    assert rows["features.30"].rf == (rf, rf) == (212, 212)
    assert rows["features.30"].jump == (32, 32)


def measure_rf(path, size: int, target: str) -> tuple[int, int]:
    """The extent of non-zero input gradient of the centre value of module ``target``, on the
    real module with constant positive weights (no cancellation), eval-mode bn (identity) and
    max pools swapped for average pools of the same window (max routes the gradient to one
    input; the window, which decides the field, is the same)."""
    import torch
    from torch import nn

    graph = netdsl.compile(path, input=(3, size, size))
    model = netdsl.build(path, input=(3, size, size)).double().eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.MaxPool2d):
            parent, _, leaf = name.rpartition(".")
            owner = model.get_submodule(parent) if parent else model
            setattr(owner, leaf, nn.AvgPool2d(module.kernel_size, module.stride, module.padding,
                                              module.ceil_mode))
        elif isinstance(module, nn.Conv2d):
            fan_in = module.weight[0].numel()
            nn.init.constant_(module.weight, 1.0 / fan_in)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    class Stop(Exception):
        pass

    captured = {}

    def grab(module, inputs, output):
        captured["y"] = output
        raise Stop

    model.get_submodule(target).register_forward_hook(grab)
    x = torch.ones(1, *graph.input.shape, dtype=torch.float64, requires_grad=True)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(Stop):
        model(x)
    y = captured["y"]
    y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
    rows, cols = torch.nonzero(x.grad[0].abs().sum(0), as_tuple=True)
    # away from padding: the window must lie inside the image
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < size - 1 and cols.max() < size - 1
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("spec, size, target", [
    ("resnet50.net", 320, "layer3.5.8"),  # through 13 residual units and 3 projections
    ("googlenet.net", 320, "maxpool4"),  # through 7 inception modules (largest branch)
])
def test_receptive_field_equals_gradient_measurement(spec, size, target):
    path = SPECS / spec
    graph = netdsl.compile(path, input=(3, size, size))
    rows = {x.name: x for x in analyse.summarize(graph).layers}
    assert measure_rf(path, size, target) == rows[target].rf


# --- the case studies' figures ---------------------------------------------------------------

def test_vgg16_figures_of_the_reference():
    s = analyse.summarize(netdsl.compile(SPECS / "vgg16.net"))
    # docs/reference.md: the paper's count, plus torchvision's 7x7 adaptive pool (a copy)
    assert s.total_activations == 15_237_608 + 512 * 7 * 7 == 15_262_696
    fc = s.by_op()["fc"]["params"]
    assert fc == 123_642_856 and round(100 * fc / s.total_params, 1) == 89.4
    first_two = sum(x.activations for x in s.layers if x.name in ("features.0", "features.2"))
    assert round(100 * first_two / s.total_activations) == 42
    assert s.depth == 16


def test_depth_counts_weight_layers_on_the_longest_path():
    depth = {name: analyse.weight_depth(netdsl.compile(SPECS / f"{name}.net"))
             for name in ("resnet18", "resnet50", "resnet152", "googlenet")}
    assert depth == {"resnet18": 18, "resnet50": 50, "resnet152": 152, "googlenet": 22}


def test_googlenet_inference_drops_the_auxiliary_heads():
    s = analyse.summarize(netdsl.compile(SPECS / "googlenet.net"))
    # torchvision: 13,004,888 with the auxiliary classifiers, 6,624,904 without (docs/reference.md)
    assert (s.total_params, s.inference()["params"]) == (13_004_888, 6_624_904)


@pytest.mark.parametrize("path", BUILDABLE, ids=SPEC_IDS)
def test_collapsing_keeps_the_totals(path):
    graph = graph_for(path)
    full = analyse.summarize(graph)
    for depth in (1, 2):
        short = analyse.summarize(graph, depth=depth)
        assert len(short.layers) <= len(full.layers)
        assert (short.total_params, short.total_macs, short.total_activations) == \
            (full.total_params, full.total_macs, full.total_activations)
        assert all(len(x.name.split(".")) <= depth or x.count == 1 for x in short.layers)


def test_forward_peak_of_a_chain():
    # input 3x8x8 (192) -> conv 4x6x6 (144) -> relu in place -> conv 2x4x4 (32): the peak is
    # the second conv, while the first one's values are alive, and the input, which the
    # caller holds throughout (192 + 144 + 32)
    g = netdsl.compile("network t:\n input 3x8x8\n conv(4, 3x3) -> relu -> conv(2, 3x3)")
    assert analyse.summarize(g).forward_peak == 192 + 144 + 32


@pytest.mark.parametrize("spec", ["googlenet.net", "resnet18.net", "vgg16.net"])
def test_sweep_agrees_with_check(spec):
    from netdsl.passes.check import check

    graph = netdsl.compile(SPECS / spec)
    for result in sizes.sweep(graph, range(1, 80, 3)):
        try:
            check(graph, (3, result.size, result.size))
            valid = True
        except NetDSLError:
            valid = False
        assert valid == (result.node is None), result.size


def test_summary_of_the_largest_spec_is_torch_free():
    """How fast it is, benchmarks/run.py measures (frontend rows); a timed assert here would
    only measure how busy the machine is."""
    largest = max((p for p in all_specs() if compiled(str(p)) is not None),
                  key=lambda p: len(compiled(str(p)).nodes))
    code = ("import sys, io, contextlib\n"
            "from netdsl.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main(['summary', {str(largest)!r}, '--format', 'json'])\n"
            "print(rc, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True, timeout=120).stdout.split()
    assert out == ["0", "False"], out


# --- the command line ------------------------------------------------------------------------

def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_summary_json_has_the_design_keys(capsys):
    rc, out, _ = run(capsys, "summary", SPECS / "resnet18.net", "--format", "json")
    data = json.loads(out)
    assert rc == 0
    assert {"name", "op", "shape", "params", "macs", "activations", "receptive_field"} <= \
        set(data["layers"][0])
    assert {"params", "macs", "activations"} <= set(data["total"])
    assert data["total"]["params"] == sum(x["params"] for x in data["layers"]) == 11_689_512


def test_summary_table_states_its_conventions(capsys):
    rc, out, _ = run(capsys, "summary", SPECS / "vgg16.net", "--batch", "8", "--dtype",
                     "float16")
    assert rc == 0
    assert "multiply-accumulate" in out and "in-place" in out and "15,262,696" in out
    assert "fc 123,642,856 (89.4%)" in out and "batch 8, float16" in out


@pytest.mark.parametrize("fmt", ["csv", "markdown"])
def test_summary_other_formats(capsys, fmt):
    rc, out, _ = run(capsys, "summary", SPECS / "googlenet.net", "--format", fmt, "--depth", "1")
    assert rc == 0 and "inception3a" in out
    if fmt == "csv":
        lines = out.splitlines()
        assert lines[0].startswith("name,op,shape") and lines[-1].startswith("total,")


def test_summary_depth_collapses_blocks(capsys):
    rc, out, _ = run(capsys, "summary", SPECS / "resnet50.net", "--depth", "1", "--format", "json")
    names = [x["name"] for x in json.loads(out)["layers"]]
    assert rc == 0 and {"layer1", "layer4", "fc"} <= set(names)
    assert not any(n.startswith("layer1.") for n in names)


def test_inline_expressions(capsys):
    rc, out, _ = run(capsys, "summary", "-e", "stack(conv3x3(64) -> relu, 3)", "--input",
                     "64x56x56", "--format", "json")
    data = json.loads(out)
    assert rc == 0 and data["layers"][-1]["receptive_field"] == [7, 7]
    assert data["total"]["params"] == 3 * (9 * 64 * 64 + 64)


@pytest.mark.parametrize("argv, code", [
    (["summary"], 2),  # neither SPEC nor -e
    (["summary", "specs/vgg16.net", "-e", "relu"], 2),  # both
    (["summary", "-e", "relu", "--input", "3xx4"], 2),
    (["summary", "-e", "conv(8, 9x9)", "--input", "3x4x4"], 1),  # a shape diagnostic
    (["summary", "specs/no_such.net"], 1),
    (["graph", "specs/vgg16.net", "-o", "out.bmp"], 1),
    (["check", "specs/vgg16.net", "--sizes", "9:3"], 2),
])
def test_exit_codes(capsys, monkeypatch, argv, code):
    monkeypatch.chdir(ROOT)
    try:
        rc = main(argv)
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc == code
    assert "Traceback" not in err and err


def test_compare_reproduces_the_case_study(capsys):
    specs = [SPECS / f"{n}.net" for n in ("alexnet", "vgg16", "googlenet", "resnet152")]
    rc, out, _ = run(capsys, "compare", *specs, "--format", "json")
    rows = {r["network"]: r for r in json.loads(out)}
    assert rc == 0
    # GoogLeNet: no big fc layers, about 12x fewer parameters than AlexNet (9x in torchvision)
    assert rows["alexnet"]["params"] / rows["googlenet"]["params"] > 9
    assert rows["vgg16"]["depth"] == 16 and rows["resnet152"]["depth"] == 152
    rc, out, _ = run(capsys, "compare", *specs)
    assert rc == 0 and "vs first" in out and "googlenet" in out


def test_list_shows_every_spec(capsys):
    rc, out, _ = run(capsys, "list", SPECS)
    assert rc == 0
    for path in all_specs():
        assert path.name in out
    assert "11,689,512" in out  # resnet18


def test_graph_dot_has_clusters_and_shapes(capsys, tmp_path):
    out = tmp_path / "g.dot"
    rc, _, _ = run(capsys, "graph", SPECS / "googlenet.net", "-o", out)
    text = out.read_text()
    assert rc == 0 and text.startswith('digraph "googlenet"')
    assert 'subgraph "cluster_inception3a"' in text and '"192x28x28"' not in text
    assert 'label=" 832x7x7"' in text and "concat" in text
    rc, _, _ = run(capsys, "graph", SPECS / "resnet50.net", "-o", out, "--depth", "1")
    assert rc == 0 and "layer3" in out.read_text() and "identity" not in out.read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graph_svg_through_graphviz(capsys, tmp_path):
    out = tmp_path / "g.svg"
    rc, _, _ = run(capsys, "graph", SPECS / "resnet18.net", "-o", out)
    assert rc == 0 and "<svg" in out.read_text()


def test_graph_without_graphviz_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    rc, _, err = run(capsys, "graph", SPECS / "resnet18.net", "-o", tmp_path / "g.png")
    assert rc == 1 and "Graphviz" in err and not (tmp_path / "g.png").exists()


def test_plot_draws_the_vgg_picture(capsys, tmp_path):
    out = tmp_path / "vgg.png"
    rc, _, _ = run(capsys, "summary", SPECS / "vgg16.net", "--plot", out)
    assert rc == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing it now fails
    rc, _, err = run(capsys, "summary", SPECS / "vgg16.net", "--plot", tmp_path / "v.png")
    assert rc == 1 and "matplotlib" in err and not (tmp_path / "v.png").exists()


def test_check_sizes_sweep(capsys, monkeypatch):
    from netdsl.passes import sizes
    checked = []  # the full check runs only for a size the fast shape pass finds invalid
    monkeypatch.setattr(sizes, "check", lambda g, shape, real=sizes.check:
                        checked.append(shape[1]) or real(g, shape))
    rc, out, _ = run(capsys, "check", SPECS / "googlenet.net", "--sizes", "1:64")
    assert rc == 0
    valid = [r.size for r in sizes.sweep(netdsl.compile(SPECS / "googlenet.net"), range(1, 65))
             if r.node is None]
    assert valid and not set(checked) & set(valid)
    lines = out.splitlines()
    assert any(line.strip().startswith("valid:") and "64" in line for line in lines)
    invalid = [line for line in lines if "invalid: 1" in line]
    assert invalid and "maxpool" in invalid[0] and "needs at least" in invalid[0]
