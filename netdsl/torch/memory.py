"""Training in a memory budget: a planned module's forward checkpoints the units the plan
(netdsl.passes.memory) recomputes, and :class:`LiveBytes` measures what a step really holds.

Checkpointing is ``torch.utils.checkpoint`` with ``use_reentrant=False``. Recomputing a unit
runs its batch norms a second time, which would update their running statistics twice; the
recomputation puts them back as they were (turning the updates off instead would change
what batch norm saves for backward, which checkpointing checks), so the running statistics
equal the unplanned module's.
"""

from __future__ import annotations

import contextlib
import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import checkpoint


def run_checkpointed(owner: nn.Module, segment, x: torch.Tensor, modules: tuple[str, ...]):
    """``segment(x)``, recomputed in backward instead of keeping its activations (training
    with gradients only: in eval or under ``no_grad`` there is nothing to save)."""
    if not (owner.training and torch.is_grad_enabled()):
        return segment(x)
    norms = [m for name in modules for m in owner.get_submodule(name).modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    return checkpoint(segment, x, use_reentrant=False,
                      context_fn=lambda: (contextlib.nullcontext(), _statistics_kept(norms)))


@contextlib.contextmanager
def _statistics_kept(norms: list[nn.Module]):
    """Restores the batch norms' running statistics (and counts) on leaving."""
    buffers = [b for m in norms for b in m.buffers()]
    before = [b.clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in zip(buffers, before, strict=True):
                b.copy_(value)


def plan_module(module: nn.Module, plan) -> nn.Module:
    """``module`` with a forward that checkpoints the plan's recomputed units (its class
    swapped for a subclass with that forward: same parameters, names and state_dict)."""
    from . import emit

    if plan.recomputed:
        cls = emit.planned_class(module.netdsl_graph, type(module), plan.segments(),
                                   run_checkpointed)
        module.__class__ = cls
    module.netdsl_memory_plan = plan
    return module


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of every tensor storage alive while it is active, exactly: each
    storage an op creates is added once and subtracted when it is freed, so ``peak`` is the
    most held at once. Storages alive before (``tensors`` passed in: the parameters, the
    input) count from the start. CPU, deterministic, no allocator statistics needed."""

    def __init__(self, tensors=()):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: dict[int, weakref.ref] = {}
        for t in tensors:
            self._track(t)

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = id(storage)
        if key in self._seen and self._seen[key]() is not None:
            return
        size = storage.nbytes()
        self.live += size
        self.peak = max(self.peak, self.live)
        self._seen[key] = weakref.ref(storage, lambda _, k=key, s=size: self._free(k, s))

    def _free(self, key: int, size: int) -> None:
        self.live -= size
        self._seen.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self._track(t)
        return out


def training_step_peak(module: nn.Module, x: torch.Tensor, target: torch.Tensor) -> int:
    """The most bytes one training step (forward, cross-entropy, backward) holds at once,
    the parameters, their gradients and the input included; gradients start as None. An
    auxiliary classifier's output adds its own cross-entropy, as GoogLeNet's recipe does."""
    module.zero_grad(set_to_none=True)
    with LiveBytes([*module.parameters(), *module.buffers(), x]) as mode:
        out = module(x)
        outs = out if isinstance(out, tuple) else (out,)
        sum(torch.nn.functional.cross_entropy(o, target) for o in outs).backward()
    return mode.peak
