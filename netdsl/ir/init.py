"""Weight initialisation schemes, one table each: for every init role an op record declares
(``conv``, ``linear``, ``norm``), which of its tensors the scheme sets and how.

Both what the emitted module runs (:mod:`netdsl.torch.init` writes the loops from these rules)
and which tensors a scheme covers (so that ``build`` leaves exactly the others to PyTorch's own
``reset_parameters``) are derived from these tables, so they cannot disagree. Each rule is a
call of a public ``torch.nn.init`` function; ``{t}`` stands for the tensor and ``{std}`` (and
any other name in ``params``) for the scheme's argument, written with ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

_KAIMING = 'nn.init.kaiming_normal_({t}, mode="fan_out", nonlinearity="relu")'
_ONES, _ZEROS = "nn.init.ones_({t})", "nn.init.zeros_({t})"
_TRUNC = "nn.init.trunc_normal_({t}, mean=0.0, std={std}, a=-2, b=2)"
_NORM = {"weight": _ONES, "bias": _ZEROS}

# A layer's own `std=` (Inception-v3's auxiliary head) replaces its weight's rule in any scheme.
LAYER_STD_RULE = _TRUNC


@dataclass(frozen=True)
class Scheme:
    name: str
    doc: str
    params: tuple[str, ...]  # positional arguments: `init trunc_normal(0.1)`
    rules: Mapping[str, Mapping[str, str]]  # init role -> tensor name -> rule

    def covers(self, role: str | None) -> frozenset[str]:
        """The tensors of a module of ``role`` that this scheme sets."""
        return frozenset(self.rules.get(role, {})) if role else frozenset()


SCHEMES: Mapping[str, Scheme] = MappingProxyType({s.name: s for s in [
    Scheme("torch", "PyTorch's layer defaults (AlexNet, timm's Inception networks)", (), {}),
    Scheme("resnet", "torchvision resnet.py: conv kaiming_normal_(fan_out, relu), batch norm 1 "
           "and 0", (), {"conv": {"weight": _KAIMING}, "norm": _NORM}),
    Scheme("vgg", "torchvision vgg.py: as resnet, conv bias 0, fully connected normal(0, 0.01) "
           "and bias 0", (), {"conv": {"weight": _KAIMING, "bias": _ZEROS}, "norm": _NORM,
                              "linear": {"weight": "nn.init.normal_({t}, 0, 0.01)",
                                         "bias": _ZEROS}}),
    Scheme("trunc_normal", "torchvision googlenet.py / inception.py: conv and fully connected "
           "trunc_normal_(0, std, -2, 2), batch norm 1 and 0", ("std",),
           {"conv": {"weight": _TRUNC}, "linear": {"weight": _TRUNC}, "norm": _NORM}),
]})
