"""Assembling the spec text: blocks first (innermost first), then the network, one line per
element of its main chain with the output shape as a comment; long lines are broken at
``->`` and between a call's arguments, and ``netdsl fmt`` lays the result out."""

from __future__ import annotations

from ..syntax.fmt import format_text
from .render import Writer, literal, text
from .structure import Aux, Structure

WIDTH = 96


def split_top(s: str, sep: str) -> list[str]:
    """``s`` split at ``sep`` outside brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i].strip())
            start = i + len(sep)
            i = start
            continue
        i += 1
    return parts + [s[start:].strip()]


def wrap(s: str, width: int = WIDTH) -> list[str]:
    """One expression as lines at most ``width`` long where it can be broken."""
    if len(s) <= width:
        return [s]
    parts = split_top(s, "->")
    if len(parts) > 1:
        lines, current = [], parts[0]
        for part in parts[1:]:
            if len(current) + 4 + len(part) <= width:
                current += " -> " + part
            else:
                lines += _wrap_piece(current, width)
                current = "-> " + part
        return lines + _wrap_piece(current, width)
    open_at = s.find("(")
    if open_at < 0 or not s.endswith(")"):
        return [s]
    head, args = s[:open_at + 1], split_top(s[open_at + 1:-1], ",")
    if len(args) == 1:
        inner = wrap(args[0], width - 4)
        return _close([head + inner[0], *inner[1:]])
    lines = [head]
    for k, arg in enumerate(args):
        inner = wrap(arg, width - 4)
        inner[-1] += "," if k < len(args) - 1 else ""
        lines += inner
    return _close(lines)


def _close(lines: list[str]) -> list[str]:
    lines[-1] += ")"
    return lines


def _wrap_piece(piece: str, width: int) -> list[str]:
    if piece.startswith("-> "):
        inner = wrap(piece[3:], width - 3)
        return ["-> " + inner[0], *inner[1:]]
    return wrap(piece, width)


def write(structure: Structure, name: str, input_shape: tuple[int, ...]) -> str:
    writer = Writer(structure)
    writer.names.add(name)  # a block may not take the network's name
    writer.make_blocks()
    lines: list[str] = []
    for block in writer.blocks:
        params = [*block.required, *(f"{p}={literal(v, p)}" for p, v in block.defaults.items())]
        head = f"block {block.name}" + (f"({', '.join(params)})" if params else "") + " = "
        if len(head) + len(block.body) <= WIDTH:
            lines.append(head + block.body)
        else:
            lines += [head.rstrip(), *wrap(block.body, WIDTH - 4)]
    lines += ["", f"network {name}:", f"    input {'x'.join(map(str, input_shape))}"]
    root = structure.scopes[""].body
    parts = [writer.tokens(e) for e in root.elems]
    plain = [getattr(e, "label", None) is None and not isinstance(e, Aux) for e in root.elems]
    i = 0
    while i < len(parts):
        period, count = writer.run(parts, plain, i)
        group = root.elems[i:i + period * count]
        if count > 1:
            seg = writer.joined(parts[i:i + period], " -> ")
            line = text(["stack(", *seg, f", {count})"])
        else:
            line = text(parts[i])
        body = wrap(line, WIDTH - 24)
        shape = getattr(group[-1], "shape", None)
        if shape and not isinstance(group[-1], Aux):
            body[-1] += "  # " + "x".join(map(str, shape))
        lines += body
        i += period * count
    return format_text("\n".join(lines) + "\n")
