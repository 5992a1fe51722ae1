"""Issue 12, item 8: ``check`` accepted numbers that ``build`` cannot write (``1e999`` is
infinity to Python; ``bn(eps=1e999)`` gave ``NameError: inf`` in generated code). Every
number is finite and at most ``limits.MAX_NUMBER`` where it is read: a literal, an
arithmetic result, an override."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.errors import OverrideError, SpecLimitError


def _spec(layer: str, params: str = "") -> str:
    return f"network t{params}:\n    input 3x8x8\n    conv(4, 3x3) -> {layer}\n"


@pytest.mark.parametrize("layer", ["bn(eps=1e999)", "bn(eps=1e16)", "leaky_relu(slope=-1e999)",
                                   "dropout(p=1e999 - 1e999)", "scale(1.5e400)"])
def test_infinite_literal_is_a_limit_error_at_check(layer):
    with pytest.raises(SpecLimitError) as caught:
        netdsl.compile(_spec(layer))
    assert caught.value.code == "E007" and caught.value.line == 3


@pytest.mark.parametrize("value", ["1e15 * 1e15", "1e14 * 10.0 * 10.0", "-(1e15 * 2.0)"])
def test_arithmetic_beyond_the_limit_is_rejected(value):
    with pytest.raises(SpecLimitError):
        netdsl.compile(_spec(f"bn(eps={value})"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"),
                                   (1.0, float("nan"))])
def test_non_finite_override_is_rejected(value):
    with pytest.raises(OverrideError):
        netdsl.compile(_spec("bn(eps=e)", "(e=1e-5)"), e=value)


def test_largest_finite_literal_still_builds():
    assert getattr(netdsl.build(_spec("bn(eps=1e15)")), "1").eps == 1e15
    assert getattr(netdsl.build(_spec("bn(eps=2.2250738585072014e-308)")), "1").eps == 2.2250738585072014e-308
    # a literal that would read as 0 is refused rather than silently changed (docs/errors.md E007)
    with pytest.raises(netdsl.NetDSLError, match="below 2.2e-308") as caught:
        netdsl.compile(_spec("bn(eps=1e-999)"))
    assert caught.value.code == "E007"
