import numpy as np
import pytest
import torch

from lotterylib import binary, deconstruct, masks, models, train, weightfn
from lotterylib.data import Dataset, Split, load
from lotterylib.seeds import derive


def _lenet_real_mask(seeds):
    """LeNet with a real (per-run) magnitude mask keeping 30 % of each layer's weights."""
    model = models.build("lenet_300_100", seeds)
    mask = masks.magnitude({k: weightfn.stored(l).detach() for k, l in model.prunable().items()}, 0.3,
                           seeds=[derive(s, "tie") for s in seeds])
    return masks.attach_masks(model, mask), {}


def _conv2(seeds):
    return models.build("conv2", seeds), {}


def _binary_stochastic(seeds):
    """Stochastic BinaryConnect on LeNet-5: BatchNorm per run, per-run sign draws, clipping after each step."""
    model = binary.build("lenet5", "bc_stoch", seeds)
    return model, {"after_step": binary.clip_and_center}


def _learned_supermask(seeds):
    model = deconstruct.supermask_model(deconstruct.SupermaskConfig(seeds=tuple(seeds), rescale=True))
    return model, {"trainable": deconstruct.score_parameters}


def _edge_popup(seeds):
    model = deconstruct.supermask_model(deconstruct.SupermaskConfig(seeds=tuple(seeds), method="edge_popup"))
    return model, {"trainable": deconstruct.score_parameters}


@pytest.mark.parametrize("build", [_lenet_real_mask, _conv2, _binary_stochastic, _learned_supermask, _edge_popup])
def test_population_equals_sequential_runs(mnist_small, data_root, build):
    """Run i of a stacked population trains exactly as the same run alone (to float tolerance): its
    init, its mask, its batches and its random draws depend on its own seed only.

    Conv nets are compared after 3 SGD steps: a grouped convolution sums in another order than a
    single one, and on 8-bit images max-pooling meets exact ties, so two float-equal trainings drift
    apart by about 3× per step after that (measured); 3 steps still see every per-run part at work.
    """
    cfg = train.TrainConfig(iterations=40, batch_size=20, eval_every=20)
    data = mnist_small
    if build in (_conv2, _binary_stochastic):
        cfg = train.TrainConfig(iterations=3, batch_size=20, eval_every=1, optimizer="sgd", lr=0.01)
    if build is _conv2:
        cifar = load("cifar10", data_root)
        cut = lambda s, n: Split(s.x[:n], s.y[:n])  # noqa: E731
        data = Dataset("cifar10", cut(cifar.train, 400), cut(cifar.val, 100), cut(cifar.test, 100), 10, (3, 32, 32))
    seeds = [11, 12, 13]
    stacked, kw = build(seeds)
    h = train.train(stacked, data, cfg, seeds, progress=False, **kw)
    x = data.test.x[:100]
    with torch.no_grad():  # once: a stochastic network's every forward advances its generators
        logits = stacked.eval()(x)
    for i, s in enumerate(seeds):
        single, kw = build([s])
        hi = train.train(single, data, cfg, [s], progress=False, **kw)
        # What the network computes: eval-mode logits on test images, and what trained: the weights (or
        # scores) of every prunable layer. (A bias in front of BatchNorm gets only rounding noise as
        # gradient, so raw parameters are not all comparable.)
        with torch.no_grad():
            torch.testing.assert_close(single.eval()(x)[0], logits[i], rtol=1e-3, atol=1e-3)
        for name, layer in single.prunable().items():
            ref = stacked.prunable()[name]
            assert torch.allclose(weightfn.stored(layer)[0], weightfn.stored(ref)[i], atol=1e-4), name
            for fn, fn_ref in zip(weightfn.functions(layer), weightfn.functions(ref)):
                if hasattr(fn, "scores"):
                    assert torch.allclose(fn.scores[0], fn_ref.scores[i], atol=1e-4), name
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


def test_squared_hinge_is_the_l2_svm_loss():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    y = torch.tensor([0, 1])
    # t = +1 on the true class, −1 elsewhere; mean over classes of max(0, 1 − t·logit)²
    expected = torch.tensor([(0 + 1.5 ** 2 + 0) / 3, (1 + 1 + 4 ** 2) / 3])
    assert torch.allclose(train.squared_hinge(logits, y), expected)
    with pytest.raises(ValueError, match="unknown loss"):
        train.TrainConfig(loss="hinge")


def test_lr_decays_once_per_epoch_in_every_group(mnist_small):
    cfg = train.TrainConfig(iterations=3 * (len(mnist_small.train) // 100), batch_size=100, optimizer="sgd",
                            momentum=0.0, lr=2.0, lr_final=0.5, eval_every=1000)
    assert [train.lr_factor(cfg, e, 4) for e in (0, 2, 4)] == pytest.approx([1.0, 0.5, 0.25])
    assert train.lr_factor(train.TrainConfig(), 3, 4) == 1.0
    model = models.build("lenet_300_100", [0])
    groups = [{"params": list(model.layers[0].parameters()), "lr": 0.3}, {"params": list(model.layers[1:].parameters())}]
    seen = []
    train.train(model, mnist_small, cfg, [0], progress=False, trainable=lambda _: groups,
                after_step=lambda _: seen.append((groups[0]["lr"], groups[1]["lr"])))
    per_epoch = len(mnist_small.train) // 100
    firsts = [lr for e in range(3) for lr in seen[e * per_epoch]]
    assert firsts == pytest.approx([lr * f for f in (1.0, 0.25 ** (1 / 3), 0.25 ** (2 / 3)) for lr in (0.3, 2.0)])
    assert seen[per_epoch - 1] == seen[0]  # constant within an epoch


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


class _Interrupt(Exception):
    pass


def _stop_after(steps: int):
    count = {"n": 0}

    def after_step(model):
        count["n"] += 1
        if count["n"] == steps:
            raise _Interrupt

    return after_step


def _masked_pair(seeds):
    model = models.build("lenet_300_100", seeds)
    mask = masks.magnitude({k: weightfn.stored(l).detach() for k, l in model.prunable().items()}, 0.5)
    return masks.attach_masks(model, mask)


def _sampled_pair(seeds):
    """A learned-supermask population: its forward draws from per-run generators on every step."""
    model = models.build("lenet_300_100", seeds)
    weightfn.attach_each(model.prunable().items(),
                         lambda name, layer: weightfn.SampledMask(torch.zeros_like(weightfn.stored(layer)),
                                                                  [derive(s, name) for s in seeds]))
    return model


def _scores(model):
    return [p for n, p in model.named_parameters() if n.endswith("scores")]


@pytest.mark.parametrize("build, trainable", [(_masked_pair, None), (_sampled_pair, _scores)])
def test_an_interrupted_run_resumes_from_its_checkpoint_exactly(mnist_small, tmp_path, build, trainable):
    # 100 batches per epoch: the checkpoint (step 100) and the interruption (step 130) fall in
    # different epochs, so the resumed run must pick up the batch order mid-way.
    cfg = train.TrainConfig(iterations=250, batch_size=20, eval_every=50)
    seeds = [3, 4]
    kw = dict(progress=False, trainable=trainable)
    torch.manual_seed(0)
    whole = build(seeds)
    ref = train.train(whole, mnist_small, cfg, seeds, after_step=lambda m: None, **kw)

    ckpt = tmp_path / "round.partial.pt"
    torch.manual_seed(0)
    with pytest.raises(_Interrupt):
        train.train(build(seeds), mnist_small, cfg, seeds, after_step=_stop_after(130), checkpoint=ckpt,
                    checkpoint_every_s=0, **kw)
    assert ckpt.exists()
    torch.manual_seed(1)  # a new process: the global RNG is wherever it is; the checkpoint restores it
    fresh = build(seeds)  # and it rebuilds the population from its seeds
    got = train.train(fresh, mnist_small, cfg, seeds, after_step=lambda m: None, checkpoint=ckpt,
                      checkpoint_every_s=0, **kw)
    assert not ckpt.exists(), "a finished run removes its checkpoint"
    # The interrupted piece's training time (up to its checkpoint) is carried over, not lost.
    assert ref.resumed_seconds == 0 and got.resumed_seconds > 0
    assert got.select([0]).resumed_seconds == got.resumed_seconds
    np.testing.assert_array_equal(got.iterations, ref.iterations)
    for a, b in zip((got.val_loss, got.test_acc, got.train_loss), (ref.val_loss, ref.test_acc, ref.train_loss)):
        np.testing.assert_array_equal(a, b)
    for (name, a), b in zip(fresh.state_dict().items(), whole.state_dict().values()):
        if name.endswith("_extra_state"):  # per-run generators: the same states
            assert all(torch.equal(x, y) for x, y in zip(a["states"], b["states"])), name
        else:
            assert torch.equal(a, b), name


def test_a_checkpoint_of_another_run_is_refused_and_a_corrupt_one_set_aside(mnist_small, tmp_path):
    cfg = train.TrainConfig(iterations=120, batch_size=20, eval_every=50)
    ckpt = tmp_path / "c.pt"
    with pytest.raises(_Interrupt):
        train.train(_masked_pair([1, 2]), mnist_small, cfg, [1, 2], progress=False, after_step=_stop_after(60),
                    checkpoint=ckpt, checkpoint_every_s=0)
    with pytest.raises(ValueError, match="belongs to another run"):
        train.train(_masked_pair([1, 5]), mnist_small, cfg, [1, 5], progress=False, checkpoint=ckpt)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        h = train.train(_masked_pair([1, 2]), mnist_small, cfg, [1, 2], progress=False, checkpoint=ckpt)
    assert h.iterations[0] == 0 and (tmp_path / "c.pt.corrupt").exists()
