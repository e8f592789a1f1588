#!/usr/bin/env python3
"""Student copies of the chapters: the exercises without their worked solutions.

    python scripts/student_notebooks.py OUT_DIR [NOTEBOOK ...]    (default: every notebooks/*.ipynb)
    make student                                                  (writes build/student/)

In the book the solutions are hidden behind toggles, but a notebook opened in JupyterLab shows every
cell, so a course hands out these copies instead. Each copy differs from its chapter only in that

* every "Build it yourself" solution is gone: a code cell tagged ``hide-cell`` that directly follows a
  cell tagged ``exercise`` (the stub, with its checker call, stays: it prints NOT YET until the
  student's code passes, then PASS);
* every ``{solution}`` directive (sphinx-exercise, ``:::`` or backtick fence) is cut from the
  markdown; the ``{exercise}`` directives stay;
* outputs and execution counts are cleared.

Cells after a removed solution that call the student's function run once the student has written it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OPENING = re.compile(r"^(?P<fence>:{3,}|`{3,})\{solution\}")


def without_solution_directives(markdown: str) -> str:
    """The markdown with every ``{solution}`` block (opening fence to the matching closing fence) cut."""
    kept, closing = [], None
    for line in markdown.splitlines(keepends=True):
        if closing is None:
            opening = OPENING.match(line.lstrip())
            if opening:
                closing = opening["fence"]
                continue
            kept.append(line)
        elif line.strip() == closing:  # a closing fence has exactly the opening's colons or backticks
            closing = None
    if closing is not None:
        raise ValueError(f"a {{solution}} block opened with {closing} is never closed")
    return re.sub(r"\n{3,}", "\n\n", "".join(kept)).strip("\n")


def is_solution(cells, i: int) -> bool:
    """The worked solution of a "Build it yourself" exercise: hidden, right after the exercise cell."""
    tags = cells[i].get("metadata", {}).get("tags", [])
    return (cells[i].cell_type == "code" and "hide-cell" in tags and i > 0
            and "exercise" in cells[i - 1].get("metadata", {}).get("tags", []))


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    out = nbformat.from_dict(nb)
    cells = []
    for i, cell in enumerate(nb.cells):
        if is_solution(nb.cells, i):
            continue
        cell = nbformat.from_dict(cell)
        if cell.cell_type == "markdown":
            cell.source = without_solution_directives(cell.source)
            if not cell.source.strip():
                continue
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    out.cells = cells
    return out


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    out_dir = Path(argv[0])
    notebooks = [Path(p) for p in argv[1:]] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        copy = student_copy(nb)
        nbformat.write(copy, out_dir / path.name)
        solutions = sum(is_solution(nb.cells, i) for i in range(len(nb.cells)))
        directives = sum(bool(OPENING.match(line.lstrip())) for c in nb.cells if c.cell_type == "markdown"
                         for line in c.source.splitlines())
        print(f"{out_dir / path.name}: {solutions} worked solution(s) and {directives} {{solution}} block(s) removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
