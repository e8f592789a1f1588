"""The engine on a CUDA device: a step replayed as a captured CUDA graph trains exactly like eager steps.

Skipped without CUDA (CI has none); the prepared GPU session script runs it before any long run.
"""

import warnings

import numpy as np
import pytest
import torch

from lotterylib import masks, models, train, weightfn

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _run(mnist, graph: bool, population: str = "masked"):
    seeds = [3, 4]
    model = models.build("lenet_300_100", seeds)
    if population == "masked":
        masks.attach_masks(model, masks.magnitude({k: weightfn.stored(l).detach() for k, l in model.prunable().items()}, 0.5))
    cfg = train.TrainConfig(iterations=120, batch_size=60, eval_every=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a capture that falls back to eager fails the test
        h = train.train(model, mnist, cfg, seeds, device="cuda", graph=graph, progress=False)
    return h, {k: weightfn.stored(l).detach().cpu() for k, l in model.prunable().items()}


@pytest.mark.parametrize("population", ["masked", "dense"])
def test_graph_steps_equal_eager_steps(mnist_small, population):
    data = mnist_small
    h_eager, w_eager = _run(data, False, population)
    h_graph, w_graph = _run(data, True, population)
    for k in w_eager:
        torch.testing.assert_close(w_graph[k], w_eager[k], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(h_graph.val_loss, h_eager.val_loss, rtol=1e-4, atol=1e-5)
    assert h_graph.iterations.tolist() == [0, 40, 80, 120]


def test_graph_is_the_default_on_cuda_and_refuses_hooks(mnist_small):
    model = models.build("lenet_300_100", [0])
    with pytest.raises(ValueError, match="after_step"):
        train.train(model, mnist_small, train.TrainConfig(iterations=5), [0], device="cuda", graph=True,
                    after_step=lambda m: None, progress=False)


def test_graph_run_resumes_from_a_checkpoint(mnist_small, tmp_path, monkeypatch):
    seeds = [3, 4]
    cfg = train.TrainConfig(iterations=250, batch_size=20, eval_every=50)

    def build():
        model = models.build("lenet_300_100", seeds)
        return masks.attach_masks(model, masks.magnitude(
            {k: weightfn.stored(l).detach() for k, l in model.prunable().items()}, 0.5))

    whole = build()
    ref = train.train(whole, mnist_small, cfg, seeds, device="cuda", graph=True, progress=False)
    ckpt = tmp_path / "c.pt"
    evaluate, calls = train.evaluate, {"n": 0}

    def interrupted(*args, **kwargs):  # two evaluations per record: stop at step 150's
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.train(build(), mnist_small, cfg, seeds, device="cuda", graph=True, progress=False, checkpoint=ckpt,
                    checkpoint_every_s=0)
    monkeypatch.setattr(train, "evaluate", evaluate)
    assert torch.load(ckpt, weights_only=True)["step"] == 100
    fresh = build()
    got = train.train(fresh, mnist_small, cfg, seeds, device="cuda", graph=True, progress=False, checkpoint=ckpt,
                      checkpoint_every_s=0)
    np.testing.assert_allclose(got.val_loss, ref.val_loss, rtol=1e-4, atol=1e-5)
    for name, layer in fresh.prunable().items():
        torch.testing.assert_close(weightfn.stored(layer).cpu(), weightfn.stored(whole.prunable()[name]).cpu(),
                                   atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_graph_follows_the_schedule_and_augments_like_eager_steps(mnist_small, optimizer):
    """A milestone drops the captured step (it holds the old rate) and captures it again; crops and
    flips are read from the epoch's draws on the device, as eager steps read them."""
    from lotterylib.data import Dataset, Split
    img = lambda s: Split(s.x.reshape(-1, 1, 28, 28), s.y)  # noqa: E731
    data = Dataset("mnist", img(mnist_small.train), img(mnist_small.val), img(mnist_small.test), 10, (1, 28, 28))
    seeds = [3, 4]
    cfg = train.TrainConfig(iterations=150, batch_size=40, eval_every=50, optimizer=optimizer,
                            lr=0.05 if optimizer == "sgd" else 1e-3, lr_milestones=(60, 110), augment="crop_flip")
    out = []
    for graph in (False, True):
        model = models.ConvNet(2, [8, 8], fc=(32,), in_channels=1, image_size=28).reset_parameters(seeds)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            h = train.train(model, data, cfg, seeds, device="cuda", graph=graph, progress=False)
        out.append((h, {k: weightfn.stored(l).detach().cpu() for k, l in model.prunable().items()}))
    (h_eager, w_eager), (h_graph, w_graph) = out
    for k in w_eager:
        torch.testing.assert_close(w_graph[k], w_eager[k], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(h_graph.val_loss, h_eager.val_loss, rtol=1e-4, atol=1e-5)
