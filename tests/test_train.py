import numpy as np
import pytest
import torch

from lotterylib import masks, models, train, weightfn


def test_population_equals_sequential_runs(mnist_small):
    cfg = train.TrainConfig(iterations=40, batch_size=20, eval_every=20)
    seeds = [11, 12, 13]
    stacked = models.build("lenet_300_100", seeds)
    masks.attach_masks(stacked, masks.ones(stacked))
    h = train.train(stacked, mnist_small, cfg, seeds, progress=False)
    for i, s in enumerate(seeds):
        single = models.build("lenet_300_100", [s])
        masks.attach_masks(single, masks.ones(single))
        hi = train.train(single, mnist_small, cfg, [s], progress=False)
        for name, layer in single.prunable().items():
            ref = weightfn.stored(stacked.prunable()[name])[i]
            assert torch.allclose(weightfn.stored(layer)[0], ref, atol=2e-5), name
        np.testing.assert_allclose(hi.val_loss[0], h.val_loss[i], rtol=1e-4)


def test_run_i_of_population_is_initialised_like_a_single_net():
    pop = models.build("conv2", [3, 4])
    single = models.build("conv2", [4])
    for name, layer in single.prunable().items():
        assert torch.equal(weightfn.stored(layer)[0], weightfn.stored(pop.prunable()[name])[1])


def test_pruned_weights_stay_exactly_zero_under_adam(mnist_small):
    model = models.build("lenet_300_100", [0, 1])
    mask = masks.magnitude({k: weightfn.stored(l).detach() for k, l in model.prunable().items()}, 0.2)
    masks.attach_masks(model, mask)
    cfg = train.TrainConfig(iterations=30, batch_size=20, eval_every=30, weight_decay=1e-3)
    train.train(model, mnist_small, cfg, [0, 1], progress=False)
    for name, layer in model.prunable().items():
        pruned = mask[name] == 0
        assert torch.all(layer.weight[pruned] == 0), "effective weight"
        assert torch.all(weightfn.stored(layer)[pruned] == 0), "stored weight"


def test_history_early_stop(mnist_small):
    h = train.History(np.array([0, 10, 20]), np.array([[3.0, 1.0, 2.0]]), np.zeros((1, 3)),
                      np.array([[0.1, 0.9, 0.8]]), np.zeros((1, 3)))
    assert h.early_stop_iteration().tolist() == [10]
    assert h.early_stop_test_acc().tolist() == [0.9]


def test_batches_differ_by_seed_and_cover_an_epoch():
    at = train.batch_indices(100, 10, [1, 2])
    epoch = torch.cat([at(s) for s in range(10)], 1)
    assert sorted(epoch[0].tolist()) == list(range(100))
    assert not torch.equal(epoch[0], epoch[1])
    at(10)  # the next epoch
    with pytest.raises(ValueError, match="increasing"):
        at(0)


def test_bad_configs_and_shapes(mnist_small):
    with pytest.raises(ValueError, match="optimizer"):
        train.TrainConfig(optimizer="adagrad")
    with pytest.raises(ValueError, match="≥ 1"):
        train.TrainConfig(iterations=0)
    model = models.build("lenet_300_100", [0, 1])
    with pytest.raises(ValueError, match="runs"):
        train.train(model, mnist_small, train.TrainConfig(iterations=1), [0], progress=False)
    with pytest.raises(ValueError, match="784 features"):
        model(torch.zeros(5, 100))
    with pytest.raises(ValueError, match="unknown model"):
        models.build("lenet_5000", [0])


def test_conv_population_forward_shapes():
    model = models.build("conv2", [0, 1])
    shared = model(torch.zeros(4, 3, 32, 32))
    per_run = model(torch.zeros(2, 4, 3, 32, 32))
    assert shared.shape == per_run.shape == (2, 4, 10)
    assert sum(models.count_weights(model).values()) == 4_300_992


def test_cuda_graph_needs_cuda(mnist_small):
    model = models.build("lenet_300_100", [0])
    with pytest.raises(ValueError, match="CUDA"):
        train.train(model, mnist_small, train.TrainConfig(iterations=2), [0], graph=True, progress=False)
