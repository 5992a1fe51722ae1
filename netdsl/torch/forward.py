"""The ``forward`` of each class the ``.py`` export writes (see :mod:`netdsl.torch.pyexport`)."""

from __future__ import annotations

from ..ir.dataflow import runs_in_place
from ..ir.ops import OPS, TorchExpression
from . import emit
from .blocks import Container

_INDENT = "        "


def forward_lines(writer, box: Container) -> list[str]:
    """The body of a container's ``forward`` (the network's, with each line's shape and
    its outputs), one statement per step; dead values are deleted or their names reused,
    and a sum or a ReLU runs in place exactly where ``netdsl.build``'s module does."""
    root = box.kind == "root"
    steps = writer.tree.steps(box)
    graph = writer.graph
    var = {0 if root else box.input: "x"}
    last: dict[int, int] = {}
    for position, step in enumerate(steps):
        for i in step.inputs:
            last[i] = position
    kept = graph.kept() if root else (box.output,)
    for i in kept:
        last[i] = len(steps)
    names = emit.Names()
    lines: list[str] = []
    training = False
    for position, step in enumerate(steps):
        node = graph.nodes[step.node]
        aux_only = root and node.id not in writer.tree.main
        if aux_only != training:
            if aux_only:
                lines.append("        if self.training:")
            training = aux_only
        args = [var[i] for i in step.inputs]
        dead = sorted(var[i] for i in set(step.inputs) if last[i] == position)
        names.free += dead
        target = names.take(args)
        var[node.id] = target
        indent = "            " if aux_only else _INDENT
        note = f"  # {'x'.join(map(str, node.shape))}" if root else ""
        emission = OPS[node.op].torch
        if step.unit is not None:
            expression = f"{writer.ref(box, step.unit)}({args[0]})"
        elif node.is_module:
            expression = f"{writer.ref(box, node.name)}({args[0]})"
        elif node.is_parameter:
            expression = emission.expr(args[0], writer.ref(box, node.name))
        else:
            if isinstance(emission, TorchExpression) and emission.inplace_statement \
                    and target == args[0] and runs_in_place(graph, node, writer.holder,
                                                            writer.readers):
                lines.append(f"{indent}{emission.inplace_statement(args)}{note}")
                lines += emit.delete_lines(indent, dead, target)
                continue
            expression = emission.expr(dict(node.attrs), args)
        lines.append(f"{indent}{target} = {expression}{note}")
        lines += emit.delete_lines(indent, dead, target)
    lines = emit.without_final_deletes(lines)
    if root:
        return lines + emit.return_lines(graph, var)
    result = var[box.output]
    if lines and lines[-1].startswith(f"{_INDENT}{result} = "):
        return lines[:-1] + [f"{_INDENT}return {lines[-1][len(_INDENT + result) + 3:]}"]
    return lines + [f"{_INDENT}return {result}"]
