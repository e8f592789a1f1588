"""Mask criteria (Zhou et al. 2019): every criterion on hand-made (w_i, w_f), ties, the quadrant search.

The tests of properties every criterion must have (score shape, determinism, the exact count kept,
no revival, use in IMP) run over the whole registry, ``criteria.CRITERIA``, so a newly registered
criterion is tested by them without being listed here.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from lotterylib import criteria, lottery, masks

# Hand-made weights. |w_i| = .1 .5 .3 .2 .8 .05; |w_f| = .6 .95 .1 .9 .7 .02
# signs:            w_i   +  -  +  -  +  -
#                   w_f   +  +  -  -  +  +     → same sign at 0, 3, 4
W_I = torch.tensor([0.1, -0.5, 0.3, -0.2, 0.8, -0.05])
W_F = torch.tensor([0.6, 0.95, -0.1, -0.9, 0.7, 0.02])

# Expected masks keeping 3 of the 6 weights.
KEEP3 = {
    "large_final": [0, 1, 0, 1, 1, 0],             # |w_f| .95 .9 .7
    "small_final": [1, 0, 1, 0, 0, 1],             # |w_f| .02 .1 .6
    "large_init": [0, 1, 1, 0, 1, 0],              # |w_i| .8 .5 .3
    "small_init": [1, 0, 0, 1, 0, 1],              # |w_i| .05 .1 .2
    "magnitude_increase": [1, 1, 0, 1, 0, 0],      # |w_f|-|w_i| = .5 .45 -.2 .7 -.1 -.03
    "movement": [1, 1, 0, 1, 0, 0],                # |w_f-w_i| = .5 1.45 .4 .7 .1 .07
    "large_final_same_sign": [1, 0, 0, 1, 1, 0],   # same-sign weights 0, 3, 4
    "large_final_diff_sign": [0, 1, 1, 0, 0, 1],   # diff-sign weights 1, 2, 5
    # ranks of |w_i| = 1 4 3 2 5 0 and of |w_f| = 2 5 1 4 3 0; min = 1 4 1 2 3 0:
    # pruning below rank 2 in both prunes {5, 0} ∪ {5, 2}: exactly 3.
    "large_init_large_final": [0, 1, 0, 1, 1, 0],
    # ranks of −|w_i| = 4 1 2 3 0 5 and of −|w_f| = 3 0 4 1 2 5; min = 3 0 2 1 0 5: prune 1, 4, 3.
    "small_init_small_final": [1, 0, 1, 0, 0, 1],
}

# Every registered criterion (the Zhou et al. eleven and any registered since).
REGISTERED = sorted(criteria.CRITERIA)


def test_registry_has_the_eleven_criteria():
    assert set(criteria.ZHOU) == set(KEEP3) | {"random"}
    assert len(criteria.ZHOU) == 11
    assert set(criteria.ZHOU) <= set(criteria.CRITERIA)


@pytest.mark.parametrize("name", sorted(KEEP3))
def test_criterion_on_hand_made_weights(name):
    mask = criteria.oneshot_mask(name, W_I, W_F, 0.5)
    assert mask.tolist() == [float(v) for v in KEEP3[name]]


@pytest.mark.parametrize("name", REGISTERED)
def test_every_criterion_scores_every_weight(name):
    g = torch.Generator().manual_seed(1)
    w_i, w_f = torch.randn(40, 7, generator=g), torch.randn(40, 7, generator=g)
    s = criteria.score(name, w_i, w_f, torch.Generator().manual_seed(0))
    expected = (40, 7, 2) if criteria.is_quadrant(name) else (40, 7)
    assert s.shape == expected and s.dtype == torch.float32
    assert bool(torch.isfinite(s).all())


@pytest.mark.parametrize("name", REGISTERED)
def test_every_criterion_is_deterministic_given_its_seed(name):
    g = torch.Generator().manual_seed(1)
    w_i, w_f = torch.randn(40, 7, generator=g), torch.randn(40, 7, generator=g)
    a = criteria.score(name, w_i, w_f, torch.Generator().manual_seed(5))
    b = criteria.score(name, w_i, w_f, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert torch.equal(criteria.oneshot_mask(name, w_i, w_f, 0.3, seed=2), criteria.oneshot_mask(name, w_i, w_f, 0.3, seed=2))


@pytest.mark.parametrize("name", REGISTERED)
def test_every_criterion_keeps_exactly_the_count(name):
    g = torch.Generator().manual_seed(1)
    w_i, w_f = torch.randn(40, 7, generator=g), torch.randn(40, 7, generator=g)
    for frac in (0.9, 0.5, 0.21, 0.05):
        m = criteria.oneshot_mask(name, w_i, w_f, frac, seed=3)
        assert int(m.sum()) == round(frac * 280)
        assert set(m.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", REGISTERED)
def test_every_criterion_never_revives_a_pruned_weight(name):
    g = torch.Generator().manual_seed(4)
    w_i, w_f = torch.randn(200, generator=g), torch.randn(200, generator=g)
    keep = criteria.oneshot_mask("random", w_i, w_f, 0.6, seed=4)
    m = criteria.oneshot_mask(name, w_i, w_f, 0.3, seed=4, keep=keep)
    assert int(m.sum()) == 60 and bool((m <= keep).all())


def test_score_formulas():
    s = lambda n: criteria.score(n, W_I, W_F)  # noqa: E731
    assert torch.allclose(s("large_final"), W_F.abs())
    assert torch.allclose(s("small_final"), -W_F.abs())
    assert torch.allclose(s("large_init"), W_I.abs())
    assert torch.allclose(s("small_init"), -W_I.abs())
    assert torch.allclose(s("magnitude_increase"), W_F.abs() - W_I.abs())
    assert torch.allclose(s("movement"), (W_F - W_I).abs())
    assert s("large_final_same_sign").tolist() == pytest.approx([0.6, 0, 0, 0.9, 0.7, 0])
    assert s("large_final_diff_sign").tolist() == pytest.approx([0, 0.95, 0.1, 0, 0, 0.02])
    assert s("large_init_large_final").shape == (6, 2)
    assert criteria.is_quadrant("large_init_large_final") and not criteria.is_quadrant("large_final")


def test_random_criterion_depends_on_seed_only():
    w = torch.zeros(100)
    a = criteria.oneshot_mask("random", w, w, 0.3, seed=1)
    assert torch.equal(a, criteria.oneshot_mask("random", w, w, 0.3, seed=1))
    assert not torch.equal(a, criteria.oneshot_mask("random", w, w, 0.3, seed=2))


def test_ties_are_broken_at_random_but_count_is_exact():
    # Three weights tie at the boundary; keep 2: the 0.5 is always pruned, one of the ties too.
    w_f = torch.tensor([1.0, 1.0, 1.0, 0.5])
    pruned_tie = set()
    for seed in range(30):
        m = criteria.oneshot_mask("large_final", torch.zeros(4), w_f, 0.5, seed=seed)
        assert m[3] == 0 and int(m.sum()) == 2
        pruned_tie.add(int(torch.nonzero(m[:3] == 0)[0]))
    assert pruned_tie == {0, 1, 2}


def test_sign_criteria_ties_among_zero_scores():
    # Only weights 0, 3, 4 agree in sign; keeping 4 must add one of the zero-score ones at random.
    seen = set()
    for seed in range(30):
        m = criteria.oneshot_mask("large_final_same_sign", W_I, W_F, 4 / 6, seed=seed)
        assert m[[0, 3, 4]].tolist() == [1, 1, 1] and int(m.sum()) == 4
        seen.add(int(torch.nonzero(m[[1, 2, 5]])[0]))
    assert seen == {0, 1, 2}


def _reference_quadrant_bounds(w_i, w_f, keep, target):
    """The reference search in plain Python: smallest k whose union of the k lowest ranks prunes ≥ target."""
    idx = [i for i in range(len(keep)) if keep[i]]
    pruned = [i for i in range(len(keep)) if not keep[i]]
    order_i = pruned + sorted(idx, key=lambda j: abs(w_i[j]))
    order_f = pruned + sorted(idx, key=lambda j: abs(w_f[j]))
    for k in range(len(keep) + 1):
        union = set(order_i[:k]) | set(order_f[:k])
        if len(union) >= target:
            return set(order_i[:k - 1]) | set(order_f[:k - 1]), union
    raise AssertionError


@pytest.mark.parametrize("seed", range(5))
def test_quadrant_search_matches_the_common_percentile(seed):
    g = torch.Generator().manual_seed(seed)
    w_i, w_f = torch.randn(60, generator=g), torch.randn(60, generator=g)
    keep = (torch.rand(60, generator=g) > 0.3).float()
    kept = int(keep.sum())
    for n_prune in range(1, kept):
        new = masks.prune({"w": keep[None]}, {"w": criteria.score("large_init_large_final", w_i, w_f)[None]},
                          n_prune / kept, seeds=[seed])["w"][0]
        pruned = {i for i in range(60) if new[i] == 0}
        below, at = _reference_quadrant_bounds(w_i.tolist(), w_f.tolist(), keep.tolist(), 60 - kept + n_prune)
        assert len(pruned) == 60 - kept + n_prune          # the exact count, like every other criterion
        assert below <= pruned <= at                        # ... at the common percentile
        assert all(new[i] == 0 for i in range(60) if keep[i] == 0)  # never revived


def test_quadrant_keeps_only_weights_large_in_both():
    g = torch.Generator().manual_seed(0)
    w_i, w_f = torch.randn(1000, generator=g), torch.randn(1000, generator=g)
    m = criteria.oneshot_mask("large_init_large_final", w_i, w_f, 0.25).bool()
    # Every kept weight beats every pruned one in at least... the threshold: min over kept ≥ common percentile.
    t_i, t_f = w_i.abs()[m].min(), w_f.abs()[m].min()
    assert ((w_i.abs() >= t_i) & (w_f.abs() >= t_f)).sum() >= m.sum()
    q_i = (w_i.abs() < t_i).float().mean()
    q_f = (w_f.abs() < t_f).float().mean()
    assert abs(q_i - q_f) < 0.01  # one common percentile on both
    s = criteria.oneshot_mask("small_init_small_final", w_i, w_f, 0.25).bool()
    assert w_i.abs()[s].max() < w_i.abs()[m].min() or w_f.abs()[s].max() < w_f.abs()[m].min()


def test_quadrant_in_global_and_iterative_pruning():
    g = torch.Generator().manual_seed(2)
    mask = {"a": torch.ones(2, 10, 5), "b": torch.ones(2, 3, 10)}
    w_i = {k: torch.randn(v.shape, generator=g) for k, v in mask.items()}
    w_f = {k: torch.randn(v.shape, generator=g) for k, v in mask.items()}
    for rnd in range(3):
        scores = {k: criteria.score("large_init_large_final", w_i[k], w_f[k]) for k in mask}
        new = masks.prune(mask, scores, 0.2, seeds=[1, 2], global_=True)
        before, after = masks.weights_remaining(mask), masks.weights_remaining(new)
        assert torch.allclose(after * 80, torch.round(before * 80) - torch.round(0.2 * before * 80))
        assert all(bool((new[k] <= mask[k]).all()) for k in mask)
        mask = new


def test_fraction_kept_and_fraction_pruned_naming():
    w = torch.arange(1.0, 9.0)
    assert int(criteria.oneshot_mask("large_final", w, w, 0.25).sum()) == 2      # fraction KEPT
    pruned = masks.prune({"w": torch.ones(1, 8)}, {"w": w[None]}, 0.25, seeds=[0])  # rate = fraction PRUNED
    assert int(pruned["w"].sum()) == 6
    assert pruned["w"][0, :2].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="fraction_kept"):
        criteria.oneshot_mask("large_final", w, w, 0.0)
    with pytest.raises(ValueError, match="fraction pruned"):
        masks.prune({"w": torch.ones(1, 8)}, {"w": w[None]}, 1.0, seeds=[0])


def test_oneshot_mask_prunes_an_existing_mask_further():
    keep = torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0])
    m = criteria.oneshot_mask("large_final", torch.zeros(8), torch.arange(8.0), 0.25, keep=keep)
    assert m.tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="only 4 are still kept"):
        criteria.oneshot_mask("large_final", torch.zeros(8), torch.arange(8.0), 0.75, keep=keep)


def test_unknown_criterion_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown mask criterion 'largest'.*large_final_same_sign.*movement"):
        criteria.get("largest")
    with pytest.raises(ValueError, match="choose one of"):
        lottery.LotteryConfig(criterion="bogus")
    with pytest.raises(ValueError, match="differ in shape"):
        criteria.score("large_final", torch.zeros(3), torch.zeros(4))


def test_score_shape_checked_by_prune():
    with pytest.raises(ValueError, match="scores shape"):
        masks.prune({"w": torch.ones(1, 4)}, {"w": torch.ones(1, 5)}, 0.5, seeds=[0])


@pytest.mark.parametrize("name", REGISTERED)
def test_every_criterion_runs_in_imp_next_mask(name):
    config = lottery.LotteryConfig(criterion=name, seeds=(0,))
    init = lottery.initial_weights(config)
    final = {k: v + 0.01 * torch.randn_like(v) for k, v in init.items()}
    ones = {k: torch.ones_like(v) for k, v in init.items()}
    mask = lottery.next_mask(config, ones, init, final, 1)
    ref = lottery.next_mask(lottery.LotteryConfig(seeds=(0,)), ones, init, final, 1)
    for k in mask:  # every criterion prunes exactly the counts large_final does
        assert torch.equal(mask[k].sum(dim=tuple(range(1, mask[k].dim()))), ref[k].sum(dim=tuple(range(1, ref[k].dim()))))


def test_criteria_differ_from_each_other():
    g = torch.Generator().manual_seed(0)
    w_i, w_f = torch.randn(500, generator=g), torch.randn(500, generator=g)
    ms = {n: criteria.oneshot_mask(n, w_i, w_f, 0.3) for n in REGISTERED}
    for a, b in itertools.combinations(REGISTERED, 2):
        assert not torch.equal(ms[a], ms[b]), (a, b)


def _random_masks(seeds, oneshot=False):
    """Masks of the random criterion for a population of ``seeds`` whose runs all hold the same weights."""
    config = lottery.LotteryConfig(criterion="random", seeds=tuple(seeds))
    w = {k: v[:1].expand(len(seeds), *v.shape[1:]).clone() for k, v in lottery.initial_weights(
        lottery.LotteryConfig(seeds=(0,))).items()}
    ones = {k: torch.ones_like(v) for k, v in w.items()}
    if oneshot:
        return lottery.oneshot_targets(config, w, w, [2])[0]
    return lottery.next_mask(config, ones, w, w, 1)


@pytest.mark.parametrize("oneshot", [False, True])
def test_random_masks_depend_on_the_runs_seed(oneshot):
    """The random criterion's mask comes from the run's own seed: another --seed draws another mask,
    and run i of a stacked population draws what it would draw alone."""
    a, b, both = _random_masks([0], oneshot), _random_masks([1], oneshot), _random_masks([0, 1], oneshot)
    for k in a:
        assert not torch.equal(a[k][0], b[k][0]), k
        assert torch.equal(both[k][0], a[k][0]) and torch.equal(both[k][1], b[k][0]), k


def test_a_random_score_needs_a_seeded_generator():
    with pytest.raises(ValueError, match="seeded from the run's seed"):
        criteria.score("random", torch.zeros(3), torch.zeros(3))
    s = criteria.score_runs("random", torch.zeros(2, 3), torch.zeros(2, 3), [5, 5])
    assert torch.equal(s[0], s[1])  # same seed, same scores: nothing else enters
