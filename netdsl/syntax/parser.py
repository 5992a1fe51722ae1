"""Text to syntax tree.

One LALR parser built from ``grammar.lark``; the tree is built while parsing (Lark's inline
transformer), so no phase recurses over the parse tree and deep nesting cannot overflow the
Python stack: nesting beyond :data:`MAX_NESTING` is reported as an error instead. Lark's
exceptions never leave this module: each becomes a :class:`~netdsl.errors.SpecSyntaxError`
with a real line and column and, for the common mistakes, a hint.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from importlib import resources

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput

from .. import limits
from ..errors import NetDSLError, Source, Span, SpecErrors, SpecLimitError, SpecSyntaxError
from . import tree as ast
from .bounds import check_size, tokens_over_limit
from .diagnostics import syntax_error

MAX_NESTING = 100  # calls/brackets inside each other; far beyond any real network
MAX_DIGITS = limits.MAX_DIGITS


class _Layout:
    """Post-lexer: newlines inside brackets, after ``->`` or ``=``, and before ``->`` are
    whitespace; every other newline ends a statement."""

    always_accept = ("_NL",)
    _continuers = frozenset({"_ARROW", "EQUAL", "COMMA"})
    source = Source("")
    offset = 0  # lines before the text being parsed (see _run)

    def process(self, stream):
        depth, pending, previous, count = 0, None, None, 0
        # Nesting is also capped here, as the tokens arrive: 100,000 '(' fail at the 101st
        # instead of after the parser has shifted them all. Right-nested operators count too:
        # 'a if c else b if ...' and '2 ** 2 ** ...' per bracket level, and runs of unary '-'.
        right, minus = [0], 0
        for token in stream:
            kind = token.type
            if self.offset:
                token.line += self.offset
                token.end_line += self.offset
            if kind == "_NL":
                if depth == 0 and previous not in self._continuers and pending is None:
                    pending = token
                    right[0] = 0
                continue
            if pending is not None and kind != "_ARROW":
                yield pending
            pending = None
            minus = minus + 1 if kind in ("MINUS", "NOT") else 0
            if kind in ("LPAR", "LSQB"):
                depth += 1
                right.append(0)
            elif kind in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
                right = right[:-1] or [0]
            elif kind in ("IF", "POW"):
                right[-1] += 1
            elif kind == "COMMA":
                right[-1] = 0
            if max(depth, right[-1], minus) > MAX_NESTING:
                raise SpecLimitError(f"expression nested more than {MAX_NESTING} levels deep",
                                     _span_of(self.source, [token]))
            count += 1  # counted as they arrive: a 50 MB chain stops here, not after parsing
            if count > limits.MAX_TOKENS:
                raise SpecLimitError(f"spec has more than {limits.MAX_TOKENS:,} tokens",
                                     _span_of(self.source, [token]))
            previous = kind
            yield token
        if pending is not None:
            yield pending


def _span_of(source: Source, parts) -> Span:
    """From the first to the last of ``parts`` (tokens or nodes; None is skipped): tokens
    and spans both carry line, column, end_line and end_column."""
    parts = [p.span if isinstance(p, ast.Node) else p for p in parts if p is not None]
    first, last = parts[0], parts[-1]
    return Span(source, first.line, first.column, last.end_line, last.end_column)


class _Builder(Transformer):
    """Builds :mod:`netdsl.syntax.tree` nodes bottom-up, called by the parser for each rule."""

    def __init__(self):
        super().__init__()
        self.source = Source("")
        self.depth: dict[int, int] = {}

    # helpers ----------------------------------------------------------------------------
    def _node(self, cls, parts, *fields, children=()):
        node = cls(_span_of(self.source, parts), *fields)
        depth = 1 + max((self.depth.get(id(c), 0) for c in children), default=0)
        if depth > MAX_NESTING:
            raise SpecLimitError(f"expression nested more than {MAX_NESTING} levels deep",
                                 _span_of(self.source, [p for p in parts if p is not None][:1]))
        self.depth[id(node)] = depth
        return node

    def _number(self, token: Token) -> str:
        digits = token.value
        if len(digits.replace(".", "").split("e")[0].split("E")[0]) > MAX_DIGITS:
            raise SpecLimitError(f"number has {len(digits)} digits; at most {MAX_DIGITS} allowed",
                                 _span_of(self.source, [token]))
        return digits

    # atoms ------------------------------------------------------------------------------
    def int(self, c):
        return self._node(ast.Int, c, int(self._number(c[0])))

    def float(self, c):
        problem = limits.decimal_problem(c[0].value)  # length and value, not digits
        if problem is not None:
            raise SpecLimitError(f"number {limits.shown(c[0].value)} {problem}",
                                 _span_of(self.source, c))
        return self._node(ast.Float, c, float(c[0].value))

    def dims(self, c):
        for part in c[0].value.split("x"):
            if len(part) > MAX_DIGITS:
                raise SpecLimitError(f"size has a {len(part)}-digit dimension; at most "
                                     f"{MAX_DIGITS} digits allowed", _span_of(self.source, c))
        return self._node(ast.Dims, c, tuple(int(p) for p in c[0].value.split("x")))

    def string(self, c):
        return self._node(ast.Str, c, c[0].value[1:-1])

    def reduce(self, c):
        return self._node(ast.Reduce, c, int(self._number(Token("INT", c[0].value[1:]))))

    def ref(self, c):
        return self._node(ast.Ref, c, c[0].value)

    def list(self, c):
        items = tuple(x for x in c[1:-1] if x is not None)
        return self._node(ast.ListExpr, c, items, children=items)

    def paren(self, c):
        inner = c[1]  # brackets build no node, but count as a level of nesting
        depth = self.depth.get(id(inner), 0) + 1
        if depth > MAX_NESTING:
            raise SpecLimitError(f"expression nested more than {MAX_NESTING} levels deep",
                                 _span_of(self.source, c[:1]))
        self.depth[id(inner)] = depth
        return inner

    def named(self, c):
        """``(c2 = layer1: ...)``: a tensor named in the middle of a chain (the brackets count
        as a level of nesting, as ``paren``'s do)."""
        return self._node(ast.Assign, c[1:-1], c[1].value, c[2], children=(c[2],))

    # operators --------------------------------------------------------------------------
    def binop(self, c):
        left, op, right = c
        return self._node(ast.BinOp, c, op.value, left, right, children=(left, right))

    def neg(self, c):
        return self._node(ast.Neg, c, c[1], children=(c[1],))

    def compare(self, c):
        left, op, right = c
        return self._node(ast.Compare, c, op.value, left, right, children=(left, right))

    def logic(self, c):
        left, op, right = c
        return self._node(ast.Logic, c, op.value, left, right, children=(left, right))

    def not_test(self, c):
        return self._node(ast.Not, c, c[1], children=(c[1],))

    def cond(self, c):
        then, _, test, _, otherwise = c
        return self._node(ast.Cond, c, then, test, otherwise, children=(then, test, otherwise))

    def kwarg(self, c):
        return self._node(ast.Kwarg, c, c[0].value, c[1], children=(c[1],))

    def call(self, c):
        func, args = c[0], [a for a in c[2:-1] if a is not None]
        positional = tuple(a for a in args if not isinstance(a, ast.Kwarg))
        keywords = tuple(a for a in args if isinstance(a, ast.Kwarg))
        return self._node(ast.Call, c, func, positional, keywords, children=(func, *args))

    def index(self, c):
        return self._node(ast.Index, c, c[0], c[2], children=(c[0], c[2]))

    def chain(self, c):
        return self._node(ast.Chain, c, tuple(c), children=c)

    def label(self, c):
        name = c[0].value[1:-1] if c[0].type == "STRING" else c[0].value
        return self._node(ast.Label, c, name, c[1], children=(c[1],))

    def keyed(self, c):
        key = tuple(int(p) for p in c[0].value.split("x"))
        return self._node(ast.Keyed, c, key, c[1], children=(c[1],))

    # statements -------------------------------------------------------------------------
    def param(self, c):
        return self._node(ast.Param, c, c[0].value, c[1] if len(c) > 1 else None)

    def params(self, c):
        return tuple(p for p in c[1:-1] if p is not None)

    def import_stmt(self, c):
        return self._node(ast.Import, c, c[1].value[1:-1])

    def block_def(self, c):
        inline = c[0].type == "INLINE"
        rest = c[1:] if inline else c
        params = rest[2] if len(rest) == 4 else ()
        return self._node(ast.BlockDef, c, rest[1].value, params or (), rest[-1], inline)

    def block_body(self, c):
        inline = c[0].type == "INLINE"
        rest = c[1:] if inline else c
        has_params = isinstance(rest[2], tuple) or rest[2] is None
        params = (rest[2] or ()) if has_params else ()
        lines = tuple(rest[3:] if has_params else rest[2:])
        body = self._node(ast.Lines, lines, lines)
        return self._node(ast.BlockDef, [c[0], body], rest[1].value, params, body, inline)

    def input_stmt(self, c):
        dims = c[1:]
        if isinstance(dims[0], Token) and dims[0].type == "DIMS":
            dims = [self.dims([dims[0]])]
        else:
            dims = [d for d in dims[1:-1] if d is not None]
        return self._node(ast.InputStmt, c, tuple(dims))

    def assign(self, c):
        return self._node(ast.Assign, c, c[0].value, c[1], children=(c[1],))

    def output_stmt(self, c):
        return self._node(ast.OutputStmt, c, tuple(i for i in c[1:] if i is not None),
                          children=c[1:])

    def init_stmt(self, c):
        return self._node(ast.InitStmt, c, c[1])

    def network_def(self, c):
        has_params = isinstance(c[2], tuple)
        params = (c[2] or ()) if has_params else ()
        body = tuple(c[3:] if has_params else c[2:])
        return self._node(ast.NetworkDef, c[:2], c[1].value, params, body)

    def network_alias(self, c):
        params = c[2] if len(c) == 4 else ()
        return self._node(ast.NetworkAlias, c, c[1].value, params or (), c[-1])

    def start(self, c):
        return tuple(c)


_GRAMMAR = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
_lock = threading.Lock()
_builder = _Builder()
_layout = _Layout()
_parser: Lark | None = None


def _get_parser() -> Lark:
    global _parser
    if _parser is None:
        _parser = Lark(_GRAMMAR, parser="lalr", lexer="basic", postlex=_layout,
                       transformer=_builder, maybe_placeholders=True, start=["start", "expr"])
    return _parser


def parse(text: str, filename: str | None = None) -> ast.Module:
    """Parse one spec file's text into a :class:`~netdsl.syntax.tree.Module`.

    >>> parse("block b(c) = conv(c, 3x3) -> relu").items[0].name
    'b'
    """
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark (Windows editors) is no text
    if len(text) <= CACHED_TEXT:
        return _parse_cached(text, filename or "<string>")
    return _parse(text, filename or "<string>")


# Trees are immutable, so a file parsed once serves every later compile that imports it: the
# ResNet family's 2 kB takes 5 of the 18 ms of compiling ResNet-152. Only texts up to 64 kB
# are kept (128 of them at most), so a cache never holds a hostile megabyte.
CACHED_TEXT = 64 * 1024


@functools.lru_cache(maxsize=128)
def _parse_cached(text: str, filename: str) -> ast.Module:
    return _parse(text, filename)


def _parse(text: str, filename: str) -> ast.Module:
    source = Source(text, filename)
    check_size(source)
    over = tokens_over_limit(source)
    if over is not None:
        _refuse_tokens(source, *over)
    try:
        return ast.Module(source, _run(source, text + "\n", "start"))
    except SpecSyntaxError as first:
        errors = [first, *sorted(_later_syntax_errors(source, text, first),
                                 key=lambda e: (e.line, e.column))]
        if len(errors) == 1:
            raise
        raise SpecErrors(errors) from None


def _refuse_tokens(source: Source, over: Span, start_end: int) -> None:
    """Refuses a text with too many tokens; what the parser refuses in the text's start comes
    first, as it would when reading the whole text (100,000 brackets are nested too deeply,
    which the parser finds at the 101st)."""
    with contextlib.suppress(SpecSyntaxError, SpecErrors):  # the start alone ends mid-way
        _run(source, source.text[:start_end] + "\n", "start")
    raise SpecLimitError(f"spec has more than {limits.MAX_TOKENS:,} tokens", over)


MAX_REPORTED = 10  # syntax errors reported from one file
_TOPLEVEL_LINE = re.compile(r"^(import|block|inline|network)\b")


def _later_syntax_errors(source: Source, text: str, first: SpecSyntaxError) -> list:
    """Syntax errors in the top-level statements after the one that failed: each statement
    that starts a line with ``import``, ``block``, ``inline`` or ``network`` is parsed on its
    own, at its own line numbers, so one typo does not hide the next. Each is parsed alone
    (its line numbers shifted as the tokens arrive), so the whole file is read once more."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _TOPLEVEL_LINE.match(line)]
    errors: list[SpecSyntaxError] = []
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=False):
        if start < (first.line or 0) or len(errors) + 1 >= MAX_REPORTED:
            continue
        chunk = "\n".join(lines[start:end])
        try:  # the chunk ends where the statement does, and keeps the file's line numbers
            _run(Source(chunk, source.filename), chunk + "\n", "start", lines_before=start)
        except SpecSyntaxError as error:
            if error.line != first.line:
                errors.append(error)
        except NetDSLError:
            continue
    return errors


def parse_expression(text: str, filename: str = "<override>") -> ast.Node:
    """Parse one expression, such as the value of a command-line override (``7x7``)."""
    return _run(Source(text, filename), text, "expr")


def _run(source: Source, text: str, start: str, lines_before: int = 0):
    """Parses ``text``; with ``lines_before``, as if that many lines came first (a statement
    of a larger file, for error recovery): tokens and errors carry the file's line numbers,
    and the padded text is built only to describe an error."""
    with _lock:
        parser = _get_parser()
        _builder.source = _layout.source = source
        _builder.depth = {}
        _layout.offset = lines_before
        try:
            return parser.parse(text, start=start)
        except UnexpectedInput as error:
            if lines_before:
                if isinstance(error, UnexpectedCharacters):
                    error.line += lines_before
                source = Source("\n" * lines_before + source.text, source.filename)
            raise syntax_error(source, error) from None
        except NetDSLError:
            raise
        except RecursionError:  # pragma: no cover - the parser is iterative; belt and braces
            raise SpecLimitError("spec nested too deeply to parse",
                                 Span(source, 1, 1, 1, 2)) from None
        finally:
            _builder.depth = {}
            _layout.offset = 0


def parse_part(source: Source, text: str, lines_before: int) -> tuple[ast.Node, ...]:
    """The items of ``text``, whole top-level statements that start ``lines_before`` lines
    into ``source``, with spans into ``source`` (the language server re-parses only the
    statements an edit changed). An error may read differently from the same error in the
    whole file: parse the whole file to report it."""
    return _run(source, text + "\n", "start", lines_before)
