"""Net-Trim: the ADMM solver agrees with the exact cvxpy program, stays feasible, refuses bad inputs."""

import math

import pytest
import torch

from lotterylib import claims, models, nettrim, toydata
from lotterylib.claims import nt as nt_claims

TIGHT = dict(tol=1e-6, obj_tol=1e-9, max_iter=20000)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(30, 10, 300), (12, 6, 80)])
def test_admm_agrees_with_cvxpy_relu_layer(seed, shape):
    X, Y, _ = nettrim.random_relu_layer(*shape, seed=seed)
    r = nettrim.compare_solvers(X, Y, 0.05 * float(Y.norm()), admm=TIGHT)
    assert r["gap"] <= 1e-3, r["gap"]
    assert r["support_diff"] == 0
    assert r["ball_violation"] <= 1e-4 and r["ineq_violation"] <= 1e-4
    assert r["cvxpy"].ball_violation <= 1e-6 and r["cvxpy"].ineq_violation <= 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_admm_agrees_with_cvxpy_linear_and_per_neuron(seed):
    X, Y, U = nettrim.random_relu_layer(20, 5, 150, seed=seed)
    Z = U.T @ X  # a linear (last) layer: no ReLU, the whole output is in the ball
    r = nettrim.compare_solvers(X, Z, 0.05 * float(Z.norm()), relu=False, admm=TIGHT)
    assert r["gap"] <= 1e-3 and r["support_diff"] == 0
    eps = 0.05 * Y.norm(dim=1)  # one ball per neuron
    r = nettrim.compare_solvers(X, Y, eps, admm=TIGHT)
    assert r["gap"] <= 1e-3 and r["support_diff"] == 0
    assert r["admm"].discrepancy.shape == (5,)
    assert bool((r["cvxpy"].discrepancy <= eps * (1 + 1e-6)).all())


def test_qr_reduction_gives_the_same_optimum():
    X, Y, _ = nettrim.random_relu_layer(8, 4, 200, seed=3)  # |Ω_m| ≫ N: the reduction applies
    eps = 0.05 * float(Y.norm())
    a = nettrim.solve_cvxpy(X, Y, eps, reduce=True)
    b = nettrim.solve_cvxpy(X, Y, eps, reduce=False)
    assert abs(a.objective - b.objective) / b.objective < 1e-5


def test_sparser_than_the_original_and_feasible_with_defaults():
    X, Y, U = nettrim.random_relu_layer(40, 20, 400, seed=0, density=1.0)
    eps = 0.05 * float(Y.norm())
    t = nettrim.solve_admm(X, Y, eps)
    assert t.nonzeros < (U != 0).sum()
    assert t.objective < U.abs().sum()
    # The default (network) settings stop early; what they return is still close to feasible.
    assert t.ball_violation <= 1e-2 and t.ineq_violation <= 1e-2
    assert float(t.discrepancy) <= eps * 1.01


def test_warm_start_reproduces_and_speeds_up():
    X, Y, _ = nettrim.random_relu_layer(30, 10, 300, seed=1)
    eps = 0.05 * float(Y.norm())
    cold = nettrim.solve_admm(X, Y, eps, **TIGHT)
    warm = nettrim.solve_admm(X, Y, eps, warm=cold, **TIGHT)
    assert warm.iterations < cold.iterations
    assert abs(warm.objective - cold.objective) / cold.objective < 1e-4


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan")])
def test_bad_epsilon(eps):
    X, Y, _ = nettrim.random_relu_layer(5, 3, 20)
    with pytest.raises(ValueError, match="epsilon"):
        nettrim.solve_admm(X, Y, eps)
    with pytest.raises(ValueError, match="epsilon"):
        nettrim.solve_cvxpy(X, Y, eps)


def test_bad_inputs_give_clear_errors():
    X, Y, _ = nettrim.random_relu_layer(5, 3, 20)
    with pytest.raises(ValueError, match="empty active set"):
        nettrim.solve_admm(X, torch.zeros_like(Y), 1.0)
    with pytest.raises(ValueError, match="same number of samples"):
        nettrim.solve_admm(X, Y[:, :10], 1.0)
    with pytest.raises(ValueError, match="same number of samples"):
        nettrim.solve_cvxpy(X.T, Y, 1.0)
    bad = X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        nettrim.solve_admm(bad, Y, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        nettrim.solve_cvxpy(X, Y.masked_fill(Y > 0, float("inf")), 1.0)
    with pytest.raises(ValueError, match="negative"):
        nettrim.solve_admm(X, Y - 1, 1.0)
    with pytest.raises(ValueError, match="V must have"):
        nettrim.solve_admm(X, Y, 1.0, V=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="one value per output neuron"):
        nettrim.solve_admm(X, Y, torch.ones(7))
    with pytest.raises(ValueError, match="2-D"):
        nettrim.solve_admm(X[0], Y, 1.0)
    with pytest.raises(ValueError, match="unknown method"):
        nettrim.trim_layer(X, Y, 1.0, method="sgd")


def test_infeasible_linear_layer_is_refused():
    X, _, U = nettrim.random_relu_layer(3, 2, 50, seed=0)
    Z = U.T @ X + 0.5 * torch.randn(2, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match="infeasible"):
        nettrim.solve_admm(X, Z, 1e-3, relu=False)
    with pytest.raises(ValueError, match="infeasible"):
        nettrim.solve_cvxpy(X, Z, 1e-3, relu=False)


@pytest.fixture(scope="module")
def spiral_net():
    torch.set_num_threads(1)
    data = toydata.spirals_dataset(600, 100, 300, seed=0)
    model = models.MLP(1, [2, 24, 24, 2]).reset_parameters([0])
    from lotterylib.train import TrainConfig, train
    train(model, data, TrainConfig(iterations=600, batch_size=50, lr=5e-3, eval_every=300), [0], progress=False)
    return model, data


def test_parallel_and_cascade_on_a_small_net(spiral_net):
    model, data = spiral_net
    x = data.train.x[:200]
    par = nettrim.parallel(model, x, 0.02)
    cas = nettrim.cascade(model, x, 0.02, gamma=1.1)
    for r in (par, cas):
        assert len(r.weights) == 3 and sum(r.nonzeros) < sum(r.original_nonzeros)
        net = r.model()
        assert nettrim.nonzeros(net) == r.nonzeros  # the Masked weights are exactly the solution
        assert nettrim.relative_discrepancy(model, net, x) < 0.2
    # Layer 1 (V = 0) is guaranteed for any network: ‖Ŷ¹ − Y¹‖_F ≤ ε₁ (up to the solver's violation).
    d1 = nettrim.layer_discrepancies(model, par.model(), x)[0]
    assert d1 <= par.epsilons[0] * (1 + 1e-2)
    assert nettrim.theorem_bounds(par)[-1] == pytest.approx(sum(par.epsilons))
    assert nettrim.theorem_bounds(cas)[0] == pytest.approx(cas.epsilons[0])
    # Magnitude pruning at the same counts keeps exactly those counts.
    assert nettrim.nonzeros(nettrim.magnitude_prune(model, par.nonzeros)) == par.nonzeros


def test_network_level_bad_inputs(spiral_net):
    model, data = spiral_net
    x = data.train.x[:50]
    with pytest.raises(ValueError, match="epsilon_gain"):
        nettrim.parallel(model, x, 0.0)
    with pytest.raises(ValueError, match="one epsilon gain per layer"):
        nettrim.parallel(model, x, [0.1, 0.1])
    with pytest.raises(ValueError, match="γ"):
        nettrim.cascade(model, x, 0.1, gamma=0.5)
    with pytest.raises(ValueError, match="κ"):
        nettrim.cascade(model, x, 0.1, kappa=0.0)
    with pytest.raises(ValueError, match="NaN"):
        nettrim.parallel(model, x.masked_fill(x > 0.5, float("nan")), 0.1)
    with pytest.raises(ValueError, match="expected inputs|same number|features|shape"):
        nettrim.parallel(model, torch.zeros(10, 3), 0.1)
    with pytest.raises(ValueError, match="MLP"):
        nettrim.parallel(torch.nn.Linear(2, 2), x, 0.1)


def test_spirals_formula():
    x, y = toydata.spirals(400, noise=0.0, seed=0)
    assert x.shape == (400, 2) and y.shape == (400,) and set(y.tolist()) == {0, 1}
    assert float(x.norm(dim=1).max()) <= 1.0 + 1e-6
    x2, _ = toydata.spirals(400, noise=0.0, seed=0)
    assert torch.equal(x, x2)
    # Without noise every point lies on its arm: angle = 2π·turns·r + π·class (mod 2π).
    r, theta = x.norm(dim=1).double(), torch.atan2(x[:, 1], x[:, 0]).double()
    off = torch.remainder(theta - 2 * math.pi * 1.5 * r - math.pi * y, 2 * math.pi)
    assert float(torch.minimum(off, 2 * math.pi - off).max()) < 1e-4
    with pytest.raises(ValueError):
        toydata.spirals(1)


def test_link_normalize_keeps_the_decisions_and_normalizes_every_layer(spiral_net):
    model, data = spiral_net
    params = nettrim.layer_params(model)
    normalized, scale = nettrim.link_normalize(params)
    for w, b in normalized:
        assert float(w.abs().sum() + b.abs().sum()) == pytest.approx(1.0, rel=1e-12)
    x = data.test.x
    out, out_n = nettrim._forward(params, x)[-1], nettrim._forward(normalized, x)[-1]
    assert scale > 0 and torch.allclose(out_n, scale * out, rtol=1e-9, atol=1e-12 * float(out_n.abs().max()))
    assert torch.equal(out.argmax(1), out_n.argmax(1))
    with pytest.raises(ValueError, match="all-zero"):
        nettrim.link_normalize([(torch.zeros(2, 2), torch.zeros(2))])


def test_balanced_admm_solves_the_same_program():
    X, Y, _ = nettrim.random_relu_layer(30, 10, 300, seed=0)
    eps = 0.05 * float(Y.norm())
    r = nettrim.compare_solvers(X, Y, eps, admm=dict(TIGHT, balance=True))
    assert r["gap"] <= 1e-3 and r["support_diff"] == 0
    # The program is positively homogeneous in (Y, ε, U): outputs 10⁴ times smaller, weights too.
    a = nettrim.solve_admm(X, Y, eps, balance=True, **TIGHT)
    b = nettrim.solve_admm(X, 1e-4 * Y, 1e-4 * eps, balance=True, **TIGHT)
    assert torch.allclose(1e4 * b.weight, a.weight, rtol=1e-3, atol=1e-6 * float(a.weight.abs().max()))


def test_the_theorems_bounds_hold_on_a_link_normalized_net(spiral_net):
    model, data = spiral_net
    x = data.train.x[:200]
    normalized = nettrim.to_model(nettrim.link_normalize(nettrim.layer_params(model))[0])
    # Without rescaling, the ADMM's soft-threshold swamps weights this small and the answer is far
    # from feasible; with it, the answer is.
    assert nettrim.parallel(normalized, x, 0.02, max_iter=300).layers[1].ball_violation > 0.5
    for r in (nettrim.parallel(normalized, x, 0.02, balance=True),
              nettrim.cascade(normalized, x, 0.02, gamma=1.1, balance=True)):
        assert max(t.ball_violation for t in r.layers) <= 1e-2
        measured = nettrim.layer_discrepancies(normalized, r.model(), x)
        for m, bound, slack in zip(measured, nettrim.theorem_bounds(r), nettrim.solver_slack(r)):
            assert m <= bound * (1 + slack)


def test_solver_slack_multiplies_the_layers_violations(spiral_net):
    model, data = spiral_net
    r = nettrim.parallel(model, data.train.x[:100], 0.05)
    for t, v in zip(r.layers, (0.01, 0.0, 0.02)):
        t.ball_violation, t.excess = v, 0.0
    assert nettrim.solver_slack(r) == pytest.approx([0.01, 0.01, 1.01 * 1.02 - 1])


def test_excess_measures_the_off_omega_violation_in_units_of_epsilon():
    X, Y, U = nettrim.random_relu_layer(10, 4, 80, seed=2)
    exact = nettrim.solve_cvxpy(X, Y, 0.05 * float(Y.norm()))
    assert exact.excess <= 1e-6
    loose = nettrim.solve_admm(X, Y, 0.05 * float(Y.norm()), max_iter=10, check_every=10)
    over = torch.clamp(loose.weight.T @ X, min=0)[Y == 0]
    assert loose.excess == pytest.approx(float(over.norm()) / (0.05 * float(Y.norm())), rel=1e-9)


def _summary(cascade_nnz=3000, nt_minus_mag=(0.001, 0.01, 0.05), zeros=0.92):
    par = [{"rd_train": rd, "nonzeros": [400, n, 60]} for rd, n in ((0.03, 6000), (0.06, 4500), (0.12, 3500))]
    cas = [{"rd_train": 0.05, "nonzeros": [400, cascade_nnz, 40]}]
    nt1 = {"rd_train": 0.03, "original_nonzeros": [400, 40000, 400], "nonzeros": [398, 3500, 100], "test_acc": 1.0}
    kept = [0.3, 1 - zeros, 0.05]
    pts = [{"fraction_kept": k, "nettrim_acc": 0.975, "magnitude_acc": 0.975 - d} for k, d in zip(kept, nt_minus_mag)]
    return {"spirals": {"test_acc": 1.0, "samples": 500, "nt1": nt1, "sweep": {"parallel": par, "cascade": cas}},
            "mnist": {"test_acc": 0.98, "config": {"samples": 1000}, "points": pts}}


def test_nt_checks_hold_and_can_fail():
    held = {c.id: v for c, v in claims.check("NT", _summary(), "full")}
    assert held["NT-1"].holds and held["NT-3"].holds and held["NT-6"].holds and held["NT-7"].holds
    assert held["NT-2"].holds is None
    quick = {c.id: v for c, v in claims.check("NT", _summary(), "quick")}
    assert quick["NT-6"].holds is None and quick["NT-7"].holds is None and quick["NT-1"].holds
    s = _summary(cascade_nnz=6000, nt_minus_mag=(-0.01, 0.0, 0.0), zeros=0.5)
    s["mnist"]["points"][2]["nettrim_acc"] = 0.9  # the only ≥ 90 %-zeros point loses 8 pp
    bad = {c.id: v for c, v in claims.check("NT", s, "full")}
    assert bad["NT-3"].holds is False and bad["NT-6"].holds is False and bad["NT-7"].holds is False
    s = _summary()
    s["spirals"]["nt1"]["nonzeros"] = [398, 9000, 100]
    assert dict((c.id, v) for c, v in claims.check("NT-1", s, "quick"))["NT-1"].holds is False


def test_nt3_comparison_interpolates_in_range():
    pairs = nt_claims.nt3_comparison(_summary()["spirals"])
    assert len(pairs) == 1 and 4500 < pairs[0]["parallel"] < 6000
