"""Every tensor of every spec starts as its init scheme says, and each scheme draws from the
reference implementation's distributions.

The bounds come from the scheme tables (netdsl/ir/init.py) and PyTorch's documented layer
defaults, not from the emitter, so a rule that stops setting a tensor (a conv bias left as
the meta device's garbage, values around 5e24) fails here whatever the tensor's size.
"""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from torch import nn

import netdsl
from netdsl.ir.init import SCHEMES
from netdsl.ir.ops import OPS
from netdsl.torch.emit import module_class

from conftest import all_specs

SPECS = [s for s in all_specs() if "family" not in s.name]


def drawing_rules(graph) -> set[tuple]:
    """The ways a graph's tensors are drawn: what decides the expected distribution of a
    tensor below (scheme and its arguments, op, init role, an explicit std, a layer scale,
    whether a bias exists); shapes only scale it."""
    return {(graph.init, n.op, OPS[n.op].init_role, dict(n.attrs).get("std") is not None,
             n.is_parameter, dict(n.attrs).get("bias")) for n in graph.nodes if n.op in OPS}


def smallest_spec_per_rule() -> list:
    """For each drawing rule any zoo spec uses, the smallest spec that uses it: every rule is
    checked on real tensors at about a tenth of the zoo's parameters (drawing all 3.7 billion
    took a minute of the suite). Every spec's tensors are still matched to their layers, on
    the meta device, by test_every_tensor_belongs_to_a_layer."""
    figures = []
    for spec in SPECS:
        graph = netdsl.compile(spec)
        figures.append((netdsl.summary(graph).total_params, spec.stem, spec, drawing_rules(graph)))
    chosen = {}
    for _, _, spec, rules in sorted(figures, key=lambda f: f[:2]):
        for rule in rules:
            chosen.setdefault(rule, spec)
    return sorted(set(chosen.values()))


DRAWN = smallest_spec_per_rule()


def fan(weight: torch.Tensor, mode: str) -> int:
    """PyTorch's fan_in / fan_out of a weight (``torch.nn.init`` documents the rule)."""
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive if mode == "in" else weight.shape[0] * receptive


def expected(role: str | None, scheme: str, args: tuple, tensor: str, weight: torch.Tensor,
             std: float | None) -> tuple[str, float]:
    """(kind, scale) a tensor must follow: ("uniform", bound), ("normal", std),
    ("trunc", 2.0) or ("constant", value)."""
    rules = SCHEMES[scheme].rules.get(role, {}) if role else {}
    if std is not None and tensor == "weight":
        return "trunc", 2.0
    rule = rules.get(tensor)
    if rule is None:  # PyTorch's own default for the layer
        if role == "norm":
            return "constant", 1.0 if tensor == "weight" else 0.0
        return "uniform", 1 / math.sqrt(max(1, fan(weight, "in")))
    if "kaiming_normal_" in rule:
        return "normal", math.sqrt(2 / fan(weight, "out"))
    if "trunc_normal_" in rule:
        return "trunc", 2.0
    if "normal_" in rule:
        return "normal", 0.01
    return "constant", 1.0 if "ones_" in rule else 0.0


def check_tensor(name: str, value: torch.Tensor, kind: str, scale: float) -> None:
    assert torch.isfinite(value).all(), f"{name}: not finite"
    biggest = value.abs().max().item() if value.numel() else 0.0
    if kind == "constant":
        assert torch.all(value == scale), f"{name}: expected all {scale}"
    elif kind == "uniform":
        assert biggest <= scale * (1 + 1e-6), f"{name}: |x| {biggest} > bound {scale}"
    elif kind == "trunc":
        assert biggest <= scale, f"{name}: |x| {biggest} outside the truncation"
    else:  # normal: 7 standard deviations is 3e-12 per value, never met by chance
        assert biggest <= 7 * scale, f"{name}: |x| {biggest} > 7 std ({scale})"
        if value.numel() >= 10_000:
            assert abs(value.std().item() / scale - 1) < 0.05, f"{name}: std {value.std()}"


def tensor_roles(model, graph) -> dict[str, str]:
    """Each tensor of the built model by what it is: a layer scale, a batch-norm statistic,
    or a tensor of the layer of that name (never of no layer)."""
    nodes = {n.name: n for n in graph.nodes if n.name}
    roles = {}
    for name, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        own.update(module.named_buffers(recurse=False))
        for tensor in own:
            full = f"{name}.{tensor}" if name else tensor
            if full in nodes and nodes[full].is_parameter:
                roles[full] = "scale"
            elif tensor in ("running_mean", "num_batches_tracked", "running_var"):
                roles[full] = "statistic"
            else:
                assert name in nodes, f"{full}: a tensor of no layer"
                roles[full] = "layer"
    return roles


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_tensor_belongs_to_a_layer(spec):
    graph = netdsl.compile(spec)
    cls = module_class(graph)
    # the emitted class on the meta device, its scheme not run: drawing on meta tensors goes
    # through torch's Python reference ops (10 s for EfficientNet-V2-L, 0.5 s without)
    with torch.device("meta"), mock.patch.object(cls, "reset_parameters", lambda self: None,
                                                 create=True):
        model = cls()
    assert tensor_roles(model, graph).keys() == model.state_dict().keys()


def test_the_drawn_specs_cover_every_rule_of_the_zoo():
    used = set().union(*(drawing_rules(netdsl.compile(s)) for s in SPECS))
    drawn = set().union(*(drawing_rules(netdsl.compile(s)) for s in DRAWN))
    assert drawn == used and len(DRAWN) < len(SPECS)


@pytest.mark.parametrize("spec", DRAWN, ids=lambda p: p.stem)
def test_every_tensor_starts_as_the_scheme_says(spec):
    torch.manual_seed(0)
    model = netdsl.build(spec)
    graph = model.netdsl_graph
    scheme, args = graph.init
    nodes = {n.name: n for n in graph.nodes if n.name}
    checked = 0
    for name, module in model.named_modules():
        node = nodes.get(name)
        own = dict(module.named_parameters(recurse=False))
        own.update(module.named_buffers(recurse=False))
        for tensor, value in own.items():
            full = f"{name}.{tensor}" if name else tensor
            if full in nodes and nodes[full].is_parameter:  # a layer scale: its fill
                fill = OPS[nodes[full].op].torch.fill(dict(nodes[full].attrs))
                check_tensor(full, value, "constant", fill)
            elif tensor in ("running_mean", "num_batches_tracked"):
                check_tensor(full, value.float(), "constant", 0.0)
            elif tensor == "running_var":
                check_tensor(full, value, "constant", 1.0)
            else:
                assert node is not None, f"{full}: a tensor of no layer"
                role = OPS[node.op].init_role
                kind, scale = expected(role, scheme, args, tensor, module.weight,
                                       node.attrs.get("std"))
                check_tensor(full, value, kind, scale)
            checked += 1
    assert checked == len(model.state_dict())


# One network per scheme, against the reference implementation's own initialisation.
REFERENCES = [("resnet50.net", "resnet50"), ("vgg16_bn.net", "vgg16_bn"),
              ("googlenet.net", "googlenet"), ("alexnet_torchvision.net", "alexnet")]


@pytest.mark.parametrize(("spec", "reference"), REFERENCES)
def test_each_scheme_draws_from_the_references_distribution(spec, reference):
    import torchvision

    from conftest import SPECS as SPEC_DIR

    torch.manual_seed(0)
    ours = netdsl.build(SPEC_DIR / spec).state_dict()
    kwargs = {"aux_logits": True, "init_weights": True} if reference == "googlenet" else {}
    theirs = getattr(torchvision.models, reference)(weights=None, **kwargs).state_dict()
    assert ours.keys() == theirs.keys()
    schemes = {netdsl.compile(SPEC_DIR / spec).init[0]}
    assert schemes <= set(SCHEMES)
    for key, value in theirs.items():
        mine = ours[key]
        if not value.is_floating_point():
            assert torch.equal(mine, value), key
            continue
        if value.numel() < 1000 or value.std() == 0:
            assert torch.equal(mine.float(), value.float()) or mine.abs().max() <= \
                max(value.abs().max() * 1.5, 1e-6), key
            continue
        ratio = (mine.std() / value.std()).item()
        assert 0.9 < ratio < 1.1, f"{key}: std {mine.std():.4g} vs {value.std():.4g}"
        assert abs(mine.mean().item()) < 0.1 * value.std().item() + 1e-6, key
        assert mine.abs().max() <= value.abs().max() * 1.5 + 1e-6, key


def test_a_scheme_that_left_a_tensor_alone_would_fail_here():
    """The checker itself: a conv bias never set (as the meta device leaves it) is caught."""
    garbage = torch.full((8,), 5e24)
    with pytest.raises(AssertionError, match="bound"):
        check_tensor("conv.bias", garbage, "uniform", 0.1)
    with pytest.raises(AssertionError, match="not finite"):
        check_tensor("conv.weight", torch.tensor([float("nan")]), "normal", 1.0)
    model = nn.Conv2d(3, 4, 3)
    kind, scale = expected("conv", "resnet", (), "bias", model.weight, None)
    assert kind == "uniform" and scale == pytest.approx(1 / math.sqrt(27))
