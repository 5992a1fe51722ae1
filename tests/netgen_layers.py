"""Single layers and block calls for tests/netgen.py: each generator takes the shape reached
so far and returns (text, shape it gives), or None when the drawn layer does not fit."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from hypothesis import strategies as st

_LABELLED = re.compile(r"l[0-9]+: ")
SMALL = 8  # channel counts stay small so that a few hundred networks run in seconds


@dataclass
class Gen:
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

def _conv(g: Gen, shape, keep_hw: bool):
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


def _conv_transpose(g: Gen, shape):
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


def _pool(g: Gen, shape, keep_hw: bool):
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


ACTIVATIONS = ["relu", "relu6", "leaky_relu", "leaky_relu(slope=0.2)", "gelu", "silu",
                "sigmoid", "tanh", "hardsigmoid", "hardswish"]


def pointwise_layer(g: Gen, shape):
    """Layers that keep the shape and work on any shape."""
    choice = g.pick(["act", "act", "act", "dropout", "scale", "stochastic_depth",
                     "layer_scale", "layernorm"])
    if choice == "act":
        return g.pick(ACTIVATIONS), shape
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


def feature_map_layer(g: Gen, shape, keep_hw: bool):
    """One layer for a CxHxW input (None when the drawn one does not fit)."""
    c, h, w = shape
    # resize twice: it only fits where the size may change, and upsample is half of it
    kind = g.pick(["conv", "conv", "conv", "norm", "pool", "pointwise", "pointwise",
                   "reshape", "resize", "resize", "transpose", "global"])
    if kind == "conv":
        return _conv(g, shape, keep_hw)
    if kind == "norm":
        return g.pick(["bn", "bn", "bn(eps=1e-3, momentum=0.2)", "bn(affine=false)", "lrn",
                       "lrn(size=3)", "layernorm2d", "frozen_bn"]), shape
    if kind == "pool":
        return _pool(g, shape, keep_hw)
    if kind == "pointwise":
        return pointwise_layer(g, shape)
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


def flat_layer(g: Gen, shape):
    kind = g.pick(["fc", "fc", "linear", "pointwise"])
    if kind == "pointwise":
        return pointwise_layer(g, shape)
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


def block_call(g: Gen, shape):
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


def _prelude_call(g: Gen, shape):
    c, h, w = shape
    n, s = g.int(1, SMALL), g.int(1, 2)
    down = (h - 1) // s + 1, (w - 1) // s + 1
    return g.pick([(f"conv3x3({n}, stride={s})", (n, *down)),
                   (f"conv1x1({n}, stride={s}, bias=false)", (n, *down)),
                   (f"conv_relu({n}, 3x3, pad=1)", (n, h, w)),
                   (f"se({g.int(1, 4)})", shape)])
