"""Discovering Neural Wirings (Wortsman, Farhadi & Rastegari, NeurIPS 2019): learning which edges exist.

A network is a **static neural graph**: a feed-forward DAG of nodes with a real weight w_uv on every
*possible* edge (u, v). The input of node v is I_v = Σ_u w_uv Z_u over the edges in use; its output is
Z_v = node_op(I_v). DNW uses, in every forward pass, only the top-k edges by |w_uv| and passes the
gradient straight through to **all** edges, so an unused edge keeps learning and swaps in when its
magnitude overtakes a used one. In lotterylib that is nothing new: the graph stores its edge weights as
one tensor ``edges.weight`` of shape ``(runs, n_edges)`` and the chosen wiring is the weight function
:class:`~lotterylib.weightfn.TopKMagnitude` attached to it — the same straight-through building block
as the supermask and XNOR chapters.

Variants (what is attached to ``edges.weight``; the rest of the network is identical):

============  =====================================================================================
``dense``     the complete graph, no weight function
``dnw``       top-k(|W|), gradient straight through to every edge (:class:`~lotterylib.weightfn.TopKMagnitude`)
``random``    a fixed random edge set of the same size (DNW's ``RandomGraph``; :class:`~lotterylib.weightfn.Masked`)
``no_update`` top-k(|W|), gradient only to the edges in use (``DNWNoUpdate``;
              :class:`~lotterylib.weightfn.TopKMagnitudeNoUpdate`)
``lottery``   the top-k edges of the trained dense graph, weights reset to init and retrained (lottery
              one-shot; :class:`~lotterylib.weightfn.Masked`)
============  =====================================================================================

``fraction_kept`` is always the fraction of possible edges **kept** (DNW's ``prune_rate`` is the
fraction removed: ``fraction_kept = 1 − prune_rate``; its ``allsparse{k}`` configs keep k %).

The tiny classifier of the paper (Table 1): a downsampling stem whose channels are the input nodes,
then the graph, whose nodes apply InstanceNorm (affine) + ReLU + a 3×3 depthwise convolution, then
global average pooling of the output nodes and a linear layer. Every parameter has a leading run dim,
so a population of seeds trains at once with :func:`lotterylib.train.train`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import masks, models, weightfn
from .cache import ResultCache
from .data import Dataset, Split
from .provenance import provenance
from .seeds import derive
from .train import History, TrainConfig, train

VARIANTS = ("dense", "dnw", "random", "no_update", "lottery")


# --- the graph --------------------------------------------------------------------------------------

class StaticGraph:
    """A feed-forward DAG: nodes ``0..num_nodes-1``, possible edges ``(u, v)`` meaning u → v.

    ``inputs``: nodes set from outside (no in-edges); ``outputs``: nodes read out (no out-edges).
    Every other node needs at least one possible in-edge. Edge ``e`` is ``(src[e], dst[e])``; an
    edge-value tensor ``(..., n_edges)`` follows that order. Non-output nodes are grouped into
    ``levels`` by their longest path from the inputs (level 0 = the inputs), so each level only reads
    from earlier ones; the outputs are computed last. Raises ValueError on a cycle, a self-loop, a
    duplicate edge, an out-of-range node or bad node counts.
    """

    def __init__(self, num_nodes: int, edges: Sequence[tuple[int, int]], inputs: Sequence[int],
                 outputs: Sequence[int]):
        if int(num_nodes) != num_nodes or num_nodes < 2:
            raise ValueError(f"a graph needs at least 2 nodes (an input and an output), got num_nodes={num_nodes}")
        n = int(num_nodes)
        inputs, outputs = [int(i) for i in inputs], [int(o) for o in outputs]
        if not inputs or not outputs:
            raise ValueError(f"a graph needs at least one input and one output node, got {len(inputs)} inputs "
                             f"and {len(outputs)} outputs")
        for what, nodes in (("input", inputs), ("output", outputs)):
            bad = [v for v in nodes if not 0 <= v < n]
            if bad:
                raise ValueError(f"{what} nodes {bad} are out of range for {n} nodes")
            if len(set(nodes)) != len(nodes):
                raise ValueError(f"{what} nodes are listed twice: {nodes}")
        if set(inputs) & set(outputs):
            raise ValueError(f"nodes {sorted(set(inputs) & set(outputs))} are both inputs and outputs")
        if len(inputs) + len(outputs) > n:
            raise ValueError(f"{len(inputs)} inputs + {len(outputs)} outputs exceed {n} nodes")
        edges = [(int(u), int(v)) for u, v in edges]
        seen: set[tuple[int, int]] = set()
        for u, v in edges:
            if not (0 <= u < n and 0 <= v < n):
                raise ValueError(f"edge ({u}, {v}) names a node outside 0..{n - 1}")
            if u == v:
                raise ValueError(f"edge ({u}, {v}) is a self-loop: a feed-forward graph has no cycles")
            if (u, v) in seen:
                raise ValueError(f"edge ({u}, {v}) is listed twice")
            seen.add((u, v))
        in_set, out_set = set(inputs), set(outputs)
        into_inputs = [(u, v) for u, v in edges if v in in_set]
        if into_inputs:
            raise ValueError(f"edges {into_inputs[:3]} end at input nodes; inputs are set from outside")
        out_of_outputs = [(u, v) for u, v in edges if u in out_set]
        if out_of_outputs:
            raise ValueError(f"edges {out_of_outputs[:3]} leave output nodes; outputs are read out")
        has_in = {v for _, v in edges}
        orphans = [v for v in range(n) if v not in in_set and v not in has_in]
        if orphans:
            raise ValueError(f"nodes {orphans[:8]} are neither inputs nor reachable by any edge")
        self.num_nodes, self.inputs, self.outputs = n, inputs, outputs
        self.src = torch.tensor([u for u, _ in edges], dtype=torch.long)
        self.dst = torch.tensor([v for _, v in edges], dtype=torch.long)
        depth = self._depths(edges)
        hidden = [v for v in range(n) if v not in in_set and v not in out_set]
        top = max((depth[v] for v in hidden), default=0)
        self.levels: list[list[int]] = [list(inputs)] + [
            [v for v in hidden if depth[v] == d] for d in range(1, top + 1)]
        self.levels = [lvl for lvl in self.levels if lvl]

    def _depths(self, edges: list[tuple[int, int]]) -> list[int]:
        """Longest-path depth of every node (Kahn's algorithm); ValueError naming a cycle if there is one."""
        n = self.num_nodes
        succ: list[list[int]] = [[] for _ in range(n)]
        indeg = [0] * n
        for u, v in edges:
            succ[u].append(v)
            indeg[v] += 1
        depth = [0] * n
        queue = deque(v for v in range(n) if indeg[v] == 0)
        done = 0
        while queue:
            u = queue.popleft()
            done += 1
            for v in succ[u]:
                depth[v] = max(depth[v], depth[u] + 1)
                indeg[v] -= 1
                if indeg[v] == 0:
                    queue.append(v)
        if done < n:
            raise ValueError(f"the edges contain a cycle through nodes {self._cycle(succ, indeg)}; "
                             f"a static neural graph must be acyclic")
        return depth

    @staticmethod
    def _cycle(succ: list[list[int]], indeg: list[int]) -> list[int]:
        # Nodes left with in-degree > 0 after Kahn's algorithm all lie on or after a cycle: walk
        # backwards-free by following successors that are still unresolved until a node repeats.
        rest = {v for v, d in enumerate(indeg) if d > 0}
        v, path, where = min(rest), [], {}
        while v not in where:
            where[v] = len(path)
            path.append(v)
            v = next(w for w in succ[v] if w in rest)
        return path[where[v]:] + [v]

    @property
    def num_edges(self) -> int:
        return int(self.src.numel())

    def adjacency(self, edge_values: Tensor) -> Tensor:
        """Scatter edge values ``(..., n_edges)`` into matrices ``(..., num_nodes, num_nodes)``, [dst, src]."""
        if edge_values.shape[-1] != self.num_edges:
            raise ValueError(f"expected {self.num_edges} edge values, got shape {tuple(edge_values.shape)}")
        n = self.num_nodes
        lead = edge_values.shape[:-1]
        flat = edge_values.reshape(-1, self.num_edges)
        index = (self.dst * n + self.src).to(edge_values.device).expand(flat.shape[0], -1)
        out = flat.new_zeros(flat.shape[0], n * n).scatter(1, index, flat)
        return out.reshape(*lead, n, n)

    def fan_in(self) -> Tensor:
        """Number of possible in-edges of every node, ``(num_nodes,)``."""
        return torch.bincount(self.dst, minlength=self.num_nodes)

    def __repr__(self) -> str:
        return (f"StaticGraph({self.num_nodes} nodes: {len(self.inputs)} inputs, {len(self.outputs)} outputs, "
                f"{len(self.levels) - 1} hidden levels; {self.num_edges} possible edges)")


def check_blocks(blocks: Sequence[int]) -> list[int]:
    """The node counts of :func:`complete_dag` as ints; ValueError unless ≥ 2 counts, each ≥ 1.
    (A config validates its blocks with this alone: building the full profile's graph, 325,760
    possible edges, takes about a second.)"""
    blocks = [int(b) for b in blocks]
    if len(blocks) < 2 or any(b < 1 for b in blocks):
        raise ValueError(f"blocks must list ≥ 2 node counts ≥ 1 (inputs, …, outputs), got {blocks}")
    return blocks


def complete_dag(blocks: Sequence[int]) -> StaticGraph:
    """The complete feed-forward graph over consecutive blocks of nodes (DNW's static setting).

    ``blocks``: node counts, first the inputs, then hidden blocks, last the outputs (at least two
    blocks). Every node has a possible edge from every node of every earlier block.
    """
    blocks = check_blocks(blocks)
    starts = np.cumsum([0] + blocks)
    edges = [(u, v) for i in range(1, len(blocks)) for v in range(starts[i], starts[i + 1])
             for u in range(0, starts[i])]
    return StaticGraph(int(starts[-1]), edges, range(starts[0], starts[1]), range(starts[-2], starts[-1]))


# --- the tiny classifier ------------------------------------------------------------------------------

class Edges(nn.Module):
    """The weights of every possible edge of a population of graphs: ``weight`` ``(runs, n_edges)``.

    The wiring in use is the weight function attached to ``weight`` (see the module docstring).
    """

    def __init__(self, runs: int, num_edges: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(runs, num_edges))


class Stem(nn.Module):
    """DNW's downsampling stem per run: conv3×3/2 (C→c/2), BN, ReLU, depthwise 3×3/2, conv1×1 (→c), BN.

    Input in the grouped layout ``(B, runs·C, H, W)`` or shared ``(B, C, H, W)``; output
    ``(B, runs·c, ⌈H/4⌉, ⌈W/4⌉)``: the values of the ``c`` input nodes of every run.
    """

    def __init__(self, runs: int, in_channels: int, channels: int):
        super().__init__()
        half = max(1, channels // 2)
        self.runs, self.in_channels, self.half, self.channels = runs, in_channels, half, channels
        self.conv1 = nn.Parameter(torch.zeros(runs, half, in_channels, 3, 3))
        self.bias1 = nn.Parameter(torch.zeros(runs, half))
        self.bn1 = nn.BatchNorm2d(runs * half)
        self.dw = nn.Parameter(torch.zeros(runs, half, 1, 3, 3))
        self.pw = nn.Parameter(torch.zeros(runs, channels, half, 1, 1))
        self.bn2 = nn.BatchNorm2d(runs * channels)

    def forward(self, x: Tensor) -> Tensor:
        groups = self.runs if x.shape[1] == self.runs * self.in_channels and self.runs > 1 else 1
        x = F.conv2d(x, self.conv1.reshape(-1, self.in_channels, 3, 3), self.bias1.reshape(-1),
                     stride=2, padding=1, groups=groups)
        x = F.relu(self.bn1(x))
        x = F.conv2d(x, self.dw.reshape(-1, 1, 3, 3), stride=2, padding=1, groups=self.runs * self.half)
        x = F.conv2d(x, self.pw.reshape(-1, self.half, 1, 1), groups=self.runs)
        return self.bn2(x)


class GraphClassifier(nn.Module):
    """A population of tiny classifiers built on one :class:`StaticGraph` (Wortsman et al., Table 1).

    stem (input nodes) → graph (node op: InstanceNorm(affine) + ReLU + 3×3 depthwise conv; the
    output nodes have no op) → global average pool of the output nodes → linear. ``input_pool`` > 1
    first average-pools the images by that factor (a cheaper graph on CPU). Input
    ``(B, *image_shape)`` / ``(B, prod(image_shape))`` shared by all runs, or with a leading run dim;
    output logits ``(runs, B, classes)``. Differences from DNW's code: a general DAG instead of fixed
    block sizes, global average pooling instead of pooling the central 3×3 window.
    """

    def __init__(self, runs: int, graph: StaticGraph, image_shape: Sequence[int] = (1, 28, 28), classes: int = 10,
                 input_pool: int = 1):
        super().__init__()
        self.runs, self.graph, self.image_shape = runs, graph, tuple(int(s) for s in image_shape)
        if int(input_pool) != input_pool or input_pool < 1:
            raise ValueError(f"input_pool must be an integer ≥ 1, got {input_pool}")
        self.input_pool = int(input_pool)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (channels, height, width), got {image_shape}")
        n = graph.num_nodes
        self.stem = Stem(runs, self.image_shape[0], len(graph.inputs))
        self.edges = Edges(runs, graph.num_edges)
        self.norm_weight = nn.Parameter(torch.ones(runs, n))
        self.norm_bias = nn.Parameter(torch.zeros(runs, n))
        self.node_conv = nn.Parameter(torch.zeros(runs, n, 1, 3, 3))
        self.fc = models.StackedLinear(runs, len(graph.outputs), classes)
        self._levels = [torch.tensor(lvl) for lvl in graph.levels]
        self._outputs = torch.tensor(graph.outputs)

    def reset_parameters(self, seeds: Sequence[int]) -> "GraphClassifier":
        """Run i drawn from a generator seeded with seeds[i]: edges N(0, 1/num_nodes) (one scale for all
        edges, as DNW's 1×1 conv over all nodes), convs He-normal, norms identity, zero biases."""
        if len(seeds) != self.runs:
            raise ValueError(f"need {self.runs} seeds, got {len(seeds)}")
        n = self.graph.num_nodes
        with torch.no_grad():
            for i, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(int(seed))
                normal = lambda shape, std: torch.randn(shape, generator=g) * std  # noqa: E731
                weightfn.stored(self.edges)[i].copy_(normal((self.graph.num_edges,), 1 / math.sqrt(n)))
                self.stem.conv1[i].copy_(normal(self.stem.conv1.shape[1:], math.sqrt(2 / (9 * self.stem.in_channels))))
                self.stem.dw[i].copy_(normal(self.stem.dw.shape[1:], math.sqrt(2 / 9)))
                self.stem.pw[i].copy_(normal(self.stem.pw.shape[1:], math.sqrt(2 / self.stem.half)))
                self.node_conv[i].copy_(normal(self.node_conv.shape[1:], math.sqrt(2 / 9)))
                fc = self.fc.weight[i]
                fc.copy_(models.glorot_normal_(torch.empty(fc.shape), fc.shape[1], fc.shape[0], g))
            for p in (self.stem.bias1, self.norm_bias, self.fc.bias):
                p.zero_()
            self.norm_weight.fill_(1.0)
        return self

    def _images(self, x: Tensor) -> Tensor:
        c, h, w = self.image_shape
        flat = c * h * w
        if x.shape[-1] == flat and x.dim() in (2, 3):
            x = x.reshape(*x.shape[:-1], c, h, w)
        if x.shape[-3:] != (c, h, w) or x.dim() not in (4, 5):
            raise ValueError(f"expected images {self.image_shape} (or flattened, {flat}), optionally with a "
                             f"leading run dim, got {tuple(x.shape)}")
        if x.dim() == 5 and x.shape[0] != self.runs:
            raise ValueError(f"input has {x.shape[0]} runs, the model {self.runs}")
        x = models.to_grouped(x)
        return F.avg_pool2d(x, self.input_pool) if self.input_pool > 1 else x

    def _node_op(self, value: Tensor, nodes: Tensor) -> Tensor:
        """InstanceNorm(affine) + ReLU + depthwise 3×3 conv of ``value`` ``(B, runs, k, H, W)``."""
        b, r, k, h, w = value.shape
        x = value.reshape(b, r * k, h, w)
        x = F.instance_norm(x, weight=self.norm_weight[:, nodes].reshape(-1), bias=self.norm_bias[:, nodes].reshape(-1))
        x = F.relu(x)
        x = F.conv2d(x, self.node_conv[:, nodes].reshape(-1, 1, 3, 3), padding=1, groups=r * k)
        return x.reshape(b, r, k, h, w)

    def forward(self, x: Tensor, edge_values: Tensor | None = None) -> Tensor:
        """Logits ``(runs, B, classes)``. ``edge_values`` ``(runs, n_edges)`` overrides the effective edge
        weights (e.g. the previous wiring, to measure what a swap changed)."""
        w = self.edges.weight if edge_values is None else edge_values
        adj = self.graph.adjacency(w)  # (runs, n, n), [dst, src]
        h = self.stem(self._images(x))
        b, r = h.shape[0], self.runs
        values = [self._node_op(h.reshape(b, r, len(self.graph.inputs), *h.shape[-2:]), self._levels[0])]
        done = [self._levels[0]]
        for nodes in [*self._levels[1:], self._outputs]:
            src = torch.cat(done)
            sub = adj[:, nodes][:, :, src]  # (runs, k, m)
            agg = torch.einsum("rvu,bruhw->brvhw", sub, torch.cat(values, 2))
            if nodes is self._outputs:
                pooled = agg.mean(dim=(-2, -1))  # (B, runs, k_out)
                return self.fc(pooled.transpose(0, 1).contiguous())
            values.append(self._node_op(agg, nodes))
            done.append(nodes)
        raise AssertionError("unreachable")


def build_classifier(graph: StaticGraph, seeds: Sequence[int], image_shape: Sequence[int] = (1, 28, 28),
                     classes: int = 10, input_pool: int = 1) -> GraphClassifier:
    """A population of ``len(seeds)`` tiny classifiers, run i initialised from seeds[i]."""
    if len(seeds) < 1:
        raise ValueError("a population needs at least one seed")
    return GraphClassifier(len(seeds), graph, image_shape, classes, input_pool).reset_parameters(seeds)


# --- choosing edges -----------------------------------------------------------------------------------

def random_mask(runs_seeds: Sequence[int], shape: Sequence[int], fraction_kept: float) -> Tensor:
    """A fixed, uniformly random 0/1 mask per run, ``(runs, *shape)``, keeping exactly as many entries
    per run as :class:`~lotterylib.weightfn.TopKMagnitude` keeps (``round(fraction_kept · n)``); run i's
    draw comes from a generator seeded with ``runs_seeds[i]`` alone."""
    scores = torch.stack([torch.rand(tuple(shape), generator=torch.Generator().manual_seed(int(s))) for s in runs_seeds])
    return weightfn.topk_mask(scores, fraction_kept)


def random_edge_mask(runs_seeds: Sequence[int], num_edges: int, fraction_kept: float) -> Tensor:
    """A fixed random edge set per run, of exactly the size DNW keeps: ``(runs, num_edges)`` 0/1."""
    return random_mask(runs_seeds, (num_edges,), fraction_kept)


def attach_variant(model: GraphClassifier, variant: str, fraction_kept: float, mask: Tensor | None = None) -> GraphClassifier:
    """Attach the weight function of ``variant`` (see :data:`VARIANTS`) to the model's edges.

    ``random`` and ``lottery`` need ``mask`` ``(runs, n_edges)``; their stored pruned weights are zeroed.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant == "dense":
        return model
    if variant == "dnw":
        weightfn.attach(model.edges, weightfn.TopKMagnitude(fraction_kept))
    elif variant == "no_update":
        weightfn.attach(model.edges, weightfn.TopKMagnitudeNoUpdate(fraction_kept))
    else:
        if mask is None:
            raise ValueError(f"variant {variant!r} needs a fixed edge mask")
        w = weightfn.stored(model.edges)
        if mask.shape != w.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != edge weights {tuple(w.shape)}")
        with torch.no_grad():
            w.mul_(mask.to(w))
        weightfn.attach(model.edges, weightfn.Masked(mask))
    return model


def chosen_edges(model: GraphClassifier) -> Tensor:
    """Which edges the current forward pass uses: ``(runs, n_edges)`` bool (effective weight ≠ 0)."""
    with torch.no_grad():
        return model.edges.weight.detach() != 0


class SwapRecorder:
    """Watches the wiring while a population trains: pass it as ``train(..., after_step=recorder)``.

    ``swaps``: per step and run, how many edges entered the wiring (as many left), ``(steps, runs)``.
    ``snapshots``: the chosen edges every ``snapshot_every`` steps (and at step 0), ``(S, runs, n_edges)``
    bool, at iterations ``snapshot_steps``.
    """

    def __init__(self, model: GraphClassifier, snapshot_every: int = 0):
        if snapshot_every < 0:
            raise ValueError(f"snapshot_every must be ≥ 0, got {snapshot_every}")
        self.snapshot_every = snapshot_every
        self.previous = chosen_edges(model).cpu()
        self.swaps: list[Tensor] = []
        self.snapshots: list[Tensor] = [self.previous.clone()]
        self.snapshot_steps: list[int] = [0]

    def __call__(self, model: nn.Module) -> None:
        current = chosen_edges(model).cpu()  # type: ignore[arg-type]
        self.swaps.append((current & ~self.previous).sum(1))
        self.previous = current
        step = len(self.swaps)
        if self.snapshot_every and step % self.snapshot_every == 0:
            self.snapshots.append(current.clone())
            self.snapshot_steps.append(step)

    def swaps_array(self) -> np.ndarray:
        """``(steps, runs)`` int array of edges swapped in at each step."""
        if not self.swaps:
            return np.zeros((0, self.previous.shape[0]), dtype=np.int64)
        return torch.stack(self.swaps).numpy().astype(np.int64)


def swaps_per_epoch(swaps: np.ndarray, steps_per_epoch: int) -> np.ndarray:
    """Sum per-step swaps ``(steps, runs)`` over whole epochs → ``(epochs, runs)`` (a last partial epoch counts)."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be ≥ 1, got {steps_per_epoch}")
    swaps = np.asarray(swaps)
    epochs = -(-swaps.shape[0] // steps_per_epoch)
    pad = epochs * steps_per_epoch - swaps.shape[0]
    padded = np.concatenate([swaps, np.zeros((pad, *swaps.shape[1:]), swaps.dtype)])
    return padded.reshape(epochs, steps_per_epoch, *swaps.shape[1:]).sum(1)


# --- experiments ----------------------------------------------------------------------------------------

def subset(data: Dataset, train_size: int | None = None, eval_size: int | None = None) -> Dataset:
    """The first ``train_size`` training and ``eval_size`` validation/test images (None: all)."""
    cut = lambda s, k: s if k is None else Split(s.x[:k], s.y[:k])  # noqa: E731
    return Dataset(data.name, cut(data.train, train_size), cut(data.val, eval_size), cut(data.test, eval_size),
                   data.num_classes, data.input_shape, data.note)


def image_shape_of(data: Dataset) -> tuple[int, int, int]:
    return (1, 28, 28) if tuple(data.input_shape) == (784,) else tuple(data.input_shape)  # type: ignore[return-value]


@dataclass(frozen=True)
class GraphConfig:
    """One population of tiny graph classifiers: a variant of the wiring, all seeds trained at once.

    ``blocks``: node counts (inputs, hidden blocks…, outputs) of the complete DAG. ``fraction_kept``:
    fraction of the possible edges in use (DNW: 0.05, i.e. ``prune_rate`` 0.95). ``train_size`` /
    ``eval_size``: cut the data (None: all). ``snapshot_every``: record the wiring every so many steps.
    ``input_pool``: average-pool the images by this factor before the stem.
    """

    dataset: str = "mnist"
    variant: str = "dnw"
    blocks: tuple[int, ...] = (32, 192, 192, 192, 192, 100)
    fraction_kept: float = 0.05
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        iterations=15_680, batch_size=512, optimizer="sgd", lr=0.1, weight_decay=1e-4, eval_every=980))
    seeds: tuple[int, ...] = (0, 1, 2)
    train_size: int | None = None
    eval_size: int | None = None
    snapshot_every: int = 0
    input_pool: int = 1

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if not 0.0 < self.fraction_kept <= 1.0:
            raise ValueError(f"fraction_kept (fraction of edges kept) must be in (0, 1], got {self.fraction_kept}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        check_blocks(self.blocks)


@dataclass
class GraphRun:
    """The outcome of one :class:`GraphConfig`: curves, per-step swaps, wiring snapshots, edge weights."""

    config: GraphConfig
    history: History
    swaps: np.ndarray  # (steps, runs)
    snapshots: Tensor  # (S, runs, n_edges) bool
    snapshot_steps: list[int]
    init_edges: Tensor  # (runs, n_edges) stored weights at init
    final_edges: Tensor  # (runs, n_edges) stored weights after training
    steps_per_epoch: int
    seconds: float = 0.0

    @property
    def graph(self) -> StaticGraph:
        return complete_dag(self.config.blocks)


def graph_init_seeds(config: GraphConfig) -> list[int]:
    """Init seeds: the same for every variant, so variants of a seed start from the same network."""
    return [derive(s, "graph-init") for s in config.seeds]


def graph_data_seeds(config: GraphConfig) -> list[int]:
    return [derive(s, "graph-data") for s in config.seeds]


def lottery_mask(final_dense_edges: Tensor, fraction_kept: float) -> Tensor:
    """Lottery one-shot: the top-``fraction_kept`` edges of the trained dense graph by |w|, per run."""
    return weightfn.topk_mask(final_dense_edges.abs(), fraction_kept)


def run_graph(config: GraphConfig, data: Dataset, *, cache: ResultCache | None = None,
              device: str | torch.device = "cpu", progress: bool = True) -> GraphRun:
    """Train (or load from the cache) one population of graph classifiers. ``data``: the full dataset."""
    cache = cache or ResultCache()
    with cache.lock(config, "wiring"):
        entry = cache.get(config, "wiring")
        if entry is not None:
            return _run_from_entry(config, entry)
        return _train_graph(config, data, cache, device, progress)


def _train_graph(config: GraphConfig, data: Dataset, cache: ResultCache, device, progress) -> GraphRun:
    graph = complete_dag(config.blocks)
    cut = subset(data, config.train_size, config.eval_size)
    model = build_classifier(graph, graph_init_seeds(config), image_shape_of(cut), cut.num_classes, config.input_pool)
    init = weightfn.stored(model.edges).detach().clone()
    mask = None
    if config.variant == "random":
        mask = random_edge_mask([derive(s, "random-graph") for s in config.seeds], graph.num_edges, config.fraction_kept)
    elif config.variant == "lottery":
        # The dense population of the same config, snapshots included: the recorder only watches, so
        # it is the very run the "dense" variant stores, and one training serves both.
        dense = run_graph(dataclasses.replace(config, variant="dense"), data, cache=cache,
                          device=device, progress=progress)
        mask = lottery_mask(dense.final_edges, config.fraction_kept)
    attach_variant(model, config.variant, config.fraction_kept, mask)
    model.to(device)
    recorder = SwapRecorder(model, config.snapshot_every)
    start = time.time()
    history = train(model, cut, config.train, graph_data_seeds(config), device=device,
                    progress=f"graph {config.variant}" if progress else False, after_step=recorder)
    seconds = time.time() - start
    run = GraphRun(config, history, recorder.swaps_array(), torch.stack(recorder.snapshots), recorder.snapshot_steps,
                   init.cpu(), weightfn.stored(model.edges).detach().cpu().clone(),
                   len(cut.train) // config.train.batch_size, seconds)

    def write(w):
        w.json({"history": history.to_json(), "snapshot_steps": run.snapshot_steps,
                "steps_per_epoch": run.steps_per_epoch, "seconds": seconds})
        w.tensors({"swaps": torch.from_numpy(run.swaps), "snapshots": run.snapshots,
                   "init_edges": run.init_edges, "final_edges": run.final_edges})
    cache.put(config, write, "wiring", provenance=provenance(device, seconds))
    return run


def _run_from_entry(config: GraphConfig, entry) -> GraphRun:
    meta, state = entry.json(), entry.tensors()
    return GraphRun(config, History.from_json(meta["history"]), state["swaps"].numpy(), state["snapshots"],
                    list(meta["snapshot_steps"]), state["init_edges"], state["final_edges"],
                    int(meta["steps_per_epoch"]), float(meta.get("seconds", 0.0)))


def trained_classifier(run: GraphRun, image_shape: Sequence[int], classes: int = 10) -> GraphClassifier:
    """Rebuild the trained population of a :class:`GraphRun`'s edges for inspection (untrained node ops)."""
    model = build_classifier(run.graph, graph_init_seeds(run.config), image_shape, classes)
    with torch.no_grad():
        weightfn.stored(model.edges).copy_(run.final_edges)
    return model


# --- the edge-swap argument in numbers -----------------------------------------------------------------

@dataclass(frozen=True)
class SwapLossConfig:
    """The paper's small problem for the swap argument: one layer of nodes (the 10 class logits), each
    wired to input nodes (the pixels of images average-pooled by ``pool``), ``fraction_kept`` of the
    edges in use; full-batch gradient descent (no momentum) on ``examples`` images at step size ``lr``.
    """

    dataset: str = "mnist"
    pool: int = 2
    fraction_kept: float = 0.1
    examples: int = 1000
    steps: int = 300
    lr: float = 0.1
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.fraction_kept < 1.0:
            raise ValueError(f"fraction_kept must be in (0, 1), got {self.fraction_kept}")
        if self.steps < 1 or self.examples < 1 or self.pool < 1 or not self.lr > 0:
            raise ValueError(f"steps, examples, pool must be ≥ 1 and lr > 0: {self}")


def swap_loss(config: SwapLossConfig, data: Dataset, *, cache: ResultCache | None = None) -> dict:
    """The swap argument of Wortsman et al. (§3) measured: when an edge swaps in, does the loss drop?

    Every step records the batch loss before the step (``loss_before``), after it (``loss_after``),
    and after it with the previous step's wiring kept (``loss_kept_wiring``: the same new weights,
    masked to the old edge set), so ``loss_after − loss_kept_wiring`` is what the swaps themselves did;
    ``swapped`` counts the edges that entered. The wiring is :class:`~lotterylib.weightfn.TopKMagnitude`
    on a :class:`~lotterylib.models.StackedLinear` layer. Returns lists of length ``steps`` (JSON).
    """
    cache = cache or ResultCache()

    def compute() -> dict:
        images = data.train.x[:config.examples]
        side = int(round(math.sqrt(images.shape[-1]))) if images.dim() == 2 else None
        x = images.reshape(-1, 1, side, side) if side else images
        x = F.avg_pool2d(x, config.pool).flatten(1)
        y = data.train.y[:config.examples]
        layer = models.StackedLinear(1, x.shape[1], data.num_classes)
        g = torch.Generator().manual_seed(derive(config.seed, "swap-init"))
        models.glorot_normal_(layer.weight, x.shape[1], data.num_classes, g)
        weightfn.attach(layer, weightfn.TopKMagnitude(config.fraction_kept))
        opt = torch.optim.SGD(layer.parameters(), lr=config.lr)
        stored = weightfn.stored(layer)

        def loss_with(weight: Tensor | None = None) -> Tensor:
            w = layer.weight if weight is None else weight
            return F.cross_entropy(F.linear(x, w[0], layer.bias[0]), y)

        before, after, kept, swapped = [], [], [], []
        for _ in range(config.steps):
            old = layer.weight.detach() != 0
            loss = loss_with()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                new = layer.weight.detach() != 0
                entered = int((new & ~old).sum())
                loss_new = float(loss_with())
                loss_old = float(loss_with(stored * old)) if entered else loss_new
            before.append(float(loss.detach()))
            after.append(loss_new)
            kept.append(loss_old)
            swapped.append(entered)
        return {"loss_before": before, "loss_after": after, "loss_kept_wiring": kept, "swapped": swapped}

    return cache.memoize_json(config, compute, "wiring-swap", provenance=functools.partial(provenance, data.train.x.device))


def swap_statistics(result: dict) -> dict:
    """Summary of :func:`swap_loss`: at steps with a swap, how often the swap itself lowered the loss."""
    before, after, kept = (np.asarray(result[k]) for k in ("loss_before", "loss_after", "loss_kept_wiring"))
    swapped = np.asarray(result["swapped"]) > 0
    effect = after - kept
    return {"steps": int(len(before)), "swap_steps": int(swapped.sum()),
            "swap_lowered_loss": float(np.mean(effect[swapped] < 0)) if swapped.any() else float("nan"),
            "mean_swap_effect": float(effect[swapped].mean()) if swapped.any() else float("nan"),
            "step_lowered_loss_at_swaps": float(np.mean((after - before)[swapped] < 0)) if swapped.any() else float("nan"),
            "loss_first": float(before[0]), "loss_last": float(after[-1])}


# --- DNW as sparse training ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SparseTrainingConfig:
    """DNW's top-k straight-through on the weights of an ordinary network vs the LT ticket and dense.

    ``lottery``: the IMP experiment that gives the dense net (round 0) and the ticket; its per-round
    rates are set so that ``imp_rounds`` rounds keep ``fraction_kept`` of every layer. DNW trains from
    the same θ₀ with the same data order and iterations as one IMP round (equal budget per run), and
    so does the control at equal sparsity: a **static random mask** keeping the same number of
    weights in every layer (:func:`random_mask`), which a DNW whose mask never moved would match.
    """

    lottery: "object"  # a lotterylib.lottery.LotteryConfig (typed loosely to avoid an import cycle)
    fraction_kept: float = 0.1
    imp_rounds: int = 2

    def __post_init__(self):
        if not 0.0 < self.fraction_kept < 1.0:
            raise ValueError(f"fraction_kept (fraction of weights kept) must be in (0, 1), got {self.fraction_kept}")
        if self.imp_rounds < 1:
            raise ValueError(f"imp_rounds must be ≥ 1, got {self.imp_rounds}")


def imp_rate_for(fraction_kept: float, rounds: int) -> float:
    """Per-round fraction pruned p with (1 − p)^rounds = fraction_kept."""
    if not 0.0 < fraction_kept <= 1.0 or rounds < 1:
        raise ValueError(f"need fraction_kept in (0, 1] and rounds ≥ 1, got {fraction_kept}, {rounds}")
    return 1.0 - fraction_kept ** (1.0 / rounds)


@dataclass(frozen=True)
class _DNWSparse:
    """Cache key of the DNW run of a :class:`SparseTrainingConfig`."""

    sparse: SparseTrainingConfig


@dataclass(frozen=True)
class _RandomSparse:
    """Cache key of the static random-mask control of a :class:`SparseTrainingConfig`."""

    sparse: SparseTrainingConfig


@dataclass
class SparseRun:
    """Curves of the sparse-training comparison: ``histories`` has ``dense``, ``ticket``, ``dnw`` and
    ``random`` (the static random mask); ``*_fraction_kept``: the fraction of weights each sparse
    variant used in its last forward pass."""

    histories: dict[str, History]
    ticket_weights_remaining: float
    dnw_fraction_kept: float
    random_fraction_kept: float


def sparse_random_masks(config: SparseTrainingConfig, model: models.PopulationModel) -> dict[str, Tensor]:
    """The static random control's masks: per layer and run, ``fraction_kept`` of the weights at random."""
    return {name: random_mask([derive(s, "sparse-random", name) for s in config.lottery.seeds],
                              weightfn.stored(layer).shape[1:], config.fraction_kept)
            for name, layer in model.prunable().items()}


def run_sparse_training(config: SparseTrainingConfig, data: Dataset, *, cache: ResultCache | None = None,
                        device: str | torch.device = "cpu", progress: bool = True) -> SparseRun:
    """Train (or load) ``dense`` (IMP round 0), ``ticket`` (IMP round ``imp_rounds``), ``dnw`` and the
    static random mask ``random``, seeds on rows; the last two from θ₀ with round 0's data order."""
    from . import lottery
    cache = cache or ResultCache()
    lc = config.lottery
    rounds = lottery.run_imp(lc, data, config.imp_rounds, cache=cache, device=device, progress=progress)

    def sparse_run(variant: str) -> dict:
        model = models.build(lc.model, lottery.init_seeds(lc))
        if variant == "dnw":
            for layer in model.prunable().values():
                weightfn.attach(layer, weightfn.TopKMagnitude(config.fraction_kept))
        else:
            masks.attach_masks(model, sparse_random_masks(config, model))
        history = train(model, data, lc.train, lottery.data_seeds(lc, 0), device=device,
                        progress=f"{variant} sparse" if progress else False)
        with torch.no_grad():
            kept = sum(float((layer.weight != 0).sum()) for layer in model.prunable().values())
        total = sum(weightfn.stored(layer).numel() for layer in model.prunable().values())
        return {"history": history.to_json(), "fraction_kept": kept / total}

    made = {v: cache.memoize_json(key(config), functools.partial(sparse_run, v), "wiring-sparse",
                                  provenance=functools.partial(provenance, device))
            for v, key in (("dnw", _DNWSparse), ("random", _RandomSparse))}
    histories = {"dense": rounds[0].histories["ticket"], "ticket": rounds[-1].histories["ticket"],
                 **{v: History.from_json(m["history"]) for v, m in made.items()}}
    return SparseRun(histories, float(rounds[-1].weights_remaining), float(made["dnw"]["fraction_kept"]),
                     float(made["random"]["fraction_kept"]))


def sparse_lottery_config(fraction_kept: float, rounds: int, **kw) -> "object":
    """A LotteryConfig whose IMP keeps ``fraction_kept`` of every layer (output included) after ``rounds``."""
    from .lottery import LotteryConfig
    p = imp_rate_for(fraction_kept, rounds)
    return LotteryConfig(rate_fc=p, rate_conv=p, rate_output=p, controls=(), **kw)

