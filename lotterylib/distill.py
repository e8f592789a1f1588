"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a small student trained on a big teacher's soft targets.

The teacher's logits z, softened by a temperature T, give the *soft targets* p_i = exp(z_i/T) / Σ_j exp(z_j/T):
at T = 1 a confident net puts almost everything on one class; at higher T the small probabilities of the
wrong classes — which 2 looks like a 3, which like a 7 — become visible and carry information. The
student's loss per example (§2 of the paper) mixes two objectives:

    α · T² · KL(p_T(teacher) ‖ p_T(student))  +  (1 − α) · CE(label, p_1(student))

with the student's softmax at the *same* temperature T in the first term and at T = 1 in the second.
The T² keeps the soft term's gradients on the same scale whatever T is ("the magnitudes of the
gradients produced by the soft targets scale as 1/T²", §2). KL(p_t ‖ p_s) differs from the cross-entropy
with soft targets only by the teacher's entropy, which does not depend on the student: same gradients,
and a loss that is zero when the student matches. After training the student is used at T = 1.

:func:`distillation_loss` is the loss; :func:`train_students` trains a population of students (each run
with its own T and α; α = 0 is the same student on hard labels) with the training engine's batch order,
optimizers and evaluation (:mod:`lotterylib.train`), reading the teacher's logits of each batch from a
precomputed table (:func:`teacher_logits`). :class:`RegularizedMLP` is the paper's MNIST teacher:
dropout and inputs jittered by up to two pixels (its weight constraints are not reproduced).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import Split
from .models import PopulationModel, StackedLinear
from .train import OPTIMIZERS, BatchOrder, History, TrainConfig, crop_flip, evaluate


def soft_targets(logits: Tensor, temperature: float | Tensor) -> Tensor:
    """softmax(logits / T) over the last dim (``temperature`` broadcasts against ``logits[..., :1]``)."""
    return F.softmax(logits / temperature, dim=-1)


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor,
                      temperature: float | Tensor, alpha: float | Tensor) -> Tensor:
    """Per-example loss α·T²·KL(p_T(teacher) ‖ p_T(student)) + (1 − α)·CE(label, student at T = 1).

    ``student_logits``, ``teacher_logits`` (..., C); ``labels`` (...) long; ``temperature`` and ``alpha``
    scalars or tensors broadcasting against (...) (one per run, say, shaped (runs, 1)). Returns (...).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {tuple(student_logits.shape)} "
                         f"vs {tuple(teacher_logits.shape)}")
    t = torch.as_tensor(temperature, dtype=student_logits.dtype, device=student_logits.device)
    a = torch.as_tensor(alpha, dtype=student_logits.dtype, device=student_logits.device)
    if (t <= 0).any() or (a < 0).any() or (a > 1).any():
        raise ValueError("need temperatures > 0 and 0 ≤ alpha ≤ 1")
    log_p_teacher = F.log_softmax(teacher_logits.detach() / t.unsqueeze(-1), -1)
    log_p_student = F.log_softmax(student_logits / t.unsqueeze(-1), -1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)
    ce = F.cross_entropy(student_logits.reshape(-1, student_logits.shape[-1]), labels.reshape(-1),
                         reduction="none").reshape(labels.shape)
    return a * t.square() * kl + (1.0 - a) * ce


@torch.no_grad()
def teacher_logits(model: nn.Module, x: Tensor, batch_size: int = 5000) -> Tensor:
    """The logits of every run of a population ``model`` (eval mode) on ``x`` (n, ...) → (runs, n, C)."""
    was = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)], dim=1)
    model.train(was)
    return out


def train_students(model: PopulationModel, transfer: Split, teacher: Tensor, val: Split, test: Split,
                   config: TrainConfig, data_seeds: Sequence[int], temperatures: Sequence[float],
                   alphas: Sequence[float]) -> History:
    """Train every run of ``model`` on the transfer set with :func:`distillation_loss`; return the curves.

    ``teacher`` (runs, n, C): the logits run r learns from, for each of the n transfer examples (runs of
    one seed share their teacher). ``temperatures``, ``alphas``: one per run (α = 0: hard labels only).
    Run r draws its batches as the training engine does (:class:`lotterylib.train.BatchOrder`, seeded by
    ``data_seeds[r]``), so a distilled student and the hard-label student of the same seed see the same
    batches in the same order; ``config`` gives the optimizer, batch size, iterations and how often the
    validation and test splits are evaluated (as :func:`lotterylib.train.train` records them).
    """
    runs = len(data_seeds)
    if not (getattr(model, "runs", runs) == runs == len(temperatures) == len(alphas) == teacher.shape[0]):
        raise ValueError("need one data seed, temperature, alpha and teacher table per run of the model")
    if teacher.shape[1] != len(transfer):
        raise ValueError(f"the teacher table has {teacher.shape[1]} examples, the transfer set {len(transfer)}")
    if config.loss != "cross_entropy" or config.augment or config.lr_final is not None or config.lr_milestones:
        raise ValueError("train_students runs a constant learning rate with no augmentation and its own loss")
    t = torch.tensor([float(x) for x in temperatures]).unsqueeze(1)
    a = torch.tensor([float(x) for x in alphas]).unsqueeze(1)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[config.optimizer](params, config)
    order = BatchOrder(len(transfer), config.batch_size, data_seeds)
    row = torch.arange(runs).unsqueeze(1)
    iters, curves = [], [[], [], [], []]  # val loss, val acc, test acc, train loss
    running, since = torch.zeros(runs), 0

    def record(at: int) -> None:
        nonlocal running, since
        vl, va = evaluate(model, val)
        _, ta = evaluate(model, test)
        iters.append(at)
        for c, v in zip(curves, (vl, va, ta, running / max(since, 1))):
            c.append(v.double())
        running, since = torch.zeros(runs), 0

    model.train()
    record(0)
    for s in range(config.iterations):
        epoch, pos = divmod(s, order.per_epoch)
        idx = order.epoch(epoch)[:, pos]  # (runs, B)
        x, y = transfer.x[idx], transfer.y[idx]
        per_run = distillation_loss(model(x), teacher[row, idx], y, t, a).mean(1)
        optimizer.zero_grad(set_to_none=True)
        per_run.sum().backward()  # the sum of the runs' means: each run gets exactly its own gradient
        optimizer.step()
        running += per_run.detach()
        since += 1
        if (s + 1) % config.eval_every == 0 or s + 1 == config.iterations:
            record(s + 1)
    stack = lambda cs: torch.stack(cs, 1).numpy()  # noqa: E731
    return History(np.asarray(iters), *(stack(c) for c in curves))


class RegularizedMLP(PopulationModel):
    """An MLP trained with dropout and jittered inputs, as the paper's MNIST teacher (§3: "strongly
    regularized using dropout", "the input images were jittered by up to two pixels in any direction").

    In training mode the (B, 784) images of each run are shifted by up to ``jitter`` pixels (zero padding,
    :func:`lotterylib.train.crop_flip` without flips), the inputs dropped with probability ``input_dropout``
    and the hidden activations with ``hidden_dropout``; in eval mode it is a plain MLP. The random draws
    come from torch's global generator (seed it before training). The max-norm weight constraint of the
    dropout paper the §3 teacher also used is not reproduced.
    """

    def __init__(self, runs: int, widths: Sequence[int], input_dropout: float = 0.2, hidden_dropout: float = 0.5,
                 jitter: int = 2, image_side: int = 28):
        super().__init__()
        self.runs, self.widths = runs, list(widths)
        self.input_dropout, self.hidden_dropout, self.jitter, self.side = input_dropout, hidden_dropout, jitter, image_side
        self.layers = nn.ModuleList(StackedLinear(runs, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output_layer = f"layers.{len(self.layers) - 1}"

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.jitter:
            if x.dim() == 2:
                x = x.unsqueeze(0).expand(self.runs, *x.shape)
            n, b, _ = x.shape
            images = x.reshape(n, b, 1, self.side, self.side)
            draws = torch.cat([torch.randint(0, 2 * self.jitter + 1, (n, b, 2), device=x.device),
                               torch.zeros(n, b, 1, dtype=torch.long, device=x.device)], -1)
            x = crop_flip(images, draws, padding=self.jitter).reshape(n, b, -1)
        x = F.dropout(x, self.input_dropout, self.training)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.dropout(F.relu(x), self.hidden_dropout, self.training)
        return x


def errors(acc: Sequence[float] | np.ndarray, n_test: int) -> np.ndarray:
    """Test errors (counts, as the paper reports them) from accuracies on ``n_test`` images."""
    return np.round((1.0 - np.asarray(acc, float)) * n_test)
