"""lotterylib as a library: pyproject.toml declares every package its modules import, requirements.txt
pins the same packages, and an install gives a package whose every module imports and whose claims
registry has every chapter."""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = {"HAN", "LT", "DLT", "NT", "XN", "DNW", "DC", "LR", "NODE", "CH", "GL", "KD"}
# Import names whose distribution is named otherwise, for packages not installed here.
DISTRIBUTION_OF = {"PIL": "pillow"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def imported_packages() -> dict[str, set[str]]:
    """Third-party top-level import names → the modules of lotterylib that import them. Imports inside
    functions count too: ``nettrim.solve_cvxpy`` needs cvxpy as much as a module-level import would."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "lotterylib").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "lotterylib":
                    found.setdefault(top, set()).add(module)
    return found


#: Packages only an optional part imports (inside the function that needs it, which says how to get
#: it when missing): import name → the extra that declares it.
OPTIONAL = {"ray": "ray"}


def test_every_imported_package_is_a_declared_dependency():
    declared = {normalized(Requirement(r).name) for r in pyproject()["dependencies"]}
    extras = {k: {normalized(Requirement(r).name) for r in v} for k, v in pyproject()["optional-dependencies"].items()}
    installed = importlib.metadata.packages_distributions()
    missing = {}
    for name, modules in imported_packages().items():
        distributions = {normalized(d) for d in installed.get(name, [DISTRIBUTION_OF.get(name, name)])}
        if not distributions & (extras[OPTIONAL[name]] if name in OPTIONAL else declared):
            missing[name] = sorted(modules)
    assert not missing, f"imported but not declared in pyproject (core dependencies, or its extra): {missing}"
    assert {"torch", "numpy", "numba", "cvxpy", "matplotlib", "ipywidgets", "tqdm"} <= set(imported_packages())


def test_requirements_pin_every_declared_package_in_its_declared_range():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt pins exact versions, not {line!r}"
            pins[normalized(name)] = version
    project = pyproject()
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for text in declared:
        req = Requirement(text)
        assert normalized(req.name) in pins, f"{req.name} is declared in pyproject.toml but not pinned in requirements.txt"
        assert req.specifier.contains(pins[normalized(req.name)], prereleases=True), \
            f"requirements.txt pins {req.name}=={pins[normalized(req.name)]}, outside pyproject's {req}"
    assert "torch==2.13.0" in project["dependencies"]


CHECK_IMPORTS = textwrap.dedent("""
    import importlib, json, pkgutil
    import lotterylib
    from lotterylib import claims
    failed = {}
    for info in pkgutil.walk_packages(lotterylib.__path__, "lotterylib."):
        if info.name != "lotterylib.__main__":  # that one runs the CLI
            try:
                importlib.import_module(info.name)
            except Exception as err:
                failed[info.name] = repr(err)
    prefixes = sorted({claim.split("-")[0] for claim in claims.load_all()})
    print(json.dumps({"failed": failed, "prefixes": prefixes, "file": lotterylib.__file__}))
""")


def check_imports(python: str, cwd: Path) -> dict:
    import json
    res = subprocess.run([python, "-c", CHECK_IMPORTS], capture_output=True, text=True, cwd=cwd, timeout=300,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_every_module_imports_and_every_chapter_registers_its_claims(tmp_path):
    # A fresh interpreter: the registry holds only what the imports registered.
    found = check_imports(sys.executable, tmp_path)
    assert found["failed"] == {}
    assert set(found["prefixes"]) == PREFIXES


def local_indexes() -> list[str]:
    """pip's configured package indexes that are folders on this machine (file://)."""
    res = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    urls = []
    for line in res.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("index-url"):
            urls += [u for u in value.strip("'\"").split() if u.startswith("file://")]
    return [u for u in urls if Path(u.removeprefix("file://")).is_dir()]


@pytest.mark.install
def test_pip_install_gives_a_complete_library(tmp_path):
    """A fresh venv, ``pip install .`` from this machine's wheels only (no network): every module
    imports and the registry has every chapter. About 70 s on the 2-core CPU (torch's wheel)."""
    indexes = local_indexes()
    if not indexes:
        pytest.skip("no local package index in pip's configuration: an offline install cannot run here")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # The first local index replaces PyPI; pip's other settings (extra local indexes, find-links) stay.
    env = {**os.environ, "PIP_INDEX_URL": indexes[0], "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    start = time.time()
    res = subprocess.run([python, "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True,
                         env=env, timeout=900)
    if res.returncode != 0 and re.search(r"No matching distribution|Could not find a version", res.stderr):
        pytest.skip(f"this machine's wheels lack a dependency: {res.stderr.strip().splitlines()[-1]}")
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"pip install . took {time.time() - start:.0f} s")
    found = check_imports(python, tmp_path)  # outside the checkout: the installed copy is imported
    assert found["file"].startswith(str(venv)) and found["failed"] == {}
    assert set(found["prefixes"]) == PREFIXES
