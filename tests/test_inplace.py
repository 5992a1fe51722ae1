"""An in-place layer never writes into a tensor that something else still reads, also through
a view. Found by the differential test (issue 12): after ``chunk``, ``crop``,
``stochastic_depth``, ``shuffle(1)`` or ``permute`` (views of their input, as torch runs them)
a ReLU ran in place and overwrote the residual shortcut's input, or the caller's tensor."""

from __future__ import annotations

import pytest
import torch

import netdsl

# (a merge of one branch, add(identity), was one too: it is refused now, issue 26)
VIEWS = ["chunk(0, parts=1)", "crop(4x4)", "stochastic_depth(0.1)", "shuffle(1)", "shuffle(2)",
         "permute([0, 1, 2])", "flatten -> relu -> fc(32) -> relu -> dropout -> fc(32)",
         "dropout", "adaptive_avgpool(4x4)"]


@pytest.mark.parametrize("view", VIEWS)
def test_inplace_relu_after_a_view_keeps_the_shortcut(view):
    shortcut = ", shortcut=flatten" if "fc" in view else ""
    spec = f"network t:\n    input 2x4x4\n    c: conv(2, 1x1) -> residual({view} -> relu{shortcut})\n"
    model = netdsl.build(spec).eval()
    x = torch.randn(1, 2, 4, 4)
    with torch.no_grad():
        c = model.c(x)
        body = netdsl.build(spec.replace("residual(", "(").replace(shortcut, ""))
        body.load_state_dict(model.state_dict())
        expected = body.eval()(x) + (c.flatten(1) if "fc" in view else c)
        assert torch.equal(model(x), expected)


@pytest.mark.parametrize("view", ["shuffle(1)", "permute([0, 1, 2])", "crop(4x4)",
                                  "chunk(0, parts=1)", "stochastic_depth(0.5)"])
def test_inplace_relu_after_a_view_keeps_the_callers_input(view):
    model = netdsl.build(f"network t:\n    input 2x4x4\n    {view} -> relu\n").eval()
    x = torch.randn(1, 2, 4, 4)
    given = x.clone()
    with torch.no_grad():
        model(x)
    assert torch.equal(x, given)
