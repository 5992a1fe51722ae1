"""From PyTorch back to netdsl: which op a torch module or function call is, and its
attributes. Which op emits a torch class, the op records say (``TorchModule.cls``), so this
module names no op: a plugin op whose record names its module class is importable as it is.

What only the importer knows is torch-side and kept here, keyed by torch class: where a torch
layer keeps each setting (``out_channels`` for a conv's ``out``) and which settings have no
netdsl form (:class:`Unsupported`, with the reason). A class of torch's own imports only with
such a reader; any other class is read by the plugin convention (docs/plugins.md): the
module's attributes named as the op's parameters. Functions (``F.max_pool2d``, ``x.relu()``)
are read as the module class they are the functional form of.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from ..ir.ops import REQUIRED, Size, load_plugins_of, registered_records
from ..ir.record import OpRecord, TorchModule


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


def _adaptive_avg(size) -> Attrs:
    """An average pool to 1x1 is netdsl's global pool, which takes no size."""
    size = _adaptive_size(size)
    return {} if size == (1, 1) else {"size": size}


def _adaptive_max(size) -> Attrs:
    return {"size": _adaptive_size(size)}


def _adaptive_size(size) -> Size:
    size = _pair(size)
    if None in size:
        raise Unsupported("an adaptive pool that keeps one dimension (None)")
    return size


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


# torch's own classes that import, and how each is read; exact classes: a subclass may change
# forward. The op is the record's whose TorchModule emits the class.
READERS: dict[type, Callable[[nn.Module], Attrs]] = {
    nn.Conv2d: _conv,
    nn.BatchNorm2d: _bn,
    nn.ReLU: _plain, nn.ReLU6: _plain, nn.SiLU: _plain, nn.Sigmoid: _plain, nn.Tanh: _plain,
    nn.LeakyReLU: lambda m: {"slope": m.negative_slope},
    nn.GELU: lambda m: _gelu(m.approximate),
    nn.LocalResponseNorm: lambda m: {"size": m.size, "alpha": m.alpha, "beta": m.beta,
                                     "k": m.k},
    nn.MaxPool2d: _maxpool,
    nn.AvgPool2d: _avgpool,
    nn.AdaptiveAvgPool2d: lambda m: _adaptive_avg(m.output_size),
    nn.AdaptiveMaxPool2d: lambda m: _adaptive_max(m.output_size),
    nn.Dropout: lambda m: {"p": m.p},
    nn.Flatten: lambda m: _flatten(m.start_dim, m.end_dim),
    nn.Linear: lambda m: {"out": m.out_features, "bias": m.bias is not None},
}
PASSES_THROUGH = (nn.Identity,)  # no op: the value goes on


# torch function -> (the module class it is the functional form of, read(*args, **kwargs) of
# the call, input tensor excluded). A Tensor method (``x.relu()``) is its torch.Tensor
# attribute. Joins (concat, add) and scale are the tracer's.
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


def _f_flatten(start_dim=0, end_dim=-1):
    return _flatten(start_dim, end_dim)


FUNCTIONS: dict[object, tuple[type, Callable[..., Attrs]]] = {
    F.relu: (nn.ReLU, _none), torch.relu: (nn.ReLU, _none), torch.Tensor.relu: (nn.ReLU, _none),
    F.relu6: (nn.ReLU6, _none), F.silu: (nn.SiLU, _none),
    torch.sigmoid: (nn.Sigmoid, _none), torch.Tensor.sigmoid: (nn.Sigmoid, _none),
    torch.tanh: (nn.Tanh, _none),
    F.gelu: (nn.GELU, lambda approximate="none": _gelu(approximate)),
    F.max_pool2d: (nn.MaxPool2d, _f_maxpool),
    F.avg_pool2d: (nn.AvgPool2d, _f_avgpool),
    F.adaptive_avg_pool2d: (nn.AdaptiveAvgPool2d, _adaptive_avg),
    F.adaptive_max_pool2d: (nn.AdaptiveMaxPool2d, _adaptive_max),
    F.dropout: (nn.Dropout, lambda p=0.5, training=True, inplace=False: {"p": p}),
    torch.flatten: (nn.Flatten, _f_flatten), torch.Tensor.flatten: (nn.Flatten, _f_flatten),
}


def _bn_act(m) -> list[tuple[str, Attrs]]:
    """timm's BatchNormAct2d: batch norm, then its activation (``drop`` must be identity)."""
    if type(m.drop) is not nn.Identity:
        raise Unsupported(f"BatchNormAct2d with drop={type(m.drop).__name__}")
    act = type(m.act)
    if act not in READERS and act not in PASSES_THROUGH:
        raise Unsupported(f"BatchNormAct2d with act={act.__name__}")
    layers = [as_op(nn.BatchNorm2d, _bn(m))]
    return layers if act in PASSES_THROUGH else [*layers, as_op(act, READERS[act](m.act))]


def knows(cls: type) -> bool:
    """Whether modules of ``cls`` import (as an op, or as nothing: nn.Identity)."""
    return cls in PASSES_THROUGH or _reader(cls) is not None


def read_module(m: nn.Module) -> tuple[str, Attrs] | list[tuple[str, Attrs]] | None:
    """The op and attributes ``m`` imports as (several, for a layer netdsl writes as two);
    None where its value passes through (nn.Identity). Raises Unsupported."""
    cls = type(m)
    if cls in PASSES_THROUGH:
        return None
    read = _reader(cls)
    if read is None:
        raise Unsupported(f"{cls.__module__}.{cls.__qualname__} has no netdsl op "
                          "(register one with a plugin)")
    return _bn_act(m) if read is _bn_act else as_op(cls, read(m))


def read_function(target, args: tuple, kwargs: dict) -> tuple[str, Attrs]:
    """The op and attributes of a call of ``target``, a key of FUNCTIONS (see
    :func:`method`), its input tensor excluded. Raises Unsupported."""
    cls, read = FUNCTIONS[target]
    return as_op(cls, read(*args, **kwargs))


def as_op(cls: type, attrs: Attrs) -> tuple[str, Attrs]:
    """The op a module of ``cls`` with these attributes is: the first registered record that
    emits the class and takes exactly these attributes (a 1x1 average pool reads as no size,
    which only the global pool takes)."""
    for record in _emitting(cls):
        names = {p.name for p in record.params}
        required = {p.name for p in record.params if p.default is REQUIRED}
        if required <= attrs.keys() <= names:
            return record.name, attrs
    raise Unsupported(f"{cls.__qualname__} with {sorted(attrs)} matches no op's parameters")


def _reader(cls: type):
    if cls in READERS:
        return READERS[cls]
    if "timm" in sys.modules and cls.__module__.startswith("timm.") \
            and cls.__name__ == "BatchNormAct2d":  # importing timm only to ask costs seconds
        return _bn_act
    if cls.__module__.split(".")[0] == "torch":
        return None  # torch's classes keep their settings under names of their own
    load_plugins_of(cls.__module__)
    if _emitting(cls):
        return lambda m, cls=cls: _by_convention(m, _emitting(cls)[0])
    return None


def _by_convention(m: nn.Module, record: OpRecord) -> Attrs:
    """A plugin's module: the attributes named as its op's parameters (docs/plugins.md)."""
    return {p.name: getattr(m, p.name) for p in record.params if hasattr(m, p.name)}


def _emitting(cls: type) -> list[OpRecord]:
    """The registered records whose TorchModule emits ``cls``, in registration order."""
    return [r for r in registered_records()
            if isinstance(r.torch, TorchModule) and _resolve(r.torch.cls) is cls]


@cache
def _class_path(path: str) -> tuple[str, str]:
    module, _, name = path.rpartition(".")
    return module, name


def _resolve(path: str) -> object:
    """The object a record's dotted class path names, if its module is imported already
    (the importer imports nothing a record names: a traced model's classes are loaded)."""
    module, name = _class_path(path)
    return getattr(sys.modules.get(module), name, None)


CONCAT = (torch.cat, torch.concat)
ADD = (operator.add, operator.iadd, torch.add, torch.Tensor.add, torch.Tensor.add_)
MUL = (operator.mul, operator.imul, torch.mul, torch.Tensor.mul, torch.Tensor.mul_)


def method(target):
    """A call's target as the tables key it: a Tensor method by its torch.Tensor attribute."""
    return getattr(torch.Tensor, target, target) if isinstance(target, str) else target
