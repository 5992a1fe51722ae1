"""Hydra plugins for netdsl design-space sweeps (examples/train.py): ``hydra/sweeper=screened``
launches only the points of a grid that fit the static budgets, and ``hydra/launcher=netdsl_ray``
runs each trial as a Ray task. Hydra finds them as it finds any plugin: ``hydra_plugins`` is a
namespace package, and examples/ is on ``sys.path`` when ``python examples/train.py`` runs.

Their configs are stored as plain dicts, not dataclasses: launchers pickle Hydra's singletons
(the config store among them) to their workers, which need not be able to import this folder.
"""
