"""Builtins declare signatures (one binder for ops, blocks and builtins) and are hygienic."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.errors import SpecArgumentError
from netdsl.ir.graph import to_json

INCEPTION = "i: inception(1x1:8, 3x3:r4->8, 5x5:r2->4, pool:4)"


def net(body: str, header: str = "", shape: str = "16x8x8") -> str:
    lines = "\n".join("    " + line for line in body.splitlines())
    return f"{header}\nnetwork t:\n    input {shape}\n{lines}\n"


def layers(text: str) -> list[tuple]:
    """What a graph computes: every node's op, attributes, inputs and module name."""
    return [(n["op"], n["attrs"], n["inputs"], n["name"], n["shape"])
            for n in to_json(netdsl.compile(text))["nodes"]]


@pytest.mark.parametrize("user_block", [
    "block maxpool(k, stride=1, pad=0) = conv(3, 1x1)",
    "block avgpool(k, stride=1, pad=0) = conv(3, 1x1)",
    "block conv_relu(c, k, stride=1, pad=0) = conv(c, k, pad=pad) -> bn -> relu",
])
def test_a_users_block_named_like_inceptions_parts_leaves_inception_unchanged(user_block):
    assert layers(net(INCEPTION, user_block)) == layers(net(INCEPTION))


def test_inception_still_takes_a_users_unit_when_asked():
    header = "block unit(c, k, stride=1, pad=0) = conv(c, k, pad=pad) -> bn -> relu"
    ops = [op for op, *_ in layers(net("inception(1x1:8, unit=unit)", header))]
    assert ops == ["input", "conv", "bn", "relu", "concat"]


@pytest.mark.parametrize(("call", "message", "note"), [
    ("stack(relu, 2, n=3)", "'n' is given both by position and by name", None),
    ("stack(relu)", "stack needs a value for 'n'",
     "stack(layers, n, names=none, start=1, index=none)"),
    ('stack(relu, 2, "l{}", 1, j, 5)', "stack takes at most 5 arguments, got 6",
     "stack(layers, n, names, start, index)"),
    ("stack(relu, count=2)", "stack has no parameter 'count'",
     "stack takes: layers, n, names, start, index"),
    ("residual(relu, shortcutt=project)", "residual has no parameter 'shortcutt'",
     "did you mean 'shortcut'?"),
    ("residual()", "residual needs a value for 'body'",
     "residual(body, shortcut=identity, scale=1)"),
    ("aux(relu, wen=false)", "aux has no parameter 'wen'", "did you mean 'when'?"),
    ("concat()", "concat needs at least 2 branches, found 0", "concat(branches...)"),
    ("inception(1x1:4, unitt=conv_relu)", "inception has no parameter 'unitt'",
     "did you mean 'unit'?"),
])
def test_builtin_calls_get_the_binders_diagnostics(call, message, note):
    with pytest.raises(SpecArgumentError) as caught:
        netdsl.compile(net(call))
    assert caught.value.message == message
    if note is not None:
        assert caught.value.notes == (note,)
