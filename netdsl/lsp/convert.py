"""netdsl's spans and errors as LSP ranges and diagnostics.

A Span is 1-based and counts characters; LSP positions are 0-based and count UTF-16 code
units, so a line with characters beyond U+FFFF is converted (ASCII lines are not).
"""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as lsp

from ..errors import PRELUDE, NetDSLError, Span
from .analysis import Analysis

PRELUDE_PATH = Path(__file__).resolve().parents[1] / "lower" / "prelude.net"


def utf16(line: str, column: int) -> int:
    """The UTF-16 offset of 0-based character ``column`` in ``line`` (a column past the end,
    the line break a syntax error points at, stays past it)."""
    head = line[:column]
    beyond = max(0, column - len(line))
    return beyond + (len(head) if head.isascii() else len(head.encode("utf-16-le")) // 2)


def characters(line: str, offset: int) -> int:
    """The 0-based character index of UTF-16 ``offset`` in ``line``."""
    if line.isascii():
        return offset
    units = 0
    for index, char in enumerate(line):
        if units >= offset:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line)


def to_range(span: Span) -> lsp.Range:
    source = span.source
    start = lsp.Position(max(span.line - 1, 0), utf16(source.line(span.line), span.column - 1))
    end = lsp.Position(max(span.end_line - 1, 0),
                       utf16(source.line(span.end_line), span.end_column - 1))
    return lsp.Range(start, end)


def to_cursor(text: str, position: lsp.Position) -> tuple[int, int]:
    """An LSP position as netdsl's (line, column), both 1-based."""
    lines = text.split("\n")
    line = lines[position.line] if position.line < len(lines) else ""
    return position.line + 1, characters(line.removesuffix("\r"), position.character) + 1


def path_of(filename: str) -> Path | None:
    """The file a span's source names (the CLI's names are relative to the working folder)."""
    if filename == PRELUDE:
        return PRELUDE_PATH
    if filename.startswith("<"):
        return None
    return Path(filename).resolve()


def location(span: Span) -> lsp.Location | None:
    path = path_of(span.source.filename)
    return lsp.Location(path.as_uri(), to_range(span)) if path is not None else None


def _message(error: NetDSLError) -> str:
    lines = [error.message]
    if error.expected is not None:
        lines.append(f"expected: {error.expected}")
    if error.found is not None:
        lines.append(f"found:    {error.found}")
    lines += [f"note: {n}" for n in error.notes]
    return "\n".join(lines)


_CALLED_AT = re.compile(r"called at (.+):(\d+):(\d+)$")


def _range_here(error: NetDSLError, analysis: Analysis) -> lsp.Range:
    """Where in this document to show an error: its own span when it is in this document,
    else the call of this document that led into the file it is in, else the import that
    reads that file, else the first line."""
    span = error.span
    if span is not None and analysis.owns(span.source):
        return to_range(span)
    for note in error.notes:  # "in 'down', called at net.net:5:5" (innermost call first)
        match = _CALLED_AT.search(note)
        if match and match[1] == analysis.filename:
            line, column = int(match[2]), int(match[3])
            text = analysis.text.split("\n")[line - 1] if line <= analysis.text.count("\n") + 1 \
                else ""
            word = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[column - 1:])
            end = column + (len(word[0]) if word else 1)
            return to_range(Span(_source(analysis), line, column, line, end))
    module = analysis.module
    if module is not None and module.imports and span is not None:
        target = path_of(span.source.filename)
        imports = module.imports
        chosen = next((i for i in imports if target and target.name == Path(i.path).name),
                      imports[0])
        return to_range(chosen.span)
    return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))


def _source(analysis: Analysis):
    from ..errors import Source

    return analysis.module.source if analysis.module is not None else \
        Source(analysis.text, analysis.filename)


def diagnostics(analysis: Analysis) -> list[lsp.Diagnostic]:
    """Every error of the analysis as a diagnostic (an importable library's missing network
    arguments as information), with the code and span ``netdsl check`` prints."""
    found = [(e, lsp.DiagnosticSeverity.Error) for e in analysis.errors]
    if analysis.library is not None:
        found.append((analysis.library, lsp.DiagnosticSeverity.Information))
    out = []
    for error, severity in found:
        related = None
        if error.span is not None and not analysis.owns(error.span.source):
            where = location(error.span)
            if where is not None:
                related = [lsp.DiagnosticRelatedInformation(where, "the error is here")]
        message = _message(error)
        if severity == lsp.DiagnosticSeverity.Information:
            message += "\nnote: a file to import; its networks need these arguments"
        out.append(lsp.Diagnostic(range=_range_here(error, analysis), message=message,
                                  severity=severity, code=error.code, source="netdsl",
                                  related_information=related))
    return out
