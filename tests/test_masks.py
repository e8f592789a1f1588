import pytest
import torch

from lotterylib import masks, models


def lenet(runs=1):
    return models.build("lenet_300_100", list(range(runs)))


@pytest.mark.parametrize("rounds,expected", [(3, 51.3), (7, 21.1), (12, 7.0), (15, 3.6)])
def test_lt_schedule_matches_paper(rounds, expected):
    model = lenet()
    pm = masks.schedule(models.count_weights(model), masks.layer_rates(model, fc=0.2, output=0.1), rounds)
    assert round(100 * pm[-1], 1) == expected


def test_prune_rounds_match_schedule_and_never_revive():
    model = lenet(2)
    rates = masks.layer_rates(model, fc=0.2, output=0.1)
    mask = masks.ones(model)
    weights = {k: torch.randn_like(v) for k, v in mask.items()}
    expected = masks.schedule(models.count_weights(model), rates, 4)
    for r in range(1, 5):
        new = masks.prune(mask, {k: w.abs() for k, w in weights.items()}, rates, seeds=[r, r + 10])
        for k in mask:
            assert torch.all(new[k] <= mask[k]), "a pruned weight came back"
        mask = new
        assert torch.allclose(masks.weights_remaining(mask), torch.tensor(expected[r]), atol=1e-9)


def test_prune_removes_smallest_per_layer_and_output_at_half_rate():
    model = lenet()
    rates = masks.layer_rates(model, fc=0.2, output=0.1)
    assert rates == {"layers.0": 0.2, "layers.1": 0.2, "layers.2": 0.1}
    mask = masks.ones(model)
    scores = {k: torch.arange(v.numel(), dtype=torch.float).reshape(v.shape) for k, v in mask.items()}
    new = masks.prune(mask, scores, rates, seeds=[0])
    for k, m in new.items():
        flat = m.reshape(-1)
        n_pruned = int((flat == 0).sum())
        assert n_pruned == round(rates[k] * flat.numel())
        assert torch.all(flat[:n_pruned] == 0) and torch.all(flat[n_pruned:] == 1)


def test_ties_are_broken_by_seed_not_position():
    mask = {"w": torch.ones(1, 100)}
    scores = {"w": torch.zeros(1, 100)}
    a = masks.prune(mask, scores, 0.5, seeds=[1])["w"]
    b = masks.prune(mask, scores, 0.5, seeds=[1])["w"]
    c = masks.prune(mask, scores, 0.5, seeds=[2])["w"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.sum()) == 50 and not torch.equal(a[0, :50], torch.zeros(50))


def test_global_pruning_uses_one_threshold():
    mask = {"a": torch.ones(1, 4), "b": torch.ones(1, 4)}
    scores = {"a": torch.tensor([[1.0, 2, 3, 4]]), "b": torch.tensor([[10.0, 20, 30, 40]])}
    new = masks.prune(mask, scores, 0.5, seeds=[0], global_=True)
    assert new["a"].sum() == 0 and new["b"].sum() == 4


def test_magnitude_fraction_kept_naming():
    w = {"w": torch.arange(1.0, 11.0).reshape(1, 10)}
    kept = masks.magnitude(w, fraction_kept=0.3)["w"]
    assert kept.tolist() == [[0, 0, 0, 0, 0, 0, 0, 1, 1, 1]]


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_rates_are_rejected(bad):
    mask = {"w": torch.ones(1, 10)}
    with pytest.raises(ValueError, match="fraction pruned"):
        masks.prune(mask, {"w": torch.rand(1, 10)}, bad, seeds=[0])


def test_mismatched_scores_are_rejected():
    mask = {"w": torch.ones(1, 10)}
    with pytest.raises(ValueError, match="shape"):
        masks.prune(mask, {"w": torch.rand(1, 9)}, 0.5, seeds=[0])
    with pytest.raises(ValueError, match="layers"):
        masks.prune(mask, {"v": torch.rand(1, 10)}, 0.5, seeds=[0])
    with pytest.raises(ValueError, match="seed"):
        masks.prune(mask, {"w": torch.rand(1, 10)}, 0.5, seeds=[0, 1])


def test_attach_masks_rejects_wrong_shapes():
    model = lenet()
    bad = masks.ones(model)
    bad["layers.0"] = torch.ones(1, 3, 3)
    with pytest.raises(ValueError, match="shape"):
        masks.attach_masks(model, bad)


def _sorted_lowest(values, k):  # the definition lowest() must match: the first k of a stable sort
    return set(torch.sort(values, stable=True).indices[:k].tolist())


def _lowest_inputs():
    g = torch.Generator().manual_seed(0)
    n = 2000
    many_ties = torch.randint(0, 7, (n,), generator=g).double()
    pruned = torch.randint(0, 5, (n,), generator=g).double()
    pruned[torch.rand(n, generator=g) < 0.4] = -torch.inf
    nan = torch.randint(0, 5, (n,), generator=g).double()
    nan[torch.rand(n, generator=g) < 0.3] = float("nan")
    return {"distinct": torch.randn(n, generator=g, dtype=torch.float64), "many ties": many_ties,
            "already pruned (-inf)": pruned, "with NaN": nan, "all equal": torch.zeros(n, dtype=torch.float64)}


def _lowest_mismatches(lowest, values):
    """The k at which ``lowest(values, k)`` is not the stable sort's first k (or has repeats)."""
    bad = []
    for k in (0, 1, 2, 17, 399, 1000, 1401, 1999, 2000, 2500):
        got = lowest(values, k).tolist()
        if len(got) != len(set(got)) or len(got) != min(k, values.numel()) or set(got) != _sorted_lowest(values, k):
            bad.append(k)
    return bad


@pytest.mark.parametrize("kind", list(_lowest_inputs()))
def test_lowest_is_the_stable_sorts_first_k(kind):
    assert _lowest_mismatches(masks.lowest, _lowest_inputs()[kind]) == []


def test_the_lowest_check_fails_a_selection_that_breaks_ties_toward_the_end():
    def ties_last(values, k):  # the k smallest, but among equal values the *last* positions
        n = values.numel()
        flipped = torch.sort(values.flip(0), stable=True).indices[:k]
        return (n - 1 - flipped) if k > 0 else flipped
    assert _lowest_mismatches(ties_last, _lowest_inputs()["many ties"]) != []
    assert _lowest_mismatches(ties_last, _lowest_inputs()["distinct"]) == []  # without ties it is right
