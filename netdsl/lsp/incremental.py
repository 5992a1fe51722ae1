"""Re-parsing only the top-level statements an edit changed, and re-checking only when the
syntax tree changed.

A document is cut where a line starts with ``import``, ``block``, ``inline`` or ``network``
(where the parser's error recovery cuts it too); each piece is parsed alone, at its own line
numbers, and kept while its text and first line stay the same. Any error, or a text near the
parser's limits, parses the whole file instead, so diagnostics are exactly ``netdsl check``'s.
A piece kept from an earlier version keeps that version's Source: the lines it spans read
the same in both, which is all a span reads.

An edit that leaves the tree as it was, node for node and position for position (a comment,
spaces after the code), cannot change what the document compiles to while its imports are
unchanged: the previous check stands (see :func:`same_tree`).
"""

from __future__ import annotations

import re
from dataclasses import fields

from .. import limits
from ..errors import NetDSLError, Source
from ..syntax import tree as ast
from ..syntax.parser import parse, parse_part
from ..syntax.tree import walk

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


def _shape(node: ast.Node) -> tuple:
    """A node without its Source: its kind, position and every value it holds."""
    s = node.span
    values = []
    for f in fields(node):
        value = getattr(node, f.name)
        if f.name != "span" and not isinstance(value, ast.Node) and not (
                isinstance(value, tuple) and value and isinstance(value[0], ast.Node)):
            values.append(value)
    return (type(node).__name__, s.line, s.column, s.end_line, s.end_column, *values)


def same_tree(old: ast.Module, new: ast.Module) -> bool:
    """Whether two parses hold the same nodes at the same places (only comments or
    trailing spaces differ); statements kept from the old parse are not walked again."""
    if len(old.items) != len(new.items):
        return False
    for a, b in zip(old.items, new.items, strict=True):
        if a is b:
            continue
        nodes = list(walk(a))
        others = list(walk(b))
        if len(nodes) != len(others) or any(_shape(x) != _shape(y) for x, y in
                                            zip(nodes, others, strict=True)):
            return False
    return True
