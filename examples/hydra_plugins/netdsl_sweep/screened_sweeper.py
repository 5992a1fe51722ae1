"""``hydra/sweeper=screened``: Hydra's basic grid sweeper, except that every point is compiled
first (``netdsl.screen``: the IR alone, no torch) against the budgets under the config's
``screen`` key, and the points over budget, or that do not compile, are never handed to the
launcher. Each is logged with its reason, and every point's figures go to
``screened.json`` in the sweep folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

ConfigStore.instance().store(
    group="hydra/sweeper", name="screened", provider="netdsl",
    node={"_target_": f"{__name__}.ScreenedSweeper", "max_batch_size": None, "params": None,
          "model_key": "model", "screen_key": "screen"})

BUDGETS = ("max_params", "max_macs", "max_activations")


def screen_config(cfg: DictConfig, model_key: str = "model", screen_key: str = "screen"):
    """The static screen of one composed trial config: ``cfg[model_key]`` is what
    ``netdsl.build`` gets (``spec`` and the network's parameters), ``cfg[screen_key]`` holds
    the budgets (``max_params``, ``max_macs``, ``max_activations`` in bytes) and ``batch``.
    None when the config names no spec (nothing to screen)."""
    import netdsl

    model = OmegaConf.to_container(cfg[model_key], resolve=True) if model_key in cfg else {}
    if not isinstance(model, dict) or "spec" not in model:
        return None
    model.pop("_target_", None)
    spec = to_absolute_path(model.pop("spec"))
    limits = OmegaConf.to_container(cfg[screen_key], resolve=True) if screen_key in cfg else {}
    budgets = {k: None if limits.get(k) is None else float(limits[k]) for k in BUDGETS}
    return netdsl.screen(spec, model, batch=int(limits.get("batch") or 1), **budgets)


def reason(point) -> str:
    """Why a point is not launched, in a few words."""
    if point.error is not None:
        return f"does not compile: {point.error.code}: {point.error.message}"
    names = {"activation_bytes": "activation bytes"}
    return "over budget: " + ", ".join(f"{names.get(k, k)} {point.figures[k]:,}" for k in point.over)


class ScreenedSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict | None = None,
                 model_key: str = "model", screen_key: str = "screen") -> None:
        super().__init__(max_batch_size, params)
        self.model_key, self.screen_key = model_key, screen_key

    # BasicSweeper.sweep calls self.split_arguments once, before any launch: the one place to
    # drop points so that the launcher never sees them.
    def split_arguments(self, overrides: list[Override],  # type: ignore[override]
                        max_batch_size: int | None) -> list[list[list[str]]]:
        points = BasicSweeper.split_arguments(overrides, None)[0]
        kept = self.screen(points)
        size = max_batch_size or max(len(kept), 1)
        return [kept[i:i + size] for i in range(0, len(kept), size)]

    def screen(self, points: Sequence[Sequence[str]]) -> list[list[str]]:
        assert self.hydra_context is not None and self.config is not None
        kept, records = [], []
        for overrides in points:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            point = screen_config(cfg, self.model_key, self.screen_key)
            launched = point is None or point.fits
            if launched:
                kept.append(list(overrides))
            else:
                log.warning(f"not launched: {' '.join(overrides)}: {reason(point)}")
            records.append({"overrides": list(overrides), "launched": launched,
                            "figures": {} if point is None else dict(point.figures),
                            "over": [] if point is None else list(point.over),
                            "error": None if point is None or point.error is None
                            else f"{point.error.code}: {point.error.message}"})
        folder = Path(str(self.config.hydra.sweep.dir))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "screened.json").write_text(json.dumps(records, indent=1) + "\n")
        log.info(f"screened {len(points)} points statically: {len(kept)} launched, "
                 f"{len(points) - len(kept)} not (see {folder / 'screened.json'})")
        return kept
