"""``netdsl fmt``: the canonical layout of a spec.

Like gofmt, the formatter keeps the author's line breaks and comments and normalises the rest:
indentation (4 spaces for a network's body, 4 more per open bracket and for a continued
chain), one space around ``->``, ``=`` of definitions and binary operators, none inside
brackets or around keyword ``=``, one after ``,`` and ``:``, two before a trailing comment,
at most one blank line. Only whitespace changes, so a formatted spec compiles to the same
network; and formatting twice changes nothing.

>>> print(format_text("network n:\\n  input 3x8x8\\n  conv( 4,3x3 )->relu"), end="")
network n:
    input 3x8x8
    conv(4, 3x3) -> relu
"""

from __future__ import annotations

import re

from .parser import parse

_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"[^"\\\n]*")
  | (?P<number>[0-9]+(x[0-9]+)+(?![A-Za-z0-9_])|([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?
               |[0-9]+[eE][-+]?[0-9]+|[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|→|\*\*|//|==|!=|<=|>=|[-+*/%<>=:,()\[\]])
  | (?P<space>[ \t\f\r]+|\\[ \t]*\r?\n)
  | (?P<newline>\n)
""", re.VERBOSE)

_TOPLEVEL = {"import", "block", "inline", "network"}
_BINARY = {"->", "→", "**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">"}
_VALUE_END = {"number", "name", "string"}


def _tokens(line: str) -> list[tuple[str, str]]:
    tokens = []
    for match in _TOKEN.finditer(line):
        kind = match.lastgroup
        if kind not in ("space", "newline"):
            tokens.append((kind, match.group().rstrip()))
    return tokens


_POOL_KEYS = {"pool", "maxpool", "avgpool"}


def _join(tokens: list[tuple[str, str]], depth: int) -> tuple[str, str, int]:
    """One line's tokens with canonical spacing: its code, its trailing comment, and the
    bracket depth after it. Inception branches stay compact, as the paper's table writes them
    (``3x3:r96->128``)."""
    out, comment = "", ""
    previous: tuple[str, str] | None = None
    unary = False  # whether the previous token was a unary minus (``-1``, ``(-x)``)
    compact = None  # the depth of the inception branch being written, if any
    for index, (kind, text) in enumerate(tokens):
        if kind == "comment":
            comment = text
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if text == ":" and previous and depth > 0 and (previous[0] == "number" or (
                previous[1] in _POOL_KEYS and following[0] == "number")):
            compact = depth
        space = _space(previous, unary, kind, text, depth)
        out += "" if compact == depth and text not in (",",) and space == " " and (
            text in ("->", "→") or previous[1] in (":", "->", "→")) else space
        out += text
        unary = text == "-" and not (previous and _ends_value(previous))
        if text in "([":
            depth += 1
        elif text in ")]":
            depth = max(0, depth - 1)
        if compact is not None and (depth < compact or (text == "," and depth == compact)):
            compact = None
        previous = (kind, text)
    return out, comment, depth


def _ends_value(token: tuple[str, str]) -> bool:
    kind, text = token
    return kind in _VALUE_END or text in (")", "]")


def _space(previous: tuple[str, str] | None, unary: bool, kind: str, text: str,
           depth: int) -> str:
    if previous is None:
        return ""
    before = previous[1]
    if kind == "comment":
        return "  "
    if before in ("(", "[") or text in (")", "]", ",", ":"):
        return ""
    if text == "=" or before == "=":
        return "" if depth > 0 else " "  # keyword arguments and defaults: k=v
    if unary or (text in ("(", "[") and _ends_value(previous)):
        return ""  # -x, f(x), xs[0]
    return " "


def format_text(text: str, filename: str | None = None) -> str:
    """The canonical form of a spec (which must parse: errors are reported as usual)."""
    parse(text, filename)
    lines: list[tuple[int | None, str, str]] = []  # indent (None: as the next line), code, comment
    depth, in_network, continued, blank = 0, False, False, False
    for raw in text.splitlines():
        tokens = _tokens(raw)
        if not tokens:
            blank = bool(lines)
            continue
        if blank:
            lines.append((0, "", ""))
        blank = False
        first = tokens[0][1]
        if tokens[0][0] == "comment" and len(tokens) == 1 and depth == 0 and not continued:
            lines.append((None, "", first))
            continue
        if first in _TOPLEVEL and depth == 0:
            in_network = first == "network" and tokens[-1][1] == ":"
            indent = 0
        else:
            closing = 1 if first in (")", "]") else 0
            arrow = continued or first in ("->", "→")
            extra = depth - closing + (1 if arrow else 0)
            indent = 4 * (int(in_network) + extra)
        code, comment, depth = _join(tokens, depth)
        lines.append((indent, code, comment))
        last = next((t for t in reversed(tokens) if t[0] != "comment"), ("", ""))
        continued = depth == 0 and last[1] in ("->", "→", "=", ",")
    return "\n".join(_indent_comments(lines)) + "\n"


def _indent_comments(lines: list[tuple[int | None, str, str]]) -> list[str]:
    """A comment on a line of its own is indented like the code line after it; trailing
    comments of consecutive lines line up (as gofmt does)."""
    following, indented = 0, []
    for indent, code, comment in reversed(lines):
        if indent is None:
            indent = following
        elif code:
            following = indent
        indented.append((" " * indent + code, comment))
    indented.reverse()
    out, run = [], []
    for code, comment in [*indented, ("", "")]:
        if comment and code.strip():
            run.append((code, comment))
            continue
        width = max((len(c) for c, _ in run), default=0)
        out += [f"{c.ljust(width)}  {k}" for c, k in run]
        run = []
        out.append(code + comment if code.strip() or comment else "")
    return out[:-1]
