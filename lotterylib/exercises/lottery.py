"""Build it yourself, chapter 02 (the lottery ticket): one IMP round, and keeping pruned weights at zero.

The reader writes, in plain PyTorch and for one network (no population dimension):

* ``imp_round(mask, w_final, w_init, p, p_output, output_layer)`` → ``(new_mask, weights)``: one round of
  iterative magnitude pruning. In every layer, prune ``round(p · kept)`` of the weights the mask still
  keeps — those with the smallest ``|w_final|`` (the layer ``output_layer`` at its own rate ``p_output``)
  — never reviving a pruned one; then reset the kept weights to ``w_init`` (θ₀) and the pruned ones to
  zero. Checked by :func:`check_imp_round` against :func:`lotterylib.lottery.next_mask` and
  :func:`lotterylib.masks.prune` (random weights, ties, counts on the rounding boundary, layers of
  different scales, a later round).
* ``masked_training_step(model, masks, optimizer, loss)``: one training step that keeps every weight a
  mask prunes exactly zero, whatever the optimizer does (momentum, Adam's moments, weight decay, a
  state carried over from before pruning). Checked by :func:`check_masked_training_step`.

And a checker for the reader's *own* model and optimizer, :func:`check_mask_invariant`: it trains a few
steps and verifies that the pruned weights stay exactly zero — the invariant that a published bug breaks
(pruned weights zeroed once, then revived by the optimizer).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import Tensor, nn

from .. import lottery, masks
from . import Case, Report, run

# ---------------------------------------------------------------------------------------------------
# One IMP round


def _library_round(mask: Mapping[str, Tensor], w_final: Mapping[str, Tensor], p: float, p_output: float,
                   output_layer: str, seed: int = 0) -> dict[str, Tensor]:
    """lotterylib's next mask of one network (``masks.prune`` on a population of one), as bool tensors."""
    rates = {k: (p_output if k == output_layer else p) for k in mask}
    out = masks.prune({k: m[None].float() for k, m in mask.items()},
                      {k: w.abs()[None] for k, w in w_final.items()}, rates, seeds=[seed])
    return {k: m[0] > 0 for k, m in out.items()}


def _called_round(fn: Callable[..., Any], mask: Mapping[str, Tensor], w_final: Mapping[str, Tensor],
                  w_init: Mapping[str, Tensor], p: float, p_output: float, output_layer: str
                  ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The reader's round, checked for form (a new 0/1 mask and reset weights per layer, shaped like the
    layer, the inputs left unchanged); returns the mask as bool tensors and the weights."""
    given = [{k: t.clone() for k, t in d.items()} for d in (mask, w_final, w_init)]
    out = fn(*given, p, p_output, output_layer)
    assert isinstance(out, tuple) and len(out) == 2, "return a pair (new_mask, weights), each a dict {layer: tensor}"
    new_mask, weights = out
    for what, d in (("new_mask", new_mask), ("weights", weights)):
        assert isinstance(d, Mapping), f"{what} should be a dict {{layer name: tensor}}, not {type(d).__name__}"
        assert set(d) == set(mask), f"{what} should have one entry per layer: got {sorted(d)}, expected {sorted(mask)}"
    for k, m in mask.items():
        got_m, got_w = new_mask[k], weights[k]
        assert isinstance(got_m, Tensor) and isinstance(got_w, Tensor), f"layer {k}: return tensors"
        assert got_m.shape == m.shape, f"layer {k}: mask shape {tuple(got_m.shape)} differs from the layer's {tuple(m.shape)}"
        assert bool(((got_m == 0) | (got_m == 1)).all()), f"layer {k}: a mask holds only 0 (pruned) and 1 (kept)"
        assert got_w.shape == m.shape, f"layer {k}: weights shape {tuple(got_w.shape)} differs from the layer's {tuple(m.shape)}"
        assert got_w.dtype == w_init[k].dtype, (f"layer {k}: the weights come back as {got_w.dtype}, θ₀ is "
                                                f"{w_init[k].dtype}: keep θ₀'s dtype (multiply, do not convert)")
    for name, before, after in zip(("mask", "w_final", "w_init"), (mask, w_final, w_init), given):
        for k in before:
            assert torch.equal(before[k], after[k]), (f"layer {k}: your function changed its input {name}; "
                                                      "return new tensors and leave the inputs alone")
    return {k: new_mask[k] != 0 for k in mask}, dict(weights)


def _count_hint(got: Mapping[str, Tensor], mask: Mapping[str, Tensor], k: str, p: float, p_output: float,
                output_layer: str) -> str | None:
    """The likely mistake behind a wrong count of kept weights in layer ``k`` (None: no known one)."""
    before = mask[k] > 0
    kept, n_got, size = int(before.sum()), int(got[k].sum()), before.numel()
    rate, other = (p_output, p) if k == output_layer else (p, p_output)
    total = sum(int((m > 0).sum()) for m in mask.values())
    if other != rate and kept - n_got == round(other * kept):
        return (f"that is the {'hidden' if k == output_layer else 'output'} layers' rate: the output layer "
                f"({output_layer}) is pruned at p_output, every other layer at p")
    if kept < size and (kept - n_got == round(rate * size) or n_got == size - round(rate * size)):
        return "p is a fraction of the weights the mask still KEEPS, not of the layer's size"
    if len(mask) > 1 and sum(int(g.sum()) for g in got.values()) in (total - round(p * total), total - round(p_output * total)):
        return "that is one threshold over the whole network: prune p in EACH layer (the output layer at p_output)"
    if abs(n_got - (kept - round(rate * kept))) == 1:  # off by one: the rounding
        return (f"prune round(p · kept) = round({rate:g} · {kept}) = {round(rate * kept)} of the {kept} kept weights "
                "(Python's round, halves to the even number, as lotterylib's count)")
    return None


def _compare_round(got: Mapping[str, Tensor], want: Mapping[str, Tensor], mask: Mapping[str, Tensor],
                   w_final: Mapping[str, Tensor], p: float, p_output: float, output_layer: str, what: str) -> None:
    """Equal masks, or an AssertionError whose hint names the likely mistake."""
    for k in want:
        before = mask[k] > 0
        revived = int((got[k] & ~before).sum())
        assert not revived, (f"{what}: layer {k} revives {revived} weight(s) the old mask had pruned; a pruned weight "
                             "stays pruned: rank only the weights the mask still keeps")
        n_got, n_want = int(got[k].sum()), int(want[k].sum())
        if n_got != n_want:
            rate = p_output if k == output_layer else p
            hint = _count_hint(got, mask, k, p, p_output, output_layer) or (
                f"prune exactly round(p · kept) = round({rate:g} · {int(before.sum())}) of the kept weights")
            raise AssertionError(f"{what}: layer {k} keeps {n_got} weights, expected {n_want}; {hint}")
        if not torch.equal(got[k], want[k]):
            w = w_final[k]
            pruned_now = before & ~got[k]
            if pruned_now.any() and float((w[pruned_now] < 0).float().mean()) > 0.9:
                hint = "it prunes the most negative weights: rank by |w_final|, not by w_final"
            elif float(w.abs()[got[k]].mean()) < float(w.abs()[want[k]].mean()):
                hint = "it keeps small weights: prune the SMALLEST |w_final|, keep the largest"
            else:
                hint = "rank the kept weights by |w_final| and prune the smallest ones"
            raise AssertionError(f"{what}: layer {k} keeps the right number of weights but not the right ones; {hint}")


def _check_reset(got_mask: Mapping[str, Tensor], weights: Mapping[str, Tensor], w_init: Mapping[str, Tensor],
                 w_final: Mapping[str, Tensor], what: str) -> None:
    for k, m in got_mask.items():
        w, w0 = weights[k], w_init[k]
        if not torch.equal(w[m], w0[m]):
            hint = ("they hold the trained weights: reset the kept ones to θ₀ (w_init), the 'reset' of IMP"
                    if torch.equal(w[m], w_final[k][m].to(w.dtype)) else "set every kept weight to its value in w_init")
            raise AssertionError(f"{what}: layer {k}'s kept weights are not their initial values; {hint}")
        assert bool((w[~m] == 0).all()), f"{what}: layer {k}: the pruned weights must be exactly 0 (multiply θ₀ by the new mask)"


def _random_net(seed: int, dtype: torch.dtype = torch.float32) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """θ₀ and trained weights of a small three-layer net whose layers have different scales (as trained
    layers do), so that a global threshold and per-layer pruning differ."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"hidden1": (24, 40), "hidden2": (12, 24), "output": (5, 12)}
    scales = {"hidden1": 0.05, "hidden2": 0.15, "output": 0.4}
    init = {k: (torch.randn(s, generator=g) * scales[k]).to(dtype) for k, s in shapes.items()}
    final = {k: (init[k] + torch.randn(s, generator=g) * scales[k]).to(dtype) for k, s in shapes.items()}
    return init, final


def _lenet_case(fn: Callable[..., Any]) -> None:
    """Round 1 of the paper's schedule on LeNet-300-100: the reader's mask equals ``lottery.next_mask``'s."""
    config = lottery.LotteryConfig(seeds=(0,))  # the paper's rates: 20 % of hidden, 10 % of output weights
    init = lottery.initial_weights(config)  # {layer: (1, out, in)}
    g = torch.Generator().manual_seed(7)
    final = {k: w + torch.randn(w.shape, generator=g) * float(w.std()) * (1 + i) for i, (k, w) in enumerate(init.items())}
    full = {k: torch.ones_like(w) for k, w in init.items()}
    want = {k: m[0] > 0 for k, m in lottery.next_mask(config, full, init, final, 1).items()}
    one = {k: w[0] for k, w in init.items()}
    got, weights = _called_round(fn, {k: m[0] for k, m in full.items()}, {k: w[0] for k, w in final.items()}, one,
                                 config.rate_fc, config.rate_output, "layers.2")
    _compare_round(got, want, {k: m[0] for k, m in full.items()}, {k: w[0] for k, w in final.items()},
                   config.rate_fc, config.rate_output, "layers.2", "LeNet-300-100, round 1")
    _check_reset(got, weights, one, {k: w[0] for k, w in final.items()}, "LeNet-300-100, round 1")


def _later_round_case(fn: Callable[..., Any]) -> None:
    """A later round: half of each layer already pruned. The pruned weights' final values are 0 (as a
    masked network's are) in one call and large in the other: neither may change which weights go."""
    init, final = _random_net(3)
    g = torch.Generator().manual_seed(4)
    mask = {k: (torch.rand(w.shape, generator=g) < 0.5).float() for k, w in init.items()}
    for fill, what in ((0.0, "pruned weights at 0"), (10.0, "pruned weights large")):
        final_k = {k: torch.where(mask[k] > 0, w, torch.full_like(w, fill)) for k, w in final.items()}
        want = _library_round(mask, final_k, 0.2, 0.1, "output")
        got, weights = _called_round(fn, mask, final_k, init, 0.2, 0.1, "output")
        _compare_round(got, want, mask, final_k, 0.2, 0.1, "output", f"later round, {what}")
        _check_reset(got, weights, init, final_k, f"later round, {what}")


def _random_case(fn: Callable[..., Any]) -> None:
    for seed, (p, p_out) in enumerate(((0.2, 0.1), (0.5, 0.25), (0.9, 0.5), (0.0, 0.0))):
        init, final = _random_net(10 + seed)
        full = {k: torch.ones_like(w) for k, w in init.items()}
        want = _library_round(full, final, p, p_out, "output")
        got, weights = _called_round(fn, full, final, init, p, p_out, "output")
        _compare_round(got, want, full, final, p, p_out, "output", f"p = {p:g}, p_output = {p_out:g}")
        _check_reset(got, weights, init, final, f"p = {p:g}, p_output = {p_out:g}")


def _ties_case(fn: Callable[..., Any]) -> None:
    """Trained weights drawn from a few values: most magnitudes tie. Any choice among equal |w| is
    right; the counts must be the library's, no pruned weight larger than a kept one, none revived."""
    g = torch.Generator().manual_seed(21)
    final = {"hidden": torch.randint(-3, 4, (16, 20), generator=g).float() / 4,
             "output": torch.randint(-3, 4, (6, 16), generator=g).float() / 4}
    init = {k: torch.randn(w.shape, generator=g) for k, w in final.items()}
    mask = {k: (torch.rand(w.shape, generator=g) < 0.8).float() for k, w in final.items()}
    want = _library_round(mask, final, 0.3, 0.2, "output")
    got, weights = _called_round(fn, mask, final, init, 0.3, 0.2, "output")
    for k in final:
        before = mask[k] > 0
        assert not bool((got[k] & ~before).any()), f"ties: layer {k} revives a pruned weight"
        n_got, n_want = int(got[k].sum()), int(want[k].sum())
        if n_got != n_want:
            hint = _count_hint(got, mask, k, 0.3, 0.2, "output") or (
                "with tied |w| a threshold test (|w| > t or |w| ≥ t) prunes too few or too many: sort the kept "
                "weights and prune exactly the count")
            raise AssertionError(f"ties: layer {k} keeps {n_got} weights, expected {n_want}; {hint}")
        pruned_now, kept = final[k].abs()[before & ~got[k]], final[k].abs()[got[k]]
        if pruned_now.numel() and kept.numel():
            assert float(pruned_now.max()) <= float(kept.min()), (
                f"ties: layer {k} prunes |w| = {float(pruned_now.max()):g} but keeps |w| = {float(kept.min()):g}: "
                "prune the smallest |w_final| of the kept weights")
    _check_reset(got, weights, init, final, "ties")


def _counts_case(fn: Callable[..., Any]) -> None:
    """Layers whose kept count times p lands on .5 (round half to even), just off a whole number, on 0,
    and layers with one weight or none left: the counts are ``round(p · kept)``, as lotterylib's."""
    g = torch.Generator().manual_seed(5)
    sizes = (1, 2, 3, 5, 7, 9, 10, 11)
    values = (torch.randperm(sum(sizes) + 4, generator=g) + 1.0) / 100
    final, start = {}, 0
    for n in sizes:
        final[f"n{n}"] = values[start:start + n] * (-1.0) ** torch.arange(n)
        start += n
    final["empty"] = values[start:start + 4]  # every weight already pruned
    init = {k: torch.randn(w.shape, generator=g) for k, w in final.items()}
    mask = {k: torch.ones_like(w) for k, w in final.items()}
    mask["empty"] = torch.zeros(4)
    for p in (0.5, 0.25, 0.3):
        want = _library_round(mask, final, p, p, "n1")
        got, weights = _called_round(fn, mask, final, init, p, p, "n1")
        _compare_round(got, want, mask, final, p, p, "n1", f"counts at p = {p:g}")
        _check_reset(got, weights, init, final, f"counts at p = {p:g}")


def _dtype_case(fn: Callable[..., Any]) -> None:
    """float64 weights and a 1-D layer: the same round, shapes and dtype kept."""
    init, final = _random_net(31, torch.float64)
    init["bias_like"], final["bias_like"] = init["output"][0].clone(), final["output"][0].clone()
    full = {k: torch.ones_like(w) for k, w in init.items()}
    want = _library_round(full, final, 0.2, 0.1, "output")
    got, weights = _called_round(fn, full, final, init, 0.2, 0.1, "output")
    _compare_round(got, want, full, final, 0.2, 0.1, "output", "float64 and a 1-D layer")
    _check_reset(got, weights, init, final, "float64 and a 1-D layer")


IMP_ROUND_CASES = [
    Case("round 1 of LeNet-300-100 at the paper's rates equals lottery.next_mask", _lenet_case),
    Case("random layers at several rates equal masks.prune", _random_case),
    Case("a later round prunes the surviving weights and revives none", _later_round_case),
    Case("tied magnitudes: exact counts, no pruned weight larger than a kept one", _ties_case),
    Case("counts round(p · kept) on the rounding boundary, one-weight and empty layers", _counts_case),
    Case("float64 weights and a 1-D layer keep their dtype and shape", _dtype_case),
]


def check_imp_round(fn: Callable[..., Any], show: bool = True) -> Report:
    """Check ``fn(mask, w_final, w_init, p, p_output, output_layer) -> (new_mask, weights)`` — one IMP round of
    one network, ``{layer: tensor}`` dicts — against :func:`lotterylib.lottery.next_mask` and
    :func:`lotterylib.masks.prune`."""
    return run("imp_round", fn, IMP_ROUND_CASES, show)


# ---------------------------------------------------------------------------------------------------
# The mask invariant: pruned weights stay exactly zero while training


def masked_weight(model: nn.Module, name: str) -> Tensor:
    """The weight ``name`` (``"<module path>.<attribute>"``, e.g. ``"0.weight"``) as the model's forward uses
    it: with a parametrization such as :class:`lotterylib.weightfn.Masked`, the masked one."""
    path, _, attr = name.rpartition(".")
    try:
        module = model.get_submodule(path) if path else model
        weight = getattr(module, attr)
    except AttributeError as err:
        raise KeyError(f"the model has no weight {name!r} ({err}); name it '<module path>.<attribute>', "
                       f"e.g. {next((n for n, _ in model.named_parameters() if 'original' not in n), '0.weight')!r}") from None
    if not isinstance(weight, Tensor):
        raise KeyError(f"{name!r} is not a tensor of the model")
    return weight


def _default_inputs(model: nn.Module, batch: int, generator: torch.Generator) -> Tensor:
    first = next((m for m in model.modules() if isinstance(getattr(m, "in_features", None), int)), None)
    if first is None:
        raise ValueError("cannot guess the model's input shape (no layer with in_features): pass inputs=a batch")
    return torch.randn(batch, first.in_features, generator=generator)


def plain_step(model: nn.Module, masks: Mapping[str, Tensor], optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """The training step that ignores the masks (zero the gradients, backward, step): right only when the
    model itself keeps pruned weights at zero, e.g. with :class:`lotterylib.weightfn.Masked`."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


@dataclass
class _Trace:
    """What a few masked training steps did: per step and weight, the pruned entries that are not zero."""

    before: dict[str, Tensor]
    after: list[dict[str, Tensor]] = field(default_factory=list)
    error: str = ""


def _train_and_trace(model: nn.Module, mask: Mapping[str, Tensor], optimizer_factory: Callable[[Iterable], Any],
                     steps: int, train_step: Callable[..., Any] | None, inputs: Tensor | None, seed: int) -> _Trace:
    """Train ``model`` in place for ``steps`` steps on one random regression batch; snapshot the masked
    weights before and after every step. Exceptions of the reader's code propagate."""
    g = torch.Generator().manual_seed(seed)
    x = inputs if inputs is not None else _default_inputs(model, 32, g)
    with torch.no_grad():
        target = torch.randn(model(x).shape, generator=g)
    trace = _Trace({k: masked_weight(model, k).detach().clone() for k in mask})
    optimizer = optimizer_factory(model.parameters())
    step = train_step or plain_step
    for _ in range(steps):
        loss = ((model(x) - target) ** 2).mean()
        step(model, mask, optimizer, loss)
        trace.after.append({k: masked_weight(model, k).detach().clone() for k in mask})
    return trace


def _assert_masks_fit(model: nn.Module, mask: Mapping[str, Tensor]) -> None:
    assert mask, "give at least one mask {'<module>.<weight>': 0/1 tensor}"
    for k, m in mask.items():
        try:
            w = masked_weight(model, k)
        except KeyError as err:
            raise AssertionError(str(err.args[0])) from None
        assert m.shape == w.shape, f"mask {k!r} has shape {tuple(m.shape)}, the weight {tuple(w.shape)}"
        assert bool(((m == 0) | (m == 1)).all()), f"mask {k!r} holds values other than 0 and 1"
    assert any(bool((m == 0).any()) for m in mask.values()), "the masks prune nothing: there is nothing to check"


def _revived(values: Mapping[str, Tensor], mask: Mapping[str, Tensor]) -> list[str]:
    out = []
    for k, m in mask.items():
        pruned = values[k][m == 0]
        n = int((pruned != 0).sum())
        if n:
            out.append(f"{k}: {n} of {pruned.numel()} (largest |w| {float(pruned.abs().max()):.2g})")
    return out


REVIVED_HINT = ("the optimizer moved weights the mask prunes (a gradient, momentum, Adam's moments or weight decay "
                "reached them): compute the weight as W ⊙ M in the forward (weightfn.Masked: the gradient is masked "
                "too), or multiply the weights by the mask after every optimizer step")


def _assert_zero_before(trace: _Trace, mask: Mapping[str, Tensor]) -> None:
    bad = _revived(trace.before, mask)
    assert not bad, ("pruned weights are not zero before training (" + "; ".join(bad) + "): zero them when you prune, "
                     "or compute the weight as W ⊙ M (weightfn.Masked)")


def _assert_zero_after_every_step(trace: _Trace, mask: Mapping[str, Tensor]) -> None:
    assert trace.after, "no training step ran"
    for i, values in enumerate(trace.after, 1):
        bad = _revived(values, mask)
        assert not bad, f"after step {i} of {len(trace.after)} pruned weights are nonzero — " + "; ".join(bad) + \
            f"; {REVIVED_HINT}"


def _assert_kept_train(trace: _Trace, mask: Mapping[str, Tensor]) -> None:
    assert trace.after, "no training step ran"
    moved = sum(int((trace.after[-1][k] != trace.before[k])[m > 0].sum()) for k, m in mask.items())
    assert moved, "no kept weight moved: is the learning rate 0, or does the step skip optimizer.step()?"
    lost = {k: int(((trace.after[-1][k] == 0) & (trace.before[k] != 0))[m > 0].sum()) for k, m in mask.items()}
    lost = {k: n for k, n in lost.items() if n}
    assert not lost, ("kept weights became exactly zero (" + ", ".join(f"{k}: {n}" for k, n in lost.items()) +
                      "): the mask is applied the wrong way round (1 keeps a weight, 0 prunes it)")


def check_mask_invariant(model: nn.Module, masks: Mapping[str, Tensor], optimizer_factory: Callable[[Iterable], Any],
                         steps: int = 5, *, train_step: Callable[..., Any] | None = None, inputs: Tensor | None = None,
                         seed: int = 0, show: bool = True) -> Report:
    """Train ``model`` IN PLACE for ``steps`` steps and check that the weights ``masks`` prune stay exactly zero.

    ``masks``: ``{"<module path>.<attribute>": 0/1 tensor}`` shaped like that weight, e.g. ``{"0.weight": m}``
    for an ``nn.Sequential``; the weight is read as the forward uses it (:func:`masked_weight`).
    ``optimizer_factory``: called once with ``model.parameters()`` (it may also return an optimizer that
    already holds state, e.g. the one of the dense training). ``train_step(model, masks, optimizer, loss)``:
    your training step (default :func:`plain_step`). ``inputs``: a batch for ``model(inputs)`` (default: a
    random batch of 32 for a model that starts with a linear layer); the loss is the squared error to a
    fixed random target. Passes when the pruned weights are zero before training and after every step,
    and the kept weights train.
    """
    trace: dict[str, _Trace] = {}

    def trained() -> _Trace:
        if "run" not in trace:
            trace["run"] = _train_and_trace(model, masks, optimizer_factory, steps, train_step, inputs, seed)
        return trace["run"]

    cases = [
        Case("the masks name weights of the model, shaped like them", lambda fn: _assert_masks_fit(model, masks)),
        Case("pruned weights are zero before training", lambda fn: _assert_zero_before(
            trace.get("run") or _Trace({k: masked_weight(model, k).detach().clone() for k in masks}), masks)),
        Case(f"pruned weights stay exactly zero through {steps} steps", lambda fn: _assert_zero_after_every_step(trained(), masks)),
        Case("the kept weights train", lambda fn: _assert_kept_train(trained(), masks)),
    ]
    return run("mask invariant", train_step or plain_step, cases, show)


# ---------------------------------------------------------------------------------------------------
# The exercise: a training step that keeps the mask, whatever the optimizer


def _small_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)  # nn.Linear draws from the global generator; the checker restores it below
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def _small_masks(net: nn.Module, seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: (torch.rand(p.shape, generator=g) < 0.5).float() for n, p in net.named_parameters() if n.endswith("weight")}


def _pruned_copy(net: nn.Module, mask: Mapping[str, Tensor]) -> nn.Module:
    """The network at the start of a round: kept weights as they were, pruned ones zeroed once."""
    net = copy.deepcopy(net)
    params = dict(net.named_parameters())
    with torch.no_grad():
        for k, m in mask.items():
            params[k].mul_(m)
    return net


#: The optimizers a masked training step must survive: ``(description, factory, dense warm-up steps)``.
#: The warm-up trains the unpruned network first with the same optimizer, so that its state (Adam's
#: moments, momentum) holds values for weights that are then pruned — a state carried over from before
#: pruning, as when a pruned network is fine-tuned with the optimizer that trained it.
OPTIMIZERS = (
    ("SGD", lambda params: torch.optim.SGD(params, lr=0.1), 0),
    ("SGD with momentum and weight decay", lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3), 0),
    ("Adam", lambda params: torch.optim.Adam(params, lr=1e-2), 0),
    ("AdamW (decoupled weight decay)", lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1), 0),
    ("Adam carrying its state from before pruning", lambda params: torch.optim.Adam(params, lr=1e-2), 3),
)


def _optimizer_case(description: str, factory: Callable[[Iterable], Any], warmup: int) -> Case:
    def test(fn):
        rng = torch.get_rng_state()
        try:
            net = _small_net(1)
        finally:
            torch.set_rng_state(rng)
        mask = _small_masks(net, 2)
        g = torch.Generator().manual_seed(3)
        x, target = torch.randn(32, 12, generator=g), torch.randn(32, 3, generator=g)
        optimizer = factory(net.parameters())
        for _ in range(warmup):  # dense training before pruning
            plain_step(net, {}, optimizer, ((net(x) - target) ** 2).mean())
        if warmup:
            # Prune in place (the optimizer's state stays attached to these parameters).
            params = dict(net.named_parameters())
            with torch.no_grad():
                for k, m in mask.items():
                    params[k].mul_(m)
            pruned, make = net, (lambda _params: optimizer)
        else:
            pruned, make = _pruned_copy(net, mask), factory
        trace = _train_and_trace(pruned, mask, make, 4, fn, x, 4)
        _assert_zero_after_every_step(trace, mask)
        _assert_kept_train(trace, mask)
    return Case(f"pruned weights stay zero under {description}", test)


MASKED_STEP_CASES = [_optimizer_case(*o) for o in OPTIMIZERS]


def check_masked_training_step(fn: Callable[..., Any], show: bool = True) -> Report:
    """Check ``fn(model, masks, optimizer, loss)`` — one training step of a plain PyTorch model whose pruned
    weights (``masks``: ``{parameter name: 0/1}``) must stay exactly zero — under SGD, momentum, weight decay,
    Adam, AdamW and an Adam state carried over from before pruning (:func:`check_mask_invariant` each)."""
    return run("masked_training_step", fn, MASKED_STEP_CASES, show)
