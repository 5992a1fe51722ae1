"""Initialisation: the scheme's loop as generated source, and the one-draw build.

Both come from the scheme tables of :mod:`netdsl.ir.init`: the loop applies each rule to the
modules of its role, and :func:`initialise` calls PyTorch's own ``reset_parameters`` on exactly
the modules whose tensors the scheme does not all set, so every tensor is drawn once from the
distribution the reference implementation uses, and no private PyTorch helper is restated.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import BuildError
from ..ir.graph import Graph
from ..ir.init import LAYER_STD_RULE, SCHEMES
from ..ir.ops import OPS
from .source import class_expression


def role_classes(graph: Graph) -> dict[str, list[str]]:
    """For each init role, the torch classes of this graph's modules, as the generated source
    names them (``nn.Conv2d``), in the order they first appear."""
    roles: dict[str, list[str]] = {}
    for node in graph.modules():
        record = OPS[node.op]
        if record.init_role is not None:
            classes = roles.setdefault(record.init_role, [])
            expression = class_expression(record.torch.cls)
            if expression not in classes:
                classes.append(expression)
    return roles


def init_lines(graph: Graph, refs: dict[str, str]) -> list[str]:
    """The body of the generated ``reset_parameters``: the scheme's rules for each role, then
    each layer's own ``std=``."""
    scheme = SCHEMES[graph.init[0]]
    values = {name: repr(v) for name, v in zip(scheme.params, graph.init[1], strict=True)}
    roles = role_classes(graph)
    branches = []
    for role, rules in scheme.rules.items():
        if role not in roles:
            continue
        classes = roles[role]
        kinds = classes[0] if len(classes) == 1 else f"({', '.join(classes)})"
        body = []
        for tensor, rule in rules.items():
            body += [f"    if m.{tensor} is not None:",
                     f"        {rule.format(t=f'm.{tensor}', **values)}"]
        branches.append((f"isinstance(m, {kinds})", body))
    lines = []
    if branches:
        lines.append("for m in self.modules():")
        for i, (condition, body) in enumerate(branches):
            lines.append(f"    {'if' if i == 0 else 'elif'} {condition}:")
            lines += ["    " + line for line in body]
    for node in graph.modules():
        std = node.attrs.get("std")
        if std is not None:  # a layer with its own init (Inception-v3's auxiliary head)
            lines.append(LAYER_STD_RULE.format(t=f"{refs[node.name]}.weight", std=repr(std)))
    for node in graph.named():
        if node.is_parameter:  # a learnable tensor of its block (ConvNeXt's layer scale)
            fill = OPS[node.op].torch.fill(dict(node.attrs))
            lines.append(f"nn.init.constant_({refs[node.name]}, {fill!r})")
    return lines


def covered(graph: Graph) -> dict[str, frozenset[str]]:
    """Per module name, the tensors the scheme (or the layer's own ``std``) sets."""
    scheme = SCHEMES[graph.init[0]]
    out: dict[str, frozenset[str]] = {}
    for node in graph.modules():
        tensors = scheme.covers(OPS[node.op].init_role)
        if node.attrs.get("std") is not None:
            tensors |= {"weight"}
        out[node.name] = tensors
    for node in graph.named():
        if node.is_parameter:  # set by reset_parameters, on the enclosing module
            parent, _, own = node.name.rpartition(".")
            out[parent] = out.get(parent, frozenset()) | {own}
    return out


def initialise(module: nn.Module, graph: Graph) -> None:
    """PyTorch's own ``reset_parameters`` for every module with a tensor the scheme leaves
    alone (a conv's bias under ``resnet``, every batch norm's running statistics), then the
    scheme. A module built on the meta device has no values until one of the two sets them."""
    sets = covered(graph)
    with torch.no_grad():
        for name, m in module.named_modules():
            if m is module:
                continue
            own = {n for n, _ in m.named_parameters(recurse=False)}
            own |= {n for n, _ in m.named_buffers(recurse=False)}
            if own <= sets.get(name, frozenset()):
                continue
            if not hasattr(m, "reset_parameters"):
                raise BuildError(f"module {name} ({type(m).__name__}) has tensors "
                                 f"{', '.join(sorted(own))} but no reset_parameters(), so "
                                 "netdsl cannot initialise it")
            m.reset_parameters()  # batch norm also resets its running statistics here
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
