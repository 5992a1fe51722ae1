"""netdsl fmt: canonical, idempotent, whitespace-only (the network does not change)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import grammar_texts, mutated_specs, network_texts

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


# --- whitespace only: the lexer's lines, comments, continuations, keywords (issue 12, item 6) ---

TINY = "network n(x=1):\n    input 3x8x8\n"


def assert_same_network(text: str) -> str:
    """Formats ``text``; the network is unchanged, and formatting again changes nothing."""
    formatted = format_text(text)
    assert network(formatted, "f.net") == network(text, "f.net")
    assert format_text(formatted) == formatted
    return formatted


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\r"],
                         ids=["U+2028", "U+2029", "NEL", "VT", "FF", "FS", "CR"])
def test_fmt_keeps_unicode_line_separator_inside_comment(separator):
    text = TINY + f"    conv(4, 3x3)  # wide{separator}-> fc(10)\n    relu\n"
    formatted = assert_same_network(text)
    assert f"# wide{separator}-> fc(10)\n" in formatted
    assert network(formatted, "f.net")["nodes"][-2]["op"] == "conv"  # the comment stayed one


def test_fmt_splits_lines_only_where_the_lexer_does():
    text = TINY.replace("\n", "\r\n") + "    conv(4,\f3x3)\r->\rrelu\r\n"
    assert assert_same_network(text) == TINY + "    conv(4, 3x3) -> relu\n"


def test_fmt_keeps_backslash_continuations():
    text = TINY + "    conv(4, 3x3)\\\n  -> relu   \\  \n-> bn\n    conv(4,\\\n 1x1)\n"
    formatted = assert_same_network(text)
    assert formatted == TINY + ("    conv(4, 3x3) \\\n        -> relu \\\n        -> bn\n"
                                "    conv(4, \\\n        1x1)\n")


def test_fmt_keeps_a_continued_statement_off_the_top_level():
    text = "block b(c) =\\\n conv(c, 3x3)\nnetwork n:\n    input 3x8x8\n    b(4)\n"
    assert assert_same_network(text).startswith("block b(c) = \\\n    conv(c, 3x3)\n")


@pytest.mark.parametrize("line,expected", [
    ("relu if(x == 1) else bn", "relu if (x == 1) else bn"),
    ("relu if[x, 1][0] == 1 else(bn)", "relu if [x, 1][0] == 1 else (bn)"),
    ("conv(4, 3x3, pad=1 if - x < 0 else 0)", "conv(4, 3x3, pad=1 if -x < 0 else 0)"),
    ("conv(4, 3x3, pad=0 if x > 1 else -  1 + 2)", "conv(4, 3x3, pad=0 if x > 1 else -1 + 2)"),
])
def test_fmt_never_glues_a_keyword_to_what_follows(line, expected):
    assert assert_same_network(TINY + "    " + line + "\n") == TINY + "    " + expected + "\n"


def test_fmt_keeps_a_byte_order_mark():
    text = "\ufeff" + TINY + "    relu\n"
    assert assert_same_network(text) == text


def messy(text: str) -> str:
    """The same tokens with other whitespace: CRLF, no indentation, tabs between tokens, form
    feeds and spaces at the ends of lines, doubled blank lines."""
    out = []
    for line in text.split("\n"):
        tokens = _tokens(line)
        if not tokens:
            out += ["", "  "]
            continue
        comment = tokens.pop()[1] if tokens[-1][0] == "comment" else ""
        code = "\t".join(t for _, t in tokens)
        out.append(code + ("\f " + comment if comment else "\f  "))
    return "\r\n".join(out)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_fmt_keeps_the_network_of_every_spec(spec):
    text = spec.read_text(encoding="utf-8")
    scrambled = messy(text)
    assert scrambled != text
    assert format_text(scrambled) == text
    assert network(scrambled, spec.name) == network(text, spec.name)


def outcome(text: str):
    """The network without positions, or the code of the error raised."""
    try:
        data = to_json(netdsl.compile(text))
    except netdsl.NetDSLError as error:
        return error.code
    for node in data["nodes"]:
        node.pop("span"), node.pop("trace")
    data.pop("params")
    return data


@settings(max_examples=120, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(text=network_texts() | mutated_specs() | grammar_texts())
def test_fmt_keeps_the_network_of_fuzzed_specs(text):
    try:
        formatted = format_text(text)
    except netdsl.NetDSLError:
        return  # fmt formats only what parses
    assert outcome(formatted) == outcome(text)
    assert format_text(formatted) == formatted


def test_fmt_and_check_read_a_lone_carriage_return_as_the_lexer_does(tmp_path, capsys):
    """Python's universal newlines would turn a lone CR inside a comment into a line break:
    files are read untranslated, so a file means what the same text means."""
    text = TINY + "    conv(4, 3x3)  # wide\r-> fc(10)\n"
    path = tmp_path / "cr.net"
    path.write_bytes(text.encode())
    assert main(["check", str(path)]) == 0
    assert "maps 3x8x8 to 4x6x6" in capsys.readouterr().out
    assert main(["fmt", "--check", str(path)]) == 0  # already canonical: nothing to change
    path.write_bytes(text.replace("\n", "\r\n").encode())
    assert main(["fmt", "-i", str(path)]) == 0
    assert path.read_bytes() == text.encode()
