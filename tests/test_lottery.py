import json

import pytest
import torch

from lotterylib import lottery
from lotterylib.cache import ResultCache
from lotterylib.train import TrainConfig

TINY = lottery.LotteryConfig(train=TrainConfig(iterations=20, batch_size=20, eval_every=10), seeds=(0, 1),
                             rate_fc=0.5, rate_output=0.25)


def test_interrupted_imp_resumes_with_the_same_result(mnist_small, tmp_path):
    whole = lottery.run_imp(TINY, mnist_small, 2, cache=ResultCache(tmp_path / "a"), progress=False)

    class Interrupt(Exception):
        pass

    def stop_after_round_one(r):
        if r.round == 1:
            raise Interrupt

    cache = ResultCache(tmp_path / "b")
    with pytest.raises(Interrupt):
        lottery.run_imp(TINY, mnist_small, 2, cache=cache, progress=False, on_round=stop_after_round_one)
    trained = []
    resumed = lottery.run_imp(TINY, mnist_small, 2, cache=cache, progress=False,
                              on_round=lambda r: trained.append(r.seconds))
    assert len(resumed) == 3
    for a, b in zip(whole, resumed):
        assert a.weights_remaining == b.weights_remaining
        for v in a.histories:
            assert json.dumps(a.histories[v].to_json()) == json.dumps(b.histories[v].to_json())
    # rounds 0 and 1 came from the cache (their stored durations), round 2 was trained again
    assert trained[:2] == [resumed[0].seconds, resumed[1].seconds]


def test_ticket_and_reinit_share_masks_but_not_init(mnist_small, tmp_path):
    cache = ResultCache(tmp_path)
    rounds = lottery.run_imp(TINY, mnist_small, 1, cache=cache, progress=False)
    assert set(rounds[1].histories) == {"ticket", "reinit"}
    assert abs(rounds[1].weights_remaining - 0.5013) < 1e-3
    model = lottery.trained_model(TINY, 1, cache)
    state = lottery.round_state(TINY, 1, cache)
    for name, layer in model.prunable().items():
        assert torch.all(layer.weight[~state["mask"][name]] == 0)


def test_a_round_read_from_the_cache_summarizes_as_the_computed_one(mnist_small, tmp_path):
    # The cache stores JSON with sorted keys: without the stored order, "reinit" came back before
    # "ticket" and the summary's rows changed order with the state of the cache.
    cache = ResultCache(tmp_path)
    computed = lottery.run_imp(TINY, mnist_small, 1, cache=cache, progress=False)
    cached = lottery.run_imp(TINY, mnist_small, 1, cache=cache, progress=False)
    assert list(cached[1].histories) == list(computed[1].histories) == ["ticket", "reinit"]
    assert lottery.summarize(cached) == lottery.summarize(computed)


def test_a_stored_round_rebuilds_the_trained_network_biases_included(mnist_small, tmp_path):
    """round_state holds what later chapters need: the rebuilt tickets compute exactly the test
    accuracy the round recorded at its last iteration (so no chapter has to train them again)."""
    from lotterylib.train import evaluate
    cache = ResultCache(tmp_path)
    rounds = lottery.run_imp(TINY, mnist_small, 1, cache=cache, progress=False)
    for rnd in (0, 1):
        _, acc = evaluate(lottery.trained_model(TINY, rnd, cache), mnist_small.test)
        # (the history keeps float32; 500 test images make accuracies multiples of 0.002)
        assert acc.numpy() == pytest.approx(rounds[rnd].histories["ticket"].test_acc[:, -1], abs=1e-6)
        assert set(lottery.round_state(TINY, rnd, cache)) == {"final", "bias", "mask"}


def test_oneshot_reaches_the_round_sparsity(mnist_small, tmp_path):
    out = lottery.run_oneshot(TINY, mnist_small, (1, 2), cache=ResultCache(tmp_path), progress=False)
    assert [round(r.weights_remaining, 3) for r in out] == [0.501, 0.251]


def test_bad_lottery_configs():
    with pytest.raises(ValueError, match="criterion"):
        lottery.LotteryConfig(criterion="biggest")
    with pytest.raises(ValueError, match="fractions pruned"):
        lottery.LotteryConfig(rate_fc=1.0)
    with pytest.raises(ValueError, match="control"):
        lottery.LotteryConfig(controls=("shuffle",))
    with pytest.raises(ValueError, match="rounds"):
        lottery.run_imp(TINY, None, -1)
