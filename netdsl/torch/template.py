"""Source templates for the ``.py`` export's classes: code with holes for values.

The export writes a container's ``__init__`` once per container as a tree of text, calls and
:class:`Slot` holes (the values: channels, strides, ...). Containers whose trees agree except
in the values share one class; :func:`resolve` then decides each hole across them: one
literal where all agree, else the block parameter (as the spec names it) that carries it in
every call, ``4 * c`` where it is a whole multiple of one, else a constructor argument of its
own. Values reach the text through :func:`netdsl.torch.source.literal` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.identifiers import identifier
from .source import literal

MISSING = object()
# torch.nn keyword arguments that take a number for a square pair ((3, 3) is written 3)
PAIRS = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding"})


@dataclass
class Slot:
    value: object
    kw: str | None = None  # written kw=value
    default: object = MISSING  # a keyword left out where every call has this value
    pair: bool = False  # a square pair may be written as one number
    hint: str | None = None  # what to call a constructor argument of its own


@dataclass
class Call:
    head: object  # the callee's source, or a Group (named once all classes are known)
    items: list = field(default_factory=list)
    lines: bool = False  # one item a line (nn.Sequential's children)


@dataclass
class Run:
    """``*(item for _ in range(count))``: identical children of an nn.Sequential."""

    count: int
    item: object


@dataclass
class Instance:
    """A child container that is an instance of a generated class (``path`` names it)."""

    path: str


def key(part: object, group_of) -> object:
    """The part with its values left out: equal keys, one class."""
    if isinstance(part, str):
        return part
    if isinstance(part, Slot):
        return ("S", part.kw, repr(part.default), part.pair)
    if isinstance(part, Call):
        head = part.head if isinstance(part.head, str) else id(part.head)
        return ("C", head, part.lines, tuple(key(i, group_of) for i in part.items))
    if isinstance(part, Run):
        return ("R", part.count, key(part.item, group_of))
    if isinstance(part, Instance):
        return ("I", id(group_of(part.path)))
    return tuple(key(p, group_of) for p in part)  # a line: a list of parts


def expand(part: object, call_of) -> object:
    """The part with every Instance made a Call of its class (``call_of`` gives it)."""
    if isinstance(part, Instance):
        return call_of(part.path)
    if isinstance(part, Call):
        return Call(part.head, [expand(i, call_of) for i in part.items], part.lines)
    if isinstance(part, Run):
        return Run(part.count, expand(part.item, call_of))
    if isinstance(part, list):
        return [expand(p, call_of) for p in part]
    return part


def slots(part: object) -> list[Slot]:
    """Every hole of an expanded part, in the order it is written."""
    if isinstance(part, Slot):
        return [part]
    if isinstance(part, Call):
        return [s for i in part.items for s in slots(i)]
    if isinstance(part, Run):
        return slots(part.item)
    if isinstance(part, list):
        return [s for p in part for s in slots(p)]
    return []


def _same(value: object, arg: object, pair: bool) -> bool:
    if isinstance(value, bool) != isinstance(arg, bool):
        return False
    if pair and isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    return type(value) is type(arg) and value == arg


def is_default(slot: Slot, value: object) -> bool:
    """Whether ``value`` is the keyword's default in the torch signature (a generated call
    leaves it out; pyexport's shared helpers drop it the same way)."""
    if slot.kw is None or slot.default is MISSING:
        return False
    if slot.pair and isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    return type(value) is type(slot.default) and value == slot.default


def slot_literal(slot: Slot, value: object) -> str:
    """``value`` as the Python literal of a torch argument (a square pair written once)."""
    if slot.pair and isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return literal(value[0])
    return literal(value)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _multiple(values: list, calls: list[dict], name: str, spell: str) -> str | None:
    """``4 * c`` or ``c // 2`` where each value is that multiple of the argument."""
    args = [c.get(name) for c in calls]
    if not all(_int(v) and _int(a) and a > 0 and v > 0 for v, a in zip(values, args,
                                                                      strict=True)):
        return None
    if all(v % a == 0 for v, a in zip(values, args, strict=True)):
        ratios = {v // a for v, a in zip(values, args, strict=True)}
        if len(ratios) == 1 and (m := ratios.pop()) > 1:
            return f"{m} * {spell}"
    if all(a % v == 0 for v, a in zip(values, args, strict=True)):
        ratios = {a // v for v, a in zip(values, args, strict=True)}
        if len(ratios) == 1 and (m := ratios.pop()) > 1:
            return f"{spell} // {m}"
    return None


@dataclass
class Signature:
    """A class's constructor: its arguments (spec name -> Python name, in order) and, per
    hole of its template, the source written there (None: a keyword left out)."""

    params: dict[str, str] = field(default_factory=dict)
    extras: dict[int, str] = field(default_factory=dict)  # hole index -> argument of its own
    exprs: list[str | None] = field(default_factory=list)  # in resolve(): (name, format) too


INPUT_CHANNELS = "in_channels"  # the argument every block call has (lower/expand._plain_args)


def resolve(holes: list[list[Slot]], calls: list[dict], hidden: frozenset[str] = frozenset()
            ) -> Signature:
    """Decides every hole of a class from its instances' values (``holes[i]`` are instance
    i's, in order; ``calls[i]`` its block call's plain arguments). The constructor's
    arguments are named by :func:`netdsl.ir.identifiers.identifier`, never one of ``hidden``
    (the generated classes and imports its body may call)."""
    sig = Signature()
    order = list(calls[0])
    # the input's channels are never a window (kernel, stride, padding, dilation): a 3x3
    # kernel in a block applied to RGB matches in_channels=3 by value alone
    sizing = [n for n in order if n != INPUT_CHANNELS]  # what may fill a window slot
    taken: set[str] = set(hidden)
    used: set[str] = set()
    aliases: dict[int, int] = {}  # hole -> the earlier hole whose argument it reuses
    for index, slot in enumerate(holes[0]):
        values = [h[index].value for h in holes]
        same = all(type(v) is type(values[0]) and v == values[0] for v in values)
        candidates = sizing if slot.pair else order
        names = [n for n in candidates if all(n in c and _same(v, c[n], slot.pair)
                                              for v, c in zip(values, calls, strict=True))]
        if same:
            if is_default(slot, values[0]):
                sig.exprs.append(None)
                continue
            trivial = isinstance(values[0], bool | str) or values[0] in (0, 1, (1, 1))
            if len(names) == 1 and not trivial:
                used.add(names[0])
                sig.exprs.append((names[0], "{}"))
            else:
                sig.exprs.append(slot_literal(slot, values[0]))
            continue
        if names:
            used.add(names[0])
            sig.exprs.append((names[0], "{}"))
            continue
        spelled = next(((n, e) for n in candidates if (e := _multiple(values, calls, n, "{}"))),
                       None)
        if spelled is not None:
            used.add(spelled[0])
            sig.exprs.append(spelled)
            continue
        same_as = next((i for i in sig.extras if [h[i].value for h in holes] == values), None)
        if same_as is not None:  # the value another argument already carries
            aliases[index] = same_as
            sig.exprs.append(None)
            continue
        sig.extras[index] = slot.kw or slot.hint or "arg"
        sig.exprs.append(sig.extras[index])
    # arguments in the block's order, then the holes that needed their own
    for name in order:
        if name in used:
            sig.params[name] = identifier(name, taken)
    for index, name in sig.extras.items():
        sig.extras[index] = identifier(name, taken)
    # an argument's expression is (spec name, format) until its Python name is known, and a
    # literal never is one: a parameter named False must not turn bias=False into bias=False_
    sig.exprs = [sig.extras[i] if i in sig.extras else sig.extras[aliases[i]]
                 if i in aliases else e[1].format(sig.params[e[0]]) if isinstance(e, tuple)
                 else e for i, e in enumerate(sig.exprs)]
    return sig


def render(part: object, exprs: list, names, indent: str = "") -> str:
    """The source of an expanded part, its holes filled in order from ``exprs`` (a list
    consumed from the front); ``names`` gives each Group's class name."""
    if isinstance(part, str):
        return part
    if isinstance(part, Slot):
        expr = exprs.pop(0)
        if expr is None:
            return ""
        return f"{part.kw}={expr}" if part.kw else expr
    if isinstance(part, Run):
        return f"*({render(part.item, exprs, names, indent)} for _ in range({part.count}))"
    if isinstance(part, Call):
        head = part.head if isinstance(part.head, str) else names(part.head)
        inner = indent + "    "
        items = [render(i, exprs, names, inner if part.lines else indent) for i in part.items]
        items = [i for i in items if i]
        if part.lines and len(items) > 1:
            return f"{head}(\n" + ",\n".join(inner + i for i in items) + f",\n{indent})"
        return f"{head}({', '.join(items)})"
    return "".join(render(p, exprs, names, indent) for p in part)
