"""examples/train.py's command line, screened before ``@hydra.main`` sees it (issue 26).

Overrides are untrusted input (docs/security.md), and Hydra turns some of them into code:
``+hydra.callbacks.x._target_=builtins.open`` makes Hydra call ``open``, ``hydra.job_logging``
reaches ``logging.config.dictConfig`` (which imports any class), ``${oc.env:HOME}`` reads the
environment, ``--config-dir`` loads YAML from anywhere and ``--experimental-rerun`` a pickle.
So only this much gets through, read with Hydra's own parsers (the same ones ``@hydra.main``
then uses), and anything else is refused with ``error E009`` and exit 1 before Hydra composes
a config:

- a choice in a config group of the app (``model=resnet18``, or ``model=digits,resnet18``) or
  of ``hydra/launcher`` and ``hydra/sweeper`` (``LAUNCHERS``, ``SWEEPERS``): plain names;
- a key of the app's own config (a top-level key of ``conf/config.yaml`` or a group, and any
  key under it: ``model.width``, ``+model.depths``, ``~model.memory_budget``), no segment of
  which starts with ``_`` (``_target_``, ``_partial_``, ``_args_``, ... are instructions);
- the ``hydra.*`` keys in ``HYDRA_KEYS``: output folders and launcher resources;
- values that are numbers, strings, booleans, null, lists of them or sweeps of them: no
  dictionary, no ``${...}``, no control character (a launcher field becomes an sbatch line),
  and a ``hydra.launcher.*`` string is one token;
- Hydra's flags except those that load configs or state from elsewhere (``REFUSED_FLAGS``).

An operator who trusts the overrides (they are the operator's own) sets
``NETDSL_TRUST_OVERRIDES=1``: the environment is the operator's, not the override stream's.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    Glob,
    IntervalSweep,
    Override,
    QuotedString,
    RangeSweep,
)
from omegaconf import OmegaConf

from netdsl import limits
from netdsl.errors import OverrideError

TRUST_VARIABLE = "NETDSL_TRUST_OVERRIDES"
LAUNCHERS = ("basic", "submitit_local", "submitit_slurm", "netdsl_ray")
SWEEPERS = ("basic", "screened")
RAY_FIELDS = ("address", "num_cpus", "cpus_per_trial")
SUBMITIT_FIELDS = ("partition", "account", "qos", "cpus_per_task", "timeout_min", "nodes",
                   "tasks_per_node", "mem_gb", "gpus_per_node", "array_parallelism")
LAUNCHER_FIELDS = RAY_FIELDS + SUBMITIT_FIELDS
HYDRA_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "hydra.job.chdir",
              *(f"hydra.launcher.{k}" for k in LAUNCHER_FIELDS))
# hydra/_internal/utils.py::get_args_parser's flags that read configs or state from outside
REFUSED_FLAGS = {
    "config_path": ("--config-path/-cp", "it loads the primary config from another folder"),
    "config_name": ("--config-name/-cn", "it loads another primary config"),
    "config_dir": ("--config-dir/-cd", "it adds a folder of configs to the search path"),
    "experimental_rerun": ("--experimental-rerun", "it loads a pickle"),
    "shell_completion": ("--shell-completion/-sc", "it installs or queries shell completion"),
}
PLAIN_NAME = re.compile(r"[A-Za-z0-9][\w-]*\Z")
GLOB_PATTERN = re.compile(r"[\w*?-]+\Z")
TOKEN = re.compile(r"[\w.:/@+-]+\Z")


def trusted() -> bool:
    return os.environ.get(TRUST_VARIABLE) == "1"


def app_tree(conf: Path, config_name: str = "config") -> tuple[set[str], set[str]]:
    """The app's config groups (folders of ``conf``) and its primary config's top-level keys."""
    groups = {p.name for p in conf.iterdir() if p.is_dir() and any(p.glob("*.yaml"))}
    primary = OmegaConf.load(conf / f"{config_name}.yaml")
    return groups, {str(k) for k in primary if k != "defaults"} | groups


def refusals(argv: list[str], conf: Path, config_name: str = "config") -> list[OverrideError]:
    """What is wrong with a command line of the app, one error per refused flag or override
    (none: Hydra may have it). argparse exits 2 on a malformed one, as Hydra does."""
    args = get_args_parser().parse_args(argv)
    errors = flag_refusals(args)
    groups, keys = app_tree(conf, config_name)
    for text in args.overrides:
        why = override_problem(text, groups, keys)
        if why is not None:
            errors.append(refused(text, why))
    return errors


def flag_refusals(args) -> list[OverrideError]:
    errors = []
    for name, (flag, why) in REFUSED_FLAGS.items():
        value = getattr(args, name)
        if value is True:
            errors.append(refused(flag, why))
        elif value not in (None, False):  # even "": Hydra would read --config-dir "" as "."
            errors.append(refused(f"{flag} {value}", why))
    return errors


def refused(text: str, why: str) -> OverrideError:
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:200])  # one line
    shown += "..." if len(text) > 200 else ""
    return OverrideError(f"override '{shown}' is not allowed: {why}")


def override_problem(text: str, groups: set[str], keys: set[str]) -> str | None:
    deepest = limits.bracket_depth(text)
    if deepest > limits.MAX_OVERRIDE_NESTING:  # counted, not parsed: Hydra's parser recurses
        return (f"it does not parse (lists nested {deepest} deep; at most "
                f"{limits.MAX_OVERRIDE_NESTING})")
    try:
        override = OverridesParser.create().parse_overrides([text])[0]
    except Exception as error:  # a syntax error, or RecursionError on deep nesting
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"it does not parse ({first[:200]})"
    if override.package is not None:
        return "'@package' moves a config to another place in the tree"
    if "/" in override.key_or_group or override.key_or_group in groups:
        return group_problem(override, groups)
    return key_problem(override, keys)


def group_problem(override: Override, groups: set[str]) -> str | None:
    group = override.key_or_group
    choices = {"hydra/launcher": LAUNCHERS, "hydra/sweeper": SWEEPERS}.get(group)
    if choices is None and group not in groups:
        return (f"'{group}' is not a config group an override may choose "
                f"({', '.join(sorted(groups) + ['hydra/launcher', 'hydra/sweeper'])})")
    if override.is_delete():
        return "a config group is chosen, never deleted"
    for name in leaves(override.value()):
        text = name.text if isinstance(name, QuotedString) else name
        pattern = GLOB_PATTERN if isinstance(override.value(), Glob) else PLAIN_NAME
        if not isinstance(text, str) or not pattern.match(text):
            return f"a choice of '{group}' is a plain name, not {text!r}"
        if choices is not None and text not in choices:
            return f"'{group}' may be {', '.join(choices)}"
    return None


def key_problem(override: Override, keys: set[str]) -> str | None:
    key = override.key_or_group
    segments = key.split(".")
    hidden = next((s for s in segments if s.startswith("_")), None)
    if hidden is not None:
        return f"key segment '{hidden}' starts with '_': Hydra reads such keys as instructions"
    if segments[0] == "hydra":
        if key not in HYDRA_KEYS:
            return (f"'{key}' is not one of the hydra.* keys an override may set: "
                    f"{', '.join(HYDRA_KEYS[:4])}, hydra.launcher.{{{', '.join(LAUNCHER_FIELDS)}}}")
    elif segments[0] not in keys:
        return f"'{segments[0]}' is not a key of the app's config ({', '.join(sorted(keys))})"
    return value_problem(override.value(), launcher=key.startswith("hydra.launcher."))


def value_problem(value, launcher: bool = False) -> str | None:
    for leaf in leaves(value):
        if isinstance(leaf, dict):
            return "a dictionary value (it could name a _target_ to call)"
        text = leaf.text if isinstance(leaf, QuotedString) else leaf
        if isinstance(text, str):
            if "${" in text:
                return "an interpolation ${...} (it could read the environment: ${oc.env:...})"
            if not text.isprintable():
                return "a control character in a value"
            if launcher and not TOKEN.match(text):
                return "a launcher field is one token (letters, digits, _.:/@+-)"
        elif text is not None and not isinstance(text, bool | int | float):
            return f"a value of type {type(text).__name__}"
    return None


def leaves(value):
    """The elements of a value, a list or a sweep, flattened (a dict is one leaf), without
    recursion: Hydra's parser returns lists nested as deep as its own recursion went."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, ChoiceSweep):
            stack.extend(item.list)
        elif isinstance(item, Glob):
            stack.extend([*item.include, *item.exclude])
        elif isinstance(item, RangeSweep):
            stack.extend([item.start, item.stop, item.step])
        elif isinstance(item, IntervalSweep):
            stack.extend([item.start, item.end])
        else:
            yield item


def screen_command_line(conf: Path, config_name: str = "config") -> None:
    """Exits 1 with every refusal on stderr unless the operator trusts the overrides."""
    if trusted():
        return
    errors = refusals(sys.argv[1:], conf, config_name)
    if not errors:
        return
    for error in errors:
        print(str(error).replace("error:", f"error {error.code}:", 1), file=sys.stderr)
    print(f"note: overrides are untrusted (docs/security.md); an operator who trusts them sets "
          f"{TRUST_VARIABLE}=1", file=sys.stderr)
    sys.exit(1)
