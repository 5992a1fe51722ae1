"""Completion: inside a call's brackets, the callee's keyword parameters with their defaults
first; everywhere, the ops, builtins, blocks and networks in scope and the names of the
enclosing definition. Read from the text before the cursor, not from the syntax tree: while
a call is being typed (``conv(``) the text does not parse."""

from __future__ import annotations

import re

from lsprotocol import types as lsp

from ..ir.ops import REQUIRED, OpRecord, unloaded_plugin
from ..ir.params import spec_literal
from ..lower.loader import prelude
from ..lower.values import BlockValue, Builtin, Function, NetworkValue
from ..syntax import tree as ast
from ..syntax.diagnostics import RESERVED
from .locate import Definition, path_at, text_of

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_GIVEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")


def open_call(text: str) -> tuple[str, str] | None:
    """The name of the call whose brackets the end of ``text`` is in (None outside calls or
    directly inside a list), and the arguments written so far."""
    stack: list[tuple[str, str, int]] = []  # (bracket, callee, where its arguments start)
    in_string = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_string:
            in_string = char != '"' and char != "\n"
        elif char == '"':
            in_string = True
        elif char == "#":
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        elif char in "([":
            word = _WORD.search(text, 0, index) if char == "(" else None
            callee = word[0] if word and word.end() == index else ""
            stack.append((char, callee, index + 1))
        elif char in ")]" and stack:
            stack.pop()
        index += 1
    if not stack or stack[-1][0] != "(" or not stack[-1][1]:
        return None
    return stack[-1][1], text[stack[-1][2]:]


def parameters(value: object) -> list[tuple[str, str | None, str]]:
    """(name, default as a spec writes it or None, documentation) of a callee."""
    if isinstance(value, OpRecord):
        return [(p.name, None if p.default is REQUIRED else spec_literal(p.default), value.doc)
                for p in value.params]
    if isinstance(value, Builtin):
        sig = value.signature
        return [*((n, None, value.doc) for n in sig.required),
                *((n, d, value.doc) for n, d in sig.optional)]
    if isinstance(value, Function):
        return [(n, d, value.doc) for n, d in value.params]
    if isinstance(value, BlockValue | NetworkValue):
        definition = value.definition
        return [(p.name, text_of(p.default.span) if p.default else None,
                 f"parameter of {definition.name}") for p in definition.params]
    return []


def _kind(value: object) -> lsp.CompletionItemKind:
    if isinstance(value, OpRecord | Function):
        return lsp.CompletionItemKind.Function
    if isinstance(value, Builtin):
        return lsp.CompletionItemKind.Keyword
    if isinstance(value, BlockValue):
        return lsp.CompletionItemKind.Module
    if isinstance(value, NetworkValue):
        return lsp.CompletionItemKind.Class
    return lsp.CompletionItemKind.Constant


def _detail(name: str, value: object) -> str:
    if isinstance(value, OpRecord):
        return f"{name}({value.signature()})"
    if isinstance(value, Builtin):
        return value.signature.text(name)  # type: ignore[attr-defined]
    if isinstance(value, Function):
        return f"{value.text()} · function of numbers"
    if isinstance(value, BlockValue | NetworkValue):
        return f"{name}({', '.join(n if d is None else f'{n}={d}' for n, d, _ in parameters(value))})"
    return "constant"


_UNLOADED = object()  # an installed plugin's op that no spec has used yet


def _meaning(scope, name: str) -> object:
    """What ``name`` means in ``scope``, as lookup says, except that an installed plugin is
    not loaded to say it: offering a name is not using it (docs/security.md)."""
    if not unloaded_plugin(name):
        return scope.lookup(name)
    env = scope
    while env is not None:  # a name the spec or the language defines hides the plugin's
        names = getattr(env.names, "fixed", env.names)
        if name in names:
            return names[name]
        env = env.parent
    return _UNLOADED


def _local_names(module: ast.Module | None, line: int, column: int) -> list[tuple[str, str]]:
    """Parameters and named tensors of the definitions around the cursor."""
    if module is None:
        return []
    out = []
    for node in path_at(module, line, column):
        if isinstance(node, Definition):
            out += [(p.name, "parameter") for p in node.params]
        body = node.body if isinstance(node, ast.NetworkDef) else \
            node.items if isinstance(node, ast.Lines) else ()
        out += [(s.name, "tensor") for s in body if isinstance(s, ast.Assign)]
    return out


def complete(before: str, env, module: ast.Module | None, line: int, column: int
             ) -> lsp.CompletionList:
    """Completions for the cursor at the end of ``before`` (the document's text up to it)."""
    scope = env if env is not None else prelude()
    items: list[lsp.CompletionItem] = []
    call = open_call(before)
    in_value = call is not None and "=" in re.split(r"[,(]", call[1])[-1]
    if call is not None and not in_value:
        callee = scope.lookup(call[0])
        given = set(_GIVEN.findall(call[1]))
        for name, default, doc in parameters(callee):
            if name in given:
                continue
            shown = f"{name}={default}" if default is not None else f"{name}= (required)"
            items.append(lsp.CompletionItem(f"{name}=", kind=lsp.CompletionItemKind.Property,
                                            detail=shown, documentation=doc, insert_text=f"{name}=",
                                            sort_text=f"0{name}"))
    for name, kind in _local_names(module, line, column):
        items.append(lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Variable, detail=kind,
                                        sort_text=f"1{name}"))
    for name in sorted(scope.all_names()):
        value = _meaning(scope, name)
        if value is _UNLOADED:
            items.append(lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Function,
                                            detail="an installed plugin's op (loaded when "
                                            "the spec uses it)", sort_text=f"2{name}"))
            continue
        items.append(lsp.CompletionItem(name, kind=_kind(value), detail=_detail(name, value),
                                        documentation=getattr(value, "doc", None),
                                        sort_text=f"2{name}"))
    if call is None and not before.rsplit("\n", 1)[-1].strip(" \t"):
        items += [lsp.CompletionItem(w, kind=lsp.CompletionItemKind.Keyword, sort_text=f"3{w}")
                  for w in RESERVED]
    return lsp.CompletionList(is_incomplete=False, items=items)
