"""Pretrained weights by name (``weights=``), offline: a weights file is planted in a temporary
torch.hub cache under the name torchvision's URL gives it, exactly where torchvision itself
would have downloaded it. torch.hub reads a file already in its cache without downloading or
re-hashing it (torch.hub.load_state_dict_from_url checks the hash only on download), so the
planted file needs no matching hash; downloading is made to fail, to prove nothing is fetched.
"""

from __future__ import annotations

import doctest
import os
import re
from pathlib import Path

import pytest
import torch
import torchvision

import netdsl
from netdsl.errors import BuildError
from netdsl.torch.pretrained import load_pretrained

from conftest import ROOT

WEIGHTS = torchvision.models.ResNet18_Weights.IMAGENET1K_V1


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """A torch.hub cache holding random resnet18 weights under IMAGENET1K_V1's file name."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_download(url, *args, **kwargs):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    torch.manual_seed(1)
    planted = tmp_path / "hub" / "checkpoints" / os.path.basename(WEIGHTS.url)
    planted.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), planted)
    return planted


def test_weights_by_name_load_strictly_and_match_the_reference(hub):
    ours = netdsl.build("resnet18", weights="DEFAULT").eval()
    assert ours.netdsl_weights is WEIGHTS
    assert len(ours.netdsl_weights.meta["categories"]) == 1000
    theirs = torchvision.models.resnet18()
    theirs.load_state_dict(torch.load(hub, weights_only=True), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs.eval()(x), rtol=0, atol=0)


def test_a_truncated_file_is_a_coded_error_and_nothing_is_loaded(hub):
    hub.write_bytes(hub.read_bytes()[: hub.stat().st_size // 2])
    model = netdsl.build("resnet18")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    graph = netdsl.compile("resnet18")
    with pytest.raises(BuildError) as caught:
        load_pretrained(model, graph, "IMAGENET1K_V1")
    assert caught.value.code == "E010" and caught.value.span is not None
    assert hub.name in str(caught.value)
    assert not hasattr(model, "netdsl_weights")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_weights_that_do_not_fit_are_refused(hub):
    torch.save({"fc.weight": torch.zeros(3)}, hub)
    with pytest.raises(BuildError, match="does not fit"):
        netdsl.build("resnet18", weights="IMAGENET1K_V1")


def test_unknown_weights_and_networks_without_a_reference_say_so(hub):
    with pytest.raises(BuildError, match="did you mean 'IMAGENET1K_V1'"):
        netdsl.build("resnet18", weights="IMAGENET1K_V2")
    with pytest.raises(BuildError, match="digits has no pretrained weights") as caught:
        netdsl.build("digits", weights="DEFAULT")
    assert caught.value.code == "E010"


def test_the_command_line_loads_weights(hub, capsys):
    from netdsl.cli import main

    assert main(["build", "resnet18", "--weights", "DEFAULT", "input=3x64x64"]) == 0
    assert "ResNet18_Weights.IMAGENET1K_V1" in capsys.readouterr().out


def test_the_readme_section_runs(hub):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use a pretrained network", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    test = doctest.DocTestParser().get_doctest(code, {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0 and len(test.examples) >= 5
