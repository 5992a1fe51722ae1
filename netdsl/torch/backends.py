"""What runs an optimised module's forward: inductor (always there), the fp32 runtimes of
:mod:`netdsl.torch.runtimes` (OpenVINO and ONNX Runtime, the optional extra ``speed``), and the
lower-precision routes (bf16, PT2E int8).

Why runtimes: on a CPU, inductor's fp32 code for ResNet-50 is 1.5x slower than ONNX Runtime
and OpenVINO at batch 1 (benchmarks/RESULTS.md); their graph compilers, behind the same
``nn.Module`` interface, match them. ``backend="auto"`` therefore races the installed runtimes
(fp32) or picks OpenVINO (bf16), and falls back to inductor; ``backend="inductor"`` keeps
everything in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from . import runtimes

BACKENDS = ("auto", "inductor", *runtimes.RUNTIMES)
MODES = ("fp32", "bf16", "int8")


def has_openvino() -> bool:
    return runtimes.installed("openvino")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (avx512_bf16 or AMX): elsewhere bf16 is
    emulated and slower than fp32, so ``optimize="bf16"`` is refused there."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose(backend: str, mode: str) -> tuple[str, ...]:
    """What runs ``mode``: one backend, or for fp32 under ``"auto"`` every installed runtime
    (raced on the first input of each shape). int8 is PT2E + inductor (OpenVINO's int8 needs
    NNCF); bf16 is OpenVINO or inductor (ONNX Runtime has no bf16 convolutions on CPU)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if mode == "int8":
        return ("inductor",)
    if backend != "auto":
        return (backend,)
    if mode == "bf16":
        return ("openvino",) if has_openvino() else ("inductor",)
    return tuple(r for r in runtimes.RUNTIMES if runtimes.installed(r)) or ("inductor",)


def inductor(module: nn.Module) -> Callable:
    # freezing: weights become constants, so inductor pre-packs them for oneDNN
    return torch.compile(module, fullgraph=True, options={"freezing": True})


def inductor_int8(module: nn.Module) -> Callable:
    """Like :func:`inductor`, for a PT2E int8 module: its weight pre-packing runs only under
    the process-wide ``freezing`` flag (as a compile option it fails in torch 2.14), so each
    call, and any recompile it triggers, sets the flag for its duration only."""
    compiled = torch.compile(module, fullgraph=True)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch._inductor.config.patch(freezing=True):
            return compiled(x)
    return run


class Bf16Runner(nn.Module):
    """fp32 in, fp32 out, bf16 inside (weights cast once; inputs cast per call)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(torch.bfloat16)).float()


def quantize_int8(module: nn.Module, calibration: torch.Tensor | Iterable[torch.Tensor]) -> nn.Module:
    """PT2E static int8 quantization for x86 (VNNI): observers calibrated on ``calibration``
    (a batch, or an iterable of batches), then converted; compile it with :func:`inductor`.
    Needs torchao (the optional extra ``speed``)."""
    # importing the x86 passes registers torchao's int8 fusion patterns with inductor
    import torchao.quantization.pt2e.inductor_passes.x86  # noqa: F401
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    batches = [calibration] if isinstance(calibration, torch.Tensor) else list(calibration)
    if not batches:
        raise ValueError("optimize='int8' needs calibration data: a batch or batches of inputs")
    with torch.no_grad():
        # the batch dimension stays dynamic: calibration batches need not match the served ones
        exported = torch.export.export(module.eval(), (batches[0],),
                                       dynamic_shapes=({0: torch.export.Dim.AUTO},)).module()
        quantizer = x86.X86InductorQuantizer()
        quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(exported, quantizer)
        for batch in batches:
            prepared(batch)
        return convert_pt2e(prepared)


def agreement(got: torch.Tensor, expected: torch.Tensor) -> dict[str, float]:
    """How a lower-precision output agrees with fp32: the largest difference relative to the
    output's scale, and, for a classifier's logits, how often the top class is the same."""
    got, expected = got.float(), expected.float()
    out = {"max_rel_error": runtimes.relative_error(got, expected)}
    if got.dim() == 2:
        out["top1_agreement"] = float((got.argmax(1) == expected.argmax(1)).float().mean())
    return out
