"""Generated identifiers (issue 26, items 1 and 2): one function, netdsl.ir.identifiers.plain,
decides which spec names generated Python writes as names; Python must read back exactly
that name (no NFKC alias, no keyword, no mangling, no shadowing), and the .py export builds
the network ``netdsl.build`` builds for every name a spec may legally use."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netdsl
from netdsl.errors import BuildError, ModuleNameError, NetDSLError
from netdsl.ir.identifiers import RESERVED, identifier, plain, stable
from netdsl.torch import export
from netdsl.torch.layers import RUNTIME_CLASSES
from netdsl.torch.pyexport import idiomatic_source


def _exported(text: str) -> tuple[torch.nn.Module, torch.nn.Module, str]:
    """``netdsl.build``'s module and the ``.py`` export's, instantiated from its source."""
    built = netdsl.build(text, progress=False).eval()
    source = idiomatic_source(built.netdsl_graph)
    namespace: dict[str, object] = {"__name__": "netdsl_exported"}
    exec(compile(source, "<exported>", "exec"), namespace)  # noqa: S102 (our own output)
    return built, namespace["Model"]().eval(), source


def assert_export_agrees(text: str) -> torch.nn.Module:
    """The export has build's state_dict keys and shapes and computes build's outputs."""
    built, exported, source = _exported(text)
    mine, theirs = built.state_dict(), exported.state_dict()
    assert list(mine) == list(theirs), source
    assert all(mine[k].shape == theirs[k].shape for k in mine), source
    exported.load_state_dict(mine, strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(built(x), exported(x)), source
    return built


# --- the function itself -------------------------------------------------------------------

def test_plain_names_are_read_back_as_themselves():
    assert all(map(plain, ["conv1", "layer_scale", "x", "nn", "_x", "Bottleneck"]))
    for name in ["ｘ", "ﬁ", "None", "class", "match", "case", "type", "_", "__x", "__init__",
                 "0", "layer1.0", "a-b", ""]:
        assert not plain(name), name


def test_identifier_renames_into_plain_free_names():
    taken: set[str] = {"c"}
    names = [identifier(n, taken) for n in ["c", "_", "__k", "match", "nn", "None", "ｘ", "k"]]
    assert names == ["c2", "arg", "_k", "match_", "nn_", "None_", "arg2", "k"]
    assert all(plain(n) and n not in RESERVED for n in names)


def test_every_runtime_class_is_reserved():
    assert {c.__name__ for c in RUNTIME_CLASSES} <= RESERVED


# --- item 1: a label Python normalises would alias another module --------------------------

def test_a_label_python_reads_as_another_is_an_error_at_that_label():
    text = 'network n:\n    input 3x8x8\n    x: conv(4, 1x1)\n    "ｘ": conv(4, 1x1)\n'
    try:
        netdsl.compile(text)
    except ModuleNameError as error:
        assert (error.code, error.line, error.column) == ("E011", 4, 5)
        assert "NFKC" in str(error) and "\n  |     ^^^" in str(error)
    else:
        raise AssertionError("'ｘ' built, and its forward called 'x' twice")


# --- item 2: the .py export builds what build builds ---------------------------------------

def test_a_parameter_named_underscore_is_not_the_loop_variable():
    assert_export_agrees("block b(_) = conv(_, 1x1) -> conv(_, 1x1) -> conv(_, 1x1)\n"
                         "network n:\n    input 3x8x8\n    a: b(4)\n    c: b(8)\n")


def test_a_parameter_named_like_a_generated_class_does_not_hide_it():
    assert_export_agrees("block inner(Inner) = conv(Inner, 1x1) -> relu\n"
                         "block outer(Inner) = conv(Inner, 1x1) -> residual(inner(Inner))\n"
                         "network n:\n    input 3x8x8\n    a: outer(4)\n    b: outer(8)\n")


def test_a_parameter_named_like_a_runtime_class_does_not_hide_it():
    for name, op in [("LayerNorm2d", "layernorm2d"), ("FrozenBatchNorm2d", "frozen_bn")]:
        assert_export_agrees(f"block b({name}) = conv({name}, 1x1) -> {op}\n"
                             "network n:\n    input 3x8x8\n    a: b(4)\n    c: b(8)\n")


def test_a_dunder_parameter_is_not_mangled_at_the_call_site():
    # a third argument is passed by keyword (B(3, 4, __k=5)), which Python mangles in N
    assert_export_agrees("block b(c, __k) = conv(c, 1x1) -> conv(__k, 1x1) -> relu\n"
                         "network n:\n    input 3x8x8\n    a: b(4, 5)\n    c: b(6, 7)\n")


def test_a_parameter_named_like_a_literal_leaves_the_literal_alone():
    # the parameter is renamed False_; bias=False is a literal, not the parameter
    built = assert_export_agrees("block b(c, False) = conv(c, 1x1, bias=false) -> conv(False, 1x1)\n"
                                 "network n:\n    input 3x8x8\n    a: b(4, 5)\n    c: b(6, 7)\n")
    assert "a.0.bias" not in built.state_dict()


def test_a_dunder_label_is_not_mangled():
    built = assert_export_agrees("network n:\n    input 3x8x8\n    __x: conv(4, 1x1)\n")
    assert list(built.state_dict()) == ["__x.weight", "__x.bias"]


def test_a_network_named_like_a_runtime_class_or_a_keyword_builds():
    for name, layer in [("layer_norm2d", "layernorm2d"), ("frozen_batch_norm2d", "frozen_bn"),
                        ("stochastic_depth_", "stochastic_depth(0.5)"), ("none", "relu"),
                        ("true", "relu")]:
        assert_export_agrees(f"network {name}:\n    input 3x8x8\n"
                             f"    conv(4, 1x1) -> {layer}\n")


def test_a_keyword_label_is_refused_before_pt2_and_onnx(tmp_path):
    """torch.fx writes it as ``self.None``: the .pt2's .module() raised SyntaxError."""
    text = 'network n:\n    input 3x8x8\n    "None": conv(4, 1x1)\n'
    model = netdsl.build(text, progress=False)
    assert_export_agrees(text)  # netdsl's own code reaches it through getattr
    for suffix in (".pt2", ".onnx"):
        try:
            export.save(model, model.netdsl_graph, tmp_path / f"m{suffix}",
                        torch.randn(1, 3, 8, 8))
        except BuildError as error:
            assert (error.code, error.line, error.column) == ("E010", 3, 13)
            assert "keyword" in str(error)
        else:
            raise AssertionError(f"{suffix} written with a module torch.fx cannot name")
        assert not (tmp_path / f"m{suffix}").exists()


# --- every position, hostile names ---------------------------------------------------------

# names a spec may write unquoted that Python or the generated file treats specially
_NAMES = ["None", "True", "False", "class", "match", "case", "type", "_", "__k", "__init__", "self",
          "nn", "torch", "super", "range", "getattr", "isinstance", "x", "in_channels", "arg",
          "Model", "N", "B", "Inner", "Outer", "LayerNorm2d", "StochasticDepth",
          "FrozenBatchNorm2d", "layer_norm2d", "stochastic_depth", "none", "true", "inner",
          "c", "c2", "arg2"]
_LABELS = [*_NAMES, "ｘ", "ｃ", "ﬁ", "０", "0", "5", "a-b", "layer1.0", "None_", "__x__"]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(block=st.sampled_from(_NAMES), param=st.sampled_from(_NAMES),
       second=st.sampled_from(_NAMES), network=st.sampled_from(_NAMES),
       net_param=st.sampled_from(_NAMES), label=st.sampled_from(_LABELS),
       like_class=st.booleans())
def test_hostile_names_anywhere_build_what_the_export_builds(block, param, second, network,
                                                             net_param, label, like_class):
    if like_class:  # a parameter named like the class generated for its block
        param = block[:1].upper() + block[1:]
    text = (f"block {block}({param}, {second}) = conv({param}, 1x1) -> conv({param}, 1x1)"
            f' -> conv({param}, 1x1) -> relu -> "{label}": conv({second}, 1x1, bias=false)\n'
            f"block wrap({param}) = {block}({param}, {param} + 1) -> residual(conv({param} + 1, 1x1))\n"
            f"network {network}({net_param}=4):\n    input 3x8x8\n"
            f'    "{label}": wrap({net_param})\n    tail: wrap({net_param} + 2)\n')
    try:
        netdsl.compile(text)
    except NetDSLError as error:  # a coded diagnostic, never a crash
        assert error.code.startswith("E") and error.line is not None, error
        return
    assert stable(label), "a label Python normalises was accepted"
    built = assert_export_agrees(text)
    assert any(key.startswith(f"{label}.") for key in built.state_dict())
