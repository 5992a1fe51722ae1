"""Syntax tree to IR: resolve imports and names, bind arguments, expand blocks, name every
module. ``values`` (what specs compute with), ``loader`` (files, imports, the prelude),
``evaluate`` (value expressions), ``functions`` (round, make_divisible, ...), ``binder``
(arguments to parameters), ``naming`` (module scopes), ``expand`` (layers to nodes),
``builtins`` (stack, residual, ...), ``networks`` (parameters, overrides, the entry point
:func:`lower_spec`)."""

from .loader import (
    BUNDLED_SPECS,
    Loader,
    SpecText,
    is_guessed_text,
    load,
    main_network,
    spec_path,
    zoo_spec,
)
from .networks import instantiate, lower_spec
from .values import BadNumber, OverrideText

__all__ = ["lower_spec", "load", "instantiate", "main_network", "spec_path", "Loader", "OverrideText",
           "BadNumber", "BUNDLED_SPECS", "SpecText", "is_guessed_text", "zoo_spec"]
