"""Significance: how every check of the claims decides an ordering from per-seed values.

The rule (``../shared/reference/claims.md``, Corrections): a check uses a number only where the paper
states one; otherwise it is an *ordering*, and an ordering holds when the gap between the seed means
exceeds :data:`SIGNIFICANCE` (two) pooled standard errors of the per-seed values. :func:`gap` measures
a − b; ``gap(a, b).exceeds()`` is that rule, ``gap(a, b).consistent_with(x)`` asks whether a stated
paper number lies within two standard errors of what was measured. With fewer than two values on a
side there is no standard error, and nothing can be decided (``None``).

The standard error of a gap is sqrt(SE_a² + SE_b²), SE = sample std / √n: the two sides are
independent runs (different seeds or different initialisations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: An ordering holds when the gap exceeds this many pooled standard errors.
SIGNIFICANCE = 2.0


def seed_se(x: Sequence[float]) -> float:
    """Standard error of the seed mean (NaN with fewer than two seeds)."""
    x_ = np.asarray(x, float)
    return float(x_.std(ddof=1) / np.sqrt(len(x_))) if len(x_) > 1 else float("nan")


@dataclass(frozen=True)
class Gap:
    """a − b over seeds: the seed means, their difference and its standard error."""

    a_mean: float
    b_mean: float
    a_se: float
    b_se: float
    n_a: int
    n_b: int

    @property
    def diff(self) -> float:
        return self.a_mean - self.b_mean

    @property
    def se(self) -> float:
        return math.hypot(self.a_se, self.b_se)

    @property
    def decidable(self) -> bool:
        return self.n_a > 1 and self.n_b > 1 and math.isfinite(self.se)

    def exceeds(self, k: float = SIGNIFICANCE) -> bool | None:
        """a > b by more than ``k`` standard errors (None: too few seeds to say)."""
        if not self.decidable:
            return None
        return self.diff > k * self.se

    def within(self, k: float = SIGNIFICANCE) -> bool | None:
        """|a − b| ≤ ``k`` standard errors: no significant difference (None: too few seeds)."""
        if not self.decidable:
            return None
        return abs(self.diff) <= k * self.se

    def consistent_with(self, stated: float, k: float = SIGNIFICANCE) -> bool | None:
        """Whether a gap the paper states lies within ``k`` standard errors of the measured one."""
        if not self.decidable:
            return None
        return abs(self.diff - stated) <= k * self.se

    def text(self, scale: float = 100.0, unit: str = "pp", digits: int = 2) -> str:
        """``+0.22 ± 0.06 pp (3.7 SE)``: the gap, its standard error and the gap in standard errors."""
        if not self.decidable:
            return f"{scale * self.diff:+.{digits}f} {unit} (no SE: fewer than 2 seeds)"
        z = self.diff / self.se if self.se > 0 else math.copysign(math.inf, self.diff) if self.diff else 0.0
        in_se = f"{z:+.1f} SE" if abs(z) < 100 else f"{'+' if z > 0 else '−'}≫ 100 SE"
        return f"{scale * self.diff:+.{digits}f} ± {scale * self.se:.{digits}f} {unit} ({in_se})"


def gap(a: Sequence[float], b: Sequence[float]) -> Gap:
    """The gap a − b between two sets of per-seed values."""
    a_, b_ = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if not len(a_) or not len(b_):
        raise ValueError("a gap needs at least one value on each side")
    return Gap(float(a_.mean()), float(b_.mean()), seed_se(a_), seed_se(b_), len(a_), len(b_))


def significantly_greater(a: Sequence[float], b: Sequence[float]) -> bool | None:
    """The ordering rule: mean(a) − mean(b) > 2 pooled standard errors (None: fewer than 2 seeds)."""
    return gap(a, b).exceeds()


def consistent_with(values: Sequence[float], stated: float, k: float = SIGNIFICANCE) -> bool | None:
    """Whether a number the paper states lies within ``k`` standard errors of the seed mean of ``values``."""
    v = np.asarray(values, float).ravel()
    se = seed_se(v)
    if not math.isfinite(se):
        return None
    return abs(float(v.mean()) - stated) <= k * max(se, 1e-12)


def mean_se(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    """``98.12 ± 0.05`` (seed mean ± its standard error, scaled; no ± with one seed)."""
    v = np.asarray(values, float).ravel()
    se = seed_se(v)
    return f"{scale * v.mean():.{digits}f}" + (f" ± {scale * se:.{digits}f}" if math.isfinite(se) else "")


def gap_and_se(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean difference a − b and its pooled standard error; the error is 0 when either side has
    fewer than two seeds (kept for the checks that report a gap without deciding on it)."""
    g = gap(a, b)
    return g.diff, (g.se if g.decidable else 0.0)


def fmt_pp(x: float) -> str:
    """A difference of fractions as signed percentage points, e.g. 0.0123 → ``+1.23 pp``."""
    return f"{100 * x:+.2f} pp"
