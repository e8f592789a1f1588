"""Binary and low-bit networks: BinaryConnect, BWN, XNOR-Net and DoReFa-Net, as weight functions.

Every method is a pair (what the weights become, what the activations become):

=============  ===========================  ===========================  =================================
method         weights (weight function)    activations (module)         paper
=============  ===========================  ===========================  =================================
``fp``         W                            x                            full-precision baseline
``bc``         sign(W)                      x                            BinaryConnect, deterministic
``bc_stoch``   ±1 ~ hard_sigmoid(W)         x                            BinaryConnect, stochastic
``bwn``        α·sign(W), α = mean|W|       x                            Binary-Weight-Network (XNOR §3.1)
``bwn_learned`` α·sign(W), α learned         x                            BWN, α "a separate layer" (Table 3a)
``xnor``       α·sign(W)                    sign(x)                      XNOR-Net as the official code
``xnor_unscaled`` sign(W)                   sign(x)                      XNOR-Net with α = 1 (no scaling)
``xnor_k``     α·sign(W)                    sign(x), output ⊙ K          XNOR-Net with the paper's K = A∗k
``dorefa<k>``  k-bit DoReFa weights         k-bit quantize(clip(x,0,1))  DoReFa-Net W k / A k
``dorefa_w…``  DoReFa's W/A/G grid: one of weights, activations or gradients at 2 bits  (:data:`DOREFA_WAG`)
=============  ===========================  ===========================  =================================

``xnor_unscaled`` is XNOR-Net without its scaling factors — its block order, its full-precision first
and last layers — and *not* the BNN of Hubara, Courbariaux et al. (2016), whose MLP / ConvNet, Htanh,
optional shift-based BatchNorm and AdaMax it does not reproduce; XNOR-Net's Table 1 "BNN" row is that
method, run by Rastegari et al., not an ablation of theirs.

The weights are made by :mod:`lotterylib.weightfn` (``SignScale``, ``LearnedScale``,
``StochasticSign``, ``DoReFaWeight``) attached to the layers with ``weightfn.attach``; the activations
by :func:`binarize_activations` / :func:`quantize_activations`, which use the same
``weightfn.straight_through`` block: the sign (or rounding) forward, the identity (or the rounding's
identity) backward, cancelled where |x| > 1 (BNN's Htanh, XNOR's ``BinActiveZ``; passed at |x| ≤ 1
inclusive, :func:`~lotterylib.weightfn.ste_sign`).

DoReFa-Net also quantises gradients: :func:`quantize_gradient` is the identity forward and, backward,
the authors' ``fg`` (:func:`dorefa_gradient`: each example's gradient scaled by its max |g|, uniform noise
of ± half a level, k bits, rescaled); a method with ``grad_bits < 32`` puts it on the output of every
binarised layer, where the authors' code applies ``fg`` (after the conv, before the BatchNorm).

Networks use XNOR-Net's block order (``order="bacp"``), **BatchNorm → binarise → conv/linear → ReLU →
pool**, or the typical block of Table 3b (``order="cbap"``), **conv/linear → BatchNorm → activation →
pool**, and keep the first and last layers in full precision unless ``binarize_first_last=True``.
A :class:`Recipe` fixes what else a paper's setup needs (``"binaryconnect"``: Courbariaux et al.'s
initialisation, per-layer learning rates and test-time weights). All models are
*populations* (dim 0 = independent runs) built from :class:`~lotterylib.models.StackedConv2d` /
:class:`~lotterylib.models.StackedLinear`, so 3 seeds of a method train as one model with
:func:`lotterylib.train.train`; BatchNorm on the grouped layout is per run by construction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import bitpack, weightfn
from .models import PopulationModel, StackedConv2d, StackedLinear, conv_fc_forward, from_grouped, to_grouped
from .pooling import max_pool2x2
from .seeds import derive
from .train import TrainConfig
from .weightfn import straight_through

# --- activations ---------------------------------------------------------------------------------

def binarize_activations(x: Tensor) -> Tensor:
    """sign(x) forward (sign(0) = +1); backward the gradient passed where |x| ≤ 1 (inclusive), zero
    elsewhere: :func:`lotterylib.weightfn.ste_sign`, the binarisation the weights use too."""
    return weightfn.ste_sign(x)


def quantize_activations(x: Tensor, bits: int) -> Tensor:
    """DoReFa activations: round((2^k − 1)·clip(x, 0, 1)) / (2^k − 1), rounding straight-through."""
    if int(bits) != bits or not 1 <= bits <= 16:
        raise ValueError(f"activation bit width must be an integer in [1, 16], got {bits}")
    levels = 2 ** int(bits) - 1
    clipped = x.clamp(0.0, 1.0)
    return straight_through(torch.round(clipped.detach() * levels) / levels, clipped)


class Activation(nn.Module):
    """``kind``: ``"fp"`` (identity), ``"sign"`` (:func:`binarize_activations`) or ``"dorefa"`` (``bits``)."""

    def __init__(self, kind: str = "fp", bits: int = 1):
        super().__init__()
        if kind not in ("fp", "sign", "dorefa"):
            raise ValueError(f"unknown activation kind {kind!r}; choose fp, sign or dorefa")
        self.kind, self.bits = kind, int(bits)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "sign":
            return binarize_activations(x)
        if self.kind == "dorefa":
            return quantize_activations(x, self.bits)
        return x

    def extra_repr(self) -> str:
        return self.kind if self.kind != "dorefa" else f"dorefa, bits={self.bits}"


# --- gradients (DoReFa-Net) ----------------------------------------------------------------------

def dorefa_gradient(grad: Tensor, bits: int, noise: Tensor, example_dims: int = 1) -> Tensor:
    """DoReFa-Net's k-bit gradient, as the authors' code computes it (tensorpack
    ``examples/DoReFa-Net/dorefa.py``, ``grad_fg``; the paper's eq. for f_G^k, with a clip).

    Per example (the ``example_dims`` leading dims index examples; the max is over the rest), with
    m = max|g| and n = 2^k − 1: r = g / m · ½ + ½ ∈ [0, 1], plus ``noise`` / n, clipped to [0, 1],
    rounded to k bits (round(n·r) / n), and mapped back: 2·m·(q − ½). So the result takes the 2^k values
    m·(2i/n − 1), i = 0 … n (no zero level: ±m for k = 1), and with uniform ``noise`` its expectation is
    the gradient wherever the clip does not bite. ``noise``: shaped like ``grad``, uniform in [−½, ½)
    (one quantisation level wide). An example whose gradient is all zero stays zero (the authors'
    code would divide 0 by 0 there).
    """
    if int(bits) != bits or not 1 <= bits <= 16:
        raise ValueError(f"gradient bit width must be an integer in [1, 16], got {bits}")
    if noise.shape != grad.shape:
        raise ValueError(f"noise {tuple(noise.shape)} must be shaped like the gradient {tuple(grad.shape)}")
    if not 1 <= example_dims <= grad.dim():
        raise ValueError(f"example_dims must be in [1, {grad.dim()}], got {example_dims}")
    n = float(2 ** int(bits) - 1)
    dims = tuple(range(example_dims, grad.dim()))
    m = grad.abs().amax(dim=dims, keepdim=True) if dims else grad.abs()
    safe = torch.where(m > 0, m, torch.ones_like(m))
    r = (grad / safe * 0.5 + 0.5 + noise / n).clamp(0.0, 1.0)
    q = torch.round(r * n) / n - 0.5
    return torch.where(m > 0, q * safe * 2.0, torch.zeros_like(grad))


class _QuantizedGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, bits: int, draw_noise, example_dims: int) -> Tensor:  # type: ignore[override]
        ctx.bits, ctx.draw_noise, ctx.example_dims = bits, draw_noise, example_dims
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return dorefa_gradient(grad, ctx.bits, ctx.draw_noise(grad), ctx.example_dims), None, None, None


def uniform_level_noise(grad: Tensor) -> Tensor:
    """Uniform noise in [−½, ½) shaped like ``grad``, from the global generator (see :class:`GradientQuantizer`
    for per-run generators)."""
    return torch.rand_like(grad) - 0.5


def quantize_gradient(x: Tensor, bits: int, draw_noise=uniform_level_noise, example_dims: int = 1) -> Tensor:
    """The identity forward; backward, the gradient through it becomes :func:`dorefa_gradient` (DoReFa's
    ``fg``: ``tf.identity`` with the gradient ``FGGrad``). ``draw_noise(grad)`` gives the noise of each
    backward pass; ``example_dims``: the leading dims of ``x`` that index examples."""
    if int(bits) != bits or not 1 <= bits <= 16:
        raise ValueError(f"gradient bit width must be an integer in [1, 16], got {bits}")
    return _QuantizedGradient.apply(x, int(bits), draw_noise, example_dims)


class GradientQuantizer(nn.Module):
    """DoReFa's ``fg`` on a population's layer output: each run's gradient quantised per example.

    ``grouped``: the output is a conv population's grouped layout (B, N·C, H, W), else a linear one's
    (N, B, F). The max |g| is taken per (run, example); the noise of run i comes from its own generator
    (seeded from ``seeds[i]``, :class:`~lotterylib.weightfn.RunGenerators`), so run i draws the same
    noise whether it trains alone or stacked with others.
    """

    def __init__(self, bits: int, seeds: Sequence[int], grouped: bool):
        super().__init__()
        if int(bits) != bits or not 1 <= bits <= 16:
            raise ValueError(f"gradient bit width must be an integer in [1, 16], got {bits}")
        self.bits, self.grouped, self.runs = int(bits), grouped, len(seeds)
        self.rng = weightfn.RunGenerators(seeds)

    def _noise_grouped(self, grad: Tensor) -> Tensor:  # grad (B, N, C, H, W)
        gens = self.rng.generators(grad.device)
        shape = (grad.shape[0], *grad.shape[2:])
        return torch.stack([torch.rand(shape, generator=g, device=grad.device, dtype=grad.dtype) for g in gens], 1) - 0.5

    def _noise_runs(self, grad: Tensor) -> Tensor:  # grad (N, B, F)
        gens = self.rng.generators(grad.device)
        return torch.stack([torch.rand(grad.shape[1:], generator=g, device=grad.device, dtype=grad.dtype)
                            for g in gens]) - 0.5

    def forward(self, x: Tensor) -> Tensor:
        if self.grouped:
            b, nc, h, w = x.shape
            y = quantize_gradient(x.reshape(b, self.runs, nc // self.runs, h, w), self.bits, self._noise_grouped, 2)
            return y.reshape(b, nc, h, w)
        if x.dim() != 3 or x.shape[0] != self.runs:
            raise ValueError(f"expected a linear population's output ({self.runs}, B, F), got {tuple(x.shape)}")
        return quantize_gradient(x, self.bits, self._noise_runs, 2)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, runs={self.runs}, {'grouped conv' if self.grouped else 'linear'} layout"


# --- methods -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Method:
    """What a binarised layer does. ``weights``: fp | sign | stoch | bwn | learned (α a parameter) | dorefa;
    ``activations``: fp | sign | dorefa; ``input_scale``: multiply by XNOR's K; ``bits``: DoReFa
    width (of the weights and activations it quantises); ``clip``: clip the real weights to [−1, 1] after
    each step (BinaryConnect, BNN, the XNOR PyTorch code); ``center``: subtract the mean over input
    channels first (XNOR reference code); ``grad_bits``: DoReFa's k-bit gradients on the layer's
    output (:class:`GradientQuantizer`; 32 = float gradients)."""

    weights: str = "fp"
    activations: str = "fp"
    input_scale: bool = False
    bits: int = 32
    clip: bool = False
    center: bool = False
    grad_bits: int = 32

    @property
    def weight_bits(self) -> int:
        return {"fp": 32, "sign": 1, "stoch": 1, "bwn": 1, "learned": 1, "dorefa": self.bits}[self.weights]

    @property
    def activation_bits(self) -> int:
        return {"fp": 32, "sign": 1, "dorefa": self.bits}[self.activations]


METHODS: dict[str, Method] = {
    "fp": Method(),
    "bc": Method("sign", clip=True),
    "bc_stoch": Method("stoch", clip=True),
    "bwn": Method("bwn", clip=True, center=True),
    "bwn_learned": Method("learned", clip=True, center=True),  # XNOR-Net Table 3a: α "using a separate layer"
    "xnor": Method("bwn", "sign", clip=True, center=True),
    "xnor_unscaled": Method("sign", "sign", clip=True),  # XNOR-Net with α = 1; not Hubara et al.'s BNN
    "xnor_k": Method("bwn", "sign", input_scale=True, clip=True, center=True),
}
DOREFA_BITS = (1, 2, 4, 8)
METHODS.update({f"dorefa{k}": Method("dorefa", "dorefa", bits=k) for k in DOREFA_BITS})
#: DoReFa-Net's W/A/G bit widths one at a time: only the weights, only the activations or only the
#: gradients at 2 bits, the others in float (the paper: gradients need the most bits, weights the fewest).
DOREFA_WAG = {"dorefa_w2a32g32": Method("dorefa", "fp", bits=2),
              "dorefa_w32a2g32": Method("fp", "dorefa", bits=2),
              "dorefa_w32a32g2": Method(grad_bits=2)}
METHODS.update(DOREFA_WAG)

LABELS = {"fp": "full precision", "bc": "BinaryConnect", "bc_stoch": "BinaryConnect (stoch.)",
          "bwn": "BWN", "bwn_learned": "BWN, α learned", "xnor_unscaled": "XNOR-Net, α = 1",
          "xnor": "XNOR-Net", "xnor_k": "XNOR-Net + K",
          **{f"dorefa{k}": f"DoReFa W{k}A{k}" for k in DOREFA_BITS},
          **{name: "DoReFa " + name[len("dorefa_"):].upper() for name in DOREFA_WAG}}


def method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def weight_function(m: Method, seeds: Sequence[int] = (), filters: tuple[int, int] | None = None,
                    eval_real: bool = False) -> nn.Module | None:
    """The weight function of a binarised layer under method ``m`` (None for full precision).

    ``seeds``: one per run, for the stochastic sign's per-run generators (unused by the others).
    ``filters``: (runs, output filters) of the layer, for a learned α (which starts at 1 here;
    :meth:`BinaryNet.reset_parameters` starts it at the analytic α of the initial weights).
    ``eval_real``: a stochastic sign evaluates with the real weights (Courbariaux et al.'s protocol).
    """
    if m.weights == "fp":
        return None
    if m.weights == "sign":
        return weightfn.SignScale(scale=False)
    if m.weights == "bwn":
        return weightfn.SignScale(scale=True)
    if m.weights == "learned":
        if filters is None:
            raise ValueError("a learned α needs the layer's (runs, output filters)")
        return weightfn.LearnedScale(torch.ones(filters))
    if m.weights == "stoch":
        if not seeds:
            raise ValueError("the stochastic sign needs one seed per run")
        return weightfn.StochasticSign(seeds, eval_real=eval_real)
    if m.weights == "dorefa":
        return weightfn.DoReFaWeight(m.bits)
    raise ValueError(f"unknown weight kind {m.weights!r}")


# --- layers --------------------------------------------------------------------------------------

class RunBatchNorm(nn.Module):
    """BatchNorm per run on (N, B, F) features: one ``BatchNorm1d(N·F)`` on (B, N·F). ``kw``: eps, momentum."""

    def __init__(self, runs: int, features: int, affine: bool = True, **kw):
        super().__init__()
        self.runs, self.features = runs, features
        self.bn = nn.BatchNorm1d(runs * features, affine=affine, **kw)

    def forward(self, x: Tensor) -> Tensor:
        n, b, f = x.shape
        return self.bn(x.transpose(0, 1).reshape(b, n * f)).reshape(b, n, f).transpose(0, 1)


class BinaryBlock(nn.Module):
    """BatchNorm → activation → layer (→ ⊙ K): the XNOR-Net block (ReLU and pool come after it).

    ``layer``: a StackedConv2d on the grouped layout (B, N·C, H, W) or a StackedLinear on (N, B, F).
    With ``input_scale`` the output is multiplied by XNOR-Net's K, the ℓ1 mean of the (normalised,
    real) input over channels, box-filtered over each output's receptive field (paper §3.2); for a
    linear layer K is β = mean|x| per example. ``grad``: a :class:`GradientQuantizer` on the output
    (DoReFa's k-bit gradients), or None.
    """

    def __init__(self, norm: nn.Module, act: Activation, layer: nn.Module, input_scale: bool = False,
                 grad: nn.Module | None = None):
        super().__init__()
        self.norm, self.act, self.layer, self.input_scale = norm, act, layer, input_scale
        self.grad = grad

    def input_scale_k(self, x: Tensor) -> Tensor:
        """K for normalised input ``x``: (B, N, H', W') for convs, (N, B, 1) for linear layers."""
        layer = self.layer
        if isinstance(layer, StackedConv2d):
            b, nc, h, w = x.shape
            a = x.abs().reshape(b, layer.runs, nc // layer.runs, h, w).mean(2)
            pad = layer.padding if isinstance(layer.padding, int) else (
                0 if layer.padding == "valid" else layer.kernel_size // 2)
            return F.avg_pool2d(a, layer.kernel_size, stride=1, padding=pad, count_include_pad=True)
        return x.abs().mean(-1, keepdim=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        y = self.layer(self.act(x))
        if self.input_scale:
            k = self.input_scale_k(x)
            if isinstance(self.layer, StackedConv2d):
                b, no, h, w = y.shape
                y = (y.reshape(b, self.layer.runs, -1, h, w) * k.unsqueeze(2)).reshape(b, no, h, w)
            else:
                y = y * k
        return y if self.grad is None else self.grad(y)


class CBABlock(nn.Module):
    """layer → BatchNorm → activation: the typical CNN block, C-B-A (the pool comes after it).

    XNOR-Net Fig. 3 (left) and Table 3b's "C-B-A-P". ``norm``: a BatchNorm over the layer's outputs,
    or None. ``act``: ``"relu"``, ``"sign"`` (:func:`binarize_activations`: the output is the binary
    input of the next layer, so a pool after it pools signs) or ``"none"``.
    """

    def __init__(self, layer: nn.Module, norm: nn.Module | None, act: str):
        super().__init__()
        if act not in ("relu", "sign", "none"):
            raise ValueError(f"unknown activation {act!r}; choose relu, sign or none")
        self.layer, self.norm, self.act = layer, norm, act

    def forward(self, x: Tensor) -> Tensor:
        y = self.layer(x)
        if self.norm is not None:
            y = self.norm(y)
        if self.act == "relu":
            return F.relu(y)
        return binarize_activations(y) if self.act == "sign" else y

    def extra_repr(self) -> str:
        return f"act={self.act}"


@dataclass(frozen=True)
class Recipe:
    """What a paper's setup fixes beyond the method and the block order.

    ``init``: ``"glorot_normal"`` (every layer, lotterylib's default) or ``"uniform"`` (the binarised
    layers' stored weights ~ U(−1, 1)). ``lr_scale``: ``"none"`` or ``"glorot"`` (the stored weights of
    a binarised layer learn at lr / H², H = √(1.5 / (fan_in + fan_out))). ``eval_real``: a stochastic
    sign is evaluated with the real weights. ``bn``: BatchNorm keywords (eps, momentum).

    ``"binaryconnect"`` is Courbariaux et al.'s code (MatthieuCourbariaux/BinaryConnect,
    ``binary_connect.py``): a layer's weights live in [−H, H], start ~ U(−H, H), are binarised to ±H
    (stochastically with P(+H) = hard_sigmoid(W / H)) and clipped to [−H, H]; SGD steps on them with
    the gradient of the binary weights. Every binary layer is followed by BatchNorm, which makes the
    network's function blind to the scale H, so in lotterylib's units (W / H ∈ [−1, 1], binary ±1) the
    same training is U(−1, 1) weights stepping at lr / H²; BatchNorm with eps 1e-4 and a moving
    average of factor 0.33 (their ``alpha`` at minibatch 200); the stochastic network is tested with
    its real weights (their ``deterministic`` pass).
    """

    init: str = "glorot_normal"
    lr_scale: str = "none"
    eval_real: bool = False
    bn: tuple[tuple[str, float], ...] = ()


RECIPES = {"xnor": Recipe(),
           "binaryconnect": Recipe("uniform", "glorot", True, (("eps", 1e-4), ("momentum", 0.33)))}
ORDERS = ("bacp", "cbap")


@dataclass(frozen=True)
class Architecture:
    """A small conv net: ``convs`` = ((out_channels, kernel, padding, pool), ...), then ``fcs`` hidden widths."""

    in_channels: int
    image_size: int
    convs: tuple[tuple[int, int, int, bool], ...]
    fcs: tuple[int, ...]
    classes: int = 10


ARCHITECTURES = {
    # LeNet-5 as in jiecaoyu/XNOR-Net-PyTorch (MNIST): conv 20@5×5, pool, conv 50@5×5, pool, fc 500, fc 10.
    "lenet5": Architecture(1, 28, ((20, 5, 0, True), (50, 5, 0, True)), (500,)),
    # A small VGG-like net for CIFAR-10: the BNN paper's 2×128C3–MP2–2×256C3–MP2–2×512C3–MP2–2×1024FC, halved,
    # with one hidden fc layer.
    "vgg_small": Architecture(3, 32, ((64, 3, 1, False), (64, 3, 1, True), (128, 3, 1, False), (128, 3, 1, True),
                                      (256, 3, 1, False), (256, 3, 1, True)), (512,)),
    # BinaryConnect's permutation-invariant MNIST MLP: 3 hidden layers of 1024 units (Courbariaux et al. 2015).
    "mlp_bc": Architecture(1, 28, (), (1024, 1024, 1024)),
}


class BinaryNet(PopulationModel):
    """A population of ``runs`` conv nets whose hidden layers follow ``method`` (see the module doc).

    ``order="bacp"`` (XNOR-Net's block): the first conv is conv → BatchNorm → ReLU (→ pool) in full
    precision, every binarised layer a :class:`BinaryBlock` (BatchNorm → binarise → layer) followed by
    ReLU (→ pool), the last a full-precision linear layer, unless ``binarize_first_last``: then they are
    binary blocks too (the image is normalised, then binarised, and the logits come from a binary layer).

    ``order="cbap"`` (the typical block, XNOR-Net Table 3b): every layer is a :class:`CBABlock`,
    layer → BatchNorm → activation (→ pool). The activation is the sign when the method binarises
    activations and the next layer is binarised (its input must be ±1, so the pool after it pools
    signs), else ReLU; the last layer has none, and a BatchNorm on its logits when it is binarised
    (as in BinaryConnect's and BNN's code). The first layer's input, the image, is never binarised.
    ``recipe``: a key of :data:`RECIPES`.
    Input (B, C·H·W) / (B, C, H, W) shared, or per run (N, B, ...); output logits (N, B, classes).
    """

    def __init__(self, runs: int, arch: str | Architecture = "lenet5", method_name: str = "xnor",
                 binarize_first_last: bool = False, noise_seeds: Sequence[int] | None = None, *,
                 order: str = "bacp", recipe: str = "xnor"):
        super().__init__()
        # A stochastic weight function draws from one generator per run and layer; with no seeds given
        # (a model about to load a state dict, which restores the generators) they come from the run index.
        noise_seeds = list(range(runs)) if noise_seeds is None else list(noise_seeds)
        if len(noise_seeds) != runs:
            raise ValueError(f"need one noise seed per run ({runs}), got {len(noise_seeds)}")
        if order not in ORDERS:
            raise ValueError(f"unknown block order {order!r}; choose one of {', '.join(ORDERS)}")
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
        self.arch = ARCHITECTURES[arch] if isinstance(arch, str) else arch
        self.method_name, self.method = method_name, method(method_name)
        self.runs, self.binarize_first_last = runs, binarize_first_last
        self.order, self.recipe_name, self.recipe = order, recipe, RECIPES[recipe]
        a, m = self.arch, self.method
        if order == "cbap" and (m.activations == "dorefa" or m.input_scale or m.grad_bits < 32):
            raise ValueError("the C-B-A-P order takes sign or real activations, without XNOR's K or "
                             "DoReFa's gradients")
        bn = dict(self.recipe.bn)
        # Every layer, input to output: (kind, in, out, kernel, padding, pool); convs then fcs.
        specs, c, size = [], a.in_channels, a.image_size
        for out, k, pad, pool in a.convs:
            specs.append(("conv", c, out, k, pad, pool))
            size = (size - k + 1 + 2 * pad) // (2 if pool else 1)
            c = out
        widths = [c * size * size, *a.fcs, a.classes]
        specs += [("fc", fin, fout, 0, 0, False) for fin, fout in zip(widths[:-1], widths[1:])]
        last = len(specs) - 1
        # Full precision: the first conv and the last layer (an MLP's first layer is binarised).
        binarised = [binarize_first_last or (i < last and not (i == 0 and specs[0][0] == "conv"))
                     for i in range(len(specs))]
        convs, fcs = [], []
        self.binarized: list[str] = []
        for i, (kind, fin, fout, k, pad, _) in enumerate(specs):
            conv = kind == "conv"
            layer = StackedConv2d(runs, fin, fout, k, padding=pad) if conv else StackedLinear(runs, fin, fout)
            norm = (lambda f, **kw: nn.BatchNorm2d(runs * f, **kw)) if conv else (  # noqa: E731
                lambda f, **kw: RunBatchNorm(runs, f, **kw))
            if order == "cbap":
                act = "none" if i == last else (
                    "sign" if m.activations == "sign" and binarised[i + 1] else "relu")
                block = CBABlock(layer, norm(fout, **bn) if i < last or binarised[i] else None, act)
            elif binarised[i]:
                grad = None if m.grad_bits >= 32 else GradientQuantizer(
                    m.grad_bits, [derive(s, "gradient-noise", i) for s in noise_seeds], grouped=conv)
                block = BinaryBlock(norm(fin, **bn), Activation(m.activations, m.bits), layer, m.input_scale, grad)
            elif conv:  # full-precision first layer
                block = nn.Sequential(layer, norm(fout, affine=False, **bn))
            else:  # full-precision last layer
                block = layer
            (convs if conv else fcs).append(block)
            name = f"{'convs' if conv else 'fcs'}.{len(convs if conv else fcs) - 1}"
            if binarised[i]:
                self.binarized.append(f"{name}.layer")
        self.convs, self.fcs = nn.ModuleList(convs), nn.ModuleList(fcs)
        self.pools = [p for (_, _, _, p) in a.convs]
        self.output_layer = f"fcs.{len(fcs) - 1}" + (".layer" if order == "cbap" or binarize_first_last else "")
        if m.weights != "fp":  # one weight function per layer (each may hold its own state)
            for name in self.binarized:
                layer = self.get_submodule(name)
                weightfn.attach(layer, weight_function(
                    m, [derive(s, "stochastic-sign", name) for s in noise_seeds],
                    filters=tuple(weightfn.stored(layer).shape[:2]), eval_real=self.recipe.eval_real))

    def reset_parameters(self, seeds: Sequence[int]) -> "BinaryNet":
        """Glorot-normal weights and zero biases (:meth:`PopulationModel.reset_parameters`); with the
        ``"uniform"`` recipe the binarised layers' stored weights ~ U(−1, 1) instead, run i from seeds[i].
        A learned α starts at the analytic α (mean|W| per filter) of the weights it starts from."""
        super().reset_parameters(seeds)
        with torch.no_grad():
            for name, layer in self.binarized_layers().items():
                w = weightfn.stored(layer)
                if self.recipe.init == "uniform":
                    for i, seed in enumerate(seeds):
                        g = torch.Generator().manual_seed(derive(seed, "uniform-init", name))
                        w[i].copy_(torch.rand(w.shape[1:], generator=g) * 2.0 - 1.0)
                for fn in weightfn.functions(layer):
                    if isinstance(fn, weightfn.LearnedScale):
                        fn.start_at(w)
        return self

    def forward(self, x: Tensor) -> Tensor:
        a = self.arch
        per_run = x.dim() in (3, 5)
        shape = (a.in_channels, a.image_size, a.image_size)
        if per_run:
            x = x.reshape(x.shape[0], x.shape[1], *shape)
        else:
            x = x.reshape(x.shape[0], *shape).unsqueeze(0).expand(self.runs, -1, -1, -1, -1)
        if x.shape[0] != self.runs:
            raise ValueError(f"input has {x.shape[0]} runs, the model {self.runs}")
        if self.order == "bacp":
            return conv_fc_forward(x, self.convs, self.pools, self.fcs, self.runs)
        x = to_grouped(x)
        for block, pool in zip(self.convs, self.pools):  # each block ends with its activation
            x = block(x)
            if pool:
                x = max_pool2x2(x)
        x = from_grouped(x, self.runs)
        for block in self.fcs:
            x = block(x)
        return x

    def binarized_layers(self) -> dict[str, nn.Module]:
        """Name → layer for the layers whose weights (and inputs) the method quantises."""
        return {name: self.get_submodule(name) for name in self.binarized}

    def weight_param_groups(self, lr: float) -> list[dict] | None:
        """Optimizer parameter groups of the recipe's per-layer learning rates (None: one rate for all).

        ``"glorot"``: the stored weights of each binarised layer learn at lr / H², H = √(1.5 / (fan_in +
        fan_out)) (see :class:`Recipe`); everything else at lr.
        """
        if self.recipe.lr_scale == "none":
            return None
        groups, scaled = [], set()
        for layer in self.binarized_layers().values():
            w = weightfn.stored(layer)
            fan_in, fan_out = layer.fans()
            groups.append({"params": [w], "lr": lr * (fan_in + fan_out) / 1.5})
            scaled.add(id(w))
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in scaled]
        return groups + ([{"params": rest}] if rest else [])


def require_bacp(model: nn.Module) -> None:
    """Refuse a C-B-A-P network: the bit-kernel paths compute XNOR-Net's B-A-C-P block."""
    if getattr(model, "order", "bacp") != "bacp":
        raise ValueError("the bit-kernel path computes XNOR-Net's B-A-C-P block; this network is C-B-A-P")


def build(arch: str, method_name: str, seeds: Sequence[int], binarize_first_last: bool = False, *,
          order: str = "bacp", recipe: str = "xnor") -> BinaryNet:
    """``len(seeds)`` networks; run i's weights are drawn from seeds[i] (Glorot-normal unless the
    recipe says otherwise; biases 0)."""
    if len(seeds) < 1:
        raise ValueError("a population needs at least one seed")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return BinaryNet(len(seeds), arch, method_name, binarize_first_last, noise_seeds=seeds, order=order,
                     recipe=recipe).reset_parameters(seeds)


@torch.no_grad()
def clip_and_center(model: BinaryNet) -> None:
    """After-step hook: the real weights of the binarised layers, mean-centred over input channels
    (``method.center``, XNOR reference code; skipped for a layer with one input channel, which the
    reference code never binarises) and clipped to [−1, 1] (``method.clip``, BinaryConnect)."""
    m = model.method
    for layer in model.binarized_layers().values():
        w = weightfn.stored(layer)
        if m.center and w.shape[2] > 1:  # one input channel: its mean is the weight itself; skip
            w.sub_(w.mean(dim=2, keepdim=True))
        if m.clip:
            w.clamp_(-1.0, 1.0)


@torch.no_grad()
def recalibrate_batchnorm(model: BinaryNet, x: Tensor, batch_size: int = 1000) -> BinaryNet:
    """Re-estimate every BatchNorm's running statistics on ``x`` with the *deployed* weights.

    Stochastic BinaryConnect gathers its statistics while sampling signs; the deterministic network
    it deploys sees different layer outputs. Here the weight functions run in eval mode (the
    deterministic sign) while BatchNorm layers average their statistics over all of ``x``
    (cumulative average, ``momentum=None``). Leaves the model in eval mode.
    """
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for i in range(0, x.shape[0], batch_size):
        model(x[i:i + batch_size])
    for m, mom in zip(norms, saved):
        m.momentum = mom
        m.eval()
    return model


def needs_hook(model: BinaryNet) -> bool:
    return bool(model.method.clip or model.method.center) and bool(model.binarized)


# --- memory: the model as it would be stored -------------------------------------------------------

#: State that training needs and a deployed network does not: BatchNorm's step counter and the
#: random generators of a stochastic weight function.
NOT_DEPLOYED = ("num_batches_tracked", "_extra_state")


def _weight_function_state(key: str) -> bool:
    """A weight function's own parameter or buffer (e.g. a learned α), not the stored weight itself:
    the packed form keeps what it makes (the bits and α), the float32 baseline only the stored weight."""
    head, sep, tail = key.partition(".parametrizations.weight.")
    return bool(sep) and tail != "original"


def _run_slice(t: Tensor, run: int, runs: int) -> np.ndarray:
    """Run ``run`` of a stacked (N, ...) tensor, or of a flat (N·C,) BatchNorm tensor."""
    t = t.detach().cpu()
    if t.dim() == 0:
        return t.numpy()
    if t.shape[0] == runs and t.dim() > 1:
        return t[run].numpy()
    return t.reshape(runs, -1)[run].numpy()


def deployed_weight(layer: nn.Module) -> Tensor:
    """The weight a layer computes with once deployed: its weight function in eval mode (stochastic
    BinaryConnect: the deterministic sign), detached."""
    was = [m.training for m in layer.modules()]
    layer.eval()  # deterministic weights (stochastic BinaryConnect: its sign)
    try:
        return layer.weight.detach()
    finally:
        for m, t in zip(layer.modules(), was):
            m.train(t)


def packed_state(model: BinaryNet, run: int = 0) -> dict[str, np.ndarray]:
    """Run ``run`` of the model as it would be deployed: binary layers as bits, the rest float32.

    A 1-bit layer becomes ``<name>.bits`` (out, ⌈in·k·k/64⌉) uint64 plus, with a scale, ``<name>.alpha``
    (out,) float32 (BWN/XNOR per filter; DoReFa 1-bit one per layer). A k-bit DoReFa layer becomes
    ``<name>.planes`` (k, out, ⌈…/64⌉). Everything else (first/last layers, biases, BatchNorm affine
    parameters and running statistics) stays float32. :func:`unpack_weights` inverts it exactly.
    """
    if not 0 <= run < model.runs:
        raise ValueError(f"run must be in [0, {model.runs}), got {run}")
    out: dict[str, np.ndarray] = {}
    binarized = model.binarized_layers()
    m = model.method
    for name, layer in binarized.items():
        w = deployed_weight(layer)[run].float()
        rows = w.reshape(w.shape[0], -1)
        if m.weight_bits == 1:
            out[f"{name}.bits"] = bitpack.pack_signs(rows)
            scale = rows.abs().amax(1)  # every |w| of a row equals its α
            if m.weights in ("bwn", "learned"):  # one α per output filter
                out[f"{name}.alpha"] = scale.numpy().astype(np.float32)
            elif m.weights == "dorefa":  # DoReFa 1-bit: one scale E|W| per layer
                out[f"{name}.alpha"] = scale[:1].numpy().astype(np.float32)
        elif m.weights == "dorefa":
            levels = 2 ** m.bits - 1
            codes = torch.round((rows + 1.0) / 2.0 * levels)
            out[f"{name}.planes"] = bitpack.pack_codes(codes.numpy(), m.bits)
        else:  # full-precision method: nothing to pack
            out[f"{name}.weight"] = rows.numpy().astype(np.float32)
    skip = {f"{n}.{p}" for n in binarized for p in ("weight", "parametrizations.weight.original")}
    for key, t in model.state_dict().items():
        if key in skip or key.endswith(NOT_DEPLOYED) or _weight_function_state(key):
            continue
        out[key] = _run_slice(t, run, model.runs).astype(np.float32)
    return out


def unpack_weights(model: BinaryNet, packed: dict[str, np.ndarray]) -> dict[str, Tensor]:
    """The effective weights of the binarised layers rebuilt from :func:`packed_state`, shaped (out, ...)."""
    out = {}
    m = model.method
    for name, layer in model.binarized_layers().items():
        shape = weightfn.stored(layer).shape[1:]
        k = int(np.prod(shape[1:]))
        if f"{name}.bits" in packed:
            w = torch.from_numpy(bitpack.unpack_signs(packed[f"{name}.bits"], k))
            if f"{name}.alpha" in packed:
                w = torch.from_numpy(packed[f"{name}.alpha"])[:, None] * w
        elif f"{name}.planes" in packed:
            levels = 2 ** m.bits - 1
            codes = torch.from_numpy(bitpack.unpack_codes(packed[f"{name}.planes"], k)).float()
            w = 2.0 * (codes / levels) - 1.0
        else:
            w = torch.from_numpy(packed[f"{name}.weight"])
        out[name] = w.reshape(shape)
    return out


def float_state(model: BinaryNet, run: int = 0) -> dict[str, np.ndarray]:
    """Run ``run`` of the model with every tensor in float32 (the 32-bit baseline of the size table)."""
    out = {}
    for key, t in model.state_dict().items():
        if key.endswith(NOT_DEPLOYED) or _weight_function_state(key):
            continue
        out[key.replace("parametrizations.weight.original", "weight")] = _run_slice(t, run, model.runs).astype(np.float32)
    return out


def model_size(model: BinaryNet, run: int = 0) -> dict:
    """Serialized sizes (bytes, uncompressed .npz) of one run: float32 vs bit-packed, whole and binary layers.

    ``layers``: rows and row length k of each binarised layer (a row takes ⌈k/64⌉·8·bits bytes packed).
    ``binary_layers_float`` / ``binary_layers_packed``: only the binarised layers' weights (the
    bit arrays; scales α counted separately in ``scales``). ``ratio_binary`` → 32/bits for large layers;
    ``ratio_model`` is smaller, because the first/last layers, biases and BatchNorm stay float32.
    """
    packed, flt = packed_state(model, run), float_state(model, run)
    names = list(model.binarized_layers())
    bin_float = sum(flt[f"{n}.weight"].nbytes for n in names)
    bin_packed = sum(packed[f"{n}.{s}"].nbytes for n in names for s in ("bits", "planes") if f"{n}.{s}" in packed)
    scales = sum(packed[f"{n}.alpha"].nbytes for n in names if f"{n}.alpha" in packed)
    n_binary = sum(flt[f"{n}.weight"].size for n in names)
    n_total = sum(v.size for v in flt.values())
    layers = {n: {"rows": int(flt[f"{n}.weight"].shape[0]), "k": int(flt[f"{n}.weight"][0].size)} for n in names}
    res = {"layers": layers, "bytes_float": bitpack.serialized_bytes(flt), "bytes_packed": bitpack.serialized_bytes(packed),
           "binary_layers_float": int(bin_float), "binary_layers_packed": int(bin_packed), "scales": int(scales),
           "binary_weights": int(n_binary), "all_values": int(n_total), "weight_bits": model.method.weight_bits}
    res["ratio_model"] = res["bytes_float"] / res["bytes_packed"]
    res["ratio_binary"] = bin_float / bin_packed if bin_packed and model.method.weight_bits < 32 else 1.0
    return res


# --- inference with the bit kernel ---------------------------------------------------------------------

@torch.no_grad()
def xnor_linear(block: BinaryBlock, x: Tensor, run: int = 0) -> Tensor:
    """A binary linear block of run ``run`` computed with the XNOR + popcount kernel.

    ``x``: (B, F) real input of the block. BatchNorm (eval statistics), sign, then the packed
    product sign(x)·sign(W)ᵀ as integers, times α (and β), plus the bias. (B, out) float32.
    """
    layer = getattr(block, "layer", None)
    if not isinstance(block, BinaryBlock) or not isinstance(layer, StackedLinear) or block.act.kind != "sign":
        raise ValueError("xnor_linear needs a binary block with a StackedLinear layer and sign activations")
    norm = block.norm.bn
    f = layer.in_features
    sl = slice(run * f, (run + 1) * f)
    xn = F.batch_norm(x, norm.running_mean[sl], norm.running_var[sl],
                      None if norm.weight is None else norm.weight[sl],
                      None if norm.bias is None else norm.bias[sl], False, 0.0, norm.eps)
    w = deployed_weight(layer)[run]
    alpha = w.abs().amax(1)  # ±α per row: max|w| = α
    ints = bitpack.xnor_matmul(bitpack.pack_signs(xn), bitpack.pack_signs(w), f)
    y = torch.from_numpy(ints).float() * alpha
    if block.input_scale:
        y = y * xn.abs().mean(-1, keepdim=True)
    return y + layer.bias[run] if layer.bias is not None else y


@torch.no_grad()
def xnor_conv2d(block: BinaryBlock, x: Tensor, run: int = 0) -> Tensor:
    """A binary conv block of run ``run`` with the XNOR + popcount kernel (im2col, no padding).

    ``x``: (B, C, H, W) real input of the block → (B, out, H', W') float32. Padding is refused: a
    zero-padded border is neither +1 nor −1, so it has no bit (the float simulations treat it as 0).
    """
    layer = getattr(block, "layer", None)
    if not isinstance(block, BinaryBlock) or not isinstance(layer, StackedConv2d) or block.act.kind != "sign":
        raise ValueError("xnor_conv2d needs a binary block with a StackedConv2d layer and sign activations")
    if layer.padding not in (0, "valid"):
        raise ValueError("xnor_conv2d handles unpadded convolutions only (a zero border has no ±1 bit)")
    norm, c, k = block.norm, layer.in_channels, layer.kernel_size
    sl = slice(run * c, (run + 1) * c)
    xn = F.batch_norm(x, norm.running_mean[sl], norm.running_var[sl],
                      None if norm.weight is None else norm.weight[sl],
                      None if norm.bias is None else norm.bias[sl], False, 0.0, norm.eps)
    b, _, h, w = x.shape
    ho, wo = h - k + 1, w - k + 1
    cols = F.unfold(xn, k).transpose(1, 2).reshape(b * ho * wo, c * k * k)  # (B·L, C·k·k)
    wt = deployed_weight(layer)[run].reshape(layer.out_channels, -1)
    ints = bitpack.xnor_matmul(bitpack.pack_signs(cols), bitpack.pack_signs(wt), c * k * k)
    y = torch.from_numpy(ints).float() * wt.abs().amax(1)
    y = y.reshape(b, ho, wo, -1).permute(0, 3, 1, 2)
    if block.input_scale:
        a = xn.abs().mean(1, keepdim=True)
        y = y * F.avg_pool2d(a, k, stride=1)
    return y + layer.bias[run][:, None, None] if layer.bias is not None else y


@torch.no_grad()
def predict_packed(model: BinaryNet, x: Tensor, run: int = 0, batch_size: int = 500) -> Tensor:
    """Logits (B, classes) of run ``run`` with every binary block computed by the bit kernel.

    Full-precision layers run in torch as usual; the binarised convs and linear layers go through
    :func:`xnor_conv2d` / :func:`xnor_linear`. Needs sign activations (BNN / XNOR methods).
    ``x`` is processed ``batch_size`` examples at a time (im2col makes large intermediates).
    """
    if model.training:
        raise ValueError("predict_packed needs a model in eval mode (BatchNorm running statistics)")
    require_bacp(model)
    if x.shape[0] > batch_size:
        return torch.cat([predict_packed(model, x[i:i + batch_size], run, batch_size)
                          for i in range(0, x.shape[0], batch_size)])
    a = model.arch
    h = x.reshape(x.shape[0], a.in_channels, a.image_size, a.image_size)
    for i, (block, pool) in enumerate(zip(model.convs, model.pools)):
        if isinstance(block, BinaryBlock):
            h = xnor_conv2d(block, h, run)
        else:  # full-precision first layer: conv → BatchNorm of this run's channels
            conv, bn = block[0], block[1]
            w = deployed_weight(conv)[run]
            h = F.conv2d(h, w, conv.bias[run] if conv.bias is not None else None, padding=conv.padding)
            sl = slice(run * conv.out_channels, (run + 1) * conv.out_channels)
            h = F.batch_norm(h, bn.running_mean[sl], bn.running_var[sl], None, None, False, 0.0, bn.eps)
        h = F.relu(h)
        if pool:
            h = max_pool2x2(h)
    h = h.reshape(h.shape[0], -1)
    for i, block in enumerate(model.fcs):
        if isinstance(block, BinaryBlock):
            h = xnor_linear(block, h, run)
        else:
            h = F.linear(h, deployed_weight(block)[run], block.bias[run] if block.bias is not None else None)
        if i < len(model.fcs) - 1:
            h = F.relu(h)
    return h


# --- experiments ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BinaryConfig:
    """One method trained on one dataset for several seeds at once (a population).

    ``max_train``: use only the first examples of the training split (0 = all). ``curve_size``: the
    validation and test curves recorded during training use only this many examples.
    ``test_size``: the final test accuracy uses the first ``test_size`` test examples (0 = all).
    ``order``: the block order (:data:`ORDERS`); ``recipe``: a key of :data:`RECIPES`.
    ``validation_size``: the training images held out for validation (None: the loader's default);
    the caller loads the data with it (:func:`lotterylib.data.load`), :func:`train_binary` checks it.
    """

    method: str = "xnor"
    arch: str = "lenet5"
    dataset: str = "mnist"
    binarize_first_last: bool = False
    seeds: tuple[int, ...] = (0, 1, 2)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(iterations=2000, batch_size=100, eval_every=250))
    max_train: int = 0
    curve_size: int = 500
    test_size: int = 0
    order: str = "bacp"
    recipe: str = "xnor"
    validation_size: int | None = None

    def __post_init__(self):
        method(self.method)
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if self.order not in ORDERS or self.recipe not in RECIPES:
            raise ValueError(f"order must be one of {', '.join(ORDERS)} and recipe one of {', '.join(RECIPES)}")
        if not self.seeds:
            raise ValueError("need at least one seed")
        if self.max_train < 0 or self.test_size < 0 or self.curve_size < 1:
            raise ValueError("max_train and test_size must be ≥ 0 and curve_size ≥ 1")


def train_binary(config: BinaryConfig, data, *, progress: bool | str = False) -> tuple[BinaryNet, dict]:
    """Train ``config`` on ``data`` (a :class:`~lotterylib.data.Dataset`); return the model and its result.

    Stochastic BinaryConnect is evaluated as the binary network it deploys (deterministic sign), with
    its BatchNorm statistics re-estimated for it (:func:`recalibrate_batchnorm`, 5,000 training images),
    unless the recipe evaluates it with its real weights (``"binaryconnect"``, the paper's protocol).
    A recipe with per-layer learning rates trains with :meth:`BinaryNet.weight_param_groups`.
    The result is JSON-able: ``test_acc`` (runs,) on the test split (``test_size``) after training,
    ``history`` (curves on ``curve_size`` examples), ``size`` (:func:`model_size` of run 0),
    ``seconds``.
    """
    from .data import Dataset, Split
    from .train import evaluate, train

    if config.validation_size is not None and len(data.val) != config.validation_size:
        raise ValueError(f"{config.method}: the config holds out {config.validation_size} validation images, "
                         f"the data {len(data.val)}; load it with validation_size={config.validation_size}")
    n = config.max_train or len(data.train)
    c = config.curve_size
    small = Dataset(data.name, Split(data.train.x[:n], data.train.y[:n]), Split(data.val.x[:c], data.val.y[:c]),
                    Split(data.test.x[:c], data.test.y[:c]), data.num_classes, data.input_shape, data.note)
    init = [derive(s, "binary-init") for s in config.seeds]
    model = build(config.arch, config.method, init, config.binarize_first_last, order=config.order,
                  recipe=config.recipe)
    groups = model.weight_param_groups(config.train.lr)
    t0 = time.perf_counter()
    # Every random draw of training comes from seeded per-run generators; forking the global RNG
    # keeps the caller's stream untouched all the same (nothing here reseeds it).
    with torch.random.fork_rng(devices=[]):
        hist = train(model, small, config.train, [derive(s, "binary-data") for s in config.seeds], progress=progress,
                     trainable=None if groups is None else (lambda _: groups),
                     after_step=clip_and_center if needs_hook(model) else None,
                     # k-bit gradients draw noise from per-run generators in the backward pass, which a
                     # captured CUDA graph would replay unchanged: no graph for them.
                     graph=False if model.method.grad_bits < 32 else None)
    if config.method == "bc_stoch" and not model.recipe.eval_real:  # the deterministic network it deploys
        recalibrate_batchnorm(model, small.train.x[:5000])
    seconds = time.perf_counter() - t0
    t = config.test_size or len(data.test)
    _, test_acc = evaluate(model, Split(data.test.x[:t], data.test.y[:t]), batch_size=250)
    return model, {"test_acc": test_acc.tolist(), "history": hist.to_json(), "size": model_size(model, 0),
                   "seconds": seconds}


def run_binary(config: BinaryConfig, data, *, cache=None, progress: bool | str = False) -> dict:
    """:func:`train_binary`'s result, memoized in ``cache`` (a ResultCache) when one is given.

    The cache entry also holds the trained weights (``state.pt``); :func:`load_model` rebuilds the model.
    """
    if cache is None:
        return train_binary(config, data, progress=progress)[1]
    with cache.lock(config, "binary"):
        entry = cache.get(config, "binary")
        if entry is not None:
            return entry.json()
        model, result = train_binary(config, data, progress=progress)

        def write(w):
            w.json(result)
            w.tensors(model.state_dict())

        cache.put(config, write, "binary")
    return result


def load_model(config: BinaryConfig, cache) -> BinaryNet | None:
    """The trained population of ``config`` from ``cache`` (eval mode), or None if it was never run."""
    entry = cache.get(config, "binary")
    if entry is None or not (entry.path / "state.pt").exists():
        return None
    model = BinaryNet(len(config.seeds), config.arch, config.method, config.binarize_first_last,
                      order=config.order, recipe=config.recipe)
    model.load_state_dict(entry.tensors())
    return model.eval()
