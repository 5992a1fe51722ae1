"""The pygls wiring: documents in, diagnostics out, requests answered by the other modules.

Every change re-checks the document at once (a small edit to a zoo spec costs tens of
milliseconds; imports come from the cache). A request never fails the session: a bug in a
feature is logged and answered with nothing, and a bug while checking becomes a diagnostic.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path

from .. import __version__, limits
from ..errors import NetDSLError, printable
from ..syntax import tree as ast
from ..syntax.fmt import format_text
from . import locate
from .analysis import Analysis, ImportCache, analyse
from .completion import complete
from .convert import diagnostics, location, to_cursor, to_range, utf16
from .hover import hover
from .incremental import Pieces
from .outline import inlay_hints, symbols

log = logging.getLogger(__name__)


class _Protocol(LanguageServerProtocol):
    """pygls drops a request whose parameters do not deserialise (a position with a negative
    line) before reading its id, and the editor waits for an answer for ever: answer it."""

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if "method" in data and "id" in data and isinstance(data["id"], int | str):
                self._send_response(data["id"], None, error.to_response_error())
            raise  # pygls logs it and tells the user, as before


class NetdslServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("netdsl", __version__, protocol_cls=_Protocol)
        self.cache = ImportCache()
        self.latest: dict[str, Analysis] = {}  # uri -> the analysis of its current text
        self.good: dict[str, Analysis] = {}  # uri -> the last one that parsed (navigation)
        self.pieces: dict[str, Pieces] = {}  # uri -> its statements as last parsed
        self.unsaved: set[str] = set()  # uris edited since they were opened or saved

    def check(self, uri: str) -> Analysis:
        document = self.workspace.get_text_document(uri)
        path = _path(uri)
        result = analyse(document.source, path, self.cache,
                         self.pieces.setdefault(uri, {}), self.latest.get(uri),
                         self._unsaved_texts(), self.readable(path))
        self.latest[uri] = result
        if result.module is not None:
            self.good[uri] = result
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri, diagnostics(result), version=document.version))
        return result

    def readable(self, document: Path | None) -> tuple[Path, ...] | None:
        """The folders a document's imports may read (besides netdsl's zoo): the workspace
        folders the editor named (or its root), resolved. With none, the document's own
        folder (None), as ``netdsl check`` reads a file, but only for a document that is a
        file on disk: a URI alone does not make a folder readable; an unsaved buffer
        imports from the zoo until it is saved."""
        uris = [folder.uri for folder in self.workspace.folders.values()] or \
            ([self.workspace.root_uri] if self.workspace.root_uri else [])
        if uris:
            return tuple(path.resolve() for path in map(_path, uris) if path is not None)
        return None if document is not None and _is_file(document) else ()

    def inside(self, document: Path | None) -> bool:
        """Whether the server may read ``document``'s own file (to compare it with the
        editor's buffer): inside a workspace folder, or any file when there is none."""
        folders = self.readable(document)
        if document is None or folders is None:
            return document is not None
        try:
            resolved = document.resolve()
        except (OSError, ValueError, RuntimeError):
            return False
        return any(resolved.is_relative_to(f) for f in folders)

    def _unsaved_texts(self) -> dict[Path, str]:
        """The open documents with unsaved changes, by file: what imports of them read."""
        texts = {}
        for uri in self.unsaved:
            path = _path(uri)
            if path is not None:
                texts[path.resolve()] = self.workspace.get_text_document(uri).source
        return texts

    def check_with_importers(self, uri: str) -> None:
        """Checks ``uri``, then the open documents that import its file (through any chain of
        imports): it was edited or saved, and they read it."""
        self.check(uri)
        self.check_importers(uri)

    def check_importers(self, uri: str) -> None:
        """Checks again the open documents that import ``uri``'s file (through any chain of
        imports): it was edited, saved or closed, and they read it."""
        changed = _path(uri)
        if changed is None:
            return
        changed = changed.resolve()
        for other, analysis in list(self.latest.items()):
            if other != uri and changed in analysis.deps:
                self.check(other)

    def parsed(self, uri: str) -> Analysis | None:
        """The analysis whose syntax tree matches the document now, else the last that parsed."""
        current = self.latest.get(uri)
        return current if current is not None and current.module is not None else \
            self.good.get(uri)

    def graph_of(self, analysis: Analysis) -> Analysis | None:
        """The analysis whose checked graph came from this text: the document's own, or (for
        a file that is imported, like resnet_family.net) one of an open file importing it."""
        if analysis.graph is not None:
            return analysis
        if analysis.path is None:
            return None
        return next((a for a in self.latest.values() if a.graph is not None and
                     analysis.path in a.deps), None)

    def uri_of(self, span, analysis: Analysis, uri: str) -> lsp.Location | None:
        if analysis.owns(span.source):
            return lsp.Location(uri, to_range(span))
        return location(span)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _path(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def safe(default=None):
    """A feature that logs its own bug and answers ``default`` instead of failing."""
    def wrap(feature):
        @functools.wraps(feature)
        def run(ls, params):
            try:
                return feature(ls, params)
            except Exception as error:  # a bug in netdsl must not take the editor's session down
                log.exception("netdsl lsp: %s failed", feature.__name__)
                ls.window_log_message(lsp.LogMessageParams(
                    lsp.MessageType.Error, f"netdsl lsp: {feature.__name__} failed: "
                    f"{type(error).__name__}: {printable(str(error))} (please report it "
                    "with the spec)"))
                return default
        return run
    return wrap


server = NetdslServer()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
@safe()
def did_open(ls: NetdslServer, params: lsp.DidOpenTextDocumentParams) -> None:
    """An editor may open a buffer it kept unsaved (restored at start-up): the files importing
    it read that text, as after an edit."""
    uri = params.text_document.uri
    if ls.inside(_path(uri)) and _differs_from_disk(uri, params.text_document.text):
        ls.unsaved.add(uri)
        ls.check_with_importers(uri)
    else:
        ls.check(uri)


def _differs_from_disk(uri: str, text: str) -> bool:
    path = _path(uri)
    if path is None:
        return False
    try:  # line endings as written; a regular file only, and no more than a spec may have
        return limits.read_text(path, min(len(text), limits.MAX_SOURCE)) != text
    except (OSError, UnicodeDecodeError, ValueError):  # not on disk (yet), or not text
        return False
    except NetDSLError:  # longer than the buffer: it differs
        return True


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
@safe()
def did_change(ls: NetdslServer, params: lsp.DidChangeTextDocumentParams) -> None:
    """An edit is checked at once, and so are the open documents importing the file: they
    read its unsaved text, as the editor shows it."""
    uri = params.text_document.uri
    ls.unsaved.add(uri)
    ls.check_with_importers(uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
@safe()
def did_save(ls: NetdslServer, params: lsp.DidSaveTextDocumentParams) -> None:
    """A saved file may be imported by other open documents: they are checked again."""
    uri = params.text_document.uri
    ls.unsaved.discard(uri)
    ls.check_with_importers(uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
@safe()
def did_close(ls: NetdslServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.latest.pop(uri, None)
    ls.good.pop(uri, None)
    ls.pieces.pop(uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))
    if uri in ls.unsaved:  # its changes are gone: the files importing it read the disk again
        ls.unsaved.discard(uri)
        ls.check_importers(uri)


@server.feature(lsp.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
@safe()
def did_change_folders(ls: NetdslServer, params: lsp.DidChangeWorkspaceFoldersParams) -> None:
    """What imports may read changed: every open document is checked again, and nothing
    linked under the old folders is reused."""
    ls.cache.entries.clear()
    for uri in list(ls.latest):
        ls.latest.pop(uri, None)  # its previous check was made under other folders
        ls.check(uri)


def _at(ls: NetdslServer, params) -> tuple[Analysis, int, int] | None:
    uri = params.text_document.uri
    analysis = ls.parsed(uri)
    if analysis is None:
        return None
    line, column = to_cursor(analysis.text, params.position)
    return analysis, line, column


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
@safe()
def on_hover(ls: NetdslServer, params: lsp.HoverParams) -> lsp.Hover | None:
    found = _at(ls, params)
    if found is None:
        return None
    analysis, line, column = found
    return hover(analysis, ls.graph_of(analysis), line, column)


def _target(analysis: Analysis, line: int, column: int) -> locate.Target | None:
    path = locate.path_at(analysis.module, line, column)  # type: ignore[arg-type]
    named = locate.name_under(path, line, column)
    if named is None or isinstance(path[-1], ast.Label):
        return None
    return locate.resolve(named[0], path, getattr(analysis.loaded, "env", None)) or \
        locate.resolve_in(analysis.module, None, named[0], line, column)  # type: ignore[arg-type]


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
@safe()
def on_definition(ls: NetdslServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    found = _at(ls, params)
    if found is None:
        return None
    target = _target(*found)
    if target is None or target.span is None:
        return None
    return ls.uri_of(target.span, found[0], params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
@safe(default=[])
def on_references(ls: NetdslServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
    """References in every open document (and the definition itself, when asked)."""
    found = _at(ls, params)
    target = _target(*found) if found is not None else None
    if target is None:
        return []
    out = []
    if params.context.include_declaration and target.span is not None:
        out.append(ls.uri_of(target.span, found[0], params.text_document.uri))
    open_paths = set()
    for uri in list(ls.latest):
        analysis = ls.parsed(uri)
        if analysis is None:
            continue
        open_paths.add(analysis.path)
        env = getattr(analysis.loaded, "env", None)
        for span in locate.references(analysis.module, env, target):  # type: ignore[arg-type]
            out.append(lsp.Location(uri, to_range(span)))
    for path, entry in list(ls.cache.entries.items()):  # imported files that are not open
        if path not in open_paths:
            loaded = entry.loaded
            for span in locate.references(loaded.module, loaded.env, target):  # type: ignore
                out.append(lsp.Location(path.as_uri(), to_range(span)))
    return [x for x in out if x is not None]


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                lsp.CompletionOptions(trigger_characters=["(", ",", " "]))
@safe()
def on_completion(ls: NetdslServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    document = ls.workspace.get_text_document(params.text_document.uri)
    lines = document.source.split("\n")
    line, column = to_cursor(document.source, params.position)
    before = "\n".join([*lines[:line - 1], lines[line - 1][:column - 1] if line <= len(lines)
                        else ""])
    analysis = ls.parsed(params.text_document.uri)
    if analysis is None or analysis.loaded is None:  # never linked: its imports still count
        imports = "\n".join(x if x.startswith("import ") else "" for x in lines)
        path = _path(params.text_document.uri)
        linked = analyse(imports, path, ls.cache, folders=ls.readable(path))
        analysis = analysis or linked
        env = getattr(linked.loaded, "env", None)
    else:
        env = getattr(analysis.loaded, "env", None)
    return complete(before, env, analysis.module, line, column)


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
@safe()
def on_formatting(ls: NetdslServer, params: lsp.DocumentFormattingParams
                  ) -> list[lsp.TextEdit] | None:
    """``netdsl fmt``'s text as one edit (none for a text that does not parse)."""
    document = ls.workspace.get_text_document(params.text_document.uri)
    text = document.source
    try:
        formatted = format_text(text, document.filename or "<untitled>")
    except NetDSLError:
        return None
    if formatted == text:
        return []
    lines = text.split("\n")
    end = lsp.Position(len(lines) - 1, utf16(lines[-1], len(lines[-1])))
    return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), end), formatted)]


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@safe(default=[])
def on_symbols(ls: NetdslServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    analysis = ls.parsed(params.text_document.uri)
    return symbols(analysis.module) if analysis is not None else []  # type: ignore[arg-type]


@server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
@safe(default=[])
def on_inlay_hints(ls: NetdslServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
    analysis = ls.latest.get(params.text_document.uri)
    if analysis is None or analysis.module is None:
        return []
    return inlay_hints(analysis, ls.graph_of(analysis), params.range)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)  # stderr: stdout carries the protocol
    server.start_io()
