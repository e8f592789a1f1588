"""Figure helpers shared by every chapter: one look, labelled axes, fractions shown as percentages."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

COLORS = {"ticket": "#1f77b4", "reinit": "#d62728", "oneshot": "#2ca02c", "dense": "#7f7f7f",
          "random": "#9467bd"}


def figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.4, **kw):
    """A figure with ``nrows × ncols`` axes of a consistent size; returns (fig, axes)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             constrained_layout=True, **kw)
    return fig, axes[0, 0] if nrows == ncols == 1 else axes.ravel()


def percent_axis(ax, axis: str = "x", log: bool = True, reverse: bool = True) -> None:
    """Format an axis of fractions (e.g. weights remaining) as percentages; log scale, 100 % first."""
    from matplotlib.ticker import FuncFormatter
    a = ax.xaxis if axis == "x" else ax.yaxis
    if log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.3g}%"))
    a.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    if reverse:
        (ax.invert_xaxis if axis == "x" else ax.invert_yaxis)()


def mean_band(ax, x: Sequence[float], ys: np.ndarray, label: str, color: str | None = None, marker: str = "o"):
    """Plot the mean over seeds (rows of ``ys``, shape (seeds, points)) with a min–max band."""
    ys = np.asarray(ys, dtype=float)
    if ys.ndim == 1:
        ys = ys[None]
    color = color or COLORS.get(label)
    ax.plot(x, ys.mean(0), marker=marker, label=label, color=color, ms=4)
    if ys.shape[0] > 1:
        ax.fill_between(x, ys.min(0), ys.max(0), alpha=0.2, color=color)
