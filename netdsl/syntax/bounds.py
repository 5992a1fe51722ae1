"""What a text may be before the parser reads it: its size, lines and tokens, each refused
before any parsing (Lark takes about 10 us a token), with a span that never makes the whole
text be read again to draw it."""

from __future__ import annotations

import itertools
import re

from .. import limits
from ..errors import Source, Span, SpecLimitError


def check_size(source: Source) -> None:
    """Refuses, before any parsing, a text beyond the size and line budgets (parsing costs
    a few microseconds per token). The error quotes only the text's start, so that drawing
    it does not read the whole text either."""
    text = source.text
    size, lines = len(text), text.count("\n") + 1
    if size > limits.MAX_SOURCE or lines > limits.MAX_LINES:
        start = Source(text[:200].split("\n", 1)[0], source.filename)
        what = f"{size:,} characters" if size > limits.MAX_SOURCE else f"{lines:,} lines"
        raise SpecLimitError(f"spec has {what}; at most {limits.MAX_SOURCE:,} characters and "
                             f"{limits.MAX_LINES:,} lines are read", Span(start, 1, 1, 1, 2))


# Pieces of text each of which lies in a token of its own: names and keywords (a number or
# size holds at most one run of letters: 1e-3, 3x3), arrows and single-character brackets
# and commas, once strings and comments (which may hold anything) are blanked out.
_HIDDEN = re.compile(r'"[^"\\\n]*"|#[^\n]*')
_SURELY_TOKENS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|->|\u2192|[()\[\],]")


def tokens_over_limit(source: Source) -> tuple[Span, int] | None:
    """Where a text has more than ``MAX_TOKENS`` tokens, found before Lark reads any of them
    (Lark takes about 10 us a token: a 4 MB chain of 1.2 million tokens cost 1.5 s of parsing
    up to the parser's own count), and how much of its start the parser should still read
    for the refusals it makes first (nesting, within the first few hundred tokens); None
    when it has no more. The pieces counted are at most as many as the tokens (each lies in a
    token of its own), so a text found here would be refused by the parser too, only later.
    Texts no longer than the limit in characters are not looked at."""
    if len(source.text) <= limits.MAX_TOKENS:
        return None
    text = _HIDDEN.sub(lambda m: " " * len(m.group()), source.text)  # offsets stay the same
    pieces = _SURELY_TOKENS.finditer(text)
    start = list(itertools.islice(pieces, min(_START_READ, limits.MAX_TOKENS)))
    over = next(itertools.islice(pieces, limits.MAX_TOKENS - len(start), None), None)
    if over is None:
        return None
    line = text.count("\n", 0, over.start()) + 1
    column = over.start() - text.rfind("\n", 0, over.start())
    read = start[-1].end() if start else 0
    return Span(source, line, column, line, column + len(over.group())), read


_START_READ = 2_000  # pieces of a text over the token limit that the parser still reads
