"""``netdsl summary --plot``: activation memory against parameters per layer (matplotlib)."""

from __future__ import annotations

from pathlib import Path

from ..errors import NetDSLError


def plot(summary, path: Path) -> None:
    """Per-layer bars: activation memory (left) against parameters (right), the VGG picture."""
    try:
        import matplotlib
    except ImportError:
        raise NetDSLError("--plot needs matplotlib, which is not installed",
                          notes=("pip install 'netdsl[plot]' (or pip install matplotlib)",)) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    try:
        fig.savefig(path, dpi=120)
    except OSError as error:
        raise NetDSLError(f"cannot write '{path}': {error.strerror or error}") from None
    finally:
        plt.close(fig)
