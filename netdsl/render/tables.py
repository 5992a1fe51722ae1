"""``netdsl summary`` as a table, Markdown, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json

from ..ir.params import fmt_shape
from .numbers import human, human_bytes, percent, side

_COLUMNS = ("name", "op", "output", "params", "%params", "MACs", "activations", "%act", "memory",
            "RF", "jump")


def _rows(summary) -> list[list[str]]:
    per = summary.batch * summary.bytes_per_value
    params, acts = summary.total_params, summary.total_activations
    rows = []
    for x in summary.layers:
        op = f"{x.op}({x.count})" if x.count > 1 else x.op
        name = x.name + (" (aux)" if x.aux else "")
        rows.append([name, op, fmt_shape(x.shape), f"{x.params:,}", percent(x.params, params),
                     human(x.macs), f"{x.activations:,}", percent(x.activations, acts),
                     human_bytes(x.activations * per), side(x.rf), side(x.jump)])
    return rows


def _totals(summary) -> list[str]:
    """The lines under the table: totals, memory, where the parameters and values sit."""
    lines = [f"total       params {summary.total_params:,}, MACs {human(summary.total_macs)}, "
             f"activations {summary.total_activations:,} values per image"]
    inference = summary.inference()
    if inference["params"] != summary.total_params:
        lines.append(f"inference   params {inference['params']:,}, MACs "
                     f"{human(inference['macs'])}, activations {inference['activations']:,} "
                     "(auxiliary classifiers off)")
    lines.append(f"depth       {summary.depth} weight layers; final features see "
                 f"{side(summary.feature_rf)} input pixels")
    lines.append(f"memory      batch {summary.batch}, {summary.dtype}: forward "
                 f"{human_bytes(summary.forward_bytes())} (peak), forward+backward "
                 f"{human_bytes(summary.training_bytes())}")
    for key, label in (("params", "params by op"), ("activations", "values by op")):
        total = getattr(summary, f"total_{key}")
        parts = sorted(((v[key], op) for op, v in summary.by_op().items() if v[key]), reverse=True)
        lines.append(f"{label:<14}" + ", ".join(f"{op} {n:,} ({percent(n, total)})"
                                                 for n, op in parts))
    return lines


def conventions() -> list[str]:
    from ..passes.analyse import CONVENTIONS

    return ["conventions:", *(f"  - {c}" for c in CONVENTIONS)]


def format_table(summary, source: str) -> str:
    """The per-layer table, then totals and the conventions."""
    rows = [list(_COLUMNS), *_rows(summary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = [f"{summary.network} ({source}): {fmt_shape(summary.input)} -> "
             f"{summary.output_text()}"]
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                   strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", *_totals(summary), *conventions()]) + "\n"


def format_markdown(summary, source: str) -> str:
    lines = [f"**{summary.network}** (`{source}`): {fmt_shape(summary.input)} -> "
             f"{summary.output_text()}", "", "| " + " | ".join(_COLUMNS) + " |",
             "|" + "|".join("---" if i < 3 else "---:" for i in range(len(_COLUMNS))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(summary)]
    return "\n".join([*lines, "", "```", *_totals(summary), *conventions(), "```"]) + "\n"


def format_json(summary, source: str) -> str:
    return json.dumps({"spec": source, **summary.to_json()}, indent=2) + "\n"


def format_csv(summary, source: str) -> str:
    """One row per layer (raw numbers), then a ``total`` row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "op", "shape", "params", "macs", "activations", "bytes",
                     "receptive_field", "jump", "aux"])
    per = summary.batch * summary.bytes_per_value
    for x in summary.layers:
        writer.writerow([x.name, x.op, fmt_shape(x.shape), x.params, x.macs, x.activations,
                         x.activations * per, fmt_shape(x.rf), fmt_shape(x.jump), int(x.aux)])
    writer.writerow(["total", "", fmt_shape(summary.output), summary.total_params,
                     summary.total_macs, summary.total_activations,
                     summary.total_activations * per, fmt_shape(summary.feature_rf), "", ""])
    return out.getvalue()
