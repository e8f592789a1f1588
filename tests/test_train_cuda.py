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
