"""Which spec names generated Python may write as identifiers, and what it writes otherwise.

Generated source (``netdsl.build``'s class, the ``.py`` export) writes a name as an
identifier (``self.conv1``, ``class Bottleneck``, ``def __init__(self, c)``) only where
:func:`plain` says Python reads back exactly that name; every other label is reached
through ``getattr``/``add_module`` with a ``repr`` literal, and every other class, parameter
or local is renamed by :func:`identifier`. ``str.isidentifier`` alone is the wrong test:
Python normalises identifiers (NFKC), so ``self.ｘ`` *is* ``self.x``; it mangles ``__k``
inside a class body; ``match``/``case``/``type``/``_`` are soft keywords; and a parameter
named like a class or import the body uses hides it.

This sits in the IR phase so that lowering (labels) and the torch emitters both read it.
"""

from __future__ import annotations

import keyword
import unicodedata

# Names an nn.Module already has (methods, instance attributes such as `training` and
# `_modules`; torch 2.x's dir(nn.Module) and vars(nn.Module()) without the dunders, which are
# refused as a family), and the two the generated class adds: a child module of one of these
# names cannot be registered (add_module raises KeyError). tests/test_names.py checks that
# the installed torch adds none.
_ATTRIBUTES = """
T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
_compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks
_get_backward_pre_hooks _get_name _is_full_backward_hook _load_from_state_dict
_load_state_dict_post_hooks _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook
_modules _named_members _non_persistent_buffers_set _parameters
_register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version
_wrapped_call_impl add_module apply bfloat16 buffers call_super_init children compile cpu
cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
named_children named_modules named_parameters parameters register_backward_hook
register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook
register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
register_parameter register_state_dict_post_hook register_state_dict_pre_hook
requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train
training type xpu zero_grad
reset_parameters netdsl_graph
"""
MODULE_ATTRIBUTES = frozenset(_ATTRIBUTES.split())

# Names the generated file binds or reads where a spec's names are in scope (module level
# and constructors): its imports, the builtins its constructors call, and netdsl's runtime
# classes copied into it (netdsl.torch.layers.RUNTIME_CLASSES; tests/test_identifiers.py
# checks they are all here). The constructors' loop variable `_` is a soft keyword, which
# plain() refuses; forwards' locals (x, x1, ...) never meet a spec name. A class or
# parameter named by a spec never takes one of these.
RESERVED = frozenset({
    "self", "nn", "torch", "super", "range", "getattr", "isinstance",
    "LayerNorm2d", "StochasticDepth", "FrozenBatchNorm2d",
})


# Soft keywords of any Python the generated file may run on (`type` is one from 3.12), not
# only of the one generating it.
SOFT_KEYWORDS = frozenset({*keyword.softkwlist, "_", "case", "match", "type"})


def stable(name: str) -> bool:
    """Whether Python reads ``name`` as itself (NFKC leaves it unchanged)."""
    return unicodedata.normalize("NFKC", name) == name


def plain(name: str) -> bool:
    """Whether generated source may write ``name`` as an identifier and be sure Python reads
    that very name: an identifier, NFKC-stable, no keyword or soft keyword, and no leading
    double underscore (mangled inside a class body). The one test every generated name
    passes; a name in :data:`RESERVED` also passes it (``self.nn`` is fine as an attribute),
    :func:`identifier` keeps those out of namespaces."""
    return (name.isidentifier() and stable(name) and not keyword.iskeyword(name)
            and name not in SOFT_KEYWORDS and not name.startswith("__"))


def identifier(name: str, taken: set[str], fallback: str = "arg") -> str:
    """A Python name for ``name`` in a namespace holding ``taken`` (added to it): ``name``
    itself where :func:`plain` and free, ``nn_``/``match_`` for a reserved name or a soft or
    hard keyword (as PEP 8 spells ``class_``), ``_k`` for ``__k``, ``fallback`` where no
    identifier comes of it, then numbered (``c2``, ``c_2``) until free."""
    base = name if name.isidentifier() and stable(name) else fallback
    if base.startswith("__"):
        base = "_" + base.lstrip("_") if base.strip("_") else fallback
    if base == "_":
        base = fallback
    if not plain(base) or base in RESERVED:
        base += "_"
    candidate, n = base, 1
    while candidate in taken or candidate in RESERVED:
        n += 1
        candidate = f"{base}{n}" if base[-1:].isalpha() else f"{base}_{n}"
    taken.add(candidate)
    return candidate


def numbered(base: str, taken: set[str], sep: str = "") -> str:
    """``base``, else ``base{sep}2``, ``base{sep}3``...: the first not in ``taken`` (added to
    it)."""
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}{sep}{n}"
    taken.add(candidate)
    return candidate


def foreign_problem(name: str) -> str | None:
    """Why a module name breaks tools that write ``self.<name>`` whenever
    ``name.isidentifier()`` (torch.fx's code generator, so ``.pt2`` and ONNX): Python reads
    another name or none. None when they handle it (they use ``getattr`` for the rest)."""
    if not name.isidentifier():
        return None
    if not stable(name):
        return (f"Python reads '{name}' as '{unicodedata.normalize('NFKC', name)}' "
                "(NFKC), so generated code would call another module")
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword, which cannot follow 'self.'"
    return None
