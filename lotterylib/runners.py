"""The forward pass each storage format runs, and the harness that times them against each other.

:func:`dense_runner` (torch float32 matmuls), :func:`csr_runner` (torch sparse CSR × dense),
:func:`binary_runner` (bit-packed weights and the XNOR + popcount kernel of :mod:`lotterylib.bitpack`)
turn a network into a function ``x (B, in) → logits (B, out)``; :func:`runner_accuracy` scores one on a
test split, and :func:`time_runners` times several interleaved in one process (warm-up, median of
repeats); :func:`time_batches` does so at several batch sizes (Deep Compression's speed-up is a batch-1
result). Networks are lists of layers ``[(W (out, in), b (out,)), ...]`` of one run
(:mod:`lotterylib.serialize`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import bitpack
from .serialize import check_params


def dense_runner(params: Sequence[tuple[Tensor, Tensor]]) -> Callable[[Tensor], Tensor]:
    """``x (B, in) → logits (B, out)`` with float32 dense matmuls (ReLU between layers)."""
    params = check_params(params)
    ws = [(w.contiguous(), b.contiguous()) for w, b in params]

    @torch.no_grad()
    def forward(x: Tensor) -> Tensor:
        h = x
        for i, (w, b) in enumerate(ws):
            h = F.linear(h, w, b)
            if i < len(ws) - 1:
                h = torch.relu(h)
        return h
    return forward


def csr_runner(params: Sequence[tuple[Tensor, Tensor]]) -> Callable[[Tensor], Tensor]:
    """``x (B, in) → logits (B, out)`` with torch sparse CSR × dense products (activations kept as
    (features, B) between layers so no transpose is needed inside)."""
    params = check_params(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        ws = [(w.to_sparse_csr(), b.unsqueeze(1).contiguous()) for w, b in params]

    @torch.no_grad()
    def forward(x: Tensor) -> Tensor:
        h = x.T.contiguous()
        for i, (w, b) in enumerate(ws):
            h = torch.sparse.mm(w, h) + b
            if i < len(ws) - 1:
                h = torch.relu(h)
        return h.T
    return forward


def binary_runner(model: nn.Module, run: int = 0, kernel: str = "xnor") -> Callable[[Tensor], Tensor]:
    """``x (B, in) → logits`` of run ``run`` of a fully connected :class:`~lotterylib.binary.BinaryNet`
    (no conv layers, eval mode). Each binary layer is BatchNorm (eval statistics, folded to one scale
    and shift) → activation → product → + bias; full-precision layers use ``F.linear``.

    ``kernel="xnor"`` (sign activations only): the weights are bit-packed once, here, and the product
    is XNOR + popcount on packed operands (:func:`lotterylib.bitpack.xnor_matmul`), times α per row —
    as :func:`lotterylib.binary.predict_packed`, which packs the weights on every call.
    ``kernel="float"``: the same network with a float32 matmul on the ±α weights (for BWN, whose
    activations are real, this is the only choice).
    """
    from .binary import BinaryBlock, deployed_weight, require_bacp
    require_bacp(model)
    if kernel not in ("xnor", "float"):
        raise ValueError(f"unknown kernel {kernel!r}; choose 'xnor' or 'float'")
    if len(getattr(model, "convs", [])) or model.training:
        raise ValueError("binary_runner needs a BinaryNet without conv layers, in eval mode")
    steps = []
    with torch.no_grad():
        for block in model.fcs:
            if isinstance(block, BinaryBlock):
                if block.input_scale:
                    raise ValueError("binary_runner does not handle XNOR's K scaling")
                sign = block.act.kind == "sign"
                if kernel == "xnor" and not sign:
                    raise ValueError("the XNOR kernel needs sign activations (XNOR-Net / BNN, not BWN)")
                layer, bn = block.layer, block.norm.bn
                f = layer.in_features
                sl = slice(run * f, (run + 1) * f)
                scale = (bn.weight[sl] if bn.weight is not None else 1.0) / torch.sqrt(bn.running_var[sl] + bn.eps)
                shift = (bn.bias[sl] if bn.bias is not None else 0.0) - bn.running_mean[sl] * scale
                w = deployed_weight(layer)[run].clone()
                alpha = w.abs().amax(1).clone()
                packed = bitpack.pack_signs(w) if kernel == "xnor" else None
                steps.append(("bin", scale.clone(), shift.clone(), w, packed, alpha, layer.bias[run].clone(), sign))
            else:
                steps.append(("fp", deployed_weight(block)[run].clone(), block.bias[run].clone()))

    @torch.no_grad()
    def forward(x: Tensor) -> Tensor:
        h = x
        for i, st in enumerate(steps):
            if st[0] == "bin":
                _, scale, shift, w, packed, alpha, bias, sign = st
                xn = h * scale + shift
                if packed is not None:
                    ints = bitpack.xnor_matmul(bitpack.pack_signs(xn.numpy(), check=False), packed, w.shape[1])
                    h = torch.from_numpy(ints).float() * alpha + bias
                else:
                    h = F.linear(torch.where(xn >= 0, 1.0, -1.0) if sign else xn, w, bias)
            else:
                h = F.linear(h, st[1], st[2])
            if i < len(steps) - 1:
                h = torch.relu(h)
        return h
    return forward


def time_runners(runners: Mapping[str, Callable[[Tensor], Tensor]], x: Tensor, *, repeats: int = 7,
                 warmup: int = 2, inner: int = 1, threads: int = 1) -> dict[str, float]:
    """Median seconds per call of each runner on ``x``, timed in interleaved rounds in this process.

    ``warmup`` untimed calls each first (compilation, caches); then ``repeats`` rounds, each timing
    every runner over ``inner`` calls, so load from other processes hits all of them alike. torch and
    numba use ``threads`` threads while timing (restored afterwards).
    """
    if repeats < 1 or warmup < 0 or inner < 1 or threads < 1:
        raise ValueError("repeats, inner and threads must be ≥ 1, warmup ≥ 0")
    if not runners:
        raise ValueError("no runners to time")
    old_torch, old_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for fn in runners.values():
            for _ in range(warmup):
                fn(x)
        times: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(repeats):
            for name, fn in runners.items():
                t0 = time.perf_counter()
                for _ in range(inner):
                    fn(x)
                times[name].append((time.perf_counter() - t0) / inner)
    finally:
        torch.set_num_threads(old_torch)
        numba.set_num_threads(old_numba)
    return {k: float(np.median(v)) for k, v in times.items()}


def time_batches(runners: Mapping[str, Callable[[Tensor], Tensor]], x: Tensor, batches: Sequence[int], *,
                 repeats: int = 9, images: int = 1000, threads: int = 1) -> dict[int, dict[str, float]]:
    """:func:`time_runners` at each batch size ``b`` in ``batches`` (the first ``b`` rows of ``x``):
    {b: {name: median seconds per call}}. Each timed round calls every runner ⌈images / b⌉ times, so
    a tiny batch is timed over as many images as a large one (a single call at batch 1 is too short to
    time on its own)."""
    out = {}
    for b in batches:
        if not 1 <= int(b) <= x.shape[0]:
            raise ValueError(f"batch {b} is not in [1, {x.shape[0]}] (the rows of x)")
        out[int(b)] = time_runners(runners, x[:int(b)].contiguous(), repeats=repeats, inner=-(-int(images) // int(b)),
                                   threads=threads)
    return out


@torch.no_grad()
def runner_accuracy(runner: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, batch_size: int = 2500) -> float:
    """Accuracy of a runner's logits on (x (n, in), y (n,))."""
    hits = 0
    for i in range(0, x.shape[0], batch_size):
        hits += int((runner(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
    return hits / x.shape[0]
