"""The one table from PyTorch to netdsl: which torch module class or function becomes which
netdsl op, and how its attributes are read. Parameter names and defaults come from
``netdsl.ir.ops.OPS``; this table only says where each value lives on the torch side, so
that it can later move into the op records themselves.

Each entry maps to ``(op, read)``: ``read`` returns the op's attributes (spec values), or
raises :class:`Unsupported` with the reason when the configuration has no netdsl form.
``op`` None means the module is dropped (``nn.Identity``).
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..ir.ops import Size, load_plugins_of, registered_records
from ..ir.record import TorchModule


class Unsupported(Exception):
    """A torch layer netdsl has no op (or no such setting) for; the importer names the node."""


Attrs = dict[str, object]


def _pair(value) -> Size:
    return Size(value if isinstance(value, tuple | list) else (value, value))


def _conv(m: nn.Conv2d) -> Attrs:
    if m.padding_mode != "zeros":
        raise Unsupported(f"padding_mode={m.padding_mode!r} (netdsl pads with zeros)")
    pad = m.padding
    if isinstance(pad, str):
        if pad == "valid":
            pad = 0
        elif all(k % 2 == 1 for k in m.kernel_size) and m.dilation == (1, 1):
            pad = tuple(k // 2 for k in m.kernel_size)
        else:
            raise Unsupported(f"padding={pad!r} with kernel {m.kernel_size}")
    return {"out": m.out_channels, "kernel": _pair(m.kernel_size), "stride": _pair(m.stride),
            "pad": _pair(pad), "dilation": _pair(m.dilation), "groups": m.groups,
            "bias": m.bias is not None}


def _bn(m: nn.BatchNorm2d) -> Attrs:
    if not m.track_running_stats:
        raise Unsupported("track_running_stats=False")
    return {"eps": m.eps, "momentum": m.momentum, "affine": m.affine}


def _pool(kernel, stride, padding, dilation, ceil) -> Attrs:
    attrs = {"kernel": _pair(kernel), "stride": _pair(stride if stride else kernel),
             "pad": _pair(padding), "ceil": bool(ceil)}
    if dilation is not None:
        attrs["dilation"] = _pair(dilation)
    return attrs


def _maxpool(m: nn.MaxPool2d) -> Attrs:
    if m.return_indices:
        raise Unsupported("return_indices=True")
    return _pool(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


def _avgpool(m: nn.AvgPool2d) -> Attrs:
    if m.divisor_override is not None:
        raise Unsupported("divisor_override")
    return {**_pool(m.kernel_size, m.stride, m.padding, None, m.ceil_mode),
            "count_pad": m.count_include_pad}


def _adaptive(pool: str) -> Callable[[object], tuple[str, Attrs]]:
    """``gap`` when the output is 1x1, else the adaptive pool with its size."""
    def read(size) -> tuple[str, Attrs]:
        size = _pair(size)
        if None in size:
            raise Unsupported("an adaptive pool that keeps one dimension (None)")
        if pool == "adaptive_avgpool" and size == (1, 1):
            return "gap", {}
        return pool, {"size": size}
    return read


def _flatten(start: int, end: int) -> Attrs:
    if start != 1 or end != -1:
        raise Unsupported(f"flatten({start}, {end}) (netdsl flattens from dim 1 to the end)")
    return {}


def _plain(m) -> Attrs:
    return {}


def _gelu(approximate: str) -> Attrs:
    if approximate != "none":
        raise Unsupported(f"GELU(approximate={approximate!r})")
    return {}


# torch module class -> (netdsl op, attributes); exact classes: a subclass may change forward.
MODULES: dict[type, tuple[str | None, Callable[[nn.Module], object]]] = {
    nn.Conv2d: ("conv", _conv),
    nn.BatchNorm2d: ("bn", _bn),
    nn.ReLU: ("relu", _plain),
    nn.ReLU6: ("relu6", _plain),
    nn.LeakyReLU: ("leaky_relu", lambda m: {"slope": m.negative_slope}),
    nn.GELU: ("gelu", lambda m: _gelu(m.approximate)),
    nn.SiLU: ("silu", _plain),
    nn.Sigmoid: ("sigmoid", _plain),
    nn.Tanh: ("tanh", _plain),
    nn.LocalResponseNorm: ("lrn", lambda m: {"size": m.size, "alpha": m.alpha, "beta": m.beta,
                                             "k": m.k}),
    nn.MaxPool2d: ("maxpool", _maxpool),
    nn.AvgPool2d: ("avgpool", _avgpool),
    nn.AdaptiveAvgPool2d: ("adaptive_avgpool", lambda m: _adaptive("adaptive_avgpool")(
        m.output_size)),
    nn.AdaptiveMaxPool2d: ("adaptive_maxpool", lambda m: _adaptive("adaptive_maxpool")(
        m.output_size)),
    nn.Dropout: ("dropout", lambda m: {"p": m.p}),
    nn.Flatten: ("flatten", lambda m: _flatten(m.start_dim, m.end_dim)),
    nn.Linear: ("fc", lambda m: {"out": m.out_features, "bias": m.bias is not None}),
    nn.Identity: (None, _plain),
}


# torch function (or Tensor method name) -> (op, read(*args, **kwargs) of the call, input
# tensors excluded). Joins (concat, add) and scale are handled by the tracer.
def _f_maxpool(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    if return_indices:
        raise Unsupported("return_indices=True")
    return _pool(kernel_size, stride, padding, dilation, ceil_mode)


def _f_avgpool(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    if divisor_override is not None:
        raise Unsupported("divisor_override")
    return {**_pool(kernel_size, stride, padding, None, ceil_mode),
            "count_pad": count_include_pad}


def _none(*args, inplace=False, **kwargs):
    return {}


FUNCTIONS: dict[object, tuple[str, Callable[..., object]]] = {
    F.relu: ("relu", _none), torch.relu: ("relu", _none), "relu": ("relu", _none),
    F.relu6: ("relu6", _none), F.silu: ("silu", _none),
    torch.sigmoid: ("sigmoid", _none), "sigmoid": ("sigmoid", _none),
    torch.tanh: ("tanh", _none), F.gelu: ("gelu", lambda approximate="none": _gelu(approximate)),
    F.max_pool2d: ("maxpool", _f_maxpool),
    F.avg_pool2d: ("avgpool", _f_avgpool),
    F.adaptive_avg_pool2d: ("adaptive_avgpool", _adaptive("adaptive_avgpool")),
    F.adaptive_max_pool2d: ("adaptive_maxpool", _adaptive("adaptive_maxpool")),
    F.dropout: ("dropout", lambda p=0.5, training=True, inplace=False: {"p": p}),
    torch.flatten: ("flatten", lambda start_dim=0, end_dim=-1: _flatten(start_dim, end_dim)),
    "flatten": ("flatten", lambda start_dim=0, end_dim=-1: _flatten(start_dim, end_dim)),
}

def _bn_act(m) -> list[tuple[str, Attrs]]:
    """timm's BatchNormAct2d: batch norm, then its activation (``drop`` must be identity)."""
    if type(m.drop) is not nn.Identity:
        raise Unsupported(f"BatchNormAct2d with drop={type(m.drop).__name__}")
    layers = [("bn", _bn(m))]
    act = MODULES.get(type(m.act))
    if act is None:
        raise Unsupported(f"BatchNormAct2d with act={type(m.act).__name__}")
    if act[0] is not None:
        layers.append((act[0], act[1](m.act)))
    return layers


def lookup(cls: type):
    """The entry for a module class: torch's own, or a known timm layer when timm is loaded
    (importing timm only to ask would cost seconds)."""
    if cls in MODULES:
        return MODULES[cls]
    if "timm" in sys.modules and cls.__module__.startswith("timm.") \
            and cls.__name__ == "BatchNormAct2d":
        return ("bn", _bn_act)
    return _registered(cls)


def _registered(cls: type):
    """A plugin's op whose record emits exactly this class: its parameters are read from the
    module's attributes of the same names (the convention docs/plugins.md states)."""
    path = f"{cls.__module__}.{cls.__qualname__}"
    load_plugins_of(cls.__module__)
    for record in registered_records():
        if isinstance(record.torch, TorchModule) and record.torch.cls == path:
            def read(m, params=record.params) -> Attrs:
                return {p.name: getattr(m, p.name) for p in params if hasattr(m, p.name)}
            return record.name, read
    return None


CONCAT = (torch.cat, torch.concat)
ADD = (operator.add, operator.iadd, torch.add, "add", "add_")
MUL = (operator.mul, operator.imul, torch.mul, "mul", "mul_")
