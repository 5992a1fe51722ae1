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

What runs the result (``backend=``, see :mod:`netdsl.torch.backends`): the faster of OpenVINO
and ONNX Runtime in fp32, raced on the first input of each shape, when they are installed
(``pip install 'netdsl[speed]'``; both are faster than inductor on CPU), else steps 3-4 with
inductor. ``mode="bf16"`` and ``mode="int8"`` (PT2E quantization, calibrated on user data)
trade accuracy for speed and report their ``agreement`` with fp32.

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

from ..errors import BuildError
from . import backends, runtimes


def fold_batch_norm(module: nn.Module, inplace: bool = False) -> nn.Module:
    """The module in eval mode with every conv -> bn pair folded into one convolution.

    Returns a ``torch.fx.GraphModule`` that keeps the original module names (a folded
    convolution keeps its own name; the batch norm modules are gone). The input module is
    left as it was unless ``inplace``.
    """
    graph = getattr(module, "netdsl_graph", None)
    if not inplace:
        module = _copy(module)
    folded = fuse(module.eval(), inplace=True)
    if graph is not None:
        folded.netdsl_graph = graph
    return folded


def _copy(module: nn.Module) -> nn.Module:
    """A deep copy that shares the IR (immutable, and not copyable: it holds mapping proxies)."""
    graph = getattr(module, "netdsl_graph", None)
    return copy.deepcopy(module, memo={id(graph): graph} if graph is not None else None)


def _convolves(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


class InferenceModule(nn.Module):
    """A folded module and what runs its forward (see :mod:`netdsl.torch.backends`); always
    runs without gradients.

    ``module`` is the folded fp32 eager module (its state_dict is this module's state_dict);
    ``backend`` and ``mode`` say what runs it (``backend="fastest"``: the runtimes raced per
    input shape, with the outcome in ``choices``); ``compile_seconds`` is how long the first
    call took (compiling included), ``None`` before; for bf16 and int8, ``agreement`` compares
    the first call's output with the fp32 module's (``max_rel_error``, ``top1_agreement``).
    """

    def __init__(self, module: nn.Module, channels_last: bool, run=None, *, mode: str = "fp32",
                 backend: str = "inductor"):
        super().__init__()
        self.module = module
        self.channels_last = channels_last
        self.mode = mode
        self.backend = backend
        self.compile_seconds: float | None = None
        self.agreement: dict[str, float] | None = None
        # a plain attribute, not a submodule (nn.Module.__setattr__ would register a compiled
        # or quantized runner): the weights are registered once, under module, and eval()
        # does not reach the runner (an exported int8 program refuses train/eval calls)
        object.__setattr__(self, "_run", run if run is not None else module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.compile_seconds is not None:
                return self._run(x)
            started = time.perf_counter()
            y = self._run(x)
            self.compile_seconds = time.perf_counter() - started
            if self.mode != "fp32":
                self.agreement = backends.agreement(y, self.module(x))
            return y

    @property
    def choices(self) -> dict[tuple, tuple[str, dict[str, float | None]]]:
        """Per input shape, the runtime a race chose and each one's median seconds (see
        :class:`netdsl.torch.runtimes.FastestRunner`); empty where nothing was raced."""
        return dict(getattr(self._run, "choices", {}))

    def train(self, mode: bool = True) -> InferenceModule:
        if mode:
            raise RuntimeError("an optimised netdsl module is for inference only; build the "
                               "module without optimize=True to train it")
        return super().train(False)


def optimize_module(module: nn.Module, *, mode: bool | str = "fp32", backend: str = "auto",
                    calibration=None, channels_last: bool | None = None, compile: bool = True,
                    inplace: bool = False) -> InferenceModule:
    """``module`` for fast inference: eval, batch norm folded, channels_last, compiled.

    ``mode`` is ``"fp32"`` (or ``True``; outputs within 1e-4 relative of eager), ``"bf16"``
    (a CPU with bf16 instructions) or ``"int8"`` (PT2E static quantization calibrated on
    ``calibration``, a batch or an iterable of batches). ``backend``: ``"auto"`` (the installed
    runtimes raced, else inductor), ``"inductor"``, ``"openvino"`` or ``"onnxruntime"``.
    ``channels_last=None`` chooses it for networks with 2-D convolutions; ``compile=False``
    stops after folding (an eager module, for debugging). The result is not trainable.
    """
    mode = _mode(mode, calibration)
    candidates = _backends(backend, mode)
    chosen = candidates[0] if len(candidates) == 1 else "fastest"
    folded = fold_batch_norm(module, inplace=inplace)
    for p in folded.parameters():
        p.requires_grad_(False)
    if channels_last is None:
        channels_last = _convolves(folded) and chosen == "inductor"
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    run = _runner(folded, mode, candidates, calibration, channels_last) if compile else None
    optimized = InferenceModule(folded, channels_last, run, mode=mode, backend=chosen)
    optimized.eval()
    if hasattr(folded, "netdsl_graph"):
        optimized.netdsl_graph = folded.netdsl_graph
    return optimized


def _mode(mode: bool | str, calibration) -> str:
    mode = "fp32" if mode is True else mode
    if mode not in backends.MODES:
        raise BuildError(f"unknown optimize mode {mode!r}",
                         notes=(f"known: True, {', '.join(map(repr, backends.MODES))}",))
    if mode == "int8" and calibration is None:
        raise BuildError("optimize='int8' needs calibration data",
                         notes=("pass calibration=a batch of inputs, or an iterable of batches",))
    if mode == "bf16" and not backends.cpu_has_bf16():
        raise BuildError("optimize='bf16' needs a CPU with bf16 instructions (avx512_bf16 or AMX)",
                         notes=("this CPU would emulate bf16, slower than fp32: use optimize=True",))
    return mode


def _backends(backend: str, mode: str) -> tuple[str, ...]:
    candidates = backends.choose(backend, mode)
    for name in candidates:
        if name in runtimes.RUNTIMES and not runtimes.installed(name):
            raise BuildError(f"backend={name!r} needs the {name} package",
                             notes=("pip install 'netdsl[speed]'",))
    if mode == "bf16" and candidates == ("onnxruntime",):
        raise BuildError("optimize='bf16' runs on OpenVINO or inductor, not ONNX Runtime",
                         notes=("ONNX Runtime has no bf16 convolutions on CPU",))
    return candidates


def _runner(folded: nn.Module, mode: str, candidates: tuple[str, ...], calibration,
            channels_last: bool):
    if len(candidates) > 1:
        return runtimes.FastestRunner(folded, candidates)
    backend = candidates[0]
    if backend == "openvino":
        return runtimes.OpenVINORunner(folded, "bf16" if mode == "bf16" else "f32")
    if backend == "onnxruntime":
        return runtimes.OnnxRuntimeRunner(folded)
    if mode == "bf16":
        return backends.inductor(backends.Bf16Runner(_copy(folded)))
    if mode == "int8":
        layout = torch.channels_last if channels_last else torch.contiguous_format
        batches = [calibration] if isinstance(calibration, torch.Tensor) else list(calibration)
        batches = [b.contiguous(memory_format=layout) if b.dim() == 4 else b for b in batches]
        return backends.inductor_int8(backends.quantize_int8(folded, batches))
    return backends.inductor(folded)
