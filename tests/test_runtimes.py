"""optimize=True with several runtimes installed: a race on the first input of each shape
keeps the fastest runtime whose output agrees with eager (netdsl.torch.runtimes). Stand-in
runtimes make "fast", "slow" and "wrong" certain; the real ones are in test_optimize.py."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from netdsl.torch import runtimes


class _Runtime(runtimes._PerShape):
    """The eager module, made slower or wrong on purpose; counts what it compiled."""

    delay, scale = 0.0, 1.0

    def compile(self, x):
        def run(t):
            time.sleep(self.delay)
            return self.module(t) * self.scale
        return run

    @property
    def shapes(self):
        return set(self._compiled)


class Fast(_Runtime):
    pass


class Slow(_Runtime):
    delay = 0.1  # far beyond the noise of a loaded machine on the stand-ins' tiny network


class Wrong(_Runtime):
    scale = 1.001  # 1e-3 relative: beyond the fp32 tolerance of 1e-4


class Unconvertible(_Runtime):
    def compile(self, x):
        raise RuntimeError("no converter for aten::frobnicate")


@pytest.fixture
def stand_ins(monkeypatch):
    for name, runtime in {"fast": Fast, "slow": Slow, "wrong": Wrong,
                          "unconvertible": Unconvertible}.items():
        monkeypatch.setitem(runtimes.RUNNERS, name, runtime)


@pytest.fixture
def module():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten()).eval()


X = torch.randn(2, 3, 8, 8)


@pytest.mark.parametrize("order", [("fast", "slow"), ("slow", "fast")])
def test_the_fastest_agreeing_runtime_wins_whatever_the_order(stand_ins, module, order):
    race = runtimes.FastestRunner(module, order)
    with torch.no_grad():
        torch.testing.assert_close(race(X), module(X))
    chosen, seconds = race.choices[(2, 3, 8, 8)]
    # what is certain is the order, not the fast one's time (28 ms under load, once)
    assert chosen == "fast" and seconds["slow"] >= Slow.delay
    # the loser's compiled network is freed; the winner runs every later input of the shape
    assert race.runners["slow"].shapes == set() and race.runners["fast"].shapes == {X.shape}


def test_a_runtime_that_disagrees_with_eager_is_dropped_however_fast(stand_ins, module):
    race = runtimes.FastestRunner(module, ("wrong", "slow"))
    with torch.no_grad():
        assert torch.equal(race(X), module(X))
    chosen, seconds = race.choices[(2, 3, 8, 8)]
    assert chosen == "slow" and seconds["wrong"] is None and seconds["slow"] >= Slow.delay


def test_a_runtime_that_cannot_convert_the_network_is_dropped(stand_ins, module):
    race = runtimes.FastestRunner(module, ("unconvertible", "slow"))
    with torch.no_grad():
        assert torch.equal(race(X), module(X))
    assert race.choices[(2, 3, 8, 8)][0] == "slow"
    assert race.choices[(2, 3, 8, 8)][1]["unconvertible"] is None
    assert race.failures == {"unconvertible": "RuntimeError: no converter for aten::frobnicate"}


def test_when_every_runtime_disagrees_the_eager_module_runs_with_a_warning(stand_ins, module):
    race = runtimes.FastestRunner(module, ("wrong",))
    with pytest.warns(RuntimeWarning, match="no runtime of wrong agrees"), torch.no_grad():
        assert torch.equal(race(X), module(X))
    assert race.choices[(2, 3, 8, 8)] == ("eager", {"wrong": None})
    with torch.no_grad():
        assert torch.equal(race(X), module(X))  # raced once per shape


def test_each_input_shape_is_raced_once(stand_ins, module):
    race = runtimes.FastestRunner(module, ("slow", "fast"), rounds=1)
    with torch.no_grad():
        race(X), race(X[:1]), race(X)
    assert set(race.choices) == {(2, 3, 8, 8), (1, 3, 8, 8)}


def test_relative_error_is_scaled_by_the_output():
    expected = torch.tensor([100.0, -200.0])
    assert runtimes.relative_error(expected + torch.tensor([0.0, 0.02]), expected) == \
        pytest.approx(1e-4, rel=1e-3)
    assert runtimes.relative_error(torch.zeros(2), torch.zeros(2)) == 0.0
