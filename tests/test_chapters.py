"""Every chapter, as the book build executed it: the chapters are the book's integration tests.

``make book`` (and so ``make test``) executes each notebook once with papermill into ``book/notebooks/``,
failing on any cell error, and every chapter ends with its claim checks (``claims.assert_hold`` and
asserts on the numbers it computed). Executing them a second time here would only repeat that work
(the previous CI ran every chapter twice), so these tests read the executed copies instead and check
that each one is a complete, current, quick-profile run of its source whose claim checks ran.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXECUTED = Path(os.environ.get("LOTTERYLIB_EXECUTED", ROOT / "book" / "notebooks"))


def _code(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"
            and "injected-parameters" not in c["metadata"].get("tags", [])]


def _text(cell: dict) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append("".join(o["text"]))
        elif "text/plain" in o.get("data", {}):
            out.append("".join(o["data"]["text/plain"]))
    return "\n".join(out)


def problems(src: dict, run: dict) -> list[str]:
    """What is wrong with ``run`` as the book build's execution of the chapter ``src`` (empty: nothing)."""
    if ["".join(c["source"]) for c in _code(src)] != ["".join(c["source"]) for c in _code(run)]:
        return ["the executed copy is stale (its code differs from the chapter's): rebuild the book"]
    out = []
    for i, cell in enumerate(_code(run)):
        if cell.get("execution_count") is None:
            out.append(f"code cell {i} did not run")
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                out.append(f"code cell {i} raised {o.get('ename')}: {o.get('evalue')}")
    checks = [c for c in _code(run) if "claims.check(" in "".join(c["source"])]
    if not checks or not any("claims.assert_hold(" in "".join(c["source"]) for c in _code(run)):
        out.append("no cell checks the chapter's claims (claims.check + claims.assert_hold)")
    elif not any("holds" in _text(c) for c in checks):
        out.append("the claim-check cell printed no claim table")
    if "profile quick" not in "\n".join(_text(c) for c in _code(run)):
        out.append("the chapter did not print that it ran the quick profile")
    return out


@pytest.fixture(scope="module")
def executed_dir() -> Path:
    if not EXECUTED.is_dir() or not any(EXECUTED.glob("*.ipynb")):
        pytest.fail(f"no executed chapters in {EXECUTED}: run `make book` first (`make test` does)")
    return EXECUTED


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_the_chapter_ran_whole_and_checked_its_claims(source: Path, executed_dir: Path):
    executed = executed_dir / source.name
    assert executed.exists(), f"{source.name} was not executed by the book build"
    assert problems(json.loads(source.read_text()), json.loads(executed.read_text())) == []


def test_the_check_fails_on_a_broken_run():
    src = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["PROFILE = 'quick'"]},
                     {"cell_type": "code", "metadata": {}, "source": ["claims.check(...); claims.assert_hold(v)"]}]}
    good = copy.deepcopy(src)
    good["cells"][0].update(execution_count=1, outputs=[{"output_type": "stream", "text": ["profile quick\n"]}])
    good["cells"][1].update(execution_count=2, outputs=[{"output_type": "stream", "text": ["LT-1 ... holds\n"]}])
    assert problems(src, good) == []
    raised = copy.deepcopy(good)
    raised["cells"][1]["outputs"] = [{"output_type": "error", "ename": "AssertionError", "evalue": "claims not reproduced"}]
    assert any("raised AssertionError" in p for p in problems(src, raised))
    stale = copy.deepcopy(good)
    stale["cells"][1]["source"] = ["print('older code')"]
    assert problems(src, stale)[0].startswith("the executed copy is stale")
    unexecuted = copy.deepcopy(good)
    unexecuted["cells"][1]["execution_count"] = None
    assert "code cell 1 did not run" in problems(src, unexecuted)
    full = copy.deepcopy(good)
    full["cells"][0]["outputs"][0]["text"] = ["profile full\n"]
    assert "the chapter did not print that it ran the quick profile" in problems(src, full)
