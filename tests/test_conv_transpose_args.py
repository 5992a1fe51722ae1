"""conv_transpose: `check` accepts a call iff torch builds the layer and it runs (issue 26,
item 4). torch refuses an output padding not below the stride or the dilation on an axis;
netdsl refuses it at check (E005, the caret under the value), and also a map of 0 rows,
which torch's transposed convolution gives silently."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netdsl
from netdsl.errors import NetDSLError, SpecShapeError

PAIR = st.tuples(st.integers(1, 3), st.integers(1, 3))


def _size(pair) -> str:
    return f"{pair[0]}x{pair[1]}"


@st.composite
def calls(draw):
    groups = draw(st.integers(1, 3))
    args = {"out": draw(st.integers(1, 3)) * draw(st.sampled_from([1, groups])),
            "kernel": draw(PAIR), "stride": draw(PAIR), "dilation": draw(PAIR),
            "pad": draw(st.tuples(st.integers(0, 3), st.integers(0, 3))),
            "output_pad": draw(st.tuples(st.integers(0, 3), st.integers(0, 3))), "groups": groups}
    channels = draw(st.integers(1, 3)) * draw(st.sampled_from([1, groups]))
    return args, (channels, draw(st.integers(1, 6)), draw(st.integers(1, 6)))


def _spec(args: dict, shape: tuple) -> str:
    text = ", ".join(f"{k}={_size(v) if isinstance(v, tuple) else v}" for k, v in args.items())
    return f"network t:\n    input {_size(shape[:1] + shape[1:2])}x{shape[2]}\n" \
           f"    conv_transpose({text})\n"


def _torch_output(args: dict, shape: tuple) -> tuple | None:
    """The output shape torch gives, None where it refuses the layer or gives no values."""
    try:
        layer = torch.nn.ConvTranspose2d(
            shape[0], args["out"], args["kernel"], stride=args["stride"], padding=args["pad"],
            output_padding=args["output_pad"], dilation=args["dilation"], groups=args["groups"])
        out = layer(torch.zeros(1, *shape))
    except (RuntimeError, ValueError):
        return None
    return tuple(out.shape[1:]) if out.numel() else None


@settings(max_examples=150, deadline=None)
@given(call=calls())
def test_check_accepts_exactly_what_torch_runs(call):
    args, shape = call
    wanted = _torch_output(args, shape)
    try:
        graph = netdsl.compile(_spec(args, shape))
    except SpecShapeError:
        assert wanted is None, f"check refused what torch runs: {args} on {shape}"
        return
    assert graph.nodes[-1].shape == wanted, f"{args} on {shape}"


@pytest.mark.parametrize(("call", "column", "found"), [
    ("conv_transpose(4, 3x3, stride=1, output_pad=2)", 49, "output_pad=2"),
    ("conv_transpose(4, 3x3, stride=2, output_pad=2x1)", 49, "output_pad=2x1"),
    ("conv_transpose(4, 3x3, 1, 0, 1, 2x1)", 34, "output_pad=1"),  # below the height's dilation only
    ("conv_transpose(4, 3x3, output_pad=1, stride=1, dilation=1)", 39, "output_pad=1"),
])
def test_output_pad_not_below_stride_or_dilation_is_refused_at_its_value(call, column, found):
    with pytest.raises(SpecShapeError) as caught:
        netdsl.compile(f"network t:\n    input 3x8x8\n    {call}\n")
    error = caught.value
    assert (error.code, error.line, error.column, error.found) == ("E005", 3, column, found)
    assert "must be smaller than its stride" in error.message


def test_output_pad_below_the_dilation_is_taken():
    graph = netdsl.compile("network t:\n    input 3x8x8\n    conv_transpose(4, 3x3, output_pad=1, "
                           "dilation=2)\n")
    assert graph.nodes[-1].shape == (4, 13, 13)


def test_an_output_pad_passed_through_a_block_points_at_its_use():
    with pytest.raises(NetDSLError) as caught:
        netdsl.compile("block up(c, o) = conv_transpose(c, 2x2, stride=2, output_pad=o)\n"
                       "network t:\n    input 3x8x8\n    up(4, 1) -> up(4, 2)\n")
    assert (caught.value.line, caught.value.column) == (1, 62)
    assert any("called at" in note and ":4:17" in note for note in caught.value.notes)
