"""One record per op: every fact the compiler knows about a layer, in one place.

Checking, analysis, emission, export, the formatter and the command line read these records
and nothing else, so adding a layer means writing one :class:`OpRecord` (the built-in ones
live in :mod:`netdsl.ir.layers`). Every field is required but the three memory facts (whose
defaults describe a plain layer): an op without a receptive-field window or a MAC rule is a
registration error, never a silent default (tinygrad keeps its op rules as data in the same
spirit).

Plugins register records with :func:`register_op`, or ship them under the entry-point group
``netdsl.ops`` (each entry point, named after the op a spec writes, names an ``OpRecord`` or a
function returning records), so that ``pip install some-plugin`` makes its layers available to
specs. An entry point is loaded when a spec first names its op, never before, and only from an
installed distribution (not one lying in the working folder). A spec still cannot run code:
plugins are installed Python, specs are data. This module never imports torch.
"""

from __future__ import annotations

import keyword
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import fields

from ..errors import RegistrationError
from .params import (  # noqa: F401 - re-exported: the vocabulary every record is written in
    REQUIRED,
    Attrs,
    Param,
    Shape,
    ShapeProblem,
    Size,
    Symbol,
    ValueProblem,
    describe,
    fmt_shape,
    normalize,
)
from .record import (  # noqa: F401 - re-exported, as above
    GLOBAL,
    INIT_ROLES,
    LAYOUTS,
    PARAM_KINDS,
    POINTWISE,
    STYLES,
    OpRecord,
    Pair,
    TorchExpression,
    TorchModule,
    TorchParameter,
    Window,
)

ENTRY_POINT_GROUP = "netdsl.ops"
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

_REGISTRY: dict[str, OpRecord] = {}
_pending: dict[str, object] | None = None  # installed entry points not loaded yet, by name
_loading = threading.RLock()  # a plugin loads once, even with the language server's threads


class _OpTable(Mapping):
    """The op table, read-only. An installed plugin is loaded when a spec first names one of
    its ops, never before: checking a spec runs no plugin code it does not use, and a plugin
    module (which imports netdsl itself) never meets netdsl half imported. Its names are
    metadata: they are listed, suggested and tested with ``in`` without loading anything."""

    # `get` and `[]` are on every layer's path (lowering, checking, emitting): one dict
    # probe for a known op; only a name no op has yet looks further
    def __getitem__(self, name: str) -> OpRecord:
        record = _REGISTRY.get(name)
        if record is None:
            record = _provide(name)
            if record is None:
                raise KeyError(name)
        return record

    def get(self, name: str, default: OpRecord | None = None) -> OpRecord | None:
        record = _REGISTRY.get(name)
        if record is None:
            record = _provide(name)
        return default if record is None else record

    def __iter__(self):
        return iter(list(_REGISTRY) + [n for n in _pending_points() if n not in _REGISTRY])

    def __len__(self) -> int:
        return len(_REGISTRY.keys() | _pending_points().keys())

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY or name in _pending_points()


OPS: Mapping[str, OpRecord] = _OpTable()


def registered(name: str) -> OpRecord | None:
    """The record of an op already registered, or None; never loads a plugin."""
    return _REGISTRY.get(name)


def unloaded_plugin(name: str) -> bool:
    """Whether ``name`` is an installed plugin's entry point that has not been loaded."""
    return name not in _REGISTRY and name in _pending_points()


def registered_records() -> list[OpRecord]:
    """The records registered so far (built-in, registered in Python, plugins loaded)."""
    return list(_REGISTRY.values())


def load_plugins_of(module: str) -> list[str]:
    """Loads the installed entry points that live in ``module``'s top-level package, and no
    others: ``netdsl import`` met a torch class of that package (already imported by the
    caller) and looks for the record that emits it."""
    package = module.split(".")[0]
    with _loading:
        points = [p for p in _pending_points().values()
                  if getattr(p, "module", "").split(".")[0] == package]
        for point in points:
            _pending_points().pop(point.name, None)
    return load_plugins(points)


def _provide(name: object) -> OpRecord | None:
    """The record of ``name`` after loading the installed entry point of that name, if there
    is one and nothing registered the name first; None otherwise."""
    if not isinstance(name, str) or name not in _pending_points():
        return None
    with _loading:
        point = _pending_points().pop(name, None)
        if point is not None and name not in _REGISTRY:
            load_plugins([point])
            if name not in _REGISTRY:
                raise RegistrationError(
                    f"plugin entry point '{name}' ({point.value}) provides no op named "
                    f"'{name}'", notes=("name each entry point after the op it provides "
                                        "(docs/plugins.md)",))
    return _REGISTRY.get(name)


def _pending_points() -> dict[str, object]:
    global _pending
    if _pending is None:
        with _loading:
            if _pending is None:
                _pending = installed_entry_points()
    return _pending


def installed_entry_points() -> dict[str, object]:
    """The ``netdsl.ops`` entry points of the installed distributions, by name (the first on
    the path wins, as for imports), read from their metadata: nothing is imported.

    The working folder is never searched, even where it is on ``sys.path`` (``python -m``
    puts it first): a ``*.dist-info`` folder lying in the folder a command runs in is not an
    installed plugin, and must not run code because a spec was checked there."""
    from importlib.metadata import distributions

    here = _working_folder()
    paths = [entry for entry in sys.path
             if entry and (here is None or os.path.realpath(entry) != here)]
    points: dict[str, object] = {}
    seen: set[str] = set()
    for distribution in distributions(path=paths):
        name = re.sub(r"[-_.]+", "-", (distribution.metadata or {}).get("Name") or "").lower()
        if name and name in seen:
            continue  # shadowed by the same distribution earlier on the path
        seen.add(name)
        for point in distribution.entry_points.select(group=ENTRY_POINT_GROUP):
            points.setdefault(point.name, point)
    return points


def _working_folder() -> str | None:
    try:
        return os.path.realpath(os.getcwd())
    except OSError:  # the folder was removed under us: nothing to leave out
        return None


def register_op(record: OpRecord, *, replace: bool = False) -> OpRecord:
    """Adds ``record`` to the op table after checking every field; returns it.

    Raises :class:`~netdsl.errors.RegistrationError` for a malformed record or a name that is
    already taken (``replace=True`` overrides a plugin's own earlier record, never a built-in).
    """
    _validate(record, builtin=False)
    existing = _REGISTRY.get(record.name)
    if existing is not None and not (replace and record.name not in _BUILTIN_NAMES):
        raise RegistrationError(f"an op named '{record.name}' is already registered")
    _REGISTRY[record.name] = record
    return record


def unregister_op(name: str) -> None:
    """Removes a plugin's op (tests use it); built-in ops cannot be removed."""
    if name in _BUILTIN_NAMES:
        raise RegistrationError(f"'{name}' is a built-in op")
    _REGISTRY.pop(name, None)


# Names a spec gives another meaning, so that an op called so could never be reached: the
# grammar's words, the constants, and the builtins, functions and prelude blocks lowering
# defines. Fixed data rather than declared by lowering when it first runs, so that whether
# a name may be registered never depends on whether a spec was compiled first;
# tests/test_plugins.py::test_reserved_names_are_the_languages_own compares it with lowering.
RESERVED_NAMES = frozenset({
    # grammar words (netdsl.syntax.diagnostics.RESERVED)
    "and", "block", "else", "if", "import", "init", "inline", "input", "network", "not", "or",
    "output",
    # constants (netdsl.lower.values.CONSTANTS)
    "false", "identity", "none", "project", "same", "true",
    # builtins (netdsl.lower.builtins.BUILTINS)
    "add", "aux", "concat", "inception", "mul", "residual", "stack",
    # functions of numbers (netdsl.lower.functions.FUNCTIONS)
    "abs", "ceil", "floor", "int", "log2", "make_divisible", "max", "min", "round", "sqrt",
    # the prelude's blocks (netdsl/lower/prelude.net)
    "conv1x1", "conv3x3", "conv_relu", "se", "stage",
})


def _validate(record: OpRecord, builtin: bool) -> None:
    where = f"op record '{getattr(record, 'name', '?')}'"
    if not isinstance(record, OpRecord):
        raise RegistrationError(f"expected an netdsl.OpRecord, got {type(record).__name__}")
    if not (record.name.isidentifier() and not keyword.iskeyword(record.name)
            and (builtin or record.name not in RESERVED_NAMES)):
        raise RegistrationError(f"{where}: the name must be a netdsl name that is not reserved")
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name in ("infer", "count_params", "macs", "window", "display") \
                and not callable(value):
            raise RegistrationError(f"{where}: '{f.name}' must be a function")
    if not all(isinstance(p, Param) and p.kind in PARAM_KINDS for p in record.params):
        raise RegistrationError(f"{where}: every parameter needs a kind among "
                                f"{', '.join(sorted(PARAM_KINDS))}")
    if record.arity not in (-1, 0, 1, 2):
        raise RegistrationError(f"{where}: arity must be -1, 0, 1 or 2")
    if record.init_role is not None and record.init_role not in INIT_ROLES:
        raise RegistrationError(f"{where}: init_role must be None or one of "
                                f"{', '.join(sorted(INIT_ROLES))}")
    if record.style not in STYLES:
        raise RegistrationError(f"{where}: style must be one of {', '.join(sorted(STYLES))}")
    if record.torch is None and not (builtin and record.name == "input"):
        raise RegistrationError(f"{where}: needs a torch emission (TorchModule, "
                                "TorchParameter or TorchExpression)")
    if record.torch is not None and not isinstance(
            record.torch, TorchModule | TorchParameter | TorchExpression):
        raise RegistrationError(f"{where}: torch must be a TorchModule, TorchParameter or "
                                "TorchExpression")
    if isinstance(record.torch, TorchModule) and not (
            _DOTTED.fullmatch(record.torch.cls) and "." in record.torch.cls):
        raise RegistrationError(f"{where}: torch class '{record.torch.cls}' is not a dotted "
                                "import path like my_plugin.layers.Scale")
    if not isinstance(record.view, bool) and not callable(record.view):
        raise RegistrationError(f"{where}: view must be true, false or a function")
    for name in ("backward_extra_bytes", "training_mask_bytes"):
        value = getattr(record, name)
        if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 64):
            raise RegistrationError(f"{where}: {name} must be a whole number of bytes from 0 "
                                    "to 64")
    if not isinstance(record.gradient_passes_through, bool):
        raise RegistrationError(f"{where}: gradient_passes_through must be true or false")
    if record.layout not in LAYOUTS:
        raise RegistrationError(f"{where}: layout must be one of {', '.join(sorted(LAYOUTS))}")
    for name in ("view_strides", "temporaries"):
        if getattr(record, name) is not None and not callable(getattr(record, name)):
            raise RegistrationError(f"{where}: {name} must be None or a function")


def _register_builtins() -> frozenset[str]:
    from .layers import BUILTIN_OPS

    for record in BUILTIN_OPS:  # "input" is a reserved word and has no emission: built-in only
        _validate(record, builtin=True)
        _REGISTRY[record.name] = record
    return frozenset(_REGISTRY)


def load_plugins(entry_points: Iterable | None = None) -> list[str]:
    """Registers the records the given entry points provide (by default every installed
    ``netdsl.ops`` entry point not loaded yet: specs need none of this, they load what they
    name); returns the names added. A plugin that fails to load is a RegistrationError
    naming its entry point."""
    if entry_points is None:
        with _loading:
            entry_points = list(_pending_points().values())
            _pending_points().clear()
    added = []
    for point in entry_points:
        try:
            provided = point.load()
            records = provided() if callable(provided) and not isinstance(provided, OpRecord) \
                else provided
        except Exception as error:  # a broken plugin must not look like a netdsl bug
            raise RegistrationError(f"plugin entry point '{point.name}' ({point.value}) "
                                    f"failed to load: {type(error).__name__}: {error}") from None
        for record in [records] if isinstance(records, OpRecord) else list(records):
            if _REGISTRY.get(record.name) is not record:
                try:
                    register_op(record)
                except RegistrationError as error:  # say which installed package it was
                    raise RegistrationError(f"plugin entry point '{point.name}' "
                                            f"({point.value}): {error.message}") from None
                added.append(record.name)
    return added


_BUILTIN_NAMES = _register_builtins()
