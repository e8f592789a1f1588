"""Models whose every layer holds a *population* of independent runs on dim 0.

A population of N runs is one module: a linear weight is ``(N, out, in)`` and its forward is one
batched matmul, a conv weight ``(N, out, in, k, k)`` runs as one grouped convolution. N = 1 is an
ordinary single network. Each run is initialised from its own seed, so run i of a population equals
a single network built with seed i (tested).

Architectures are the LT paper's (Frankle & Carbin 2019, Fig. 2): LeNet-300-100 and Conv-2/4/6
(3×3 convs with same padding, ReLU, 2×2 max-pool, then FC 256-256-10), Gaussian Glorot init.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .pooling import max_pool2x2


def glorot_normal_(weight: Tensor, fan_in: int, fan_out: int, generator: torch.Generator) -> Tensor:
    """Fill ``weight`` from N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio 2010, Gaussian form)."""
    std = math.sqrt(2.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.copy_(torch.randn(weight.shape, generator=generator) * std)
    return weight


class StackedLinear(nn.Module):
    """N independent linear layers. ``weight`` (N, out, in), ``bias`` (N, out).

    Input ``(N, B, in)`` (one batch per run) or ``(B, in)`` (one batch shared by all runs);
    output ``(N, B, out)``.
    """

    def __init__(self, runs: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.runs, self.in_features, self.out_features = runs, in_features, out_features
        self.weight = nn.Parameter(torch.zeros(runs, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(runs, out_features)) if bias else None

    def fans(self) -> tuple[int, int]:
        return self.in_features, self.out_features

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        if x.dim() == 2:  # shared input: one (B, in) @ (in, N·out) product
            n, o, i = w.shape
            out = (x @ w.permute(2, 0, 1).reshape(i, n * o)).reshape(x.shape[0], n, o).transpose(0, 1)
            return out + self.bias.unsqueeze(1) if self.bias is not None else out
        if x.dim() != 3 or x.shape[0] != w.shape[0]:
            raise ValueError(f"expected input (B, {self.in_features}) or ({w.shape[0]}, B, {self.in_features}), "
                             f"got {tuple(x.shape)}")
        if w.shape[0] == 1:  # a single run: a plain linear layer is faster than a batch-of-one bmm
            return F.linear(x[0], w[0], None if self.bias is None else self.bias[0]).unsqueeze(0)
        # Computed as (W @ xᵀ)ᵀ: the weight gradient then comes out contiguous, with no transpose
        # copy in the backward pass (about 1.3× faster steps for 8 stacked LeNets on one CPU thread).
        if self.bias is None:
            return torch.bmm(w, x.transpose(1, 2)).transpose(1, 2)
        return torch.baddbmm(self.bias.unsqueeze(2), w, x.transpose(1, 2)).transpose(1, 2)

    def extra_repr(self) -> str:
        return f"runs={self.runs}, in={self.in_features}, out={self.out_features}"


class StackedConv2d(nn.Module):
    """N independent conv layers as one grouped convolution. ``weight`` (N, out, in, k, k).

    Works on the *grouped layout* ``(B, N·C, H, W)``; :func:`to_grouped` makes it from per-run
    ``(N, B, C, H, W)`` or shared ``(B, C, H, W)`` input.
    """

    def __init__(self, runs: int, in_channels: int, out_channels: int, kernel_size: int = 3,
                 padding: int | str = "same", bias: bool = True):
        super().__init__()
        self.runs, self.in_channels, self.out_channels = runs, in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        self.weight = nn.Parameter(torch.zeros(runs, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(runs, out_channels)) if bias else None

    def fans(self) -> tuple[int, int]:
        area = self.kernel_size * self.kernel_size
        return self.in_channels * area, self.out_channels * area

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.reshape(-1, self.in_channels, self.kernel_size, self.kernel_size)
        b = self.bias.reshape(-1) if self.bias is not None else None
        groups = self.runs if x.shape[1] == self.runs * self.in_channels else 1
        if groups == 1 and x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} or {self.runs}·{self.in_channels} channels, got {x.shape[1]}")
        return F.conv2d(x, w, b, padding=self.padding, groups=groups)

    def extra_repr(self) -> str:
        return f"runs={self.runs}, {self.in_channels}->{self.out_channels}, k={self.kernel_size}"


def to_grouped(x: Tensor) -> Tensor:
    """(N, B, C, H, W) → (B, N·C, H, W); shared (B, C, H, W) input is returned as is."""
    if x.dim() == 4:
        return x
    n, b, c, h, w = x.shape
    return x.permute(1, 0, 2, 3, 4).reshape(b, n * c, h, w)


def from_grouped(x: Tensor, runs: int) -> Tensor:
    """(B, N·C, H, W) → (N, B, C·H·W), flattening each run's features."""
    b = x.shape[0]
    return x.reshape(b, runs, -1).transpose(0, 1)


class PopulationModel(nn.Module):
    """Base class: ``runs`` independent networks; ``prunable()`` lists the weight-bearing layers."""

    runs: int
    output_layer: str

    def prunable(self) -> dict[str, nn.Module]:
        """Name → layer for every StackedLinear / StackedConv2d, input to output."""
        return {name: m for name, m in self.named_modules() if isinstance(m, (StackedLinear, StackedConv2d))}

    def reset_parameters(self, seeds: Sequence[int]) -> "PopulationModel":
        """Glorot-normal weights and zero biases; run i drawn from a generator seeded with seeds[i]."""
        if len(seeds) != self.runs:
            raise ValueError(f"need {self.runs} seeds, got {len(seeds)}")
        layers = list(self.prunable().values())
        from .weightfn import stored
        with torch.no_grad():
            for i, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(int(seed))
                for layer in layers:
                    fan_in, fan_out = layer.fans()
                    w = stored(layer)
                    w[i].copy_(glorot_normal_(torch.empty(w.shape[1:]), fan_in, fan_out, g))
                    if layer.bias is not None:
                        layer.bias[i].zero_()
        return self


class MLP(PopulationModel):
    """Fully connected ReLU network, e.g. LeNet-300-100 = MLP(runs, [784, 300, 100, 10])."""

    def __init__(self, runs: int, widths: Sequence[int]):
        super().__init__()
        if len(widths) < 2 or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must list at least an input and an output size ≥ 1, got {list(widths)}")
        self.runs, self.widths = runs, list(widths)
        self.layers = nn.ModuleList(StackedLinear(runs, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output_layer = f"layers.{len(self.layers) - 1}"

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, in) shared or (N, B, in) per run → logits (N, B, classes)."""
        if x.shape[-1] != self.widths[0]:
            raise ValueError(f"expected inputs with {self.widths[0]} features, got shape {tuple(x.shape)}")
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class ConvNet(PopulationModel):
    """The LT paper's Conv-2/4/6: blocks of two 3×3 convs and a 2×2 max-pool, then FC 256-256-10."""

    def __init__(self, runs: int, channels: Sequence[int], fc: Sequence[int] = (256, 256),
                 classes: int = 10, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        self.runs = runs
        convs, c = [], in_channels
        for width in channels:
            convs.append(StackedConv2d(runs, c, width))
            c = width
        self.convs = nn.ModuleList(convs)
        size = image_size // (2 ** (len(channels) // 2))
        widths = [c * size * size, *fc, classes]
        self.fcs = nn.ModuleList(StackedLinear(runs, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output_layer = f"fcs.{len(self.fcs) - 1}"
        self.in_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) shared or (N, B, C, H, W) per run → logits (N, B, classes)."""
        if x.shape[-3] != self.in_channels:
            raise ValueError(f"expected {self.in_channels}-channel images, got shape {tuple(x.shape)}")
        return conv_fc_forward(x, self.convs, [i % 2 == 1 for i in range(len(self.convs))], self.fcs, self.runs)


def conv_fc_forward(x: Tensor, convs: Sequence[nn.Module], pooled: Sequence[bool], fcs: Sequence[nn.Module],
                    runs: int) -> Tensor:
    """The Conv-k body shared by every conv population: ReLU convs on the grouped layout, a 2×2
    max-pool after those marked in ``pooled``, then ReLU FCs with the last one's logits left as is.

    x: (N, B, C, H, W) per run or (B, C, H, W) shared → (N, B, classes).
    """
    x = to_grouped(x)
    for conv, pool in zip(convs, pooled):
        x = F.relu(conv(x))
        if pool:
            x = max_pool2x2(x)
    x = from_grouped(x, runs)
    for i, fc in enumerate(fcs):
        x = fc(x)
        if i < len(fcs) - 1:
            x = F.relu(x)
    return x


ARCHITECTURES = {
    "lenet_300_100": lambda runs: MLP(runs, [784, 300, 100, 10]),
    "conv2": lambda runs: ConvNet(runs, [64, 64]),
    "conv4": lambda runs: ConvNet(runs, [64, 64, 128, 128]),
    "conv6": lambda runs: ConvNet(runs, [64, 64, 128, 128, 256, 256]),
}


def build(name: str, seeds: Sequence[int]) -> PopulationModel:
    """A population of ``len(seeds)`` networks of architecture ``name``, run i initialised from seeds[i]."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    if len(seeds) < 1:
        raise ValueError("a population needs at least one seed")
    return ARCHITECTURES[name](len(seeds)).reset_parameters(seeds)


def count_weights(model: PopulationModel) -> dict[str, int]:
    """Prunable weights per layer of one run (biases excluded, as in the LT paper)."""
    from .weightfn import stored
    return {name: int(stored(layer)[0].numel()) for name, layer in model.prunable().items()}


def set_weights(model: PopulationModel, weights: dict[str, Tensor],
                biases: dict[str, Tensor] | None = None) -> PopulationModel:
    """Copy stored weights ``{layer: (runs, ...)}`` (and biases ``{layer: (runs, out)}``) into a population;
    a (1, ...) entry is broadcast to every run."""
    from .weightfn import stored
    layers = model.prunable()
    unknown = (set(weights) | set(biases or {})) - set(layers)
    if unknown:
        raise ValueError(f"no layers named {sorted(unknown)} in this model")
    def copy(target: Tensor, value: Tensor, what: str) -> None:
        if value.shape[1:] != target.shape[1:] or value.shape[0] not in (1, target.shape[0]):
            raise ValueError(f"{what} {tuple(value.shape)} do not fit {tuple(target.shape)}")
        target.copy_(value.expand_as(target))

    with torch.no_grad():
        for name, w in weights.items():
            copy(stored(layers[name]), w, f"layer {name}: weights")
        for name, b in (biases or {}).items():
            copy(layers[name].bias, b, f"layer {name}: biases")
    return model
