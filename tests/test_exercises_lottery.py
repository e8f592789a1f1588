"""The chapter 02 checkers: each passes the worked solution and fails the stub and typical mistakes."""

import pytest
import torch
from torch import nn

from lotterylib import weightfn
from lotterylib.exercises import stub
from lotterylib.exercises.lottery import check_imp_round, check_mask_invariant, check_masked_training_step

# --- one IMP round ----------------------------------------------------------------------------------


def imp_round(mask, w_final, w_init, p, p_output, output_layer):
    """The chapter's worked solution."""
    new_mask, weights = {}, {}
    for name, m in mask.items():
        rate = p_output if name == output_layer else p
        kept = m.flatten() > 0
        n_prune = round(rate * int(kept.sum()))
        score = w_final[name].abs().flatten().double()
        score[~kept] = -float("inf")
        order = torch.argsort(score, stable=True)
        already = int((~kept).sum())
        keep = kept.clone()
        keep[order[already:already + n_prune]] = False
        new_mask[name] = keep.reshape(m.shape).to(m.dtype)
        weights[name] = w_init[name] * new_mask[name]
    return new_mask, weights


def _variant(rank=lambda w: w.abs(), count=lambda rate, kept, n: round(rate * kept), surviving_only=True,
             output_rate=True, reset=True, largest=False, threshold=False):
    """imp_round with one thing changed: a typical mistake."""
    def fn(mask, w_final, w_init, p, p_output, output_layer):
        new_mask, weights = {}, {}
        for name, m in mask.items():
            rate = p_output if (name == output_layer and output_rate) else p
            kept = m.flatten() > 0
            n_prune = count(rate, int(kept.sum()), kept.numel())
            score = rank(w_final[name]).flatten().double()
            if largest:
                score = -score
            if surviving_only:
                score[~kept] = -float("inf")
            if threshold:  # prune everything at or below the n-th smallest score
                s = torch.sort(score[kept]).values
                t = s[n_prune - 1] if n_prune else -float("inf")
                keep = kept & (score > t)
            else:
                order = torch.argsort(score, stable=True)
                already = int((~kept).sum()) if surviving_only else 0
                keep = kept.clone() if surviving_only else torch.ones_like(kept)
                keep[order[already:already + n_prune]] = False
            new_mask[name] = keep.reshape(m.shape).to(m.dtype)
            weights[name] = (w_init if reset else w_final)[name] * new_mask[name]
        return new_mask, weights
    return fn


def test_imp_round_checker_passes_the_solution():
    assert check_imp_round(imp_round, show=False)


def test_imp_round_checker_fails_the_stub():
    report = check_imp_round(stub, show=False)
    assert not report and "not implemented" in report.failures[0]


def _global(mask, w_final, w_init, p, p_output, output_layer):
    """One threshold over every layer's kept weights."""
    names = list(mask)
    kept = torch.cat([mask[k].flatten() > 0 for k in names])
    score = torch.cat([w_final[k].abs().flatten().double() for k in names])
    score[~kept] = -float("inf")
    n_prune = round(p * int(kept.sum()))
    order = torch.argsort(score, stable=True)
    already = int((~kept).sum())
    keep = kept.clone()
    keep[order[already:already + n_prune]] = False
    new_mask, weights, start = {}, {}, 0
    for k in names:
        n = mask[k].numel()
        new_mask[k] = keep[start:start + n].reshape(mask[k].shape).to(mask[k].dtype)
        weights[k] = w_init[k] * new_mask[k]
        start += n
    return new_mask, weights


MISTAKES = {
    "ranks by w, not |w|": (_variant(rank=lambda w: w), "|w_final|"),
    "keeps the smallest": (_variant(largest=True), "keep"),
    "prunes p of the layer, not of the kept weights": (_variant(count=lambda rate, kept, n: round(rate * n)), "KEEPS"),
    "ranks the pruned weights too (revives them)": (_variant(surviving_only=False), "reviv"),
    "floor instead of round": (_variant(count=lambda rate, kept, n: int(rate * kept)), "round(p · kept)"),
    "round half up": (_variant(count=lambda rate, kept, n: int(rate * kept + 0.5)), "halves to the even"),
    "one rate for the output layer too": (_variant(output_rate=False), "p_output"),
    "no reset to θ₀": (_variant(reset=False), "θ₀"),
    "threshold test on ties": (_variant(threshold=True), "threshold test"),
    "global pruning": (_global, "one threshold over the whole network"),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_imp_round_checker_fails_typical_mistakes_with_a_hint(name):
    fn, hint = MISTAKES[name]
    report = check_imp_round(fn, show=False)
    assert not report, f"{name} passed"
    assert any(hint in f for f in report.failures), f"{name}: no failure mentions {hint!r}: {report.failures}"


def test_imp_round_checker_catches_changed_inputs_and_dtype():
    def in_place(mask, w_final, w_init, p, p_output, output_layer):
        new_mask, weights = imp_round(mask, w_final, w_init, p, p_output, output_layer)
        for k in mask:
            mask[k].copy_(new_mask[k])
        return mask, weights

    def float32(mask, w_final, w_init, p, p_output, output_layer):
        new_mask, weights = imp_round(mask, w_final, w_init, p, p_output, output_layer)
        return new_mask, {k: w.float() for k, w in weights.items()}

    assert any("changed its input" in f for f in check_imp_round(in_place, show=False).failures)
    assert any("dtype" in f for f in check_imp_round(float32, show=False).failures)


# --- the mask invariant on a model ---------------------------------------------------------------


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))


def _masks(net):
    g = torch.Generator().manual_seed(1)
    return {n: (torch.rand(p.shape, generator=g) < 0.5).float() for n, p in net.named_parameters() if n.endswith("weight")}


def _zero_once(net, masks):
    params = dict(net.named_parameters())
    with torch.no_grad():
        for k, m in masks.items():
            params[k].mul_(m)
    return net


def test_zeroing_once_then_adam_revives_the_pruned_weights():
    net = _net()
    masks = _masks(net)
    report = check_mask_invariant(_zero_once(net, masks), masks, lambda p: torch.optim.Adam(p, lr=1e-2), show=False)
    assert not report and any("after step 1" in f for f in report.failures)


def test_masked_forward_passes_and_holds_under_a_carried_adam_state():
    net = _net()
    masks = _masks(net)
    adam = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.randn(8, 20), torch.randn(8, 4)
    for _ in range(3):  # dense training: Adam's moments now hold values for weights about to be pruned
        adam.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        adam.step()
    for k, m in masks.items():
        weightfn.attach(net.get_submodule(k.rsplit(".", 1)[0]), weightfn.Masked(m))
    assert check_mask_invariant(net, masks, lambda p: adam, show=False)


def test_masked_gradients_with_a_carried_adam_state_revive():
    net = _net()
    masks = _masks(net)
    adam = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.randn(8, 20), torch.randn(8, 4)
    for _ in range(3):
        adam.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        adam.step()
    _zero_once(net, masks)
    params = dict(net.named_parameters())
    for k, m in masks.items():
        params[k].register_hook(lambda g, m=m: g * m)
    report = check_mask_invariant(net, masks, lambda p: adam, show=False)
    assert not report and any("Adam's moments" in f for f in report.failures)


def test_mask_invariant_checker_says_what_is_wrong_with_the_setup():
    net = _net()
    masks = _masks(net)
    bad_name = check_mask_invariant(_zero_once(net, masks), {"nope.weight": masks["0.weight"]},
                                    lambda p: torch.optim.SGD(p, lr=0.1), show=False)
    assert not bad_name and "no weight 'nope.weight'" in bad_name.failures[0]
    not_zeroed = check_mask_invariant(_net(), masks, lambda p: torch.optim.SGD(p, lr=0.1), show=False)
    assert any("not zero before training" in f for f in not_zeroed.failures)
    frozen = check_mask_invariant(_zero_once(_net(), masks), masks, lambda p: torch.optim.SGD(p, lr=0.0), show=False)
    assert any("no kept weight moved" in f for f in frozen.failures)


# --- the exercise: a training step that keeps the mask --------------------------------------------


def masked_training_step(model, masks, optimizer, loss):
    """The chapter's worked solution."""
    params = dict(model.named_parameters())
    optimizer.zero_grad()
    loss.backward()
    for name, m in masks.items():
        params[name].grad.mul_(m)
    optimizer.step()
    with torch.no_grad():
        for name, m in masks.items():
            params[name].mul_(m)


def _step_variant(mask_grads=True, remask_before=False, remask_after=True, invert=False):
    """A training step with one thing changed: a typical mistake."""
    def step(model, masks, optimizer, loss):
        params = dict(model.named_parameters())
        chosen = {k: 1 - m for k, m in masks.items()} if invert else masks
        optimizer.zero_grad()
        loss.backward()
        with torch.no_grad():
            for name, m in chosen.items():
                if mask_grads:
                    params[name].grad.mul_(m)
                if remask_before:
                    params[name].mul_(m)
        optimizer.step()
        if remask_after:
            with torch.no_grad():
                for name, m in chosen.items():
                    params[name].mul_(m)
    return step


_plain = _step_variant(mask_grads=False, remask_after=False)
_grads_only = _step_variant(remask_after=False)
_remask_before_step = _step_variant(mask_grads=False, remask_before=True, remask_after=False)
_inverted = _step_variant(invert=True)


def test_masked_step_checker_passes_the_solution_and_fails_the_stub():
    assert check_masked_training_step(masked_training_step, show=False)
    report = check_masked_training_step(stub, show=False)
    assert not report and "not implemented" in report.failures[0]


@pytest.mark.parametrize("fn, where", [(_plain, "under SGD"), (_grads_only, "carrying its state"),
                                       (_remask_before_step, "under SGD"), (_inverted, "under SGD")],
                         ids=["plain step", "masks the gradients only", "re-masks before the step", "inverted mask"])
def test_masked_step_checker_fails_typical_mistakes(fn, where):
    report = check_masked_training_step(fn, show=False)
    assert not report
    assert any(where in f for f in report.failures), report.failures


def test_masked_step_checker_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_masked_training_step(masked_training_step, show=False)
    assert torch.equal(torch.rand(3), expected)
