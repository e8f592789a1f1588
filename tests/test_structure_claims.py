"""Chapter 08's checks decide from per-seed values: they hold, fail and stay undecided when they should."""

import pytest

from lotterylib import claims
from lotterylib.claims import structure


def _mlp_summary(lowrank=(0.968, 0.970, 0.966), node=(0.965, 0.967, 0.963), dense=(0.972, 0.971, 0.969)):
    return {"dense_weights": 266200, "dense_as_long": list(dense), "claim_ranks": [32, 16],
            "lowrank": [{"ranks": [32, 16], "weights": 42088, "finetuned_test_acc": list(lowrank)}],
            "node_claim": {"units": [60, 20], "weights": 48440, "finetuned_test_acc": list(node)}, "bench": {}}


def _kd_summary(hard=(0.90, 0.905, 0.899), soft=(0.93, 0.925, 0.935)):
    return {"hard_test_acc": list(hard), "distilled": [{"temperature": 20.0, "test_acc": list(soft)}],
            "claim_temperature": 20.0, "student": [784, 100, 100, 10], "transfer": 1000,
            "teacher_widths": [784, 300, 100, 10], "teacher_test_acc": [0.96, 0.955, 0.966], "n_test": 10000}


def _verdicts(prefix, summary, profile="quick"):
    return {c.id: v for c, v in claims.check(prefix, summary, profile)}


def test_band_holds_fails_and_needs_seeds():
    assert _verdicts("LR", _mlp_summary())["LR-1"].holds
    assert _verdicts("LR", _mlp_summary(lowrank=(0.95, 0.952, 0.951)))["LR-1"].holds is False  # 2 pp below
    # Inside the band on average, but too noisy: the lower end of the 2-SE interval is below −1 pp.
    assert _verdicts("LR", _mlp_summary(lowrank=(0.99, 0.94, 0.965)))["LR-1"].holds is False
    assert _verdicts("LR", _mlp_summary(lowrank=(0.968,), dense=(0.97,)))["LR-1"].holds is None
    assert _verdicts("NODE", _mlp_summary())["NODE-1"].holds
    assert _verdicts("NODE", _mlp_summary(node=(0.95, 0.949, 0.951)))["NODE-1"].holds is False


def test_kd1_is_an_ordering_by_two_se():
    assert _verdicts("KD", _kd_summary())["KD-1"].holds
    assert _verdicts("KD", _kd_summary(soft=(0.90, 0.906, 0.898)))["KD-1"].holds is False
    assert _verdicts("KD", _kd_summary())["KD-2"].holds is None  # the paper's sizes: full profile only


def test_kd2_reports_the_papers_errors_in_full():
    v = _verdicts("KD", _kd_summary(hard=(0.9854, 0.9856, 0.9852), soft=(0.9926, 0.9925, 0.9927)), "full")["KD-2"]
    assert v.holds
    cited = [p for p in v.parts if p.kind == "cited"]
    assert cited and cited[0].measured.endswith("146 / 74")


def test_lr3_is_timing_and_reads_the_bench_record():
    assert claims.CLAIMS["LR-3"].kind == "timing"
    s = _mlp_summary()
    assert _verdicts("LR", s)["LR-3"].holds is None  # no record: undecided, never an error

    def rec(ratio):
        return {"value": 0.1, "baseline": 0.1 * ratio, "ratio": ratio, "machine": "test", "date": "2026-01-01"}
    s["bench"] = {"structure_lowrank_b1": rec(1.3), "structure_nodes_b1": rec(1.6), "structure_csr_b1": rec(0.4)}
    assert _verdicts("LR", s)["LR-3"].holds
    s["bench"]["structure_csr_b1"] = rec(1.5)
    assert _verdicts("LR", s)["LR-3"].holds is False


@pytest.mark.parametrize("claim", ["LR-2", "NODE-2", "CH-1", "CH-2", "GL-1"])
def test_cited_claims_decide_nothing(claim):
    c = claims.CLAIMS[claim]
    assert c.kind == "cited"
    assert c.check(_mlp_summary(), "quick").holds is None


def test_chapter_registry_names_the_chapter():
    for prefix in ("LR", "NODE", "CH", "GL", "KD"):
        assert claims.CHAPTERS[prefix] == "notebooks/08_structure"


def test_gl2_is_an_invariant_that_can_fail():
    s = _mlp_summary()
    s["widths"] = [784, 300, 100, 10]
    s["group_lasso"] = {"trained_test_acc": [0.85, 0.86], "removed_test_acc": [0.85, 0.86], "max_logit_change": 1e-6,
                        "widths": [784, 40, 70, 10]}
    assert claims.CLAIMS["GL-2"].kind == "invariant"
    assert _verdicts("GL", s)["GL-2"].holds
    s["group_lasso"]["removed_test_acc"] = [0.85, 0.8601]  # one prediction changed
    assert _verdicts("GL", s)["GL-2"].holds is False
    s["group_lasso"].update(removed_test_acc=[0.85, 0.86], max_logit_change=0.2)
    assert _verdicts("GL", s)["GL-2"].holds is False


def test_ch3_orders_lasso_with_refit_against_l1_without():
    def rows(l1_acc, lasso_acc, l1_err=(0.6, 0.62, 0.68), lasso_err=(0.005, 0.005, 0.004)):
        return [{"keep": 4, "method": "l1", "test_acc": list(l1_acc), "relative_error": list(l1_err)},
                {"keep": 4, "method": "lasso_refit", "test_acc": list(lasso_acc), "relative_error": list(lasso_err)}]
    s = {"claim_keep": 4, "channels": 16, "rows": rows((0.48, 0.51, 0.40), (0.75, 0.77, 0.77))}
    assert _verdicts("CH", s)["CH-3"].holds
    s["rows"] = rows((0.75, 0.77, 0.76), (0.75, 0.77, 0.77))  # no accuracy gain: the claim fails
    assert _verdicts("CH", s)["CH-3"].holds is False
