"""The zoo's family files are an API (docs/zoo.md): users import them and plug their own
blocks in. Each family's contract header (the `# Contract` lines at its top) lists its
networks and blocks with their parameters and every call it makes of a block it is given;
these tests hold the header to the code and plug a user-written block into every family
that takes one, so a change to what a family passes its user's blocks fails here first."""

import dataclasses
import re
from pathlib import Path

import pytest

import netdsl
from netdsl.syntax import tree

SPECS = Path(__file__).resolve().parents[1] / "specs"
FAMILIES = sorted(p.stem.removesuffix("_family") for p in SPECS.glob("*_family.net"))

# A contract line: `#   network NAME(params)`, `#   block NAME(params)`, `#   calls NAME(args)`,
# `#   applies NAME`; more-indented lines under one are prose for people.
CONTRACT_START = re.compile(r"^#   (network|inline block|block|calls|applies) ")
CONTRACT_LINE = re.compile(r"^#   (network|inline block|block|calls|applies) (\w+)(\(.*\))?\s*$")


# --- a user's spec for every family that takes a block ----------------------------------

# What a user writes: their own block, plugged into the family, and the parameter count
# that block gives the network, counted by hand (conv: in * out * k * k + bias; bn: 2 * c).
USER_SPECS = {
    # a one-convolution residual unit written for ResNet's layers: it must accept stride,
    # groups and base_width (it ignores the last two)
    "resnet": ("""
block mine(c, stride=1, groups=1, base_width=64) = residual(
    conv(c, 3x3, stride=stride, pad=1, bias=false) -> bn, shortcut=project) -> relu
network user = resnet(mine, [1, 1, 1, 1], num_classes=10)
""", {"input": (3, 32, 32)},
        3 * 64 * 49 + 128                                   # conv1, bn1
        + 64 * 64 * 9 + 128                                 # layer1: same shape, no projection
        + 64 * 128 * 9 + 256 + 64 * 128 + 256               # layer2 and its projection
        + 128 * 256 * 9 + 512 + 128 * 256 + 512             # layer3
        + 256 * 512 * 9 + 1024 + 256 * 512 + 1024           # layer4
        + 512 * 10 + 10),                                   # fc
    # a plain conv-norm-silu body for EfficientNet's stages (no expansion, no SE)
    "efficientnet": ("""
block plain(cin, t, k, stride, c, norm) = conv(c, k, stride=stride, pad=k // 2, bias=false)
    -> norm -> silu
network user = efficientnet(cna(16, 3, bn, 2) -> stage(plain, 1, 3, 1, 16, 2, 0, 3, bn)
    -> stage(plain, 1, 3, 2, 24, 1, 2, 3, bn), 0.2, 32, num_classes=10)
""", {},
        3 * 16 * 9 + 32                                     # stem cna
        + 2 * (16 * 16 * 9 + 32)                            # two plain 16 -> 16 (residual)
        + 16 * 24 * 9 + 48                                  # plain 16 -> 24, stride 2
        + 24 * 10 + 10),                                    # classifier
    # the user's own rows between MobileNetV3's stem and its widening 1x1
    "mobilenet_v3": ("""
block my_rows = conv(24, 3x3, stride=2, pad=1, bias=false) -> bn -> relu6
network user = mobilenet_v3(my_rows, 64, num_classes=10)
""", {"input": (3, 32, 32)},
        3 * 16 * 9 + 32                                     # stem cna(16, 3, stride=2)
        + 16 * 24 * 9 + 48                                  # my_rows
        + 24 * 144 + 288                                    # widen: cna(6 * 24)
        + 144 * 64 + 64 + 64 * 10 + 10),                    # classifier
    # a linear head on the dilated ResNet-50
    "segmentation": ("""
block my_head(num_classes) = conv(num_classes, 1x1)
network user = segmentation(my_head, size=64)
""", {},
        23_508_032                                          # torchvision resnet50 less its fc
        + 2048 * 21 + 21),                                  # my_head, 21 classes
    # a small feature extractor built from the family's own fire module
    "squeezenet": ("""
block tiny = conv(32, 3x3, stride=2) -> relu -> fire(8, 16, 16)
network user = squeezenet(tiny, num_classes=10)
""", {"input": (3, 32, 32)},
        3 * 32 * 9 + 32                                     # conv
        + 32 * 8 + 8 + 8 * 16 + 16 + 8 * 16 * 9 + 16        # fire: squeeze, expand1x1, 3x3
        + 32 * 10 + 10),                                    # classifier's 1x1 convolution
}


def _user_spec(tmp_path, family: str, text: str) -> Path:
    """A user's spec in a folder of its own, importing the family as users do."""
    spec = tmp_path / "user.net"
    spec.write_text(f'import "{family}_family.net"\n' + text.lstrip("\n"))
    return spec


@pytest.mark.parametrize("family", sorted(USER_SPECS))
def test_a_user_written_block_plugged_into_the_family_compiles(tmp_path, family):
    text, params, expected = USER_SPECS[family]
    graph = netdsl.compile(_user_spec(tmp_path, family, text), **params)
    assert graph.name == "user"
    assert netdsl.summary(graph).total_params == expected


def test_every_family_that_takes_a_block_has_a_user_spec():
    """A new family whose parameters take a block needs a user's case above (and a stale
    case for a family that no longer takes one is an error too)."""
    takes_blocks = {f for f in FAMILIES if _block_parameters(_definitions(f))}
    assert takes_blocks == set(USER_SPECS)


def test_a_unit_written_for_the_old_resnet_contract_is_refused_where_the_family_calls_it(
        tmp_path):
    """The breaking change docs/zoo.md records: a unit written for `unit(c, stride=)`."""
    old = 'block mine(c, stride=1) = conv(c, 3x3, stride=stride, pad=1)\n' \
          'network user = resnet(mine, [1, 1, 1, 1])\n'
    with pytest.raises(netdsl.NetDSLError, match="mine has no parameter 'groups'") as caught:
        netdsl.compile(_user_spec(tmp_path, "resnet", old))
    assert caught.value.filename.endswith("resnet_family.net")


# --- the header matches the code ----------------------------------------------------------

def _definitions(family: str) -> dict[str, tree.Node]:
    path = SPECS / f"{family}_family.net"
    module = netdsl.parse(path.read_text(), str(path))
    return {item.name: item for item in module.items
            if isinstance(item, (tree.BlockDef, tree.NetworkDef, tree.NetworkAlias))}


def _contract(family: str) -> list[tuple[str, str, str | None]]:
    """(kind, name, parenthesised text or None) for each contract line of the header."""
    lines = (SPECS / f"{family}_family.net").read_text().splitlines()
    header = lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))]
    contract = [line for line in header if CONTRACT_START.match(line)]
    unreadable = [line for line in contract if not CONTRACT_LINE.match(line)]
    assert not unreadable, f"{family}: contract lines end at their `)`: {unreadable}"
    return [CONTRACT_LINE.match(line).groups() for line in contract]


def _shape(node):
    """A syntax node as nested tuples, without the spans (so two writings compare)."""
    if isinstance(node, tree.Node):
        return (type(node).__name__,) + tuple(
            _shape(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name != "span")
    if isinstance(node, tuple):
        return tuple(_shape(item) for item in node)
    return node


def _signature(params: tuple[tree.Param, ...]) -> list:
    return [(p.name, _shape(p.default)) for p in params]


def _documented_params(text: str | None) -> tuple[list, bool]:
    """The parameters a header line writes, and whether it ends in `...` (parameters derived
    from the others, left out of the contract)."""
    inner = (text or "()")[1:-1].strip()
    derived = inner.endswith("...")
    inner = inner.removesuffix("...").rstrip().rstrip(",")
    block = netdsl.parse(f"block b({inner}) = identity\n" if inner else "block b = identity\n")
    return _signature(block.items[0].params), derived


def _is_derived(param: tree.Param, names: set[str]) -> bool:
    refs = {n.name for n in _walk(param.default) if isinstance(n, tree.Ref)}
    return bool(refs & names)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_header_lists_every_network_and_block_with_its_parameters(family):
    definitions = _definitions(family)
    documented = {name: (kind, text) for kind, name, text in _contract(family)
                  if kind in ("network", "block", "inline block")}
    assert set(documented) == set(definitions), "the header lists other definitions"
    for name, (kind, text) in documented.items():
        item = definitions[name]
        actual = "network" if not isinstance(item, tree.BlockDef) else \
            "inline block" if item.inline else "block"
        assert kind == actual, name
        params, derived = _documented_params(text)
        written = _signature(item.params)
        assert params == written[:len(params)], f"{name}: the header's parameters differ"
        rest = item.params[len(params):]
        if derived:  # `...` stands for parameters computed from the others, at least one
            names = {p.name for p in item.params}
            assert rest and all(p.default and _is_derived(p, names) for p in rest), name
        else:
            assert not rest, f"{name}: the header leaves out {[p.name for p in rest]}"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_header_names_every_block_parameter_the_code_calls(family):
    """`calls`/`applies` lines name exactly the parameters the family uses as a layer."""
    documented = {name for kind, name, _ in _contract(family) if kind in ("calls", "applies")}
    assert documented == _block_parameters(_definitions(family))


def test_docs_zoo_md_lists_every_family_with_its_network_as_the_header_writes_it():
    rows = {line.split("|")[1].strip(): line for line in
            (SPECS.parent / "docs" / "zoo.md").read_text().splitlines()
            if line.startswith("| `") and "_family.net`" in line}
    assert set(rows) == {f"`{family}_family.net`" for family in FAMILIES}
    for family in FAMILIES:
        name, text = next((n, t) for kind, n, t in _contract(family) if kind == "network")
        assert f"`{name}{text}`" in rows[f"`{family}_family.net`"], family


# How to plug a block of a documented signature into each family: a body for it (using the
# header's argument names) and the network that passes it, as `mine`.
HARNESSES = {
    ("resnet", "unit"): ("conv(c, 3x3, pad=1)",
                         "network user = resnet(mine, [1, 1, 1, 1], num_classes=10)",
                         {"input": (3, 32, 32)}),
    ("efficientnet", "features"): ("conv(8, 3x3)", "network user = efficientnet(mine, 0.2, 32)",
                                   {}),
    ("efficientnet", "body"): ("conv(c, k, stride=stride, pad=k // 2) -> norm",
                               "network user = efficientnet(stage(mine, 1, 3, 2, 16, 2, 0, 2, "
                               "bn), 0.2, 32)", {}),
    ("efficientnet", "norm"): ("bn(eps=0.01)", "network user = efficientnet(cna(16, 3, mine, 2)"
                               " -> stage(mb, 1, 3, 1, 16, 1, 0, 1, mine), 0.2, 32)", {}),
    ("efficientnet", "act"): ("relu", "network user = efficientnet(cna(16, 3, bn, 2, act=mine),"
                              " 0.2, 32)", {}),
    ("mobilenet_v3", "rows"): ("conv(24, 1x1)", "network user = mobilenet_v3(mine, 64)",
                               {"input": (3, 32, 32)}),
    ("mobilenet_v3", "act"): ("relu6", "network user = mobilenet_v3(bneck(3, 64, 24, true, "
                              "mine, 2), 64)", {"input": (3, 32, 32)}),
    ("segmentation", "head"): ("conv(num_classes, 1x1)",
                               "network user = segmentation(mine, size=32)", {}),
    ("squeezenet", "version"): ("conv(32, 3x3, stride=2) -> relu",
                                "network user = squeezenet(mine)", {"input": (3, 32, 32)}),
}


def _documented_calls() -> list[tuple[str, str, list[tuple[str | None, ...]]]]:
    """(family, parameter, the calls written for it) from every header: a call is its
    arguments, None for each positional one and the name of each keyword."""
    found: dict[tuple[str, str], list] = {}
    for family in FAMILIES:
        for kind, name, text in _contract(family):
            if kind in ("calls", "applies"):
                args = [a.strip() for a in (text or "()")[1:-1].split(",") if a.strip()]
                call = tuple(a[:-1] if a.endswith("=") else None for a in args)
                assert kind == "applies" or text, f"{family}: calls {name} without arguments"
                found.setdefault((family, name), []).append((call, args))
    return [(f, n, calls) for (f, n), calls in sorted(found.items())]


def _block_of_signature(calls) -> str:
    """`block mine(...)` taking exactly what the calls pass, and nothing else (so a keyword
    the family adds fails): the positional arguments under the header's names, the keywords
    every call passes without a default (so one the family stops passing fails), the others
    with one."""
    (first, names), *_ = calls
    positional = [names[i] for i, key in enumerate(first) if key is None]
    keywords = [key for call, _ in calls for key in call if key]
    always = [k for k in dict.fromkeys(keywords) if all(k in call for call, _ in calls)]
    sometimes = [f"{k}=none" for k in dict.fromkeys(keywords) if k not in always]
    assert all(len([a for a in call if a is None]) == len(positional) for call, _ in calls)
    params = positional + always + sometimes
    return f"block mine({', '.join(params)})" if params else "block mine"


def test_every_documented_call_has_a_harness():
    assert {(f, n) for f, n, _ in _documented_calls()} == set(HARNESSES)


@pytest.mark.parametrize(("family", "name", "calls"), _documented_calls(),
                         ids=[f"{f}-{n}" for f, n, _ in _documented_calls()])
def test_a_block_with_exactly_the_documented_signature_compiles(tmp_path, family, name, calls):
    body, network, params = HARNESSES[family, name]
    text = f"{_block_of_signature(calls)} = {body}\n{network}\n"
    assert netdsl.compile(_user_spec(tmp_path, family, text), **params).name == "user"


# --- which parameters a family uses as a layer ---------------------------------------------

# builtins and how many of their leading positional arguments are layers (None: all)
LAYER_ARGUMENTS = {"residual": 1, "stack": 1, "aux": 1, "concat": None, "add": None, "mul": None}


def _walk(node):
    if isinstance(node, tree.Node):
        yield node
        for f in dataclasses.fields(node):
            if f.name != "span":
                yield from _walk(getattr(node, f.name))
    elif isinstance(node, tuple):
        for item in node:
            yield from _walk(item)


def _layer_refs(node, params: set[str], as_layer: bool) -> set[str]:
    """The parameters `node` calls or applies as a layer (a bare name in a chain, under a
    label, as a body, or as a layer argument of a builtin)."""
    if isinstance(node, tree.Ref):
        return {node.name} & params if as_layer else set()
    if isinstance(node, tree.Call):
        func = node.func.name if isinstance(node.func, tree.Ref) else None
        found = {func} & params
        layers = LAYER_ARGUMENTS.get(func, 0)
        for i, arg in enumerate(node.args):
            found |= _layer_refs(arg, params, layers is None or i < layers)
        for kwarg in node.kwargs:
            found |= _layer_refs(kwarg.value, params, False)
        return found
    if isinstance(node, (tree.Chain, tree.Lines)):
        return set().union(*(_layer_refs(i, params, True) for i in node.items))
    if isinstance(node, tree.Label):
        return _layer_refs(node.body, params, True)
    if isinstance(node, tree.Assign):
        return _layer_refs(node.value, params, True)
    if isinstance(node, tree.Cond):
        return (_layer_refs(node.then, params, as_layer) | _layer_refs(node.test, params, False)
                | _layer_refs(node.otherwise, params, as_layer))
    if isinstance(node, tree.Node):
        return set().union(set(), *(_layer_refs(child, params, False) for child in _children(node)))
    return set()


def _children(node: tree.Node):
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if f.name != "span":
            yield from value if isinstance(value, tuple) else (value,)


def _block_parameters(definitions: dict[str, tree.Node]) -> set[str]:
    found = set()
    for item in definitions.values():
        params = {p.name for p in item.params}
        bodies = item.body if isinstance(item, tree.NetworkDef) else \
            (item.body,) if isinstance(item, tree.BlockDef) else ()
        for body in bodies:
            found |= _layer_refs(body, params, True)
    return found
