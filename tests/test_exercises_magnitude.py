"""The checkers of chapter 01's exercises pass the worked solutions and fail the stub and typical mistakes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lotterylib.exercises import magnitude, stub


# --- worked solutions (the chapter's hidden cells hold the same code) ---------------------------------

def keep_largest(scores, n_keep):
    order = torch.sort(scores, descending=True, stable=True).indices  # ties: the earlier index wins
    mask = torch.zeros_like(scores)
    mask[order[:n_keep]] = 1.0
    return mask


def magnitude_mask(weights, fraction_kept, global_=False):
    if not global_:
        return {name: keep_largest(w.abs().flatten(), w.numel() - round((1 - fraction_kept) * w.numel())).reshape(w.shape)
                for name, w in weights.items()}
    flat = torch.cat([w.abs().flatten() for w in weights.values()])
    kept = keep_largest(flat, flat.numel() - round((1 - fraction_kept) * flat.numel()))
    out, start = {}, 0
    for name, w in weights.items():
        out[name] = kept[start:start + w.numel()].reshape(w.shape)
        start += w.numel()
    return out


def per_layer_mask(weights, kept):
    return {name: magnitude_mask({name: w}, kept[name])[name] for name, w in weights.items()}


def retrain_pruned(net, mask, batches, lr):
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        with torch.no_grad():
            for name, m in mask.items():
                params[name].mul_(m)
    return net


def retrain_masking_gradients(net, mask, batches, lr):
    """The other correct loop: prune once, then mask the gradients (Adam then never moves a pruned weight)."""
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        for name, m in mask.items():
            params[name].grad.mul_(m)
        opt.step()
    return net


# --- typical mistakes ----------------------------------------------------------------------------------

def keeps_smallest(weights, fraction_kept, global_=False):
    return {k: keep_smallest(w, fraction_kept) for k, w in weights.items()}


def keep_smallest(w, fraction_kept):
    n_keep = w.numel() - round((1 - fraction_kept) * w.numel())
    order = torch.sort(w.abs().flatten(), stable=True).indices
    mask = torch.zeros(w.numel())
    mask[order[:n_keep]] = 1.0
    return mask.reshape(w.shape)


def always_global(weights, fraction_kept, global_=False):
    return magnitude_mask(weights, fraction_kept, global_=True)


def always_layerwise(weights, fraction_kept, global_=False):
    return magnitude_mask(weights, fraction_kept, global_=False)


def floor_counts(weights, fraction_kept, global_=False):
    def one(w):
        return keep_largest(w.abs().flatten(), int(fraction_kept * w.numel())).reshape(w.shape)
    if global_:
        flat = torch.cat([w.flatten() for w in weights.values()])
        kept, out, start = one(flat), {}, 0
        for name, w in weights.items():
            out[name] = kept[start:start + w.numel()].reshape(w.shape)
            start += w.numel()
        return out
    return {name: one(w) for name, w in weights.items()}


def signed(weights, fraction_kept, global_=False):
    """Ranks by w instead of |w|: keeps the most positive weights."""
    return {k: keep_largest(w.flatten(), w.numel() - round((1 - fraction_kept) * w.numel())).reshape(w.shape)
            for k, w in weights.items()}


def threshold_with_ties(weights, fraction_kept, global_=False):
    """A quantile threshold, |w| ≥ t: with tied magnitudes it keeps more than the count."""
    def one(w, n_prune):
        if n_prune == 0:
            return torch.ones_like(w)
        t = w.abs().flatten().kthvalue(n_prune).values
        return (w.abs() > t).float() if n_prune < w.numel() else torch.zeros_like(w)
    if global_:
        return magnitude_mask(weights, fraction_kept, True)
    return {k: one(w, round((1 - fraction_kept) * w.numel())) for k, w in weights.items()}


def random_ties(weights, fraction_kept, global_=False):
    """Ties broken by a fresh random order every call: right counts, but two calls disagree."""
    out = {}
    for k, w in weights.items():
        perm = torch.randperm(w.numel())
        m = keep_largest(w.abs().flatten()[perm], w.numel() - round((1 - fraction_kept) * w.numel()))
        flat = torch.empty_like(m)
        flat[perm] = m
        out[k] = flat.reshape(w.shape)
    return out


def per_layer_global(weights, kept):
    """One fraction for the whole net (the mean of the layers'), under one threshold."""
    return magnitude_mask(weights, sum(kept.values()) / len(kept), global_=True)


def never_remasks(net, mask, batches, lr):
    """Prunes once, then trains freely: Adam revives the pruned weights."""
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net


def masks_gradients_only(net, mask, batches, lr):
    """Masks the gradients but never zeroes the pruned weights: nothing is actually pruned."""
    params = dict(net.named_parameters())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        for name, m in mask.items():
            params[name].grad.mul_(m)
        opt.step()
    return net


def no_zero_grad(net, mask, batches, lr):
    """Forgets optimizer.zero_grad(): the gradients of all earlier batches pile up."""
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, m in mask.items():
            params[name].mul_(m)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for x, y in batches:
        F.cross_entropy(net(x), y).backward()
        opt.step()
        with torch.no_grad():
            for name, m in mask.items():
                params[name].mul_(m)
    return net


def reinitialises(net, mask, batches, lr):
    """Starts the kept weights afresh (a random reinitialisation) instead of from their trained values."""
    for module in net.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return retrain_pruned(net, mask, batches, lr)


def forgets_to_return(net, mask, batches, lr):
    retrain_pruned(net, mask, batches, lr)


# --- the checks ----------------------------------------------------------------------------------------

def test_the_magnitude_mask_checker_passes_the_solution_and_fails_the_stub():
    assert magnitude.check_magnitude_mask(magnitude_mask, show=False)
    report = magnitude.check_magnitude_mask(stub, show=False)
    assert not report and "not implemented yet" in report.failures[0]


@pytest.mark.parametrize("mistake,hint", [
    (keeps_smallest, "LARGEST"),
    (always_global, "in EACH layer"),
    (always_layerwise, "one threshold over all the layers"),
    (floor_counts, "round((1 − fraction_kept)·n)"),
    (signed, "rank by |w|, not by w"),
    (threshold_with_ties, "threshold test"),
    (random_ties, "break ties the same way"),
])
def test_the_magnitude_mask_checker_fails_typical_mistakes(mistake, hint):
    report = magnitude.check_magnitude_mask(mistake, show=False)
    assert not report
    assert any(hint in f for f in report.failures), report.failures


def test_the_per_layer_checker():
    assert magnitude.check_per_layer_mask(per_layer_mask, show=False)
    assert not magnitude.check_per_layer_mask(stub, show=False)
    report = magnitude.check_per_layer_mask(per_layer_global, show=False)
    assert not report and any("keeps" in f for f in report.failures)
    report = magnitude.check_per_layer_mask(lambda w, kept: keeps_smallest(w, 0.5), show=False)
    assert not report


def test_the_retraining_checker_passes_both_correct_loops_and_fails_the_stub():
    assert magnitude.check_retrain_loop(retrain_pruned, show=False)
    assert magnitude.check_retrain_loop(retrain_masking_gradients, show=False)
    report = magnitude.check_retrain_loop(stub, show=False)
    assert not report and "not implemented yet" in report.failures[0]


@pytest.mark.parametrize("mistake,hint", [
    (never_remasks, "no longer zero"),
    (masks_gradients_only, "zero the pruned weights before training"),
    (no_zero_grad, "zero the gradients"),
    (reinitialises, "start from the trained"),
    (forgets_to_return, "return the retrained net"),
])
def test_the_retraining_checker_fails_typical_mistakes(mistake, hint):
    report = magnitude.check_retrain_loop(mistake, show=False)
    assert not report
    assert any(hint in f for f in report.failures), report.failures
