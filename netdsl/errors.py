"""The one exception hierarchy of netdsl, and how a diagnostic is drawn.

Every error the tool raises is a :class:`NetDSLError`. It knows where it happened (a
:class:`Span` into a named source text) and renders like rustc and Elm do::

    specs/bad.net:4:5: error: residual body gives 128x28x28 but its input is 64x56x56
       |
     4 |     residual(conv(128, 3x3, stride=2, pad=1))
       |     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
       = expected: 64x56x56
       = found:    128x28x28
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

MAX_SHOWN = 100  # characters of a source line shown around the caret (generated specs are wide)


@dataclass(frozen=True)
class Source:
    """A spec's text and the name it is reported under (a path, or ``<string>``)."""

    text: str
    filename: str = "<string>"

    @functools.cached_property
    def _lines(self) -> tuple[str, ...]:
        # split once per source: lowering reads a line for every label (label_span), and a
        # split per read cost compiling ResNet-152 1.5 of its 30 ms
        return tuple(line.removesuffix("\r") for line in self.text.split("\n"))

    def lines(self) -> list[str]:
        """The lines as the lexer counts them: only '\\n' ends one (not '\\f' or U+2028)."""
        return list(self._lines)

    def line(self, number: int) -> str:
        lines = self._lines
        return lines[number - 1] if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A 1-based, end-exclusive region of one source: where a node of the spec was written."""

    source: Source
    line: int
    column: int
    end_line: int
    end_column: int

    def __repr__(self) -> str:  # keeps IR dumps short
        return f"{self.line}:{self.column}"


class _Shown:
    """A part of a diagnostic (its message, a note), kept printable whatever is assigned to
    it: text from outside netdsl (torch's and a plugin's exception messages, file names, a
    spec's own text) reaches the terminal and the editor only through these."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, error, owner=None):
        return self if error is None else error.__dict__.get(self.slot)

    def __set__(self, error, value) -> None:
        if isinstance(value, tuple):
            value = tuple(printable(str(v)) for v in value)
        elif value is not None:
            value = printable(str(value))
        error.__dict__[self.slot] = value


class NetDSLError(Exception):
    """Base of every error netdsl raises; ``str()`` is the full rendered diagnostic. Its
    message, notes, expected and found are printable text (see :func:`printable`)."""

    code = "E000"
    kind = "error"
    message, expected, found, notes = _Shown(), _Shown(), _Shown(), _Shown()

    def __init__(self, message: str, span: Span | None = None, *, expected: str | None = None,
                 found: str | None = None, notes: tuple[str, ...] = ()):
        self.message = message
        self.span = span
        self.expected = expected
        self.found = found
        self.notes = tuple(notes)
        super().__init__(self.render())

    def __str__(self) -> str:
        return self.render()

    def within(self, note: str | None, span: Span | None = None) -> NetDSLError:
        """Adds one link of the chain of block calls an error happened in (innermost first);
        ``span`` replaces a span that points into netdsl's own prelude, not the user's file."""
        if span is not None and (self.span is None or self.span.source.filename == PRELUDE):
            self.span = span
        if note is not None:
            self.notes = (*self.notes, note)
        self.args = (self.render(),)
        return self

    @property
    def filename(self) -> str | None:
        return self.span.source.filename if self.span else None

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def render(self) -> str:
        if self.span is None:
            return "\n".join([f"error: {self.message}", *self._footer()])
        s = self.span
        head = f"{printable(s.source.filename)}:{s.line}:{s.column}: error: {self.message}"
        # a tab is one space and a control character one replacement (_one_column, below):
        # one character per column either way, so the caret stays under its column, the
        # window is cut first and a 4 MB line costs what 100 characters do
        text = s.source.line(s.line)
        gutter = " " * len(str(s.line))
        last = s.end_column if s.end_line == s.line else len(text) + 1
        column = min(s.column, len(text) + 1)
        width = max(1, min(last, len(text) + 1) - column)
        if len(text) > MAX_SHOWN:  # show a window of a very long line around the caret
            start = max(0, column - 1 - MAX_SHOWN // 4)
            cut = text[start:start + MAX_SHOWN]
            text = ("..." if start else "") + cut + ("..." if start + MAX_SHOWN < len(text) else "")
            column = column - start + (3 if start else 0)
            width = max(1, min(width, len(cut) + 1 - (column - (3 if start else 0) - 1)))
        caret = " " * (column - 1) + "^" * width
        text = _one_column(text.expandtabs(1))
        return "\n".join([head, f"{gutter} |", f"{s.line} | {text}", f"{gutter} | {caret}",
                          *self._footer(gutter)])

    def _footer(self, gutter: str = "") -> list[str]:
        out = []
        if self.expected is not None:
            out.append(f"{gutter} = expected: {self.expected}")
        if self.found is not None:
            out.append(f"{gutter} = found:    {self.found}")
        out += [f"{gutter} = note: {n}" for n in self.notes]
        return out


class SpecErrors(NetDSLError):
    """Several independent errors in one file, reported together (the first one's code,
    message and position are this error's own)."""

    def __init__(self, errors: list[NetDSLError]):
        self.errors = tuple(errors)
        first = self.errors[0]
        self.code = first.code
        super().__init__(first.message, first.span, expected=first.expected, found=first.found,
                         notes=first.notes)

    def render(self) -> str:
        if not getattr(self, "errors", ()):
            return super().render()
        return "\n\n".join([*(e.render() for e in self.errors),
                             f"{len(self.errors)} errors"])


def printable(text: str) -> str:
    """``text`` with every character a terminal or an editor would obey rather than show
    written as an escape: C0 and C1 controls, DEL, line and paragraph separators, bidi
    overrides (``\\x1b[2J`` shows as those six characters). Newlines stay."""
    if text.isprintable():
        return text
    return "\n".join(line if line.isprintable() else "".join(map(_escaped, line))
                     for line in text.split("\n"))


def _escaped(char: str) -> str:
    if char.isprintable():
        return char
    number = ord(char)
    return f"\\x{number:02x}" if number < 0x100 else \
        f"\\u{number:04x}" if number < 0x10000 else f"\\U{number:08x}"


def _one_column(line: str) -> str:
    """A source line as a diagnostic quotes it above its caret: every unprintable character
    one replacement character, so each column is still one character."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in line)


PRELUDE = "<prelude>"  # the filename of netdsl's built-in blocks (netdsl/prelude.net)


def call_note(span: Span, name: str | None = None) -> str:
    """``in 'down', called at net.net:5:5``: one link of the chain of block calls that a
    diagnostic inside a block body lists. Without ``name``, the called name is read from the
    call's text (``down(32)``), when the call starts with one."""
    where = f"{span.source.filename}:{span.line}:{span.column}"
    if name is None:
        text = span.source.line(span.line)[span.column - 1:]
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*(\(|$|\s*->|\s*→|,|\))", text)
        name = match.group(1) if match else None
    return f"in '{name}', called at {where}" if name else f"in the block called at {where}"


class SpecSyntaxError(NetDSLError):
    """The text is not in the netdsl grammar."""

    code = "E001"


class SpecNameError(NetDSLError):
    """A name that nothing defines, or one defined twice."""

    code = "E002"


class SpecArgumentError(NetDSLError):
    """A call with the wrong number, names or types of arguments."""

    code = "E003"


class SpecTypeError(NetDSLError):
    """A value of the wrong kind: a layer where a number belongs, or the other way round."""

    code = "E004"


class SpecShapeError(NetDSLError):
    """Shapes that do not fit: a residual sum, a concat, a too-small input, a fc on 3-D data."""

    code = "E005"


class SpecImportError(NetDSLError):
    """An import that cannot be read, escapes the allowed folders, or forms a cycle."""

    code = "E006"


class SpecLimitError(NetDSLError):
    """A spec that would exceed a resource limit (nesting, expansion size, parameter budget)."""

    code = "E007"


class SpecRecursionError(NetDSLError):
    """A block that calls itself, directly or through others."""

    code = "E008"


class OverrideError(NetDSLError):
    """A command-line or API override that does not name a network parameter or is malformed."""

    code = "E009"


class BuildError(NetDSLError):
    """A failure while emitting or saving a module (e.g. an unsupported output format)."""

    code = "E010"


class OptionError(BuildError, ValueError):
    """An API option out of its range (a sweep budget of nan). Also a ValueError, which such
    options raised before issue 27, so that callers catching that keep working."""


class ModuleNameError(SpecNameError):
    """A label that cannot name a torch module ('.', empty, an ``nn.Module`` attribute such
    as ``forward``), or two modules given the same name in one scope."""

    code = "E011"


class TensorNameError(SpecNameError):
    """A named tensor used before the line that defines it, named twice, or named like a
    layer, block, builtin or parameter that it would hide."""

    code = "E012"


class RegistrationError(NetDSLError):
    """A malformed op record, or a plugin that registers a name already taken or fails to load."""

    code = "E020"


class ModuleImportError(NetDSLError):
    """A PyTorch module that ``netdsl import`` cannot express: a layer with no netdsl op, or
    data-dependent control flow. Points into the traced code of the module."""

    code = "E013"


class ImportOptionError(ModuleImportError, ValueError):
    """A bad argument of ``netdsl.importer.from_module`` (a network name that is not an
    identifier); also a ValueError, which it raised before issue 27."""
