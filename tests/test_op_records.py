"""Every op record against the real torch layer it emits, on random configurations.

For each built-in op, hypothesis draws attributes and an input; the test builds the layer the
way generated code does (from the record's ``torch`` field) and checks the record's shape rule,
parameter count, MACs (``FlopCounterMode``, 2 FLOPs per MAC) and receptive-field window
(measured by perturbing one input pixel at a time) against it. An op without a strategy here
fails the test, so a new record cannot skip this.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from netdsl.ir.layers import BUILTIN_OPS
from netdsl.ir.ops import GLOBAL, OPS, ShapeProblem, TorchExpression, TorchModule, TorchParameter

small = st.integers(1, 4)
pair = st.tuples(st.integers(1, 3), st.integers(1, 3))


SIDE = st.integers(1, 9)


def spatial(c=small, h=SIDE, w=SIDE):
    return st.tuples(c, h, w)


@st.composite
def conv(draw):
    groups = draw(st.integers(1, 2))
    return ({"out": groups * draw(small), "kernel": draw(pair), "stride": draw(pair),
             "pad": draw(st.tuples(st.integers(0, 2), st.integers(0, 2))),
             "dilation": draw(pair), "groups": groups, "bias": draw(st.booleans()),
             "std": None}, [draw(spatial(c=st.integers(1, 3).map(lambda c: c * groups)))])


@st.composite
def conv_transpose(draw):
    """Output padding up to the larger of stride and dilation: one past what torch takes."""
    groups = draw(st.integers(1, 2))
    stride, dilation = draw(pair), draw(pair)
    return ({"out": groups * draw(small), "kernel": draw(pair), "stride": stride,
             "pad": draw(st.tuples(st.integers(0, 1), st.integers(0, 1))),
             "output_pad": tuple(draw(st.integers(0, max(stride[i], dilation[i]))) for i in range(2)),
             "dilation": dilation, "groups": groups, "bias": draw(st.booleans())},
            [draw(spatial(c=st.integers(1, 3).map(lambda c: c * groups)))])


@st.composite
def pool(draw, avg: bool):
    kernel = draw(pair)
    pad = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    attrs = {"kernel": kernel, "stride": draw(pair), "pad": pad, "ceil": draw(st.booleans())}
    attrs.update({"count_pad": draw(st.booleans())} if avg else {"dilation": draw(pair)})
    return attrs, [draw(spatial())]


def one(shape=None):
    return st.lists(shape or spatial(), min_size=1, max_size=1)


def fixed(attrs=None):
    return st.tuples(st.just(attrs or {}), one())


@st.composite
def chunk(draw):
    parts = draw(st.integers(1, 3))
    return ({"index": draw(st.integers(0, parts - 1)), "parts": parts},
            [draw(spatial(c=st.integers(1, 2).map(lambda k: k * parts)))])


@st.composite
def shuffle(draw):
    groups = draw(st.integers(1, 3))
    return {"groups": groups}, [draw(spatial(c=st.integers(1, 2).map(lambda k: k * groups)))]


@st.composite
def crop(draw):
    c, h, w = draw(spatial())
    return {"size": (draw(st.integers(1, h)), draw(st.integers(1, w)))}, [(c, h, w)]


def same_shapes(n_min=1, n_max=3):
    return spatial().flatmap(lambda s: st.lists(st.just(s), min_size=n_min, max_size=n_max))


def concat_inputs():
    return st.tuples(st.integers(1, 8), st.integers(1, 8)).flatmap(
        lambda hw: st.lists(small.map(lambda c: (c, *hw)), min_size=1, max_size=3))


def mul_inputs():
    return spatial().flatmap(lambda s: st.lists(
        st.sampled_from([s, (s[0], 1, 1), (1, s[1], s[2])]), min_size=1, max_size=3).map(
        lambda rest: [s, *rest]))


STRATEGIES = {
    "conv": conv(), "conv_transpose": conv_transpose(),
    "fc": st.tuples(st.fixed_dictionaries({"out": small, "bias": st.booleans(), "std": st.none()}),
                    st.integers(1, 20).map(lambda f: [(f,)])),
    "linear": st.tuples(st.fixed_dictionaries({"out": small, "bias": st.booleans()}), one()),
    "bn": fixed({"eps": 1e-5, "momentum": 0.1, "affine": True}),
    "frozen_bn": fixed({"eps": 1e-5}),
    "lrn": st.tuples(st.fixed_dictionaries({"size": st.integers(1, 5), "alpha": st.just(1e-4),
                                            "beta": st.just(0.75), "k": st.just(2.0)}), one()),
    "layernorm2d": fixed({"eps": 1e-6}), "layernorm": fixed({"eps": 1e-5}),
    "layer_scale": fixed({"value": 0.5}),
    **{name: fixed() for name in ("relu", "relu6", "gelu", "silu", "sigmoid", "tanh",
                                  "hardsigmoid", "hardswish", "gap", "flatten")},
    "leaky_relu": fixed({"slope": 0.2}),
    "maxpool": pool(avg=False), "avgpool": pool(avg=True),
    "adaptive_avgpool": st.tuples(st.fixed_dictionaries({"size": pair}), one()),
    "adaptive_maxpool": st.tuples(st.fixed_dictionaries({"size": pair}), one()),
    "dropout": fixed({"p": 0.5}), "stochastic_depth": fixed({"p": 0.5}),
    "scale": fixed({"factor": 0.17}),
    "concat": st.tuples(st.just({}), concat_inputs()),
    "add": st.tuples(st.just({}), same_shapes()),
    "mul": st.tuples(st.just({}), mul_inputs()),
    "permute": st.tuples(st.fixed_dictionaries({"order": st.permutations([0, 1, 2]).map(tuple)}),
                         one()),
    "shuffle": shuffle(), "chunk": chunk(), "crop": crop(),
    "upsample": st.tuples(
        st.one_of(st.fixed_dictionaries({"size": pair, "scale": st.none()}),
                  st.fixed_dictionaries({"size": st.none(), "scale": pair})).flatmap(
            lambda a: st.fixed_dictionaries({"mode": st.sampled_from(["nearest", "bilinear"])})
            .map(lambda m: {**a, **m})),
        one()),
}
NOT_A_LAYER = {"input"}  # the network input: no computation to compare
# ops whose refusals are torch's own (a window larger than its padded input); other rules may
# refuse more than torch (an uneven chunk), and their strategies draw only valid inputs
TORCH_REFUSES = {"conv", "conv_transpose", "maxpool", "avgpool"}


def layer(record, attrs: dict, shapes: list):
    """The torch computation the record emits, as a function of the input tensors."""
    emission = record.torch
    if isinstance(emission, TorchModule):
        path, name = emission.cls.rsplit(".", 1)
        args, kwargs = emission.args(attrs, shapes, False)
        module = getattr(importlib.import_module(path), name)(*args, **kwargs).double()
        return module, lambda xs: module(xs[0])
    if isinstance(emission, TorchParameter):
        weight = torch.nn.Parameter(torch.rand(emission.shape(attrs, shapes), dtype=torch.double))
        module = torch.nn.Module()
        module.weight = weight
        code = emission.expr("x0", "weight")
        return module, lambda xs: eval(code, {"torch": torch, "weight": weight}, {"x0": xs[0]})
    assert isinstance(emission, TorchExpression)
    code = emission.expr(attrs, [f"x{i}" for i in range(len(shapes))])
    return torch.nn.Module(), lambda xs: eval(
        code, {"torch": torch}, {f"x{i}": x for i, x in enumerate(xs)})


def test_every_builtin_op_has_a_strategy():
    names = {r.name for r in BUILTIN_OPS}
    assert names - NOT_A_LAYER == set(STRATEGIES), names ^ (set(STRATEGIES) | NOT_A_LAYER)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_record_matches_the_torch_layer(name, data):
    record = OPS[name]
    attrs, shapes = data.draw(STRATEGIES[name])
    shapes = [tuple(s) for s in shapes]
    assert set(attrs) == {p.name for p in record.params}, "the strategy must set every parameter"
    try:
        out = record.infer(dict(attrs), shapes)
    except ShapeProblem:
        assert name in TORCH_REFUSES, f"{name} refused a drawn input: fix its strategy"
        _assert_torch_refuses(record, attrs, shapes)
        return
    module, run = layer(record, attrs, shapes)
    module.eval()
    xs = [torch.rand(2, *s, dtype=torch.double) * 2 - 1 for s in shapes]
    with FlopCounterMode(display=False) as counter:
        y = run(xs)
    assert tuple(y.shape[1:]) == out, "shape rule"
    assert sum(p.numel() for p in module.parameters()) == record.count_params(attrs, shapes)
    assert counter.get_total_flops() == 2 * 2 * record.macs(attrs, shapes, out), "MACs"
    if len(shapes[0]) == 3 and len(out) == 3 and len(shapes) == 1 and name != "permute":
        _assert_window(record, attrs, shapes, out, run)


def _assert_torch_refuses(record, attrs, shapes):
    """Where the shape rule refuses an input, the torch layer must fail on it too; a
    transposed convolution may instead give an empty map (0 rows), which netdsl refuses."""
    try:
        _, run = layer(record, attrs, shapes)
        y = run([torch.rand(1, *s, dtype=torch.double) for s in shapes])
    except (RuntimeError, ValueError):
        return
    assert record.name == "conv_transpose" and y.numel() == 0, "torch took what the rule refused"


def _assert_window(record, attrs, shapes, out, run):
    """The input rows/columns each output value depends on, found by perturbing one input
    pixel at a time, span at most the window's extent, and some output spans all of it."""
    c, h, w = shapes[0]
    base = torch.rand(1, c, h, w, dtype=torch.double) * 2 - 1
    probes = base.repeat(h * w, 1, 1, 1)
    for i in range(h * w):
        probes[i, :, i // w, i % w] += 1000.0  # large: changes a max, a saturating gate
    with torch.no_grad():
        changed = (run([probes]) - run([base])).abs().amax(dim=1) > 1e-9  # (h*w, oh, ow)
    window = record.window(attrs, shapes, out)
    spans = []
    for oy in range(out[1]):
        for ox in range(out[2]):
            hits = changed[:, oy, ox].nonzero().flatten()
            if len(hits):
                rows, cols = hits // w, hits % w
                spans.append((int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)))
    if not spans:
        return  # every output is constant (a gate saturated everywhere): nothing to measure
    widest = (max(s[0] for s in spans), max(s[1] for s in spans))
    extent = (h, w) if window == GLOBAL else window.extent
    assert widest[0] <= extent[0] and widest[1] <= extent[1], (widest, extent)
    if _observable(attrs, (h, w), extent):
        assert widest == extent, (widest, extent)


def _observable(attrs, size, extent) -> bool:
    """Whether some output's whole window lies inside the input, so the measured span must
    equal the window: no padding, an input at least the window's size, and not bilinear
    resizing (whose 2x2 window shrinks to 1 where the scale is whole)."""
    if attrs.get("mode") == "bilinear":
        return False
    if tuple(attrs.get("pad", (0, 0))) != (0, 0) or tuple(attrs.get("output_pad", (0, 0))) != (0, 0):
        return False
    return all(extent[i] <= size[i] for i in range(2))
