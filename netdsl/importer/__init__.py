"""``netdsl import``: a PyTorch module to a readable spec (torch.fx trace, module scopes,
parametric blocks). The only package besides ``netdsl.torch`` that imports torch."""

from __future__ import annotations

import re


def from_module(module, input_shape, name: str | None = None) -> str:
    """The spec text of ``module`` (an ``nn.Module``) for inputs of ``input_shape`` (C, H, W),
    in ``netdsl fmt``'s layout; its labels reproduce the module's names, so the module's
    ``state_dict`` loads into ``netdsl.build(text)`` with ``strict=True``."""
    from .spec import write
    from .structure import Structure
    from .trace import trace

    input_shape = tuple(int(d) for d in input_shape)
    if name is None:
        name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", type(module).__name__).lower()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        from ..errors import ImportOptionError

        raise ImportOptionError(f"network name {name!r} is not an identifier")
    text = write(Structure(trace(module, input_shape)), name, input_shape)
    _check_names(module, text)
    return text


def _check_names(module, text: str) -> None:
    """Refuses a spec whose layers would not carry every weight of ``module`` (netdsl names a
    scope holding one layer after that layer: ``Sequential(Conv2d)`` cannot be ``x.0``)."""
    from ..api import compile as compile_spec
    from ..errors import ModuleImportError

    names: set[str] = set()
    for node in compile_spec(text).nodes:
        if node.name:
            names |= {node.name, f"{node.name}.0", f"{node.name}.1"} if node.op == "project" \
                else {node.name}
    holders = {key.rpartition(".")[0] for key in module.state_dict()}
    missing = sorted(holders - names)
    if missing:
        raise ModuleImportError(
            f"the spec would not hold the weights of {', '.join(map(repr, missing[:3]))}"
            + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""),
            notes=("netdsl names a scope that holds a single layer after that layer, so "
                   "a container with one child has no netdsl form",))
