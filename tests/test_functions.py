"""Functions of numbers in expressions (issue 23, part 3): each one against Python's math and
builtins on random ints and floats, its diagnostics, and the places a language feature must
reach (docs, fmt, the .py export, the language server); make_divisible against torchvision
and timm."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netdsl
from netdsl import limits
from netdsl.errors import NetDSLError
from netdsl.lower.evaluate import evaluate
from netdsl.lower.functions import FUNCTIONS
from netdsl.lower.loader import prelude
from netdsl.lower.values import Env
from netdsl.syntax.fmt import format_text
from netdsl.syntax.parser import parse_expression

ROOT = Path(__file__).parent.parent
BIG = limits.MAX_NUMBER - 1  # the largest whole number a literal writes (15 digits)

ints = st.integers(-BIG, BIG)
floats = st.floats(-1e15, 1e15, allow_nan=False, allow_subnormal=False).filter(
    lambda x: x == 0 or abs(x) >= limits.MIN_FLOAT)
numbers = st.one_of(ints, floats, st.integers(-300, 300))


def value(text: str, **names) -> object:
    """``text`` evaluated as a spec value (names like parameters)."""
    return evaluate(parse_expression(text), Env(dict(names), prelude()))


def literal(x: int | float) -> str:
    """``x`` as a spec writes it: repr gives the shortest text that reads back exactly."""
    return repr(x)


def same(a: object, b: object) -> bool:
    """Equal, of the same type, with the same sign of zero."""
    return type(a) is type(b) and repr(a) == repr(b)


def error(text: str, **names) -> NetDSLError:
    with pytest.raises(NetDSLError) as caught:
        value(text, **names)
    return caught.value


@settings(max_examples=300, deadline=None)
@given(x=numbers)
def test_one_argument_functions_are_pythons(x):
    for name, python in (("int", int), ("round", round), ("ceil", math.ceil),
                         ("floor", math.floor), ("abs", abs)):
        assert same(value(f"{name}({literal(x)})"), python(x)), (name, x)
    if x >= 0:
        assert same(value(f"sqrt({literal(x)})"), math.sqrt(x))
    if x > 0:
        assert same(value(f"log2({literal(x)})"), math.log2(x))


@settings(max_examples=300, deadline=None)
@given(x=numbers, n=st.integers(-20, 20))
def test_round_with_ndigits_is_pythons(x, n):
    assert same(value(f"round({literal(x)}, {n})"), round(x, n))
    assert same(value(f"round({literal(x)}, ndigits={n})"), round(x, n))


@settings(deadline=None)  # the first call may read the grammar
@given(x=numbers, n=st.integers(400, BIG))
def test_round_with_huge_ndigits_is_pythons_without_building_huge_powers(x, n):
    assert same(value(f"round({literal(x)}, {n})"), round(x, n))
    # Python's own round(int, -n) computes 10**n: compare with an n it can afford
    assert same(value(f"round({literal(x)}, -{n})"), round(x, -400))


@settings(max_examples=200, deadline=None)
@given(xs=st.lists(numbers, min_size=1, max_size=6))
def test_min_and_max_are_pythons_on_numbers_and_lists(xs):
    items = ", ".join(map(literal, xs))
    for name, python in (("min", min), ("max", max)):
        assert same(value(f"{name}([{items}])"), python(xs))
        if len(xs) >= 2:  # the first of equal ones wins, as in Python: min(1, 1.0) is 1
            assert same(value(f"{name}({items})"), python(*xs))


def test_round_is_bankers_rounding():
    assert [value(f"round({x})") for x in ("0.5", "1.5", "2.5", "-0.5", "-1.5")] == [0, 2, 2, 0, -2]
    assert same(value("round(2.675, 2)"), 2.67) and same(value("round(125, -1)"), 120)
    assert same(value("round(2.5, none)"), 2)


def test_whole_results_are_ints_so_they_count_channels():
    for text in ("int(20.7)", "ceil(2.1)", "floor(2.9)", "round(2.6)", "make_divisible(20.5, 8)"):
        assert type(value(text)) is int, text
    graph = netdsl.compile("network t:\n    input 3x8x8\n    conv(int(40 * 0.5), 3x3)\n")
    assert graph.output_shape == (20, 6, 6)  # once 'out must be a whole number ... 20.0'


@pytest.mark.parametrize("text,code,column,words", [
    ("sqrt(-4)", "E004", 1, "sqrt of a negative number (-4) has no real value"),
    ("1 + log2(0)", "E004", 5, "log2 of 0 has no value"),
    ("log2(-0.5)", "E004", 1, "log2 of -0.5 has no value"),
    ("round(2.5, 1.5)", "E004", 12, "ndigits must be a whole number"),
    ("int(true)", "E004", 5, "expected a number, found true"),
    ("ceil([1, 2])", "E004", 6, "expected a number, found a list of 2"),
    ("abs(relu)", "E004", 5, "expected a number, found the layer 'relu'"),
    ("min([])", "E004", 5, "empty list"),
    ("max([1, relu])", "E004", 5, "expected a number"),
    ("make_divisible(10, 0)", "E004", 20, "divisor must be a whole number of at least 1"),
    ("make_divisible(10, 2.5)", "E004", 20, "divisor must be a whole number"),
    ("int(1, 2)", "E003", 8, "int takes at most 1 argument, got 2"),
    ("sqrt()", "E003", 1, "sqrt needs a value for 'x'"),
    ("round(1.5, digits=1)", "E003", 12, "round has no parameter 'digits'"),
    ("min(3)", "E003", 5, "min takes two numbers or more, or a list"),
    ("max()", "E003", 1, "max takes two numbers or more, or a list, got nothing"),
    ("min(1, 2, key=3)", "E003", 11, "min takes no keyword arguments"),
    ("make_divisible(10)", "E003", 1, "needs a value for 'divisor'"),
    ("rund(2.5)", "E002", 1, "unknown name 'rund'"),
    ("1 + make_divisible(999999999999999, 600000000000000)", "E007", 5, "beyond 1e+15"),
    ("ceil(1e15) + 1", "E007", 1, "beyond 1e+15"),
])
def test_wrong_calls_are_coded_diagnostics_at_the_right_column(text, code, column, words):
    found = error(text)
    assert (found.code, found.column) == (code, column), found
    assert words in found.message


def test_unknown_function_suggests_the_right_one():
    assert error("make_divisable(10, 8)").notes == ("did you mean 'make_divisible'?",)


@pytest.mark.parametrize("huge", [10**400, -(10**16), 1e300, float("inf"), float("nan")],
                         ids=["10**400", "-10**16", "1e300", "inf", "nan"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_numbers_beyond_the_limit_are_coded_errors_not_overflow(name, huge):
    """Only a Python caller can hand a function such a number (every literal, override and
    result is bounded): it is E007 at the argument, never OverflowError or ValueError."""
    text = {"min": "min(x, 1)", "max": "max(1, x)", "make_divisible": "make_divisible(8 * 1, x)",
            "round": "round(x, 2)"}.get(name, f"{name}(x)")
    found = error(text, x=huge)
    assert found.code == "E007" and found.column == text.rindex("x") + 1


@settings(max_examples=100, deadline=None)
@given(huge=st.one_of(st.integers(min_value=limits.MAX_NUMBER + 1),
                      st.integers(max_value=-limits.MAX_NUMBER - 1),
                      st.integers(10**300, 10**4000)))
def test_huge_ints_keep_the_integer_limit_in_every_function(huge):
    for name in FUNCTIONS:
        text = f"{name}(x, 1)" if name in ("min", "max", "make_divisible") else f"{name}(x)"
        assert error(text, x=huge).code == "E007", name


@settings(max_examples=300, deadline=None)
@given(x=numbers, y=numbers)
def test_every_function_gives_a_number_or_a_coded_error(x, y):
    for name, fn in FUNCTIONS.items():
        args = [x, y, y][:max(1, len([p for p in fn.params if p[1] is None]) or 2)]
        text = f"{name}({', '.join(map(literal, args))})"
        try:
            result = value(text)
        except NetDSLError as e:
            assert e.code in ("E004", "E007"), (text, e)
        else:
            assert isinstance(result, int | float) and abs(result) <= limits.MAX_NUMBER


# make_divisible: torchvision's _make_divisible and timm's make_divisible ------------------

@settings(max_examples=300, deadline=None)
@given(v=st.one_of(st.floats(0, 1e6, allow_subnormal=False), st.integers(0, 10**6)),
       divisor=st.integers(1, 256), min_value=st.one_of(st.none(), st.integers(0, 512)))
def test_make_divisible_is_torchvisions(v, divisor, min_value):
    from torchvision.models._utils import _make_divisible

    given_min = "" if min_value is None else f", min_value={min_value}"
    assert same(value(f"make_divisible({literal(v)}, {divisor}{given_min})"),
                _make_divisible(v, divisor, min_value))


@settings(max_examples=300, deadline=None)
@given(v=st.floats(0, 1e6, allow_subnormal=False), divisor=st.integers(1, 256),
       min_value=st.one_of(st.none(), st.integers(1, 512)),
       round_limit=st.floats(0, 1, allow_subnormal=False))
def test_make_divisible_with_round_limit_is_timms(v, divisor, min_value, round_limit):
    from timm.layers.helpers import make_divisible

    text = f"make_divisible({literal(v)}, {divisor}, {'none' if min_value is None else min_value}, " \
        f"round_limit={literal(round_limit)})"
    assert same(value(text), make_divisible(v, divisor, min_value, round_limit))


def test_make_divisible_keeps_an_explicit_zero_minimum_as_torchvision_does():
    assert value("make_divisible(0, 8, min_value=0)") == 0  # timm's `or` would give 8
    assert value("make_divisible(0, 8)") == 8
    assert value("make_divisible(3, 8, min_value=0)") == 8  # 0 is below 0.9 * 3


# decimals of 17 digits -----------------------------------------------------------------

def test_a_double_is_written_with_all_its_digits():
    """timm's gamma for scaled activations, once written 1.71395885944366 + 4.6e-15."""
    assert value("1.7139588594436646") == 1.7139588594436646
    graph = netdsl.compile("network t:\n    input 3x8x8\n    scale(1.7139588594436646)\n")
    assert graph.nodes[1].attrs["factor"] == 1.7139588594436646


@pytest.mark.parametrize("override,ok", [
    ("eps=1.7139588594436646", True), ("eps=0.30000000000000004", True),
    ("eps=1e-400", False), ("eps=4e-320", False), ("eps=0." + "0" * 5_000 + "1", False),
    ("eps=1." + "0" * 5_000, False), ("eps=[1e-5,1e-400]", False),
    ("width=" + "9" * 5_000, False),  # Hydra's int() cannot read it: a ValueError once
], ids=lambda v: v if isinstance(v, bool) or len(v) < 40 else f"{v[:20]}...{len(v)}")
def test_overrides_follow_the_literals_rule(tmp_path, capsys, override, ok):
    from netdsl.cli import main

    spec = tmp_path / "t.net"
    spec.write_text("network t(width=4, eps=1e-5):\n    input 3x8x8\n    conv(width, 3x3) -> bn(eps=eps)\n")
    assert main(["check", str(spec), override]) == (0 if ok else 1)
    err = capsys.readouterr().err
    assert ok or (f"{spec}:1:1: error: override " in err and "internal error" not in err), err


@pytest.mark.parametrize("given_value,words", [
    (1e-320, "below 2.2e-308"), (10**5000, "beyond 1e+15"), ((3, 10**5000), "beyond 1e+15"),
], ids=["subnormal", "5000 digits", "in a list"])
def test_api_overrides_follow_the_literals_rule(given_value, words):
    with pytest.raises(NetDSLError, match=re.escape(words)) as caught:
        netdsl.compile("network t(eps=1e-5):\n    input 3x8x8\n    bn(eps=eps)\n", eps=given_value)
    assert caught.value.code == "E007"


def test_an_override_may_be_a_formula():
    graph = netdsl.compile("network t(width=4):\n    input 3x8x8\n    conv(width, 3x3)\n",
                           width="make_divisible(0.75 * 64, 8)")
    assert graph.output_shape[0] == 48


# everywhere a language feature appears -----------------------------------------------

SLIM = """network slim(c=32, width=0.75, num_classes=10):
    input 3x32x32
    stem: conv(make_divisible(c * width, 8), 3x3, stride=2, pad=1, bias=false) -> bn -> relu
    conv(int(c * 1.5), 3x3, pad=1) -> bn -> relu
    conv(round(c * width * 2.5), 1x1) -> relu
    conv(max(16, ceil(c / 3)), 3x3, groups=min(2, floor(sqrt(c)))) -> relu
    gap -> flatten -> fc(num_classes * int(log2(abs(-4))))
"""


def _reference_slim(c=32, width=0.75, num_classes=10):
    """The same network written in PyTorch with Python's math, channel by channel."""
    from torch import nn
    from torchvision.models._utils import _make_divisible

    stem = _make_divisible(c * width, 8)
    a, b = int(c * 1.5), round(c * width * 2.5)
    d = max(16, math.ceil(c / 3))
    return nn.Sequential(
        nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(),
        nn.Conv2d(stem, a, 3, padding=1), nn.BatchNorm2d(a), nn.ReLU(),
        nn.Conv2d(a, b, 1), nn.ReLU(),
        nn.Conv2d(b, d, 3, groups=min(2, math.floor(math.sqrt(c)))), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(d, num_classes * int(math.log2(4))))


@pytest.mark.parametrize("c,width", [(32, 0.75), (24, 0.5), (40, 1.3)])
def test_a_network_of_formulas_has_the_parameters_of_the_same_torch_module(c, width):
    ours = netdsl.build(SLIM, c=c, width=width)
    reference = _reference_slim(c, width)
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in reference.parameters())
    assert [tuple(p.shape) for p in ours.parameters()] == \
        [tuple(p.shape) for p in reference.parameters()]


def test_fmt_lays_calls_out_and_keeps_the_network():
    messy = SLIM.replace("make_divisible(c * width, 8)", "make_divisible( c*width ,8 )") \
        .replace("min(2, floor(sqrt(c)))", "min( 2,floor( sqrt (c)) )")
    assert format_text(messy) == SLIM
    assert format_text(format_text(messy)) == format_text(messy)
    assert [(n.op, n.name, n.attrs, n.shape) for n in netdsl.compile(messy).nodes] == \
        [(n.op, n.name, n.attrs, n.shape) for n in netdsl.compile(SLIM).nodes]


def test_the_py_export_writes_the_evaluated_numbers(tmp_path):
    import torch

    from netdsl.torch.pyexport import idiomatic_source

    graph = netdsl.compile(SLIM)
    source = idiomatic_source(graph)
    assert "make_divisible" not in source and "log2" not in source
    namespace: dict = {}
    exec(compile(source, "slim.py", "exec"), namespace)  # our own output, of our own spec
    exported, built = namespace["Model"]().eval(), netdsl.build(SLIM).eval()
    exported.load_state_dict(built.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(exported(x), built(x))


def test_the_language_server_completes_and_explains_functions():
    from lsprotocol import types as lsp

    from netdsl.lsp.completion import complete
    from netdsl.lsp.hover import signature
    from netdsl.lsp.locate import resolve

    before = "network t:\n    input 3x8x8\n    conv(ro"
    items = {i.label: i for i in complete(before, None, None, 3, 11).items}
    for name in FUNCTIONS:
        assert items[name].kind == lsp.CompletionItemKind.Function
        assert "function of numbers" in items[name].detail
    inside = {i.label: i.detail for i in complete("network t:\n    input 3x8x8\n    conv(round(2.5, ",
                                                  None, None, 3, 22).items}
    assert inside["ndigits="] == "ndigits=none"
    target = resolve("make_divisible", [], prelude())
    assert target.kind == "function"
    assert signature(target).startswith("**make_divisible(v, divisor, min_value=none, "
                                        "round_limit=0.9)** · function of numbers")


def test_the_documented_examples_give_what_the_docs_say():
    doc = (ROOT / "docs" / "language.md").read_text()
    section = doc[doc.index("## Functions"):doc.index("## Graphs")]
    claims = re.findall(r"`([a-z_0-9]+\([^`]*\))` is (-?[0-9.]+)", section)
    assert len(claims) >= 10
    for text, expected in claims:
        assert value(text, c=64) == float(expected), text
    example = section[section.index("```\n") + 4:section.index("\n```", section.index("```\n"))]
    assert netdsl.compile(example + "\n").output_shape == (max(10, math.ceil(1000 * 0.75 / 8)),)


def test_functions_cannot_hide_behind_plugin_ops():
    from netdsl.errors import RegistrationError
    from netdsl.ir.ops import OPS, register_op

    with pytest.raises(RegistrationError, match="not reserved"):
        register_op(__import__("dataclasses").replace(OPS["relu"], name="round"))
    assert "round" not in OPS


def test_an_imported_module_keeps_every_digit_of_its_floats():
    """`netdsl import` writes a float's repr: 17 digits once made a spec it could not read."""
    from torch import nn

    from netdsl.importer import from_module

    module = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, eps=0.1 + 0.2),
                           nn.LeakyReLU(1.7139588594436646))
    text = from_module(module, (3, 8, 8))
    assert "eps=0.30000000000000004" in text
    attrs = [dict(n.attrs) for n in netdsl.compile(text).nodes]
    assert attrs[2]["eps"] == 0.1 + 0.2 and attrs[3]["slope"] == 1.7139588594436646


@pytest.mark.parametrize("layer,found", [("round(2.5)", "expected a layer, found the number 2"),
                                         ("round", "expected a layer, found the function 'round'")])
def test_a_function_is_not_a_layer(layer, found):
    with pytest.raises(NetDSLError, match=re.escape(found)) as caught:
        netdsl.compile(f"network t:\n    input 3x8x8\n    relu -> {layer}\n")
    assert (caught.value.code, caught.value.line, caught.value.column) == ("E004", 3, 13)
