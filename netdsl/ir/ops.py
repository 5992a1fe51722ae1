"""One record per op: every fact the compiler knows about a layer, in one place.

Checking, analysis, emission, export, the formatter and the command line read these records
and nothing else, so adding a layer means writing one :class:`OpRecord` (the built-in ones
live in :mod:`netdsl.ir.layers`). Every field is required: an op without a receptive-field
window or a MAC rule is a registration error, never a silent default (tinygrad keeps its op
rules as data in the same spirit).

Plugins register records with :func:`register_op`, or ship them under the entry-point group
``netdsl.ops`` (each entry point names an ``OpRecord`` or a function returning records), so
that ``pip install some-plugin`` makes its layers available to specs. A spec still cannot run
code: plugins are installed Python, specs are data. This module never imports torch.
"""

from __future__ import annotations

import keyword
import re
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
_plugins_loaded = False


class _OpTable(Mapping):
    """The op table, read-only. Installed plugins are registered on first use, not at import:
    a plugin module imports netdsl itself, so loading it while netdsl is being imported would
    find netdsl half made."""

    # `get` and `[]` are on every layer's path (lowering, checking, emitting): one flag test
    # and one dict probe, not Mapping.get's call of __getitem__ and its KeyError
    def __getitem__(self, name: str) -> OpRecord:
        if not _plugins_loaded:
            _ensure_plugins()
        return _REGISTRY[name]

    def get(self, name: str, default: OpRecord | None = None) -> OpRecord | None:
        if not _plugins_loaded:
            _ensure_plugins()
        return _REGISTRY.get(name, default)

    def __iter__(self):
        _ensure_plugins()
        return iter(list(_REGISTRY))

    def __len__(self) -> int:
        _ensure_plugins()
        return len(_REGISTRY)

    def __contains__(self, name: object) -> bool:
        if not _plugins_loaded:
            _ensure_plugins()
        return name in _REGISTRY


OPS: Mapping[str, OpRecord] = _OpTable()


def _ensure_plugins() -> None:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True  # first: a plugin that reads the table must not recurse
        load_plugins()


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


def _register_builtins() -> frozenset[str]:
    from .layers import BUILTIN_OPS

    for record in BUILTIN_OPS:  # "input" is a reserved word and has no emission: built-in only
        _validate(record, builtin=True)
        _REGISTRY[record.name] = record
    return frozenset(_REGISTRY)


def load_plugins(entry_points: Iterable | None = None) -> list[str]:
    """Registers the records every installed ``netdsl.ops`` entry point provides; returns the
    names added. A plugin that fails to load is a RegistrationError naming its entry point."""
    if entry_points is None:
        from importlib.metadata import entry_points as installed

        entry_points = installed(group=ENTRY_POINT_GROUP)
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
