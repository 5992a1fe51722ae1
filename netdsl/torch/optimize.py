"""Inference optimisation: what ``netdsl.build(spec, optimize=True)`` and
``netdsl build --optimize`` return.

Four steps, each one a known, output-preserving rewrite for inference:

1. eval mode, no gradients (dropout off, batch norm uses its running statistics);
2. batch norm folded into the convolution before it (Ioffe & Szegedy 2015, Sec. 3.2: at
   inference a BN is an affine map, so ``bn(conv(x)) == conv'(x)`` with scaled weights and a
   bias); done on a ``torch.fx`` trace of the generated forward, wherever the convolution's
   output has no reader but the batch norm;
3. channels_last (NHWC) weights and input where the network convolves: oneDNN (CPU) and
   cuDNN (GPU) run NHWC convolutions without the layout reorders NCHW needs;
4. ``torch.compile(fullgraph=True)`` with inductor ``freezing``: weights become constants, so
   inductor pre-packs them and folds what is constant. ``freezing`` is passed as this
   compile's own option, so the process-wide ``torch._inductor.config`` is left unchanged.

Compiling is lazy, on the first call (per input shape); the seconds it took are in
``compile_seconds`` afterwards (see :func:`optimize_module`).

>>> model = netdsl.build("specs/resnet50.net", optimize=True)   # doctest: +SKIP
>>> y = model(torch.randn(8, 3, 224, 224)); model.compile_seconds  # doctest: +SKIP
31.4
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse


def fold_batch_norm(module: nn.Module, inplace: bool = False) -> nn.Module:
    """The module in eval mode with every conv -> bn pair folded into one convolution.

    Returns a ``torch.fx.GraphModule`` that keeps the original module names (a folded
    convolution keeps its own name; the batch norm modules are gone). The input module is
    left as it was unless ``inplace``.
    """
    graph = getattr(module, "netdsl_graph", None)
    if not inplace:  # the IR is immutable: the copy shares it
        module = copy.deepcopy(module, memo={id(graph): graph} if graph is not None else None)
    folded = fuse(module.eval(), inplace=True)
    if graph is not None:
        folded.netdsl_graph = graph
    return folded


def _convolves(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


class InferenceModule(nn.Module):
    """A folded module and its compiled forward; always runs without gradients.

    ``module`` is the folded eager module (its state_dict is this module's state_dict);
    ``compile_seconds`` is how long the first call took (compiling included), ``None`` before.
    """

    def __init__(self, module: nn.Module, channels_last: bool, compile: bool = True):
        super().__init__()
        self.module = module
        self.channels_last = channels_last
        self.compile_seconds: float | None = None
        # a plain attribute, not a submodule: the weights are registered once, under module
        self._run = torch.compile(module, fullgraph=True, options={"freezing": True}) \
            if compile else module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.compile_seconds is not None:
                return self._run(x)
            started = time.perf_counter()
            y = self._run(x)
            self.compile_seconds = time.perf_counter() - started
            return y

    def train(self, mode: bool = True) -> InferenceModule:
        if mode:
            raise RuntimeError("an optimised netdsl module is for inference only; build the "
                               "module without optimize=True to train it")
        return super().train(False)


def optimize_module(module: nn.Module, *, channels_last: bool | None = None, compile: bool = True,
                    inplace: bool = False) -> InferenceModule:
    """``module`` for fast inference: eval, batch norm folded, channels_last, compiled.

    ``channels_last=None`` chooses it for networks with 2-D convolutions; ``compile=False``
    stops after folding (an eager module, for debugging). The result is not trainable.
    """
    folded = fold_batch_norm(module, inplace=inplace)
    for p in folded.parameters():
        p.requires_grad_(False)
    if channels_last is None:
        channels_last = _convolves(folded)
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    optimized = InferenceModule(folded, channels_last, compile=compile)
    optimized.eval()
    if hasattr(folded, "netdsl_graph"):
        optimized.netdsl_graph = folded.netdsl_graph
    return optimized
