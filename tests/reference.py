"""Helpers to prove a spec against a reference implementation (torchvision or timm)."""

from __future__ import annotations

import torch


def randomize_batch_norm(model: torch.nn.Module, seed: int = 0) -> None:
    """Gives every batch norm non-trivial statistics and affine parameters, so that a wrong
    eps, a missing norm or a swapped layer changes the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            # torchvision's and netdsl's FrozenBatchNorm2d hold the same four tensors as buffers
            frozen = type(m).__name__ == "FrozenBatchNorm2d"
            if not frozen and not isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                continue
            n = m.running_mean.numel()
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            if frozen or m.affine:
                m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_same_outputs(ours, theirs, rtol: float = 1e-5) -> None:
    """Outputs agree within ``rtol`` relative to the reference output's scale."""
    ours = ours if isinstance(ours, tuple | list) else (ours,)
    theirs = theirs if isinstance(theirs, tuple | list) else (theirs,)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        scale = b.abs().max().item()
        assert scale > 0
        assert (a - b).abs().max().item() <= rtol * scale, (a - b).abs().max().item() / scale


def load_and_compare(ours: torch.nn.Module, reference: torch.nn.Module, x: torch.Tensor,
                     rtol: float = 1e-5) -> None:
    """Loads the reference's weights into ours with strict=True; eval outputs must agree."""
    randomize_batch_norm(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.eval()
    reference.eval()
    with torch.no_grad():
        assert_same_outputs(ours(x), reference(x), rtol)
