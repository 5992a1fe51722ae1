"""The facts an op record states, derived from the torch layer it emits where torch can tell.

tests/test_op_facts.py pins every field against a table; this file checks the rows of that
table that do not have to be taken on trust: parameter defaults are the torch constructor's,
an op that may run in place does so in torch with the same values and gradients, an op whose
output autograd keeps is marked so, views share their input's storage, and the weight-layer and
init-role flags follow the tensors the module holds.
"""

from __future__ import annotations

import importlib
import inspect

import pytest
import torch

from netdsl.ir.ops import OPS, REQUIRED, TorchModule, normalize

# the values a required parameter takes here (the rest keep their declared defaults)
REQUIRED_VALUES = {"out": 4, "kernel": (3, 3), "size": (2, 2), "index": 0, "order": (1, 2, 0),
                   "factor": 0.5}
FLAT = {"fc"}  # ops that take a flat vector
MODULES = sorted(name for name, r in OPS.items() if isinstance(r.torch, TorchModule))

# defaults that deliberately differ from the torch constructor's (or that torch lacks)
OWN_DEFAULTS = {
    ("lrn", "k"): 2.0,  # AlexNet's k=2 (torch: 1.0)
    ("lrn", "size"): 5,  # AlexNet's n=5 (torch requires it)
    ("stochastic_depth", "p"): 0.0,  # the identity (netdsl's module requires it)
    ("layernorm2d", "eps"): 1e-6,  # ConvNeXt's LayerNorm2d (torch's LayerNorm: 1e-5)
}


def default_attrs(name: str) -> dict:
    return {p.name: REQUIRED_VALUES[p.name] if p.default is REQUIRED else normalize(p, p.default)
            for p in OPS[name].params}


def filled_attrs(name: str) -> dict:
    """As lowering fills them: a pool's stride defaults to its kernel (the record says so)."""
    attrs = default_attrs(name)
    if OPS[name].stride_defaults_to_kernel:
        attrs["stride"] = attrs["kernel"]
    return attrs


def torch_class(name: str):
    path, cls = OPS[name].torch.cls.rsplit(".", 1)
    return getattr(importlib.import_module(path), cls)


def input_shape(name: str) -> tuple[int, ...]:
    return (4,) if name in FLAT else (4, 6, 6)


def emitted(name: str, inplace: bool = False, attrs: dict | None = None) -> torch.nn.Module:
    """The module generated code builds for ``name`` at its defaults."""
    args, kwargs = OPS[name].torch.args(attrs or filled_attrs(name), [input_shape(name)], inplace)
    return torch_class(name)(*args, **kwargs).double()


def _same(ours, theirs) -> bool:
    """A pair (3, 3) matches torch's 3; a float matches within rounding."""
    if isinstance(ours, tuple) and isinstance(theirs, int) and not isinstance(theirs, bool):
        theirs = (theirs, theirs)
    if isinstance(ours, float) and isinstance(theirs, float):
        return ours == pytest.approx(theirs, rel=1e-12)
    return ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize("name", MODULES)
def test_a_parameter_left_out_gets_the_torch_default(name):
    """Every constructor argument netdsl passes from a parameter at its default equals what
    torch uses when the argument is left out."""
    record, cls = OPS[name], torch_class(name)
    args, kwargs = record.torch.args(default_attrs(name), [input_shape(name)], False)
    bound = inspect.signature(cls).bind(*args, **kwargs).arguments
    by_torch_name = {"padding": "pad", "ceil_mode": "ceil", "count_include_pad": "count_pad",
                     "negative_slope": "slope", "output_padding": "output_pad"}
    checked = 0
    for argument, value in bound.items():
        declared = next((p for p in record.params
                         if p.name == by_torch_name.get(argument, argument)), None)
        if declared is None or declared.default is REQUIRED:
            continue  # from the input's shape, or a required parameter
        torch_default = inspect.signature(cls).parameters[argument].default
        if (name, declared.name) in OWN_DEFAULTS:
            assert _same(value, OWN_DEFAULTS[name, declared.name])
            assert not _same(value, torch_default), "the exception is no longer needed"
            assert type(value) is type(OWN_DEFAULTS[name, declared.name])
        else:
            assert torch_default is not inspect.Parameter.empty, argument
            assert _same(value, torch_default), (argument, value, torch_default)
        checked += 1
    defaulted = [p for p in record.params if p.default is not REQUIRED and p.name != "std"]
    assert checked == len(defaulted), "every defaulted parameter reaches the constructor"


def test_interpolate_defaults_to_nearest_by_size_or_scale():
    signature = inspect.signature(torch.nn.functional.interpolate).parameters
    attrs = default_attrs("upsample")
    assert (attrs["size"], attrs["scale"], attrs["mode"]) == (
        signature["size"].default, signature["scale_factor"].default, signature["mode"].default)


def _grads(name: str, inplace: bool):
    torch.manual_seed(0)
    module = emitted(name, inplace).train()
    x = torch.randn(2, *input_shape(name), dtype=torch.double, requires_grad=True)
    y = module(x * 1.5 + 0.25)  # a non-leaf input, as inside a network
    (y * torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape)).sum().backward()
    return y.detach(), x.grad, module


@pytest.mark.parametrize("name", MODULES)
def test_an_op_runs_in_place_exactly_where_its_record_says(name):
    """inplace=True reaches the torch module only for ops whose record allows it, and there
    torch computes the same values and gradients in place."""
    module = emitted(name, inplace=True)
    assert getattr(module, "inplace", False) == OPS[name].inplace
    if OPS[name].inplace:
        y, grad, _ = _grads(name, inplace=False)
        y_inplace, grad_inplace, _ = _grads(name, inplace=True)
        assert torch.equal(y, y_inplace) and torch.equal(grad, grad_inplace)
        assert not getattr(emitted(name, inplace=False), "inplace", False)


def test_a_two_way_sum_runs_in_place_as_torchvision_writes_it():
    statement = OPS["add"].torch.inplace_statement(["a", "b"])
    a, b = torch.ones(2), torch.full((2,), 2.0)
    exec(statement, {}, {"a": a, "b": b})
    assert a.tolist() == [3.0, 3.0]


@pytest.mark.parametrize("name", MODULES)
def test_an_op_whose_output_autograd_keeps_says_so(name):
    """Overwriting the output (an in-place ReLU next) breaks the backward pass exactly when
    autograd kept it; such an op must say backward_needs_output. An op that says it does not
    must survive the overwrite."""
    torch.manual_seed(0)
    module = emitted(name, OPS[name].inplace).train()
    x = torch.randn(2, *input_shape(name), dtype=torch.double, requires_grad=True)
    y = module(x * 1)
    try:
        y.relu_().sum().backward()
        kept = False
    except RuntimeError as error:
        assert "modified by an inplace operation" in str(error)
        kept = True
    if kept:
        assert OPS[name].backward_needs_output
    if not OPS[name].backward_needs_output:
        assert not kept


def test_the_activations_that_keep_their_output():
    """The ops above whose output autograd really keeps (the rest say so to be safe)."""
    kept = []
    for name in MODULES:
        module = emitted(name, OPS[name].inplace).train()
        x = torch.randn(2, *input_shape(name), dtype=torch.double, requires_grad=True)
        try:
            module(x * 1).relu_().sum().backward()
        except RuntimeError:
            kept.append(name)
    assert kept == ["leaky_relu", "relu", "sigmoid", "tanh"]


@pytest.mark.parametrize("name", MODULES)
def test_a_view_shares_its_input_storage_at_inference(name):
    """view=True: the eval-mode module returns its input's memory (dropout, flatten, stochastic
    depth); view=False: it writes a new tensor."""
    record = OPS[name]
    module = emitted(name).eval()
    x = torch.randn(2, *input_shape(name), dtype=torch.double)
    with torch.no_grad():
        y = module(x)
    shares = y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    shape = input_shape(name)
    out = record.infer(filled_attrs(name), [shape])
    assert shares == record.writes_nothing(filled_attrs(name), [shape], out)


@pytest.mark.parametrize(("name", "attrs", "shape"), [
    ("chunk", {"index": 1, "parts": 2}, (4, 3, 3)),
    ("crop", {"size": (2, 2)}, (4, 3, 3)),
    ("permute", {"order": (1, 2, 0)}, (4, 3, 3)),
    ("shuffle", {"groups": 1}, (4, 3, 3)),
    ("shuffle", {"groups": 4}, (4, 3, 3)),
    ("shuffle", {"groups": 2}, (4, 3, 3)),
])
def test_a_view_expression_shares_its_input_storage(name, attrs, shape):
    """The record says an expression writes nothing exactly when torch's result shares its
    input's storage (issue 26: a permute, a one-group shuffle)."""
    x = torch.randn(1, *shape)
    y = eval(OPS[name].torch.expr(attrs, ["x"]), {"torch": torch}, {"x": x})
    shares = y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    assert OPS[name].writes_nothing(attrs, [shape], tuple(y.shape[1:])) == shares


@pytest.mark.parametrize("name", MODULES)
def test_weight_layers_and_init_roles_follow_the_module_tensors(name):
    """A weight layer holds a weight matrix or kernel (2 or more axes); the init role is the
    module's kind: a convolution, a linear layer, or a norm with a per-channel weight and
    bias (what every init scheme's rules are written for)."""
    module = emitted(name)
    weight = getattr(module, "weight", None)
    assert OPS[name].weight_layer == (weight is not None and weight.dim() >= 2)
    if isinstance(module, torch.nn.modules.conv._ConvNd):
        role = "conv"
    elif isinstance(module, torch.nn.Linear):
        role = "linear"
    elif weight is not None and weight.dim() == 1 and module.bias is not None:
        role = "norm"
    else:
        role = None
    assert OPS[name].init_role == role


def _run(name: str, attrs: dict, xs: list[torch.Tensor]) -> torch.Tensor:
    code = OPS[name].torch.expr(attrs, [f"x{i}" for i in range(len(xs))])
    return eval(code, {"torch": torch}, {f"x{i}": x for i, x in enumerate(xs)})


# each inline expression against the torch layer or function that defines the op
EXPRESSIONS = [
    ("shuffle", {"groups": 3}, [(6, 2, 3)], lambda x: torch.nn.ChannelShuffle(3)(x)),
    ("shuffle", {"groups": 2}, [(8, 1, 2)], lambda x: torch.nn.ChannelShuffle(2)(x)),
    ("chunk", {"index": 1, "parts": 3}, [(6, 2, 2)], lambda x: torch.chunk(x, 3, dim=1)[1]),
    ("crop", {"size": (2, 3)}, [(2, 6, 7)], lambda x: x[:, :, 2:4, 2:5]),
    ("crop", {"size": (5, 1)}, [(1, 5, 3)], lambda x: x[:, :, :, 1:2]),
    ("upsample", {"size": None, "scale": (2, 3), "mode": "nearest"}, [(2, 3, 2)],
     lambda x: torch.nn.Upsample(scale_factor=(2, 3), mode="nearest")(x)),
    ("upsample", {"size": (5, 4), "scale": None, "mode": "bilinear"}, [(2, 3, 2)],
     lambda x: torch.nn.Upsample(size=(5, 4), mode="bilinear", align_corners=False)(x)),
    ("permute", {"order": (2, 0, 1)}, [(2, 3, 4)], lambda x: x.permute(0, 3, 1, 2)),
    ("scale", {"factor": 0.25}, [(2, 3, 4)], lambda x: x * 0.25),
]


@pytest.mark.parametrize(("name", "attrs", "shapes", "reference"), EXPRESSIONS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(EXPRESSIONS)])
def test_each_inline_expression_computes_its_torch_reference(name, attrs, shapes, reference):
    xs = [torch.randn(2, *s) for s in shapes]
    assert torch.equal(_run(name, attrs, xs), reference(*xs))


def test_the_joins_concatenate_sum_and_multiply():
    a, b, c = torch.randn(2, 2, 3, 3), torch.randn(2, 3, 3, 3), torch.randn(2, 2, 3, 3)
    assert torch.equal(_run("concat", {}, [a, b, c]), torch.cat([a, b, c], 1))
    assert torch.equal(_run("add", {}, [a, c, a]), a + c + a)
    gate = torch.randn(2, 2, 1, 1)
    assert torch.equal(_run("mul", {}, [a, gate]), a * gate)


def test_the_window_formula_is_pytorchs_on_every_small_configuration():
    """Every size, kernel, stride, padding and dilation up to small bounds, both rounding
    modes: the max pool record's output size, or its refusal and the least size it asks for,
    as MaxPool1d computes them (torch bounds the padding by half the undilated kernel)."""
    from netdsl.ir.ops import ShapeProblem

    for k in range(1, 5):
        for d in range(1, 3):
            extent = d * (k - 1) + 1
            for s in range(1, 4):
                for p in range(0, extent // 2 + 1):
                    for ceil in (False, True):
                        pool = torch.nn.MaxPool1d(k, s, p, d, ceil_mode=ceil)
                        attrs = {"kernel": (k, 1), "stride": (s, 1), "pad": (p, 0),
                                 "dilation": (d, 1), "ceil": ceil}
                        asked, first = None, None  # the least size asked for, and accepted
                        for size in range(1, 12):
                            try:
                                torch_out = pool(torch.zeros(1, 1, size)).shape[-1]
                            except RuntimeError:
                                torch_out = 0
                            try:
                                ours = OPS["maxpool"].infer(attrs, [(1, size, 1)])[1]
                            except ShapeProblem as problem:
                                ours = 0
                                if problem.expected.startswith("at least"):
                                    asked = int(problem.expected.split()[-1].split("x")[0])
                            assert ours == torch_out, (k, d, s, p, ceil, size)
                            first = first or (size if torch_out else None)
                        assert asked is None or asked == first, (k, d, s, p, ceil)


@pytest.mark.parametrize("name", ["add", "mul"])
@pytest.mark.parametrize("operands", [1, 2])
def test_a_merge_of_one_tensor_is_that_tensor(name, operands):
    xs = [torch.randn(1, 4, 3, 3) for _ in range(operands)]
    names = [f"x{i}" for i in range(operands)]
    y = eval(OPS[name].torch.expr({}, names), {"torch": torch}, dict(zip(names, xs, strict=True)))
    shares = y.untyped_storage().data_ptr() == xs[0].untyped_storage().data_ptr()
    assert OPS[name].writes_nothing({}, [(4, 3, 3)] * operands, (4, 3, 3)) == shares
