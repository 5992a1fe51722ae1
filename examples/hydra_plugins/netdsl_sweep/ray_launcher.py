"""``hydra/launcher=netdsl_ray``: each trial of a Hydra sweep is a Ray task, on the cluster at
``address`` (``auto``: the one ``ray start`` runs on this machine; ``host:6379`` or
``ray://host:10001``: a remote one) or, when ``address`` is null, on a new local cluster of
``num_cpus`` CPUs that the launcher starts and stops. ``cpus_per_trial`` is what each task
reserves, so a cluster runs ``num_cpus / cpus_per_trial`` trials at once; ``runtime_env`` and
``init`` go to ``ray.init``.

Written for netdsl because the official hydra-ray-launcher (1.2.2) pins ``cloudpickle<3``,
which conflicts with joblib 1.6 (scikit-learn's dependency); ray is imported only in
``launch``, so Hydra's plugin discovery stays fast and works without ray installed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

ConfigStore.instance().store(
    group="hydra/launcher", name="netdsl_ray", provider="netdsl",
    node={"_target_": f"{__name__}.RayLauncher", "address": None, "num_cpus": None,
          "cpus_per_trial": 1, "runtime_env": None,
          # a local cluster: no dashboard, a small object store (trials return a float)
          "init": {"include_dashboard": False, "object_store_memory": 100 * 2**20}})


def _trial_function():
    """The Ray task: one Hydra job, as Hydra's own launchers run it. Defined inside a function
    so that cloudpickle sends it by value: workers need not be able to import this folder."""
    def trial(hydra_context, sweep_config: DictConfig, task_function, state) -> JobReturn:
        import ray

        Singleton.set_state(state)
        setup_globals()
        with open_dict(sweep_config.hydra.job):
            sweep_config.hydra.job.id = ray.get_runtime_context().get_task_id()
        HydraConfig.instance().set_config(sweep_config)
        return run_job(hydra_context=hydra_context, task_function=task_function,
                       config=sweep_config, job_dir_key="hydra.sweep.dir",
                       job_subdir_key="hydra.sweep.subdir")
    return trial


class RayLauncher(Launcher):
    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 cpus_per_trial: float = 1, runtime_env: dict | None = None,
                 init: dict | None = None) -> None:
        self.address, self.num_cpus, self.cpus_per_trial = address, num_cpus, cpus_per_trial
        self.runtime_env, self.init = runtime_env, init or {}
        self.config = self.hydra_context = self.task_function = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def _init_kwargs(self) -> dict:
        # "local": always a new cluster, never one that another user started on this machine
        kwargs = {"address": self.address or "local", "runtime_env": self.runtime_env}
        if self.address is None:  # cluster options only mean something to a new local cluster
            kwargs |= {"num_cpus": self.num_cpus,
                       **OmegaConf.to_container(OmegaConf.create(self.init), resolve=True)}
        return {k: v for k, v in kwargs.items() if v is not None}

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        import ray

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        started = not ray.is_initialized()
        if started:
            ray.init(**self._init_kwargs())
        log.info(f"Ray: {len(job_overrides)} trials on {ray.cluster_resources().get('CPU', 0):g} "
                 f"CPUs, {self.cpus_per_trial:g} each; sweep output dir: {sweep_dir}")
        task = ray.remote(num_cpus=self.cpus_per_trial, max_retries=0)(_trial_function())
        pending = []
        try:
            for idx, overrides in enumerate(job_overrides, initial_job_idx):
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                sweep_config = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.num = idx
                pending.append(task.remote(self.hydra_context, sweep_config, self.task_function,
                                           Singleton.get_state()))
            return ray.get(pending)
        finally:
            if started:
                ray.shutdown()
