"""Random *valid* netdsl networks, for differential testing (tests/test_differential.py,
scripts/differential.py).

:func:`networks` is a Hypothesis strategy of spec texts. Each draw builds a network layer by
layer while tracking the shape it has reached, so that every layer it writes fits (output
sizes stay at least 1, groups divide channels, branches agree where they meet, a stacked body
keeps its shape, a residual body keeps its input's shape or is projected). It covers every
op of the built-in table, labels, blocks with parameters, defaults and keyword arguments,
``inline`` blocks, blocks that read ``in_channels``, layer arguments, conditionals, the
prelude (``conv3x3``, ``conv1x1``, ``conv_relu``, ``stage``, ``se``), ``stack``,
``residual`` (identity, ``project``, labelled ``project``, an explicit shortcut, ``scale``),
``concat``, ``add``, ``mul``, ``aux`` and ``inception``, unlabelled top levels, network
parameters and ``init`` schemes.

The tracked shape only steers generation; what the network really is, the compiler decides,
and the differential test compares that with what PyTorch does. Labels are unique (``l0``,
``l1``, ...) and never repeat inside a ``stack``: duplicate names are a diagnostic of their
own (issue 12, item 3), not a random network.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from hypothesis import strategies as st

_LABELLED = re.compile(r"l[0-9]+: ")
SMALL = 8  # channel counts stay small so that a few hundred networks run in seconds


@dataclass
class _Gen:
    """Generation state for one network."""

    draw: object
    labels: itertools.count = field(default_factory=itertools.count)
    blocks: dict[str, str] = field(default_factory=dict)  # kind -> definition text
    stacked: int = 0  # inside a stack body: no labels (copies would share them)

    def coin(self, p: float = 0.5) -> bool:
        return self.draw(st.floats(0, 1)) < p

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def label(self) -> str:
        return f"l{next(self.labels)}"

    def labelled(self, text: str, p: float) -> str:
        """``text``, or with probability ``p`` the same under a fresh label."""
        if self.stacked or not self.coin(p):
            return text
        # a label names one layer, call or parenthesised chain: 'a: b: x' needs brackets
        return f"{self.label()}: ({text})" if _LABELLED.match(text) else f"{self.label()}: {text}"


def _dims(shape) -> str:
    return "x".join(map(str, shape))


def _conv_out(h: int, k: int, s: int, p: int, d: int) -> int:
    return (h + 2 * p - d * (k - 1) - 1) // s + 1


def _pool_out(h: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    span = h + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= h + p:  # PyTorch: the last window starts inside the input
        out -= 1
    return out


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# --- single layers --------------------------------------------------------------------------

def _conv(g: _Gen, shape, keep_hw: bool):
    c, h, w = shape
    out = g.int(1, SMALL)
    if keep_hw:
        kh, kw = g.pick([(1, 1), (3, 3), (1, 3), (3, 1), (5, 5)])
        stride, dil = 1, 1
        pad = "same"
    else:
        kh, kw = g.int(1, min(3, h + 2)), g.int(1, min(3, w + 2))
        stride, dil = g.int(1, 2), g.pick([1, 1, 2])
        pad = g.int(0, 1)
    p = (kh // 2, kw // 2) if pad == "same" else (pad, pad)
    oh, ow = _conv_out(h, kh, stride, p[0], dil), _conv_out(w, kw, stride, p[1], dil)
    if pad == "same" and (kh % 2 == 0 or kw % 2 == 0) or oh < 1 or ow < 1:
        return None
    groups = g.pick([d for d in _divisors(c) if out % d == 0])
    kernel = str(kh) if kh == kw and g.coin(0.3) else f"{kh}x{kw}"
    args = [str(out), kernel]
    if stride != 1 or g.coin(0.2):
        args.append(f"stride={stride}")
    if pad != 0 or g.coin(0.2):
        args.append(f"pad={pad}")
    if dil != 1:
        args.append(f"dilation={dil}")
    if groups != 1:
        args.append(f"groups={groups}")
    if g.coin(0.3):
        args.append(f"bias={g.pick(['true', 'false'])}")
    if g.coin(0.1):
        args.append("std=0.05")
    return f"conv({', '.join(args)})", (out, oh, ow)


def _conv_transpose(g: _Gen, shape):
    c, h, w = shape
    out, k, s, p, d = g.int(1, SMALL), g.int(1, 3), g.int(1, 2), g.int(0, 1), g.pick([1, 2])
    op = g.int(0, max(s, d) - 1)
    oh = (h - 1) * s - 2 * p + d * (k - 1) + op + 1
    ow = (w - 1) * s - 2 * p + d * (k - 1) + op + 1
    if oh < 1 or ow < 1 or oh > 40 or ow > 40:
        return None
    groups = g.pick([x for x in _divisors(c) if out % x == 0])
    return (f"conv_transpose({out}, {k}x{k}, stride={s}, pad={p}, output_pad={op}, "
            f"dilation={d}, groups={groups}, bias={g.pick(['true', 'false'])})", (out, oh, ow))


def _pool(g: _Gen, shape, keep_hw: bool):
    c, h, w = shape
    kind = g.pick(["maxpool", "avgpool"])
    if keep_hw:
        return f"{kind}(3x3, stride=1, pad=1)", shape
    k, d = g.int(1, 3), 1
    s = g.int(1, 3)
    p = g.int(0, k // 2)
    ceil = g.coin(0.3)
    args = [f"{k}x{k}", f"stride={s}", f"pad={p}"]
    if kind == "maxpool" and g.coin(0.2):
        d = 2
        args.append("dilation=2")
    if ceil:
        args.append("ceil=true")
    if kind == "avgpool" and g.coin(0.3):
        args.append("count_pad=false")
    oh, ow = _pool_out(h, k, s, p, d, ceil), _pool_out(w, k, s, p, d, ceil)
    if oh < 1 or ow < 1 or k > h + 2 * p or k > w + 2 * p:
        return None
    return f"{kind}({', '.join(args)})", (c, oh, ow)


_ACTIVATIONS = ["relu", "relu6", "leaky_relu", "leaky_relu(slope=0.2)", "gelu", "silu",
                "sigmoid", "tanh", "hardsigmoid", "hardswish"]


def _pointwise(g: _Gen, shape):
    """Layers that keep the shape and work on any shape."""
    choice = g.pick(["act", "act", "act", "dropout", "scale", "stochastic_depth",
                     "layer_scale", "layernorm"])
    if choice == "act":
        return g.pick(_ACTIVATIONS), shape
    if choice == "dropout":
        return g.pick(["dropout", "dropout(0.2)", "dropout(p=0)"]), shape
    if choice == "scale":
        return f"scale({g.pick(['0.5', '2', '-1.25', '1e-3'])})", shape
    if choice == "stochastic_depth":
        return f"stochastic_depth({g.pick(['0', '0.1'])})", shape
    if choice == "layer_scale":
        return (g.pick(["layer_scale", "layer_scale(value=0.1)"]), shape) if len(shape) == 3 \
            else None
    return g.pick(["layernorm", "layernorm(eps=1e-3)"]), shape


def _feature_map_layer(g: _Gen, shape, keep_hw: bool):
    """One layer for a CxHxW input (None when the drawn one does not fit)."""
    c, h, w = shape
    kind = g.pick(["conv", "conv", "conv", "norm", "pool", "pointwise", "pointwise",
                   "reshape", "resize", "transpose", "global"])
    if kind == "conv":
        return _conv(g, shape, keep_hw)
    if kind == "norm":
        return g.pick(["bn", "bn", "bn(eps=1e-3, momentum=0.2)", "bn(affine=false)", "lrn",
                       "lrn(size=3)", "layernorm2d"]), shape
    if kind == "pool":
        return _pool(g, shape, keep_hw)
    if kind == "pointwise":
        return _pointwise(g, shape)
    if kind == "reshape":
        parts = g.pick(_divisors(c))
        if g.coin():
            return f"shuffle({parts})", shape
        return f"chunk({g.int(0, parts - 1)}, parts={parts})", (c // parts, h, w)
    if keep_hw:
        return None
    if kind == "resize":
        if g.coin():
            a, b = g.int(1, h), g.int(1, w)
            return f"crop({a}x{b})", (c, a, b)
        mode = g.pick(["", ', mode="bilinear"', ', mode="nearest"'])
        if g.coin() and h * 2 <= 40:
            return f"upsample(scale=2{mode})", (c, 2 * h, 2 * w)
        a, b = g.int(1, 12), g.int(1, 12)
        return f"upsample(size={a}x{b}{mode})", (c, a, b)
    if kind == "transpose":
        if g.coin(0.3):
            return _conv_transpose(g, shape)
        if g.coin():
            out = g.int(1, SMALL)
            return f"linear({out})", (c, h, out)
        order = g.pick([(0, 2, 1), (1, 0, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
        return f"permute({list(order)})".replace(" ", ""), tuple(shape[i] for i in order)
    a, b = g.int(1, 4), g.int(1, 4)
    return g.pick([("gap", (c, 1, 1)), (f"adaptive_avgpool({a}x{b})", (c, a, b)),
                   (f"adaptive_maxpool({a}x{b})", (c, a, b)), (f"adaptive_avgpool({a})", (c, a, a))])


def _flat_layer(g: _Gen, shape):
    kind = g.pick(["fc", "fc", "linear", "pointwise"])
    if kind == "pointwise":
        return _pointwise(g, shape)
    out = g.int(1, SMALL * 2)
    bias = g.pick(["", "", ", bias=false"])
    return f"{kind}({out}{bias})", (out,)


# --- blocks ---------------------------------------------------------------------------------

BLOCKS = {
    "cbr": "block cbr(c, s=1) = conv(c, 3x3, stride=s, pad=1, bias=false) -> bn -> relu",
    "basic": ("block basic(c, stride=1) = residual(conv3x3(c, stride=stride) -> bn -> relu\n"
              "        -> conv3x3(c) -> bn, shortcut=downsample: project) -> relu"),
    "widen": "block widen(r=2) = conv(in_channels * r, 1x1) -> relu",
    "named": "block named(c, k=3x3) = conv: conv(c, k, pad=same) -> norm: bn -> act: relu6",
    "inl": "inline block inl(c) = conv(c, 1x1) -> relu",
    "rep": "block rep(layer, n=2) = stack(layer, n)",
    "down": "block down(c, half=false) = conv(c, 3x3, stride=2 if half else 1, pad=1)",
    "unit": ("block unit(c, k, stride=1, pad=0) =\n"
             "    conv(c, k, stride=stride, pad=pad, bias=false) -> bn(eps=0.001) -> relu"),
    "wide": "block wide(c, out=2 * c) = conv(out, 1x1) -> relu",
}


def _block_call(g: _Gen, shape):
    c, h, w = shape
    kind = g.pick(["cbr", "basic", "widen", "named", "inl", "rep", "down", "wide", "prelude"])
    n, s = g.int(1, SMALL), g.int(1, 2)
    down = (h - 1) // s + 1, (w - 1) // s + 1
    if kind == "prelude":
        return _prelude_call(g, shape)
    g.blocks[kind] = BLOCKS[kind]
    if kind in ("cbr", "basic"):
        stride = "s" if kind == "cbr" else "stride"
        call = g.pick([f"{kind}({n}, {s})", f"{kind}({n}, {stride}={s})",
                       f"{kind}(c={n}, {stride}={s})"])
        if kind == "basic" and g.coin(0.3):
            g.blocks["basic"] = BLOCKS["basic"]
            call = f"stage(basic, {n}, {g.int(1, 2)}, stride={s})"
        return call, (n, *down)
    if kind == "widen":
        r = g.int(1, 2)
        return g.pick([(f"widen({r})", (c * r, h, w)), ("widen", (2 * c, h, w))])
    if kind == "named":
        k = g.pick(["1x1", "3x3", "1x3", "5x5"])
        return g.pick([f"named({n})", f"named({n}, {k})", f"named({n}, k={k})"]), (n, h, w)
    if kind == "inl":
        return f"inl({n})", (n, h, w)
    if kind == "rep":
        times = g.int(0, 3)
        return f"rep(conv({n}, 3x3, pad=1) -> bn, {times})", (n, h, w) if times else shape
    if kind == "down":
        half = g.coin()
        return f"down({n}, half={'true' if half else 'false'})", \
            (n, (h - 1) // 2 + 1, (w - 1) // 2 + 1) if half else (n, h, w)
    return g.pick([(f"wide({n})", (2 * n, h, w)), (f"wide({n}, out={n + 1})", (n + 1, h, w))])


def _prelude_call(g: _Gen, shape):
    c, h, w = shape
    n, s = g.int(1, SMALL), g.int(1, 2)
    down = (h - 1) // s + 1, (w - 1) // s + 1
    return g.pick([(f"conv3x3({n}, stride={s})", (n, *down)),
                   (f"conv1x1({n}, stride={s}, bias=false)", (n, *down)),
                   (f"conv_relu({n}, 3x3, pad=1)", (n, h, w)),
                   (f"se({g.int(1, 4)})", shape)])


# --- builtins ------------------------------------------------------------------------------

def _projection(given, wanted) -> tuple[int, int] | None:
    """The stride of the 1x1 convolution that maps one 3-D shape onto the other, if any."""
    if len(given) != 3 or len(wanted) != 3:
        return None
    stride = []
    for a, b in zip(given[1:], wanted[1:], strict=True):
        s = next((s for s in range(1, a + 1) if (a - 1) // s + 1 == b), None)
        if s is None:
            return None
        stride.append(s)
    return stride[0], stride[1]


def _residual(g: _Gen, shape, depth):
    body, out = _chain(g, shape, depth + 1, g.int(1, 3), keep_hw=g.coin(), labels=True)
    extra = g.pick(["", "", ", scale=0.5", ", scale=2"])
    if out == shape and g.coin(0.7):
        return f"residual({body}{extra})", shape
    stride = _projection(shape, out)
    if stride is None:
        return None
    if g.coin(0.3):
        short = f"conv({out[0]}, 1x1, stride={stride[0]}x{stride[1]})"
    else:
        short = g.labelled("project", 0.5)
    return f"residual({body}, shortcut={short}{extra})", out


def _branches(g: _Gen, shape, depth, count: int, same_channels: int | None):
    texts, widths = [], []
    for _ in range(count):
        if g.coin(0.2) and (same_channels is None or same_channels == shape[0]):
            texts.append("identity")
            widths.append(shape[0])
            continue
        body, out = _chain(g, shape, depth + 1, g.int(1, 2), keep_hw=True, labels=True)
        if same_channels is not None and out[0] != same_channels:
            body, out = f"{body} -> conv({same_channels}, 1x1)", (same_channels, *out[1:])
        texts.append(body)
        widths.append(out[0])
    return texts, widths


def _merge(g: _Gen, shape, depth):
    kind = g.pick(["concat", "add", "mul"])
    count = g.int(1, 3)
    if kind == "concat":
        texts, widths = _branches(g, shape, depth, count, None)
        return f"concat({', '.join(texts)})", (sum(widths), *shape[1:])
    m = g.pick([shape[0], g.int(1, SMALL)])
    texts, _ = _branches(g, shape, depth, count, m)
    return f"{kind}({', '.join(texts)})", (m, *shape[1:])


def _aux(g: _Gen, shape, depth):
    if g.coin():
        head = f"gap -> flatten -> fc({g.int(1, 5)})"
    else:
        head, _ = _chain(g, shape, depth + 1, g.int(1, 2), keep_hw=False, labels=True)
    when = g.pick(["", "", ", when=true", ", when=false", ", when=1 < 2"])
    return f"aux({head}{when})", shape


def _inception(g: _Gen, shape):
    c, h, w = shape
    stride = g.pick([1, 1, 2])
    branches, channels = [], 0
    for _ in range(g.int(1, 4)):
        key = g.pick(["1x1", "3x3", "5x5", "1x3", "3x1", "pool", "avgpool", "bare"])
        a, b = g.int(1, SMALL), g.int(1, SMALL)
        if key == "bare":
            branches.append("pool")
            channels += c
        elif key in ("pool", "avgpool"):
            branches.append(f"{key}:{a}")
            channels += a
        else:
            branches.append(g.pick([f"{key}:{a}", f"{key}:r{b}->{a}", f"{key}: r{b} -> {a}"]))
            channels += a
    extra = ""
    if stride != 1:
        extra += f", stride={stride}"
    if g.coin(0.3):
        g.blocks["unit"] = BLOCKS["unit"]
        extra += ", unit=unit"
    out = (channels, (h - 1) // stride + 1, (w - 1) // stride + 1)
    # its branches are named branch1, branch2, ... in the scope it is written in: a label of
    # its own keeps two inceptions of one scope apart
    return f"{g.label()}: inception({', '.join(branches)}{extra})", out


def _stack(g: _Gen, shape, depth):
    g.stacked += 1
    body, out = _chain(g, shape, depth + 1, g.int(1, 2), keep_hw=True, labels=False)
    g.stacked -= 1
    if out != shape:
        body, out = f"{body} -> conv({shape[0]}, 1x1)", shape
    count = g.pick(["0", "1", "2", "3", "1 + 1"])
    return f"stack({body}, {count})", shape if count == "0" else out


def _cond(g: _Gen, shape):
    test, chosen = g.pick([("true", 0), ("false", 1), ("1 < 2", 0), ("w == 0", 1),
                           ("2 * 2 != 4", 1)])
    a, b = g.pick(_ACTIVATIONS), g.pick(_ACTIVATIONS)
    return f"({a} if {test} else {b})", shape


# --- elements and chains --------------------------------------------------------------------

def _element(g: _Gen, shape, depth: int, keep_hw: bool, labels: bool):
    """One element of a chain, or None when the drawn one does not fit here."""
    if len(shape) != 3:
        made = _flat_layer(g, shape) if g.coin(0.9) or depth else _aux(g, shape, depth)
    else:
        kinds = ["layer"] * 8 + ["block"] * 2 + ["cond"]
        if depth < 2:
            kinds += ["residual", "merge", "merge", "stack", "aux"]
            kinds += [] if g.stacked else ["inception"]
        kind = g.pick(kinds)
        if kind == "layer":
            made = _feature_map_layer(g, shape, keep_hw)
        elif kind == "block":
            made = _block_call(g, shape)
        elif kind == "cond":
            made = _cond(g, shape)
        elif kind == "residual":
            made = _residual(g, shape, depth)
        elif kind == "merge":
            made = _merge(g, shape, depth)
        elif kind == "stack":
            made = _stack(g, shape, depth)
        elif kind == "aux":
            made = _aux(g, shape, depth)
        else:
            made = _inception(g, shape)
    if made is None or (keep_hw and made[1][1:] != shape[1:]) or min(made[1]) < 1 \
            or max(made[1]) > 64:
        return None
    text, out = made
    return (g.labelled(text, 0.25) if labels else text), out


def _chain(g: _Gen, shape, depth: int, length: int, keep_hw: bool, labels: bool):
    """``length`` elements (at least one) as ``a -> b -> ...``, and the shape they give."""
    items = []
    while len(items) < length:
        made = None
        for _ in range(8):
            made = _element(g, shape, depth, keep_hw, labels)
            if made is not None:
                break
        if made is None:
            made = g.pick(_ACTIVATIONS), shape
        items.append(made[0])
        shape = made[1]
    if labels and len(items) > 1:
        return g.labelled(f"({' -> '.join(items)})", 0.15), shape
    return " -> ".join(items), shape


@st.composite
def networks(draw, max_lines: int = 4) -> str:
    """A random valid network (spec text): blocks it uses, then the network."""
    g = _Gen(draw)
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(4, 16)), draw(st.integers(4, 16))
    classes = draw(st.integers(1, 6))
    shape = (c, h, w)
    lines = []
    for _ in range(draw(st.integers(1, max_lines))):
        text, shape = _chain(g, shape, 0, draw(st.integers(1, 3)), keep_hw=False,
                             labels=draw(st.booleans()))
        lines.append(text)
    if len(shape) == 3 and draw(st.booleans()):
        head = draw(st.sampled_from(["gap -> flatten -> fc(classes)",
                                     "fc_head: (gap -> flatten -> fc(classes))",
                                     "flatten -> fc: fc(classes, bias=false)"]))
        lines.append(head)
    init = draw(st.sampled_from(["", "", "init torch", "init resnet", "init vgg",
                                 "init trunc_normal(0.02)"]))
    params = draw(st.sampled_from(["(w=0)", "(w=0, classes=3)"]))
    body = [f"input {c}x{h}x{w}", *([init] if init else []), *lines]
    if "classes" in "\n".join(lines) and "classes" not in params:
        params = f"(classes={classes})" if not params else params[:-1] + f", classes={classes})"
    return "".join(f"{b}\n" for b in g.blocks.values()) + f"network net{params}:\n" + \
        "".join(f"    {line}\n" for line in body)
