"""One open document compiled the way ``netdsl check`` compiles a file: parse, link the imports,
instantiate the main network, check it. The errors are the CLI's own exceptions (same codes,
same spans, several at once); what succeeded on the way (the syntax tree, the linked names,
the checked graph) is kept for hover, navigation and inlay hints.

Imports are the expensive part of a small edit (resnet152.net is one line; resnet_family.net
is what gets parsed), so linked imports are shared between compiles, keyed by path and
modification time (of the file and of everything it imports in turn). The document itself
is always re-parsed and re-expanded: expansion is where its shapes come from.

An imported file that is open in the editor with unsaved changes is read from its buffer, as
the editor shows it (``unsaved``), and never through the shared cache: neither it nor a
cached import that reads it stands for what is on disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

from ..errors import NetDSLError, OverrideError, SpecErrors, SpecImportError
from ..ir.graph import Graph
from ..limits import paused_gc, recursion_guard
from ..lower.loader import BUNDLED_SPECS, Loader, display_path, main_network
from ..lower.networks import instantiate
from ..syntax import tree as ast
from ..syntax.parser import parse
from .incremental import Pieces, parse_document, same_tree

Stamp = tuple[int, int]  # (st_mtime_ns, st_size)
UNSAVED: Stamp = (-1, -1)  # read from an editor buffer: no file on disk has this stamp


def _stamp(path: Path) -> Stamp | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_mtime_ns, info.st_size


@dataclass
class _Entry:
    stamp: Stamp
    loaded: object  # netdsl.lower.loader._Loaded
    deps: dict[Path, Stamp]  # every file its linking read, with the stamp it had


@dataclass
class ImportCache:
    """Linked imports shared by every compile of this server, valid while neither the file
    nor anything it imports has changed on disk."""

    entries: dict[Path, _Entry] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def fresh(self, path: Path, active: list[Path],
              unsaved: Mapping[Path, str] = MappingProxyType({})) -> _Entry | None:
        entry = self.entries.get(path)
        if entry is None or _stamp(path) != entry.stamp:
            return None
        if any(p in active or p in unsaved or _stamp(p) != s for p, s in entry.deps.items()):
            return None  # a dependency changed (on disk or in the editor), or a cycle
        return entry


class CachedLoader(Loader):
    """netdsl's Loader, reading each import through the shared :class:`ImportCache`, and
    only inside ``folders`` (the editor's workspace folders) when they are given."""

    def __init__(self, roots: list[Path], base: Path | None, shared: ImportCache,
                 unsaved: Mapping[Path, str] = MappingProxyType({}),
                 folders: tuple[Path, ...] | None = None):
        super().__init__(roots, base)
        self.shared = shared
        self.unsaved = unsaved  # resolved path -> the text of its editor buffer
        self.frames: list[dict[Path, Stamp]] = [{}]  # files read, per file being linked
        self.folders = folders

    def refusal(self, item: ast.Import, target: Path) -> SpecImportError:
        if self.folders is None or any(target.is_relative_to(f) for f in self.folders):
            return super().refusal(item, target)
        how = "open the folder that holds it as a workspace folder" if self.folders else \
            "the editor has no workspace folder and this document is not a file on disk: " \
            "save it, or open its folder"
        return SpecImportError(
            f"import '{item.path}' is outside the workspace", item.span,
            notes=("the language server reads imports only inside the editor's workspace "
                   "folders (under the document's folder) and netdsl's specs/ folder", how))

    def load_file(self, path: Path, span=None):
        resolved = path.resolve()
        if resolved in self.active or resolved in self.cache:
            return super().load_file(path, span)  # a cycle, or already read by this compile
        if resolved in self.unsaved:
            return self._load_unsaved(resolved)
        entry = self.shared.fresh(resolved, self.active, self.unsaved)
        if entry is not None:
            self.shared.hits += 1
            self.cache[resolved] = entry.loaded  # type: ignore[assignment]
            self._note(resolved, entry.stamp, entry.deps)
            return entry.loaded
        self.shared.misses += 1
        stamp = _stamp(resolved)
        self.frames.append({})
        try:
            loaded = super().load_file(path, span)
        finally:
            deps = self.frames.pop()
        if stamp is not None:
            self.shared.entries[resolved] = _Entry(stamp, loaded, deps)
            self._note(resolved, stamp, deps)
        return loaded

    def _load_unsaved(self, path: Path):
        """An import open in the editor, linked from its buffer for this compile only."""
        self.frames.append({})
        try:
            loaded = self.link(parse(self.unsaved[path], display_path(path)), path)
        finally:
            deps = self.frames.pop()
        self.cache[path] = loaded
        self._note(path, UNSAVED, deps)
        return loaded

    def _note(self, path: Path, stamp: Stamp, deps: dict[Path, Stamp]) -> None:
        self.frames[-1].update(deps)
        self.frames[-1][path] = stamp

    def link_document(self, module: ast.Module, path: Path | None):
        """Links the document's own (possibly unsaved) text as load_file links a file."""
        if path is None:
            return self.link(module, None)
        loaded = self.link(module, path)
        self.cache[path] = loaded
        return loaded


@dataclass
class Analysis:
    """What one version of a document compiled to."""

    text: str
    path: Path | None  # None: an untitled buffer (imports only the bundled zoo)
    filename: str  # the name its spans carry (the CLI's: relative to the working folder)
    module: ast.Module | None = None
    loaded: object = None
    graph: Graph | None = None
    errors: tuple[NetDSLError, ...] = ()
    library: NetDSLError | None = None  # the main network needs arguments: a file to import
    stamps: dict[Path, Stamp] = field(default_factory=dict)  # the imports read, as they were
    reused: bool = False  # the tree did not change: the previous check stands

    @property
    def deps(self) -> set[Path]:
        return set(self.stamps)

    @cached_property
    def fields(self):
        """Receptive field and jump of every node (computed on the first hover)."""
        from ..passes.analyse import receptive_fields

        return receptive_fields(self.graph) if self.graph is not None else []

    def owns(self, source) -> bool:
        """Whether a span's source is this document (errors: a syntax error after the first
        is reported from a re-parse of its statement alone, in a Source of its own)."""
        return source.filename == self.filename or \
            self.module is not None and source is self.module.source

    def current(self, source) -> bool:
        """Whether a span's source is this version of this document, text and all (a graph
        of another document may have read an older version of it from disk)."""
        if self.module is not None and source is self.module.source:
            return True
        return source.filename == self.filename and source.text == self.text.removeprefix("\ufeff")


def analyse(text: str, path: Path | None, cache: ImportCache, pieces: Pieces | None = None,
            previous: Analysis | None = None,
            unsaved: Mapping[Path, str] = MappingProxyType({}),
            folders: tuple[Path, ...] | None = None) -> Analysis:
    """Compiles ``text`` (the document at ``path``) as ``netdsl check`` would; never raises.
    ``pieces``: the document's statements parsed before (see incremental), updated;
    ``previous``: the analysis of the document's previous text, kept if nothing changed;
    ``unsaved``: other documents open with unsaved changes (resolved path -> text), which
    imports read instead of the files; ``folders``: resolved folders every import must be
    in besides the zoo (the workspace), None for the document's folder alone, as the CLI."""
    resolved = path.resolve() if path is not None else None
    filename = display_path(resolved) if resolved is not None else "<untitled>"
    result = Analysis(text, resolved, filename)
    folder = resolved.parent if resolved is not None else None
    unsaved = {p: t for p, t in unsaved.items() if p != resolved}
    loader = CachedLoader([*_import_roots(folder, folders), BUNDLED_SPECS], folder, cache,
                          unsaved, folders)
    try:
        with paused_gc():
            _compile(result, loader, pieces, previous)
    except SpecErrors as errors:
        result.errors = errors.errors
    except NetDSLError as error:
        if _needs_arguments(result, error):
            result.library = error
        else:
            result.errors = (error,)
    except Exception as error:  # a bug in netdsl: shown as a diagnostic, the server lives on
        result.errors = (NetDSLError(f"internal error: {type(error).__name__}: {error}"),)
    if not result.reused:
        result.stamps = dict(loader.frames[0])
    return result


def _import_roots(folder: Path | None, folders: tuple[Path, ...] | None) -> list[Path]:
    """Where the document's imports may read besides the zoo: under its own folder (the
    CLI's rule) and, given ``folders``, inside one of them too."""
    if folder is None:
        return []
    if folders is None:
        return [folder]
    return [folder if folder.is_relative_to(f) else f for f in folders
            if folder.is_relative_to(f) or f.is_relative_to(folder)]


def _compile(result: Analysis, loader: CachedLoader, pieces: Pieces | None,
             previous: Analysis | None) -> None:
    result.module = parse(result.text, result.filename) if pieces is None else \
        parse_document(result.text, result.filename, pieces)
    if _unchanged(previous, result, loader.unsaved):
        result.loaded, result.graph, result.stamps = previous.loaded, previous.graph, \
            previous.stamps
        result.errors, result.library, result.reused = previous.errors, previous.library, True
        if "fields" in previous.__dict__:  # receptive fields already computed for this graph
            result.__dict__["fields"] = previous.__dict__["fields"]
        return
    result.loaded = recursion_guard(lambda: loader.link_document(result.module, result.path))
    network = main_network(result.loaded)  # type: ignore[arg-type]
    result.graph = recursion_guard(lambda: instantiate(network, {}, result.filename))


def _unchanged(previous: Analysis | None, result: Analysis, unsaved: Mapping[Path, str]) -> bool:
    """Whether the previous check of this document stands: the same tree (see
    incremental.same_tree), compiled under the same name, with every import as it was (on
    disk, and not open with unsaved changes: a buffer has no stamp to compare)."""
    if previous is None or previous.module is None or result.module is None or \
            previous.filename != result.filename or previous.loaded is None:
        return False
    return all(p not in unsaved and _stamp(p) == s for p, s in previous.stamps.items()) and \
        same_tree(previous.module, result.module)


def _needs_arguments(result: Analysis, error: NetDSLError) -> bool:
    """A file whose last network has parameters without defaults (resnet_family.net) is
    meant to be imported: ``netdsl check`` says so as E009, the editor says it softly."""
    if not isinstance(error, OverrideError) or result.module is None:
        return False
    networks = [d for d in result.module.definitions if isinstance(d, ast.NetworkDef)]
    return any(error.span is p.span for n in networks for p in n.params if p.default is None)
