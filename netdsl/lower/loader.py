"""Reading spec files and their imports, and the prelude every spec sees.

An import may only reach files under the main spec's folder or the bundled ``specs/`` folder
(no ``..`` or symlink escape); cycles are errors.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import limits
from ..errors import PRELUDE, Span, SpecArgumentError, SpecImportError, SpecLimitError, SpecNameError
from ..ir.ops import OPS, OpRecord, registered
from ..limits import recursion_guard
from ..syntax import tree as ast
from ..syntax.parser import parse
from .builtins import BUILTINS
from .functions import FUNCTIONS
from .values import ABSENT, CONSTANTS, BlockValue, Builtin, Env, NetworkValue


def _bundled_specs() -> Path:
    """The zoo: ``netdsl/zoo`` in an installed wheel (pyproject maps the repository's
    ``specs/`` there), else ``specs/`` beside the package in a source checkout."""
    installed = Path(__file__).resolve().parents[1] / "zoo"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "specs"


BUNDLED_SPECS = _bundled_specs()
_ZOO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")  # resnet50, vgg16_bn


def zoo_names() -> list[str]:
    """The networks the zoo bundles, by name (``resnet50``; family files included)."""
    return sorted(p.stem for p in BUNDLED_SPECS.glob("*.net"))


class SpecText(str):
    """Spec text, said to be text: ``netdsl.compile(netdsl.SpecText(text))``. A plain ``str``
    is guessed (a file name, a bundled network's name, else text); this never is."""

    __slots__ = ()


def is_guessed_text(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` is a plain string that :func:`load` reads as spec text by guessing,
    the form :class:`SpecText` replaces."""
    return type(spec) is str and _named_file(spec) is None


def _named_file(spec: str) -> str | None:
    """The file name a string gives: one line that ends in ``.net``, or one bare word (a
    network of the zoo; never spec text); None for anything else."""
    if "\n" not in spec and spec.strip().endswith(".net") and len(spec) < 4096:
        return spec.strip()
    return spec if _ZOO_NAME.fullmatch(spec) else None


def zoo_spec(name: str) -> Path:
    """The bundled spec called ``name`` (``resnet50`` or ``resnet50.net``); an unknown name is
    an import error with the closest names in the zoo."""
    stem = name[:-4] if name.endswith(".net") else name
    if _ZOO_NAME.fullmatch(stem) and _is_file(BUNDLED_SPECS / f"{stem}.net"):
        return BUNDLED_SPECS / f"{stem}.net"
    close = difflib.get_close_matches(stem, zoo_names(), n=3)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else \
        "netdsl list shows the bundled specs"
    raise SpecImportError(f"no spec file or bundled network named '{name}'", notes=(hint,))


@dataclass
class _Loaded:
    module: ast.Module
    env: Env
    own: list[str]  # names this file defines (what an import brings in)


class Loader:
    """Reads spec files and their imports; an import may only reach files under the main
    spec's folder or the bundled ``specs/`` folder (no ``..`` or symlink escape).

    A subclass may read imports elsewhere (the language server reads open buffers and keeps
    linked files between compiles) by overriding :meth:`load_file` and :meth:`refusal`; it
    calls :meth:`link` on what it parsed, and may read ``cache`` (path -> linked file, this
    compile's) and ``active`` (the files being linked, outermost first: an import cycle)."""

    def __init__(self, roots: list[Path], base: Path | None = None):
        self.roots = [r.resolve() for r in roots]
        self.base = base.resolve() if base is not None else None  # where spec text imports from
        self.cache: dict[Path, _Loaded] = {}
        self.active: list[Path] = []
        self.prelude = prelude()

    def load_text(self, text: str, filename: str | None = None) -> _Loaded:
        return self.link(parse(text, filename), None)  # text has no folder, whatever its name

    def load_file(self, path: Path, span: Span | None = None) -> _Loaded:
        resolved = path.resolve()
        if resolved in self.active:
            chain = " -> ".join(p.name for p in [*self.active, resolved])
            raise SpecImportError(f"import cycle: {chain}", span)
        if resolved in self.cache:
            return self.cache[resolved]
        text = read_spec(resolved, span, path)
        loaded = self.link(parse(text, display_path(resolved)), resolved)
        self.cache[resolved] = loaded
        return loaded

    def link(self, module: ast.Module, path: Path | None) -> _Loaded:
        """Defines ``module``'s imports and definitions in a fresh scope below the prelude;
        ``path`` is its file (None: spec text), which is ``active`` while its imports load."""
        env = Env({}, self.prelude)
        if path is not None:
            self.active.append(path)
        try:
            if len(self.active) > limits.MAX_IMPORT_DEPTH:
                raise SpecImportError(f"imports nested more than {limits.MAX_IMPORT_DEPTH} deep",
                                      module.imports[0].span if module.imports else None)
            for item in module.imports:
                target = self._resolve_import(item, path)
                imported = self.load_file(target, item.span)
                for name in imported.own:
                    env.define(name, imported.env.names[name], item.span)
                _note_hidden(env, imported, item)
            own = [_define(env, item) for item in module.definitions]
        finally:
            if path is not None:
                self.active.pop()
        return _Loaded(module, env, own)

    def _resolve_import(self, item: ast.Import, importer: Path | None) -> Path:
        base = importer.parent if importer else self.base
        candidates = [*([base / item.path] if base else []), BUNDLED_SPECS / item.path]
        escaped = []  # decided on the path alone: whether a file exists outside is not told
        for candidate in candidates:
            try:
                resolved = candidate.resolve()
            except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
                raise SpecImportError(f"'{item.path}' is not a valid path", item.span) from None
            if not any(resolved.is_relative_to(root) for root in self.roots):
                escaped.append((candidate, resolved))
            elif _is_file(resolved):
                return candidate
        # the file beside the importer is the one meant (the zoo is the fallback): when that
        # one is outside, the import is refused, not "not found"
        if escaped and (len(escaped) == len(candidates) or escaped[0][0] is candidates[0]
                        and base is not None):
            raise self.refusal(item, escaped[0][1])
        looked = f"{display_path(base)} and {display_path(BUNDLED_SPECS)}" if base else \
            f"{display_path(BUNDLED_SPECS)} only: spec text has no folder (pass base=FOLDER)"
        raise SpecImportError(f"cannot find '{item.path}' to import", item.span,
                              notes=(f"looked in {looked}",))

    def refusal(self, item: ast.Import, target: Path) -> SpecImportError:
        """The error for an import that resolves (to ``target``) outside the roots."""
        return SpecImportError(f"import '{item.path}' leaves the spec's folder", item.span,
                               notes=("imports may only read files under the main spec's "
                                      "folder or netdsl's specs/ folder",))


def read_spec(path: Path, span: Span | None = None, shown: Path | None = None) -> str:
    """A spec file's text as the lexer must see it: no newline translation (Python's default
    turns a lone '\\r', which the grammar reads as a space, into a line break), read only from
    a regular file and only up to the source limit (:func:`netdsl.limits.read_text`).
    ``span`` is the import that reads it; ``shown`` the path as diagnostics name it."""
    try:
        return limits.read_text(path)
    except SpecLimitError as error:
        raise SpecLimitError(f"cannot read {shown or path}: {error.message}", span) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise SpecImportError(f"cannot read {shown or path}: {reason}", span) from None


def _note_hidden(env: Env, imported: _Loaded, item: ast.Import) -> None:
    """Remembers the names ``imported`` got from its own imports: an import brings in only
    what a file defines itself, and using one of those names deserves to hear why."""
    imports = {i.span: i.path for i in imported.module.imports}
    for name in imported.env.names.keys() - set(imported.own):
        via = imports.get(imported.env.spans.get(name), "another file")
        env.hidden.setdefault(name, (
            f"'{name}' is not re-exported by {item.path}",
            f"{item.path} has it from its own import \"{via}\"; an import brings in only the "
            "names a file defines itself",
            f"import that file here too to use '{name}'"))
    for name, why in imported.env.hidden.items():
        env.hidden.setdefault(name, why)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


class _BuiltinNames(Mapping):
    """The names every spec starts with: constants, then builtins (both fixed), then the op
    table's layers, read live, so that an op a plugin registers after the prelude was read
    is still found. Every name a spec reads and does not define ends here, so ``get`` is
    one probe of a dict and, for a layer, one of the op table."""

    def __init__(self, fixed: dict[str, object]):
        self.fixed = fixed

    def get(self, name: str, default: object = None) -> object:
        value = self.fixed.get(name, ABSENT)
        if value is not ABSENT:
            return value
        op = OPS.get(name)
        return op if op is not None and _is_layer_op(op) else default

    def __getitem__(self, name: str) -> object:
        value = self.get(name, ABSENT)
        if value is ABSENT:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, ABSENT) is not ABSENT

    def __iter__(self):  # names only: a plugin not loaded yet is listed, not loaded
        yield from self.fixed
        for name in OPS:
            op = registered(name)
            if name not in self.fixed and (op is None or _is_layer_op(op)):
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)


@functools.cache
def prelude() -> Env:
    """Layers, builtins, constants and the prelude's blocks: read once per process, then
    shared (no spec changes them: a spec's own names live in a child scope)."""
    builtins = {name: Builtin(name, handler, doc, signature)
                for name, (handler, signature, doc) in BUILTINS.items()}
    env = Env(_BuiltinNames({**builtins, **FUNCTIONS, **CONSTANTS}))  # type: ignore[arg-type]
    text = resources.files(__package__).joinpath("prelude.net").read_text(encoding="utf-8")
    blocks = Env({}, env)
    for item in parse(text, PRELUDE).definitions:
        _define(blocks, item)
    return blocks


def display_path(path: Path) -> str:
    """A path as diagnostics show it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _is_layer_op(op: OpRecord) -> bool:
    """Ops a spec writes as layers: one input. The network input and the joins (concat, add)
    are made by statements and builtins."""
    return op.arity == 1


def _define(env: Env, item: ast.Node) -> str:
    if isinstance(item, ast.BlockDef):
        value: object = BlockValue(item, env)
    else:
        value = NetworkValue(item, env)  # type: ignore[arg-type]
    _check_params(item.params)  # type: ignore[attr-defined]
    env.define(item.name, value, item.span)  # type: ignore[attr-defined]
    return item.name  # type: ignore[attr-defined]


def _check_params(params: tuple[ast.Param, ...]) -> None:
    seen: set[str] = set()
    defaulted = False
    for p in params:
        if p.name in seen:
            raise SpecNameError(f"parameter '{p.name}' is listed twice", p.span)
        seen.add(p.name)
        if p.default is None and defaulted:
            raise SpecArgumentError(f"parameter '{p.name}' without a default follows one with a "
                                    "default", p.span)
        defaulted = defaulted or p.default is not None


def load(spec: str | os.PathLike, filename: str | None = None,
         base: str | os.PathLike | None = None) -> tuple[_Loaded, str]:
    """Reads a spec given as a path or as source text. A file imports from its own folder
    and the bundled specs; text has no folder: it imports only the bundled specs, unless
    ``base`` names a folder to import from as well (never the working folder by default)."""
    path = _as_path(spec)
    if path is None:
        folder = Path(base) if base is not None else None
        loader = Loader([*([folder] if folder else []), BUNDLED_SPECS], folder)
        return loader.load_text(str(spec), filename), filename or "<string>"
    if not _is_file(path):
        raise SpecImportError(f"no such spec file: {path}", notes=_missing_hint(path))
    loader = Loader([path.resolve().parent, BUNDLED_SPECS])
    return recursion_guard(lambda: loader.load_file(path)), display_path(path.resolve())


def _missing_hint(path: Path) -> tuple[str, ...]:
    """For a spec file that is not there: the .net file or bundled spec that may be meant."""
    for guess in (path.with_name(path.name + ".net"), BUNDLED_SPECS / (path.name + ".net"),
                  path.with_suffix(".net")):
        if guess != path and _is_file(guess):
            return (f"did you mean '{display_path(guess)}'?",)
    stem = path.name[:-4] if path.name.endswith(".net") else path.name
    close = difflib.get_close_matches(stem, zoo_names(), n=3)
    if close:
        return (f"did you mean {', '.join(repr(c) for c in close)} (bundled networks)?",)
    return ("SPEC is a file name or a bundled network (netdsl list shows them)",)


def spec_path(name: str | os.PathLike) -> Path:
    """The one rule for a spec named by path or network name (a command line's SPEC, or what
    :func:`netdsl.compile` reads as a name): an existing file, else, for a relative name of
    one part (``resnet50``, ``resnet50.net``), the bundled network of that name, else the path
    as given (reading it reports the missing file, with what may have been meant). Never spec
    text: a file name may hold quotes, newlines or backslashes."""
    path = Path(name)
    if _is_file(path) or path.is_absolute() or len(path.parts) != 1:
        return path
    if _ZOO_NAME.fullmatch(path.name[:-4] if path.name.endswith(".net") else path.name):
        try:
            return zoo_spec(path.name)
        except SpecImportError:
            pass  # load() reports the missing file, with what may have been meant
    return path


def _as_path(spec: str | os.PathLike) -> Path | None:
    """The file a spec names, by :func:`spec_path`'s rule, or None for spec text: a string of
    one line that ends in ``.net`` or is one word (a network of the zoo) is a name."""
    if isinstance(spec, os.PathLike):
        return Path(spec)
    name = None if isinstance(spec, SpecText) else _named_file(spec)
    return None if name is None else spec_path(name)


def main_network(loaded: _Loaded) -> NetworkValue:
    networks = [loaded.env.names[n] for n in loaded.own
                if isinstance(loaded.env.names[n], NetworkValue)]
    if not networks:
        raise SpecNameError(f"{loaded.module.source.filename} defines no network",
                            notes=("a spec needs 'network NAME:' with an input and layers",))
    return networks[-1]  # type: ignore[return-value]
