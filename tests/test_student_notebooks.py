"""scripts/student_notebooks.py: the copies a course hands out keep every exercise and lose every solution."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("student_notebooks", ROOT / "scripts" / "student_notebooks.py")
student = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student)

EXERCISES_MD = """## Exercises

:::{exercise}
:label: ch09-ex1

Predict what the slider shows.
:::

:::{solution} ch09-ex1
:class: dropdown

The answer, with a nested note:
:::{note}
not the end of the solution
:::
:::

::::{solution} ch09-ex2
:class: dropdown

A solution fenced with four colons.
:::{note}
inner
:::
::::

```{solution} ch09-ex3
:class: dropdown
Backticks.
```

## References
"""


def cell(kind: str, source: str, tags=()):
    c = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def synthetic() -> nbformat.NotebookNode:
    executed = cell("code", "print(1)")
    executed.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    executed.execution_count = 3
    return nbformat.v4.new_notebook(cells=[
        cell("markdown", "# Title"),
        executed,
        cell("code", "def f(x):\n    raise NotImplementedError\n\nstub_report = check(f)", tags=["exercise"]),
        cell("code", "def f(x):\n    return x\n\nsolution_report = check(f)", tags=["hide-cell"]),
        cell("code", "import helpers  # hidden, but no solution", tags=["hide-cell"]),
        cell("markdown", ":::{solution} ch09-ex0\n:class: dropdown\nonly a solution\n:::"),
        cell("markdown", EXERCISES_MD),
    ])


def test_the_copy_keeps_the_exercises_and_drops_the_solutions():
    nb = synthetic()
    copy = student.student_copy(nb)
    sources = [c.source for c in copy.cells]
    assert "def f(x):\n    return x" not in "\n".join(sources), "the worked solution is still there"
    assert any("raise NotImplementedError" in s for s in sources), "the stub is gone"
    assert any("import helpers" in s for s in sources), "a hidden cell that is no solution was dropped"
    assert not any(s.startswith(":::{solution}") for s in sources), "a markdown cell of only a solution stays"
    md = copy.cells[-1].source
    assert "{solution}" not in md and "not the end" not in md and "four colons" not in md and "Backticks" not in md
    assert ":::{exercise}\n:label: ch09-ex1\n\nPredict what the slider shows.\n:::" in md
    assert md.rstrip().endswith("## References"), "text after the solutions was cut with them"
    assert all(c.outputs == [] and c.execution_count is None for c in copy.cells if c.cell_type == "code")
    assert len(nb.cells) == 7 and nb.cells[3].source.startswith("def f"), "the original notebook was changed"


def test_an_unclosed_solution_is_an_error_not_a_silent_cut():
    with pytest.raises(ValueError, match="never closed"):
        student.without_solution_directives(":::{solution} x\nthe rest of the chapter\n")


def test_the_command_writes_a_copy_of_every_chapter(tmp_path, capsys):
    chapters = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert student.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in chapters]
    for path in chapters:
        nb, copy = nbformat.read(path, as_version=4), nbformat.read(tmp_path / path.name, as_version=4)
        markdown = "\n".join(c.source for c in copy.cells if c.cell_type == "markdown")
        assert "{solution}" not in markdown, path.name
        original = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert markdown.count("{exercise}") == original.count("{exercise}"), path.name
        exercises = [c.source for c in nb.cells if "exercise" in c.metadata.get("tags", [])]
        assert exercises == [c.source for c in copy.cells if "exercise" in c.metadata.get("tags", [])], path.name
        assert not any(student.is_solution(copy.cells, i) for i in range(len(copy.cells))), path.name
    assert "removed" in capsys.readouterr().out
