"""``netdsl summary --plot``: activation memory against parameters per layer; ``netdsl sweep
--plot``: measured accuracy against MACs per point of a design space (matplotlib)."""

from __future__ import annotations

from pathlib import Path

from ..errors import NetDSLError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise NetDSLError("--plot needs matplotlib, which is not installed",
                          notes=("pip install 'netdsl[plot]' (or pip install matplotlib)",)) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_plot(path: Path) -> None:
    """Fails before any work for a chart that cannot be written (matplotlib, format, folder)."""
    from ..files import check_writable

    _pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    known = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in known:
        raise NetDSLError(f"cannot write '{path}': unknown picture format '{path.suffix}'",
                          notes=(f"known formats: {', '.join('.' + k for k in sorted(known))}",))
    check_writable(path)


def plot(summary, path: Path) -> None:
    """Per-layer bars: activation memory (left) against parameters (right), the VGG picture."""
    from ..files import atomic_write

    check_plot(path)
    plt = _pyplot()
    rows = [x for x in summary.layers if x.params or x.activations]
    per = summary.batch * summary.bytes_per_value
    fig, (left, right) = plt.subplots(1, 2, sharey=True, figsize=(11, 1.5 + 0.22 * len(rows)))
    ys = range(len(rows))
    left.barh(ys, [x.activations * per / 2 ** 20 for x in rows], color="#d9822b")
    right.barh(ys, [x.params / 1e6 for x in rows], color="#2b6cd9")
    left.set_yticks(list(ys), [x.name for x in rows], fontsize=8)
    left.invert_yaxis()
    left.invert_xaxis()
    left.set_xlabel(f"activation memory, MiB (batch {summary.batch}, {summary.dtype})")
    right.set_xlabel("parameters, millions")
    fig.suptitle(f"{summary.network}: where the memory and the parameters sit")
    fig.tight_layout()
    try:  # the temporary file's name has no picture suffix: the format is given
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120,
                                                   format=path.suffix.lower().lstrip(".")))
    finally:
        plt.close(fig)


def plot_sweep(points, labels: list[str], path: Path) -> None:
    """Accuracy against MACs, one dot per point with trials (its label beside it), the points
    over budget hollow, and the accuracy-MACs Pareto front among the others as a line."""
    from ..errors import NetDSLError
    from ..files import atomic_write
    from ..passes.explore import mark_pareto

    check_plot(path)
    shown = [(p, label) for p, label in zip(points, labels, strict=True) if "accuracy" in p.measured]
    if not shown:
        raise NetDSLError("--plot: no trial under --results matched a point of the grid",
                          notes=("trials match by the network parameters in their metrics.json",))
    marked = mark_pareto([p for p, _ in shown], ("macs", "accuracy"))
    front = {id(p) for (p, _), m in zip(shown, marked, strict=True) if m.pareto}
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for p, label in shown:
        x, y = p.figures["macs"], p.measured["accuracy"]
        ax.scatter([x], [y], s=40, color="#2b6cd9", facecolors="none" if p.over else "#2b6cd9")
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    best = sorted((p.figures["macs"], p.measured["accuracy"]) for p, _ in shown if id(p) in front)
    ax.plot([b[0] for b in best], [b[1] for b in best], color="#d9822b", label="Pareto front")
    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.08)  # room for the labels of the points at the edges
    ax.set_xlabel("multiply-accumulates per image (static, from the IR)")
    ax.set_ylabel("test accuracy (mean over trials)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120,
                                                   format=path.suffix.lower().lstrip(".")))
    finally:
        plt.close(fig)
