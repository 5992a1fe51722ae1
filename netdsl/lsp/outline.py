"""The document outline (networks, blocks, labels, named tensors) and the inlay hints that
write each network line's output shape after it, as the zoo's specs do by hand
(``# 256x56x56``)."""

from __future__ import annotations

from lsprotocol import types as lsp

from ..ir.ops import fmt_shape
from ..lower.naming import label_span
from ..lower.values import name_span
from ..syntax import tree as ast
from ..syntax.tree import children
from .analysis import Analysis
from .convert import to_range
from .figures import expansions
from .locate import Definition

_KINDS = {ast.NetworkDef: lsp.SymbolKind.Class, ast.NetworkAlias: lsp.SymbolKind.Class,
          ast.BlockDef: lsp.SymbolKind.Function}


def _inner(node: ast.Node) -> list[lsp.DocumentSymbol]:
    """Labels and named tensors under ``node``, nested as they are written."""
    out: list[lsp.DocumentSymbol] = []
    for child in children(node):
        if isinstance(child, ast.Label):
            where = to_range(label_span(child))
            out.append(lsp.DocumentSymbol(child.name, lsp.SymbolKind.Field, to_range(child.span),
                                          where, children=_inner(child.body) or None))
        elif isinstance(child, ast.Assign):
            span = child.span
            where = lsp.Range(to_range(span).start, lsp.Position(span.line - 1, span.column - 1
                                                                 + len(child.name)))
            out.append(lsp.DocumentSymbol(child.name, lsp.SymbolKind.Variable,
                                          to_range(span), where,
                                          children=_inner(child.value) or None))
        else:
            out.extend(_inner(child))
    return out


def symbols(module: ast.Module) -> list[lsp.DocumentSymbol]:
    out = []
    for item in module.definitions:
        if not isinstance(item, Definition):
            continue
        params = ", ".join(p.name for p in item.params)
        kind = "block" if isinstance(item, ast.BlockDef) else "network"
        out.append(lsp.DocumentSymbol(
            item.name, _KINDS[type(item)], to_range(item.span),
            to_range(name_span(item.span, item.name)), detail=f"{kind}({params})",
            children=_inner(item) or None))
    return out


def _visible(span, visible: lsp.Range | None) -> bool:
    return visible is None or visible.start.line <= span.end_line - 1 <= visible.end.line


def _hint(span, text: str, line_text: str) -> lsp.InlayHint | None:
    if text in line_text:  # the line already says it in a comment
        return None
    return lsp.InlayHint(to_range(span).end, f"# {text}", kind=lsp.InlayHintKind.Type,
                         padding_left=True)


def inlay_hints(document: Analysis, graph_of: Analysis | None,
                visible: lsp.Range | None = None) -> list[lsp.InlayHint]:
    """One hint per network line that makes layers: the shape of what it outputs."""
    module = document.module
    if module is None or graph_of is None or graph_of.graph is None:
        return []
    graph = graph_of.graph
    hints = []
    for item in module.definitions:
        if isinstance(item, ast.NetworkAlias) and item.name == graph.name and \
                _visible(item.span, visible):
            hints.append(_hint(item.span, fmt_shape(graph.output_shape),
                               item.span.source.line(item.span.end_line)))
        if not isinstance(item, ast.NetworkDef):
            continue
        for stmt in item.body:
            if isinstance(stmt, ast.InputStmt | ast.InitStmt | ast.OutputStmt) or \
                    not _visible(stmt.span, visible):
                continue
            found = expansions(graph_of, document, stmt.span)
            if found:
                last = max(found[0], key=lambda n: n.id)
                hints.append(_hint(stmt.span, fmt_shape(last.shape),
                                   stmt.span.source.line(stmt.span.end_line)))
    return [h for h in hints if h is not None]
