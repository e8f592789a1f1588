import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None, timeout=1200):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "lotterylib", *args], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=timeout)


# --- bad input: one line on stderr, exit 2, before any work, the result cache untouched ----------

def snapshot(path: Path):
    """What a refused command must leave as it was: every path under a folder with its size, or a
    file's bytes."""
    if path.is_file():
        return path.read_bytes()
    if not path.exists():
        return None
    return sorted((str(p.relative_to(path)), p.stat().st_size if p.is_file() else -1) for p in path.rglob("*"))


def filled_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    entry = cache / "imp" / "imp_round-0123456789abcdef"
    entry.mkdir(parents=True)
    (entry / "config.json").write_text('{"config": {}}')
    (entry / "MANIFEST.json").write_text('{"files": {}}')
    return cache


def mnist_copy(tmp_path: Path, data_root: Path) -> Path:
    """A writable copy of MNIST (the shared files are read-only), to corrupt."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    shutil.copytree(data_root / "MNIST" / "raw", raw)
    for f in raw.iterdir():
        os.chmod(f, 0o644)
    return tmp_path / "data"


def truncated_mnist(tmp_path, data_root):
    root = mnist_copy(tmp_path, data_root)
    f = root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:1000])
    return root


def altered_mnist(tmp_path, data_root):
    """Same length, some bytes changed: only the checksum can tell."""
    root = mnist_copy(tmp_path, data_root)
    f = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    body = bytearray(f.read_bytes())
    body[-20:-10] = bytes(b ^ 0xFF for b in body[-20:-10])
    f.write_bytes(bytes(body))
    assert f.stat().st_size == (data_root / "MNIST" / "raw" / f.name).stat().st_size
    return root


def corrupt_lt_result(tmp_path) -> Path:
    """A results folder whose full-profile LT result, where the run would read it, is not JSON."""
    from lotterylib import results
    from lotterylib.claims import lt
    folder = tmp_path / "results"
    where = results.path("lt_lenet_mnist", "full", 0, lt.lt_settings("full", 0), folder)
    where.parent.mkdir(parents=True)
    where.write_text('{"format": 1, "summ')
    return folder


def can_write_in(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_text("")
    except OSError:
        return False
    probe.unlink()
    return True


def read_only(folder: Path, undo: list) -> None:
    """Make ``folder`` read-only, also for root (which chmod does not stop): then an immutable folder."""
    os.chmod(folder, 0o555)
    undo.append(lambda: os.chmod(folder, 0o755))
    if can_write_in(folder) and shutil.which("chattr"):
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
            undo.insert(0, lambda: subprocess.run(["chattr", "-i", str(folder)], check=True))
    if can_write_in(folder):
        pytest.skip("this user can write into a read-only folder (root without chattr): nothing to refuse")


def cuda_absent():
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")


# id → (args, environment, fragment of the message) made by a function of (tmp_path, data_root, cache, undo).
# Every case names a folder cache, filled, and sets $LOTTERYLIB_CACHE to it too, so that no case touches the
# user's cache; the "is a file" cases point one of them at a file instead.
BAD_INPUT = {
    "unknown profile": lambda t, d, c, u: (["claims", "--profile", "medium"], {}, "unknown profile 'medium'"),
    "unknown claim": lambda t, d, c, u: (["claims", "--profile", "quick", "--only", "ZZ"], {}, "no claim matches 'ZZ'"),
    "unknown claim (run)": lambda t, d, c, u: (["run", "--only", "ZZ"], {}, "no claim matches 'ZZ'"),
    "unknown device": lambda t, d, c, u: (["claims", "--profile", "quick", "--only", "LT", "--device", "tpu9"], {},
                                          "unknown device 'tpu9'"),
    "unknown device (run)": lambda t, d, c, u: (["run", "--only", "LT-1", "--device", "tpu9"], {}, "unknown device"),
    "unknown device (scoreboard)": lambda t, d, c, u: (["scoreboard", "--out", str(t / "s.md"), "--device", "tpu9"],
                                                       {}, "unknown device"),
    "seed not an integer": lambda t, d, c, u: (["claims", "--profile", "quick", "--seed", "x"], {}, "invalid int value 'x'"),
    "seed not an integer (run)": lambda t, d, c, u: (["run", "--seed", "1.5"], {}, "invalid int value '1.5'"),
    "unwritable --json": lambda t, d, c, u: (["claims", "--profile", "quick", "--only", "LT", "--json",
                                              "/proc/no/such/dir/out.json"], {}, "cannot write --json"),
    "unwritable --out": lambda t, d, c, u: (["scoreboard", "--out", "/proc/no/such/page.md"], {}, "cannot write --out"),
    "missing data root": lambda t, d, c, u: (["claims", "--profile", "quick", "--only", "LT-3", "--data-root",
                                              "/nonexistent"], {}, "missing"),
    "missing data root (run)": lambda t, d, c, u: (["run", "--profile", "quick", "--only", "HAN", "--data-root",
                                                    "/nonexistent"], {}, "missing"),
    "truncated data file": lambda t, d, c, u: (["claims", "--profile", "quick", "--only", "LT", "--data-root",
                                                str(truncated_mnist(t, d))], {}, "corrupt"),
    "data file with the wrong checksum": lambda t, d, c, u: (["run", "--only", "LT-1", "--data-root",
                                                              str(altered_mnist(t, d))], {}, "corrupt"),
    "data file with the wrong checksum (scoreboard)": lambda t, d, c, u: (
        ["scoreboard", "--out", str(t / "s.md"), "--data-root", str(altered_mnist(t, d))], {}, "corrupt"),
    "read-only cache": lambda t, d, c, u: (read_only(c, u) or ["claims", "--profile", "quick", "--only", "LT"], {},
                                           "read-only"),
    "read-only cache (run)": lambda t, d, c, u: (read_only(c, u) or ["run", "--only", "LT-1"], {}, "read-only"),
    "cache is a file (--cache)": lambda t, d, c, u: (["claims", "--profile", "quick", "--only", "LT", "--cache",
                                                      str(t / "cache-file")], {}, "is a file"),
    "cache is a file ($LOTTERYLIB_CACHE)": lambda t, d, c, u: (["run", "--only", "LT-1"],
                                                               {"LOTTERYLIB_CACHE": str(t / "cache-file")}, "is a file"),
    "cache is a file ($LOTTERYLIB_CACHE, scoreboard)": lambda t, d, c, u: (
        ["scoreboard", "--out", str(t / "s.md")], {"LOTTERYLIB_CACHE": str(t / "cache-file")}, "is a file"),
    "corrupt stored result (run)": lambda t, d, c, u: (["run", "--only", "LT-1", "--results", str(corrupt_lt_result(t))],
                                                       {}, "unreadable"),
    "corrupt stored result (claims)": lambda t, d, c, u: (["claims", "--profile", "full", "--only", "LT", "--results",
                                                           str(corrupt_lt_result(t))], {}, "unreadable"),
    "corrupt stored result (scoreboard)": lambda t, d, c, u: (["scoreboard", "--out", str(t / "s.md"), "--results",
                                                               str(corrupt_lt_result(t))], {}, "unreadable"),
    "deadline 0": lambda t, d, c, u: (["run", "--only", "LT-1", "--deadline-minutes", "0"], {}, "positive number of minutes"),
    "deadline -5": lambda t, d, c, u: (["run", "--only", "LT-1", "--deadline-minutes", "-5"], {},
                                       "positive number of minutes"),
    "cuda on a machine without": lambda t, d, c, u: (cuda_absent() or ["claims", "--profile", "quick", "--only", "LT",
                                                                        "--device", "cuda"], {},
                                                     "CUDA was requested but this machine has none; use --device cpu"),
    "cuda on a machine without (run)": lambda t, d, c, u: (cuda_absent() or ["run", "--only", "LT-1", "--device",
                                                                              "cuda:0"], {}, "use --device cpu"),
}

# What a message must do beyond naming the problem: say what to do.
INSTRUCTION = re.compile(r"\b(use|give|pass|set|choose|point|put|replace|restore|delete|make it|leave)\b", re.I)


def cli_in_process(args, env, monkeypatch, capsys):
    """``python -m lotterylib ARGS`` in this process (its exit code, stdout, stderr): the bad-input matrix
    pays one import of the library instead of one per case; SUBPROCESS_CASES run as a real process."""
    from types import SimpleNamespace

    from lotterylib.cli import main
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's refusals
        code = exit_.code
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


#: Cases also run as a separate ``python -m lotterylib`` process: the exit status and stderr a shell sees.
SUBPROCESS_CASES = ("unknown profile", "seed not an integer", "data file with the wrong checksum",
                    "cuda on a machine without")


@pytest.mark.parametrize("kind,how", [(k, "in process") for k in BAD_INPUT] + [(k, "subprocess") for k in SUBPROCESS_CASES],
                         ids=[k for k in BAD_INPUT] + [f"{k} (a process)" for k in SUBPROCESS_CASES])
def test_bad_input_is_one_line_exit_2_before_any_work(kind, how, tmp_path, data_root, monkeypatch, capsys):
    cache = filled_cache(tmp_path)
    cache_file = tmp_path / "cache-file"
    cache_file.write_bytes(b"not a folder\n")
    undo: list = []
    try:
        args, env, message = BAD_INPUT[kind](tmp_path, data_root, cache, undo)
        if "--cache" not in args:
            args = [*args, "--cache", str(cache)] if "LOTTERYLIB_CACHE" not in env else args
        before = snapshot(cache), snapshot(cache_file)
        env = {"LOTTERYLIB_DATA": str(data_root), "LOTTERYLIB_CACHE": str(cache),
               "LOTTERYLIB_RESULTS": str(tmp_path / "no-results"), **env}
        if how == "subprocess":
            res = cli(*args, "--no-progress", timeout=60, env=env)
        else:
            res = cli_in_process([*args, "--no-progress"], env, monkeypatch, capsys)
        after = snapshot(cache), snapshot(cache_file)
    finally:
        for step in undo:
            step()
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("lotterylib: error: ") and message in lines[0], lines[0]
    assert INSTRUCTION.search(lines[0].split(":", 2)[2]), f"says what is wrong but not what to do: {lines[0]}"
    assert after == before, "a refused command changed the result cache"
    assert not (tmp_path / "no-results").exists() and not (tmp_path / "s.md").exists()


@pytest.mark.parametrize("refuse", ["os.access", "probe write"])
def test_read_only_cache_is_refused_where_chmod_does_not_stop_this_user(refuse, tmp_path, monkeypatch, capsys):
    # Root passes chmod 555; the check asks os.access and then writes a probe file, and either refusal counts.
    import tempfile

    from lotterylib.cli import main
    cache = filled_cache(tmp_path)
    if refuse == "os.access":
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != cache and access(p, mode, **kw))
    else:
        mkstemp = tempfile.mkstemp

        def no_files_in_cache(*a, dir=None, **kw):
            if Path(dir) == cache:
                raise PermissionError(13, "Read-only file system")
            return mkstemp(*a, dir=dir, **kw)
        monkeypatch.setattr(tempfile, "mkstemp", no_files_in_cache)
    before = snapshot(cache)
    assert main(["claims", "--profile", "quick", "--only", "LT", "--cache", str(cache)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is read-only; make it writable" in err[0]
    assert snapshot(cache) == before


def test_a_claims_module_that_cannot_be_imported_is_one_line_exit_2(monkeypatch, capsys):
    import importlib

    from lotterylib.cli import main
    real = importlib.import_module

    def without_numba(name, *args):
        if name == "lotterylib.claims.dc":
            raise ModuleNotFoundError("No module named 'numba'", name="numba")
        return real(name, *args)
    monkeypatch.setattr(importlib, "import_module", without_numba)
    assert main(["claims", "--profile", "quick", "--only", "LT"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lotterylib.claims.dc" in err[0] and "pip install numba" in err[0]


def test_a_cache_folder_that_does_not_exist_yet_is_fine_and_is_not_created_by_the_checks(tmp_path):
    from lotterylib.cli import check_cache
    check_cache(str(tmp_path / "new" / "cache"), writable=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_lt_claims_hold_for_another_seed(tmp_path, data_root):
    """The LT quick claims on seed 1 (the chapter runs seed 0): every decidable one holds."""
    out = tmp_path / "claims.json"
    res = cli("claims", "--profile", "quick", "--only", "LT", "--seed", "1", "--json", str(out), "--no-progress",
              env={"LOTTERYLIB_DATA": str(data_root), "LOTTERYLIB_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stdout + res.stderr
    records = json.loads(out.read_text())
    assert {r["id"] for r in records} == {f"LT-{i}" for i in (*range(1, 9), 11, 12)}
    for r in records:
        assert {"id", "holds", "measured", "profile", "seed"} <= set(r)
        assert r["profile"] == "quick" and r["seed"] == 1
    assert [r["id"] for r in records if r["holds"] is None] == ["LT-2", "LT-12", "LT-6", "LT-7", "LT-8"]  # full only
    assert all(r["holds"] for r in records if r["holds"] is not None)


def test_run_skips_an_experiment_whose_stored_result_is_complete(tmp_path):
    from lotterylib import results
    from lotterylib.claims import lt
    rows = [{"round": 0, "variant": "ticket", "weights_remaining": 1.0, "early_stop_iteration": 100.0,
             "test_acc": 0.98, "per_seed_test_acc": [0.98], "per_seed_early_stop": [100]}]
    where = results.save("lt_lenet_mnist", "full", 0, lt.lt_settings("full", 0), {"rows": rows}, {}, True, tmp_path)
    before = where.read_text()
    res = cli("run", "--profile", "full", "--only", "LT-1", "--results", str(tmp_path), "--cache", str(tmp_path / "c"),
              "--no-progress", timeout=120)
    assert "stored result is complete" in res.stdout and "--again" in res.stdout, res.stdout + res.stderr
    assert where.read_text() == before and not (tmp_path / "c").exists()


def test_run_records_how_the_stored_parts_were_made(tmp_path, monkeypatch, capsys, data_root):
    # A toy experiment, registered for this test only: one cached part made "in an earlier session"
    # on another device, one computed now. The stored result's provenance sums both.
    import dataclasses

    from lotterylib import claims, results
    from lotterylib.cache import ResultCache
    from lotterylib.cli import main
    from lotterylib.provenance import provenance

    @dataclasses.dataclass(frozen=True)
    class Part:
        n: int

    def toy(profile, seed, context):
        parts = [context.cache.memoize_json(Part(n), lambda: {"n": 1}, "toy", provenance=lambda s: provenance("cpu", s))
                 for n in (1, 2)]
        return {"total": sum(p["n"] for p in parts)}

    ResultCache(tmp_path / "c").put(Part(1), lambda w: w.json({"n": 1}), "toy",
                                    provenance={"device": "NVIDIA H200", "commit": "old", "date": "2026-11-20T00:00:00",
                                                "wall_seconds": 120.0})
    monkeypatch.setitem(claims.EXPERIMENTS, "toy", toy)
    monkeypatch.setitem(claims.CLAIMS, "TOY-1", claims.Claim("TOY-1", "toy", "two parts", "2", "= 2", "toy",
                                                             lambda s, p: claims.Verdict(s["total"] == 2, str(s["total"]))))
    assert main(["run", "--profile", "full", "--only", "TOY", "--results", str(tmp_path), "--cache",
                 str(tmp_path / "c"), "--data-root", str(data_root), "--no-progress"]) == 0
    (stored,) = (tmp_path / "toy").glob("full-seed0-*.json")
    made = json.loads(stored.read_text())["provenance"]
    assert made["parts"]["count"] == 2 and made["parts"]["untimed"] == 0
    assert made["parts"]["devices"][0] == "NVIDIA H200" and made["parts"]["devices"][1].startswith("cpu")
    assert made["parts"]["compute_seconds"] >= 120.0 and "its 2 stored parts" in results.describe(made)
    assert "1 of 1 decided empirical claims hold" in capsys.readouterr().out
