"""2×2 max pooling, stride 2, as ``F.max_pool2d(x, 2)`` computes it — values and gradients identical —
but faster on the CPU.

Why: on the CPU, PyTorch's max pooling of a contiguous NCHW tensor walks each 2×2 window element by
element (about 14 ms for the (50, 60, 24, 24) activations of a 3-run LeNet-5 population on one
thread, as long as the convolution before it). Four strided views and two ``torch.maximum`` passes
give the same maxima in about 2 ms; the gradient keeps PyTorch's own backward
(``max_pool2d_with_indices_backward``) fed with the indices PyTorch would have chosen: the first
maximum of the window in row-major order, so ties (two equal signs in a window of ±1 activations)
send the gradient where ``F.max_pool2d`` sends it. ``tests/test_pooling.py`` checks both on ties.
On other devices :func:`max_pool2x2` is ``F.max_pool2d(x, 2)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_OFFSETS: dict[tuple, Tensor] = {}


def _window_starts(h2: int, w2: int, width: int, device: torch.device) -> Tensor:
    """(h2, w2) flat index of each window's top-left element in an input plane ``width`` wide."""
    key = (h2, w2, width, device)
    if key not in _OFFSETS:
        rows = torch.arange(h2, device=device).mul_(2 * width)[:, None]
        cols = torch.arange(w2, device=device).mul_(2)[None, :]
        _OFFSETS[key] = rows + cols
    return _OFFSETS[key]


class _MaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        height, width = x.shape[-2:]
        h2, w2 = height // 2, width // 2  # floor, as max_pool2d: an odd last row/column is dropped
        a, b = x[..., 0:2 * h2:2, 0:2 * w2:2], x[..., 0:2 * h2:2, 1:2 * w2:2]
        c, d = x[..., 1:2 * h2:2, 0:2 * w2:2], x[..., 1:2 * h2:2, 1:2 * w2:2]
        top_row, bottom_row = torch.maximum(a, b), torch.maximum(c, d)
        out = torch.maximum(top_row, bottom_row)
        if ctx.needs_input_grad[0]:
            top = top_row >= bottom_row  # the first row holds the maximum (it wins a tie)
            c_first = c >= d
            # Within the chosen row, is the maximum in the second column? (a ≥ b on the top row,
            # c ≥ d on the bottom row, as boolean algebra: torch.where is slow on the CPU.)
            second = ~(c_first ^ (top & ((a >= b) ^ c_first)))
            index = (~top).to(torch.long).mul_(width).add_(second).add_(_window_starts(h2, w2, width, x.device))
            ctx.save_for_backward(x, index)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, index = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad.contiguous(), x, [2, 2], [2, 2], [0, 0], [1, 1], False, index)


def max_pool2x2(x: Tensor) -> Tensor:
    """``F.max_pool2d(x, 2)`` of a (…, C, H, W) tensor (3 or 4 dimensions), values and gradients."""
    if x.device.type != "cpu" or x.dim() not in (3, 4):
        return F.max_pool2d(x, 2)
    return _MaxPool2x2.apply(x)
