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
        raise ValueError(f"network name {name!r} is not an identifier")
    return write(Structure(trace(module, input_shape)), name, input_shape)
