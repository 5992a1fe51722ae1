"""The public Python API: ``parse``, ``compile``, ``build`` (see docs/design.md, public contract).

The command line is a layer over this module: every command calls what is here and formats
the result (tests/test_architecture.py), so what a command can do, Python can do as well.
Network parameters come as keywords (``num_classes=10``) or, where a name would collide
with an option (``base``, ``depth``), as a mapping, ``params`` (as ``screen`` takes them).

A spec is named explicitly: a :class:`pathlib.Path` is a file, ``netdsl.zoo_spec("resnet50")``
a bundled network (its file), ``netdsl.SpecText(text)`` spec text; a plain ``str`` is a
command line's SPEC (a file, else a bundled network, by :func:`spec_file`'s rule). A plain
``str`` that is read as spec text by guessing still works, with a ``DeprecationWarning``:
pass ``netdsl.SpecText(text)``.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import lower as _lower
from .errors import BuildError, OptionError, SpecLimitError
from .ir.graph import Graph
from .lower import BUNDLED_SPECS, BadNumber, SpecText, zoo_spec
from .passes.analyse import DTYPE_BYTES
from .passes.explore import FIGURES as SWEEP_FIGURES
from .passes.explore import MEASURED
from .syntax import parser as _parse
from .syntax.tree import Module

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .passes.analyse import Summary
    from .passes.explore import Point
    from .passes.sizes import SizeResult

# The dtypes summary() sizes activation memory for; sweep() measures SWEEP_FIGURES of every
# point, and reads MEASURED from trials (either may be a Pareto axis, or a budget's figure).
DTYPES: tuple[str, ...] = tuple(DTYPE_BYTES)

__all__ = ["parse", "compile", "build", "screen", "summary", "sweep", "input_sizes", "link",
           "spec_file", "zoo_spec", "SpecText", "zoo_names", "read_spec", "graph_json", "check_budget",
           "check_activations", "optimize_inference", "BUNDLED_SPECS", "BadNumber", "DTYPES",
           "SWEEP_FIGURES", "MEASURED", "MAX_PARAMS", "MAX_ACTIVATIONS"]


def parse(text: str, filename: str | None = None) -> Module:
    """Parses spec text into a syntax tree (no imports are read, nothing is expanded)."""
    return _parse.parse(text, filename)


def compile(spec: str | os.PathLike, params: Mapping[str, object] | None = None, *,  # noqa: A001
            base: str | os.PathLike | None = None, filename: str | None = None,
            **kwargs: object) -> Graph:
    """Compiles a spec (a ``.net`` file's path, spec text as a :class:`SpecText`, or a name) into a
    checked IR graph.

    A plain string names a file or else a bundled network, by :func:`spec_file`'s rule;
    spec text in a plain string is deprecated (pass ``SpecText(text)``). ``params`` and
    keywords override the network's parameters (``num_classes=10``); ``input=(3, 64, 64)``
    replaces its input shape. Spec text may import the bundled specs only, unless ``base``
    names a folder it may import from too (a file imports from its own folder; the working
    folder is never searched); ``filename`` names the text in diagnostics. Raises
    :class:`netdsl.NetDSLError` on any problem.
    """
    spec = _explicit(spec)
    # lowering derives every shape as it adds the node (the rule check() re-applies for
    # another input size or a graph read from JSON): its graph is checked already
    return _lower.lower_spec(spec, _values(_merged(params, kwargs)), filename, base=base)


def spec_file(name: str | os.PathLike) -> Path:
    """The file a spec named on a command line is read from: an existing file, else the
    bundled network of that name (``resnet50``, ``resnet50.net``), else the name as given
    (compiling it reports the missing file, with the names that may have been meant)."""
    return _lower.spec_path(name)


def link(spec: str | os.PathLike) -> None:
    """Reads a spec (as :func:`compile` takes it) and the files it imports, and defines their
    names, without instantiating a network: a missing file, a syntax error or a bad import
    raises here. :func:`sweep` does it once before its points, as ``netdsl sweep`` does
    before it reads its grid."""
    _lower.load(_explicit(spec))


def zoo_names() -> list[str]:
    """The networks bundled in :data:`BUNDLED_SPECS`, by name (family files included)."""
    from .lower.loader import zoo_names as names

    return names()


def read_spec(path: str | os.PathLike) -> str:
    """A spec file's text exactly as the compiler reads it (no newline translation; a regular
    file under the size limit only): a coded NetDSLError for a missing, huge or special file."""
    from .lower.loader import read_spec as read

    return read(Path(path))


def graph_json(graph: Graph) -> dict:
    """A compiled graph as JSON data (schema ``netdsl.ir.graph/2``, what ``netdsl show --format
    json`` prints; netdsl.ir.graph.from_json reads it back)."""
    from .ir.graph import to_json

    return to_json(graph)


def input_sizes(graph: Graph, sizes: Sequence[int]) -> list[SizeResult]:
    """For each square input size (``netdsl check --sizes``), whether ``graph`` accepts it:
    a result per size, whose ``node`` (None when valid), ``where`` and ``message`` say where
    an invalid one fails first."""
    from .passes.sizes import sweep as sizes_sweep

    return sizes_sweep(graph, sizes)


def screen(spec: str | os.PathLike, params: Mapping[str, object] | None = None, *,
           max_params: int | None = None, max_macs: int | None = None,
           max_activations: int | None = None, batch: int = 1):
    """One point of a design space, statically (``netdsl sweep``'s figures and budgets for a
    single point, torch never imported; ``params`` may hold ``netdsl.build``'s own options too,
    which are left out): a :class:`netdsl.passes.explore.Point` whose ``over``
    names the budgets it exceeds (``max_activations`` in bytes at ``batch``, as ``netdsl sweep
    --max-activations``) and whose ``error`` is the diagnostic of a point that does not compile.
    Sweeps call it before launching a trial (examples/hydra_plugins/netdsl_sweep)."""
    from .passes.explore import explore

    spec = _explicit(spec)
    # what netdsl.build takes besides network parameters (memory_budget=, optimize=...): a
    # Hydra model config holds both, and only the parameters shape the network
    options = {name for name, p in inspect.signature(build).parameters.items()
               if p.kind is p.KEYWORD_ONLY}
    network = {k: v for k, v in (params or {}).items() if k not in options}
    budgets = {"params": max_params, "macs": max_macs, "activation_bytes": max_activations}
    for name, value in budgets.items():  # from a config file: 2e9 is fine, nan or -1 is not
        if value is not None and not 0 <= value <= 10**18:
            raise OptionError(f"the {name} budget must be a number from 0 to 1e18, found {value}")
    return explore(lambda p: compile(spec, p), [network],
                   {k: int(v) for k, v in budgets.items() if v is not None}, batch=batch)[0]


def sweep(spec: str | os.PathLike, axes: Mapping[str, Sequence[object]], *,
          budgets: Mapping[str, int] | None = None, batch: int = 1,
          pareto: tuple[str, str] = ("macs", "params"),
          trials: Sequence[Mapping] | None = None) -> list[Point]:
    """Every point of the grid ``axes`` (parameter -> values), screened statically as
    ``netdsl sweep`` does: a :class:`~netdsl.passes.explore.Point` each, with its figures,
    the ``budgets`` (figure -> limit) it exceeds, its diagnostic if it does not compile, and
    whether it is on the Pareto front over ``pareto``. ``trials`` (the ``metrics.json``
    records of trained points) joins what was measured, so ``pareto`` may name ``accuracy``.
    A spec that cannot be read fails once, not once per point."""
    from .passes.explore import explore, grid, join_results, mark_pareto

    spec = _explicit(spec)
    link(spec)  # a missing or unreadable spec: one error, not one per point
    # points hold netdsl values (tuples, not lists), as trials and tables compare and show them
    axes = {key: [_values({key: value})[key] for value in values] for key, values in axes.items()}
    points = explore(lambda params: compile(spec, params), grid(axes), budgets,
                     ("macs", "params"), batch)
    if trials is not None:
        points = join_results(points, list(trials))
    return mark_pareto(points, pareto)


def summary(spec: str | os.PathLike | Graph, params: Mapping[str, object] | None = None, *,
            batch: int = 1, dtype: str = "float32",
            depth: int | None = None, memory_budget: int | str | None = None,
            base: str | os.PathLike | None = None, **kwargs: object) -> Summary:
    """Per-layer figures of a network, statically (torch is never imported), as ``netdsl
    summary`` prints them: its table, CSV and JSON are formatted from what this returns.

    ``spec`` is what :func:`compile` takes (``params`` and ``base`` as there), or a graph it
    returned. The :class:`~netdsl.passes.analyse.Summary` has ``layers`` (rows: ``name``,
    ``op``, ``shape``, ``params``, ``macs``, ``activations``, ``rf``, ``jump``, ``aux``,
    ``count``), totals (``total_params``, ``total_macs``, ``total_activations``, ``depth``,
    ``feature_rf``, ``inference()``, ``forward_bytes()``, ``training_bytes()``) and
    ``to_json()``, the JSON ``netdsl summary --format json`` prints (less its ``spec`` key).
    ``batch`` and ``dtype`` size the memory figures; ``depth`` collapses blocks below it
    into one row each; ``memory_budget`` (bytes, or ``"2GB"``) adds the activation
    checkpointing plan that makes a training step at ``batch`` fit (``memory_plan``).
    A bad option is a BuildError (E010).

    >>> s = summary(SpecText("network t:\\n input 3x32x32\\n conv(8, 3x3) -> relu"))
    >>> [(x.name, x.params) for x in s.layers], s.total_macs
    ([('input', 0), ('0', 224), ('1', 0)], 194400)
    """
    from dataclasses import replace

    from .passes.analyse import DTYPE_BYTES, summarize

    if dtype not in DTYPE_BYTES:
        raise BuildError(f"unknown dtype '{dtype}'", notes=(f"known: {', '.join(DTYPE_BYTES)}",))
    if batch < 1 or (depth is not None and depth < 1):
        raise BuildError(f"batch and depth must be at least 1, found batch={batch}, "
                         f"depth={depth}")
    params = _merged(params, kwargs)
    if isinstance(spec, Graph):
        if params or base is not None:
            raise BuildError("a compiled graph takes no network parameters or base",
                             notes=("pass the spec instead, or compile it with them",))
        graph = spec
    else:
        graph = compile(_explicit(spec), params, base=base)
    figures = summarize(graph, batch, dtype, depth)
    if memory_budget is None:
        return figures
    from .passes.memory import plan

    return replace(figures, memory_plan=plan(graph, memory_budget, batch))


# Networks above this many parameters (8 GB of float32 weights) are refused before any
# allocation; ``max_params=`` (``netdsl build --max-params``) moves the limit.
MAX_PARAMS = 2_000_000_000
# Networks whose inference pass holds more values than this at once, for the declared input
# (8 GiB of float32 at batch 1), are refused too; ``max_activations=`` (``--max-activations``).
MAX_ACTIVATIONS = 2 * 2**30


def build(spec: str | os.PathLike | Graph, params: Mapping[str, object] | None = None, *,
          optimize: bool | str = False,
          max_params: int | None = MAX_PARAMS, max_activations: int | None = MAX_ACTIVATIONS,
          weights: object = None, progress: bool = True, calibration: object = None,
          backend: str = "auto", memory_budget: int | str | None = None, batch: int = 1,
          **kwargs: object) -> torch.nn.Module:
    """Compiles a spec and emits a ``torch.nn.Module`` (in training mode, like torchvision's
    constructors), its weights initialised as the network's ``init`` scheme says.

    ``weights="IMAGENET1K_V2"`` (or ``"DEFAULT"``) loads the reference implementation's
    pretrained weights instead, through torch.hub's cache, and sets ``module.netdsl_weights``
    (see netdsl.torch.pretrained). ``optimize=True`` returns a module for fast fp32 inference
    instead, ``optimize="bf16"`` and ``optimize="int8"`` (calibrated on ``calibration``, a batch
    or an iterable of batches) lower-precision ones; ``backend`` picks what runs it (see
    netdsl.torch.optimize). ``max_params`` and ``max_activations`` bound the weights and
    the values one inference pass holds at once at batch 1 (None: no bound); both are checked
    on the IR, before torch allocates anything.

    ``memory_budget`` (bytes, or ``"2GB"``, ``"512MiB"``) makes a training step at ``batch``
    fit: the module recomputes some blocks in backward (activation checkpointing) instead of
    keeping their activations, as ``module.netdsl_memory_plan`` reports (the blocks, the
    predicted peak; see netdsl.passes.memory for what the budget covers). A budget no plan
    fits is a BuildError (E010), raised before torch allocates anything. ``spec`` may be a
    graph :func:`compile` returned (then without network parameters).
    """
    params = _merged(params, kwargs)
    if isinstance(spec, Graph) and params:
        raise BuildError("a compiled graph takes no network parameters",
                         notes=("pass the spec instead, or compile it with them",))
    graph = spec if isinstance(spec, Graph) else compile(_explicit(spec), params)
    check_budget(graph, max_params, max_activations)
    memory_plan = None
    if memory_budget is not None:
        if optimize:
            raise BuildError("memory_budget plans training; optimize= returns an inference "
                             "module", notes=("pass one or the other",))
        from .passes.memory import plan

        memory_plan = plan(graph, memory_budget, batch)
    from .torch import emit  # torch is imported here, and only here

    module = emit.build_module(graph)
    if weights is not None:
        from .torch.pretrained import load_pretrained

        load_pretrained(module, graph, weights, progress=progress)
    if memory_plan is not None:
        from .torch.memory import plan_module

        module = plan_module(module, memory_plan)
    if optimize:
        module = optimize_inference(module, mode=optimize, backend=backend,
                                    calibration=calibration)
    return module


def optimize_inference(module: torch.nn.Module, *, mode: bool | str = True,
                       backend: str = "auto", calibration: object = None) -> torch.nn.Module:
    """A module :func:`build` returned, made fast for inference (batch norm folded,
    channels_last, compiled; not trainable), as ``build(optimize=mode)`` makes it: for when the
    plain module is wanted too (``netdsl build --optimize`` smoke-runs this one and saves
    the plain one). ``mode``, ``backend`` and ``calibration`` as :func:`build` takes them."""
    from .torch.optimize import optimize_module

    return optimize_module(module, mode=mode, backend=backend, calibration=calibration)


def check_budget(graph: Graph, max_params: int | None,
                 max_activations: int | None = MAX_ACTIVATIONS, batch: int = 1) -> None:
    """Refuses, from the IR alone, a network with more parameters than ``max_params``, or
    whose inference pass at ``batch`` holds more values at once than ``max_activations``."""
    if max_activations is not None:
        check_activations(graph, max_activations, batch)
    if max_params is None:
        return
    from .passes.analyse import node_params

    counts = node_params(graph)
    total = sum(counts)
    if total > max_params:
        biggest = max(range(len(counts)), key=counts.__getitem__)
        node = graph.nodes[biggest]
        raise SpecLimitError(
            f"{graph.name} has {total:,} parameters, more than the budget of {max_params:,}",
            node.span,
            notes=(f"the largest layer, {node.label}, has {counts[biggest]:,}",
                   "raise the budget with max_params=N (netdsl build --max-params N)"))


def check_activations(graph: Graph, max_activations: int, batch: int = 1) -> None:
    """The activation budget: the most values an inference pass at ``batch`` holds at once
    (netdsl.passes.analyse.forward_peak, the input included), before anything is allocated."""
    from .passes.analyse import activation_counts, forward_peak

    counts = activation_counts(graph)
    peak = forward_peak(graph, counts) * batch
    if peak > max_activations:
        biggest = graph.nodes[max(range(len(counts)), key=counts.__getitem__)]
        raise SpecLimitError(
            f"{graph.name} holds {peak:,} values at once in a forward pass at batch {batch}, "
            f"more than the budget of {max_activations:,}", biggest.span,
            notes=(f"{4 * peak:,} bytes of float32; the largest tensor, {biggest.label} "
                   f"({'x'.join(map(str, biggest.shape))}), has "
                   f"{counts[biggest.id] * batch:,} values",
                   "raise the budget with max_activations=N (netdsl build --max-activations N)"))


def _explicit(spec):
    """``spec``, with a plain string that would be read as spec text by guessing made a
    :class:`SpecText`, and a DeprecationWarning at the caller of the public function."""
    if not _lower.is_guessed_text(spec):
        return spec
    warnings.warn("spec text in a plain str is deprecated: pass netdsl.SpecText(text) (a plain "
                  "str will name a file or a bundled network only)", DeprecationWarning,
                  stacklevel=3)
    return SpecText(spec)


def _merged(params: Mapping[str, object] | None, kwargs: dict[str, object]) -> dict[str, object]:
    """The network parameters given as a mapping and as keywords; one named in both is an
    error (which should win is anybody's guess)."""
    if params is None:
        return kwargs
    if not isinstance(params, Mapping):  # build(spec, params=3): a network parameter so named
        raise BuildError(f"params= takes the network parameters as a mapping, found "
                         f"{type(params).__name__}", notes=("a network parameter named 'params' "
                                                            "goes in it: params={'params': 3}",))
    twice = sorted(set(params) & set(kwargs))
    if twice:
        raise BuildError(f"network parameter '{twice[0]}' is given twice, in the mapping and "
                         "as a keyword")
    return {**params, **kwargs}


def _values(params: Mapping[str, object]) -> dict[str, object]:
    """Python values to netdsl values: lists (also OmegaConf's, from a Hydra config) become
    tuples; a string names a block or is a netdsl literal (``"basic"``, ``"7x7"``)."""
    from . import limits
    from .lower import OverrideText

    def convert(value: object, depth: int = 0) -> object:
        if "omegaconf" in sys.modules:
            from omegaconf import Container, OmegaConf

            if isinstance(value, Container):
                value = OmegaConf.to_container(value, resolve=True)
        if isinstance(value, list | tuple):
            if depth >= limits.MAX_OVERRIDE_NESTING:  # also a list that holds itself
                raise SpecLimitError(f"override value nests more than "
                                     f"{limits.MAX_OVERRIDE_NESTING} lists deep")
            return tuple(convert(v, depth + 1) for v in value)
        if isinstance(value, str):
            return OverrideText(value)
        return value
    return {k: convert(v) for k, v in params.items()}
