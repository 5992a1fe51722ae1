"""memory_budget=: the checkpointing plan fits the budget, its predicted peak is what a
training step really holds (counted storage by storage, netdsl.torch.memory.LiveBytes), and
the planned module trains exactly like the unplanned one. Small specs at small batches;
the ResNet-152 figures are benchmarks/memory.py's."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import netdsl
from netdsl.errors import BuildError, RegistrationError
from netdsl.ir import ops as netdsl_ops
from netdsl.passes.memory import parse_bytes, plan
from netdsl.torch.memory import LiveBytes, training_step_peak

# residual blocks at one resolution, a stem with a max pool, dropout in the head: every
# kind of unit the planner cuts, and tensors the model counts beyond the outputs
DEEP = """\
block unit(c) = residual(conv3x3(c, bias=false) -> bn -> relu -> conv3x3(c, bias=false) -> bn)
    -> relu

network deep(width=16, depth=6):
    input 3x32x32
    stem: conv3x3(width, bias=false) -> bn -> relu -> maxpool(3x3, stride=1, pad=1)
    body: stack(unit(width), depth)
    head: gap -> flatten -> dropout(0.2) -> fc(10)
"""
BATCH = 8


def _build(spec: str = DEEP, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return netdsl.build(spec, **kwargs)


def _batch(graph, batch: int = BATCH):
    generator = torch.Generator().manual_seed(1)
    return (torch.randn(batch, *graph.input.shape, generator=generator),
            torch.randint(0, 10, (batch,), generator=generator))


@pytest.mark.parametrize(("spec", "params", "batch"), [
    (DEEP, {}, BATCH),
    ("specs/digits.net", {}, 16),  # dropout's mask, a max pool's indices
    ("specs/googlenet.net", {"input": "3x64x64"}, 2),  # auxiliary heads, concatenations
])
def test_the_predicted_peak_of_a_step_is_the_measured_one(spec, params, batch):
    module = _build(spec, **params)
    predicted = plan(module.netdsl_graph, None, batch).eager_peak
    measured = training_step_peak(module, *_batch(module.netdsl_graph, batch))
    assert abs(measured - predicted) <= 0.1 * measured, (predicted, measured)


@pytest.mark.parametrize("fraction", [0.7, 0.5])
def test_a_planned_step_fits_its_budget_as_predicted(fraction):
    eager = plan(_build().netdsl_graph, None, BATCH).eager_peak
    budget = int(eager * fraction)
    module = _build(memory_budget=budget, batch=BATCH)
    chosen = module.netdsl_memory_plan
    assert chosen.recomputed and chosen.peak <= budget < eager
    measured = training_step_peak(module, *_batch(module.netdsl_graph))
    assert abs(measured - chosen.peak) <= 0.1 * measured, (chosen.peak, measured)
    assert measured <= budget * 1.1  # the model's own error is all it may exceed by


def _steps(module: torch.nn.Module, x, y, n: int = 2) -> torch.Tensor:
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    for _ in range(n):
        optimizer.zero_grad()
        torch.manual_seed(3)  # the same dropout mask in both modules
        out = module(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        optimizer.step()
    return out


def test_a_planned_module_trains_exactly_like_the_unplanned_one():
    plain = _build()
    budget = plan(plain.netdsl_graph, None, BATCH).eager_peak // 2
    planned = _build(memory_budget=budget, batch=BATCH)
    assert planned.netdsl_memory_plan.recomputed
    assert list(planned.state_dict()) == list(plain.state_dict())
    x, y = _batch(plain.netdsl_graph)
    torch.testing.assert_close(_steps(planned, x, y), _steps(plain, x, y), rtol=0, atol=0)
    for (name, a), b in zip(plain.named_parameters(), planned.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=0, msg=name)
    # the recomputation put the running statistics back: one update per step, as unplanned
    for (name, a), b in zip(plain.state_dict().items(), planned.state_dict().values(),
                            strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)
    plain.eval(), planned.eval()
    with torch.no_grad():
        torch.testing.assert_close(planned(x), plain(x), rtol=0, atol=0)


def test_a_budget_the_network_already_fits_changes_nothing():
    module = _build(memory_budget="1GB", batch=BATCH)
    assert not module.netdsl_memory_plan.recomputed
    assert "run_checkpointed" not in type(module).forward.__code__.co_names


def test_an_impossible_budget_is_a_diagnostic_before_anything_is_built():
    with pytest.raises(BuildError) as caught:
        _build(memory_budget=100_000, batch=BATCH)
    assert caught.value.code == "E010"
    assert "needs at least" in caught.value.message and "budget" in caught.value.message
    assert any("parameters and their gradients" in note for note in caught.value.notes)


def test_memory_budget_plans_training_so_optimize_is_refused():
    with pytest.raises(BuildError, match="memory_budget plans training"):
        _build(memory_budget="1GB", optimize=True)


@pytest.mark.parametrize(("text", "size"), [
    ("2GB", 2 * 10**9), ("1.5GiB", 3 * 2**29), ("512 MiB", 512 * 2**20), ("100kb", 100_000),
    (4096, 4096), ("4096", 4096)])
def test_budgets_read_as_sizes(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["two GB", "-5", "0", "1e9", 0, -3, True, "5 PB"])
def test_a_budget_that_is_no_size_is_a_diagnostic(text):
    with pytest.raises(BuildError, match="memory_budget must be a size"):
        parse_bytes(text)


def test_live_bytes_counts_storages_once_and_frees_them():
    a = torch.zeros(1000)
    with LiveBytes([a]) as mode:
        b = a + 1
        view = b.view(10, 100)  # no new storage
        del b, view
        c = a * 2
        del c
    assert mode.peak == 8000 and mode.live == 4000


def test_summary_reports_the_plan(capsys, tmp_path):
    from netdsl.cli import main

    spec = tmp_path / "deep.net"
    spec.write_text(DEEP, encoding="utf-8")
    eager = plan(netdsl.compile(str(spec)), None, 16).eager_peak
    assert main(["summary", str(spec), "--batch", "16", "--memory-budget",
                 str(eager // 2)]) == 0
    out = capsys.readouterr().out
    assert "memory plan for deep at batch 16" in out and "recomputed in backward:" in out
    assert main(["summary", str(spec), "--batch", "16", "--memory-budget", "1kB"]) == 1
    assert "error: a training step of deep at batch 16 needs at least" in capsys.readouterr().err


# every op with a memory fact: a max pool's indices (both kinds), dropout's mask, the merges
FACTS = """\
network facts:
    input 3x16x16
    body: conv3x3(8) -> maxpool(2x2) -> residual(conv3x3(8) -> relu)
        -> concat(identity, conv3x3(8)) -> dropout(0.5) -> adaptive_maxpool(2x2)
    head: flatten -> fc(10)
"""
MEMORY_FACTS = {"backward_extra_bytes": 0, "training_mask_bytes": 0,
                "gradient_passes_through": False}


def _with_plugin_twins(graph, keep_facts: bool):
    """``graph`` with each op that declares a memory fact replaced by a plugin op of another
    name, a copy of its record (without the facts, where ``keep_facts`` is false)."""
    twins = {}
    for record in {netdsl_ops.OPS[n.op] for n in graph.nodes}:
        if any(getattr(record, fact) != plain for fact, plain in MEMORY_FACTS.items()):
            twin = dataclasses.replace(record, name=f"plugin_{record.name}",
                                       **({} if keep_facts else MEMORY_FACTS))
            twins[record.name] = netdsl_ops.register_op(twin, replace=True).name
    nodes = tuple(dataclasses.replace(n, op=twins.get(n.op, n.op)) for n in graph.nodes)
    return dataclasses.replace(graph, nodes=nodes), twins


def test_a_plugin_op_declaring_a_memory_fact_is_planned_as_the_builtin_that_has_it():
    graph = netdsl.compile(FACTS)
    builtin = plan(graph, None, batch=4)  # its units say what each stretch keeps
    twinned, twins = _with_plugin_twins(graph, keep_facts=True)
    try:
        assert set(twins) == {"maxpool", "adaptive_maxpool", "dropout", "add", "concat"}
        assert plan(twinned, None, batch=4) == builtin
        plain, _ = _with_plugin_twins(graph, keep_facts=False)  # the facts are what counts
        assert plan(plain, None, batch=4).eager_peak != builtin.eager_peak
    finally:
        for name in twins.values():
            netdsl_ops.unregister_op(name)


@pytest.mark.parametrize("fact", ["backward_extra_bytes", "training_mask_bytes",
                                  "gradient_passes_through"])
def test_a_memory_fact_of_the_wrong_kind_is_refused_at_registration(fact):
    record = dataclasses.replace(netdsl_ops.OPS["relu"], name="plugin_relu",
                                 **{fact: -1 if fact.endswith("bytes") else "yes"})
    with pytest.raises(RegistrationError, match=fact):
        netdsl_ops.register_op(record)
