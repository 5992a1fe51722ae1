"""Batch-norm statistics from a batch, for benchmarks and comparisons with realistic scales."""

from __future__ import annotations


def calibrate(module, x) -> None:
    """Sets every batch norm's running statistics to those of the batch ``x`` (one forward in
    training mode, without gradients), so activations have realistic scales: with freshly
    initialised statistics, deep networks such as Inception-v3 reach outputs near 1e8, where
    float rounding alone exceeds any fixed tolerance and timings are not representative."""
    import torch
    from torch import nn

    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, exactly its statistics
    module.train()
    with torch.no_grad():
        module(x)
    for m in norms:
        m.momentum = 0.1
    module.eval()
