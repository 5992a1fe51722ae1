"""Weights are loaded completely or not at all (issue 26, item 3): a value without plain
values (on the meta device, sparse, nested, quantised) is refused with E010 naming its key
before any tensor is copied, so the module keeps every tensor it had."""

from __future__ import annotations

import pytest
import torch

import netdsl
from netdsl.errors import BuildError
from netdsl.torch import export

# torch warns of the prototype, beta and deprecated tensor forms built here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SPEC = "network t:\n    input 1x4x4\n    a: conv(2, 1x1) -> b: bn -> c: conv(3, 1x1)\n"

# How the last tensor of the state_dict is spoilt, and what the error says of it: the right
# shape and kind of number each time, so only its form keeps it from being copied.
SPOILT = {
    "meta": (lambda t: torch.empty(t.shape, device="meta"), "on the meta device \\(no values\\): c.bias"),
    "sparse_coo": (lambda t: t.to_sparse(), "not a dense tensor: c.bias \\(sparse_coo\\)"),
    "nested": (lambda t: torch.nested.nested_tensor([t]), "not a dense tensor: c.bias \\(nested\\)"),
    "quantised": (lambda t: torch.quantize_per_tensor(t, 0.1, 0, torch.qint8),
                  "quantised: c.bias \\(torch.qint8\\)"),
}


def _model_and_state():
    torch.manual_seed(0)
    model = netdsl.build(SPEC)
    state = {k: v + 1 if v.is_floating_point() else v + 5 for k, v in model.state_dict().items()}
    assert list(state)[-1] == "c.bias"  # the last tensor torch would copy
    return model, state


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(after[k], before[k])]
    assert changed == [], f"loaded partly: {changed}"


@pytest.mark.parametrize("how", SPOILT)
def test_a_spoilt_last_tensor_in_a_pt_file_loads_nothing(tmp_path, how):
    model, state = _model_and_state()
    spoil, message = SPOILT[how]
    state["c.bias"] = spoil(state["c.bias"])
    path = tmp_path / "w.pt"
    torch.save(state, path)
    before = _snapshot(model)
    with pytest.raises(BuildError, match=message) as caught:
        export.load_weights(model, path)
    assert caught.value.code == "E010" and str(path) in str(caught.value)
    _assert_unchanged(model, before)


@pytest.mark.parametrize("how", SPOILT)
def test_transfer_of_a_spoilt_state_dict_copies_nothing(how):
    model, state = _model_and_state()
    spoil, message = SPOILT[how]
    state["c.bias"] = spoil(state["c.bias"])
    before = _snapshot(model)
    with pytest.raises(BuildError, match=message):
        export.transfer(model, state)
    _assert_unchanged(model, before)


def test_a_spoilt_tensor_is_refused_also_where_not_strict():
    model, state = _model_and_state()
    del state["a.bias"]
    state["b.weight"] = state["b.weight"].to_sparse()
    before = _snapshot(model)
    with pytest.raises(BuildError, match="not a dense tensor: b.weight"):
        export.transfer(model, state, strict=False)
    _assert_unchanged(model, before)


def test_every_problem_is_listed_by_key_at_once(tmp_path):
    model, state = _model_and_state()
    state["a.weight"] = torch.empty(state["a.weight"].shape, device="meta")
    state["b.weight"] = state["b.weight"].to_sparse()
    state["c.weight"] = torch.zeros(1)
    with pytest.raises(BuildError) as caught:
        export.transfer(model, state)
    text = str(caught.value)
    for note in ("meta device (no values): a.weight", "not a dense tensor: b.weight (sparse_coo)",
                 "wrong shape: c.weight"):
        assert note in text

