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


def pm_band(ax, rows: Sequence[dict], variant: str, key: str, label: str | None = None,
            color: str | None = None) -> None:
    """Seed mean and min–max band of a per-seed field against weights remaining (log axis, 100 % first).

    ``rows``: experiment summary rows (:func:`lotterylib.lottery.summarize`), each with
    ``variant``, ``weights_remaining`` and ``key`` (e.g. ``per_seed_test_acc``: one value per seed).
    """
    chosen = sorted((r for r in rows if r["variant"] == variant), key=lambda r: -r["weights_remaining"])
    if not chosen:
        return
    x = [r["weights_remaining"] for r in chosen]
    mean_band(ax, x, np.asarray([r[key] for r in chosen], dtype=float).T, label or variant, color=color)


def learning_curves(ax, curves: Sequence[dict], variant: str, rounds: Sequence[int], key: str = "test_acc",
                    cmap: str = "viridis") -> None:
    """Curves (``key`` against iteration) of ``variant`` at ``rounds``, one colour per round: the seed mean,
    with the seeds' band where the rows hold per-seed curves.

    ``curves``: rows with ``round``, ``variant``, ``weights_remaining``, ``iterations`` and ``key``
    (the ``curves`` of an LT experiment summary).
    """
    chosen = [c for c in curves if c["variant"] == variant and c["round"] in set(rounds)]
    colors = plt.get_cmap(cmap)(np.linspace(0, 0.9, max(1, len(chosen))))
    for c, color in zip(sorted(chosen, key=lambda c: c["round"]), colors):
        values = np.asarray(c[key], dtype=float)
        if values.ndim == 2:  # per-seed curves: the mean, and the seeds' min–max band
            ax.fill_between(c["iterations"], values.min(0), values.max(0), color=color, alpha=0.15, lw=0)
            values = values.mean(0)
        ax.plot(c["iterations"], values, color=color, lw=1.2, label=f"{variant} Pm {100 * c['weights_remaining']:.3g}%")


def round_band(ax, table: dict, name: str, label: str | None = None, color: str | None = None) -> None:
    """Seed mean and band of ``name``'s per-round accuracies against weights remaining.

    ``table``: a criteria accuracy table (:func:`lotterylib.deconstruct.accuracy_table`): ``rounds``,
    ``weights_remaining`` and ``acc[name][str(round)]`` = per-seed accuracies.
    """
    pm = dict(zip(table["rounds"], table["weights_remaining"]))
    rounds = sorted(int(r) for r in table["acc"].get(name, {}))
    if rounds:
        ys = np.asarray([table["acc"][name][str(r)] for r in rounds], dtype=float).T
        mean_band(ax, [pm[r] for r in rounds], ys, label or name, color=color)
