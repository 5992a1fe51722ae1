"""Hover: for a layer, block call or label, what it expands to (output shape, parameters,
MACs, receptive field) and, for a call, the callee's signature with its defaults; for any
other name, its definition."""

from __future__ import annotations

from collections import Counter

from lsprotocol import types as lsp

from ..errors import Span
from ..ir.ops import OpRecord, fmt_shape
from ..lower.values import Builtin, Function
from ..syntax import tree as ast
from .analysis import Analysis
from .completion import parameters
from .convert import to_range
from .figures import Figures, describe, expansions, figures
from .locate import Target, name_under, path_at, resolve, text_of

MAX_LISTED = 6  # distinct expansions listed one by one


def comment_above(span: Span) -> str:
    """The comment lines right above a definition (how the zoo documents its blocks)."""
    lines = []
    number = span.line - 1
    while number >= 1 and span.source.line(number).lstrip().startswith("#"):
        lines.append(span.source.line(number).lstrip()[1:].strip())
        number -= 1
    return " ".join(reversed(lines))


def signature(target: Target) -> str:
    """``bottleneck(c, stride=1, ...)`` and what kind of thing the name is."""
    value = target.value
    if isinstance(value, OpRecord):
        return f"**{target.name}**({value.signature()}) · layer  \n{value.doc}"
    if isinstance(value, Builtin):
        return f"**{target.name}** · builtin  \n{value.doc}"
    if isinstance(value, Function):
        return f"**{value.text()}** · function of numbers  \n{value.doc}"
    if isinstance(value, ast.BlockDef | ast.NetworkDef | ast.NetworkAlias):
        params = ", ".join(p.name if p.default is None else f"{p.name}={text_of(p.default.span)}"
                           for p in value.params)
        kind = "block" if isinstance(value, ast.BlockDef) else "network"
        head = f"**{value.name}**({params}) · {kind}"
        if isinstance(value, ast.NetworkAlias):
            head += f" = `{text_of(value.target.span)}`"
        where = f"defined at {value.span.source.filename}:{value.span.line}"
        doc = comment_above(value.span)
        return "  \n".join([head, *([doc] if doc else []), where])
    if target.kind == "parameter" and isinstance(value, ast.Param):
        default = f" = `{text_of(value.default.span)}`" if value.default is not None else ""
        owner = getattr(target.owner, "name", "?")
        return f"parameter **{target.name}**{default} of `{owner}`"
    if target.kind == "tensor":
        return f"tensor **{target.name}**, named at line {target.span.line}" if target.span \
            else f"tensor **{target.name}**"
    return f"**{target.name}** · {target.kind} `{value!r}`"


def _subject(path: list[ast.Node]) -> ast.Node | None:
    """The call, label or layer name the cursor is in (a callee's name means its call)."""
    for node in reversed(path):
        if isinstance(node, ast.Ref):
            parent = path[path.index(node) - 1] if path.index(node) else None
            if isinstance(parent, ast.Call) and parent.func is node:
                return parent
            return node
        if isinstance(node, ast.Call | ast.Label | ast.Chain):
            return node if not isinstance(node, ast.Chain) else None
    return None


def _keyword(path: list[ast.Node], line: int, column: int, env) -> str | None:
    """On the name of a keyword argument (``stride=2``): that parameter of the callee."""
    if len(path) < 2 or not isinstance(path[-1], ast.Kwarg) or env is None:
        return None
    kwarg, call = path[-1], path[-2]
    span = kwarg.span
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Ref)) or \
            not (span.line == line and span.column <= column <= span.column + len(kwarg.name)):
        return None
    callee = call.func.name
    for name, default, doc in parameters(env.lookup(callee)):
        if name == kwarg.name:
            given = "required" if default is None else f"default `{default}`"
            return f"parameter **{name}** of `{callee}` ({given})  \n{doc}"
    return None


def _import_text(item: ast.Import, document: Analysis) -> str:
    """What an import reads: the file it found and the names it brings in."""
    env = getattr(document.loaded, "env", None)
    brought = sorted(n for n, span in (env.spans.items() if env is not None else ())
                     if span is item.span)
    definition = getattr(env.names[brought[0]], "definition", None) if brought else None
    where = definition.span.source.filename if definition is not None else None
    head = f"import `{item.path}`" + (f" from {where}" if where else "")
    return f"{head}  \n" + (f"brings in: {', '.join(brought)}" if brought else
                           "brings in nothing (or the file could not be read)")


def _expansions_text(found: list[Figures]) -> str:
    if len(found) == 1:
        return describe(found[0])
    counted = Counter(f.summary() for f in found)
    lines = [f"expanded {len(found)} times (calls of its block, or stack copies); "
             f"{sum(f.params for f in found):,} params in all"]
    for summary, count in list(counted.items())[:MAX_LISTED]:
        example = next(f for f in found if f.summary() == summary)
        lines.append(f"- {count}x: " + describe(example).replace("  \n", "; "))
    if len(counted) > MAX_LISTED:
        lines.append(f"- and {len(counted) - MAX_LISTED} more kinds")
    return "  \n".join(lines)


def hover(document: Analysis, graph_of: Analysis | None, line: int, column: int) -> lsp.Hover | None:
    """The hover at (line, column) of ``document``; ``graph_of`` holds the checked graph whose
    nodes came from this text (the document's own, or one of a file importing it)."""
    module = document.module
    if module is None:
        return None
    path = path_at(module, line, column)
    env = getattr(document.loaded, "env", None)
    parts: list[str] = []
    named = name_under(path, line, column)
    labelled = bool(path) and isinstance(path[-1], ast.Label)  # a label names, refers to nothing
    target = resolve(named[0], path, env) if named and not labelled else None
    subject = _subject(path)
    if isinstance(path[-1] if path else None, ast.BlockDef | ast.NetworkDef | ast.NetworkAlias):
        subject = None  # the definition's own name: what it is, not what it expands to
    if target is not None:
        parts.append(signature(target))
    if subject is not None and graph_of is not None:
        found = [figures(graph_of, nodes) for nodes in expansions(graph_of, document, subject.span)]
        if found:
            parts.append(_expansions_text(found))
    if isinstance(target and target.value, ast.NetworkDef | ast.NetworkAlias) and \
            graph_of is not None and graph_of.graph is not None and \
            graph_of.graph.name == target.name:
        graph = graph_of.graph
        whole = figures(graph_of, list(graph.nodes))
        parts.append(f"maps `{fmt_shape(graph.input.shape)}` to "
                     f"`{fmt_shape(graph.output_shape)}` in {len(graph.nodes)} nodes  \n"
                     f"params {whole.params:,} · MACs {whole.macs:,}")
    keyword = _keyword(path, line, column, env)
    if keyword is not None:
        parts.insert(0, keyword)
    if path and isinstance(path[0], ast.Import):
        parts.append(_import_text(path[0], document))
    if not parts:
        return None
    where = named[1] if named else subject.span if subject else path[-1].span
    return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, "\n\n---\n\n".join(parts)),
                     to_range(where))
