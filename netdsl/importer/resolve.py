"""``MODULE`` arguments of ``netdsl import``: ``torchvision:NAME``, ``timm:NAME`` or
``package.module:callable``. Names are checked against a strict pattern (and the model
registries) before anything is imported; a user's callable is imported because the user
named it explicitly."""

from __future__ import annotations

import importlib
import re

from ..errors import ModuleImportError

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_NAME}(\.{_NAME})*"
_MODEL = re.compile(r"(torchvision|timm):([A-Za-z0-9_.]+)")
_USER = re.compile(rf"({_DOTTED}):({_DOTTED})")


def resolve(spec: str):
    """The module ``spec`` names, in training mode, and its natural input shape (or None)."""
    match = _MODEL.fullmatch(spec)
    if match:
        source, name = match.groups()
        return _torchvision(name) if source == "torchvision" else _timm(name)
    match = _USER.fullmatch(spec)
    if not match:
        raise ModuleImportError(f"'{spec}' is not a module name",
                                notes=("expected torchvision:NAME, timm:NAME or "
                                       "package.module:callable",))
    return _user(match.group(1), match.group(3)), None


def _torchvision(name: str):
    import torchvision

    if name not in torchvision.models.list_models():
        raise ModuleImportError(f"torchvision has no model '{name}'")
    model = torchvision.models.get_model(name)
    try:  # the weights' evaluation crop, read from metadata (nothing is downloaded)
        size = torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size[0]
        return model, (3, size, size)
    except Exception:
        return model, None


def _timm(name: str):
    try:
        import timm
    except ImportError:
        raise ModuleImportError("timm is not installed (pip install timm)") from None
    if name not in timm.list_models():
        raise ModuleImportError(f"timm has no model '{name}'")
    model = timm.create_model(name, pretrained=False)
    return model, tuple(model.pretrained_cfg.get("input_size", ())) or None


def _user(module_name: str, attribute: str):
    import torch

    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise ModuleImportError(f"cannot import '{module_name}': {error}") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModuleImportError(f"'{module_name}' has no attribute '{attribute}'")
        target = getattr(target, part)
    model = target if isinstance(target, torch.nn.Module) else target()
    if not isinstance(model, torch.nn.Module):
        raise ModuleImportError(f"'{module_name}:{attribute}' did not give a torch.nn.Module")
    return model
