"""Pretrained weights by name, from the reference implementation's own registry.

``netdsl.build("resnet50", weights="IMAGENET1K_V2")`` looks the network up in
:data:`REFERENCES` (data: a zoo network's name to the torchvision builder whose weights fit it
exactly), asks torchvision for that builder's weights enum (``get_model_weights``), and lets
the enum fetch its file exactly as torchvision's own builders do: through torch.hub's cache
(``$TORCH_HOME/hub/checkpoints``), hash-checked on download, read with ``weights_only``. The
state_dict is then loaded strictly. netdsl keeps no URL of its own, and a spec never names
code: only the names in this table are ever resolved.
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from ..errors import BuildError
from ..ir.graph import Graph
from .export import transfer

# Zoo network -> torchvision builder with the same state_dict keys and the same forward pass.
# googlenet and inception_v3 are left out on purpose: torchvision's pretrained builders turn on
# ``transform_input`` (a re-normalisation inside forward), so the same weights would not give
# torchvision's outputs. timm's weights come from the Hugging Face hub, not torch.hub.
REFERENCES = {
    "alexnet_torchvision": "alexnet",
    **{name: name for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")},
    **{f"vgg{d}{bn}": f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")},
}


def weights_enum(graph: Graph, weights: object):
    """The torchvision weights enum value ``weights`` (a name such as ``"IMAGENET1K_V2"`` or
    ``"DEFAULT"``, or an enum value) for the network ``graph`` describes."""
    builder = REFERENCES.get(graph.name)
    span = graph.input.span
    if builder is None:
        raise BuildError(f"{graph.name} has no pretrained weights: netdsl knows no reference "
                         "implementation for it", span,
                         notes=("networks with torchvision weights: " + ", ".join(REFERENCES),))
    try:
        from torchvision.models import get_model_weights
    except ImportError:
        raise BuildError("pretrained weights come from torchvision's registry: "
                         "pip install torchvision", span) from None
    enum = get_model_weights(builder)
    if isinstance(weights, enum):
        return weights
    names = [*enum.__members__]
    if not isinstance(weights, str) or weights not in enum.__members__:
        close = difflib.get_close_matches(str(weights), names, n=2)
        raise BuildError(f"torchvision has no weights {weights!r} for {builder}", span,
                         notes=(*(f"did you mean {c!r}?" for c in close[:1]),
                                f"known: {', '.join(names)}"))
    return enum[weights]


def load_pretrained(module: nn.Module, graph: Graph, weights: object,
                    progress: bool = True) -> nn.Module:
    """Loads ``weights`` into ``module`` strictly; sets ``module.netdsl_weights`` to the enum
    value (its ``transforms()`` and ``meta["categories"]`` describe the expected input and the
    classes). A file that cannot be read (truncated, corrupted) is a BuildError naming it, and
    ``module`` is left as it was: nothing is copied before the whole file has been read."""
    value = weights_enum(graph, weights)
    try:
        # what torchvision's builders call: the hub cache, the hash checked on download
        state = value.get_state_dict(progress=progress, check_hash=True, map_location="cpu",
                                     weights_only=True)
    except Exception as error:  # truncated, not a state_dict, a failed download
        raise BuildError(f"cannot read {value} from {_cached_file(value.url)}: "
                         f"{str(error).splitlines()[0] if str(error) else type(error).__name__}",
                         graph.input.span,
                         notes=("delete the file to download it again",)) from None
    transfer(module, state, strict=True, source=f"{value} ({_cached_file(value.url)})")
    module.netdsl_weights = value
    return module


def _cached_file(url: str) -> str:
    """Where torch.hub keeps (or will keep) the file of ``url``."""
    import os
    from urllib.parse import urlparse

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))
