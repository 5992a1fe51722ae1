"""Small modules that ``torch.nn`` lacks and newer networks use, written as torchvision writes
them (so their state_dict keys and numbers agree). Generated modules refer to them by name;
the standalone ``.py`` export copies their source in, so it still imports only torch.

Keep each class self-contained (it is copied verbatim) and give it ``reset_parameters`` when
it holds tensors: build initialises every tensor through that method.
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of an NCHW tensor, at every position (ConvNeXt's stem and
    downsampling layers; torchvision ``convnext.LayerNorm2d``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class StochasticDepth(nn.Module):
    """Drops whole residual branches per sample in training, with probability ``p``, and
    rescales the kept ones (Huang et al. 2016; torchvision ``ops.StochasticDepth``, "row"
    mode). The identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


class FrozenBatchNorm2d(nn.Module):
    """Batch norm whose statistics and affine terms are fixed buffers (torchvision
    ``ops.FrozenBatchNorm2d``, the norm of its detection backbones): no parameters, the same
    in training and in evaluation."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name in ("weight", "bias", "running_mean", "running_var"):
            self.register_buffer(name, torch.empty(num_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0),
                            ("running_var", 1.0)):
            nn.init.constant_(getattr(self, name), value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


RUNTIME_CLASSES = (LayerNorm2d, StochasticDepth, FrozenBatchNorm2d)
