"""The layer table: one row per op, with its parameters, shape rule, parameter and MAC counts,
and the PyTorch constructor it is emitted as (as source text: this module never imports torch).

Shapes exclude the batch: ``(C, H, W)`` for feature maps, ``(F,)`` for flat vectors. Shape
rules follow PyTorch's documented formulas (``torch.nn.Conv2d``, ``MaxPool2d`` incl. ceil
mode), and tests check each against the real layer. A MAC is one multiply-accumulate; only
convolutions and fully connected layers are counted, as ``torch.utils.flop_counter`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Shape = tuple[int, ...]
Attrs = dict[str, object]

REQUIRED = object()  # marks a parameter without default


class ShapeProblem(Exception):
    """A shape rule's complaint; the checker adds the span and turns it into a SpecShapeError."""

    def __init__(self, message: str, expected: str | None = None, found: str | None = None):
        super().__init__(message)
        self.message, self.expected, self.found = message, expected, found


class Size(tuple):
    """A size literal such as ``7x7`` or ``3x224x224``."""

    def __repr__(self) -> str:
        return "x".join(str(d) for d in self)


class Symbol(str):
    """A named constant of the language: ``same``, ``project``, ``identity``, ``none``."""


class ValueProblem(Exception):
    """A value of the wrong kind for a parameter; lowering adds the span."""


def describe(value: object) -> str:
    """A spec value as a message names it: ``the number 2.5``, ``a list of 4``, ``'same'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Size):
        return f"the size {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, Symbol):
        return f"'{value}'"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, tuple):
        return f"a list of {len(value)}"
    if isinstance(value, Op):
        return f"the layer '{value.name}'"
    return getattr(value, "description", type(value).__name__)


def _pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    given = value
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, Size) and len(value) == 2 and all(v >= minimum for v in value):
        return (value[0], value[1])
    if isinstance(value, tuple) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value):
        return (value[0], value[1])
    raise ValueProblem(f"{name} must be a number or a size like 3x3 (each at least {minimum}), "
                       f"found {describe(given)}")


def normalize(param: Param, value: object) -> object:
    """Checks a spec value against a parameter's kind and returns its canonical form."""
    kind, name = param.kind, param.name
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "count":
        if is_int and value >= 1:
            return value
        raise ValueProblem(f"{name} must be a whole number of at least 1, found {describe(value)}")
    if kind in ("float", "prob", "optfloat"):
        if kind == "optfloat" and (value is None or value == Symbol("none")):
            return None
        if not (is_int or isinstance(value, float)):
            raise ValueProblem(f"{name} must be a number, found {describe(value)}")
        if kind == "prob" and not 0 <= value <= 1:
            raise ValueProblem(f"{name} must be between 0 and 1, found {value}")
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueProblem(f"{name} must be true or false, found {describe(value)}")
    if kind == "size":
        return _pair(name, value, 1)
    if kind == "optsize":
        return None if value is None or value == Symbol("none") else _pair(name, value, 1)
    if kind == "pad":
        return "same" if value == Symbol("same") else _pair(name, value, 0)
    raise AssertionError(f"unknown parameter kind {kind}")


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class Param:
    """One parameter of an op. ``kind`` decides how a spec value is checked and normalised:
    count (int >= 1), int, float, prob (0..1), bool, size (int or AxB -> pair), pad (int, AxB
    or ``same``), optsize (like size, or none)."""

    name: str
    kind: str
    default: object = REQUIRED


@dataclass(frozen=True)
class Op:
    name: str
    params: tuple[Param, ...]
    infer: Callable[[Attrs, list[Shape]], Shape]
    doc: str
    count_params: Callable[[Attrs, Shape], int] = lambda a, s: 0
    macs: Callable[[Attrs, Shape, Shape], int] = lambda a, s, o: 0
    torch: Callable[[Attrs, Shape, bool], str] | None = None  # None: emitted as an expression
    arity: int = 1  # 0 for the input, -1 for any number of inputs (concat, add)
    inplace: bool = False  # may run in place when its input has no other reader
    aliases: tuple[str, ...] = field(default=())

    @property
    def is_module(self) -> bool:
        return self.torch is not None


# --- shape helpers ---------------------------------------------------------------------

def _spatial(op: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeProblem(f"{op} needs a CxHxW feature map, found the flat {fmt_shape(shape)}",
                           expected="CxHxW", found=fmt_shape(shape))
    return shape  # type: ignore[return-value]


def _window_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """PyTorch's ``pooling_output_shape`` (conv is the floor case): may be < 1."""
    n = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (n - 1) * s >= size + p:  # the last window must start inside the input
        n -= 1
    return n


def _window(op: str, size: tuple[int, int], a: Attrs, ceil: bool = False) -> tuple[int, int]:
    """Output size of a sliding window (conv or pool), PyTorch's formula."""
    dilation = a.get("dilation", (1, 1))  # avgpool has none
    args = [(a["kernel"][i], a["stride"][i], a["pad"][i], dilation[i]) for i in range(2)]
    out = tuple(_window_size(size[i], *args[i], ceil) for i in range(2))
    if min(out) < 1:  # the least size giving one window: numerator 0 in _window_size
        need = [max(1, d * (k - 1) + 1 - 2 * p - (s - 1 if ceil else 0)) for k, s, p, d in args]
        raise ShapeProblem(f"{op} gets {size[0]}x{size[1]}, needs at least {need[0]}x{need[1]}",
                           expected=f"at least {need[0]}x{need[1]}", found=f"{size[0]}x{size[1]}")
    return out  # type: ignore[return-value]


def _conv_infer(a: Attrs, ins: list[Shape]) -> Shape:
    c, h, w = _spatial("conv", ins[0])
    g = a["groups"]
    if c % g or a["out"] % g:
        raise ShapeProblem(f"groups={g} must divide both the input channels ({c}) and the "
                           f"output channels ({a['out']})", expected=f"multiples of {g}",
                           found=f"{c} in, {a['out']} out")
    return (a["out"], *_window("conv", (h, w), a))


def _pool_infer(name: str):
    def infer(a: Attrs, ins: list[Shape]) -> Shape:
        c, h, w = _spatial(name, ins[0])
        for axis in range(2):
            extent = a.get("dilation", (1, 1))[axis] * (a["kernel"][axis] - 1) + 1
            if 2 * a["pad"][axis] > extent:
                raise ShapeProblem(f"{name} padding {a['pad'][axis]} is more than half its "
                                   f"window {extent}", expected=f"pad <= {extent // 2}",
                                   found=f"pad={a['pad'][axis]}")
        return (c, *_window(name, (h, w), a, ceil=a["ceil"]))
    return infer


def _same(a: Attrs, ins: list[Shape]) -> Shape:
    return ins[0]


def _adaptive(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = _spatial("adaptive pool", ins[0])
    return (c, *a["size"])


def _gap(a: Attrs, ins: list[Shape]) -> Shape:
    c, _, _ = _spatial("gap", ins[0])
    return (c, 1, 1)


def _flatten(a: Attrs, ins: list[Shape]) -> Shape:
    n = 1
    for d in ins[0]:
        n *= d
    return (n,)


def _fc_infer(a: Attrs, ins: list[Shape]) -> Shape:
    if len(ins[0]) != 1:
        raise ShapeProblem(f"fc needs a flat input, found {fmt_shape(ins[0])}; put flatten "
                           "(or gap -> flatten) before it", expected="a flat vector",
                           found=fmt_shape(ins[0]))
    return (a["out"],)


def _bn_infer(a: Attrs, ins: list[Shape]) -> Shape:
    _spatial("bn", ins[0])
    return ins[0]


def _concat_infer(a: Attrs, ins: list[Shape]) -> Shape:
    for i, shape in enumerate(ins):
        _spatial(f"concat branch {i + 1}", shape)
    sizes = {s[1:] for s in ins}
    if len(sizes) > 1:
        listing = ", ".join(f"branch {i + 1} gives {fmt_shape(s)}" for i, s in enumerate(ins))
        raise ShapeProblem(f"concat branches disagree spatially: {listing}",
                           expected="the same HxW in every branch",
                           found=", ".join(f"{s[1]}x{s[2]}" for s in ins))
    return (sum(s[0] for s in ins), *ins[0][1:])


def _add_infer(a: Attrs, ins: list[Shape]) -> Shape:
    if any(s != ins[0] for s in ins):
        raise ShapeProblem("added tensors differ in shape: "
                           + " vs ".join(fmt_shape(s) for s in ins),
                           expected=fmt_shape(ins[0]),
                           found=next(fmt_shape(s) for s in ins if s != ins[0]))
    return ins[0]


# --- parameter and MAC counts ------------------------------------------------------------

def _conv_params(a: Attrs, s: Shape) -> int:
    kh, kw = a["kernel"]
    return a["out"] * (s[0] // a["groups"]) * kh * kw + (a["out"] if a["bias"] else 0)


def _conv_macs(a: Attrs, s: Shape, o: Shape) -> int:
    kh, kw = a["kernel"]
    return o[0] * o[1] * o[2] * (s[0] // a["groups"]) * kh * kw


def _project_params(a: Attrs, s: Shape) -> int:
    return a["out"] * s[0] + 2 * a["out"] if a["active"] else 0


def _project_macs(a: Attrs, s: Shape, o: Shape) -> int:
    return o[0] * o[1] * o[2] * s[0] if a["active"] else 0


# --- torch constructors (source text) ------------------------------------------------------

def _conv_torch(a: Attrs, s: Shape, inplace: bool) -> str:
    return (f"nn.Conv2d({s[0]}, {a['out']}, kernel_size={a['kernel']}, stride={a['stride']}, "
            f"padding={a['pad']}, dilation={a['dilation']}, groups={a['groups']}, "
            f"bias={a['bias']})")


def _project_torch(a: Attrs, s: Shape, inplace: bool) -> str:
    if not a["active"]:
        return "nn.Identity()"
    return (f"nn.Sequential(nn.Conv2d({s[0]}, {a['out']}, kernel_size=1, stride={a['stride']}, "
            f"bias=False), nn.BatchNorm2d({a['out']}))")


def _simple(ctor: str, inplace_arg: bool = False):
    def torch(a: Attrs, s: Shape, inplace: bool) -> str:
        return f"nn.{ctor}(inplace=True)" if inplace_arg and inplace else f"nn.{ctor}()"
    return torch


_CONV_LIKE = (Param("stride", "size", 1), Param("pad", "pad", 0), Param("dilation", "size", 1))
_INIT = (Param("std", "optfloat", None),)  # per-layer std for trunc_normal init (Inception-v3)

OPS: dict[str, Op] = {op.name: op for op in [
    Op("input", (), lambda a, ins: a["shape"], "The network input.", arity=0),
    Op("conv", (Param("out", "count"), Param("kernel", "size"), *_CONV_LIKE,
                Param("groups", "count", 1), Param("bias", "bool", True), *_INIT),
       _conv_infer, "2-D convolution; input channels are inferred. pad=same keeps HxW "
       "at stride 1 (odd kernels).", _conv_params, _conv_macs, _conv_torch),
    Op("bn", (Param("eps", "float", 1e-5), Param("momentum", "float", 0.1),
              Param("affine", "bool", True)), _bn_infer, "Batch normalisation over channels.",
       lambda a, s: 2 * s[0] if a["affine"] else 0, torch=lambda a, s, i: (
           f"nn.BatchNorm2d({s[0]}, eps={a['eps']}, momentum={a['momentum']}, "
           f"affine={a['affine']})")),
    Op("relu", (), _same, "max(x, 0).", torch=_simple("ReLU", True), inplace=True),
    Op("relu6", (), _same, "min(max(x, 0), 6).", torch=_simple("ReLU6", True), inplace=True),
    Op("leaky_relu", (Param("slope", "float", 0.01),), _same, "Leaky ReLU.",
       torch=lambda a, s, i: f"nn.LeakyReLU({a['slope']}, inplace={i})", inplace=True),
    Op("gelu", (), _same, "GELU.", torch=_simple("GELU")),
    Op("silu", (), _same, "SiLU (swish).", torch=_simple("SiLU", True), inplace=True),
    Op("sigmoid", (), _same, "Logistic sigmoid.", torch=_simple("Sigmoid")),
    Op("tanh", (), _same, "Hyperbolic tangent.", torch=_simple("Tanh")),
    Op("lrn", (Param("size", "count", 5), Param("alpha", "float", 1e-4),
               Param("beta", "float", 0.75), Param("k", "float", 2.0)), _bn_infer,
       "Local response normalisation across channels (AlexNet: n=5, k=2, alpha=1e-4, "
       "beta=0.75).", torch=lambda a, s, i: (
           f"nn.LocalResponseNorm({a['size']}, alpha={a['alpha']}, beta={a['beta']}, "
           f"k={a['k']})")),
    Op("maxpool", (Param("kernel", "size"), Param("stride", "optsize", None), Param("pad", "pad", 0),
                   Param("dilation", "size", 1), Param("ceil", "bool", False)),
       _pool_infer("maxpool"), "Max pooling; stride defaults to the kernel.",
       torch=lambda a, s, i: (
           f"nn.MaxPool2d(kernel_size={a['kernel']}, stride={a['stride']}, padding={a['pad']}, "
           f"dilation={a['dilation']}, ceil_mode={a['ceil']})")),
    Op("avgpool", (Param("kernel", "size"), Param("stride", "optsize", None), Param("pad", "pad", 0),
                   Param("ceil", "bool", False), Param("count_pad", "bool", True)),
       _pool_infer("avgpool"), "Average pooling; count_pad=false excludes padding from the mean.",
       torch=lambda a, s, i: (
           f"nn.AvgPool2d(kernel_size={a['kernel']}, stride={a['stride']}, padding={a['pad']}, "
           f"ceil_mode={a['ceil']}, count_include_pad={a['count_pad']})")),
    Op("gap", (), _gap, "Global average pooling to Cx1x1.",
       torch=lambda a, s, i: "nn.AdaptiveAvgPool2d((1, 1))"),
    Op("adaptive_avgpool", (Param("size", "size"),), _adaptive,
       "Adaptive average pooling to a fixed HxW.",
       torch=lambda a, s, i: f"nn.AdaptiveAvgPool2d({a['size']})"),
    Op("adaptive_maxpool", (Param("size", "size"),), _adaptive,
       "Adaptive max pooling to a fixed HxW.",
       torch=lambda a, s, i: f"nn.AdaptiveMaxPool2d({a['size']})"),
    Op("dropout", (Param("p", "prob", 0.5),), _same, "Dropout (active in training only).",
       torch=lambda a, s, i: f"nn.Dropout(p={a['p']})"),
    Op("flatten", (), _flatten, "CxHxW to a flat vector of C*H*W.",
       torch=lambda a, s, i: "nn.Flatten(1)"),
    Op("fc", (Param("out", "count"), Param("bias", "bool", True), *_INIT), _fc_infer,
       "Fully connected layer on a flat input.",
       lambda a, s: s[0] * a["out"] + (a["out"] if a["bias"] else 0),
       lambda a, s, o: s[0] * a["out"],
       lambda a, s, i: f"nn.Linear({s[0]}, {a['out']}, bias={a['bias']})"),
    Op("project", (), lambda a, ins: ins[0] if not a["active"] else (a["out"], *a["spatial"]),
       "Residual shortcut: identity when shapes agree, else conv1x1 (no bias) + bn.",
       _project_params, _project_macs, _project_torch),
    Op("scale", (Param("factor", "float"),), _same, "Multiplies by a constant."),
    Op("concat", (), _concat_infer, "Concatenates its branches along channels.", arity=-1),
    Op("add", (), _add_infer, "Sums its branches.", arity=-1),
]}


# Weight initialisation schemes a network may name with `init NAME` or `init NAME(args)`,
# with the number of arguments each takes; emit.py holds what each one does.
INIT_SCHEMES = {
    "torch": 0,         # PyTorch's own layer defaults (AlexNet, timm's Inception networks)
    "resnet": 0,        # torchvision resnet.py: conv kaiming_normal_(fan_out, relu), bn 1/0
    "vgg": 0,           # torchvision vgg.py: as resnet, conv bias 0, fc normal(0, 0.01) bias 0
    "trunc_normal": 1,  # torchvision googlenet/inception: conv+fc trunc_normal_(std), bn 1/0
}


def shape_of(op: str, attrs: Attrs, inputs: list[Shape]) -> Shape:
    return OPS[op].infer(attrs, inputs)
