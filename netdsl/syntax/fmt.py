"""``netdsl fmt``: the canonical layout of a spec.

Like gofmt, the formatter keeps the author's line breaks and comments and normalises the rest:
indentation (4 spaces for a network's body, 4 more per open bracket and for a continued
chain), one space around ``->``, ``=`` of definitions and binary operators, none inside
brackets or around keyword ``=``, one after ``,`` and ``:``, two before a trailing comment,
at most one blank line. Only whitespace changes, so a formatted spec compiles to the same
network; and formatting twice changes nothing.

Lines are split exactly as the lexer splits them (grammar.lark): only ``\\n`` (or ``\\r\\n``)
ends a line, so a form feed, a vertical tab, NEL or U+2028 inside a comment stays there;
a backslash continuation stays at the end of its line (``\\``, after one space); a keyword
is never glued to what follows it (``if (x == 1)``, ``else -1``, never ``if(`` or ``else - 1``).

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
  | (?P<continuation>\\[ \t]*$)
  | (?P<space>[ \t\f\r]+)
  | (?P<other>.)
""", re.VERBOSE)

_TOPLEVEL = {"import", "block", "inline", "network"}
# grammar.lark's reserved words: never names
_KEYWORDS = _TOPLEVEL | {"input", "init", "if", "else", "and", "or", "not", "output"}
BOM = "\ufeff"
_BINARY = {"->", "→", "**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">"}
_VALUE_END = {"number", "name", "string"}


def _tokens(line: str) -> list[tuple[str, str]]:
    """One line's tokens (a comment keeps every character but trailing spaces and tabs; a
    continuation is written as a lone backslash)."""
    tokens = []
    for match in _TOKEN.finditer(line):
        kind = match.lastgroup
        if kind == "comment":
            tokens.append((kind, match.group().rstrip(" \t")))
        elif kind == "continuation":
            tokens.append((kind, "\\"))
        elif kind != "space":
            tokens.append((kind, match.group()))
    return tokens


def _lines(text: str) -> list[str]:
    """The lines as the lexer sees them: only '\\n' (after an optional '\\r') ends one."""
    return [line.removesuffix("\r") for line in text.split("\n")]


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
        if kind == "continuation":
            out += " \\" if out else "\\"
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if text == ":" and previous and depth > 0 and (previous[0] == "number" or (
                previous[1] in _POOL_KEYS and following[0] == "number")):
            compact = depth
        space = _space(previous, unary, kind, text, depth)
        if text == "=" and _names_tensor(tokens, index) or \
                previous == ("op", "=") and _names_tensor(tokens, index - 1):
            space = " "  # (c2 = layer1: ...) names a tensor, like a line's `c2 = ...`
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


def _names_tensor(tokens: list[tuple[str, str]], index: int) -> bool:
    """Whether the ``=`` at ``index`` names a tensor mid-chain, ``(name = ...)``: a name right
    after a bracket that is not a call's (``f(k=v)`` is a keyword argument)."""
    return index >= 2 and tokens[index - 1][0] == "name" and tokens[index - 2][1] == "(" and \
        (index < 3 or not _ends_value(tokens[index - 3]))


def _ends_value(token: tuple[str, str]) -> bool:
    kind, text = token
    return (kind in _VALUE_END and text not in _KEYWORDS) or text in (")", "]")


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
    bom = BOM if text.startswith(BOM) else ""  # not whitespace: kept, like any character
    lines: list[tuple[int | None, str, str]] = []  # indent (None: as the next line), code, comment
    depth, in_network, continued, joined, blank = 0, False, False, False, False
    for raw in _lines(text.removeprefix(BOM)):
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
        if first in _TOPLEVEL and depth == 0 and not joined:
            # a network's body, or a block of several lines (block b(c):), is indented
            in_network = first in ("network", "block", "inline") and tokens[-1][1] == ":"
            indent = 0
        else:
            closing = 1 if first in (")", "]") else 0
            arrow = continued or first in ("->", "→")
            extra = depth - closing + (1 if arrow else 0)
            indent = 4 * (int(in_network) + extra)
        code, comment, depth = _join(tokens, depth)
        lines.append((indent, code, comment))
        joined = tokens[-1][0] == "continuation"  # a backslash: the next line is this one's
        last = next((t for t in reversed(tokens) if t[0] not in ("comment", "continuation")),
                    ("", ""))
        continued = depth == 0 and (joined or last[1] in ("->", "→", "=", ","))
    return bom + "\n".join(_indent_comments(lines)) + "\n"


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
