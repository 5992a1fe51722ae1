"""The torch side of ``blurpool``: imported only when a module is built."""

import torch
from torch import nn


class BlurPool(nn.Module):
    def __init__(self, channels: int, stride: int = 2):
        super().__init__()
        self.channels, self.stride = channels, stride
        self.register_buffer("filter", torch.empty(channels, 1, 3, 3))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """netdsl builds on the meta device and then calls this: every tensor gets its value
        here (a binomial [1, 2, 1] x [1, 2, 1] / 16 filter)."""
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16
        with torch.no_grad():
            self.filter.copy_(kernel.expand(self.channels, 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.filter, stride=self.stride, padding=1,
                                    groups=self.channels)
