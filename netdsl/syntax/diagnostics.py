"""Syntax errors a person can act on: Lark's exceptions turned into SpecSyntaxErrors with a
real line and column, the tokens that were expected in words, and hints for the common
mistakes (an unclosed bracket, ``:`` for ``=``)."""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import Source, Span, SpecSyntaxError

_TOKEN_NAMES = {
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "COLON": "':'",
    "EQUAL": "'='", "_ARROW": "'->'", "NAME": "a name", "INT": "a number", "FLOAT": "a number",
    "DIMS": "a size like 3x3", "STRING": "a string", "REDUCE": "a reduction like r96",
    "_NL": "end of line", "$END": "end of file", "PLUS": "'+'", "MINUS": "'-'", "MULOP": "'*'",
    "POW": "'**'", "COMPARE": "a comparison", "IMPORT": "'import'", "BLOCK": "'block'",
    "NETWORK": "'network'", "INLINE": "'inline'", "INPUT": "'input'", "INIT": "'init'",
    "IF": "'if'", "ELSE": "'else'", "AND": "'and'", "OR": "'or'", "NOT": "'not'",
    "OUTPUT": "'output'",
}
_OPENERS = {"(": ")", "[": "]"}


# --- syntax errors -----------------------------------------------------------------------

def _describe(token: Token) -> str:
    if token.type in ("_NL", "$END"):
        return _TOKEN_NAMES[token.type]
    return f"'{token.value}'"


def _expected(names) -> str:
    readable = sorted({_TOKEN_NAMES.get(n, n) for n in names if not n.startswith("__")})
    if len(readable) > 6:
        return "a layer, a value, or the end of the statement"
    return ", ".join(readable[:-1]) + (" or " if len(readable) > 1 else "") + readable[-1]


def _end_of_text(source: Source) -> tuple[int, int]:
    lines = Source(source.text.rstrip(), source.filename).lines()
    return len(lines), len(lines[-1]) + 1


def _open_brackets(source: Source, stop: tuple[int, int] | None = None) -> list:
    """The brackets still open just before ``stop`` (line, column; default: the end of the
    text), innermost last, as (line, column, char); comments and strings are skipped."""
    stack: list[tuple[int, int, str]] = []
    for number, line in enumerate(source.lines(), 1):
        in_string = False
        for column, char in enumerate(line, 1):
            if stop is not None and (number, column) >= stop:
                return stack
            if char == '"':
                in_string = not in_string
            elif in_string:
                continue
            elif char == "#":
                break
            elif char in _OPENERS:
                stack.append((number, column, char))
            elif char in ")]" and stack:
                stack.pop()
    return stack


_CHARACTER_HINTS = {
    ";": "netdsl has no ';': chain layers with '->' or put each statement on its own line",
    "'": "strings are written in double quotes: \"resnet_family.net\"",
    "×": "write sizes with the letter x: 3x3",
    "{": "netdsl has no braces: group layers with ( ) and lists with [ ]",
    "}": "netdsl has no braces: group layers with ( ) and lists with [ ]",
    "=": "'=' gives a keyword argument (stride=2); to name a layer write 'name: layer'",
}
_STARTS_VALUE = ("NAME", "INT", "FLOAT", "DIMS", "STRING", "REDUCE", "LPAR", "LSQB")


def _character_error(source: Source, error: UnexpectedCharacters) -> SpecSyntaxError:
    line = source.line(error.line)
    char = line[error.column - 1:error.column] or "?"
    span = Span(source, error.line, error.column, error.line, error.column + 1)
    if char == '"':  # a string that never ends (strings stay on one line)
        return SpecSyntaxError("this string is never closed", span,
                               expected="'\"' before the end of the line")
    hint = _CHARACTER_HINTS.get(char)
    shown = f"'{char}'" if char.isprintable() else f"U+{ord(char):04X}"  # a tab, a NUL, U+2028
    return SpecSyntaxError(f"unexpected character {shown}", span, notes=(hint,) if hint else ())


_KEYWORDS = {"IMPORT", "BLOCK", "NETWORK", "INLINE", "INPUT", "INIT", "IF", "ELSE", "AND", "OR",
             "NOT", "OUTPUT"}
RESERVED = sorted(_TOKEN_NAMES[k].strip("'") for k in _KEYWORDS)
_LAST_WORD = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)\s*$")


def _misused_word(source: Source, token: Token) -> SpecSyntaxError | None:
    """A reserved word written as a label (``block: conv(...)``), which the grammar reports
    far from its cause (inside brackets it looked like an unclosed bracket)."""
    line = source.line(token.line)
    before = _LAST_WORD.search(line[:token.column - 1])  # the word just before the token
    word, column = (token.value, token.column) if token.type in (*_KEYWORDS, "NAME") else \
        (before[1], before.start(1) + 1) if before else (None, 0)
    span = Span(source, token.line, column, token.line, column + len(word or ""))
    after = line[column - 1 + len(word or ""):].lstrip()
    toplevel = column == 1 and word in ("import", "block", "inline", "network")
    if word in RESERVED and after.startswith(":") and not toplevel:
        return SpecSyntaxError(f"'{word}' is a reserved word; quote it to use it as a label",
                               span, expected=f'"{word}":', found=f"{word}:",
                               notes=(f"reserved words: {', '.join(RESERVED)}",))
    return None


def _first_on_line(source: Source, token: Token) -> bool:
    return not source.line(token.line)[:token.column - 1].strip()


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip()) + 1


def syntax_error(source: Source, error: UnexpectedInput) -> SpecSyntaxError:
    if isinstance(error, UnexpectedCharacters):
        return _character_error(source, error)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    expected = set(error.expected)
    last_line = len(source.text.rstrip("\n").split("\n"))
    if token.type == "$END" or (token.type == "_NL" and token.line > last_line):
        opened = _open_brackets(source)
        if opened:
            line, column, char = opened[-1]
            return SpecSyntaxError(f"'{char}' is never closed",
                                   Span(source, line, column, line, column + 1),
                                   expected=f"'{_OPENERS[char]}' before the end of the file")
        line, column = _end_of_text(source)
        return SpecSyntaxError(f"unexpected end of file; expected {_expected(expected)}",
                               Span(source, line, column, line, column + 1))
    span = Span(source, token.line, token.column, token.end_line or token.line,
                token.end_column or token.column + 1)
    if token.type == "_NL":
        span = Span(source, token.line, token.column, token.line, token.column + 1)
    found = _describe(token)
    misused = _misused_word(source, token)
    if misused is not None:
        return misused
    opened = _open_brackets(source, (token.line, token.column))
    if opened and _first_on_line(source, token) and token.type in (*_STARTS_VALUE, "IMPORT",
                                                                  "BLOCK", "NETWORK", "INLINE"):
        # a statement-level line inside brackets: the bracket was never closed
        line, column, char = opened[-1]
        if token.column <= _indent(source.line(line)) or token.type not in _STARTS_VALUE:
            return SpecSyntaxError(f"'{char}' is never closed", Span(source, line, column, line,
                                                                      column + 1),
                                   expected=f"'{_OPENERS[char]}' before line {token.line}",
                                   notes=(f"line {token.line} starts a new statement",))
    if token.type == "EQUAL" and "EQUAL" not in expected:
        return SpecSyntaxError("unexpected '='; to name a layer write 'name: layer'", span,
                               expected="':'" if "COLON" in expected else None, found="'='",
                               notes=("'=' is only for keyword arguments (stride=2), block "
                                      "definitions, network aliases and a line's tensor name "
                                      "(skip1 = ...)",))
    if expected == {"_NL"} and re.match(r"\s*(inline\s+)?block\b.*:\s*$",
                                        source.line(token.line)[:token.column - 1]):
        colon = source.line(token.line)[:token.column - 1].rstrip()
        return SpecSyntaxError("a one-line block is defined with '=', not ':'",
                               Span(source, token.line, len(colon), token.line, len(colon) + 1),
                               expected="'='", found="':'",
                               notes=("block NAME(params) = layers; with ':' the body goes on "
                                      "the next lines, indented",))
    if token.type == "COLON" and expected == {"EQUAL"}:
        return SpecSyntaxError("a block is defined with '=', not ':'", span, expected="'='",
                               found="':'", notes=("block NAME(params) = layers; only "
                                                   "'network NAME:' takes ':'",))
    if token.type in _STARTS_VALUE and "COMMA" in expected and opened:
        return SpecSyntaxError(f"missing ',' before {found}", span,
                               expected="',' between arguments", found=found)
    if token.type in _STARTS_VALUE and "_ARROW" in expected and not opened:
        return SpecSyntaxError(f"missing '->' before {found}", span,
                               expected="'->' between layers", found=found)
    if token.type in ("RPAR", "RSQB"):
        if not opened:
            return SpecSyntaxError(f"unmatched {found}; no bracket is open here", span)
        line, column, char = opened[-1]
        if _OPENERS[char] != token.value:
            return SpecSyntaxError(f"{found} does not close the '{char}' at line {line}, column "
                                   f"{column}", span, expected=f"'{_OPENERS[char]}'",
                                   found=found)
    return SpecSyntaxError(f"unexpected {found}; expected {_expected(expected)}", span)
