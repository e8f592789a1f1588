"""Build it yourself, chapter 01 (magnitude pruning): a magnitude mask, and the prune-then-retrain loop.

The reader writes, in plain PyTorch and for one network (no population dimension):

* ``magnitude_mask(weights, fraction_kept, global_=False)``: ``{layer: weight}`` → ``{layer: 0/1 mask}``
  keeping the largest ``|w|`` — a ``fraction_kept`` of each layer (layer-wise) or of all the layers'
  weights under one threshold (``global_``). The counts are :func:`lotterylib.masks.magnitude`'s: a
  layer of n weights (all n weights, for global) loses ``round((1 − fraction_kept)·n)`` of them.
  Checked by :func:`check_magnitude_mask` against :func:`lotterylib.masks.magnitude`.
* ``per_layer_mask(weights, kept)``: the same with one fraction kept per layer (``{layer: fraction}``,
  Han et al.'s 8 % / 9 % / 26 %). Checked by :func:`check_per_layer_mask` against
  :func:`lotterylib.masks.magnitude` with per-layer ``rates``.
* ``retrain_pruned(net, mask, batches, lr)``: prune ``net``'s weights by ``mask`` ({parameter name:
  0/1}), then one Adam step per ``(x, y)`` batch on the cross-entropy, pruned weights kept exactly
  zero; return the net. Checked by :func:`check_retrain_loop` on a tiny problem against lotterylib's
  masked training (:func:`lotterylib.masks.attach_masks`, the weight ``W ⊙ M``) on the same batches.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import masks, models
from . import Case, Report, run

# ---------------------------------------------------------------------------------------------------
# The magnitude mask


def _library_mask(weights: Mapping[str, Tensor], fraction_kept: float, global_: bool = False,
                  kept: Mapping[str, float] | None = None) -> dict[str, Tensor]:
    """lotterylib's mask of one network (``masks.magnitude`` on a population of one), as bool tensors."""
    rates = None if kept is None else {k: 1.0 - float(f) for k, f in kept.items()}
    out = masks.magnitude({k: w[None] for k, w in weights.items()}, fraction_kept, global_=global_, rates=rates)
    return {k: m[0] > 0 for k, m in out.items()}


def _called(fn: Callable[..., Any], weights: Mapping[str, Tensor], *args: Any, **kwargs: Any) -> dict[str, Tensor]:
    """The reader's mask of ``weights``, checked for form (one 0/1 tensor per layer, shaped like it,
    the weights left unchanged) and returned as bool tensors."""
    given = {k: w.clone() for k, w in weights.items()}
    out = fn(given, *args, **kwargs)
    assert isinstance(out, Mapping), f"return a dict {{layer name: mask}}, not {type(out).__name__}"
    assert set(out) == set(weights), f"return one mask per layer: got {sorted(out)}, expected {sorted(weights)}"
    for k, w in weights.items():
        m = out[k]
        assert isinstance(m, Tensor), f"layer {k}: the mask should be a tensor, not {type(m).__name__}"
        assert m.shape == w.shape, f"layer {k}: mask shape {tuple(m.shape)} differs from the weight's {tuple(w.shape)}"
        assert bool(((m == 0) | (m == 1)).all()), f"layer {k}: a mask holds only 0 (pruned) and 1 (kept)"
        assert torch.equal(given[k], w), f"layer {k}: the weights were changed; a mask is a new tensor, leave the weights alone"
    return {k: out[k] != 0 for k in weights}


COUNT_HINT = "count as the library does: a layer of n weights (all the weights, for global) loses round((1 − fraction_kept)·n)"


def _compare(got: Mapping[str, Tensor], want: Mapping[str, Tensor], weights: Mapping[str, Tensor], what: str,
             count_hint: str = COUNT_HINT) -> None:
    """Equal masks, or an AssertionError whose hint names the likely mistake."""
    for k in want:
        n_got, n_want = int(got[k].sum()), int(want[k].sum())
        if n_got != n_want:
            kept_all = sum(int(m.sum()) for m in got.values()) == sum(int(m.sum()) for m in want.values())
            hint = ("the total is right but it is split differently between the layers: "
                    + ("one threshold over all the layers' |w| together" if "global" in what
                       else "keep the fraction in EACH layer, not under one threshold for the whole net")) if kept_all else \
                count_hint
            raise AssertionError(f"{what}: layer {k} keeps {n_got} weights, expected {n_want}; {hint}")
        if not torch.equal(got[k], want[k]):
            w = weights[k].abs()
            if float((weights[k][got[k]] >= 0).float().mean()) > float((weights[k][want[k]] >= 0).float().mean()) + 0.05:
                hint = "it favours positive weights: rank by |w|, not by w"
            elif float(w[got[k]].mean()) < float(w[want[k]].mean()):
                hint = "it keeps small weights: keep the LARGEST magnitudes"
            else:
                hint = "rank the weights by |w| and keep the top ones"
            raise AssertionError(f"{what}: layer {k} keeps the right number of weights but not the right ones; {hint}")


def _random_layers(seed: int, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Three layers of different scales (as a trained net's are), so global and layer-wise masks differ."""
    g = torch.Generator().manual_seed(seed)
    return {"hidden1": (torch.randn(24, 40, generator=g) * 0.05).to(dtype),
            "hidden2": (torch.randn(12, 24, generator=g) * 0.15).to(dtype),
            "output": (torch.randn(5, 12, generator=g) * 0.4).to(dtype)}


def _tied_layers(seed: int) -> dict[str, Tensor]:
    """Weights drawn from a few values (±0.25, ±0.5, …, 0): most magnitudes tie, + and − alike."""
    g = torch.Generator().manual_seed(seed)
    return {"hidden": torch.randint(-3, 4, (16, 20), generator=g).float() / 4,
            "output": torch.randint(-3, 4, (6, 16), generator=g).float() / 4}


def _check_valid_ties(got: Mapping[str, Tensor], want: Mapping[str, Tensor], weights: Mapping[str, Tensor],
                      global_: bool, what: str) -> None:
    """With ties any choice among equal |w| is right: the counts must be the library's and no pruned
    weight may be larger than a kept one (in its layer, or anywhere for global)."""
    groups = [list(weights)] if global_ else [[k] for k in weights]
    for names in groups:  # under one threshold, tied weights may fall in any layer: only the total counts
        n_got, n_want = sum(int(got[k].sum()) for k in names), sum(int(want[k].sum()) for k in names)
        assert n_got == n_want, (
            f"{what}: {'the network' if global_ else 'layer ' + names[0]} keeps {n_got} weights, expected {n_want}; "
            "with tied |w| a threshold test (|w| > t or |w| ≥ t) keeps too few or too many: sort and keep exactly the count")
        kept = torch.cat([weights[k].abs()[got[k]] for k in names])
        pruned = torch.cat([weights[k].abs()[~got[k]] for k in names])
        if kept.numel() and pruned.numel():
            assert float(kept.min()) >= float(pruned.max()), (
                f"{what}: a pruned weight (|w| = {float(pruned.max()):g}) is larger than a kept one "
                f"(|w| = {float(kept.min()):g}) in {'the network' if global_ else 'layer ' + names[0]}")


def _case_random(global_: bool) -> Case:
    mode = "global" if global_ else "layer-wise"

    def test(fn):
        for seed, f in enumerate((1.0, 0.5, 0.3, 0.1, 0.02)):
            w = _random_layers(seed)
            _compare(_called(fn, w, f, global_=global_), _library_mask(w, f, global_), w, f"{mode}, {100 * f:g}% kept")
    return Case(f"{mode} masks of random weights equal masks.magnitude's", test)


def _case_counts(global_: bool) -> Case:
    mode = "global" if global_ else "layer-wise"

    def test(fn):
        # Layers of 1 … 12 weights and fractions whose (1 − f)·n lands on .5 or just off a whole number:
        # round() decides (Python's round: halves go to the even number, as the library's counts do).
        # Magnitudes distinct across all the layers (no ties here), signs alternating.
        g = torch.Generator().manual_seed(11)
        sizes = range(1, 13)
        values = (torch.randperm(sum(sizes), generator=g) + 1.0) / sum(sizes)
        w, start = {}, 0
        for n in sizes:
            w[f"n{n}"] = values[start:start + n] * (-1.0) ** torch.arange(n)
            start += n
        for f in (0.5, 0.25, 0.75, 0.3, 0.7, 0.9):
            got, want = _called(fn, w, f, global_=global_), _library_mask(w, f, global_)
            _compare(got, want, w, f"{mode}, {100 * f:g}% kept of layers of 1 to 12 weights")
    return Case(f"{mode}: exact counts on small layers (one weight, halves, rounding boundaries)", test)


def _case_ties(global_: bool) -> Case:
    mode = "global" if global_ else "layer-wise"

    def test(fn):
        for seed, f in enumerate((0.5, 0.3, 0.15)):
            w = _tied_layers(seed)
            got = _called(fn, w, f, global_=global_)
            _check_valid_ties(got, _library_mask(w, f, global_), w, global_, f"{mode}, {100 * f:g}% kept, tied |w|")
            again = _called(fn, w, f, global_=global_)
            assert all(torch.equal(got[k], again[k]) for k in w), (
                f"{mode}, tied |w|: two calls on the same weights gave different masks; break ties the same way "
                "every time (e.g. a stable sort: the earlier index wins)")
    return Case(f"{mode}: ties in |w| (and w vs −w) are broken consistently, with the exact count", test)


def _case_shapes() -> Case:
    def test(fn):
        g = torch.Generator().manual_seed(7)
        w = {"conv": torch.randn(8, 3, 3, 3, generator=g, dtype=torch.float64),
             "fc": torch.randn(10, 72, generator=g, dtype=torch.float64) * 0.1}
        for global_ in (False, True):
            got = _called(fn, w, 0.2, global_=global_)
            _compare(got, _library_mask(w, 0.2, global_), w, f"{'global' if global_ else 'layer-wise'}, a 4-d conv kernel in float64")
    return Case("other shapes and dtypes: a conv kernel (8, 3, 3, 3) and float64 weights", test)


def check_magnitude_mask(fn: Callable[..., dict[str, Tensor]], show: bool = True) -> Report:
    """Check ``fn(weights, fraction_kept, global_=False) -> {layer: 0/1 mask}`` against
    :func:`lotterylib.masks.magnitude`: the same masks on random weights (layer-wise and global), the
    same counts on small layers and rounding boundaries, valid and repeatable choices among tied |w|,
    any shape and dtype."""
    cases = [_case_random(False), _case_random(True), _case_counts(False), _case_counts(True),
             _case_ties(False), _case_ties(True), _case_shapes()]
    return run("magnitude_mask", fn, cases, show)


def check_per_layer_mask(fn: Callable[..., dict[str, Tensor]], show: bool = True) -> Report:
    """Check ``fn(weights, kept) -> {layer: 0/1 mask}``, ``kept`` = {layer: fraction kept of that layer},
    against :func:`lotterylib.masks.magnitude` with per-layer rates (Han et al.'s masks)."""
    def same(kept: dict[str, float], seed: int, what: str) -> None:
        w = _random_layers(seed)
        _compare(_called(fn, w, kept), _library_mask(w, 1.0, kept=kept), w, what,
                 "each layer keeps its own fraction: a layer of n weights loses round((1 − kept[layer])·n)")

    def tied(fn_):
        w = _tied_layers(3)
        kept = {"hidden": 0.25, "output": 0.5}
        _check_valid_ties(_called(fn_, w, kept), _library_mask(w, 1.0, kept=kept), w, False, "per-layer, tied |w|")

    cases = [Case("Han's fractions (8 % / 9 % / 26 %) on random weights",
                  lambda fn_: same({"hidden1": 0.08, "hidden2": 0.09, "output": 0.26}, 0, "8/9/26% kept")),
             Case("a different fraction in every layer, the output layer kept whole",
                  lambda fn_: same({"hidden1": 0.5, "hidden2": 0.2, "output": 1.0}, 1, "50/20/100% kept")),
             Case("ties in |w|: exact counts, no pruned weight larger than a kept one in its layer", tied)]
    return run("per_layer_mask", fn, cases, show)


# ---------------------------------------------------------------------------------------------------
# The prune-then-retrain loop


def _linears(net: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]


@functools.cache
def _tiny_problem() -> tuple[Tensor, Tensor, nn.Sequential]:
    """A small classification problem (16 features, 4 classes from a random linear teacher) and a
    16-48-24-4 ReLU net trained on it densely: the stand-in for a trained LeNet-300-100."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 16, generator=g)
    y = (x @ torch.randn(16, 4, generator=g)).argmax(1)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 48), nn.ReLU(), nn.Linear(48, 24), nn.ReLU(), nn.Linear(24, 4))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for batch in _batches(x, y, 400, seed=1):
        opt.zero_grad()
        F.cross_entropy(net(batch[0]), batch[1]).backward()
        opt.step()
    return x, y, net


def _batches(x: Tensor, y: Tensor, steps: int, seed: int, batch_size: int = 30) -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    idx = [torch.randint(len(y), (batch_size,), generator=g) for _ in range(steps)]
    return [(x[i], y[i]) for i in idx]


def _tiny_mask(net: nn.Module, fraction_kept: float) -> dict[str, Tensor]:
    """A layer-wise magnitude mask of the net's weights, keyed by parameter name ("0.weight", …)."""
    weights = {f"{name}.weight": layer.weight.detach() for name, layer in _linears(net)}
    return {k: m.float() for k, m in _library_mask(weights, fraction_kept).items()}


def _reference(net: nn.Module, mask: Mapping[str, Tensor], batches, lr: float) -> dict[str, Tensor]:
    """lotterylib's masked training of the same net on the same batches: the weight is W ⊙ M
    (``masks.attach_masks``), Adam on the cross-entropy. Returns the effective parameters by name."""
    layers = _linears(net)
    model = models.MLP(1, [layers[0][1].in_features] + [layer.out_features for _, layer in layers])
    lib_names = list(model.prunable())
    models.set_weights(model, {lib: layer.weight.detach()[None] for lib, (_, layer) in zip(lib_names, layers)},
                       {lib: layer.bias.detach()[None] for lib, (_, layer) in zip(lib_names, layers)})
    masks.attach_masks(model, {lib: mask[f"{name}.weight"][None] for lib, (name, _) in zip(lib_names, layers)})
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(model(x)[0], y).backward()
        opt.step()
    out = {}
    with torch.no_grad():
        for lib, (name, _) in zip(lib_names, layers):
            out[f"{name}.weight"] = model.get_submodule(lib).weight[0].clone()
            out[f"{name}.bias"] = model.get_submodule(lib).bias[0].clone()
    return out


def _accuracy(net: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def _retrained(fn: Callable[..., Any], net: nn.Module, mask: Mapping[str, Tensor], batches, lr: float) -> nn.Module:
    """The reader's retrained net (checked for form; the mask must come back unchanged)."""
    given = {k: m.clone() for k, m in mask.items()}
    out = fn(net, given, batches, lr)
    assert isinstance(out, nn.Module), f"return the retrained net (an nn.Module), not {type(out).__name__}"
    assert all(torch.equal(given[k], m) for k, m in mask.items()), "the mask was changed; it must stay as given"
    return out


def check_retrain_loop(fn: Callable[..., nn.Module], show: bool = True) -> Report:
    """Check ``fn(net, mask, batches, lr) -> net`` on a tiny problem: with no batches it only prunes; the
    pruned weights stay exactly zero while training; the kept weights and the biases follow
    lotterylib's masked training (W ⊙ M, Adam) on the same batches; the training accuracy, fallen
    after pruning, rises again."""
    x, y, trained = _tiny_problem()
    lr, fraction_kept = 3e-3, 0.15

    def setup(steps: int, seed: int = 2):
        net = copy.deepcopy(trained)
        return net, _tiny_mask(net, fraction_kept), _batches(x, y, steps, seed)

    def prunes_first(fn_):
        net, mask, _ = setup(0)
        before = {k: p.detach().clone() for k, p in net.named_parameters()}
        out = dict(_retrained(fn_, net, mask, [], lr).named_parameters())
        for k, p in before.items():
            want = p * mask[k] if k in mask else p
            assert torch.equal(out[k].detach(), want), (
                f"{k}: with no batches the net should only be pruned (W ⊙ M, biases untouched); "
                + ("zero the pruned weights before training" if k in mask else "leave the biases as they are"))

    def stays_zero(fn_):
        net, mask, batches = setup(100)
        params = dict(_retrained(fn_, net, mask, batches, lr).named_parameters())
        for k, m in mask.items():
            revived = int((params[k].detach()[m == 0] != 0).sum())
            assert revived == 0, (f"{k}: {revived} pruned weights are no longer zero after training; zero them after "
                                  "every optimizer step (or mask their gradients, after pruning them first)")

    def follows_library(fn_):
        net, mask, batches = setup(100, seed=3)
        want = _reference(net, mask, batches, lr)
        got = dict(_retrained(fn_, net, mask, batches, lr).named_parameters())
        for k, w in want.items():
            err = float((got[k].detach() - w).norm() / w.norm())
            if err > 1e-4:
                moved = float((got[k].detach() - trained.get_parameter(k).detach() * mask.get(k, 1.0)).norm() / w.norm())
                raise AssertionError(
                    f"{k} differs from lotterylib's masked training by {100 * err:.2g}% (relative); "
                    + ("it did not move: take one optimizer step per batch" if moved < 1e-6 else
                       "start from the trained (pruned) values, not fresh ones; one Adam step (lr as given, "
                       "PyTorch's defaults otherwise) per batch on the cross-entropy; zero the gradients before "
                       "each backward pass; train the biases too"))

    def accuracy_rises(fn_):
        net, mask, batches = setup(150, seed=4)
        pruned = copy.deepcopy(net)
        with torch.no_grad():
            for k, p in pruned.named_parameters():
                if k in mask:
                    p.mul_(mask[k])
        before = _accuracy(pruned, x, y)
        after = _accuracy(_retrained(fn_, net, mask, batches, lr), x, y)
        assert after > before + 0.05, (f"training accuracy {100 * before:.1f}% after pruning, {100 * after:.1f}% "
                                       "after retraining: retraining should win back what pruning lost")

    cases = [Case("no batches: the net is pruned (W ⊙ M) and nothing else changes", prunes_first),
             Case("pruned weights stay exactly zero through training", stays_zero),
             Case("weights and biases follow lotterylib's masked training (W ⊙ M, Adam) on the same batches",
                  follows_library),
             Case("the accuracy lost to pruning rises again", accuracy_rises)]
    return run("retrain_pruned", fn, cases, show)
