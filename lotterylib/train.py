"""The training engine: a population of N independent runs trained at once as one stacked model.

Each run draws its own minibatches (its own seeded permutation per epoch), so a population of N runs
equals N sequential runs with the same seeds, to floating-point tolerance (tested). The whole dataset
stays on the device; a step is one gather, one batched forward and backward, one optimizer step.
Every ``eval_every`` iterations the validation loss and accuracy and the test accuracy of every run
are recorded, so the early-stopping iteration (minimum validation loss, as in the LT paper) is known.

Two optional parts of a training recipe, both off by default (so every config made before them keeps
its hash): a multistep learning-rate schedule (``lr_milestones``, ``lr_gamma``), applied per step,
and on-device data augmentation of image batches (``augment="crop_flip"``: a random crop of the image
padded by 4 pixels and a random horizontal flip, drawn per run from the run's own seeded generator).
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .allocator import keep_freed_memory
from .data import Dataset, Split
from .seeds import derive
from .weightfn import masked_without_multiply

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency
    tqdm = None


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``threads``, else ``$OMP_NUM_THREADS``, else the usable cores.

    On small shared machines oversubscription is the worst case (2 threads on 2 busy cores ran
    100× slower than 1), so parallel test workers set OMP_NUM_THREADS=1.
    """
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        threads = int(env) if env else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    return threads


@dataclass(frozen=True)
class TrainConfig:
    """How one population is trained. ``iterations`` = optimizer steps per run.

    ``loss``: ``"cross_entropy"`` or ``"squared_hinge"`` (an L2-SVM output: the mean over examples and
    classes of max(0, 1 − t·y)², t = ±1 for the true / other classes, as in BinaryConnect and BNN).
    ``lr_final``: when set, every parameter group's learning rate decays exponentially, once per epoch,
    from its initial value to ``lr_final / lr`` times it over the epochs the iterations span (epoch e of
    E uses lr·(lr_final / lr)^(e / E), as BinaryConnect's ``LR *= LR_decay`` after each epoch).
    """

    iterations: int = 50_000
    batch_size: int = 60
    optimizer: str = "adam"
    lr: float = 1.2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    eval_every: int = 100
    loss: str = "cross_entropy"
    lr_final: float | None = None
    #: Steps (0-based optimizer steps, not epochs) from which the learning rate is multiplied by
    #: ``lr_gamma`` once more: step s uses lr · lr_gamma^(number of milestones ≤ s). An epoch-based
    #: schedule (PyTorch's MultiStepLR stepped per epoch) has milestones ``epoch · steps_per_epoch``.
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    #: On-device augmentation of image batches: "" (none) or "crop_flip" (see :func:`crop_flip`).
    augment: str = ""

    def __post_init__(self):
        if self.iterations < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError(f"iterations, batch_size and eval_every must be ≥ 1: {self}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.lr_final is not None and not self.lr_final > 0:
            raise ValueError(f"lr_final must be > 0, got {self.lr_final}")
        milestones = tuple(int(m) for m in self.lr_milestones)
        if any(m < 1 for m in milestones) or list(milestones) != sorted(set(milestones)):
            raise ValueError(f"lr_milestones must be increasing steps ≥ 1, got {self.lr_milestones}")
        object.__setattr__(self, "lr_milestones", milestones)  # a list from JSON becomes a hashable tuple
        if not self.lr_gamma > 0:
            raise ValueError(f"lr_gamma must be > 0, got {self.lr_gamma}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"unknown augment {self.augment!r}; choose one of {', '.join(map(repr, AUGMENTATIONS))}")

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based) under the multistep schedule."""
        return self.lr * self.lr_gamma ** sum(step >= m for m in self.lr_milestones)


#: Data augmentations of the engine: "" none; "crop_flip" a random crop of the image zero-padded by
#: :data:`CROP_PADDING` pixels on every side, then a horizontal flip with probability ½ (torchvision's
#: ``RandomCrop(size, padding=4)`` + ``RandomHorizontalFlip()``, the usual CIFAR-10 recipe).
AUGMENTATIONS = ("", "crop_flip")
CROP_PADDING = 4


OPTIMIZERS = {
    # The fused kernel does Adam's element-wise update in one pass (measured ~1.2–1.3× faster steps here).
    # ``capturable`` keeps Adam's step counter on the device, so a CUDA graph can replay the update.
    "adam": lambda params, c, graph=False: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, fused=True,
                                                            capturable=graph),
    "sgd": lambda params, c, graph=False: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                                          weight_decay=c.weight_decay),
}


def squared_hinge(logits: Tensor, y: Tensor) -> Tensor:
    """Mean over the classes of max(0, 1 − t·logits)², t = +1 for class ``y`` and −1 for the others.

    ``logits`` (M, C), ``y`` (M,) → (M,): the L2-SVM loss of BinaryConnect's and BNN's code (their mean
    over a batch and the classes is the mean of this over the batch).
    """
    t = F.one_hot(y, logits.shape[-1]).to(logits.dtype) * 2.0 - 1.0
    return F.relu(1.0 - t * logits).square().mean(-1)


def lr_factor(config: TrainConfig, step: int, per_epoch: int, epochs: int) -> float:
    """The factor on every parameter group's initial learning rate at optimizer step ``step`` (0-based):
    the multistep schedule (``lr_gamma`` per milestone passed) times, with ``lr_final``, BinaryConnect's
    exponential decay from ``lr`` to ``lr_final`` over the ``epochs`` (one value per epoch)."""
    factor = config.lr_gamma ** sum(step >= m for m in config.lr_milestones)
    if config.lr_final is not None:
        factor *= (config.lr_final / config.lr) ** ((step // per_epoch) / epochs)
    return factor


#: Per-example losses ``(logits (M, C), y (M,)) -> (M,)``.
LOSSES = {"cross_entropy": lambda logits, y: F.cross_entropy(logits, y, reduction="none"),
          "squared_hinge": squared_hinge}


@dataclass
class History:
    """Curves of one population. Arrays are (runs, evals); ``iterations`` is (evals,).

    ``resumed_seconds``: training time spent by earlier, interrupted calls whose checkpoint this one
    resumed (0 for a training that ran in one go); a caller's own clock misses it.
    """

    iterations: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    test_acc: np.ndarray
    train_loss: np.ndarray
    extras: dict = field(default_factory=dict)
    resumed_seconds: float = 0.0

    @property
    def runs(self) -> int:
        return int(self.val_loss.shape[0])

    def early_stop_index(self) -> np.ndarray:
        """Index of the evaluation with minimum validation loss, per run (the first on ties)."""
        return np.argmin(self.val_loss, axis=1)

    def early_stop_iteration(self) -> np.ndarray:
        return self.iterations[self.early_stop_index()]

    def early_stop_test_acc(self) -> np.ndarray:
        """Test accuracy at the early-stopping iteration, per run (the LT paper's 'accuracy')."""
        return self.test_acc[np.arange(self.runs), self.early_stop_index()]

    def select(self, runs: Sequence[int] | slice) -> "History":
        return History(self.iterations, self.val_loss[runs], self.val_acc[runs], self.test_acc[runs],
                       self.train_loss[runs], resumed_seconds=self.resumed_seconds)

    def to_json(self) -> dict:
        return {"iterations": self.iterations.tolist(), "val_loss": self.val_loss.tolist(),
                "val_acc": self.val_acc.tolist(), "test_acc": self.test_acc.tolist(),
                "train_loss": self.train_loss.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "History":
        return cls(*(np.asarray(d[k]) for k in ("iterations", "val_loss", "val_acc", "test_acc", "train_loss")))


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 2500) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy and accuracy of every run on a shared split. Returns two (runs,) tensors."""
    if next(model.parameters()).device != split.x.device:
        model.to(split.x.device)  # a population built on the CPU, evaluated where the data lives
    was_training = model.training
    model.eval()
    loss_sum, correct = None, None
    for start in range(0, len(split), batch_size):
        x, y = split.x[start:start + batch_size], split.y[start:start + batch_size]
        logits = model(x)  # (N, B, C)
        n = logits.shape[0]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(n), reduction="none")
        loss = loss.reshape(n, -1).sum(1)
        hits = (logits.argmax(-1) == y).sum(1)
        loss_sum = loss if loss_sum is None else loss_sum + loss
        correct = hits if correct is None else correct + hits
    model.train(was_training)
    return loss_sum / len(split), correct.double() / len(split)


class _PerEpochDraws:
    """Random draws made one epoch at a time, each run from its own generator seeded with its seed.

    ``epoch(e)`` is the (runs, ...) tensor of epoch ``e``, asked in increasing order; a fresh instance
    draws the same epochs again (a resumed training draws what the uninterrupted one did), and run i's
    draws do not depend on the other runs of its population. Subclasses say what one run draws.
    """

    what = "draws"

    def __init__(self, seeds: Sequence[int]):
        self._gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self._epoch, self._draws = -1, None

    def _draw(self, g: torch.Generator) -> Tensor:
        raise NotImplementedError

    def epoch(self, e: int) -> Tensor:
        if e < self._epoch:
            raise ValueError(f"{self.what}: epochs (steps) must be asked in increasing order")
        while self._epoch < e:
            self._draws = torch.stack([self._draw(g) for g in self._gens])
            self._epoch += 1
        return self._draws


class BatchOrder(_PerEpochDraws):
    """Per-run minibatch order: each run reshuffles every epoch with its own generator.

    ``epoch(e)`` is the (runs, per_epoch, batch_size) long tensor of epoch ``e``'s batches, asked
    in increasing order; permutations are drawn one epoch at a time (N ``randperm`` calls per epoch,
    no per-sample Python). The last partial batch of an epoch is dropped.
    """

    what = "batch order"

    def __init__(self, n: int, batch_size: int, seeds: Sequence[int]):
        self.per_epoch = n // batch_size
        if self.per_epoch < 1:
            raise ValueError(f"batch_size {batch_size} exceeds the {n} training examples")
        self.n, self.batch_size = n, batch_size
        super().__init__(seeds)

    def _draw(self, g: torch.Generator) -> Tensor:
        used = self.per_epoch * self.batch_size
        return torch.randperm(self.n, generator=g)[:used].reshape(self.per_epoch, self.batch_size)


def batch_indices(n: int, batch_size: int, seeds: Sequence[int]) -> Callable[[int], Tensor]:
    """``at(step) -> (runs, batch_size)`` long tensor of the batches of :class:`BatchOrder`."""
    order = BatchOrder(n, batch_size, seeds)

    def at(step: int) -> Tensor:
        epoch, pos = divmod(step, order.per_epoch)
        return order.epoch(epoch)[:, pos]

    return at


class CropFlipOrder(_PerEpochDraws):
    """Per-run crop offsets and flips for :func:`crop_flip`, drawn one epoch at a time like :class:`BatchOrder`.

    ``epoch(e)`` is the (runs, per_epoch, batch_size, 3) long tensor of epoch ``e``: for every image of
    every batch its row and column offset in the padded image (0 … 2·``padding``) and whether it is
    flipped (0/1). Run i draws from its own generator seeded with ``seeds[i]``.
    """

    what = "crop/flip order"

    def __init__(self, per_epoch: int, batch_size: int, seeds: Sequence[int], padding: int = CROP_PADDING):
        self.per_epoch, self.batch_size, self.padding = per_epoch, batch_size, padding
        super().__init__(seeds)

    def _draw(self, g: torch.Generator) -> Tensor:
        shape = (self.per_epoch, self.batch_size)
        return torch.cat([torch.randint(0, 2 * self.padding + 1, (*shape, 2), generator=g),
                          torch.randint(0, 2, (*shape, 1), generator=g)], -1)


def crop_flip(x: Tensor, draws: Tensor, padding: int = CROP_PADDING) -> Tensor:
    """Images ``x`` (..., C, H, W) cropped and flipped as ``draws`` (..., 3) say, on their device.

    Image j is zero-padded by ``padding`` pixels on every side, the H×W window whose top-left corner is
    at (``draws[j, 0]``, ``draws[j, 1]``) of the padded image is cut out, and it is mirrored left–right
    where ``draws[j, 2]`` is 1 (offsets (padding, padding) and no flip give the image back). One
    gather, no host synchronisation: a CUDA graph can capture it.
    """
    *lead, c, h, w = x.shape
    if tuple(draws.shape) != (*lead, 3):
        raise ValueError(f"crop_flip needs draws of shape {(*lead, 3)} for images {tuple(x.shape)}, "
                         f"got {tuple(draws.shape)}")
    images = F.pad(x.reshape(-1, c, h, w), (padding,) * 4).permute(0, 2, 3, 1)  # (M, H+2p, W+2p, C)
    d = draws.reshape(-1, 3)
    rows = d[:, 0:1] + torch.arange(h, device=x.device)  # (M, H)
    cols = torch.arange(w, device=x.device).expand(len(d), w)
    cols = torch.where(d[:, 2:3] > 0, w - 1 - cols, cols) + d[:, 1:2]  # (M, W)
    which = torch.arange(len(d), device=x.device)[:, None, None]
    out = images[which, rows[:, :, None], cols[:, None, :]]  # (M, H, W, C)
    return out.permute(0, 3, 1, 2).reshape(x.shape)


def _bars_off() -> bool:
    """``$TQDM_DISABLE`` set: no progress bars. Honoured here because tqdm's notebook bar passes its
    own ``disable`` and so ignores the variable (the book's static pages cannot show a live bar)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def _use_graph(graph: bool | None, device: torch.device, after_step, decays: bool = False) -> bool:
    if graph is None:
        return (device.type == "cuda" and after_step is None and not decays
                and os.environ.get("LOTTERYLIB_CUDA_GRAPH", "1") != "0")
    if graph and device.type != "cuda":
        raise ValueError("graph=True needs a CUDA device")
    if graph and after_step is not None:
        raise ValueError("graph=True cannot call after_step between steps; apply it inside a weight function")
    if graph and decays:
        raise ValueError("graph=True cannot change the learning rate between steps (lr_final)")
    return graph


def train(model: nn.Module, data: Dataset, config: TrainConfig, data_seeds: Sequence[int], *,
          device: str | torch.device | None = None, progress: bool | str = True,
          trainable: Callable[[nn.Module], list[nn.Parameter]] | None = None,
          after_step: Callable[[nn.Module], None] | None = None, graph: bool | None = None,
          checkpoint: str | os.PathLike | None = None, checkpoint_every_s: float | None = None) -> History:
    """Train every run of ``model`` for ``config.iterations`` steps; return the curves.

    ``model``: a population (see :mod:`lotterylib.models`) whose forward maps (N, B, ...) → (N, B, C).
    ``data_seeds``: one per run; run i's minibatch order depends on data_seeds[i] alone.
    ``trainable``: which parameters the optimizer updates (default: all with requires_grad), or
    optimizer parameter groups (dicts, e.g. with their own ``lr``).
    ``progress``: show a tqdm bar (a string sets its description).
    ``after_step``: called with the model after every optimizer step (e.g. BinaryConnect's clipping
    of the real-valued weights to [−1, 1]). Without one, :class:`~lotterylib.weightfn.Masked` layers
    skip their forward product W ⊙ M (:func:`~lotterylib.weightfn.masked_without_multiply`: exact, since
    the optimizer starts afresh here).
    ``graph``: run each step as one captured CUDA graph (default: on CUDA unless ``after_step`` is
    given or ``LOTTERYLIB_CUDA_GRAPH=0``). A step reads its batch from an on-device copy of the epoch's
    order through an on-device step counter, so the loop never waits for the host; the same step
    body runs eagerly on the CPU. If capture fails, training goes on eagerly with a warning.
    ``config.lr_milestones`` / ``config.lr_final``: the learning rate of every step is each parameter
    group's initial rate times :func:`lr_factor`; a captured graph holds its rate, so it is captured
    again whenever the rate changes.
    ``config.augment``: ``"crop_flip"`` crops and flips each gathered image on the device
    (:func:`crop_flip`), with offsets drawn per epoch by :class:`CropFlipOrder` from generators seeded
    with ``derive(data_seeds[i], "augment")``; it needs image inputs (``data.input_shape`` = (C, H, W)).
    ``checkpoint``: a file where the whole training state (weights and weight-function buffers,
    optimizer, RNG, curves so far) is saved at an evaluation at least ``checkpoint_every_s`` seconds
    (default ``$LOTTERYLIB_CHECKPOINT_SECONDS``, else 300) after the last save. A later call with the
    same file resumes there and, on the CPU, finishes exactly as an uninterrupted run would (tested);
    the file is removed when training ends. Weight functions that keep their own ``torch.Generator``
    do not resume it.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    # On the CPU, big per-step tensors would otherwise be mmap'd and page-faulted afresh every step.
    # Masked layers skip the forward product W ⊙ M (exact: the optimizer below starts afresh, see
    # masked_without_multiply), unless an after_step hook may write into the stored weights.
    with keep_freed_memory() if device.type == "cpu" else contextlib.nullcontext(), \
            masked_without_multiply(model) if after_step is None else contextlib.nullcontext():
        return _train(model, data, config, data_seeds, device, progress, trainable, after_step, graph,
                      checkpoint, checkpoint_every_s)


def _train(model, data, config, data_seeds, device, progress, trainable, after_step, graph,
           checkpoint, checkpoint_every_s) -> History:
    runs = len(data_seeds)
    model_runs = getattr(model, "runs", runs)
    if model_runs != runs:
        raise ValueError(f"model has {model_runs} runs but {runs} data seeds were given")
    model.to(device)
    params = trainable(model) if trainable else [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires a gradient")
    use_graph = _use_graph(graph, device, after_step, config.lr_final is not None)
    optimizer = OPTIMIZERS[config.optimizer](params, config, use_graph)
    initial_lr = [group["lr"] for group in optimizer.param_groups]
    loss_fn = LOSSES[config.loss]
    x_train, y_train = data.train.x.to(device), data.train.y.to(device)
    val, test = data.val.to(device), data.test.to(device)
    order = BatchOrder(len(data.train), config.batch_size, data_seeds)
    augment = None
    if config.augment:
        if len(tuple(data.input_shape)) != 3 or tuple(x_train.shape[1:]) != tuple(data.input_shape):
            raise ValueError(f"augment={config.augment!r} needs image inputs (C, H, W); {data.name}'s are "
                             f"{tuple(data.input_shape)}")
        augment = CropFlipOrder(order.per_epoch, config.batch_size, [derive(s, "augment") for s in data_seeds])

    # Static buffers: a captured graph reads and writes these same tensors on every replay.
    epoch_batches = torch.empty(runs, order.per_epoch, config.batch_size, dtype=torch.long, device=device)
    epoch_draws = (torch.empty(runs, order.per_epoch, config.batch_size, 3, dtype=torch.long, device=device)
                   if augment is not None else None)
    position = torch.zeros(1, dtype=torch.long, device=device)
    running = torch.zeros(runs, device=device)

    def step() -> None:
        idx = epoch_batches.index_select(1, position).squeeze(1)  # (N, B)
        x, y = x_train[idx], y_train[idx]  # (N, B, ...), (N, B)
        if epoch_draws is not None:
            x = crop_flip(x, epoch_draws.index_select(1, position).squeeze(1))
        position.add_(1)
        logits = model(x)
        if logits.shape[0] != runs:
            raise ValueError(f"model has {logits.shape[0]} runs but {runs} data seeds were given")
        per_run = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).reshape(runs, -1).mean(1)
        # Summing the runs' mean losses gives each run exactly its own gradient.
        per_run.sum().backward()
        optimizer.step()
        running.add_(per_run.detach())

    iters: list[int] = []
    curves: list[list[Tensor]] = [[], [], [], []]  # val loss, val acc, test acc, train loss; on the device
    since = 0

    def record(at: int) -> None:
        nonlocal since
        loss, acc = evaluate(model, val)
        _, tacc = evaluate(model, test)
        iters.append(at)
        for curve, v in zip(curves, (loss, acc, tacc, running / max(since, 1))):
            curve.append(v.float())
        running.zero_()
        since = 0

    model.train()
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint_every_s is None:
        checkpoint_every_s = float(os.environ.get("LOTTERYLIB_CHECKPOINT_SECONDS", "300"))
    fingerprint = {"runs": runs, "data_seeds": [int(x) for x in data_seeds], "config": repr(config)}
    start, resumed_seconds = _resume(checkpoint, fingerprint, model, optimizer, iters, curves, device)
    began = time.monotonic()
    if start == 0:
        record(0)
    last_save = time.monotonic()
    bar = None
    if progress and tqdm is not None and not _bars_off():
        bar = tqdm(total=config.iterations, desc=progress if isinstance(progress, str) else f"train ×{runs}",
                   leave=False, mininterval=1.0)
    captured: torch.cuda.CUDAGraph | None = None
    warmup = 3  # eager steps before capture: they allocate optimizer state and warm cuBLAS
    done_since_bar = 0
    if bar is not None:
        bar.update(start)
    epochs = -(-config.iterations // order.per_epoch)
    factor = lr_factor(config, start, order.per_epoch, epochs)
    _scale_lr(optimizer, initial_lr, factor)  # a resumed run continues on its schedule
    for s in range(start, config.iterations):
        epoch, pos = divmod(s, order.per_epoch)
        if pos == 0 or s == start:
            epoch_batches.copy_(order.epoch(epoch).to(device))
            if augment is not None:
                epoch_draws.copy_(augment.epoch(epoch).to(device))
            position.fill_(pos)
        if lr_factor(config, s, order.per_epoch, epochs) != factor:
            factor = lr_factor(config, s, order.per_epoch, epochs)
            _scale_lr(optimizer, initial_lr, factor)
            captured = None  # the captured step holds the old rate: capture it again (after one eager step)
        if captured is not None:
            captured.replay()
        elif use_graph:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                optimizer.zero_grad(set_to_none=True)
                step()
            torch.cuda.current_stream(device).wait_stream(side)
            if s + 1 - start >= warmup:
                captured = _capture(step, optimizer, device)
                use_graph = captured is not None
        else:
            optimizer.zero_grad(set_to_none=True)
            step()
            if after_step is not None:
                after_step(model)
        since += 1
        done_since_bar += 1
        if (s + 1) % config.eval_every == 0 or s + 1 == config.iterations:
            record(s + 1)
            if bar is not None:
                bar.update(done_since_bar)
                done_since_bar = 0
            if checkpoint is not None and s + 1 < config.iterations \
                    and time.monotonic() - last_save >= checkpoint_every_s:
                _save(checkpoint, fingerprint, s + 1, model, optimizer, iters, curves,
                      resumed_seconds + time.monotonic() - began)
                last_save = time.monotonic()
    if bar is not None:
        bar.close()
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    stack = lambda xs: torch.stack(xs, 1).double().cpu().numpy()  # noqa: E731  (the loop's only host sync)
    return History(np.asarray(iters), *(stack(c) for c in curves), resumed_seconds=resumed_seconds)


def _scale_lr(optimizer: torch.optim.Optimizer, initial: Sequence[float], factor: float) -> None:
    for group, lr in zip(optimizer.param_groups, initial):
        group["lr"] = lr * factor


def _capture(step: Callable[[], None], optimizer: torch.optim.Optimizer, device: torch.device):
    """``step`` captured as one CUDA graph (not executed), or None with a warning if capture fails."""
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    try:
        with torch.cuda.graph(graph):
            step()
    except Exception as err:  # noqa: BLE001 - any capture failure falls back to eager steps
        warnings.warn(f"CUDA graph capture failed ({type(err).__name__}: {err}); training on eagerly")
        torch.cuda.synchronize(device)
        return None
    return graph


def _save(path: Path, fingerprint: dict, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
          iters: list[int], curves: list[list[Tensor]], seconds: float) -> None:
    """Write the training state after ``step`` steps and ``seconds`` of training, atomically (a temp
    file, then a rename)."""
    state = {"fingerprint": fingerprint, "step": step, "seconds": seconds, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "iters": list(iters),
             "curves": [torch.stack(c).cpu() for c in curves], "rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _resume(path: Path | None, fingerprint: dict, model: nn.Module, optimizer: torch.optim.Optimizer,
            iters: list[int], curves: list[list[Tensor]], device: torch.device) -> tuple[int, float]:
    """Load a checkpoint written by :func:`_save` into the fresh training state; return its step and
    the training seconds it had taken ((0, 0.0): no checkpoint).

    The batch order is not stored: a fresh :class:`BatchOrder` draws the same epochs from the seeds.

    An unreadable file is set aside with a warning (training starts over); one written by another
    run (other seeds, config or population) is an error, since going on would silently mix runs.
    """
    if path is None or not path.exists():
        return 0, 0.0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state["step"], state["fingerprint"]  # noqa: B018 - a truncated file lacks them
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint: start over, keep the file
        bad = path.with_name(path.name + ".corrupt")
        os.replace(path, bad)
        warnings.warn(f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); moved it to {bad} "
                      "and training from the start")
        return 0, 0.0
    if state["fingerprint"] != fingerprint:
        raise ValueError(f"checkpoint {path} belongs to another run ({state['fingerprint']}, not {fingerprint}); "
                         "delete it to start this one afresh")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    iters[:] = state["iters"]
    for curve, saved in zip(curves, state["curves"]):
        curve[:] = list(saved.to(device).unbind(0))
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"]), float(state.get("seconds", 0.0))  # older checkpoints did not record it
