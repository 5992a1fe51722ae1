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

from hypothesis import strategies as st

from netgen_layers import (
    ACTIVATIONS,
    BLOCKS,
    SMALL,
    Gen,
    block_call,
    feature_map_layer,
    flat_layer,
)

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


def _residual(g: Gen, shape, depth):
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


def _branches(g: Gen, shape, depth, count: int, same_channels: int | None):
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


def _merge(g: Gen, shape, depth):
    kind = g.pick(["concat", "add", "mul"])
    count = g.int(2, 3)  # a merge of one branch is refused (it would merge nothing)
    if kind == "concat":
        texts, widths = _branches(g, shape, depth, count, None)
        return f"concat({', '.join(texts)})", (sum(widths), *shape[1:])
    m = g.pick([shape[0], g.int(1, SMALL)])
    texts, _ = _branches(g, shape, depth, count, m)
    return f"{kind}({', '.join(texts)})", (m, *shape[1:])


def _aux(g: Gen, shape, depth):
    if g.coin():
        head = f"gap -> flatten -> fc({g.int(1, 5)})"
    else:
        head, _ = _chain(g, shape, depth + 1, g.int(1, 2), keep_hw=False, labels=True)
    when = g.pick(["", "", ", when=true", ", when=false", ", when=1 < 2"])
    return f"aux({head}{when})", shape


def _inception(g: Gen, shape):
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


def _stack(g: Gen, shape, depth):
    g.stacked += 1
    body, out = _chain(g, shape, depth + 1, g.int(1, 2), keep_hw=True, labels=False)
    g.stacked -= 1
    if out != shape:
        body, out = f"{body} -> conv({shape[0]}, 1x1)", shape
    count = g.pick(["0", "1", "2", "3", "1 + 1"])
    return f"stack({body}, {count})", shape if count == "0" else out


def _cond(g: Gen, shape):
    test, chosen = g.pick([("true", 0), ("false", 1), ("1 < 2", 0), ("w == 0", 1),
                           ("2 * 2 != 4", 1)])
    a, b = g.pick(ACTIVATIONS), g.pick(ACTIVATIONS)
    return f"({a} if {test} else {b})", shape


# --- elements and chains --------------------------------------------------------------------

def _element(g: Gen, shape, depth: int, keep_hw: bool, labels: bool):
    """One element of a chain, or None when the drawn one does not fit here."""
    if len(shape) != 3:
        made = flat_layer(g, shape) if g.coin(0.9) or depth else _aux(g, shape, depth)
    else:
        kinds = ["layer"] * 8 + ["block"] * 2 + ["cond"]
        if depth < 2:
            kinds += ["residual", "merge", "merge", "stack", "aux"]
            kinds += [] if g.stacked else ["inception"]
        kind = g.pick(kinds)
        if kind == "layer":
            made = feature_map_layer(g, shape, keep_hw)
        elif kind == "block":
            made = block_call(g, shape)
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


def _chain(g: Gen, shape, depth: int, length: int, keep_hw: bool, labels: bool):
    """``length`` elements (at least one) as ``a -> b -> ...``, and the shape they give."""
    items = []
    while len(items) < length:
        made = None
        for _ in range(8):
            made = _element(g, shape, depth, keep_hw, labels)
            if made is not None:
                break
        if made is None:
            made = g.pick(ACTIVATIONS), shape
        items.append(made[0])
        shape = made[1]
    if labels and len(items) > 1:
        return g.labelled(f"({' -> '.join(items)})", 0.15), shape
    return " -> ".join(items), shape


@st.composite
def networks(draw, max_lines: int = 4) -> str:
    """A random valid network (spec text): blocks it uses, then the network."""
    g = Gen(draw)
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
