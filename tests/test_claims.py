import copy
import subprocess
import sys

import pytest

from lotterylib import claims
from lotterylib.claims import lt


def _summary(ticket_gain=0.006, reinit_loss=0.02, oneshot_gain=0.004):
    """A synthetic quick-profile LT summary: dense 96%, tickets/reinit/one-shot around it."""
    rows = []
    seeds = [0.0, 0.001, -0.001]
    rows.append({"round": 0, "weights_remaining": 1.0, "variant": "ticket", "early_stop_iteration": 1000,
                 "test_acc": 0.96, "per_seed_test_acc": [0.96 + d for d in seeds],
                 "per_seed_early_val_acc": [0.94 + d for d in seeds], "early_iteration": 200})
    for r, pm in enumerate([0.5, 0.25, 0.126, 0.063], start=1):
        for variant, delta in (("ticket", ticket_gain), ("reinit", -reinit_loss)):
            rows.append({"round": r, "weights_remaining": pm, "variant": variant, "early_stop_iteration": 1000,
                         "test_acc": 0.96 + delta, "per_seed_test_acc": [0.96 + delta + d for d in seeds],
                         "per_seed_early_val_acc": [0.94 + delta + d for d in seeds], "early_iteration": 200})
    for r, pm, delta in ((2, 0.25, oneshot_gain), (4, 0.063, ticket_gain - 0.004)):
        rows.append({"round": r, "weights_remaining": pm, "variant": "oneshot", "early_stop_iteration": 1000,
                     "test_acc": 0.96 + delta, "per_seed_test_acc": [0.96 + delta + d for d in seeds],
                     "per_seed_early_val_acc": [0.94 + d for d in seeds], "early_iteration": 200})
    return {"profile": "quick", "rows": rows}


def test_lt_checks_hold_on_a_paper_like_summary():
    verdicts = dict((c.id, v) for c, v in claims.check("LT", _summary(), "quick"))
    assert verdicts["LT-2"].holds is None
    assert all(verdicts[k].holds for k in ("LT-1", "LT-3", "LT-4", "LT-5"))


@pytest.mark.parametrize("kwargs,failing", [
    ({"ticket_gain": -0.002}, {"LT-1", "LT-3"}),
    ({"reinit_loss": -0.01}, {"LT-4"}),
    ({"oneshot_gain": -0.003}, {"LT-5"}),
])
def test_lt_checks_can_fail(kwargs, failing):
    verdicts = claims.check("LT", _summary(**kwargs), "quick")
    assert {c.id for c, v in verdicts if v.holds is False} >= failing
    with pytest.raises(AssertionError, match="claims not reproduced"):
        claims.assert_hold(verdicts)


def test_registry_errors():
    with pytest.raises(KeyError, match="no claim matches"):
        claims.select("NOPE")
    with pytest.raises(ValueError, match="unknown profile"):
        claims.check("LT", _summary(), "medium")
    with pytest.raises(KeyError, match="unknown experiment"):
        claims.run_experiment("nope", "quick")
    assert [c.id for c in claims.select("LT-3")] == ["LT-3"]
    with pytest.raises(KeyError, match="unknown experiment"):
        claims.committed("nope")


def test_committed_needs_no_prior_import_of_the_chapter_module(tmp_path):
    # A fresh interpreter where only lotterylib.claims is imported: the experiment is found by name.
    code = ("from lotterylib import claims; import sys; "
            "assert 'lotterylib.claims.dlt' not in sys.modules; "
            f"assert claims.committed('dlt', results={str(tmp_path)!r}) is None; "
            "print(type(claims.settings_of('dlt', 'full', 0)).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Settings"


def test_undecidable_only_is_not_a_pass():
    only_lt2 = [(claims.CLAIMS["LT-2"], claims.Verdict(None, "—"))]
    with pytest.raises(AssertionError, match="proved nothing"):
        claims.assert_hold(only_lt2)


def test_full_profile_lt1_uses_early_stop_iterations():
    s = copy.deepcopy(_summary())
    # full-profile grid: Pm 100, 51.3, 21.1, 3.6 with the paper's ordering of early-stop iterations
    s["rows"] = [r for r in s["rows"] if r["round"] == 0]
    for pm, it in ((0.513, 900), (0.211, 700), (0.036, 1050)):
        s["rows"].append({"round": 1, "weights_remaining": pm, "variant": "ticket", "early_stop_iteration": it,
                          "test_acc": 0.96, "per_seed_test_acc": [0.96] * 3})
    assert lt.check_lt1(s, "full").holds
    s["rows"][-2]["early_stop_iteration"] = 950  # 21.1% slower than 51.3%: ordering broken
    assert lt.check_lt1(s, "full").holds is False


def test_scoreboard_lists_every_claim_with_its_status(tmp_path):
    records = [claims.record(c, v, "quick", 0) for c, v in claims.check("LT", _summary(), "quick")]
    awaiting = claims.run("LT", "full", 0, claims.Context(compute=False, results=tmp_path))
    page = claims.scoreboard(records, awaiting)
    assert page.startswith("# Claims scoreboard")
    assert "**4 of 4** decided empirical claims hold" in page and "**0 of 0**" in page
    for r in records:
        assert f"| {r['id']} |" in page
    assert "python -m lotterylib run --profile full --only LT" in page and "notebooks/02_lottery_ticket" in page


def _dlt_imp(acc_at: dict[int, dict[str, float]]) -> dict:
    """A DLT summary's ``imp`` table with rounds 7 (Pm 21 %) and 12 (Pm 7 %) only: a run cut short."""
    rounds = [0, 7, 12]
    acc: dict = {}
    for rnd, by_name in acc_at.items():
        for name, a in by_name.items():
            acc.setdefault(name, {})[str(rnd)] = [a, a, a]
    return {"imp": {"rounds": rounds, "weights_remaining": [1.0, 0.8 ** 7, 0.8 ** 12], "acc": acc},
            "complete": False}


def test_dlt1_on_a_run_cut_short_is_judged_on_the_points_it_reached():
    from lotterylib.claims import dlt
    good = {"large_final": 0.983, "magnitude_increase": 0.983, "movement": 0.981, "random": 0.97, "small_final": 0.9}
    verdict = dlt.check_dlt1(_dlt_imp({7: good, 12: good}), "full")
    assert verdict.holds is None and "Pm 3.6% not reached" in verdict.note and "Pm 21.0%" in verdict.measured
    bad = dict(good, random=0.99)  # random above the tickets at Pm 7 %: decided, whatever Pm 3.6 % shows
    verdict = dlt.check_dlt1(_dlt_imp({7: good, 12: bad}), "full")
    assert verdict.holds is False and "ordering fails" in verdict.measured


@pytest.mark.parametrize("source,message", [
    ("import no_such_package_for_lotterylib\n",
     r"lotterylib\.claims\.broken_chapter cannot be loaded: they need the package 'no_such_package_for_lotterylib', "
     r"which is not installed; install it \(pip install no_such_package_for_lotterylib\)"),
    ("from lotterylib.no_such_module import x\n",
     r"lotterylib\.claims\.broken_chapter cannot be loaded \(No module named 'lotterylib\.no_such_module'\); "
     r"this lotterylib is incomplete: reinstall it"),
])
def test_a_claims_module_that_cannot_be_imported_is_an_error_not_a_shorter_registry(source, message, tmp_path,
                                                                                   monkeypatch):
    # A chapter module next to the real ones (the package's search path extended by a folder) whose import fails.
    (tmp_path / "broken_chapter.py").write_text(source)
    monkeypatch.setattr(claims, "__path__", [*claims.__path__, str(tmp_path)])
    with pytest.raises(claims.ClaimsImportError, match=message):
        claims.load_all()
    with pytest.raises(claims.ClaimsImportError):
        claims.select("LT")  # so the CLI and the chapters stop too


def test_a_missing_dependency_of_a_real_claims_module_names_it(monkeypatch):
    import importlib
    real = importlib.import_module

    def without_numba(name, *args):
        if name == "lotterylib.claims.xnor":
            raise ModuleNotFoundError("No module named 'numba'", name="numba")
        return real(name, *args)
    monkeypatch.setattr(importlib, "import_module", without_numba)
    with pytest.raises(claims.ClaimsImportError, match=r"lotterylib\.claims\.xnor .*'numba'.*pip install numba"):
        claims.load_all()


def test_a_failing_timing_claim_is_reported_never_asserted_and_the_tally_counts_empirical_claims():
    def claim(cid, kind):
        return claims.Claim(cid, "p", "s", "v", "t", "x", lambda s, p: claims.Verdict(False, "m"), kind=kind)
    timing = (claim("T-1", "timing"), claims.Verdict(False, "3× slower under load"))
    held = (claim("E-1", "empirical"), claims.Verdict(True, "ok"))
    assert claims.assert_hold([held, timing]) == 1  # the timing failure does not fail a chapter
    for kind in ("empirical", "invariant"):
        with pytest.raises(AssertionError, match="X-1"):
            claims.assert_hold([held, (claim("X-1", kind), claims.Verdict(False, "no"))])
    with pytest.raises(AssertionError, match="proved nothing"):
        claims.assert_hold([timing])
    records = [claims.record(c, v, "quick", 0) for c, v in (held, timing)]
    records.append(claims.record(claim("C-1", "cited"), claims.Verdict(None, "—"), "quick", 0))
    assert claims.tally(records).startswith("1 of 1 decided empirical claims hold")
    assert "0 of 1 timings hold on this machine (not asserted)" in claims.tally(records) and "1 cited only" in claims.tally(records)
    assert claims.failing(records) == []
    with pytest.raises(ValueError, match="unknown kind"):
        claim("B-1", "anecdotal")
