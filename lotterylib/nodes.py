"""Removing whole hidden units of an MLP: node pruning (He et al. 2014) and group-lasso training (Wen et al. 2016).

Pruning single weights (chapter 01) leaves every matrix its full shape with zeros in it: the network
is stored small (CSR), but a dense kernel still multiplies by every zero. Removing a hidden unit
removes a row of the layer that computes it and a column of the layer that reads it: what is left is
a smaller *dense* network, which any library runs faster.

* **Node importance** (He et al. 2014, the output-weight criterion): J_o(l, i) = mean_j |w_ji^(l+1)|,
  the mean magnitude of hidden unit i's outgoing weights — :func:`node_importance`; :func:`keep_units`
  picks each run's most important units and :func:`shrink` cuts the kept rows and columns out.
* **Group lasso** (Wen et al. 2016, "structured sparsity learning"): the penalty λ Σ_g √p_g ‖w_g‖₂ with
  one group per hidden unit — its fan-in row of p_g weights — drives whole rows to exactly zero when it
  is applied by its proximal step after every optimizer step (:class:`GroupLassoProx`):
  w_g ← w_g · max(0, 1 − lr·λ·√p_g / ‖w_g‖₂). A unit whose fan-in is zero outputs the constant
  relu(b_i); :func:`shrink` with ``fold=True`` adds that constant's contribution to the next layer's
  bias, so removing such units changes nothing at all (tested).

Shapes: lotterylib's populations, ``weights[l]`` (runs, out, in) and ``biases[l]`` (runs, out), layer 0
the input layer; ``kept[l]`` (runs, n_l) the indices of the units of hidden layer l (the outputs of
layer l) that stay.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from . import models
from .seeds import derive


def node_importance(next_weight: Tensor) -> Tensor:
    """J_o of every unit feeding a layer: the mean |w| over the outputs of ``next_weight`` (..., out, in) → (..., in)."""
    return next_weight.detach().abs().mean(-2)


def keep_units(importance: Tensor, n_keep: int) -> Tensor:
    """Per run (dim 0), the indices of the ``n_keep`` largest ``importance`` values, in increasing index order
    (ties: the lower index wins). ``importance`` (runs, units) → (runs, n_keep) long."""
    runs, units = importance.shape
    if not 1 <= int(n_keep) <= units:
        raise ValueError(f"n_keep must be in [1, {units}], got {n_keep}")
    order = torch.sort(importance, dim=1, descending=True, stable=True).indices
    return torch.sort(order[:, :int(n_keep)], dim=1).values


def random_units(runs: int, units: int, n_keep: int, seeds: Sequence[int]) -> Tensor:
    """``n_keep`` of ``units`` chosen uniformly at random per run (run i from ``seeds[i]``), sorted: the control."""
    if len(seeds) != runs:
        raise ValueError(f"one seed per run: {runs} runs, {len(seeds)} seeds")
    rows = [torch.randperm(units, generator=torch.Generator().manual_seed(int(derive(s, "random-units"))))[:n_keep]
            for s in seeds]
    return torch.sort(torch.stack(rows), dim=1).values


def importance_kept(weights: Sequence[Tensor], n_keep: Sequence[int]) -> list[Tensor]:
    """For every hidden layer l (the outputs of ``weights[l]``), the ``n_keep[l]`` units of largest J_o,
    computed from the next layer's weights ``weights[l + 1]``."""
    if len(n_keep) != len(weights) - 1:
        raise ValueError(f"one count per hidden layer: {len(weights) - 1} hidden layers, got {len(n_keep)}")
    return [keep_units(node_importance(weights[l + 1]), n) for l, n in enumerate(n_keep)]


def shrink(weights: Sequence[Tensor], biases: Sequence[Tensor], kept: Sequence[Tensor],
           fold: bool = False) -> tuple[list[Tensor], list[Tensor]]:
    """The smaller dense network that keeps hidden units ``kept[l]`` (runs, n_l) of every hidden layer l.

    Layer l keeps those rows (and biases), layer l + 1 those columns. ``fold``: the removed units are
    taken to output their constant relu(b_i) (exact when their fan-in rows are zero, as after group-lasso
    training); that constant's contribution W^(l+1)[:, i] · relu(b_i) is added to layer l + 1's bias.
    Without ``fold`` a removed unit's contribution is simply dropped (node pruning).
    """
    if len(kept) != len(weights) - 1:
        raise ValueError(f"one index set per hidden layer: {len(weights) - 1} hidden layers, got {len(kept)}")
    ws = [w.detach().clone() for w in weights]
    bs = [b.detach().clone() for b in biases]
    for l, idx in enumerate(kept):
        runs, units = bs[l].shape
        idx = idx.to(torch.long)
        if idx.shape[0] != runs or (idx < 0).any() or (idx >= units).any():
            raise ValueError(f"hidden layer {l}: indices must be (runs={runs}, n) in [0, {units})")
        if fold:
            removed = torch.ones(runs, units, dtype=torch.bool)
            removed.scatter_(1, idx, False)
            const = torch.relu(bs[l]) * removed
            bs[l + 1] = bs[l + 1] + torch.einsum("roi,ri->ro", ws[l + 1], const)
        ws[l] = ws[l].gather(1, idx.unsqueeze(-1).expand(-1, -1, ws[l].shape[2]))
        bs[l] = bs[l].gather(1, idx)
        ws[l + 1] = ws[l + 1].gather(2, idx.unsqueeze(1).expand(-1, ws[l + 1].shape[1], -1))
    return ws, bs


def mlp_from(weights: Sequence[Tensor], biases: Sequence[Tensor]) -> models.MLP:
    """A population :class:`~lotterylib.models.MLP` holding these weights (runs, out, in) and biases."""
    runs = int(weights[0].shape[0])
    widths = [int(weights[0].shape[2])] + [int(w.shape[1]) for w in weights]
    model = models.MLP(runs, widths)
    names = list(model.prunable())
    return models.set_weights(model, dict(zip(names, weights)), dict(zip(names, biases)))  # type: ignore[return-value]


def population_state(model: models.PopulationModel) -> tuple[list[Tensor], list[Tensor]]:
    """The effective weights (weight functions applied, e.g. masks) and biases of every layer, CPU copies."""
    with torch.no_grad():
        layers = list(model.prunable().values())
        return ([l.weight.detach().cpu().clone() for l in layers], [l.bias.detach().cpu().clone() for l in layers])


# --- group lasso ----------------------------------------------------------------------------------

def row_norms(weight: Tensor) -> Tensor:
    """‖w_g‖₂ of every fan-in row: (runs, out, in) → (runs, out)."""
    return weight.detach().norm(dim=-1)


class GroupLassoProx:
    """The proximal step of λ Σ_g √p_g ‖w_g‖₂ (groups: the fan-in rows of ``layers``), for ``train``'s
    ``after_step``: w_g ← w_g · max(0, 1 − lr·λ·√p_g / ‖w_g‖₂), a row whose norm is below the threshold
    becoming exactly zero. ``lr``: the optimizer's learning rate (the step the penalty's gradient would
    take). ``layers``: names of the layers whose rows are groups (the hidden layers: the output layer's
    rows are the classes)."""

    def __init__(self, strength: float, lr: float, layers: Sequence[str]):
        if strength < 0 or lr <= 0:
            raise ValueError(f"need strength ≥ 0 and lr > 0, got {strength}, {lr}")
        self.strength, self.lr, self.layers = float(strength), float(lr), list(layers)

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> None:
        found = dict(model.named_modules())
        for name in self.layers:
            w = found[name].weight
            threshold = self.lr * self.strength * w.shape[-1] ** 0.5
            norms = w.norm(dim=-1, keepdim=True)
            w.mul_(torch.clamp(1.0 - threshold / norms.clamp_min(1e-30), min=0.0))


def group_lasso_penalty(weights: Sequence[Tensor], strength: float) -> Tensor:
    """λ Σ_g √p_g ‖w_g‖₂ per run over the fan-in rows of ``weights`` (each (runs, out, in)) → (runs,)."""
    return strength * sum(w.norm(dim=-1).sum(-1) * w.shape[-1] ** 0.5 for w in weights)


def nonzero_units(weight: Tensor) -> Tensor:
    """Per run, which units (rows of ``weight`` (runs, out, in)) have a non-zero fan-in: (runs, out) bool."""
    return weight.detach().ne(0).any(-1)


def kept_nonzero(weights: Sequence[Tensor]) -> list[Tensor]:
    """For every hidden layer, the units to keep after group-lasso training: one count for the whole
    population (the most non-zero rows of any run, so every run's non-zero rows are kept), the rows of
    largest norm per run. The rows left out are zero: removing them with ``shrink(fold=True)`` is exact."""
    out = []
    for w in weights[:-1]:
        n = max(1, int(nonzero_units(w).sum(1).max()))
        out.append(keep_units(row_norms(w), n))
    return out
