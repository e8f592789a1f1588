"""Binary networks: straight-through estimators, scaling factors, bit packing, the XNOR kernel, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lotterylib import binary, bitpack, weightfn
from lotterylib.train import TrainConfig

# --- straight-through estimators ---------------------------------------------------------------

def test_binarize_activations_forward_and_cancelled_gradient():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    y = binary.binarize_activations(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]  # sign(0) = +1
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0]  # passed where |x| ≤ 1, cancelled beyond
    edge = torch.tensor([-1.0, 1.0, 1.0 + 1e-7, 1.0 - 1e-7], requires_grad=True)
    binary.binarize_activations(edge).sum().backward()
    assert edge.grad.tolist() == [1.0, 1.0, 0.0, 1.0]  # BNN's Htanh gradient 1_{|x| ≤ 1}: the ends included


def test_sign_scale_gradient_is_the_exact_derivative_of_alpha_sign():
    # BWN: W̃ = α·B, α = mean|W| per output row. With the straight-through sign the gradient is
    # g·α·1{|W|<1} + sign(W)/n · Σ_j g_j·B_j  (the corrected formula of jiecaoyu/XNOR-Net-PyTorch notes).
    torch.manual_seed(0)
    w = (torch.randn(1, 3, 8) * 0.8).requires_grad_()
    g = torch.randn(1, 3, 8)
    out = weightfn.SignScale(scale=True)(w)
    (out * g).sum().backward()
    b = torch.where(w.detach() >= 0, 1.0, -1.0)
    alpha = w.detach().abs().mean(-1, keepdim=True)
    expected = g * alpha * (w.detach().abs() <= 1) + b / 8 * (g * b).sum(-1, keepdim=True)
    assert torch.allclose(w.grad, expected, atol=1e-6)
    assert torch.equal(out.detach(), alpha * b)


def test_alpha_mean_abs_is_the_optimal_scale():
    torch.manual_seed(1)
    w = torch.randn(4, 27)
    b = torch.where(w >= 0, 1.0, -1.0)
    alpha = w.abs().mean(1, keepdim=True)
    err = lambda a, bb=b: ((w - a * bb) ** 2).sum(1)  # noqa: E731
    for eps in (1e-3, 1e-2, 0.1):
        assert (err(alpha) < err(alpha + eps)).all() and (err(alpha) < err(alpha - eps)).all()
    # least squares: α* = ⟨W, B⟩ / n = mean|W|
    assert torch.allclose(alpha, (w * b).sum(1, keepdim=True) / 27)
    # and B = sign(W) beats every single sign flip at its own optimal α
    for i in range(27):
        flipped = b.clone()
        flipped[:, i] *= -1
        a = (w * flipped).sum(1, keepdim=True) / 27
        assert (err(alpha) <= err(a, flipped) + 1e-6).all()


def test_stochastic_sign_probabilities_eval_and_gradient():
    w = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0]).repeat(4000, 1).requires_grad_()  # 4,000 runs of 5 weights
    fn = weightfn.StochasticSign(list(range(4000)))
    out = fn(w)
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    p_plus = (out.detach() > 0).double().mean(0)
    assert torch.allclose(p_plus, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.double), atol=0.03)
    out.sum().backward()
    assert w.grad[0].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    fn.eval()
    assert fn(w.detach())[0].tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    assert torch.equal(weightfn.StochasticSign([0], eval_real=True).eval()(w.detach()), w.detach())


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_dorefa_weights_levels_and_gradient(bits):
    torch.manual_seed(bits)
    w = torch.randn(2, 6, 40).requires_grad_()
    q = weightfn.DoReFaWeight(bits)(w)
    for run in range(2):
        levels = q[run].detach().unique()
        assert len(levels) <= 2 ** bits
        if bits == 1:
            assert torch.allclose(levels.abs(), w[run].detach().abs().mean().expand_as(levels))
        else:
            assert levels.min() >= -1 and levels.max() <= 1
            codes = (levels + 1) / 2 * (2 ** bits - 1)
            assert torch.allclose(codes, codes.round(), atol=1e-4)
    g = torch.randn_like(w)
    (q * g).sum().backward()
    # The authors' code (tensorpack DoReFa-Net fw): for 1 bit the scale E|W| is a constant and the
    # sign passes the gradient, so the gradient is the identity; for k bits the rounding passes it and
    # tanh and the max are differentiated.
    if bits == 1:
        assert torch.equal(w.grad, g)
    else:
        x = w.detach().clone().requires_grad_()
        t = torch.tanh(x)
        r = t / (2 * t.abs().amax(dim=(1, 2), keepdim=True)) + 0.5
        (2 * r * g).sum().backward()  # the same function with the rounding taken as the identity
        assert torch.allclose(w.grad, x.grad, atol=1e-6)


def test_quantize_activations_and_bad_bits():
    x = torch.tensor([-1.0, 0.1, 0.4, 0.6, 2.0], requires_grad=True)
    y = binary.quantize_activations(x, 1)
    assert y.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert torch.allclose(binary.quantize_activations(torch.tensor([0.5]), 2), torch.tensor([2 / 3]))
    with pytest.raises(ValueError, match="bit width"):
        binary.quantize_activations(x, 0)
    with pytest.raises(ValueError, match="bit width"):
        weightfn.DoReFaWeight(2.5)
    with pytest.raises(ValueError, match="unknown method"):
        binary.method("ternary")
    with pytest.raises(ValueError, match="activation kind"):
        binary.Activation("relu6")


# --- DoReFa's k-bit gradients -------------------------------------------------------------------------

def _fg_reference(g: np.ndarray, bits: int, noise: np.ndarray) -> np.ndarray:
    """tensorpack's grad_fg written out in numpy, per example (row): scale, noise, clip, round, rescale."""
    n = 2.0 ** bits - 1
    m = np.abs(g).max(axis=1, keepdims=True)
    x = np.clip(g / m * 0.5 + 0.5 + noise / n, 0.0, 1.0)
    return (np.round(x * n) / n - 0.5) * m * 2


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_dorefa_gradient_is_the_authors_fg(bits):
    rng = np.random.default_rng(bits)
    g = rng.standard_normal((5, 30)).astype(np.float32) * np.array([[1e-6], [1.0], [30.0], [0.1], [2.0]], np.float32)
    noise = (rng.random((5, 30)) - 0.5).astype(np.float32)
    q = binary.dorefa_gradient(torch.from_numpy(g), bits, torch.from_numpy(noise)).numpy()
    assert np.allclose(q, _fg_reference(g, bits, noise), rtol=1e-5, atol=0)
    m = np.abs(g).max(1, keepdims=True)  # 2^k levels m·(2i/n − 1) per example, its own max (not the batch's)
    codes = (q / m + 1) / 2 * (2 ** bits - 1)
    assert np.allclose(codes, codes.round(), atol=1e-3) and codes.min() >= -1e-3 and codes.max() <= 2 ** bits - 1 + 1e-3
    if bits == 1:
        assert np.allclose(np.abs(q), m)
    # without noise the rounding is to the nearest level; the noise of ±½ level makes it unbiased
    det = binary.dorefa_gradient(torch.from_numpy(g), bits, torch.zeros(5, 30)).numpy()
    assert np.allclose(det, _fg_reference(g, bits, np.zeros_like(g)), rtol=1e-5)
    gt = torch.from_numpy(g[1:2]).expand(20000, -1)
    mean = binary.dorefa_gradient(gt, bits, torch.rand(20000, 30) - 0.5).mean(0)
    assert torch.allclose(mean, gt[0], atol=0.05 * float(gt.abs().max()))


def test_dorefa_gradient_zero_examples_shapes_and_errors():
    g = torch.zeros(3, 4, 5)
    g[1] = torch.randn(4, 5)
    q = binary.dorefa_gradient(g, 2, torch.rand_like(g) - 0.5, example_dims=1)
    assert torch.equal(q[0], torch.zeros(4, 5)) and torch.equal(q[2], torch.zeros(4, 5)) and q.isfinite().all()
    # example_dims=2: the max is per (run, example) of a (N, B, F) population output
    g = torch.randn(2, 3, 7)
    g[1, 2] *= 100
    q = binary.dorefa_gradient(g, 1, torch.zeros_like(g), example_dims=2)
    assert torch.allclose(q.abs(), g.abs().amax(-1, keepdim=True).expand_as(g))
    with pytest.raises(ValueError, match="bit width"):
        binary.dorefa_gradient(g, 0, torch.zeros_like(g))
    with pytest.raises(ValueError, match="shaped like"):
        binary.dorefa_gradient(g, 2, torch.zeros(2, 3))


def test_quantize_gradient_is_the_identity_forward_and_fg_backward():
    x = torch.randn(4, 9, requires_grad=True)
    seen = []

    def noise(grad):
        seen.append(grad.shape)
        return torch.full_like(grad, 0.25)

    y = binary.quantize_gradient(x, 2, noise)
    assert torch.equal(y, x)
    up = torch.randn(4, 9)
    (y * up).sum().backward()
    assert seen == [torch.Size([4, 9])]
    assert torch.allclose(x.grad, binary.dorefa_gradient(up, 2, torch.full_like(up, 0.25)))


def test_gradient_quantizer_in_a_population_draws_per_run():
    torch.manual_seed(0)
    x, t = torch.randn(6, 784), torch.randint(0, 10, (6,))

    def grads(seeds):
        net = binary.build("lenet5", "dorefa_w32a32g2", seeds)
        out = net(x)
        sum(torch.nn.functional.cross_entropy(out[i], t) for i in range(len(seeds))).backward()
        return net.convs[1].layer.weight.grad, net.fcs[0].layer.weight.grad

    (conv3, fc3), (conv1, fc1) = grads([0, 1, 2]), grads([1])
    assert torch.allclose(conv3[1], conv1[0], atol=1e-4) and torch.allclose(fc3[1], fc1[0], atol=1e-4)
    assert not torch.allclose(conv3[0], conv3[1])
    # the gradient reaching a binarised layer's output is quantised: its weight gradient differs from
    # the float network's, whose weights and forward pass are the same
    net_fp = binary.build("lenet5", "fp", [1])
    torch.nn.functional.cross_entropy(net_fp(x)[0], t).backward()
    assert torch.equal(binary.build("lenet5", "fp", [1])(x), binary.build("lenet5", "dorefa_w32a32g2", [1])(x))
    assert not torch.allclose(net_fp.convs[1].layer.weight.grad[0], conv1[0], atol=1e-4)
    # its first conv and last layer stay float, as in the authors' code (no fg there)
    assert isinstance(binary.build("lenet5", "dorefa_w32a32g2", [0]).convs[0], torch.nn.Sequential)
    with pytest.raises(ValueError, match="C-B-A-P"):
        binary.build("lenet5", "dorefa_w32a32g2", [0], order="cbap")


def test_dorefa_wag_grid_methods():
    m = {name: binary.method(name) for name in binary.DOREFA_WAG}
    assert [(x.weight_bits, x.activation_bits, x.grad_bits) for x in m.values()] == [(2, 32, 32), (32, 2, 32),
                                                                                      (32, 32, 2)]
    assert binary.LABELS["dorefa_w32a2g32"] == "DoReFa W32A2G32"
    from lotterylib.claims import xnor as xn
    quick = xn.configs("quick", 0)
    assert all(len(quick[n].seeds) == 3 for n in xn.DOREFA)  # every DoReFa point has error bars


# --- bit packing and the kernel -----------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 7, 63, 64, 65, 130, 1000])
def test_pack_round_trip(k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((3, 5, k)).astype(np.float32)
    x[0, 0, 0] = 0.0
    packed = bitpack.pack_signs(x)
    assert packed.dtype == np.uint64 and packed.shape == (3, 5, bitpack.words(k))
    signs = np.where(x >= 0, 1.0, -1.0)
    assert np.array_equal(bitpack.unpack_signs(packed, k), signs)
    assert np.array_equal(bitpack.pack_signs(torch.from_numpy(x)), packed)
    # padding bits are zero
    pad = bitpack.words(k) * 64 - k
    if pad:
        top = np.uint64(((1 << pad) - 1) << (64 - pad))
        assert not np.any(packed[..., -1] & top)


def test_pack_codes_round_trip_and_errors():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 16, size=(4, 70))
    planes = bitpack.pack_codes(codes, 4)
    assert planes.shape == (4, 4, 2)
    assert np.array_equal(bitpack.unpack_codes(planes, 70), codes)
    with pytest.raises(ValueError, match="codes must be integers"):
        bitpack.pack_codes(np.array([[0, 16]]), 4)
    with pytest.raises(ValueError, match="NaN"):
        bitpack.pack_signs(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="words per row"):
        bitpack.unpack_signs(np.zeros((2, 1), np.uint64), 65)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 63, 3), (7, 65, 9), (13, 127, 6), (8, 128, 8), (33, 1000, 17)])
@pytest.mark.parametrize("kernel", ["blocked", "naive"])
def test_popcount_product_equals_pm1_product_exactly(m, k, n, kernel):
    rng = np.random.default_rng(m * 1000 + k)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((n, k))
    ref = (np.where(a >= 0, 1.0, -1.0) @ np.where(b >= 0, 1.0, -1.0).T).astype(np.int64)
    pa, pb = bitpack.pack_signs(a), bitpack.pack_signs(b)
    got = bitpack.xnor_matmul(pa, pb, k, kernel=kernel)
    assert got.dtype == np.int64 and np.array_equal(got, ref)
    assert np.array_equal(bitpack.xnor_matmul_numpy(pa, pb, k), ref)


def test_xnor_matmul_rejects_bad_operands():
    a = np.zeros((2, 2), np.uint64)
    with pytest.raises(ValueError, match="uint64"):
        bitpack.xnor_matmul(a.astype(np.int64), a, 128)
    with pytest.raises(ValueError, match="words per row"):
        bitpack.xnor_matmul(a, a, 200)
    with pytest.raises(ValueError, match="kernel"):
        bitpack.xnor_matmul(a, a, 128, kernel="gpu")


def test_speedup_formula():
    assert bitpack.speedup_formula(256, 9) == pytest.approx(62.27, abs=0.005)
    assert bitpack.speedup_formula(1, 64) == pytest.approx(32.0)
    with pytest.raises(ValueError):
        bitpack.speedup_formula(0, 9)


def test_benchmark_small_is_exact():
    res = bitpack.benchmark(16, 100, 8, repeats=1, naive=True)
    assert res["exact"] is True and res["ratio"] > 0 and res["formula"] == pytest.approx(64 * 100 / 164)


# --- models, sizes, packed inference -------------------------------------------------------------

@pytest.mark.parametrize("name", ["fp", "bc_stoch", "bwn", "xnor_unscaled", "xnor", "xnor_k", "dorefa2", "bwn_learned"])
def test_lenet5_population_shapes(name):
    model = binary.build("lenet5", name, [0, 1])
    assert model(torch.rand(5, 784)).shape == (2, 5, 10)
    assert model(torch.rand(2, 5, 784)).shape == (2, 5, 10)
    assert model.binarized == ["convs.1.layer", "fcs.0.layer"]
    all_bin = binary.build("lenet5", name, [0], binarize_first_last=True)
    assert len(all_bin.binarized) == 4 and all_bin(torch.rand(3, 784)).shape == (1, 3, 10)


def test_vgg_small_runs_on_cifar_shapes():
    model = binary.build("vgg_small", "xnor", [0])
    assert model(torch.rand(2, 3, 32, 32)).shape == (1, 2, 10)


def test_input_scale_k_matches_definition():
    torch.manual_seed(0)
    model = binary.build("lenet5", "xnor_k", [0, 1])
    block = model.convs[1]
    x = torch.randn(3, 2 * 20, 12, 12)
    k = block.input_scale_k(x)
    a = x.abs().reshape(3, 2, 20, 12, 12).mean(2)  # A = Σ_c |I_c| / c, per run
    expected = torch.stack([torch.stack([a[b, r].unfold(0, 5, 1).unfold(1, 5, 1).mean((-1, -2))
                                         for r in range(2)]) for b in range(3)])
    assert k.shape == (3, 2, 8, 8) and torch.allclose(k, expected, atol=1e-6)
    xl = torch.randn(2, 4, 800)
    assert torch.allclose(model.fcs[0].input_scale_k(xl), xl.abs().mean(-1, keepdim=True))


@pytest.mark.parametrize("name", ["bc", "bc_stoch", "bwn", "bwn_learned", "xnor_unscaled", "xnor", "dorefa1", "dorefa2", "dorefa8", "fp"])
def test_packed_state_round_trips_exactly(name):
    model = binary.build("lenet5", name, [3, 4])
    with torch.no_grad():  # move off the initialisation so scales differ per filter
        for layer in model.binarized_layers().values():
            weightfn.stored(layer).mul_(torch.rand_like(weightfn.stored(layer)) * 2)
    model.eval()
    packed = binary.packed_state(model, run=1)
    rebuilt = binary.unpack_weights(model, packed)
    for lname, layer in model.binarized_layers().items():
        assert torch.equal(rebuilt[lname], layer.weight.detach()[1]), lname


def test_model_size_accounting():
    model = binary.build("lenet5", "xnor", [0])
    size = binary.model_size(model)
    # conv2: 50 rows of 20·5·5 = 500 weights → 8 words; fc1: 500 rows of 800 → 13 words
    assert size["layers"] == {"convs.1.layer": {"rows": 50, "k": 500}, "fcs.0.layer": {"rows": 500, "k": 800}}
    assert size["binary_layers_float"] == 4 * (50 * 500 + 500 * 800)
    assert size["binary_layers_packed"] == 8 * (50 * 8 + 500 * 13)
    assert size["scales"] == 4 * (50 + 500)
    assert 30 < size["ratio_binary"] < 32
    assert 1 < size["ratio_model"] < size["ratio_binary"]
    # a layer whose rows are a multiple of 64 bits is exactly 32× smaller
    arrays = {"w": bitpack.pack_signs(np.ones((10, 640)))}
    assert np.ones((10, 640), np.float32).nbytes / arrays["w"].nbytes == 32
    fp = binary.model_size(binary.build("lenet5", "fp", [0]))
    assert fp["ratio_binary"] == 1.0 and fp["ratio_model"] == pytest.approx(1.0, abs=0.01)
    d4 = binary.model_size(binary.build("lenet5", "dorefa4", [0]))
    assert d4["binary_layers_packed"] == 4 * size["binary_layers_packed"]


@pytest.mark.parametrize("name", ["xnor_unscaled", "xnor", "xnor_k"])
def test_xnor_linear_matches_the_float_simulation(name):
    torch.manual_seed(0)
    model = binary.build("lenet5", name, [0, 1])
    model.train()
    block = model.fcs[0]
    block(torch.randn(2, 64, 800))  # gives BatchNorm running statistics
    model.eval()
    x = torch.randn(2, 16, 800)
    ref = block(x)
    for run in range(2):
        got = binary.xnor_linear(block, x[run], run)
        assert torch.allclose(got, ref[run], atol=1e-4, rtol=1e-5)
    with pytest.raises(ValueError, match="binary block"):
        binary.xnor_linear(binary.build("lenet5", "bwn", [0]).fcs[0], x[0], 0)


def test_training_hook_clips_and_centres(mnist_tiny):
    cfg = binary.BinaryConfig(method="xnor", seeds=(0,), train=TrainConfig(iterations=3, batch_size=16, lr=0.5,
                                                                        eval_every=3), curve_size=50)
    model, res = binary.train_binary(cfg, mnist_tiny)
    for layer in model.binarized_layers().values():
        w = weightfn.stored(layer).detach()
        assert w.abs().max() <= 1.0
    assert len(res["test_acc"]) == 1 and res["size"]["weight_bits"] == 1


@pytest.fixture
def mnist_tiny():
    from lotterylib.data import Dataset, Split
    g = torch.Generator().manual_seed(0)
    split = lambda n: Split(torch.rand(n, 784, generator=g), torch.randint(0, 10, (n,), generator=g))  # noqa: E731
    return Dataset("mnist", split(128), split(50), split(60), 10, (784,))


@pytest.mark.parametrize("name,first_last", [("xnor_unscaled", False), ("xnor", False), ("xnor_k", True)])
def test_predict_packed_equals_the_float_model(name, first_last):
    torch.manual_seed(0)
    model = binary.build("lenet5", name, [0, 1], binarize_first_last=first_last)
    for _ in range(2):
        model(torch.rand(32, 784))  # BatchNorm statistics
    model.eval()
    x = torch.rand(20, 784)
    ref = model(x)
    for run in range(2):
        got = binary.predict_packed(model, x, run)
        assert torch.allclose(got, ref[run], atol=1e-5)
        if name == "xnor_unscaled":  # no scales: integers all the way to the (full-precision) last layer
            assert torch.equal(got.argmax(1), ref[run].argmax(1))
    with pytest.raises(ValueError, match="eval mode"):
        binary.predict_packed(model.train(), x)


def test_cifar_code_path_trains_and_counts():
    from lotterylib.data import Dataset, Split
    g = torch.Generator().manual_seed(0)
    split = lambda n: Split(torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g))  # noqa: E731
    data = Dataset("cifar10", split(64), split(20), split(20), 10, (3, 32, 32))
    cfg = binary.BinaryConfig(method="xnor", arch="vgg_small", dataset="cifar10", seeds=(0,),
                              train=TrainConfig(iterations=2, batch_size=8, eval_every=2), curve_size=10)
    model, res = binary.train_binary(cfg, data)
    assert len(res["test_acc"]) == 1 and len(model.binarized) == 6
    assert 25 < res["size"]["ratio_binary"] <= 32


# --- Table 3's variants, BinaryConnect's recipe ----------------------------------------------------------

def test_cbap_order_pools_signs_and_refuses_the_bit_kernel():
    torch.manual_seed(0)
    model = binary.build("lenet5", "xnor", [0, 1], order="cbap")
    assert model.binarized == ["convs.1.layer", "fcs.0.layer"] and model.output_layer == "fcs.1.layer"
    assert [b.act for b in model.convs] == ["sign", "sign"] and [b.act for b in model.fcs] == ["relu", "none"]
    x = torch.rand(6, 784)
    h = model.convs[0](x.reshape(6, 1, 28, 28))  # conv → BatchNorm → sign: the next (binary) layer's input
    assert set(h.unique().tolist()) == {-1.0, 1.0}
    assert model(x).shape == (2, 6, 10)
    # B-A-C-P's binary layer sees a normalised real input; C-B-A-P's sees max-pooled signs (mostly +1)
    assert float((torch.nn.functional.max_pool2d(h, 2) > 0).float().mean()) > float((h > 0).float().mean())
    fp = binary.build("lenet5", "bwn", [0], order="cbap")  # real activations: ReLU after every hidden block
    assert [b.act for b in fp.convs] == ["relu", "relu"]
    model.eval()
    with pytest.raises(ValueError, match="C-B-A-P"):
        binary.predict_packed(model, x)
    with pytest.raises(ValueError, match="C-B-A-P"):
        binary.build("lenet5", "dorefa2", [0], order="cbap")
    with pytest.raises(ValueError, match="block order"):
        binary.build("lenet5", "xnor", [0], order="abcp")


def test_learned_alpha_starts_at_the_analytic_alpha_and_trains(mnist_tiny):
    analytic = binary.build("lenet5", "bwn", [5, 6])
    learned = binary.build("lenet5", "bwn_learned", [5, 6])
    x = torch.rand(4, 784)
    analytic.eval(), learned.eval()
    assert torch.allclose(analytic(x), learned(x), atol=1e-6)  # the same network before training
    cfg = binary.BinaryConfig(method="bwn_learned", seeds=(0,), train=TrainConfig(iterations=3, batch_size=16,
                                                                                  eval_every=3), curve_size=50)
    model, res = binary.train_binary(cfg, mnist_tiny)
    fn = weightfn.functions(model.fcs[0].layer)[0]
    start = weightfn.stored(binary.build("lenet5", "bwn_learned", [0]).fcs[0].layer).detach()
    assert isinstance(fn, weightfn.LearnedScale) and fn.alpha.shape == (1, 500)
    assert not torch.allclose(fn.alpha.detach(), start.abs().mean(-1))  # α moved: it is trained
    packed = binary.packed_state(model.eval())
    assert not any("parametrizations" in k for k in packed)  # α is stored once, as <layer>.alpha
    assert "fcs.0.layer.alpha" in packed and res["size"]["scales"] == 4 * (50 + 500)


def test_binaryconnect_recipe_units_and_test_time_weights():
    model = binary.build("mlp_bc", "bc_stoch", [0, 1], binarize_first_last=True, order="cbap",
                         recipe="binaryconnect")
    assert model.binarized == [f"fcs.{i}.layer" for i in range(4)]
    assert isinstance(model.fcs[3].norm, binary.RunBatchNorm)  # BatchNorm on the logits (their L2-SVM output)
    assert model.fcs[0].norm.bn.eps == 1e-4 and model.fcs[0].norm.bn.momentum == 0.33
    w = weightfn.stored(model.fcs[0].layer).detach()
    assert w.abs().max() <= 1 and w.std() > 0.5  # U(−1, 1): U(−H, H) in units of H
    groups = model.weight_param_groups(3.0)
    assert [g["lr"] for g in groups[:4]] == pytest.approx([3.0 * (784 + 1024) / 1.5, 3.0 * 2048 / 1.5,
                                                           3.0 * 2048 / 1.5, 3.0 * 1034 / 1.5])
    assert "lr" not in groups[4] and sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    model.eval()  # the stochastic network is tested with its real weights (their deterministic pass)
    assert torch.equal(model.fcs[0].layer.weight, weightfn.stored(model.fcs[0].layer))
    assert binary.build("lenet5", "xnor", [0]).weight_param_groups(1.0) is None


def test_binaryconnect_recipe_trains_with_hinge_loss_and_decay(mnist_tiny):
    data = mnist_tiny
    tc = TrainConfig(iterations=4, batch_size=32, optimizer="sgd", momentum=0.0, lr=3.0, lr_final=0.1,
                     loss="squared_hinge", eval_every=2)
    cfg = binary.BinaryConfig(method="bc_stoch", arch="mlp_bc", binarize_first_last=True, seeds=(0, 1), train=tc,
                              order="cbap", recipe="binaryconnect", validation_size=50, curve_size=50)
    model, res = binary.train_binary(cfg, data)
    for layer in model.binarized_layers().values():
        assert weightfn.stored(layer).abs().max() <= 1.0  # clipped to [−H, H] in units of H
    assert len(res["test_acc"]) == 2
    with pytest.raises(ValueError, match="validation_size=10000"):
        binary.train_binary(binary.BinaryConfig(**{**cfg.__dict__, "validation_size": 10_000}), data)


def test_full_profile_configs_cover_the_paper_set():
    from lotterylib.claims import xnor as xn
    full, quick = xn.configs("full", 0), xn.configs("quick", 1)
    assert {"fp", "bc", "bc_stoch", "bwn", "bwn_learned", "xnor_unscaled", "xnor", "xnor_cbap", "xnor_k",
            "xnor_all_binary", "bc_mlp", "bc_mlp_stoch"} <= set(full)
    assert {f"cifar_{m}" for m in xn.CORE} <= set(full)
    assert all(len(c.seeds) == 3 for c in full.values())
    assert quick["xnor"].seeds == (10, 11, 12) and quick["xnor_all_binary"].binarize_first_last
    assert all(len(quick[n].seeds) == 3 for n in xn.CORE + xn.TABLE3)  # every quick ordering has 3 seeds
    assert quick["xnor_cbap"].order == "cbap" and quick["xnor_cbap"].method == "xnor"
    bc = full["bc_mlp_stoch"]  # BinaryConnect's MNIST run: 1000 epochs of 50,000 images at minibatch 200
    assert (bc.arch, bc.order, bc.recipe, bc.validation_size, bc.train.iterations * bc.train.batch_size) == \
        ("mlp_bc", "cbap", "binaryconnect", 10_000, 1000 * 50_000)
    assert not any(n.startswith("bc_mlp") for n in quick)  # full profile only


def test_best_validation_test_acc_takes_the_latest_best_epoch():
    from lotterylib.claims import xnor as xn
    hist = {"val_acc": [[0.5, 0.9, 0.8, 0.9], [0.7, 0.6, 0.95, 0.9]],
            "test_acc": [[0.4, 0.85, 0.99, 0.87], [0.6, 0.5, 0.93, 0.99]]}
    assert xn.best_validation_test_acc(hist) == [0.87, 0.93]


# --- the XN claim checks decide on numbers, and can fail ------------------------------------------------

def _xn_summary(**acc_override):
    import copy
    acc = {"fp": [0.976, 0.979, 0.975], "bwn": [0.977, 0.975, 0.978], "bwn_learned": [0.968, 0.965, 0.970],
           "xnor": [0.966, 0.962, 0.968], "xnor_cbap": [0.921, 0.930, 0.925], "xnor_all_binary": [0.955, 0.950, 0.952]}
    acc.update(acc_override)
    size = binary.model_size(binary.build("lenet5", "xnor", [0]))
    bench = {"exact": True, "ratio": 31.0, "ratio_with_packing": 28.0, "ratio_naive": 20.0, "torch_gflops": 100.0,
             "made": "`make bench` on a test machine"}
    early = {"bc_mlp": [0.9872, 0.9868, 0.9874], "bc_mlp_stoch": [0.9881, 0.9884, 0.9879]}  # 1.29 %, 1.19 % error
    return copy.deepcopy({"acc": acc, "size": {"xnor": size}, "early_stop_acc": early,
                          "kernel": {"exact": [{"shape": [7, 65, 9], "exact": True}], "bench": bench}})


def _verdicts(summary, profile="quick"):
    from lotterylib import claims
    return {c.id: v for c, v in claims.check("XN", summary, profile)}


def test_xn_checks_hold_on_a_paper_like_summary():
    v = _verdicts(_xn_summary())
    assert all(v[k].holds for k in ("XN-5", "XN-6", "XN-8", "XN-9", "XN-11"))
    # Table 3's orderings are shown in quick, decided in full
    assert v["XN-1"].holds is None and all(p.counts is False for p in v["XN-1"].parts)
    assert all(v[k].holds is None for k in ("XN-2", "XN-3", "XN-4", "XN-7", "XN-10"))  # not decidable in quick
    full = _verdicts(_xn_summary(xnor=[0.9922, 0.9925, 0.9921], xnor_cbap=[0.95, 0.96, 0.955]), "full")
    assert full["XN-1"].holds and [p.holds for p in full["XN-1"].parts] == [True, True]
    assert full["XN-4"].holds and full["XN-10"].holds and full["XN-7"].holds and full["XN-2"].holds is None


@pytest.mark.parametrize("override,part", [
    ({"bwn_learned": [0.977, 0.975, 0.978]}, 0),   # a learned α as good as the analytic one
    ({"bwn_learned": [0.975, 0.985, 0.960]}, 0),   # analytic α better on average, within the noise
    ({"bwn_learned": [0.985, 0.986, 0.984]}, 0),   # a learned α better
    ({"xnor_cbap": [0.966, 0.962, 0.968]}, 1),     # the block order does not matter
    ({"xnor_cbap": [0.976, 0.972, 0.978]}, 1),     # the typical block is better
])
def test_xn1_each_table3_part_can_fail(override, part):
    v = _verdicts(_xn_summary(**override), "full")["XN-1"]
    assert v.holds is False and v.parts[part].holds is False and v.parts[1 - part].holds is True
    assert "SE" in v.parts[part].measured  # it says what it compared, with the standard errors
    quick = _verdicts(_xn_summary(**override))["XN-1"]  # whatever quick measures, it does not decide it
    assert quick.holds is None and "undecided in quick" in quick.parts[part].measured


def test_xn11_xn7_xn4_xn10_can_fail():
    assert _verdicts(_xn_summary(xnor=[0.977, 0.975, 0.978]), "full")["XN-11"].holds is False  # inputs cost nothing
    assert _verdicts(_xn_summary(xnor=[0.985, 0.986, 0.984]))["XN-11"].holds is False  # XNOR better: fails in quick
    assert _verdicts(_xn_summary(xnor_all_binary=[0.966, 0.962, 0.968]), "full")["XN-7"].holds is False
    assert _verdicts(_xn_summary(xnor_all_binary=[0.966, 0.962, 0.968]), "quick")["XN-7"].holds is None
    assert _verdicts(_xn_summary(xnor=[0.9890, 0.9895, 0.9885]), "full")["XN-4"].holds is False  # 98.9 ≠ 99.23
    s = _xn_summary()
    s["early_stop_acc"]["bc_mlp"] = [0.9800, 0.9810, 0.9805]  # 1.95 % error: not the paper's 1.29 %
    v = _verdicts(s, "full")["XN-10"]
    assert v.holds is False and [p.holds for p in v.parts] == [False, True]


def test_xn_kernel_memory_and_speed_checks_can_fail():
    s = _xn_summary()
    s["kernel"]["exact"].append({"shape": [3, 100, 3], "exact": False})
    s["kernel"]["bench"]["ratio"] = 0.8  # slower than float32
    v = _verdicts(s)
    assert v["XN-8"].holds is False and v["XN-9"].holds is False
    s["kernel"]["bench"] = None  # no benchmark run: undecided, and it says what to run
    assert _verdicts(s)["XN-9"].holds is None and "make bench" in _verdicts(s)["XN-9"].note
    s = _xn_summary()
    s["size"]["xnor"]["binary_layers_packed"] *= 2  # not the bit-packed size
    assert _verdicts(s)["XN-5"].holds is False


def test_xn_claim_kinds():
    from lotterylib import claims
    kinds = {c.id: c.kind for c in claims.select("XN")}
    assert kinds == {"XN-1": "empirical", "XN-2": "cited", "XN-3": "cited", "XN-4": "empirical",
                     "XN-5": "invariant", "XN-6": "invariant", "XN-7": "empirical", "XN-8": "invariant",
                     "XN-9": "timing", "XN-10": "empirical", "XN-11": "empirical"}
