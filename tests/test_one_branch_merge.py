"""A merge of one branch (issue 26, item 7): ``add(conv(8, 1x1))`` or ``concat(x)`` merged
nothing and compiled silently to the branch alone, usually a forgotten ``identity``. It is
an argument error (E003) with the caret on the merge."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import netdsl
from netdsl.errors import SpecArgumentError
from netdsl.importer import from_module


@pytest.mark.parametrize(("line", "column", "merge"), [
    ("conv(8, 1x1) -> add(conv(8, 1x1))", 21, "add"),
    ("conv(8, 1x1) -> concat(identity)", 21, "concat"),
    ("mul(sigmoid) -> relu", 5, "mul"),
    ("x = conv(8, 1x1)\n    concat(x) -> relu", 5, "concat"),
    ("residual(add(relu) -> conv(3, 1x1))", 14, "add"),
])
def test_a_merge_of_one_branch_is_an_argument_error_at_the_merge(line, column, merge):
    text = f"network t:\n    input 3x8x8\n    {line}\n"
    with pytest.raises(SpecArgumentError) as caught:
        netdsl.compile(text)
    error = caught.value
    assert error.code == "E003" and error.message == f"{merge} needs at least 2 branches, found 1"
    assert (error.line, error.column) == (text.count("\n"), column)
    assert error.span.end_column - error.span.column > len(merge)  # the whole merge, not its name
    assert f"{merge}(identity, ...)" in error.notes[0]


def test_a_merge_of_one_branch_inside_a_block_points_at_the_block_and_its_call():
    text = ("block gate(c) = conv(c, 1x1) -> mul(sigmoid)\n"
            "network t:\n    input 3x8x8\n    gate(3) -> relu\n")
    with pytest.raises(SpecArgumentError) as caught:
        netdsl.compile(text)
    assert (caught.value.line, caught.value.column) == (1, 33)
    assert any("called at" in note and ":4:5" in note for note in caught.value.notes)


class _CatOfOne(nn.Module):
    """``torch.cat`` of a single tensor, as code joining a list of branches of length one has."""

    def __init__(self):
        super().__init__()
        self.c, self.d = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.d(torch.cat([self.c(x)], 1))


def test_an_imported_cat_of_one_tensor_is_that_tensor():
    model = _CatOfOne().eval()
    text = from_module(model, (3, 8, 8))
    assert "concat" not in text
    net = netdsl.build(text).eval()
    net.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(net(x), model(x))
