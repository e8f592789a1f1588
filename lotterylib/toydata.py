"""Two-dimensional toy data made by formula (no download): the nested spirals of Net-Trim's supplementary.

Two classes wind around the origin as interleaved Archimedean spirals: a point of class ``c`` at
position ``t ∈ [0, 1]`` along its arm sits at radius ``t`` and angle ``2π·turns·t + π·c``, plus
isotropic Gaussian noise of standard deviation ``noise``. With ``turns = 1.5`` (the default) the arms
wrap around each other one and a half times, the picture of the Net-Trim supplementary (Fig. S.1).
"""

from __future__ import annotations

import math

import torch

from .data import Dataset, Split


def spirals(n: int, noise: float = 0.02, seed: int = 0, turns: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of two nested spirals: ``x`` (n, 2) float32 in about [-1, 1]², ``y`` (n,) int64 ∈ {0, 1}.

    Classes alternate (``y[i] = i % 2``) so any prefix is balanced. The position along the arm is
    drawn as ``t = sqrt(u)``, u ~ U(0.0025, 1), which spreads the points evenly over the area rather
    than crowding the centre. Deterministic given ``seed``.
    """
    if int(n) < 2:
        raise ValueError(f"need at least 2 points, got n={n}")
    if not noise >= 0:
        raise ValueError(f"noise must be ≥ 0, got {noise}")
    if not turns > 0:
        raise ValueError(f"turns must be > 0, got {turns}")
    g = torch.Generator().manual_seed(int(seed))
    y = torch.arange(int(n)) % 2
    t = torch.sqrt(0.0025 + 0.9975 * torch.rand(int(n), generator=g, dtype=torch.float64))
    angle = 2 * math.pi * turns * t + math.pi * y
    x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1)
    x = x + noise * torch.randn(int(n), 2, generator=g, dtype=torch.float64)
    return x.float(), y.long()


def spirals_dataset(n_train: int = 2000, n_val: int = 1000, n_test: int = 2000, noise: float = 0.02,
                    seed: int = 0, turns: float = 1.5) -> Dataset:
    """A :class:`~lotterylib.data.Dataset` of nested spirals; the three splits are independent draws."""
    splits = []
    for i, n in enumerate((n_train, n_val, n_test)):
        x, y = spirals(n, noise, seed * 1000 + i, turns)
        splits.append(Split(x, y))
    return Dataset("spirals", *splits, num_classes=2, input_shape=(2,),
                   note=f"nested spirals, {turns} turns, noise {noise}")


def grid(lim: float = 1.15, steps: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A square grid for decision-boundary pictures: ``(xx, yy, points)`` with points (steps², 2)."""
    ax = torch.linspace(-lim, lim, steps)
    xx, yy = torch.meshgrid(ax, ax, indexing="xy")
    return xx, yy, torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
