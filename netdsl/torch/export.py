"""Saving and loading what netdsl builds: weights, standalone source, exported programs.

Every file is written atomically (a temporary file in the target folder, then a rename), so
a failed or interrupted save never leaves a half-written file. Weights are only read from
safetensors or with ``torch.load(weights_only=True)``: loading weights never runs code.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .. import limits
from ..errors import BuildError
from ..files import atomic_write, check_writable
from ..ir.graph import Graph
from ..ir.identifiers import foreign_problem
from . import pyexport

FORMATS = {
    ".pt": "the state_dict (torch.save)",
    ".safetensors": "the weights (safetensors)",
    ".py": "standalone PyTorch source defining class Model (depends on torch alone)",
    ".pt2": "a torch.export ExportedProgram (torch.export.load reloads it)",
    ".onnx": "ONNX, checked with onnx.checker (needs onnx and onnxscript)",
}


def check_output(path: Path) -> None:
    """Fails early, before anything is built, for a format or folder that cannot work."""
    if path.suffix.lower() not in FORMATS:
        raise BuildError(f"cannot write '{path}': unknown format '{path.suffix or path.name}'",
                         notes=(f"known formats: {', '.join(FORMATS)}",))
    if path.suffix.lower() == ".safetensors":
        _safetensors()
    check_writable(path)


def _safetensors():
    """The safetensors package (its torch half), or a BuildError saying how to install it."""
    try:
        import safetensors.torch
    except ImportError:
        raise BuildError("reading or writing .safetensors needs the safetensors package "
                         "(pip install safetensors)") from None
    return safetensors.torch


# What may vary in an exported program's input: "batch" (the default: N of NxCxHxW), "hw"
# (N, H and W, where the network allows: not when an fc reads a flattened map), "none".
DYNAMIC = ("batch", "hw", "none")


def save(model: nn.Module, graph: Graph, path: Path, example: torch.Tensor,
         dynamic: str = "batch") -> None:
    """Writes ``model`` in the format the suffix of ``path`` names (see :data:`FORMATS`);
    ``.pt2`` and ``.onnx`` programs take any batch size unless ``dynamic="none"``."""
    check_output(path)
    if path.suffix.lower() in (".pt2", ".onnx"):
        _check_traceable_names(graph, path.suffix.lower())
    writers: dict[str, Callable[[str], None]] = {
        ".pt": lambda p: torch.save(model.state_dict(), p),
        ".safetensors": lambda p: _save_safetensors(model, p),
        ".py": lambda p: Path(p).write_text(pyexport.idiomatic_source(graph), encoding="utf-8"),
        ".pt2": lambda p: torch.export.save(export_program(model, example, dynamic), p),
        ".onnx": lambda p: _save_onnx(export_program(model, example, dynamic), p),
    }
    atomic_write(path, writers[path.suffix.lower()])


def _check_traceable_names(graph: Graph, suffix: str) -> None:
    """Refuses, before tracing, a module name that torch.fx's code (a ``.pt2``'s
    ``.module()``, the ONNX exporter) would write as ``self.<name>`` and Python read as another
    name or not at all: a label ``"None"`` gave a ``.pt2`` whose ``.module()`` raised
    SyntaxError. netdsl's own code reaches such a module through ``getattr``."""
    for node in graph.named():
        problem = next(filter(None, map(foreign_problem, node.name.split("."))), None)
        if problem is not None:
            raise BuildError(f"cannot write '{node.name}' to {suffix}: {problem}", node.span,
                             notes=("torch.export and ONNX write module names as Python "
                                    "attributes; choose another label (the .pt, .safetensors "
                                    "and .py outputs keep this one)",))


def _check_resizable(model: nn.Module, example: torch.Tensor) -> None:
    """Refuses ``dynamic="hw"`` for a network that takes only its own input size (an fc
    reading a flattened map): tried on a bigger input, since torch.export would turn the
    mismatch into a failure at run time rather than refuse to export."""
    h, w = example.shape[2:]
    try:
        with torch.no_grad():
            model(example[:1].new_zeros(1, example.shape[1], h + 32, w + 32))
    except RuntimeError:
        raise BuildError("this network takes only its own input size, so --dynamic hw cannot "
                         "apply (a layer such as an fc after flatten reads the whole map)",
                         notes=("use --dynamic batch (the default)",)) from None


def export_program(model: nn.Module, example: torch.Tensor, dynamic: str = "batch"):
    """``torch.export`` of ``model`` in inference mode, its input's batch (and with
    ``dynamic="hw"`` height and width) symbolic. Traced at batch 2 at least: torch.export
    specialises a dimension of size 1 to the constant 1."""
    from torch.export import Dim

    if dynamic not in DYNAMIC:
        raise BuildError(f"unknown --dynamic '{dynamic}'", notes=(f"one of {', '.join(DYNAMIC)}",))
    model = model.eval()
    if dynamic == "none":
        return torch.export.export(model, (example,))
    if example.shape[0] < 2:
        example = example.expand(2, *example.shape[1:]).contiguous()
    dims: dict[int, object] = {0: Dim("batch")}
    if dynamic == "hw":  # AUTO: symbolic where the network allows
        _check_resizable(model, example)
        dims.update({2: Dim.AUTO, 3: Dim.AUTO})
    try:
        program = torch.export.export(model, (example,), dynamic_shapes=(dims,))
    except Exception as error:  # a guard that pins the batch size
        raise BuildError(f"cannot export with a dynamic {dynamic}: "
                         f"{str(error).strip().splitlines()[0]}") from None
    return program


def _save_safetensors(model: nn.Module, path: str) -> None:
    _safetensors().save_model(model, path)


def _save_onnx(program, path: str) -> None:
    """ONNX from the exported program, so its dynamic dimensions carry over."""
    try:
        import onnx
    except ImportError:
        raise BuildError("writing .onnx needs the onnx and onnxscript packages "
                         "(pip install 'netdsl[test]')") from None
    torch.onnx.export(program, dynamo=True, verbose=False).save(path)
    onnx.checker.check_model(onnx.load(path))


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> nn.Module:
    """Loads weights saved as .safetensors or .pt (``weights_only``: no code runs).

    A missing, truncated or hostile file, or weights that do not fit the model, raise a
    :class:`~netdsl.errors.BuildError` that says which. A .pt archive is measured before it
    is read: one that would unpack to far more than the model's weights is refused without
    being inflated (a zip entry may be compressed 1,000 to 1).
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".safetensors":
            load_file = _safetensors().load_file
            _check_file(path, _weight_bytes(model))
            _check_header(path, len(model.state_dict()))
            state = load_file(str(path))  # never compressed: memory is bounded by the file
        else:
            _check_file(path, _weight_bytes(model))
            _check_unpacked_size(path, _weight_bytes(model))
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BuildError(f"no weights file '{path}'") from None
    except BuildError:
        raise
    except Exception as error:  # truncated, not a weights file, or pickled code
        raise BuildError(f"cannot read weights from '{path}': {str(error).splitlines()[0]}"
                         ) from None
    return transfer(model, state, strict=strict, source=str(path))


# Room beyond the model's own weights: the pickled index of a state_dict, its metadata, and
# weights saved in double precision for a float32 model (load_state_dict converts them).
_SLACK_FACTOR, _SLACK_BYTES = 2, 16 * 2**20


def _weight_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _check_file(path: Path, weights: int) -> None:
    """Refuses, from its metadata alone, what is not a regular file (opening a FIFO waits
    for a writer for ever; /dev/zero never ends) or is larger than the network's weights
    could be (with the same room as an archive's entries get)."""
    info = path.stat()  # FileNotFoundError: reported by the caller
    if not stat.S_ISREG(info.st_mode):
        raise BuildError(f"cannot read weights from '{path}': not a regular file")
    limit = _SLACK_FACTOR * weights + _SLACK_BYTES
    if info.st_size > limit:
        raise BuildError(f"'{path}' is {info.st_size:,} bytes, far more than the network's "
                         f"{weights:,} bytes of weights", notes=(
                             f"it was not read: a weights file for this network is at most "
                             f"{limit:,} bytes",))


def _check_unpacked_size(path: Path, weights: int) -> None:
    """Refuses a zip archive (torch.save's format) whose entries, by its own directory,
    unpack to more than the model could need; torch reads entries at the sizes listed
    there, so nothing larger is ever allocated. A legacy (non-zip) file is not compressed:
    its size bounds what loading it takes."""
    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(entry.file_size for entry in archive.infolist())
    limit = _SLACK_FACTOR * weights + _SLACK_BYTES
    if unpacked > limit:
        raise BuildError(f"'{path}' would unpack to {unpacked:,} bytes, far more than the "
                         f"network's {weights:,} bytes of weights",
                         notes=("it was not read: a weights file for this network is at most "
                                f"{limit:,} bytes unpacked",))


def _check_header(path: Path, tensors: int) -> None:
    """Refuses a .safetensors file whose JSON header is larger, or lists more tensors, than
    a model of ``tensors`` tensors could need, before safetensors parses it (a header of
    300,000 empty tensors took 6 s and 414 MB to refuse). Each tensor is one JSON object,
    and nothing else in a valid header is, so counting braces bounds the entries."""
    entries = limits.WEIGHTS_ENTRIES_PER_TENSOR * tensors + limits.WEIGHTS_SPARE_ENTRIES
    most = entries * limits.WEIGHTS_HEADER_BYTES_PER_ENTRY
    with open(path, "rb") as file:
        declared = int.from_bytes(file.read(8), "little")  # the header's length comes first
        if declared > most:
            raise BuildError(f"'{path}' declares a header of {declared:,} bytes, far more than "
                             f"{tensors:,} tensors need", notes=(f"it was not read: at most "
                                                                f"{most:,} bytes are",))
        found = file.read(declared).count(b"{") - 1  # the header is one object of objects
    if found > entries:
        raise BuildError(f"'{path}' lists {found:,} tensors, far more than the network's "
                         f"{tensors:,}", notes=(f"it was not read: at most {entries:,} are",))


def transfer(model: nn.Module, state: dict, strict: bool = True,
             source: str = "the state_dict") -> nn.Module:
    """Copies a reference ``state_dict`` (torchvision, timm) into a netdsl module, with a
    clear error naming the keys that do not match (or hold no tensor, or a tensor of
    another kind: complex or integer numbers where the network has real ones; or no plain
    values: on the meta device, sparse, nested, quantised).

    Nothing is copied until every value has been checked and converted to the network's
    device and dtype: ``load_state_dict`` copies tensor by tensor, so a value it refused
    halfway would leave the module loaded partly."""
    if not isinstance(state, dict):
        raise BuildError(f"{source} holds no state_dict")
    _check_values(state, source)
    ours = model.state_dict()
    problems = _problems(ours, state, strict)
    if problems:
        raise BuildError(f"{source} does not fit the network", notes=problems)
    model.load_state_dict(_converted(ours, state, source), strict=strict)
    return model


def _problems(ours: dict, state: dict, strict: bool) -> tuple[str, ...]:
    """What keeps ``state`` from fitting ``ours``, one note per kind of problem. A value
    without plain values is reported for that alone: its shape or dtype may not mean much."""
    shared = [k for k in ours if k in state]
    meta = [k for k in shared if state[k].is_meta]
    layouts = [f"{k} ({_layout(state[k])})" for k in shared
               if k not in meta and _layout(state[k]) != "dense"]
    quantised = [f"{k} ({state[k].dtype})" for k in shared if k not in meta and state[k].is_quantized]
    plain = [k for k in shared if not state[k].is_meta and _layout(state[k]) == "dense"
             and not state[k].is_quantized]
    found = (
        ("missing", [k for k in ours if k not in state] if strict else []),
        ("unexpected", [str(k) for k in state if k not in ours] if strict else []),
        ("on the meta device (no values)", meta),
        ("not a dense tensor", layouts),
        ("quantised", quantised),
        ("wrong shape", [k for k in plain if tuple(state[k].shape) != tuple(ours[k].shape)]),
        ("wrong kind of number", [f"{k} ({state[k].dtype}, the network has {ours[k].dtype})"
                                  for k in plain if _kind(state[k]) != _kind(ours[k])]),
    )
    return tuple(f"{what}: {_head(keys)}" for what, keys in found if keys)


def _layout(tensor: torch.Tensor) -> str:
    if tensor.is_nested:
        return "nested"
    return "dense" if tensor.layout == torch.strided else str(tensor.layout).removeprefix("torch.")


def _converted(ours: dict, state: dict, source: str) -> dict:
    """``state`` with each value the network has on its device and in its dtype (the same
    tensor where it already is), so that ``load_state_dict`` only copies like to like.
    The torch metadata (module versions) that ``load_state_dict`` reads is kept."""
    ready = OrderedDict(state)
    ready._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]
    for key, value in state.items():
        if key not in ours:
            continue
        try:
            ready[key] = value.detach().to(device=ours[key].device, dtype=ours[key].dtype)
        except Exception as error:  # noqa: BLE001 - whatever torch refuses, before any copy
            raise BuildError(f"{source} does not fit the network: cannot convert {key}: "
                             f"{str(error).strip().splitlines()[0]}") from None
    return ready


def _check_values(state: dict, source: str) -> None:
    """Every value a tensor: a checkpoint ({'model': ..., 'epoch': 3}) or a hostile file's
    lists and strings get a clear error, not an AttributeError."""
    wrong = [f"{k!s} ({type(v).__name__})" for k, v in state.items()
             if not isinstance(v, torch.Tensor)]
    if wrong:
        nested = [str(k) for k, v in state.items() if isinstance(v, dict)]
        hint = (f"it looks like a checkpoint: pass its '{nested[0]}' entry",) if nested else ()
        raise BuildError(f"{source} holds values that are not tensors: {_head(wrong)}",
                         notes=hint)


def _kind(tensor: torch.Tensor) -> str:
    if tensor.is_complex():
        return "complex"
    return "real" if tensor.is_floating_point() else "integer"


def _head(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
