import contextlib

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
    # one value per epoch (steps 0, 2·10 and 4·10 of 10-step epochs, 4 epochs)
    assert [train.lr_factor(cfg, 10 * e, 10, 4) for e in (0, 2, 4)] == pytest.approx([1.0, 0.5, 0.25])
    assert train.lr_factor(train.TrainConfig(), 3, 10, 4) == 1.0
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


# --- the recipe's optional parts: a multistep learning-rate schedule and crop/flip augmentation ---------

def test_recipe_fields_are_off_by_default_and_keep_every_config_hash():
    from lotterylib.cache import config_hash, non_default_fields
    # Hashes of configs made before the fields existed (computed with that code): unchanged.
    assert config_hash(train.TrainConfig()) == "eed33831b6c88400"
    assert config_hash(train.TrainConfig(iterations=400, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=1e-3,
                                         eval_every=200)) == "39c69bb7f29942fb"
    assert not {"lr_milestones", "lr_gamma", "augment"} & set(non_default_fields(train.TrainConfig()))
    cfg = train.TrainConfig(lr=0.1, lr_milestones=[80, 120], augment="crop_flip")
    assert cfg.lr_milestones == (80, 120) and hash(cfg)  # a list becomes a hashable tuple
    assert config_hash(cfg) != config_hash(train.TrainConfig(lr=0.1))


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr_milestones=(120, 80)), "increasing"), (dict(lr_milestones=(0,)), "increasing"),
    (dict(lr_milestones=(5, 5)), "increasing"), (dict(lr_gamma=0.0), "lr_gamma"), (dict(augment="flip"), "augment")])
def test_bad_recipe_fields_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train.TrainConfig(**kwargs)


def test_multistep_learning_rate_per_step():
    cfg = train.TrainConfig(lr=0.1, lr_milestones=(3, 5), lr_gamma=0.1)
    assert [round(cfg.lr_at(s), 12) for s in range(7)] == [0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert train.TrainConfig(lr=0.1).lr_at(10_000) == 0.1


def test_the_engine_applies_the_schedule_at_its_milestones(mnist_small):
    # Plain SGD: a step moves the weights by lr × gradient, so after the milestone (γ = 1e-6) they
    # barely move, and before it they do.
    cfg = train.TrainConfig(iterations=6, batch_size=20, optimizer="sgd", lr=0.1, momentum=0.0, eval_every=6,
                            lr_milestones=(3,), lr_gamma=1e-6)
    model = models.build("lenet_300_100", [0])
    moves, last = [], [weightfn.stored(model.layers[0]).detach().clone()]

    def after_step(m):
        w = weightfn.stored(m.layers[0]).detach()
        moves.append(float((w - last[0]).abs().max()))
        last[0] = w.clone()

    train.train(model, mnist_small, cfg, [0], progress=False, after_step=after_step)
    assert min(moves[:3]) > 1e-4 and max(moves[3:]) < 1e-8, moves


def _crop_flip_reference(images, draws, p=4):
    """torchvision's RandomCrop(padding=p) then RandomHorizontalFlip, one image at a time."""
    out = []
    for img, (i, j, flip) in zip(images, draws.tolist()):
        h, w = img.shape[-2:]
        crop = torch.nn.functional.pad(img, (p, p, p, p))[:, i:i + h, j:j + w]
        out.append(crop.flip(-1) if flip else crop)
    return torch.stack(out)


def test_crop_flip_is_a_padded_crop_then_a_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 3, 8, 6, generator=g)  # (runs, batch, C, H, W): a non-square image
    draws = torch.cat([torch.randint(0, 9, (2, 5, 2), generator=g), torch.randint(0, 2, (2, 5, 1), generator=g)], -1)
    out = train.crop_flip(x, draws)
    ref = _crop_flip_reference(x.reshape(-1, 3, 8, 6), draws.reshape(-1, 3)).reshape(x.shape)
    assert torch.equal(out, ref)
    centre = torch.tensor([4, 4, 0]).expand(2, 5, 3)
    assert torch.equal(train.crop_flip(x, centre), x)  # no shift, no flip: the image itself
    assert torch.equal(train.crop_flip(x, centre + torch.tensor([0, 0, 1])), x.flip(-1))
    corner = train.crop_flip(x, torch.zeros(2, 5, 3, dtype=torch.long))  # shifted down-right by 4: zeros enter
    assert torch.all(corner[..., :4, :] == 0) and torch.equal(corner[..., 4:, 4:], x[..., :-4, :-4])
    with pytest.raises(ValueError, match="draws"):
        train.crop_flip(x, draws[:, :4])


def test_crop_flip_draws_are_per_run_and_per_epoch():
    both, alone = train.CropFlipOrder(7, 4, [11, 12]), train.CropFlipOrder(7, 4, [12])
    e0 = both.epoch(0)
    assert e0.shape == (2, 7, 4, 3) and torch.equal(e0[1], alone.epoch(0)[0])
    assert int(e0[..., :2].min()) >= 0 and int(e0[..., :2].max()) <= 8 and set(e0[..., 2].unique().tolist()) <= {0, 1}
    assert not torch.equal(e0[0], e0[1])
    assert not torch.equal(both.epoch(1), e0) and torch.equal(both.epoch(1)[1], alone.epoch(1)[0])
    with pytest.raises(ValueError, match="increasing"):
        both.epoch(0)


def _images(data):
    """``data`` with its 784 features as (1, 28, 28) images."""
    img = lambda s: Split(s.x.reshape(-1, 1, 28, 28), s.y)  # noqa: E731
    return Dataset(data.name, img(data.train), img(data.val), img(data.test), 10, (1, 28, 28))


class _Probe(torch.nn.Module):
    """A population of linear classifiers on images that keeps the last training batch it was given."""

    def __init__(self, runs):
        super().__init__()
        self.runs, self.fc, self.seen = runs, models.StackedLinear(runs, 784, 10), None

    def forward(self, x):
        if self.training:
            self.seen = x.detach().clone()
        return self.fc(x.flatten(-3) if x.dim() == 5 else x.flatten(1))


def test_augmentation_is_seeded_per_run_and_applied_to_the_gathered_batch(mnist_small):
    data = _images(mnist_small)
    cfg = train.TrainConfig(iterations=3, batch_size=20, eval_every=3, augment="crop_flip")
    both, alone, plain = _Probe(2), _Probe(1), _Probe(1)
    train.train(both, data, cfg, [11, 12], progress=False)
    train.train(alone, data, cfg, [12], progress=False)
    train.train(plain, data, train.TrainConfig(iterations=3, batch_size=20, eval_every=3), [12], progress=False)
    assert torch.equal(both.seen[1], alone.seen[0])  # run 1 of the population is augmented as it is alone
    assert not torch.equal(alone.seen, plain.seen)  # the same images, cropped and flipped
    draws = train.CropFlipOrder(len(data.train) // 20, 20, [derive(12, "augment")]).epoch(0)[:, 2]
    assert torch.equal(alone.seen, train.crop_flip(plain.seen, draws))
    with pytest.raises(ValueError, match="image inputs"):
        train.train(models.build("lenet_300_100", [0]), mnist_small, cfg, [0], progress=False)


def test_a_run_with_schedule_and_augmentation_resumes_exactly(mnist_small, tmp_path):
    # Checkpoint at step 100, interruption at 130, the milestone at 120 in between: the resumed run
    # must restore the rate of its step and redraw the same crops.
    data = _images(mnist_small)
    cfg = train.TrainConfig(iterations=250, batch_size=20, eval_every=50, optimizer="sgd", lr=0.05,
                            lr_milestones=(120, 200), augment="crop_flip")
    seeds = [3, 4]
    build = lambda: models.ConvNet(2, [4, 4], fc=(16,), in_channels=1, image_size=28).reset_parameters(seeds)  # noqa: E731
    whole = build()
    ref = train.train(whole, data, cfg, seeds, progress=False, after_step=lambda m: None)
    ckpt = tmp_path / "c.pt"
    with pytest.raises(_Interrupt):
        train.train(build(), data, cfg, seeds, progress=False, after_step=_stop_after(130), checkpoint=ckpt,
                    checkpoint_every_s=0)
    fresh = build()
    got = train.train(fresh, data, cfg, seeds, progress=False, after_step=lambda m: None, checkpoint=ckpt,
                      checkpoint_every_s=0)
    np.testing.assert_array_equal(got.val_loss, ref.val_loss)
    for a, b in zip(fresh.state_dict().values(), whole.state_dict().values()):
        assert torch.equal(a, b)


def test_training_a_masked_population_skips_the_product_and_trains_the_same_bits(mnist_small, monkeypatch):
    """train() runs Masked layers without the forward product W ⊙ M (weightfn.masked_without_multiply):
    the curves and the trained weights are those of the training that multiplies, bit for bit."""
    cfg = train.TrainConfig(iterations=60, batch_size=32, eval_every=30, weight_decay=1e-3)
    seen = []

    @contextlib.contextmanager
    def watching(model):
        with weightfn.masked_without_multiply(model) as skipping:
            seen.append(skipping)
            yield skipping

    def run():
        model, _ = _lenet_real_mask([0, 1])
        history = train.train(model, mnist_small, cfg, [0, 1], progress=False)
        return history, {k: weightfn.stored(l).detach() for k, l in model.prunable().items()}

    monkeypatch.setattr(train, "masked_without_multiply", watching)
    skipped, w_skipped = run()
    assert seen == [3]  # train() skipped the product in all three layers
    monkeypatch.setattr(train, "masked_without_multiply", lambda model: contextlib.nullcontext(0))
    multiplied, w_multiplied = run()
    for a, b in zip(skipped.to_json().values(), multiplied.to_json().values()):
        assert a == b
    assert all(torch.equal(w_skipped[k], w_multiplied[k]) for k in w_skipped)
