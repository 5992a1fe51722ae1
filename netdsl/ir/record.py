"""The vocabulary an op record is written in: :class:`OpRecord` and how an op becomes torch
(:class:`TorchModule`, :class:`TorchParameter`, :class:`TorchExpression`) and sees its input
(:class:`Window`). The registry that holds the records is :mod:`netdsl.ir.ops`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod

from .params import (  # noqa: F401 - for records
    REQUIRED,
    Attrs,
    Param,
    Shape,
    ShapeProblem,
    fmt_shape,
    spec_literal,
)

Pair = tuple[int, int]
Strides = tuple[int, ...]  # a tensor's strides in values, the batch's first (one image)
# How an op that computes lays its output out, as torch does on the CPU (OpRecord.layout):
# row-major; as its first full-size input (an elementwise op's TensorIterator keeps a dense
# input's strides); channels-last where its inputs look channels-last by torch's rule
# (suggest_memory_format: convolutions, batch norm, pools, interpolation); channels-last
# always (LayerNorm2d normalises channels-last and permutes back)
LAYOUTS = frozenset({"contiguous", "elementwise", "memory_format", "channels_last"})
PARAM_KINDS = frozenset({"count", "int", "float", "prob", "optfloat", "bool", "size", "optsize",
                         "pad", "perm", "choice"})
INIT_ROLES = frozenset({"conv", "linear", "norm"})  # what init schemes key their rules by


@dataclass(frozen=True)
class Window:
    """The input window one output value is computed from, per axis (height, width): the
    receptive-field rule ``r = r_in + (extent - 1) * j_in``, ``j = j_in * stride``."""

    kernel: Pair
    stride: Pair
    dilation: Pair = (1, 1)
    # padding before the first input value: output position q reads input positions
    # q * stride - pad + i * dilation (those inside the input), as torch's convolutions do
    pad: Pair = (0, 0)

    @property
    def extent(self) -> Pair:
        return (self.dilation[0] * (self.kernel[0] - 1) + 1,
                self.dilation[1] * (self.kernel[1] - 1) + 1)


POINTWISE = Window((1, 1), (1, 1))
GLOBAL = "global"  # the op sees its whole input grid (global pooling, a fully connected layer)


@dataclass(frozen=True)
class TorchModule:
    """Emitted as a submodule: ``cls(*args, **kwargs)`` with ``args`` computed from the
    attributes, the input shapes and whether it runs in place. ``cls`` is an importable dotted
    path (``torch.nn.Conv2d``, ``my_plugin.layers.Scale``); every argument is a plain value
    (number, bool, string, tuple, None) that the emitter writes with ``repr``."""

    cls: str
    args: Callable[[Attrs, list[Shape], bool], tuple[tuple, dict]]

    @property
    def module_path(self) -> str:
        return self.cls.rsplit(".", 1)[0]


@dataclass(frozen=True)
class TorchParameter:
    """Emitted as a learnable tensor registered on the enclosing module under the node's name
    (torchvision ConvNeXt's ``layer_scale``: a key ``features.1.0.layer_scale``, no module),
    created with ``shape(attrs, ins)``, filled with ``fill(attrs)`` when the module is
    initialised, and applied in ``forward`` as ``expr(input_name, parameter_reference)``."""

    shape: Callable[[Attrs, list[Shape]], tuple[int, ...]]
    fill: Callable[[Attrs], float]
    expr: Callable[[str, str], str]


@dataclass(frozen=True)
class TorchExpression:
    """Emitted inline in ``forward``: ``expr(attrs, input_names)`` is a Python expression over
    the input variables (``torch.cat([a, b], 1)``); attribute values in it go through repr."""

    expr: Callable[[Attrs, list[str]], str]
    # for an op whose record says `inplace`: the statement that updates its first input,
    # ``x += y`` for a sum (torchvision's ``out += identity``)
    inplace_statement: Callable[[list[str]], str] | None = None


def contiguous_strides(shape: Shape) -> Strides:
    """The strides of one image of ``shape`` laid out row-major (the batch's first)."""
    strides, step = [], 1
    for size in reversed((1, *shape)):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def viewed_strides(shape: tuple[int, ...], strides: Strides,
                   new: tuple[int, ...]) -> Strides | None:
    """The strides of ``view(new)`` of a tensor (batch axes included), or None where torch
    must copy: ATen's ``computeStride``, which merges and splits runs of axes that step
    over each other exactly, 1-sized axes taking the stride of what follows them."""
    out = [0] * len(new)
    view_d = len(new) - 1
    base = strides[-1] if strides else 1
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new[view_d] == 1):
                out[view_d] = view_numel * base
                view_numel *= new[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base = strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(out) if view_d == -1 else None


def folded_partials(ins: list[Shape]) -> int:
    """The values beyond the output alive at once while ``a * b * c`` runs: Python folds it
    left to right, each partial product a new tensor, and two are alive while the next is
    made (the last of them being the output). Sizes broadcast over 1-sized axes."""
    if len(ins) < 3:
        return 0
    sizes, shape = [], ins[0]
    for other in ins[1:]:
        shape = tuple(max(a, b) for a, b in zip(shape, other, strict=True))
        sizes.append(prod(shape))
    return max(a + b for a, b in zip(sizes, sizes[1:], strict=False)) - sizes[-1]


@dataclass(frozen=True, kw_only=True)
class OpRecord:
    """Everything about one op. Shapes exclude the batch; ``ins`` are the input shapes."""

    name: str
    doc: str  # one sentence for docs, hover and completion
    params: tuple[Param, ...]
    arity: int  # inputs: 0 for the network input, -1 for any number (concat, add)
    infer: Callable[[Attrs, list[Shape]], Shape]  # output shape; raises ShapeProblem
    count_params: Callable[[Attrs, list[Shape]], int]
    macs: Callable[[Attrs, list[Shape], Shape], int]  # multiply-accumulates per image
    window: Callable[[Attrs, list[Shape], Shape], Window | str]  # a Window, or GLOBAL
    view: bool | Callable[[Attrs, list[Shape], Shape], bool]  # writes no new values
    inplace: bool  # may overwrite its first input when nothing else reads it (ReLU, a sum)
    backward_needs_output: bool  # autograd keeps its output (a sigmoid's), so no in-place after
    weight_layer: bool  # counts towards a network's depth (conv, fc), as the papers count
    ends_features: bool  # a classifier head starts here (global pool, flatten)
    init_role: str | None  # which rule of an init scheme initialises it (see ir.init)
    torch: TorchModule | TorchParameter | TorchExpression | None  # None: the network input
    display: Callable[[Attrs, Shape], str]  # as a slide writes it: ``conv 3x3/2, 128``
    style: str  # how pictures draw it: weight, norm, activation, pool, merge, shape, io
    trailing: bool  # pictures write it after the layer it follows: ``conv 3x3, 64 · bn · relu``
    # What a training step keeps for backward (netdsl.passes.memory). The only optional
    # fields: their defaults describe a plain layer, so a record that says nothing is planned
    # as one (never smaller than it is, since a passed-through gradient is then counted).
    backward_extra_bytes: int = 0
    """Bytes per output value that autograd keeps besides the tensors themselves: a max
    pool's int64 position of each maximum (8)."""
    training_mask_bytes: int = 0
    """Bytes per output value of a random mask drawn in training (dropout's bool: 1). Its
    output is then new memory in training, even where ``view`` says it is free at inference."""
    view_strides: Callable[[Attrs, Shape, Strides], Strides | None] | None = None
    """For a view: its output's strides given its input's shape and strides, or None where
    torch copies instead (flatten of a map a crop or permute left strided). Left out: the
    input's strides, which a slice, a channel chunk or the identity keeps."""
    layout: str = "contiguous"
    """For an op that computes: how torch lays its output out, one of :data:`LAYOUTS`."""
    temporaries: Callable[[list[Shape]], int] | None = None
    """Values its emitted expression allocates and frees beyond its output, given the input
    shapes: the partial results of ``a + b + c`` (see :func:`folded_partials`)."""
    gradient_passes_through: bool = False
    """Backward hands the output's gradient to the inputs as it is (a sum) or as views of it
    (a concatenation), so the inputs' gradients take no new memory: a merge."""

    @property
    def is_module(self) -> bool:
        return isinstance(self.torch, TorchModule)

    @property
    def is_named(self) -> bool:
        """Whether its nodes need a name: a module, or a parameter of the enclosing module."""
        return isinstance(self.torch, TorchModule | TorchParameter)

    @property
    def description(self) -> str:
        return f"the layer '{self.name}'"

    def writes_nothing(self, attrs: Attrs, ins: list[Shape], out: Shape) -> bool:
        return self.view(attrs, ins, out) if callable(self.view) else self.view

    @property
    def stride_defaults_to_kernel(self) -> bool:
        """A pool's rule: a ``stride`` left out (none) is the kernel, so windows tile. The
        binder fills it in; the IR text and ``netdsl import`` leave such a stride out."""
        return any(p.name == "stride" and p.default is None for p in self.params)

    def stride_is_implied(self, attrs: Attrs) -> bool:
        """Whether ``attrs``' stride is what leaving it out gives (a pool's kernel)."""
        return self.stride_defaults_to_kernel and attrs.get("stride") == attrs.get("kernel")

    def signature(self) -> str:
        return ", ".join(p.name if p.default is REQUIRED else f"{p.name}={spec_literal(p.default)}"
                         for p in self.params)


STYLES = frozenset({"weight", "norm", "activation", "pool", "merge", "shape", "io"})

