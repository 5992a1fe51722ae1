"""Writing the spec: expressions to token templates, instances of one module class with the
same template to one parametric block, and the network's body one line per element.

A template is a list of text and :class:`Hole` tokens; holes are the values that may differ
between instances (channels, kernels, strides, whether a shortcut projects). Holes constant
over a block's instances become literals (dropped where they equal the op's default), the
others become the block's parameters.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from torch import nn

from ..ir.identifiers import numbered
from ..ir.ops import OPS, REQUIRED, RESERVED_NAMES, normalize
from .structure import Add, Aux, Call, Chain, Concat, Layer, Residual, Scope, Structure

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
COMMA = "\x01"  # ", " unless it directly follows "(": keyword holes may all vanish
NAMED = {"out": "c", "kernel": "k"}  # readable parameter names for the values of these


@dataclass(frozen=True)
class Hole:
    kind: str  # "pos": a value; "kw": ", name=value" or nothing; "short": a projection
    name: str
    value: object
    default: object = None


def literal(value: object, name: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == value[1] and name not in ("kernel", "size", "k"):
            return str(value[0])
        return "x".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    raise ValueError(f"no netdsl literal for {value!r}")


def key(tokens: list) -> tuple:
    return tuple(t if isinstance(t, str) else (t.kind, t.name, t.default) for t in tokens)


@dataclass
class Block:
    name: str
    required: list[str]
    defaults: dict[str, object]
    body: str


class Writer:
    def __init__(self, structure: Structure):
        self.s = structure
        self.blocks: list[Block] = []
        self.calls: dict[str, list] = {}  # scope qualname -> tokens of its call
        self.names: set[str] = set()

    # --- templates -------------------------------------------------------------------
    def tokens(self, e) -> list:
        label = [f"{e.label}: "] if getattr(e, "label", None) else []
        if isinstance(e, Layer):
            return label + self.layer(e)
        if isinstance(e, Call):
            return label + self.call(e.scope)
        if isinstance(e, Chain):
            return self.chain(e)
        if isinstance(e, Concat | Add):
            word = "concat(" if isinstance(e, Concat) else "add("
            return [word, *self.joined([self.branch(b) for b in e.branches], ", "), ")"]
        if isinstance(e, Residual):
            return ["residual(", *self.chain(e.body), Hole("short", "", e.shortcut), ")"]
        if isinstance(e, Aux):
            return label + ["aux(", *self.chain(e.body), ")"]
        raise AssertionError(type(e))

    def branch(self, chain: Chain) -> list:
        return self.chain(chain) if chain.elems else ["identity"]

    @staticmethod
    def joined(parts: list[list], sep: str) -> list:
        out: list = []
        for i, part in enumerate(parts):
            out += ([sep] if i else []) + part
        return out

    def layer(self, e: Layer) -> list:
        attrs = dict(e.attrs)
        if OPS[e.op].stride_is_implied(attrs):
            del attrs["stride"]
        out: list = [e.op, "("]
        for p in OPS[e.op].params:
            if p.name not in attrs:
                continue
            if p.default is REQUIRED:
                out += ([", "] if len(out) > 2 else []) + [Hole("pos", p.name, attrs[p.name])]
            else:
                default = normalize(p, p.default) if p.default is not None else None
                out.append(Hole("kw", p.name, attrs[p.name], default))
        return out + [")"]

    def call(self, qualname: str) -> list:
        scope = self.s.scopes[qualname]
        if self.inline(scope):
            return ["(", *self.chain(scope.body), ")"]
        return list(self.calls[qualname])

    def inline(self, scope: Scope) -> bool:
        return issubclass(scope.cls, CONTAINERS) and not scope.qualname.rsplit(".")[-1].isdigit()

    def chain(self, chain: Chain) -> list:
        parts = [self.tokens(e) for e in chain.elems]
        plain = [getattr(e, "label", None) is None and not isinstance(e, Aux)
                 for e in chain.elems]
        out, i = [], 0
        while i < len(parts):
            period, count = self.run(parts, plain, i)
            if count > 1:
                seg = self.joined(parts[i:i + period], " -> ")
                out.append(["stack(", *seg, f", {count})"])
            else:
                out.append(parts[i])
            i += period * count
        return self.joined(out, " -> ")

    @staticmethod
    def run(parts: list, plain: list, i: int) -> tuple[int, int]:
        """The longest repetition starting at ``i``: (period, repeats)."""
        best = (1, 1)
        for period in range(1, 5):
            seg = parts[i:i + period]
            if len(seg) < period or not all(plain[i:i + period]):
                break
            count = 1
            while parts[i + count * period:i + (count + 1) * period] == seg and all(
                    plain[i + count * period:i + (count + 1) * period]):
                count += 1
            if count > 1 and period * count > best[0] * best[1]:
                best = (period, count)
        return best

    # --- blocks -------------------------------------------------------------------------
    def height(self, qualname: str) -> int:
        found = [0]

        def visit(e):
            if isinstance(e, Call):
                found.append(self.height(e.scope))
            for child in getattr(e, "elems", []) + getattr(e, "branches", []):
                visit(child)
            for attr in ("body",):
                if isinstance(getattr(e, attr, None), Chain):
                    visit(getattr(e, attr))
        visit(self.s.scopes[qualname].body)
        return 1 + max(found)

    def make_blocks(self) -> None:
        scopes = [s for q, s in self.s.scopes.items() if q and not self.inline(s)]
        for h in sorted({self.height(s.qualname) for s in scopes}):
            groups: dict[tuple, list[tuple[Scope, list]]] = {}
            for scope in (s for s in scopes if self.height(s.qualname) == h):
                tokens = self.tokens(scope.body)
                groups.setdefault((scope.cls, key(tokens)), []).append((scope, tokens))
            for (cls, _), members in groups.items():
                self.block(cls, members)

    def block_name(self, cls: type) -> str:
        base = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", cls.__name__).lower()
        base = re.sub(r"[^a-z0-9_]", "_", base).strip("_") or "block"
        if base[0].isdigit() or base in RESERVED_NAMES or base in OPS:
            base = f"{base}_block"
        return numbered(base, self.names, "_")

    def block(self, cls: type, members: list[tuple[Scope, list]]) -> None:
        first = members[0][1]
        holes = [j for j, t in enumerate(first) if isinstance(t, Hole)]
        params: dict[str, list] = {}  # name -> values per instance
        defaults: dict[str, object] = {}
        body = list(first)
        for j in holes:
            values = [m[1][j].value for m in members]
            body[j] = self.fill(first[j], values, params, defaults)
        required = [p for p in params if p not in defaults]
        block = Block(self.block_name(cls), required, defaults, clean("".join(body)))
        self.blocks.append(block)
        for i, (scope, _) in enumerate(members):
            args: list = []
            for p in required:
                args += ([", "] if args else []) + [Hole("pos", p, params[p][i])]
            args += [Hole("kw", p, params[p][i], defaults[p]) for p in defaults]
            self.calls[scope.qualname] = [block.name] + (["(", *args, ")"] if params
                                                                 else [])

    def fill(self, hole: Hole, values: list, params: dict, defaults: dict) -> str:
        if hole.kind == "short":
            label = next((v for v in values if v), None)
            return f", shortcut={label}: project" if label else ""
        if all(v == values[0] for v in values):
            return render_hole(hole, hole.value)
        expr = next((p for p, vs in params.items() if vs == values), None)
        if expr is None and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            for p, vs in params.items():
                k = next((k for k in range(2, 9) if vs[0] * k == values[0]), None)
                if k and all(isinstance(a, int) and a * k == b for a, b in zip(vs, values, strict=True)):
                    expr = f"{k} * {p}"
                    break
        if expr is None:
            expr = base = NAMED.get(hole.name, hole.name)
            n = 1
            while expr in params:
                n += 1
                expr = f"{base}{n}"
            params[expr] = values
            if hole.kind == "kw":
                defaults[expr] = Counter(values).most_common(1)[0][0]
        return expr if hole.kind == "pos" else f"{COMMA}{hole.name}={expr}"


def render_hole(hole: Hole, value: object) -> str:
    if hole.kind == "pos":
        return literal(value, hole.name)
    if hole.kind == "short":
        return f", shortcut={value}: project" if value else ""
    if value == hole.default:
        return ""
    return f"{COMMA}{hole.name}={literal(value, hole.name)}"


def text(tokens: list) -> str:
    out = "".join(t if isinstance(t, str) else render_hole(t, t.value) for t in tokens)
    return clean(out)


def clean(out: str) -> str:
    out = out.replace("(" + COMMA, "(").replace(COMMA, ", ")
    return re.sub(r"\b([A-Za-z_][A-Za-z0-9_]*)\(\)", r"\1", out)
