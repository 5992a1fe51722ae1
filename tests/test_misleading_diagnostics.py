"""Diagnostics that used to point at the wrong cause (issue 12, item 12). The golden files
syntax_and_operator, syntax_reserved_label and name_not_reexported show the full text."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.syntax.diagnostics import RESERVED

HEAD = "network n(a=true, b=false):\n    input 3x8x8\n"


def error_of(text: str, **kwargs) -> netdsl.NetDSLError:
    with pytest.raises(netdsl.NetDSLError) as caught:
        netdsl.compile(text, **kwargs)
    return caught.value


@pytest.mark.parametrize("condition", ["a and b", "a or b", "not a", "(a) and (b)"])
def test_and_or_not_are_operators_now(condition):
    """They were reported as a missing '->'; issue 11 made them operators (tests/test_names.py
    tests their meaning)."""
    assert netdsl.compile(HEAD + f"    conv(4, 3x3) if {condition} else relu\n")


@pytest.mark.parametrize("word", RESERVED)
def test_reserved_word_as_label_is_not_reported_as_an_unclosed_bracket(word):
    for layers in (f"{word}: conv(4, 3x3)", f"concat(\n        {word}: conv(4, 1x1),\n        relu)",
                   f"residual({word}: conv(4, 3x3, pad=1))"):
        error = error_of(HEAD + f"    {layers}\n")
        assert error.message == f"'{word}' is a reserved word; quote it to use it as a label", \
            layers
        assert "never closed" not in str(error) and f'"{word}":' in str(error)


def test_a_network_without_a_name_still_asks_for_a_name():
    assert "expected a name" in error_of("network:\n    input 3x8x8\n    relu\n").message


def test_name_not_reexported_by_an_import_says_so(tmp_path):
    (tmp_path / "units.net").write_text("block unit3(c) = conv(c, 3x3) -> relu\n")
    (tmp_path / "stem.net").write_text('import "units.net"\nblock stem(c) = unit3(c)\n')
    error = error_of('import "stem.net"\nnetwork n:\n    input 3x8x8\n    unit3(4)\n',
                     base=tmp_path)
    assert error.message == "'unit3' is not re-exported by stem.net"
    assert 'its own import "units.net"' in str(error) and "did you mean" not in str(error)
    # two imports deep, the reason travels up
    (tmp_path / "top.net").write_text('import "stem.net"\nblock top(c) = stem(c)\n')
    error = error_of('import "top.net"\nnetwork n:\n    input 3x8x8\n    unit3(4)\n',
                     base=tmp_path)
    assert error.message == "'unit3' is not re-exported by stem.net"
