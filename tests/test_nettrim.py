"""Net-Trim: the ADMM solver agrees with the exact cvxpy program, stays feasible, refuses bad inputs."""

import math

import pytest
import torch

from lotterylib import claims, models, nettrim, toydata
from lotterylib.claims import nt as nt_claims

TIGHT = dict(tol=1e-6, obj_tol=1e-9, max_iter=20000)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    out = nettrim.signals(model, x)[-1]
    out_n = nettrim.signals(nettrim.to_model(normalized), x)[-1]  # stored in float32, as every model
    assert scale > 0 and torch.allclose(out_n, scale * out, rtol=1e-4, atol=1e-6 * float(out_n.abs().max()))
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


# --- claim checks on made-up summaries: each holds on a good one and fails on a counter-example -----

def _run(i, factor=15.0, rd=0.03, acc=0.98, acc_after=None, cascade_nnz=3000, ratio=(0.99, 0.01, 1e-4)):
    """One spirals net's record; ``i`` jitters the values so the seeds have a standard error."""
    bounds, layer2 = [1.0, 2.0, 3.0], round(40000 / (factor + 0.3 * i))
    nt1 = {"rd_train": rd + 0.001 * i, "original_nonzeros": [400, 40000, 400], "nonzeros": [398, layer2, 100],
           "test_acc": (acc if acc_after is None else acc_after) + 0.0005 * i}
    par = [{"rd_train": r, "nonzeros": [400, n, 60]} for r, n in ((0.03, 6000), (0.06, 4500), (0.12, 3500))]
    cas = [{"rd_train": 0.05, "nonzeros": [400, cascade_nnz + 50 * i, 40]}]
    kappa = [{"rd_train": 0.02, "nonzeros": [400, 4000, 100]}, {"rd_train": 0.06, "nonzeros": [400, 2400, 60]}]
    thm = {"layer_discrepancy": [b * r for b, r in zip(bounds, ratio)], "bounds": bounds, "slack": [1e-4] * 3,
           "original_l1": [1.0, 1.0, 1.0]}
    return {"seed": i, "test_acc": acc + 0.0005 * i, "nt1": nt1,
            "sweep": {"parallel": par, "cascade": cas, "cascade_kappa": kappa},
            "theorems": {"parallel": thm, "cascade": dict(thm)}}


def _mnist(seeds=3, nt_minus_mag=(0.001, 0.01, 0.05), removed=(0.7, 0.92, 0.95)):
    runs = []
    for i in range(seeds):
        pts = [{"fraction_kept": 1 - r + 0.001 * i, "nettrim_acc": 0.975 + 0.001 * i,
                "magnitude_acc": 0.975 + 0.001 * i - d - 0.0005 * i} for r, d in zip(removed, nt_minus_mag)]
        runs.append({"seed": i, "test_acc": 0.98 + 0.001 * i, "points": pts})
    return {"config": {"gains": [0.05, 0.1, 0.2], "samples": 1000}, "runs": runs}


def _summary(seeds=3, mnist=None, **run):
    return {"spirals": {"samples": 200, "runs": [_run(i, **run) for i in range(seeds)]}, "mnist": mnist or _mnist()}


def _verdicts(summary, profile="full"):
    return {c.id: v for c, v in claims.check("NT", summary, profile)}


def test_nt_claim_kinds():
    kinds = {c.id: c.kind for c in claims.select("NT")}
    assert kinds == {**{f"NT-{i}": "empirical" for i in range(1, 8)}, "NT-8": "invariant", "NT-9": "invariant"}
    assert "1806.06457" in claims.CLAIMS["NT-7"].paper and "read" in claims.CLAIMS["NT-1"].paper_value


def test_nt_checks_hold_on_a_good_summary():
    held = _verdicts(_summary())
    for cid in ("NT-1", "NT-3", "NT-6", "NT-7", "NT-8", "NT-9"):
        assert held[cid].holds, (cid, held[cid])
    assert held["NT-2"].holds is None
    quick = _verdicts(_summary(), "quick")
    assert quick["NT-6"].holds is None and quick["NT-7"].holds is None and quick["NT-1"].holds


def test_nt1_fails_on_each_counter_example():
    parts = lambda v: {p.label: p.holds for p in v.parts}  # noqa: E731
    thin = _verdicts(_summary(factor=10.0))["NT-1"]  # layer 2 only ÷10, SE ≈ 0.2: well below ÷14.9
    assert thin.holds is False and parts(thin)["layer 2 ÷ vs the paper's ÷14.9"] is False
    moved = _verdicts(_summary(rd=0.09))["NT-1"]  # the output moves twice as far as the paper's
    assert moved.holds is False and parts(moved)["ε_rd vs the paper's 0.046"] is False
    worse = _verdicts(_summary(acc=0.98, acc_after=0.97))["NT-1"]  # a 1 pp loss, SE ≈ 0.1 pp
    assert worse.holds is False
    assert _verdicts(_summary(rd=0.0455))["NT-1"].holds  # mean 0.0465 ± 0.0006: consistent with 0.046
    assert _verdicts(_summary(seeds=1))["NT-1"].holds is None  # one seed: no standard error, no verdict


def test_nt1_reports_layer2_at_the_papers_discrepancy():
    note = _verdicts(_summary())["NT-1"].note
    assert "at the paper's ε_rd 0.046" in note and "3 of 3 nets" in note
    run = _run(0)
    assert 2400 < nt_claims.at_discrepancy(run, 0.046) < 4000
    assert nt_claims.at_discrepancy(run, 0.5) is None


def test_nt3_fails_when_cascade_is_not_sparser():
    assert _verdicts(_summary(cascade_nnz=6000))["NT-3"].holds is False
    pairs = nt_claims.nt3_comparison(_run(0))
    assert len(pairs) == 1 and 4500 < pairs[0]["parallel"] < 6000


def test_nt6_fails_when_magnitude_pruning_is_as_good_or_better():
    assert _verdicts(_summary(mnist=_mnist(nt_minus_mag=(-0.01, 0.0, 0.0))))["NT-6"].holds is False
    assert _verdicts(_summary(mnist=_mnist(nt_minus_mag=(0.0, 0.0, 0.0))))["NT-6"].holds is False
    assert _verdicts(_summary(mnist=_mnist(seeds=1)))["NT-6"].holds is None


def test_nt7_decides_the_stated_range_and_reports_the_loss():
    v = _verdicts(_summary())["NT-7"]
    assert v.holds and "loss" in v.measured and "very little" in v.note
    assert _verdicts(_summary(mnist=_mnist(removed=(0.5, 0.7, 0.85))))["NT-7"].holds is False
    assert _verdicts(_summary(mnist=_mnist(removed=(0.5, 0.985, 0.995))))["NT-7"].holds is False


@pytest.mark.parametrize("claim, mode", [("NT-8", "parallel"), ("NT-9", "cascade")])
def test_a_violated_theorem_bound_fails(claim, mode):
    s = _summary()
    assert _verdicts(s)[claim].holds
    s["spirals"]["runs"][1]["theorems"][mode]["layer_discrepancy"][2] = 3.1  # bound 3, slack 1e-4
    v = _verdicts(s)[claim]
    assert v.holds is False and v.value > 1


def _soft_threshold(g, t):  # the formula solve_admm's W-update implements
    return torch.sign(g) * torch.clamp(g.abs() - t, min=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_softshrink_is_the_admm_soft_threshold_value_for_value(dtype):
    # solve_admm uses F.softshrink for its W-update; the iterates (and the book's Net-Trim numbers) stay
    # the same only if it equals the formula exactly, at the threshold and at zero too.
    t = 0.1
    g = torch.cat([torch.randn(5000, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype),
                   torch.tensor([0.0, -0.0, t, -t, 2 * t, -2 * t, 1e-30, -1e-30], dtype=dtype)])
    assert torch.equal(torch.nn.functional.softshrink(g, t), _soft_threshold(g, t))
    hard = torch.where(g.abs() > t, g, torch.zeros_like(g))  # a hard threshold is another function: caught
    assert not torch.equal(hard, _soft_threshold(g, t))
