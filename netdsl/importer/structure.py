"""From traced items to netdsl's structure: each module scope becomes a chain of layers,
calls of child scopes, concats, residual sums and auxiliary branches.

Within one scope, every child module collapses to one unit with one input and one output;
the scope's dataflow must then be series-parallel: a fork's branches meet again at one
concat or add (or end in an auxiliary output).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ModuleImportError
from ..ir.layers.conv import CONV
from ..ir.layers.norm import BN
from ..ir.layers.tensor import CONCAT
from ..ir.ops import OPS
from .trace import Item, Traced

IN = "<in>"  # the unit key of a scope's input value


@dataclass
class Layer:
    op: str
    attrs: dict
    label: str | None


@dataclass
class Call:
    scope: str  # qualified name of the child module
    label: str | None


@dataclass
class Chain:
    elems: list = field(default_factory=list)


@dataclass
class Concat:
    branches: list[Chain]


@dataclass
class Residual:
    body: Chain
    shortcut: str | None  # the label of a projection shortcut; None: identity


@dataclass
class Add:
    branches: list[Chain]


@dataclass
class Aux:
    body: Chain
    label: str | None


@dataclass
class Scope:
    qualname: str
    cls: type
    body: Chain
    shape: tuple = ()  # output shape


def label_of(name: str, stateful: bool = True) -> str | None:
    """The label reproducing a module's own name; numbered children and stateless layers are
    left to netdsl's numbering."""
    last = name.rsplit(".", 1)[-1]
    if last.isdigit() or not stateful:
        return None
    return last


class Structure:
    """Every module scope of a traced module, as expressions (``scopes[""]`` is the root)."""

    def __init__(self, traced: Traced):
        self.t = traced
        self.items = traced.items
        self.scopes: dict[str, Scope] = {}
        self.build("", traced.output)

    def build(self, qualname: str, output: int) -> None:
        depth = 0 if qualname == "" else len(self.path_of(qualname))
        members = [it for it in self.items if self.inside(it, qualname, depth)]
        unit = {it.id: self.unit_key(it, depth) for it in members}
        view = _ScopeView(self, qualname, members, unit, output)
        cls = self.t.classes.get(qualname, type(None))
        self.scopes[qualname] = Scope(qualname, cls, view.walk(), self.items[output].shape)
        for key, last in view.children.items():
            self.build(key, last)

    def path_of(self, qualname: str) -> tuple[str, ...]:
        for it in self.items:
            if qualname in it.path:
                return it.path[:it.path.index(qualname) + 1]
        return (qualname,)

    @staticmethod
    def inside(item: Item, qualname: str, depth: int) -> bool:
        return qualname == "" and item.id != 0 or (  # item 0 is the input
            len(item.path) >= depth and depth > 0 and item.path[depth - 1] == qualname)

    @staticmethod
    def unit_key(item: Item, depth: int) -> object:
        return item.path[depth] if len(item.path) > depth else item.id


class _ScopeView:
    """One scope's units and the walk that turns their dataflow into a chain."""

    def __init__(self, owner: Structure, qualname: str, members: list[Item], unit: dict,
                 output: int):
        self.owner, self.qualname, self.unit = owner, qualname, unit
        self.order: list = []
        self.consumers: dict = {}
        self.last: dict = {}  # unit -> the item giving its value
        self.inputs: dict = {}  # unit -> the units it reads, in argument order
        for it in members:
            u = unit[it.id]
            if u not in self.consumers:
                self.order.append(u)
                self.consumers[u] = []
                self.inputs[u] = []
            self.last[u] = it.id
            for i in it.inputs:
                src = unit.get(i, IN)
                if src != u and (isinstance(u, int) or src not in self.inputs[u]):
                    self.inputs[u].append(src)
        self.consumers[IN] = []
        for u in self.order:
            for src in dict.fromkeys(self.inputs[u]):
                self.consumers.setdefault(src, []).append(u)
                if src not in (IN, u) and src not in self.last:
                    raise self.error(u, "reads a value from outside its module")
            if len(set(self.inputs[u])) > 1 and not isinstance(u, int):
                raise self.error(u, "a module with several inputs has no netdsl form")
        self.out = unit.get(output, IN)
        self.main = self.ancestors(self.out)
        self.children = {u: self.last[u] for u in self.order if isinstance(u, str)}
        self.rank = {u: i for i, u in enumerate(self.order)}

    def error(self, u, message: str) -> ModuleImportError:
        name = u if isinstance(u, str) else (self.owner.items[u].name or self.qualname)
        return ModuleImportError(f"module '{name or 'top level'}': {message}")

    def ancestors(self, u) -> set:
        seen, stack = set(), [u]
        while stack:
            v = stack.pop()
            if v not in seen:
                seen.add(v)
                stack.extend(self.inputs.get(v, []))
        return seen

    def descendants(self, u) -> set:
        seen, stack = set(), [u]
        while stack:
            v = stack.pop()
            if v not in seen:
                seen.add(v)
                stack.extend(self.consumers.get(v, []))
        return seen

    def walk(self) -> Chain:
        chain, _ = self.follow(IN, None)
        return chain

    def follow(self, v, stop) -> tuple[Chain, object]:
        """The chain from value ``v`` on, up to the join ``stop`` (or the end); returns it and
        the last value before ``stop``."""
        chain = Chain()
        while True:
            main = [c for c in self.consumers[v] if c in self.main]
            for c in self.consumers[v]:
                if c not in self.main:
                    chain.elems.append(self.aux(c))
            if not main:
                return chain, v
            if len(main) == 1:
                c = main[0]
                if len(self.inputs[c]) > 1:
                    if c == stop:
                        return chain, v
                    raise self.error(c, "branches that do not meet at one concat or add")
                chain.elems.append(self.element(c))
                v = c
                continue
            join = self.join(main)
            chain.elems.append(self.fork(v, main, join))
            v = join

    def join(self, consumers: list) -> object:
        common = set.intersection(*(self.descendants(c) for c in consumers))
        if not common:
            raise self.error(consumers[0], "a fork whose branches never meet")
        return min(common, key=lambda u: self.rank[u])

    def fork(self, v, consumers: list, join) -> object:
        if not isinstance(join, int) or OPS[self.owner.items[join].op].arity != -1:
            raise self.error(join, "branches that do not meet at one concat or add")
        branches = []
        consumers = list(consumers)
        while (inner := self.inner_join(consumers, join)) is not None:
            # some branches meet earlier (Inception-ResNet: a concat inside the residual)
            group = [c for c in consumers if inner in self.descendants(c)]
            chain, last = self.follow(inner, join)
            chain.elems.insert(0, self.fork(v, group, inner))
            branches.append((chain, last))
            consumers = [c for c in consumers if c not in group]
        for c in consumers:
            if c == join:
                branches.append((Chain(), v))
                continue
            chain, last = self.follow(c, join)
            chain.elems.insert(0, self.element(c))
            branches.append((chain, last))
        position = {u: i for i, u in reversed(list(enumerate(self.inputs[join])))}
        branches.sort(key=lambda b: position.get(b[1], len(position)))
        chains = [b[0] for b in branches]
        made = Concat(chains) if self.owner.items[join].op == CONCAT.name else self.residual(chains)
        made.shape = self.owner.items[join].shape
        return made

    def inner_join(self, consumers: list, join) -> object:
        """The first join before ``join`` that two or more of ``consumers`` reach, if any."""
        after = self.descendants(join)
        reach = [self.descendants(c) for c in consumers]
        joins = [u for u in set().union(*reach) - after
                 if len(self.inputs.get(u, ())) > 1 and sum(u in r for r in reach) > 1]
        return min(joins, key=lambda u: self.rank[u]) if joins else None

    def residual(self, chains: list[Chain]) -> object:
        if len(chains) == 2:
            for body, short in (chains, chains[::-1]):
                if not short.elems:
                    return Residual(body, None)
                if len(short.elems) == 1 and isinstance(short.elems[0], Call) \
                        and self.is_projection(short.elems[0].scope):
                    return Residual(body, short.elems[0].label)
        return Add(chains)

    def is_projection(self, qualname: str) -> bool:
        """A ``Sequential(Conv2d 1x1 without bias, BatchNorm2d)``: netdsl's ``project``."""
        inner = [it for it in self.owner.items if qualname in it.path]
        if len(inner) != 2 or [it.op for it in inner] != [CONV.name, BN.name]:
            return False
        conv, bn = inner
        return (conv.name == f"{qualname}.0" and bn.name == f"{qualname}.1"
                and conv.attrs["kernel"] == (1, 1) and conv.attrs["pad"] == (0, 0)
                and conv.attrs["groups"] == 1 and conv.attrs["dilation"] == (1, 1)
                and not conv.attrs["bias"] and bn.attrs == {"eps": 1e-5, "momentum": 0.1,
                                                            "affine": True})

    def element(self, u) -> object:
        if isinstance(u, str):
            made = Call(u, label_of(u))
            made.shape = self.owner.items[self.last[u]].shape
            return made
        it = self.owner.items[u]
        made = Layer(it.op, it.attrs, label_of(it.name, it.stateful) if it.name else None)
        made.shape = it.shape
        return made

    def aux(self, c) -> Aux:
        chain, _ = self.follow(c, None)
        chain.elems.insert(0, self.element(c))
        label = None
        if len(chain.elems) == 1 and getattr(chain.elems[0], "label", None):
            label, chain.elems[0].label = chain.elems[0].label, None
        return Aux(chain, label)
