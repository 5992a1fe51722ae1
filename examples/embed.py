"""Embedding the compiler in a tool: compile text, walk the IR, report errors with positions.

    python examples/embed.py

This is what an editor plugin or a model-zoo linter does: no torch is imported here.
"""

from __future__ import annotations

import sys

import netdsl

GOOD = """
block unit(c, stride=1) = residual(conv3x3(c, stride=stride, bias=false) -> bn -> relu
    -> conv3x3(c, bias=false) -> bn, shortcut=project) -> relu

network tiny(num_classes=10):
    input 3x32x32
    stem: (conv3x3(16, bias=false) -> bn -> relu)
    stage1: (unit(16) -> unit(32, stride=2))
    head: (gap -> flatten -> fc(num_classes))
"""

BAD = GOOD.replace("unit(32, stride=2)", "residual(conv3x3(32, stride=2))")


def describe(graph) -> None:
    """Walks the checked IR: each module with its output shape and where it was written."""
    print(f"{graph.name}: {len(graph.modules())} modules, output {graph.output_shape}")
    for node in graph.modules():
        span = node.span
        print(f"  {node.name:<24} {node.op:<8} {'x'.join(map(str, node.shape)):<10} "
              f"line {span.line}, column {span.column}")


def main() -> int:
    describe(netdsl.compile(netdsl.SpecText(GOOD), num_classes=4))
    try:
        netdsl.compile(netdsl.SpecText(BAD))
    except netdsl.NetDSLError as error:
        print(f"\nthe broken variant fails at line {error.line}, column {error.column}:")
        print(error)
    assert "torch" not in sys.modules
    return 0


if __name__ == "__main__":
    sys.exit(main())
