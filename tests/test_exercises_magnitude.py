"""The checkers of chapter 01's exercises pass the chapter's worked solutions and fail the stub and typical mistakes.

The solutions are read from the chapter itself (the functions its ``hide-cell`` cells and its exercise
solutions define), so what is tested here is what the reader is shown.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lotterylib.exercises import magnitude, stub

CHAPTER = Path(__file__).resolve().parents[1] / "notebooks" / "01_magnitude_pruning.ipynb"


def _chapter_solutions() -> dict:
    """The functions defined by the chapter's hidden solution cells and by the code of its exercise solutions."""
    namespace = {"torch": torch, "F": F}
    for cell in json.loads(CHAPTER.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "hide-cell" in cell["metadata"].get("tags", []):
            blocks = [source]
        elif cell["cell_type"] == "markdown":
            blocks = re.findall(r"```python\n(.*?)```", source, re.S)
        else:
            continue
        for block in blocks:
            tree = ast.parse(block)
            tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
            exec(compile(tree, CHAPTER.name, "exec"), namespace)
    return namespace


SOLUTIONS = _chapter_solutions()
magnitude_mask, keep_largest = SOLUTIONS["magnitude_mask"], SOLUTIONS["keep_largest"]
per_layer_mask, retrain_pruned = SOLUTIONS["per_layer_mask"], SOLUTIONS["retrain_pruned"]


# --- typical mistakes of the magnitude mask ------------------------------------------------------------

def n_kept(n, fraction_kept):
    return n - round((1 - fraction_kept) * n)


def keeps_smallest(weights, fraction_kept, global_=False):
    return {k: 1 - keep_largest(w.abs().flatten(), w.numel() - n_kept(w.numel(), fraction_kept)).reshape(w.shape)
            for k, w in weights.items()}


def always_global(weights, fraction_kept, global_=False):
    return magnitude_mask(weights, fraction_kept, global_=True)


def always_layerwise(weights, fraction_kept, global_=False):
    return magnitude_mask(weights, fraction_kept, global_=False)


def floor_counts(weights, fraction_kept, global_=False):
    """int(f·n) kept instead of the library's n − round((1 − f)·n)."""
    return {k: keep_largest(w.abs().flatten(), int(fraction_kept * w.numel())).reshape(w.shape) for k, w in weights.items()}


def signed(weights, fraction_kept, global_=False):
    """Ranks by w instead of |w|: keeps the most positive weights."""
    return {k: keep_largest(w.flatten(), n_kept(w.numel(), fraction_kept)).reshape(w.shape) for k, w in weights.items()}


def threshold_with_ties(weights, fraction_kept, global_=False):
    """Keeps |w| above the k-th smallest: with tied magnitudes that keeps fewer than the count."""
    def one(w, n_prune):
        if n_prune == 0:
            return torch.ones_like(w)
        return (w.abs() > w.abs().flatten().kthvalue(n_prune).values).float()
    return {k: one(w, w.numel() - n_kept(w.numel(), fraction_kept)) for k, w in weights.items()}


def random_ties(weights, fraction_kept, global_=False):
    """Ties broken by a fresh random order every call: right counts, but two calls disagree."""
    out = {}
    for k, w in weights.items():
        perm = torch.randperm(w.numel())
        flat = torch.empty(w.numel())
        flat[perm] = keep_largest(w.abs().flatten()[perm], n_kept(w.numel(), fraction_kept))
        out[k] = flat.reshape(w.shape)
    return out


def per_layer_global(weights, kept):
    """One fraction for the whole net (the mean of the layers'), under one threshold."""
    return magnitude_mask(weights, sum(kept.values()) / len(kept), global_=True)


# --- loops: the other correct one and typical mistakes --------------------------------------------------

def loop(prune_first=True, remask=True, mask_gradients=False, zero_grad=True, reinitialise=False, give_back=True):
    """A prune-then-retrain loop with each step switchable (the correct loop: the defaults)."""
    def retrain(net, mask, batches, lr):
        if reinitialise:
            for module in net.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        params = dict(net.named_parameters())

        def apply_mask():
            with torch.no_grad():
                for name, m in mask.items():
                    params[name].mul_(m)
        if prune_first:
            apply_mask()
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        for x, y in batches:
            if zero_grad:
                optimizer.zero_grad()
            F.cross_entropy(net(x), y).backward()
            if mask_gradients:
                for name, m in mask.items():
                    params[name].grad.mul_(m)
            optimizer.step()
            if remask:
                apply_mask()
        return net if give_back else None
    return retrain


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


def test_the_per_layer_checker_passes_the_solution_and_fails_the_stub_and_mistakes():
    assert magnitude.check_per_layer_mask(per_layer_mask, show=False)
    assert not magnitude.check_per_layer_mask(stub, show=False)
    report = magnitude.check_per_layer_mask(per_layer_global, show=False)
    assert not report and any("its own fraction" in f for f in report.failures), report.failures
    report = magnitude.check_per_layer_mask(lambda weights, kept: keeps_smallest(weights, 0.5), show=False)
    assert not report


def test_the_retraining_checker_passes_both_correct_loops_and_fails_the_stub():
    assert magnitude.check_retrain_loop(retrain_pruned, show=False)
    assert magnitude.check_retrain_loop(loop(), show=False)
    assert magnitude.check_retrain_loop(loop(remask=False, mask_gradients=True), show=False)  # masked gradients
    report = magnitude.check_retrain_loop(stub, show=False)
    assert not report and "not implemented yet" in report.failures[0]


@pytest.mark.parametrize("mistake,hint", [
    (loop(remask=False), "no longer zero"),                                           # Adam revives them
    (loop(prune_first=False, remask=False, mask_gradients=True), "zero the pruned weights before training"),
    (loop(zero_grad=False), "zero the gradients"),
    (loop(reinitialise=True), "start from the trained"),
    (loop(give_back=False), "return the retrained net"),
])
def test_the_retraining_checker_fails_typical_mistakes(mistake, hint):
    report = magnitude.check_retrain_loop(mistake, show=False)
    assert not report
    assert any(hint in f for f in report.failures), report.failures
