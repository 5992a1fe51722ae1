"""Re-parsing only the top-level statements an edit changed.

A document is cut where a line starts with ``import``, ``block``, ``inline`` or ``network``
(where the parser's error recovery cuts it too); each piece is parsed alone, at its own line
numbers, and kept while its text and first line stay the same. Any error, or a text near the
parser's limits, parses the whole file instead, so diagnostics are exactly ``netdsl check``'s.
A piece kept from an earlier version keeps that version's Source: the lines it spans read
the same in both, which is all a span reads.
"""

from __future__ import annotations

import re

from .. import limits
from ..errors import NetDSLError, Source
from ..syntax import tree as ast
from ..syntax.parser import parse, parse_part

_TOPLEVEL_LINE = re.compile(r"(import|block|inline|network)\b")  # as the parser's recovery
PIECEWISE_BELOW = 100_000  # characters; fewer than MAX_TOKENS, so no token limit is skipped

Pieces = dict[tuple[str, str, int], tuple[ast.Node, ...]]  # (filename, text, first line)


def parse_document(text: str, filename: str, pieces: Pieces) -> ast.Module:
    """``parse(text, filename)``, re-using the pieces of ``pieces`` (which it updates to
    this version's pieces)."""
    if text.startswith("\ufeff") or len(text) >= PIECEWISE_BELOW or \
            text.count("\n") >= limits.MAX_LINES:
        return parse(text, filename)
    source = Source(text, filename)
    lines = text.split("\n")
    starts = [0, *(i for i, line in enumerate(lines) if i and _TOPLEVEL_LINE.match(line))]
    items: list[ast.Node] = []
    used: Pieces = {}
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        key = (filename, "\n".join(lines[start:end]), start)
        part = pieces.get(key)
        if part is None:
            try:
                part = parse_part(source, key[1], start)
            except NetDSLError:
                return parse(text, filename)  # the whole file's errors, as the CLI has them
        used[key] = part
        items.extend(part)
    pieces.clear()
    pieces.update(used)
    return ast.Module(source, tuple(items))
