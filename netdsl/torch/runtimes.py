"""Inference runtimes behind an optimised module's forward, and the choice between them.

OpenVINO and ONNX Runtime each compile the network once per input shape (static shapes get
the fastest kernels) and run it on the CPU. On the case-study networks they are within a few
percent of each other, and which one leads depends on the CPU, the network and the batch
(benchmarks/RESULTS.md: ONNX Runtime by 1-6% on ResNet-50 on one machine, OpenVINO by 3% on
MobileNetV2 at batch 8 in one measurement and behind it in another). So with both installed,
``optimize=True`` times them on the first input of each shape and keeps the faster one
(:class:`FastestRunner`), after checking that its output agrees with the eager module within
1e-4 relative.

Each runtime is imported only when a runner first compiles: both are optional extras.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

# what `optimize=True` compares, by the name `backend=` takes
RUNTIMES = ("openvino", "onnxruntime")
# the largest difference from eager, relative to the output's scale, an fp32 runtime may have
FP32_TOLERANCE = 1e-4


def installed(runtime: str) -> bool:
    return importlib.util.find_spec(runtime) is not None


class Programs:
    """The module captured by ``torch.export`` per input shape, which both runtimes convert:
    racing them exports the network once, not once per runtime. (OpenVINO's converter would
    otherwise trace the module with ``torch.jit.trace``, which torch deprecates.)"""

    def __init__(self, module: nn.Module):
        self.module = module
        self._programs: dict[tuple, torch.export.ExportedProgram] = {}

    def __call__(self, x: torch.Tensor) -> torch.export.ExportedProgram:
        program = self._programs.get(tuple(x.shape))
        if program is None:
            program = self._programs[tuple(x.shape)] = torch.export.export(self.module, (x,))
        return program

    def forget(self, shape: tuple) -> None:
        """Frees the program once every runtime has converted it."""
        self._programs.pop(shape, None)


class _PerShape:
    """A runtime's compiled network per input shape, made on the first input of that shape
    from the module's exported program (``programs``, shared when several runtimes race)."""

    def __init__(self, module: nn.Module, programs: Programs | None = None):
        self.module = module
        self._own_programs = programs is None  # else the race frees them once all converted
        self.programs = programs or Programs(module)
        self._compiled: dict[tuple, Callable] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        run = self._compiled.get(tuple(x.shape))
        if run is None:
            run = self._compiled[tuple(x.shape)] = self.compile(x)
            if self._own_programs:
                self.programs.forget(tuple(x.shape))
        return run(x)

    def compile(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def forget(self, shape: tuple) -> None:
        """Frees the network compiled for ``shape`` (a runtime that lost the race)."""
        self._compiled.pop(shape, None)


class OpenVINORunner(_PerShape):
    """The module converted by OpenVINO's PyTorch frontend. ``precision`` is OpenVINO's
    inference precision hint: ``f32`` keeps fp32 arithmetic; ``bf16`` uses the CPU's bf16
    instructions."""

    def __init__(self, module: nn.Module, precision: str = "f32",
                 programs: Programs | None = None):
        super().__init__(module, programs)
        self.precision = precision

    def compile(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        import openvino as ov

        model = ov.convert_model(self.programs(x))  # static shapes: the example's
        compiled = ov.Core().compile_model(model, "CPU",
                                           {"INFERENCE_PRECISION_HINT": self.precision})
        request = compiled.create_infer_request()

        def run(t: torch.Tensor) -> torch.Tensor:
            # the request's output buffer is reused by the next call: copy it out
            return torch.from_numpy(request.infer(t.contiguous().numpy())[0].copy())
        return run


class OnnxRuntimeRunner(_PerShape):
    """The module exported with torch's ONNX exporter (the one ``netdsl export x.onnx``
    uses) and run by an ONNX Runtime session with its default options."""

    def compile(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        import onnxruntime as ort

        with warnings.catch_warnings():  # the exporter's progress notes, not the user's
            warnings.simplefilter("ignore")
            program = torch.onnx.export(self.programs(x), (x,), dynamo=True, verbose=False)
        session = ort.InferenceSession(program.model_proto.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(t: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {name: t.contiguous().numpy()})[0])
        return run


RUNNERS: dict[str, Callable[..., _PerShape]] = {
    "openvino": OpenVINORunner, "onnxruntime": OnnxRuntimeRunner,
}


class FastestRunner:
    """Several fp32 runtimes raced on the first input of each shape; the fastest one that
    agrees with the eager module runs every later input of that shape.

    ``choices[shape]`` records the race: the runtime chosen and each runtime's median
    seconds (``None`` for one that was dropped: its output disagreed with eager, or it could
    not convert the network, which ``failures[name]`` then says).
    """

    def __init__(self, module: nn.Module, runtimes: tuple[str, ...], rounds: int = 3):
        self.module = module
        self.programs = Programs(module)
        self.runners = {name: RUNNERS[name](module, programs=self.programs)
                        for name in runtimes}
        self.rounds = rounds
        self.choices: dict[tuple, tuple[str, dict[str, float | None]]] = {}
        self.failures: dict[str, str] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        choice = self.choices.get(tuple(x.shape))
        if choice is None:
            choice = self.choices[tuple(x.shape)] = self._race(x)
        run = self.runners.get(choice[0], self.module)  # "eager": see _race
        return run(x)

    def _race(self, x: torch.Tensor) -> tuple[str, dict[str, float | None]]:
        expected = self.module(x)
        agreeing = [name for name in self.runners if self._agrees(name, x, expected)]
        times: dict[str, list[float]] = {name: [] for name in agreeing}
        # interleaved rounds, so a burst of load on the machine falls on every runtime alike
        for _ in range(self.rounds):
            for name in agreeing:
                started = time.perf_counter()
                self.runners[name](x)
                times[name].append(time.perf_counter() - started)
        medians = {name: statistics.median(t) for name, t in times.items()}
        chosen = min(medians, key=medians.__getitem__) if medians else "eager"
        if not medians:  # never a wrong answer, only a slower one
            warnings.warn(f"no runtime of {', '.join(self.runners)} agrees with the eager module "
                          f"within {FP32_TOLERANCE:g} on inputs of shape {tuple(x.shape)}; "
                          "running the eager module", RuntimeWarning, stacklevel=3)
        for name, runner in self.runners.items():
            if name != chosen:
                runner.forget(tuple(x.shape))
        self.programs.forget(tuple(x.shape))  # every runtime converted it (or failed to)
        return chosen, {name: medians.get(name) for name in self.runners}

    def _agrees(self, name: str, x: torch.Tensor, expected: torch.Tensor) -> bool:
        """Compiles ``name`` for ``x``'s shape and compares its output with eager's. A runtime
        that cannot take the network (an op its converter lacks) is dropped from the race:
        the other one may, and the user asked for whichever is fastest, not for this one."""
        try:
            return relative_error(self.runners[name](x), expected) <= FP32_TOLERANCE
        except Exception as error:  # each runtime raises its own kinds
            self.failures[name] = f"{type(error).__name__}: {error}"
            return False


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """The largest difference relative to the output's scale."""
    got, expected = got.detach().float(), expected.detach().float()
    return float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
