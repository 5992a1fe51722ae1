"""examples/train.py screens its command line before Hydra sees it (issue 26, item 14):
every route by which an override reaches code, the environment or files outside the app's
config is refused with E009 and exit 1 before anything is composed; the forms the examples,
the README and the sweep tests use are accepted; NETDSL_TRUST_OVERRIDES=1 lifts the screen."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT

EXAMPLES = ROOT / "examples"
CONF = EXAMPLES / "conf"
_spec = importlib.util.spec_from_file_location("trusted_overrides", EXAMPLES / "trusted_overrides.py")
trusted = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(trusted)

CALLBACK = ["+hydra.callbacks.x._target_=builtins.open", "+hydra.callbacks.x.file=PWNED",
            "+hydra.callbacks.x.mode=w"]


def why(*argv: str) -> list[str]:
    return [e.message for e in trusted.refusals(list(argv), CONF)]


REFUSED = {
    # Hydra instantiates _target_ (and reads _partial_, _args_, ...) wherever it appears
    "callback target": (CALLBACK[0], "key segment '_target_' starts with '_'"),
    "callback field": (CALLBACK[1], "'hydra.callbacks.x.file' is not one of the hydra.* keys"),
    "partial": ("+model._partial_=true", "'_partial_' starts with '_'"),
    "args": ("+model._args_=[1]", "'_args_' starts with '_'"),
    "recursive": ("+screen._recursive_=false", "'_recursive_' starts with '_'"),
    "target deleted": ("~model._target_", "'_target_' starts with '_'"),
    "target changed": ("model._target_=os.system", "'_target_' starts with '_'"),
    "dict value": ("+model.extra={_target_:builtins.open,file:x}", "a dictionary value"),
    "dict in a list": ("+model.extra=[{_target_:builtins.open}]", "a dictionary value"),
    "dict in a sweep": ("model.width=4,{a:1}", "a dictionary value"),
    # OmegaConf resolves interpolations: ${oc.env:...} reads the environment into the run
    "env": ("model.width=${oc.env:HOME}", "an interpolation"),
    "quoted env": ("model.width='${oc.env:HOME}'", "an interpolation"),
    "env inside a string": ("hydra.run.dir=out/${oc.env:HOME}", "an interpolation"),
    "env in a sweep": ("model.width=4,'x${oc.env:HOME}'", "an interpolation"),
    "env in a list": ("+model.depths=[1,'${oc.env:HOME}']", "an interpolation"),
    # logging.config.dictConfig imports any class / () factory
    "job_logging key": ("hydra.job_logging.handlers.x.class=os.system", "hydra.* keys"),
    "hydra_logging key": ("+hydra.hydra_logging.root.level=INFO", "hydra.* keys"),
    "job_logging group": ("hydra/job_logging=disabled", "not a config group an override may"),
    "searchpath": ("hydra.searchpath=[file:///tmp]", "hydra.* keys"),
    "help template": ("hydra.help.template=x", "hydra.* keys"),
    # submitit writes these into the sbatch script or the job's environment
    "setup": ("hydra.launcher.setup=[touch PWNED]", "hydra.* keys"),
    "srun_args": ("hydra.launcher.srun_args=[--x]", "hydra.* keys"),
    "additional": ("hydra.launcher.additional_parameters={wrap:x}", "hydra.* keys"),
    "submitit folder": ("hydra.launcher.submitit_folder=/tmp/x", "hydra.* keys"),
    "ray runtime_env": ("hydra.launcher.runtime_env={pip:[x]}", "hydra.* keys"),
    "newline in a launcher field": ("hydra.launcher.partition='cpu\ntouch PWNED'",
                                    "a control character"),
    "two words in a launcher field": ("hydra.launcher.partition='cpu --wrap=x'", "one token"),
    # config groups: plain names of the app's groups, the launchers and sweepers listed
    "package": ("model@hydra.callbacks.x=digits", "'@package'"),
    "path as a choice": ("model=../../tmp/evil", "a plain name"),
    "unknown launcher": ("hydra/launcher=joblib", "'hydra/launcher' may be basic"),
    "group deleted": ("~model", "never deleted"),
    "unknown key": ("+foo.bar=1", "'foo' is not a key of the app's config"),
    "does not parse": ("model.width=[1,", "it does not parse"),
    "nested past the parser's recursion": ("model.width=" + "[" * 800 + "]" * 800,
                                           "it does not parse"),
}


@pytest.mark.parametrize("override,reason", REFUSED.values(), ids=REFUSED.keys())
def test_each_route_to_code_is_refused_with_its_reason(override, reason):
    [message] = why(override)
    assert message.startswith("override '") and "' is not allowed: " in message
    assert reason in message, message
    assert "\n" not in message  # an override's control characters are shown escaped


FLAGS = {  # hydra/_internal/utils.py::get_args_parser's flags that load configs from elsewhere
    "config dir": (["--config-dir", "/tmp"], "--config-dir/-cd /tmp"),
    "cd": (["-cd", "/tmp"], "--config-dir/-cd /tmp"),
    "abbreviated": (["--config-d=/tmp"], "--config-dir/-cd /tmp"),  # argparse reads it so
    "config path": (["--config-path", "/tmp"], "--config-path/-cp /tmp"),
    "cp": (["-cp", "/tmp"], "--config-path/-cp /tmp"),
    "config name": (["--config-name", "evil"], "--config-name/-cn evil"),
    "cn": (["-cn", "evil"], "--config-name/-cn evil"),
    "rerun": (["--experimental-rerun", "config.pickle"], "--experimental-rerun config.pickle"),
    "empty config dir": (["--config-dir="], "--config-dir/-cd "),
    "shell completion": (["--shell-completion"], "--shell-completion/-sc"),
}


@pytest.mark.parametrize("argv,shown", FLAGS.values(), ids=FLAGS.keys())
def test_flags_that_load_configs_from_elsewhere_are_refused(argv, shown):
    [message] = why(*argv)
    assert message.startswith(f"override '{shown}' is not allowed: it ")


ACCEPTED = [
    # tests/test_examples.py and tests/test_sweep_launch.py
    ["hydra.run.dir=/tmp/run", "epochs=5"],
    ["-m", "model=digits,resnet18", "epochs=1", "subset=64", "hydra.sweep.dir=/tmp/s"],
    ["model=resnet18", "model.memory_budget=106MiB", "epochs=1", "subset=64"],
    ["-m", "model=resnet_digits", "model.width=4,8,32", "model.depth=1,2", "screen.max_macs=2e6",
     "epochs=1", "subset=128", "hydra.sweep.dir=/tmp/s", "hydra/launcher=submitit_local"],
    ["-m", "model=resnet_digits", "hydra/launcher=netdsl_ray",
     "hydra.launcher.address=127.0.0.1:6379"],
    ["model=resnet_digits", "screen.max_macs=1e5", "hydra.run.dir=/tmp/x"],
    ["-m", "model.width=0,4,8,32", "hydra/launcher=submitit_slurm",
     "hydra.launcher.partition=cpu", "hydra.launcher.cpus_per_task=2"],
    # Hydra's flags that only show things, and the other value forms of its grammar
    ["--help"], ["-h"], ["--hydra-help"], ["--cfg", "job", "--resolve", "-p", "model"],
    ["--info", "defaults"], ["-i"], ["--run", "epochs=1"],
    ["+model.depths=[1,1,1,1]", "~model.memory_budget", "++screen.batch=2", "threads=null"],
    ["-m", "model.width=range(4,12,4)", "model.depth=choice(1,2)", "lr=interval(0.01,0.1)"],
    ["-m", "model=glob(*,exclude=vgg*)", "hydra/sweeper=basic", "hydra.sweep.subdir=trial"],
    ["hydra.job.chdir=true", "hydra.launcher.address=ray://head:10001", "checkpoint='a b.pt'"],
    ["hydra/launcher=submitit_slurm", "hydra.launcher.timeout_min=30", "hydra.launcher.mem_gb=4",
     "hydra.launcher.account=proj-1", "hydra.launcher.qos=normal", "hydra.launcher.nodes=1"],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=lambda a: " ".join(a)[:60])
def test_the_forms_the_examples_use_are_accepted(argv):
    assert why(*argv) == []


def documented_command_lines() -> list[list[str]]:
    """Every ``python examples/train.py ...`` / ``torchrun ... examples/train.py ...`` in the
    README and train.py's docstring, continuation lines joined, comments dropped."""
    text = (ROOT / "README.md").read_text() + (EXAMPLES / "train.py").read_text()
    text = text.replace("\\\n", " ")
    found = re.findall(r"^\s*(?:python|torchrun)[^\n]*examples/train\.py([^\n#]*)", text, re.M)
    found += re.findall(r"`python examples/train\.py([^`]*)`", text)
    return [shlex.split(line) for line in found]


def test_every_documented_command_line_is_accepted():
    lines = documented_command_lines()
    assert len(lines) >= 8
    for argv in lines:
        assert why(*argv) == [], argv


def test_the_trust_variable_lifts_the_screen(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train.py", *CALLBACK, "--config-dir", "/tmp"])
    monkeypatch.delenv(trusted.TRUST_VARIABLE, raising=False)
    with pytest.raises(SystemExit) as stop:
        trusted.screen_command_line(CONF)
    assert stop.value.code == 1
    assert capsys.readouterr().err.count("error E009: override '") == 4
    monkeypatch.setenv(trusted.TRUST_VARIABLE, "1")
    assert trusted.screen_command_line(CONF) is None  # Hydra gets the whole command line
    monkeypatch.setenv(trusted.TRUST_VARIABLE, "yes")  # only "1" trusts
    with pytest.raises(SystemExit):
        trusted.screen_command_line(CONF)


@pytest.mark.parametrize("payload", [CALLBACK, ["--config-dir", "/tmp", "model.width=${oc.env:HOME}"]],
                         ids=["callback", "config dir"])
def test_train_py_refuses_before_hydra_composes_anything(tmp_path, payload):
    env = {k: v for k, v in os.environ.items() if k != trusted.TRUST_VARIABLE}
    done = subprocess.run([sys.executable, str(EXAMPLES / "train.py"), *payload],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60, env=env)
    assert list(tmp_path.iterdir()) == []  # no PWNED, and no outputs/ folder: Hydra never ran
    assert done.returncode == 1
    assert f"error E009: override '{payload[0]}" in done.stderr and "Traceback" not in done.stderr
