"""netdsl fmt: canonical, idempotent, whitespace-only (the network does not change)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netdsl
from netdsl.cli import main
from netdsl.ir.graph import to_json
from netdsl.syntax.fmt import _tokens, format_text

from conftest import all_specs

SPECS = all_specs()


def network(text: str, filename: str) -> dict | str:
    """The compiled network without source positions (or the error message)."""
    try:
        data = to_json(netdsl.compile(text))
    except netdsl.NetDSLError as error:
        return error.message
    for node in data["nodes"]:
        node.pop("span"), node.pop("trace")
    data.pop("params")
    return data


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_specs_are_in_canonical_layout_and_formatting_is_idempotent(spec):
    text = spec.read_text()
    assert format_text(text) == text
    assert format_text(format_text(text)) == format_text(text)


@settings(max_examples=60, deadline=None)
@given(spec=st.sampled_from([s for s in SPECS if "import" not in s.read_text()]),
       spaces=st.lists(st.integers(0, 3), min_size=1, max_size=50), indent=st.integers(0, 6))
def test_formatting_undoes_any_change_of_spacing(spec, spaces, indent):
    text = spec.read_text()
    messy = []
    for number, line in enumerate(text.splitlines()):
        tokens = [t for _, t in _tokens(line)]
        gaps = [max(1, spaces[(number + i) % len(spaces)]) for i in range(len(tokens))]
        pad = " " * (indent if line.startswith(" ") else 0)
        messy.append(pad + "".join(t + " " * g for t, g in zip(tokens, gaps, strict=True)))
    messy_text = "\n".join(messy) + "\n"
    assert format_text(messy_text) == text
    assert network(messy_text, spec.name) == network(text, spec.name)


def test_fmt_command_checks_and_rewrites_atomically(tmp_path, capsys):
    path = tmp_path / "n.net"
    path.write_text("network n:\n  input 3x8x8\n  conv( 4,3x3 )->relu\n")
    assert main(["fmt", "--check", str(path)]) == 1
    assert "not in canonical layout" in capsys.readouterr().err
    assert main(["fmt", "-i", str(path)]) == 0
    assert path.read_text() == "network n:\n    input 3x8x8\n    conv(4, 3x3) -> relu\n"
    assert [p.name for p in tmp_path.iterdir()] == ["n.net"]
    assert main(["fmt", "--check", str(path)]) == 0


def test_fmt_refuses_text_that_does_not_parse(tmp_path, capsys):
    path = tmp_path / "bad.net"
    path.write_text("network n:\n    input 3x8x8\n    conv(4, 3x3\n")
    assert main(["fmt", "-i", str(path)]) == 1
    assert "never closed" in capsys.readouterr().err
    assert path.read_text() == "network n:\n    input 3x8x8\n    conv(4, 3x3\n"
