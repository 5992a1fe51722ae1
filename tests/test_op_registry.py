"""The op table's registration rules, one branch each: what a record must be to be
registered, who may replace or remove one, and how installed plugins are loaded. Mutation
testing (mutmut on netdsl/ir/ops.py and record.py) found these branches unguarded beyond the
plugin tests' main cases."""

from __future__ import annotations

import dataclasses

import pytest

import netdsl
from netdsl.errors import RegistrationError
from netdsl.ir.graph import format_attrs
from netdsl.ir.ops import (
    OPS,
    Param,
    TorchExpression,
    TorchModule,
    load_plugins,
    register_op,
    unregister_op,
)


def _record(**change):
    return dataclasses.replace(OPS["relu"], **{"name": "my_relu", **change})


@pytest.fixture(autouse=True)
def _clean():
    yield
    for name in ("my_relu", "my_other"):
        unregister_op(name)


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "class"}, "the name must be a netdsl name that is not reserved"),
    ({"name": "two words"}, "the name must be a netdsl name that is not reserved"),
    # reserved, though a built-in op has it
    ({"name": "input"}, "the name must be a netdsl name that is not reserved"),
    *[({field: 3}, f"'{field}' must be a function")
      for field in ("infer", "count_params", "macs", "window", "display")],
    ({"params": (Param("k", "colour"),)}, "every parameter needs a kind among bool, choice, count, "
     "float, int, optfloat, optsize, pad, perm, prob, size"),
    ({"arity": 3}, "arity must be -1, 0, 1 or 2"),
    ({"arity": -2}, "arity must be -1, 0, 1 or 2"),
    ({"init_role": "embedding"}, "init_role must be None or one of conv, linear, norm"),
    ({"style": "sparkly"}, "style must be one of activation, io, merge, norm, pool, shape, "
     "weight"),
    ({"torch": None}, "needs a torch emission (TorchModule, TorchParameter or "
                      "TorchExpression)"),
    ({"torch": "torch.nn.ReLU"}, "torch must be a TorchModule, TorchParameter or "
                                 "TorchExpression"),
    ({"torch": TorchModule("ReLU", lambda a, ins, inplace: ((), {}))},
     "torch class 'ReLU' is not a dotted import path like my_plugin.layers.Scale"),
    ({"torch": TorchModule("torch.nn.ReLU()", lambda a, ins, inplace: ((), {}))},
     "is not a dotted import path like my_plugin.layers.Scale"),
    ({"torch": TorchModule(".nn.ReLU", lambda a, ins, inplace: ((), {}))},
     "is not a dotted import path like my_plugin.layers.Scale"),
    ({"view": "yes"}, "view must be true, false or a function"),
])
def test_a_malformed_record_is_refused_with_its_reason(change, message):
    with pytest.raises(RegistrationError, match=f"op record '{change.get('name', 'my_relu')}'"
                       if "name" not in change else "op record") as caught:
        register_op(_record(**change))
    assert str(caught.value).endswith(message)
    assert "my_relu" not in OPS


@pytest.mark.parametrize("change", [
    {"arity": -1}, {"arity": 0}, {"arity": 2}, {"init_role": None}, {"init_role": "norm"},
    {"view": True}, {"view": lambda a, ins, out: False},
    {"torch": TorchExpression(lambda a, xs: xs[0])},
    {"torch": TorchModule("my_plugin.layers.Scale", lambda a, ins, inplace: ((), {}))},
    {"torch": TorchModule("a.b", lambda a, ins, inplace: ((), {}))},
])
def test_a_wellformed_record_is_registered(change):
    assert register_op(_record(**change)).name == "my_relu"
    assert "my_relu" in OPS and OPS["my_relu"] is not OPS["relu"]


def test_only_a_record_can_be_registered():
    with pytest.raises(RegistrationError, match="expected an netdsl.OpRecord, got dict"):
        register_op({"name": "my_relu"})


def test_a_plugin_may_replace_its_own_record_but_never_a_builtin():
    first = register_op(_record())
    second = _record(doc="again")
    with pytest.raises(RegistrationError, match="an op named 'my_relu' is already registered"):
        register_op(second)
    assert register_op(second, replace=True) is second and OPS["my_relu"] is second
    assert OPS["my_relu"] is not first
    with pytest.raises(RegistrationError, match="already registered"):
        register_op(_record(name="relu"), replace=True)
    assert OPS["relu"].torch.cls == "torch.nn.ReLU"


def test_built_in_ops_cannot_be_removed():
    with pytest.raises(RegistrationError, match="'relu' is a built-in op"):
        unregister_op("relu")
    assert "relu" in OPS
    unregister_op("never_registered")  # removing what is not there is fine


def test_an_installed_plugin_with_a_reserved_name_is_refused_naming_its_entry_point():
    with pytest.raises(RegistrationError) as caught:
        load_plugins([_Point("p", _record(name="stage"))])
    assert str(caught.value).endswith("plugin entry point 'p' (pkg:p): op record 'stage': the "
                                      "name must be a netdsl name that is not reserved")
    assert "stage" not in OPS


class _Point:
    def __init__(self, name, provided):
        self.name, self.value, self._provided = name, f"pkg:{name}", provided

    def load(self):
        return self._provided


def test_plugins_provide_a_record_a_list_or_a_function_returning_records():
    one, other = _record(), _record(name="my_other")
    assert load_plugins([_Point("a", one)]) == ["my_relu"]
    assert load_plugins([_Point("a", one)]) == []  # loaded again: nothing new
    unregister_op("my_relu")
    assert load_plugins([_Point("b", lambda: [one, other])]) == ["my_relu", "my_other"]
    assert OPS["my_other"] is other


def test_a_plugin_function_that_raises_names_its_entry_point():
    def broken():
        raise ValueError("no")

    with pytest.raises(RegistrationError, match=r"'c' \(pkg:c\) failed to load: ValueError: no"):
        load_plugins([_Point("c", broken)])


def test_the_op_table_reads_like_a_mapping():
    names = list(OPS)
    assert len(OPS) == len(names) and names[0] == "input" and "conv" in names
    assert "no_such_op" not in OPS and 3 not in OPS
    with pytest.raises(KeyError):
        OPS["no_such_op"]


def test_a_record_describes_itself_and_writes_its_signature():
    record = _record(params=(Param("size", "size", (3, 5)), Param("mode", "choice", "max"),
                             Param("on", "bool", False), Param("std", "optfloat", None),
                             Param("n", "count")))
    assert record.signature() == "size=3x5, mode=max, on=false, std=none, n"
    assert record.description == "the layer 'my_relu'"
    assert OPS["conv"].description == "the layer 'conv'"


def test_analysis_asks_a_plugin_view_with_the_node_attributes():
    """A record's view function gets the node's attributes (none of the built-ins reads them)."""
    from netdsl.passes.analyse import activation_counts

    register_op(dataclasses.replace(OPS["dropout"], name="my_other",
                                    view=lambda a, ins, out: a["p"] == 0.0))
    spec = "network t:\n    input 3x8x8\n    conv(4, 3x3) -> my_other({})\n"
    assert activation_counts(netdsl.compile(spec.format("0.0")))[-1] == 0
    assert activation_counts(netdsl.compile(spec.format("0.5")))[-1] == 4 * 6 * 6


def test_a_plugin_loads_when_a_spec_names_its_entry_point(monkeypatch):
    from netdsl.ir import ops

    loaded = []
    point = _Point("my_relu", lambda: loaded.append(1) or _record())
    monkeypatch.setattr(ops, "_pending", {"my_relu": point})
    assert "my_relu" in OPS and not loaded  # named, not loaded
    netdsl.compile("network t:\n    input 3x8x8\n    relu\n")
    assert not loaded
    netdsl.compile("network t:\n    input 3x8x8\n    my_relu\n")
    netdsl.compile("network t:\n    input 3x8x8\n    my_relu\n")
    assert loaded == [1] and OPS["my_relu"].name == "my_relu"


def test_an_entry_point_must_be_named_after_its_op(monkeypatch):
    from netdsl.ir import ops

    monkeypatch.setattr(ops, "_pending", {"my_other": _Point("my_other", _record())})
    with pytest.raises(RegistrationError, match="'my_other' \\(pkg:my_other\\) provides no "
                                                "op named 'my_other'"):
        netdsl.compile("network t:\n    input 3x8x8\n    my_other\n")


def test_a_failing_plugin_reaches_the_terminal_without_its_escapes(monkeypatch, tmp_path, capsys):
    from netdsl.cli import main
    from netdsl.ir import ops

    def broken():
        raise ImportError("\x1b[2J\x1b]0;owned\x07 no module")

    monkeypatch.setattr(ops, "_pending", {"my_relu": _Point("my_relu", broken)})
    spec = tmp_path / "t.net"
    spec.write_text("network t:\n    input 3x8x8\n    my_relu\n")
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "ImportError: \\x1b[2J\\x1b]0;owned\\x07 no module" in err, err
    assert "\x1b" not in err and "\x07" not in err


def test_completion_offers_an_unloaded_plugin_op_without_loading_it(monkeypatch):
    from netdsl.ir import ops
    from netdsl.lsp.completion import complete

    loaded = []
    point = _Point("my_relu", lambda: loaded.append(1) or _record())
    monkeypatch.setattr(ops, "_pending", {"my_relu": point})
    items = complete("network t:\n    input 3x8x8\n    my_", None, None, 3, 8).items
    offered = [i for i in items if i.label == "my_relu"]
    assert offered and "plugin" in offered[0].detail and not loaded


def test_a_stride_defaults_to_the_kernel_only_where_the_record_says_so():
    """One rule (OpRecord.stride_defaults_to_kernel) for the binder and the IR text: a pool's
    stride left out is its kernel, and is left out again; a conv's stride equal to its kernel
    is not its default (ConvNeXt's 4x4/4 stem), so the IR text writes it."""
    graph = netdsl.compile("network n:\n    input 3x16x16\n"
                           "    conv(8, 4x4, stride=4) -> maxpool(2x2) -> maxpool(2x2, stride=1)\n")
    conv, pool, overlapping = graph.nodes[1:]
    assert pool.attrs["stride"] == (2, 2)
    assert (format_attrs(conv), format_attrs(pool), format_attrs(overlapping)) == \
        ("8, 4, stride=4", "2", "2, stride=1")
