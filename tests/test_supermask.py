"""Deconstructing lottery tickets: mask-1/mask-0 variants, supermasks, straight-through estimators, seed+mask."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lotterylib import deconstruct as D
from lotterylib import masks, models, weightfn
from lotterylib.data import Dataset, Split
from lotterylib.lottery import LotteryConfig
from lotterylib.train import TrainConfig


def _layer(seed: int = 0, runs: int = 2, shape=(6, 5)):
    g = torch.Generator().manual_seed(seed)
    w_i = torch.randn(runs, *shape, generator=g)
    w_f = w_i + 0.5 * torch.randn(runs, *shape, generator=g)
    mask = (torch.rand(runs, *shape, generator=g) > 0.6).float()
    return w_i, w_f, mask


def _kept(x, m):
    return torch.sort(x[m > 0]).values


# --- mask-1: each variant has exactly the property it claims -----------------------------------

@pytest.mark.parametrize("variant", ("ticket",) + D.MASK1)
def test_mask1_variants_keep_pruned_weights_at_zero(variant):
    w_i, w_f, m = _layer()
    start, frozen = D.transform(variant, w_i, w_f, m, seeds=[1, 2])
    assert frozen is None
    assert torch.all(start[m == 0] == 0)
    assert start.shape == w_i.shape


def test_ticket_is_the_masked_init():
    w_i, w_f, m = _layer()
    assert torch.equal(D.transform("ticket", w_i, w_f, m, [0, 0])[0], w_i * m)


def test_reinit_draws_from_the_whole_layer():
    w_i, w_f, m = _layer()
    start, _ = D.transform("reinit", w_i, w_f, m, [1, 2])
    for r in range(2):
        values = set(w_i[r].flatten().tolist())
        kept = start[r][m[r] > 0].tolist()
        assert all(v in values for v in kept)            # values of the layer's init ...
        assert len(set(kept)) == len(kept)                # ... each used once (a permutation) ...
    assert not torch.equal(start, w_i * m)                # ... but not where they were


def test_reshuffle_permutes_within_the_kept_set_only():
    w_i, w_f, m = _layer()
    start, _ = D.transform("reshuffle", w_i, w_f, m, [1, 2])
    for r in range(2):
        assert torch.equal(_kept(start[r], m[r]), _kept(w_i[r], m[r]))
    assert not torch.equal(start, w_i * m)


def test_constant_is_sigma_with_random_signs():
    w_i, w_f, m = _layer(shape=(40, 30))
    start, _ = D.transform("constant", w_i, w_f, m, [1, 2])
    for r in range(2):
        sigma = float(np.std(w_i[r].numpy()))
        assert torch.allclose(start[r][m[r] > 0].abs(), torch.tensor(sigma), rtol=1e-6)
        agree = (torch.sign(start[r]) == torch.sign(w_i[r]))[m[r] > 0].float().mean()
        assert 0.35 < agree < 0.65                        # signs no longer those of w_i


def test_signed_variants_preserve_the_signs():
    w_i, w_f, m = _layer(shape=(40, 30))
    for v in ("signed_reinit", "signed_reshuffle", "signed_constant"):
        start, _ = D.transform(v, w_i, w_f, m, [1, 2])
        assert torch.equal(torch.sign(start), torch.sign(w_i) * m), v


def test_signed_reshuffle_permutes_kept_magnitudes():
    w_i, w_f, m = _layer()
    start, _ = D.transform("signed_reshuffle", w_i, w_f, m, [1, 2])
    for r in range(2):
        assert torch.equal(_kept(start[r].abs(), m[r]), _kept(w_i[r].abs(), m[r]))


def test_signed_reinit_magnitudes_come_from_the_whole_layer():
    w_i, w_f, m = _layer()
    start, _ = D.transform("signed_reinit", w_i, w_f, m, [1, 2])
    mags = set(w_i.abs().flatten().tolist())
    assert all(v in mags for v in start[m > 0].abs().tolist())


def test_signed_constant_is_sigma_sign():
    w_i, w_f, m = _layer()
    start, _ = D.transform("signed_constant", w_i, w_f, m, [0, 0])
    sigma = torch.tensor([np.std(w_i[r].numpy()) for r in range(2)]).reshape(2, 1, 1)
    assert torch.allclose(start, sigma * torch.sign(w_i) * m)
    assert torch.allclose(D.base_weights("signed_constant", {"w": w_i})["w"], sigma * torch.sign(w_i))


def test_variants_are_deterministic_per_seed():
    w_i, w_f, m = _layer()
    a = D.transform("reshuffle", w_i, w_f, m, [5, 6])[0]
    assert torch.equal(a, D.transform("reshuffle", w_i, w_f, m, [5, 6])[0])
    assert not torch.equal(a, D.transform("reshuffle", w_i, w_f, m, [7, 8])[0])


# --- mask-0: what the pruned weights are frozen at ----------------------------------------------

def test_freeze_init():
    w_i, w_f, m = _layer()
    start, frozen = D.transform("freeze_init", w_i, w_f, m, [0, 0])
    assert torch.equal(start, w_i * m)
    assert torch.equal(frozen, w_i * (1 - m))


def test_freeze_init_or_zero_by_direction():
    w_i, w_f, m = _layer()
    start, frozen = D.transform("freeze_init_or_zero", w_i, w_f, m, [0, 0])
    shrank = w_f.abs() < w_i.abs()
    pruned = m == 0
    assert torch.equal(start, w_i * m)
    assert torch.all(frozen[pruned & shrank] == 0)                      # moved toward zero → 0
    assert torch.equal(frozen[pruned & ~shrank], w_i[pruned & ~shrank])  # moved away → w_i
    assert torch.all(frozen[~pruned] == 0)


def test_freeze_init_or_zero_all_also_zeroes_shrinking_kept_weights():
    w_i, w_f, m = _layer()
    start, frozen = D.transform("freeze_init_or_zero_all", w_i, w_f, m, [0, 0])
    shrank = w_f.abs() < w_i.abs()
    kept = m > 0
    assert torch.all(start[kept & shrank] == 0)
    assert torch.equal(start[kept & ~shrank], w_i[kept & ~shrank])
    assert torch.equal(frozen, D.transform("freeze_init_or_zero", w_i, w_f, m, [0, 0])[1])


def test_freeze_init_or_zero_random_zeroes_as_many_at_random():
    w_i, w_f, m = _layer(shape=(30, 20))
    _, ref = D.transform("freeze_init_or_zero", w_i, w_f, m, [0, 0])
    _, frozen = D.transform("freeze_init_or_zero_random", w_i, w_f, m, [3, 4])
    pruned = m == 0
    for r in range(2):
        assert int((frozen[r][pruned[r]] == 0).sum()) == int((ref[r][pruned[r]] == 0).sum())
        nz = frozen[r] != 0
        assert torch.equal(frozen[r][nz], w_i[r][nz]) and not bool(nz[m[r] > 0].any())
    assert not torch.equal(frozen, ref)


@pytest.mark.parametrize("variant", ["ticket", "freeze_init", "freeze_init_or_zero", "signed_constant"])
def test_frozen_values_survive_training(variant):
    """Through Masked: the effective weight is start⊙M + frozen⊙(1−M), and pruned entries never move."""
    w_i, w_f, m = _layer(runs=2, shape=(4, 6))
    start, frozen = D.transform(variant, w_i, w_f, m, [0, 1])
    layer = models.StackedLinear(2, 6, 4)
    with torch.no_grad():
        layer.weight.copy_(start)
    weightfn.attach(layer, weightfn.Masked(m, frozen))
    expected_pruned = torch.zeros_like(w_i) if frozen is None else frozen
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(torch.randn(2, 5, 6)).pow(2).sum().backward()
        opt.step()
    assert torch.equal(layer.weight[m == 0], expected_pruned[m == 0])
    assert not torch.equal(layer.weight[m > 0], start[m > 0])


def test_unknown_variant_and_bad_shapes():
    w_i, w_f, m = _layer()
    with pytest.raises(ValueError, match="unknown ticket variant 'shuffle'.*signed_reshuffle.*freeze_init_or_zero"):
        D.transform("shuffle", w_i, w_f, m, [0, 0])
    with pytest.raises(ValueError, match="one seed per run"):
        D.transform("reinit", w_i, w_f, m, [0])
    with pytest.raises(ValueError, match="one shape"):
        D.transform("reinit", w_i, w_f[:, :2], m, [0, 0])
    with pytest.raises(ValueError, match="unknown supermask weights 'ones'.*signed_constant"):
        D.base_weights("ones", {"w": w_i})


def test_config_validation():
    with pytest.raises(ValueError, match="unknown mask criterion"):
        D.DeconstructConfig(criteria=("large_final", "huge"))
    with pytest.raises(ValueError, match="unknown ticket variant"):
        D.DeconstructConfig(branches=((1, ("reinit", "bogus")),))
    with pytest.raises(ValueError, match="trunk criterion"):
        D.DeconstructConfig(criteria=("random",))
    with pytest.raises(ValueError, match="start at round 1"):
        D.DeconstructConfig(branches=((0, ("reinit",)),))
    with pytest.raises(ValueError, match="unknown supermask method 'popup'.*edge_popup"):
        D.SupermaskConfig(method="popup")
    with pytest.raises(ValueError, match="sampled supermask only"):
        D.SupermaskConfig(method="edge_popup", rescale=True)


# --- straight-through estimators, checked with autograd -----------------------------------------

def test_straight_through_value_and_gradient():
    soft = torch.tensor([0.2, 0.7, 0.5], requires_grad=True)
    hard = (soft.detach() > 0.4).float()
    out = weightfn.straight_through(hard, soft)
    assert torch.equal(out, hard)
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert soft.grad.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("rescale", [False, True])
def test_sampled_mask_bernoulli_straight_through(rescale):
    w = torch.tensor([[[0.5, -1.0, 2.0], [1.5, -0.25, 3.0]]])          # (runs=1, 2, 3)
    scores = torch.tensor([[[0.0, 1.0, -1.0], [2.0, -2.0, 0.5]]])
    fn = weightfn.SampledMask(scores, [0], rescale=rescale)
    out = fn(w)
    hard = (out != 0).float()
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    scale = 6 / hard.sum() if rescale else 1.0
    assert torch.allclose(out, w * hard * scale)                         # a 0/1 sample, exactly
    c = torch.arange(1.0, 7.0).reshape(1, 2, 3)
    (out * c).sum().backward()
    p = torch.sigmoid(scores)
    assert torch.allclose(fn.scores.grad, c * w * scale * p * (1 - p))  # gradient of W·σ(S)


def test_sampled_mask_samples_follow_sigmoid():
    fn = weightfn.SampledMask(torch.full((1, 200, 200), 1.0), [1])
    frac = float((fn(torch.ones(1, 200, 200)) != 0).float().mean())
    assert abs(frac - float(torch.sigmoid(torch.tensor(1.0)))) < 0.01


def test_edge_popup_topk_straight_through_through_abs():
    w = torch.tensor([[1.0, 2.0, -3.0, 4.0]])
    scores = torch.tensor([[0.1, -0.9, 0.5, -0.2]])
    fn = weightfn.TopKScores(scores, fraction_kept=0.5)
    out = fn(w)
    assert out.tolist() == [[0.0, 2.0, -3.0, 0.0]]                      # top-2 by |S|
    c = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    (out * c).sum().backward()
    # gradient of W·|S|: for a negative score, a useful weight must make S more negative
    assert fn.scores.grad.tolist() == [[1.0, -2.0, -3.0, -4.0]]


# --- supermasks on real models ------------------------------------------------------------------

def _tiny(d: Dataset, n_train: int = 600, n_eval: int = 200) -> Dataset:
    cut = lambda s, n: Split(s.x[:n], s.y[:n])  # noqa: E731
    return dataclasses.replace(d, train=cut(d.train, n_train), val=cut(d.val, n_eval), test=cut(d.test, n_eval))


@pytest.fixture(scope="module")
def tiny(mnist):
    return _tiny(mnist)


def test_supermask_model_trains_only_scores(tiny, tmp_path):
    from lotterylib.cache import ResultCache
    cfg = D.SupermaskConfig(train=TrainConfig(iterations=4, optimizer="sgd", lr=100.0, eval_every=2), seeds=(0, 1),
                            rescale=True)
    model = D.supermask_model(cfg)
    before = {k: weightfn.stored(l).detach().clone() for k, l in model.prunable().items()}
    assert [p.requires_grad for p in model.parameters()].count(True) == len(model.prunable())
    assert len(D.score_parameters(model)) == 3
    from lotterylib.train import train
    train(model, tiny, cfg.train, [0, 1], progress=False, trainable=D.score_parameters)
    for k, l in model.prunable().items():
        assert torch.equal(weightfn.stored(l), before[k])
        assert not torch.equal(weightfn.functions(l)[0].scores, torch.zeros_like(before[k]))
    res = D.train_supermask(cfg, tiny, cache=ResultCache(tmp_path), progress=False)
    assert len(res["test_acc"]) == 2 and 0 < res["fraction_kept"][0] < 1
    assert res == D.train_supermask(cfg, tiny, cache=ResultCache(tmp_path), progress=False)


def test_edge_popup_model_keeps_k(tiny):
    cfg = D.SupermaskConfig(method="edge_popup", weights="signed_constant", fraction_kept=0.3)
    model = D.supermask_model(cfg)
    assert torch.allclose(D.fraction_kept(model), torch.tensor([0.3]), atol=1e-3)
    for layer in model.prunable().values():
        w = layer.weight
        assert abs(float((w != 0).float().mean()) - 0.3) < 1e-3


def test_init_accuracy_and_seed_mask_roundtrip(tiny):
    lc = LotteryConfig(seeds=(0, 1))
    init = {k: v for k, v in __import__("lotterylib.lottery", fromlist=["x"]).initial_weights(lc).items()}
    final = {k: v + 0.05 * torch.randn_like(v) for k, v in init.items()}
    rates = masks.layer_rates(models.build("lenet_300_100", [0]))
    res = D.init_accuracy("lenet_300_100", init, final, ("large_final", "random"), rates, [1, 3], tiny.test,
                          seeds=[0, 1])
    assert np.allclose(res["weights_remaining"], [0.801, 0.513], atol=2e-3)
    assert np.asarray(res["acc"]["signed_constant"]["random"]).shape == (2, 2)
    # Seed + mask: a blob far smaller than the dense model that rebuilds the same network.
    m = D.oneshot_masks("lenet_300_100", init, final, "large_final_same_sign", {k: 0.5 for k in init}, [0, 1])
    one = {k: v[0] for k, v in m.items()}
    blob = D.pack_seed_mask("lenet_300_100", lottery_init_seed(lc), "signed_constant", one)
    header, back = D.unpack_seed_mask(blob)
    assert header["weights"] == "signed_constant" and all(torch.equal(back[k], one[k]) for k in one)
    model = D.rebuild(blob)
    base = D.base_weights("signed_constant", {k: v[:1] for k, v in init.items()})
    for k, layer in model.prunable().items():
        assert torch.equal(weightfn.stored(layer)[0], base[k][0] * one[k])
    dense = D.dense_bytes(model)
    assert dense == 4 * (266_200 + 410)
    assert len(blob) < dense / 25
    with pytest.raises(ValueError, match="magic"):
        D.unpack_seed_mask(b"nope" + blob[4:])


def lottery_init_seed(lc: LotteryConfig) -> int:
    from lotterylib.lottery import init_seeds
    return init_seeds(lc)[0]


def test_run_criteria_population_and_cache(tiny, tmp_path):
    from lotterylib.cache import ResultCache
    lc = LotteryConfig(train=TrainConfig(iterations=3, eval_every=3), seeds=(0, 1), rate_fc=0.5, rate_output=0.25,
                       controls=())
    cfg = D.DeconstructConfig(lc, ("large_final", "large_init_large_final", "random"),
                              branches=((1, ("signed_constant", "freeze_init")),))
    cache = ResultCache(tmp_path)
    rounds = D.run_criteria(cfg, tiny, 2, cache=cache, progress=False)
    assert [sorted(r.histories) for r in rounds] == [
        ["dense"], ["freeze_init", "large_final", "large_init_large_final", "random", "signed_constant"],
        ["large_final", "large_init_large_final", "random"]]
    assert rounds[1].histories["freeze_init"].runs == 2
    assert rounds[2].weights_remaining == pytest.approx(masks.schedule({"a": 235200, "b": 30000, "c": 1000},
                                                                       {"a": .5, "b": .5, "c": .25}, 2)[2], abs=1e-6)
    table = D.accuracy_table(rounds)
    assert set(table["acc"]["large_final"]) == {"0", "1", "2"} and set(table["acc"]["freeze_init"]) == {"1"}
    again = D.run_criteria(cfg, tiny, 2, cache=cache, progress=False)  # from the cache, same numbers
    assert D.accuracy_table(again) == table


def test_conv_code_path_on_the_cifar_subset(data_root, tmp_path):
    """The CIFAR-10 path (Conv-2) runs end to end on a slice of the verified subset."""
    from lotterylib.cache import ResultCache
    from lotterylib.data import load
    data = _tiny(load("cifar10", data_root, download=False), 120, 60)
    cache = ResultCache(tmp_path)
    lc = LotteryConfig(model="conv2", dataset="cifar10", train=TrainConfig(iterations=2, eval_every=2, lr=2e-4),
                       seeds=(0,), controls=())
    res = D.run_init_accuracy(D.InitAccuracyConfig(lc, ("large_final_same_sign",), (1, 4)), data, cache=cache,
                              progress=False)
    assert len(res["acc"]["init"]["large_final_same_sign"]) == 2
    sm = D.train_supermask(D.SupermaskConfig(model="conv2", dataset="cifar10", rescale=True,
                                             train=TrainConfig(iterations=2, eval_every=2, optimizer="sgd", lr=100.0)),
                           data, cache=cache, progress=False)
    assert 0.0 <= sm["test_acc"][0] <= 1.0


# --- the DLT claim checks decide on numbers and can fail ----------------------------------------

NOISE = [0.0, 0.002, -0.002]  # three seeds


def _seeds(a):
    return [a + d for d in NOISE]


def _summary(**over):
    acc = {"large_final": .968, "magnitude_increase": .970, "movement": .966, "large_init_large_final": .94,
           "random": .925, "small_final": .89, "reinit": .94, "reshuffle": .936, "constant": .931,
           "signed_reinit": .967, "signed_reshuffle": .969, "signed_constant": .967, "freeze_init": .957,
           "freeze_init_or_zero": .972, "freeze_init_or_zero_all": .972}
    acc.update(over.pop("acc", {}))
    branch = set(D.MASK1) | {"freeze_init", "freeze_init_or_zero", "freeze_init_or_zero_all"}
    table = {n: ({"3": _seeds(a)} if n in branch else {"0": _seeds(.96), "1": _seeds(a), "2": _seeds(a), "3": _seeds(a)})
             for n, a in acc.items()}
    init_best = {"large_final_same_sign": .9, "large_final": .88, "random": .11}
    init_best.update(over.pop("init", {}))
    sc_best = {**init_best, "large_final_same_sign": init_best["large_final_same_sign"] + over.pop("signed_gain", 0.03)}
    init = {"weights_remaining": [.5, .2], "powers": [3, 7],
            "acc": {"init": {c: [_seeds(v - 0.05), _seeds(v)] for c, v in init_best.items()},
                    "signed_constant": {c: [_seeds(v - 0.05), _seeds(v)] for c, v in sc_best.items()}}}
    sm = {"sampled": .95, "sampled_dwr": .97, "edge_popup": .92}
    sm.update(over.pop("supermask", {}))
    return {"imp": {"rounds": [0, 1, 2, 3], "weights_remaining": [1.0, .41, .17, .07], "acc": table},
            "init": init, "supermask": {k: {"test_acc": _seeds(v)} for k, v in sm.items()}}


def test_dlt_checks_hold_on_good_numbers_and_fail_on_bad():
    from lotterylib import claims
    from lotterylib.claims import dlt
    good = {c.id: v.holds for c, v in claims.check("DLT", _summary(), "quick")}
    assert good == {"DLT-1": True, "DLT-2": True, "DLT-3": True, "DLT-4": True, "DLT-5": True, "DLT-6": None,
                    "DLT-7": True, "DLT-8": None, "DLT-9": None, "DLT-10": None}  # DLT-8: full training only
    assert {c.id: v.holds for c, v in claims.check("DLT", _summary(), "full")}["DLT-8"] is True
    bad = {
        "DLT-1": _summary(acc={"random": .967}),                 # random as good as the tickets
        "DLT-2": _summary(acc={"signed_constant": .930}),        # signs kept, no better than without
        "DLT-3": _summary(acc={"freeze_init": .968}),            # freezing at init costs nothing
        "DLT-4": _summary(init={"large_final_same_sign": .11}),  # the supermask at chance
        "DLT-5": _summary(signed_gain=-0.03),                    # signed constants below θ₀ (decided in full)
        "DLT-7": _summary(supermask={"sampled_dwr": .95}),       # rescaling changes nothing
        "DLT-8": _summary(init={"large_final": .95}),            # another criterion is the best supermask (full)
    }
    for cid, summary in bad.items():
        for profile in ("quick", "full") if cid not in ("DLT-5", "DLT-8") else ("full",):
            verdict = dict((c.id, v) for c, v in claims.check("DLT", summary, profile))[cid]
            assert verdict.holds is False, (cid, profile, verdict)
    # what the quick budget cannot decide is reported, not decided
    on_par = dlt.check_dlt2(_summary(acc={"signed_constant": .95}), "quick")
    assert on_par.holds is True and "undecided in quick" in on_par.measured  # its orderings hold
    assert dlt.check_dlt2(_summary(acc={"signed_constant": .95}), "full").holds is False


def test_one_seed_decides_nothing():
    from lotterylib import claims
    one = _summary()
    for name, per_round in one["imp"]["acc"].items():
        one["imp"]["acc"][name] = {r: v[:1] for r, v in per_round.items()}
    assert dict((c.id, v) for c, v in claims.check("DLT", one, "quick"))["DLT-1"].holds is None


def test_the_chains_protocol_is_checked_on_the_chain_results():
    from lotterylib import claims
    from lotterylib.claims import dlt
    s = _summary()
    acc = s["imp"]["acc"]
    for v in D.MASK1 + ("freeze_init", "freeze_init_or_zero", "freeze_init_or_zero_all"):
        acc[D.chain_name(v)] = {str(r): list(acc[v]["3"]) for r in (1, 2, 3)}
    s["imp"]["weights_remaining"] = [1.0, .21, .07, .036]
    assert dlt.check_dlt9(s, "full").holds and dlt.check_dlt10(s, "full").holds
    acc[D.chain_name("signed_reinit")] = {str(r): _seeds(.94) for r in (1, 2, 3)}  # no better than reinit
    verdict = dlt.check_dlt9(s, "full")
    assert verdict.holds is False and any("chain:signed_reinit > chain:reinit" in p.label and p.holds is False
                                          for p in verdict.parts)


def test_run_criteria_runs_each_chained_variant_as_its_own_chain(tiny, tmp_path):
    from lotterylib.cache import ResultCache
    lc = LotteryConfig(train=TrainConfig(iterations=3, eval_every=3), seeds=(0, 1), rate_fc=0.5, rate_output=0.25,
                       controls=())
    cfg = D.DeconstructConfig(lc, ("large_final",), chains=("reinit", "freeze_init"), branches=((2, ("reinit",)),))
    cache = ResultCache(tmp_path)
    rounds = D.run_criteria(cfg, tiny, 2, cache=cache, progress=False)
    assert sorted(rounds[1].histories) == ["chain:freeze_init", "chain:reinit", "large_final"]
    assert sorted(rounds[2].histories) == ["chain:freeze_init", "chain:reinit", "large_final", "reinit"]
    state = cache.get(D.CriteriaRound(cfg, 2), "dlt").tensors()
    # round 1's masks all come from the dense net; round 2's from each chain's own trained weights
    round1 = cache.get(D.CriteriaRound(cfg, 1), "dlt").tensors()["mask"]
    assert all(torch.equal(round1["chain:reinit"][k], round1["large_final"][k]) for k in round1["large_final"])
    assert any(not torch.equal(state["mask"]["chain:reinit"][k], state["mask"]["large_final"][k])
               for k in state["mask"]["large_final"])
    again = D.run_criteria(cfg, tiny, 2, cache=cache, progress=False)
    assert D.accuracy_table(again) == D.accuracy_table(rounds)


def test_dlt_full_settings_and_undecided_cifar():
    from lotterylib import claims
    from lotterylib.claims import dlt
    s = dlt.settings("full", 1)
    assert s.deconstruct.lottery.seeds == (3, 4, 5) and s.rounds == 15
    pm = masks.schedule(models.count_weights(models.build("lenet_300_100", [0])),
                        masks.layer_rates(models.build("lenet_300_100", [0])), 15)
    assert [round(100 * pm[r], 1) for r, _ in s.deconstruct.branches] == [21.1, 7.0]
    chains = dlt.chain_settings("full", 0)
    assert chains.rounds == 15 and set(chains.deconstruct.chains) == set(D.MASK1 + D.MASK0)
    assert [round(100 * pm[r], 1) for r, _ in chains.deconstruct.branches] == [3.6]
    assert dlt.settings("quick").deconstruct.lottery.train.iterations == 600
    assert len(dlt.settings("quick").deconstruct.lottery.seeds) == 3
    with pytest.raises(ValueError, match="unknown profile"):
        dlt.settings("medium")
    v = dict((c.id, v) for c, v in claims.check("DLT", {**_summary(), "cifar": {"available": False, "note": "x"}},
                                                  "full"))
    assert v["DLT-6"].holds is None and "needs" in v["DLT-6"].note
