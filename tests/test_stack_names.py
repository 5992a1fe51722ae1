"""Issue 12, item 3 (the part that is not naming): ``stack(c: conv(8, 1x1), 2)`` passed check
and failed at build with an internal error. Why: ``stack`` opens no scope, so both copies of
the labelled conv were elements of the same scope, both named ``c``; the emitter registered
the first and called it twice (a 3-channel conv applied to 8 channels). The naming fix (two
modules of one name in a scope are E011 at check time) is the graphs engineer's; this is the
regression test for the shapes of the bug found here."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.errors import ModuleNameError, SpecNameError, SpecTypeError

CASES = {
    "label_in_stack": "stack(c: conv(8, 1x1), 2)",
    "two_unlabelled_inceptions": "inception(1x1:4, pool) -> inception(1x1:4, pool)",
}


@pytest.mark.parametrize("layers", CASES.values(), ids=CASES.keys())
def test_duplicate_name_from_a_repeated_label_is_a_check_error(layers):
    with pytest.raises(ModuleNameError) as caught:
        netdsl.compile(f"network t:\n    input 3x8x8\n    {layers}\n")
    assert caught.value.code == "E011"


def test_label_in_stack_points_at_the_stack():
    with pytest.raises(ModuleNameError) as caught:
        netdsl.compile("network t:\n    input 3x8x8\n    stack(c: conv(8, 1x1), 2)\n")
    assert caught.value.line == 3


def test_labelled_copies_build_under_their_own_scopes():
    model = netdsl.build("block unit(c) = c1: conv(c, 1x1)\n"
                         "network t:\n    input 3x8x8\n    stack(unit(8), 2)\n")
    assert [k for k in model.state_dict() if k.endswith("weight")] == ["0.c1.weight", "1.c1.weight"]


def test_stack_index_gives_each_copy_its_position():
    """index=j: the copies read their position (ConvNeXt's stochastic depth, block by block)."""
    text = ("network n:\n    input 3x8x8\n"
            "    stack(conv(4 + 2 * j, 1x1) -> stochastic_depth(0.1 * j), 3, index=j)\n")
    graph = netdsl.compile(text)
    assert [n.shape[0] for n in graph.nodes if n.op == "conv"] == [4, 6, 8]
    assert [n.attrs["p"] for n in graph.nodes if n.op == "stochastic_depth"] == [0.0, 0.1, 0.2]


@pytest.mark.parametrize(("call", "error", "message"), [
    ("stack(relu, 2, index=1)", SpecTypeError, "a new name for the copy's position"),
    ("stack(relu, 2, index=relu)", SpecNameError, "would hide"),
])
def test_stack_index_is_a_new_name(call, error, message):
    with pytest.raises(error, match=message):
        netdsl.compile(f"network n:\n    input 3x8x8\n    {call}\n")
