"""Train any netdsl spec on scikit-learn's handwritten digits (a Hydra app).

    python examples/train.py                          # specs/digits.net, 15 epochs
    python examples/train.py model=resnet18 epochs=5  # a config group picks the spec
    python examples/train.py -m model=digits,resnet18 epochs=1 subset=256   # a sweep
    torchrun --nproc_per_node=2 examples/train.py     # DistributedDataParallel (gloo, CPU)
    python examples/train.py model=resnet18 model.memory_budget=150MB   # checkpointing
    python examples/train.py -m model=resnet_digits model.width=8,16 model.depth=1,2 \
        screen.max_macs=3e6 hydra/launcher=submitit_local   # or netdsl_ray, submitit_slurm

Sweeps go through ``hydra/sweeper=screened`` (examples/hydra_plugins/netdsl_sweep): every point
is compiled first and the ones over the ``screen.*`` budgets are never launched. Each trial
writes ``metrics.json`` (accuracy, training time, static figures, its overrides) in its output
folder, which ``netdsl sweep SPEC ... --results SWEEP_DIR`` joins to the static table.

The 1,797 8x8 images are upsampled to the input size the spec declares; the model is built
with ``hydra.utils.instantiate`` from ``conf/model/*.yaml`` (``_target_: netdsl.build``).

Every override is screened before Hydra sees it (examples/trusted_overrides.py): config
groups, the app's own keys, a few ``hydra.*`` keys (output folders, launcher resources) and
plain values get through; ``_target_`` keys, ``hydra.callbacks``, ``${...}`` interpolations,
``--config-dir`` and the like are refused (``error E009``, exit 1) unless the operator sets
``NETDSL_TRUST_OVERRIDES=1``.

Each epoch prints its metrics and writes a checkpoint atomically; a rerun in the same output
folder resumes from it. The last line is ``test accuracy: 0.9xxx``. ``model.memory_budget``
makes a training step at ``batch_size`` fit in that much memory (parameters, gradients,
activations; SGD's momentum buffer comes on top): netdsl.build plans which blocks to
recompute and the plan is printed first.
"""

# ruff: noqa: E402  (the command line is screened before the heavy imports)
from __future__ import annotations

import sys
from pathlib import Path

from trusted_overrides import screen_command_line

if __name__ == "__main__":  # refused overrides exit 1 here: before @hydra.main, before torch
    screen_command_line(Path(__file__).parent / "conf", "config")  # as @hydra.main names them

import json
import logging
import os
import time

import hydra
import torch
import torch.distributed as dist
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig, OmegaConf
from rich.progress import Progress
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import netdsl
from netdsl.files import atomic_write

log = logging.getLogger(__name__)


def screened(cfg: DictConfig):
    """This trial's static figures against ``cfg.screen``'s budgets (what the screened sweeper
    checked before launching it), from the IR alone."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    params = {k: v for k, v in model.items() if k not in ("_target_", "spec")}
    budgets = {k: None if cfg.screen[k] is None else float(cfg.screen[k])
               for k in ("max_params", "max_macs", "max_activations")}
    return netdsl.screen(to_absolute_path(model["spec"]), params, batch=cfg.screen.batch,
                         **budgets), params


def write_metrics(folder: Path, cfg: DictConfig, point, params: dict, accuracy: float,
                  seconds: float) -> None:
    """metrics.json in the trial's output folder: what ``netdsl sweep --results`` collects."""
    metrics = {"accuracy": accuracy, "train_seconds": round(seconds, 3), "epochs": cfg.epochs,
               "params": point.figures["params"], "macs": point.figures["macs"],
               "spec": to_absolute_path(cfg.model.spec), "model": params,
               "overrides": list(HydraConfig.get().overrides.task),
               "job_id": str(HydraConfig.get().job.get("id")), "pid": os.getpid()}
    atomic_write(folder / "metrics.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=1) + "\n"))


def datasets(cfg: DictConfig, shape: tuple[int, ...]):
    """Digits as tensors of the spec's input shape, split once with a fixed seed."""
    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    x = F.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()
    x = x.repeat(1, shape[0], 1, 1)  # as many channels as the spec's input has
    y = torch.tensor(labels)
    train_x, test_x, train_y, test_y = train_test_split(
        x, y, test_size=cfg.test_fraction, random_state=0, stratify=y)
    if cfg.subset:
        train_x, train_y = train_x[:cfg.subset], train_y[:cfg.subset]
    return TensorDataset(train_x, train_y), TensorDataset(test_x, test_y)


def evaluate(model: torch.nn.Module, data: TensorDataset) -> float:
    model.eval()
    with torch.no_grad():
        x, y = data.tensors
        return (model(x).argmax(1) == y).float().mean().item()


def train_epoch(model, loader, optimizer, progress, task) -> tuple[float, float]:
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        optimizer.zero_grad()
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out  # main output; aux heads unused here
        loss = F.cross_entropy(out, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        seen += len(y)
        progress.advance(task)
    return total_loss / seen, correct / seen


def save_checkpoint(path: Path, model, optimizer, epoch: int) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    point, params = screened(cfg)
    if not point.fits:  # another sweeper, or a single run: refuse before building anything
        why = point.error or f"over budget: {', '.join(point.over)}"
        log.error(f"not trained: {why}")
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            sys.exit(1)  # a single run that trained nothing has failed
        return float("nan")  # a sweep goes on: nan is this point's objective for its sweeper
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // world))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg["spec"] = to_absolute_path(model_cfg["spec"])
    if model_cfg.get("memory_budget") is not None:  # checkpointing planned for this batch
        model_cfg.setdefault("batch", cfg.batch_size // world)
    model = instantiate(model_cfg)
    if getattr(model, "netdsl_memory_plan", None) is not None and rank == 0:
        print(model.netdsl_memory_plan)
    shape = model.netdsl_graph.input.shape
    train_data, test_data = datasets(cfg, shape)
    sampler = DistributedSampler(train_data, world, rank, seed=cfg.seed) if distributed else None
    loader = DataLoader(train_data, batch_size=cfg.batch_size // world, shuffle=sampler is None,
                        sampler=sampler, generator=torch.Generator().manual_seed(cfg.seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs)
    folder = Path(HydraConfig.get().runtime.output_dir)
    checkpoint = folder / cfg.checkpoint
    start = 0
    if cfg.resume and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
        for _ in range(start):
            scheduler.step()
        if rank == 0:
            print(f"resumed from {checkpoint} after epoch {start}")
    net = DistributedDataParallel(model) if distributed else model
    started = time.perf_counter()
    with Progress(disable=rank != 0, transient=True) as progress:
        for epoch in range(start, cfg.epochs):
            if sampler is not None:
                sampler.set_epoch(epoch)
            task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=len(loader))
            loss, accuracy = train_epoch(net, loader, optimizer, progress, task)
            scheduler.step()
            if rank == 0:
                test = evaluate(model, test_data)
                progress.console.print(f"epoch {epoch + 1:>3}  loss {loss:.4f}  "
                                       f"train {accuracy:.4f}  test {test:.4f}")
                save_checkpoint(checkpoint, model, optimizer, epoch + 1)
    seconds = time.perf_counter() - started
    result = evaluate(model, test_data)
    if rank == 0:
        print(f"test accuracy: {result:.4f}")
        write_metrics(folder, cfg, point, params, result, seconds)
    if distributed:
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
