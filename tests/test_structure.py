"""Chapter 08's mechanisms: low-rank factors, node removal, group lasso, channel pruning, distillation."""

import math

import pytest
import torch
import torch.nn.functional as F

from lotterylib import channels, distill, lowrank, models, nodes
from lotterylib.data import Split
from lotterylib.train import TrainConfig


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- low rank -------------------------------------------------------------------------------------

def test_factorize_is_eckart_young_and_shapes():
    w = torch.randn(3, 20, 12, generator=_gen())
    s = lowrank.singular_values(w)
    for k in (0, 1, 5, 12):
        a, b = lowrank.factorize(w, k)
        assert a.shape == (3, 20, k) and b.shape == (3, k, 12)
        err = (w.double() - (a @ b).double()).square().sum((-2, -1))
        for r in range(3):
            assert err[r].item() == pytest.approx(lowrank.best_error(s[r], k), rel=1e-4, abs=1e-6)
    a, b = lowrank.factorize(w, 12)
    assert torch.allclose(a @ b, w, atol=1e-5)  # full rank is exact
    with pytest.raises(ValueError):
        lowrank.factorize(w, 13)


def test_energy_rank_edges():
    s = torch.tensor([3.0, 2.0, 1.0])  # σ² = 9, 4, 1 of 14
    assert lowrank.energy_rank(s, 9 / 14) == 1
    assert lowrank.energy_rank(s, 9 / 14 + 1e-6) == 2
    assert lowrank.energy_rank(s, 1.0) == 3
    with pytest.raises(ValueError):
        lowrank.energy_rank(s, 0.0)


def test_lowrank_mlp_matches_truncated_dense_and_runner_and_storage():
    widths = [30, 16, 8, 4]
    ws = [torch.randn(2, b, a, generator=_gen(i)) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
    bs = [torch.randn(2, b, generator=_gen(10 + i)) for i, b in enumerate(widths[1:])]
    ranks = [5, 3, None]
    model = lowrank.from_dense(ws, bs, ranks)
    x = torch.randn(7, 30, generator=_gen(99))
    truncated = [lowrank.truncate(w, r) if r else w for w, r in zip(ws, ranks)]
    ref = nodes.mlp_from(truncated, bs)
    assert torch.allclose(model(x), ref(x), atol=1e-4)
    layers = lowrank.layers_of(model, run=1)
    assert torch.allclose(lowrank.runner(layers)(x), ref(x)[1], atol=1e-4)
    assert lowrank.weight_count(layers) == 5 * (30 + 16) + 3 * (16 + 8) + 8 * 4
    assert lowrank.multiply_adds(layers) == lowrank.weight_count(layers)
    back = lowrank.deserialize_lowrank(lowrank.serialize_lowrank(layers))
    for (a, b, c), (a2, b2, c2) in zip(layers, back):
        assert torch.equal(a, a2) and torch.equal(c, c2) and (b is None) == (b2 is None)
    dense = lowrank.dense_params(layers)
    assert dense[0][0].shape == (16, 30)


def test_ranks_for_energy_takes_the_largest_run():
    w = torch.zeros(2, 4, 4)
    w[0] = torch.diag(torch.tensor([1.0, 0, 0, 0]))
    w[1] = torch.eye(4)
    assert lowrank.ranks_for_energy({"l": w}, 0.9, ["l"]) == {"l": 4}


# --- nodes ----------------------------------------------------------------------------------------

def test_node_importance_and_keep_ties():
    w = torch.tensor([[[1.0, -3.0, 2.0], [1.0, 1.0, -2.0]]])  # (1 run, 2 out, 3 in)
    assert torch.allclose(nodes.node_importance(w), torch.tensor([[1.0, 2.0, 2.0]]))
    assert nodes.keep_units(nodes.node_importance(w), 1).tolist() == [[1]]  # tie 1 vs 2: the lower index
    assert nodes.keep_units(nodes.node_importance(w), 3).tolist() == [[0, 1, 2]]
    with pytest.raises(ValueError):
        nodes.keep_units(nodes.node_importance(w), 0)


def test_shrink_gives_a_smaller_dense_net_with_the_same_function_on_kept_units():
    widths = [10, 8, 6, 3]
    ws = [torch.randn(2, b, a, generator=_gen(i)) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
    bs = [torch.randn(2, b, generator=_gen(5 + i)) for i, b in enumerate(widths[1:])]
    kept = nodes.importance_kept(ws, [5, 4])
    sw, sb = nodes.shrink(ws, bs, kept)
    assert [tuple(w.shape) for w in sw] == [(2, 5, 10), (2, 4, 5), (2, 3, 4)]
    # The same as zeroing the removed units' outgoing columns in the full net.
    masked = [w.clone() for w in ws]
    for l, idx in enumerate(kept):
        drop = torch.ones(2, widths[l + 1], dtype=torch.bool)
        drop.scatter_(1, idx, False)
        masked[l + 1] = masked[l + 1] * (~drop).unsqueeze(1)
    x = torch.randn(4, 10, generator=_gen(7))
    assert torch.allclose(nodes.mlp_from(sw, sb)(x), nodes.mlp_from(masked, bs)(x), atol=1e-5)


def test_fold_makes_removing_zero_rows_exact():
    widths = [6, 5, 3]
    ws = [torch.randn(1, 5, 6, generator=_gen(1)), torch.randn(1, 3, 5, generator=_gen(2))]
    bs = [torch.randn(1, 5, generator=_gen(3)).abs(), torch.randn(1, 3, generator=_gen(4))]
    ws[0][0, [1, 3]] = 0.0  # two units with zero fan-in: they output the constant relu(b)
    kept = nodes.kept_nonzero(ws)
    assert kept[0].tolist() == [[0, 2, 4]]
    sw, sb = nodes.shrink(ws, bs, kept, fold=True)
    x = torch.randn(9, 6, generator=_gen(8))
    assert torch.allclose(nodes.mlp_from(sw, sb)(x), nodes.mlp_from(ws, bs)(x), atol=1e-5)
    unfolded = nodes.shrink(ws, bs, kept, fold=False)
    assert not torch.allclose(nodes.mlp_from(*unfolded)(x), nodes.mlp_from(ws, bs)(x), atol=1e-3)


def test_group_lasso_prox_zeroes_small_rows_and_shrinks_others():
    model = models.MLP(1, [4, 3, 2])
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.tensor([[[0.1, 0.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5]]]))
    nodes.GroupLassoProx(strength=0.5, lr=0.1, layers=["layers.0"])(model)  # threshold 0.1·0.5·2 = 0.1
    w = model.layers[0].weight[0]
    assert w[0].abs().sum() == 0  # norm 0.1 ≤ threshold: exactly zero
    assert torch.allclose(w[1], torch.tensor([3.0, 4.0, 0, 0]) * (1 - 0.1 / 5))
    assert nodes.nonzero_units(model.layers[0].weight).tolist() == [[False, True, True]]
    pen = nodes.group_lasso_penalty([torch.tensor([[[3.0, 4.0]]])], 2.0)
    assert pen.item() == pytest.approx(2.0 * 5.0 * math.sqrt(2))


def test_random_units_are_seeded():
    a = nodes.random_units(2, 10, 4, [1, 2])
    assert torch.equal(a, nodes.random_units(2, 10, 4, [1, 2])) and a.shape == (2, 4)
    assert (a.diff(dim=1) > 0).all()


# --- channels --------------------------------------------------------------------------------------

def test_prune_channels_keeps_the_function_of_kept_channels():
    net = channels.LeNet5(2).reset_parameters([0, 1])
    kept = torch.tensor([[0, 3, 5, 9], [1, 2, 3, 15]])
    small = channels.prune_channels(net, kept)
    assert small.c2 == 4 and small.fcs[0].weight.shape == (2, 120, 100)
    x = torch.rand(3, 784, generator=_gen(0))
    # The reference: zero the other channels' fc1 columns in the full net.
    ref = channels.copy_of(net)
    with torch.no_grad():
        keep_cols = torch.zeros(2, 400, dtype=torch.bool)
        keep_cols.scatter_(1, channels.channel_columns(kept), True)
        ref.fcs[0].weight.mul_(keep_cols.unsqueeze(1))
    assert torch.allclose(small(x), ref(x), atol=1e-5)
    assert channels.weight_count(small) < channels.weight_count(net)
    assert channels.conv_multiply_adds(6, 4) < channels.conv_multiply_adds(6, 16)


def test_filter_l1():
    w = torch.zeros(1, 3, 2, 1, 1)
    w[0, 1] = -2.0
    w[0, 2, 0] = 1.0
    assert channels.filter_l1(w).tolist() == [[0.0, 4.0, 1.0]]


def test_lasso_matches_closed_form_on_orthogonal_design():
    # Orthonormal Z: the LASSO solution is soft thresholding of Zᵀy.
    gram = torch.eye(3, dtype=torch.float64)
    corr = torch.tensor([3.0, -0.5, 1.5], dtype=torch.float64)
    beta = channels.lasso(gram, corr, 1.0)
    assert torch.allclose(beta, torch.tensor([2.0, 0.0, 0.5], dtype=torch.float64))


def test_lasso_select_finds_the_channels_that_make_the_response():
    g = _gen(3)
    z = torch.randn(6, 50, 4, generator=g)
    y = 2.0 * z[1] + 1.0 * z[4] + 0.01 * torch.randn(50, 4, generator=g)
    kept, beta = channels.lasso_select(z, y, 2)
    assert kept.tolist() == [1, 4]
    w = torch.randn(5, 8, generator=g)
    x = torch.randn(40, 8, generator=g)
    assert torch.allclose(channels.reconstruct(x, x @ w.T), w, atol=1e-3)


def test_select_and_reconstruct_refit_is_no_worse():
    net = channels.LeNet5(1).reset_parameters([0])
    x = torch.rand(64, 784, generator=_gen(1))
    kept, w, info = channels.select_and_reconstruct(net, x, 8, select="lasso")
    plain = channels.response_error(net, kept, None, x)
    assert info["relative_error"][0] <= plain[0] + 1e-6
    kept_l1, none, _ = channels.select_and_reconstruct(net, x, 8, select="l1", refit=False)
    assert none is None and kept_l1.shape == (1, 8)


# --- distillation ----------------------------------------------------------------------------------

def test_distillation_loss_terms():
    g = _gen(0)
    s, t = torch.randn(5, 10, generator=g), torch.randn(5, 10, generator=g)
    y = torch.randint(0, 10, (5,), generator=g)
    hard = distill.distillation_loss(s, t, y, 3.0, 0.0)
    assert torch.allclose(hard, F.cross_entropy(s, y, reduction="none"))
    soft = distill.distillation_loss(s, t, y, 3.0, 1.0)
    pt = F.softmax(t / 3, -1)
    ref = 9.0 * (pt * (pt.log() - F.log_softmax(s / 3, -1))).sum(-1)
    assert torch.allclose(soft, ref, atol=1e-6)
    assert torch.allclose(distill.distillation_loss(t, t, y, 4.0, 1.0), torch.zeros(5), atol=1e-6)
    # Per-run temperatures broadcast: (runs, 1) against (runs, B, C).
    per_run = distill.distillation_loss(torch.stack([s, s]), torch.stack([t, t]), torch.stack([y, y]),
                                        torch.tensor([[1.0], [3.0]]), torch.tensor([[1.0], [1.0]]))
    assert torch.allclose(per_run[1], ref, atol=1e-6)
    with pytest.raises(ValueError):
        distill.distillation_loss(s, t, y, 0.0, 0.5)


def test_train_students_runs_and_alpha_zero_is_hard_label_training():
    g = _gen(0)
    x = torch.rand(120, 784, generator=g)
    y = torch.randint(0, 10, (120,), generator=g)
    split = Split(x, y)
    teacher = models.MLP(2, [784, 16, 10]).reset_parameters([0, 1])
    tl = distill.teacher_logits(teacher, x)
    assert tl.shape == (2, 120, 10)
    student = models.MLP(2, [784, 8, 10]).reset_parameters([5, 5])
    cfg = TrainConfig(iterations=6, batch_size=20, eval_every=3)
    h = distill.train_students(student, split, tl, split, split, cfg, [7, 7], [4.0, 4.0], [0.0, 0.9])
    assert h.test_acc.shape == (2, 3)
    w = student.layers[0].weight
    assert not torch.allclose(w[0], w[1])  # same init and batches, different losses
    with pytest.raises(ValueError):
        distill.train_students(student, split, tl[:1], split, split, cfg, [7, 7], [4.0, 4.0], [0.0, 0.9])


def test_regularized_mlp_is_plain_in_eval_mode():
    net = distill.RegularizedMLP(2, [784, 12, 10])
    net.eval()
    x = torch.rand(3, 784)
    plain = nodes.mlp_from(*nodes.population_state(net))
    assert torch.allclose(net(x), plain(x), atol=1e-6)
    net.train()
    assert net(x).shape == (2, 3, 10)
    assert distill.errors([0.99, 0.9854], 10_000).tolist() == [100, 146]


def test_comparison_rows_of_the_structured_methods(mnist_small, tmp_path):
    from lotterylib import comparison
    from lotterylib.cache import ResultCache
    from lotterylib.lottery import LotteryConfig, round_state, run_imp
    cfg = comparison.ComparisonConfig(lottery=LotteryConfig(seeds=(0, 1), train=TrainConfig(iterations=3, eval_every=3)),
                                      finetune=TrainConfig(iterations=3, eval_every=3))
    cache = ResultCache(tmp_path)
    run_imp(cfg.lottery, mnist_small, 0, cache=cache, progress=False)
    state = round_state(cfg.lottery, 0, cache)
    dense = [[(state["final"][k][r], state["bias"][k][r]) for k in state["final"]] for r in range(2)]
    factorised = comparison.low_rank_finetune(cfg, dense, mnist_small, cache, False)
    assert len(factorised) == 2
    assert [tuple(a.shape) for a, _, _ in factorised[0]] == [(300, 32), (100, 16), (10, 100)]
    assert lowrank.weight_count(factorised[0]) == 32 * (784 + 300) + 16 * (300 + 100) + 100 * 10
    shrunk = comparison.nodes_finetune(cfg, dense, mnist_small, cache, False)
    assert [tuple(w.shape) for w, _ in shrunk[1]] == [(60, 784), (20, 60), (10, 20)]
    again = comparison.nodes_finetune(cfg, dense, mnist_small, cache, False)  # from the cache: the same weights
    assert torch.equal(again[1][0][0], shrunk[1][0][0])
    assert comparison.multiply_adds(shrunk[0], sparse=False) == 60 * 784 + 20 * 60 + 10 * 20
    assert comparison.runs_sparse("magnitude") and not comparison.runs_sparse("lowrank")
