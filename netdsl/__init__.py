"""netdsl: a compact text language for convolutional networks, compiled to PyTorch.

>>> import netdsl
>>> graph = netdsl.compile(netdsl.SpecText("network tiny:\\n input 3x32x32\\n conv(8, 3x3) -> relu"))
>>> graph.output_shape
(8, 30, 30)

``import netdsl``, :func:`parse` and :func:`compile` never import torch; :func:`build` does.
"""

from .api import SpecText, build, compile, parse, screen, summary, zoo_spec
from .errors import NetDSLError, RegistrationError
from .ir.ops import (
    GLOBAL,
    OPS,
    POINTWISE,
    OpRecord,
    Param,
    ShapeProblem,
    TorchExpression,
    TorchModule,
    TorchParameter,
    Window,
    register_op,
    unregister_op,
)

__all__ = ["parse", "compile", "build", "screen", "summary", "SpecText", "zoo_spec", "NetDSLError",
           "RegistrationError", "register_op", "unregister_op", "OPS", "OpRecord", "Param", "ShapeProblem",
           "TorchModule", "TorchParameter", "TorchExpression", "Window", "GLOBAL", "POINTWISE"]
__version__ = "0.1.0"
