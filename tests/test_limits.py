"""Resource limits: hostile or generated sizes end in a clear NetDSLError, fast, without
RecursionError and without allocating (issue 6). Each case must finish well under a second."""

from __future__ import annotations

import time
import tracemalloc

import pytest

import netdsl
from netdsl.errors import (
    SpecImportError,
    SpecLimitError,
    SpecRecursionError,
    SpecSyntaxError,
)
from netdsl.syntax.parser import MAX_NESTING

NET = "network t:\n    input 3x32x32\n    {}\n"
SECOND = 1.0
MEMORY = 200e6  # bytes


def _compile(text: str, memory: bool = False):
    """Compiles, checking the time (and with ``memory`` the peak Python memory, which tracing
    slows down); returns the graph or the NetDSLError."""
    if memory:
        tracemalloc.start()
    # CPU time of this thread, which compiles: neither other processes on a shared machine
    # nor other threads of this test worker count (process_time counts every thread: one CI
    # run measured 2.3 s for a case that takes 0.6 s alone)
    started = time.thread_time()
    try:
        result = netdsl.compile(text)
    except netdsl.NetDSLError as error:
        result = error
    finally:
        elapsed = time.thread_time() - started
        peak = tracemalloc.get_traced_memory()[1] if memory else 0
        tracemalloc.stop()
    assert elapsed < SECOND * (5 if memory else 1), f"took {elapsed:.2f} s of CPU"
    assert peak < MEMORY, f"peak {peak / 1e6:.0f} MB"
    return result


def _fails(text: str, kind: type = SpecLimitError, words: str = "", memory: bool = False):
    result = _compile(text, memory)
    assert isinstance(result, kind), result
    assert words in result.message
    assert result.line is not None and result.column is not None
    return result


LEVELS = [10, 50, 100, 1_000, 10_000, 100_000]


@pytest.mark.parametrize("opener", ["(", "residual("], ids=["parentheses", "calls"])
@pytest.mark.parametrize("n", LEVELS)
def test_nesting(n, opener):
    text = NET.format(opener * n + "relu" + ")" * n)
    if n < MAX_NESTING:
        assert _compile(text).output_shape == (3, 32, 32)
    else:
        _fails(text, words=f"nested more than {MAX_NESTING} levels")


@pytest.mark.parametrize("opener", ["(", "[", "relu(", "conv(16, "])
def test_unclosed_nesting(opener):
    error = _fails(NET.format(opener * 100_000), (SpecLimitError, SpecSyntaxError), memory=True)
    assert error.line == 3


@pytest.mark.parametrize("text", [
    "stack(relu, " + "[" * 100_000 + "1" + "]" * 100_000 + ")",  # lists
    "stack(relu, " + "-" * 100_000 + "1)",  # unary minus
    "stack(relu, " + "1 + " * 100_000 + "1)",  # a long sum nests to the left
    "relu if true else " * 100_000 + "relu",  # conditionals nest to the right
    "stack(relu, " + "2 ** " * 100_000 + "1)",  # so do powers
    "stack(relu, [1]" + "[0]" * 100_000 + ")",  # indexing
], ids=["lists", "minus", "sum", "cond", "power", "index"])
def test_other_nesting(text):
    _fails(NET.format(text), words="nested more than")


def test_number_with_5000_digits():
    _fails(NET.format("conv(" + "9" * 5_000 + ", 3x3)"), words="5000 digits", memory=True)
    _fails(NET.format("conv(16, 3x" + "9" * 5_000 + ")"), words="5000-digit")
    _fails(NET.format("dropout(0." + "9" * 5_000 + ")"), words="5,002 characters; at most 40")


@pytest.mark.parametrize("literal,words", [
    ("0.1" + "0" * 38, "41 characters; at most 40"),  # length, not digits, bounds a decimal
    ("1e-400", "below 2.2e-308"),  # would read as 0
    ("4e-320", "below 2.2e-308"),  # a subnormal double: digits lost
    ("1.0000000000000001e15", "beyond 1e+15"),
])
def test_a_decimal_literal_is_bounded_by_length_and_value(literal, words):
    _fails(NET.format(f"scale({literal})"), words=words)


@pytest.mark.parametrize("literal", ["1.7139588594436646", "0.1" + "0" * 37, "2.2250738585072014e-308",
                                     "0.0e-999", "1e15", "0.30000000000000004"])
def test_a_decimal_literal_keeps_every_digit_of_a_double(literal):
    graph = _compile(NET.format(f"scale({literal})"))
    assert graph.nodes[1].attrs["factor"] == float(literal)


def test_arithmetic_beyond_limits():
    _fails(NET.format("stack(relu, 10 ** 64 ** 64)"))
    _fails(NET.format("scale(1e15 ** 64)"))
    _fails(NET.format("stack(relu, 99999999 * 99999999 * 99999999)"))


def test_block_calling_itself():
    _fails("block tower(c) = conv(c, 3x3) -> tower(c)\n" + NET.format("tower(16)"),
           SpecRecursionError, "calls itself")
    _fails("block ping(c) = pong(c)\nblock pong(c) = ping(c)\n" + NET.format("ping(16)"),
           SpecRecursionError, "calls itself")


def test_a_block_may_take_its_own_output_as_argument():
    """twice(twice(x)) is not recursion: the inner call is an argument written by the caller."""
    graph = _compile("block twice(x) = x -> x\n" + NET.format("twice(twice(conv3x3(4)))"))
    assert len(graph.nodes) == 5


def test_stack_of_a_billion():
    _fails(NET.format("stack(relu, 10**9)"), words="1,000,000,000 copies", memory=True)
    _fails(NET.format("stack(stack(stack(relu, 1000), 1000), 1000)"), words="exceeds the limit")


def test_blocks_nested_too_deep():
    blocks = "".join(f"block b{i} = b{i - 1}\n" for i in range(1, 1000))
    _fails(blocks + "block b0 = relu\n" + NET.format("b999"), words="nested more than")


def test_import_cycle(tmp_path):
    (tmp_path / "a.net").write_text('import "b.net"\n' + NET.format("relu"))
    (tmp_path / "b.net").write_text('import "a.net"\nblock unit = relu\n')
    error = _fails(str(tmp_path / "a.net"), SpecImportError, "import cycle")
    assert "a.net -> b.net -> a.net" in error.message


def test_import_chain_too_deep(tmp_path):
    for i in range(100):
        (tmp_path / f"m{i}.net").write_text(f'import "m{i + 1}.net"\nblock b{i} = relu\n')
    (tmp_path / "m100.net").write_text("block b100 = relu\n")
    (tmp_path / "main.net").write_text('import "m0.net"\n' + NET.format("b0"))
    _fails(str(tmp_path / "main.net"), SpecImportError, "nested more than")


def test_a_million_channels_compile_without_allocating():
    graph = _compile(NET.format("conv(1000000, 3x3) -> conv(1000000, 3x3) -> gap -> flatten "
                                "-> fc(1000000)"), memory=True)
    assert graph.output_shape == (1_000_000,)


def test_long_but_legal_network():
    graph = _compile(NET.format("stack(conv3x3(8) -> relu, 2000)"))
    assert len(graph.nodes) == 4001


def test_huge_input_sizes_are_only_numbers():
    """Shapes are integers: a 10^15-pixel input is checked as fast as a small one (the
    projection shortcut's stride is computed, not searched for)."""
    text = NET.replace("3x32x32", "3x999999999999999x999999999999999").format(
        "conv(16, 3x3, stride=2) -> residual(conv(32, 3x3, stride=2, pad=1), shortcut=project) "
        "-> gap -> flatten -> fc(10)")
    assert _compile(text).output_shape == (10,)
    assert netdsl.compile("specs/resnet18.net", input=(3, 10**15, 10**15)).output_shape == (1000,)
