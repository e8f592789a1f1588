"""`make lab` works live: JupyterLab, its ipywidgets manager and the project's kernel, in a real browser.

The test runs the Makefile's ``lab`` target as a person would, only headless: no browser opened, its
own token, a free localhost port, temporary Jupyter config, data and runtime folders, and a copy of a
chapter (:data:`CHAPTER`) in a temporary folder, so that nothing JupyterLab writes (checkpoints,
autosaved outputs) lands in ``notebooks/``. It opens the chapter in Debian's Chromium through
Playwright, runs it cell by cell (Shift+Enter) down to its first slider (the first cell that calls
:func:`lotterylib.widgets.interactive_figure`), moves the slider one step, and the kernel must show
that step's figure in the live output. The kernel must be this checkout's ``.venv``.

The chapter reads the result cache of the environment (``$LOTTERYLIB_CACHE``, else the book's: what
``make lab`` does): under ``make test`` the book build has just filled it, and the test takes under
a minute on a 2-core CPU (53 s at a load of 4; about 40 s of CPU time, JupyterLab's start, Chromium
and the chapter's cells down to the slider). With an empty cache the chapter first trains its
networks: about 20 s of CPU more. The waits allow for a machine several times busier. Without
Chromium the test is skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from chromium import CHROMIUM, Page, launch

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no Chromium at {CHROMIUM} (`make test` installs Debian's; or set LOTTERYLIB_CHROMIUM)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
CHAPTER = "01_magnitude_pruning.ipynb"  # the first chapter: its first slider comes early and is cheap
# The live view, not the static HTML one that the book shows: ipywidgets' slider and output widget.
SLIDER = ".jp-OutputArea-output .widget-slider"
HANDLE = f"{SLIDER} .noUi-handle"
READOUT = f"{SLIDER} .widget-readout"
FIGURE = ".jp-OutputArea-output .widget-output img"
IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, token: str, path: str, method: str = "GET", patience: float = 60):
    """JupyterLab's REST API; a request that times out, is refused or gets a server error (5xx) is
    retried for ``patience`` seconds (a busy server, starting a kernel, can be slow to answer)."""
    request = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"token {token}"})
    deadline = time.time() + patience
    while True:
        try:
            with urllib.request.urlopen(request, timeout=20) as r:
                body = r.read()
            return json.loads(body) if body else None
        except urllib.error.HTTPError as err:
            # A 4xx is an answer; a 5xx is the server failing this request (seen: 500 on api/kernels
            # while a kernel was starting on a loaded machine): retried like a busy server.
            if err.code < 500 or time.time() > deadline:
                raise
            time.sleep(1)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(1)


def wait_for_kernel(url: str, token: str, timeout: float = 120) -> None:
    """Until the notebook's kernel is up, idle and connected to the page (the page's own status
    indicator reads idle before the kernel starts, too)."""
    deadline = time.time() + timeout
    while not any(k["execution_state"] == "idle" and k["connections"] > 0 for k in api(url, token, "api/kernels")):
        if time.time() > deadline:
            pytest.fail(f"no kernel idle and connected after {timeout:.0f} s: {api(url, token, 'api/kernels')}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not (VENV / "bin" / "jupyter-lab").exists():
        pytest.fail(f"no JupyterLab in {VENV}: `make .venv/.installed` installs requirements.txt")
    tmp = tmp_path_factory.mktemp("lab")
    work = tmp / "notebooks"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / CHAPTER, work / CHAPTER)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "IPYTHONDIR": str(tmp / "ipython"), "TQDM_DISABLE": "1"}
    env.pop("MPLBACKEND", None)  # the kernel draws with its inline backend
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # under `make test`: a make of its own, not a sub-make
        env.pop(name, None)
    args = (f"--no-browser --ServerApp.token={token} --ServerApp.port_retries=0 --LabApp.news_url= "
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
    log = (tmp / "lab.log").open("w")
    # `-o` keeps make from reinstalling the environment: this test checks the target, not the set-up.
    proc = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "lab", f"LAB_DIR={work}",
                             f"LAB_PORT={port}", f"LAB_ARGS={args}"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"make lab stopped (exit {proc.returncode}):\n{(tmp / 'lab.log').read_text()[-3000:]}")
            try:
                api(url, token, "api/status", patience=0)
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail(f"JupyterLab did not answer in 120 s:\n{(tmp / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, token
    finally:
        try:  # the kernels first: they run in sessions of their own, apart from the server's process group
            for kernel in api(url, token, "api/kernels", patience=10):
                api(url, token, f"api/kernels/{kernel['id']}", method="DELETE", patience=10)
        except OSError:
            pass
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # make, its shell and JupyterLab: the group this test started
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:  # make had stopped already
            pass
        log.close()


def first_slider_cell(notebook: Path) -> int:
    """The index (among all cells: Shift+Enter steps through markdown cells too) of the chapter's first
    cell with a live figure and controls."""
    cells = nbformat.read(notebook, as_version=4).cells
    return next(i for i, c in enumerate(cells) if c.cell_type == "code" and "interactive_figure(" in c.source)


def kernel_executable(kernel_id: str) -> str:
    """The program the kernel runs (argv[0] of the process started with its connection file)."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone
            continue
        if any(f"kernel-{kernel_id}.json".encode() in a for a in argv):
            return argv[0].decode()
    pytest.fail(f"no process runs kernel {kernel_id}")


# The page's own test of a stopped run: an error's traceback in an output (the queued cells are then
# cancelled, so the slider would never come).
FIGURE_OR_ERROR = """([figure]) => document.querySelector(figure) ||
  [...document.querySelectorAll(".jp-OutputArea-output")].some(o => o.textContent.includes("Traceback"))"""


def test_make_lab_runs_a_chapter_to_its_live_slider(lab) -> None:
    url, token = lab
    slider_cell = first_slider_cell(ROOT / "notebooks" / CHAPTER)
    with launch() as browser:
        tab = Page(browser)
        try:
            page = tab.page
            page.goto(f"{url}lab/tree/{CHAPTER}?token={token}", wait_until="load")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=90_000)
            wait_for_kernel(url, token)
            page.wait_for_selector(IDLE, timeout=30_000)
            (kernel,) = api(url, token, "api/kernels")
            executable = kernel_executable(kernel["id"])
            assert Path(executable).parent == VENV / "bin", f"the kernel is not this checkout's .venv: {executable}"

            # As a reader does: from the top, Shift+Enter on each cell down to the first slider.
            page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
            for _ in range(slider_cell + 1):
                page.keyboard.press("Shift+Enter")
            page.wait_for_function(FIGURE_OR_ERROR, arg=[FIGURE], timeout=300_000)
            errors = [o for o in page.locator(".jp-OutputArea-output").all_text_contents() if "Traceback" in o]
            assert not errors, f"{CHAPTER} stopped before its first slider:\n{errors[0][-2000:]}"
            assert page.locator(SLIDER).count() >= 1, "the chapter's first live figure has no slider"
            assert page.locator(".jp-OutputArea-output .lotterylib-interactive").count() == 0, \
                "JupyterLab shows the static figure: no live widget manager"

            before, shown = page.get_attribute(FIGURE, "src"), page.text_content(READOUT).strip()
            assert before.startswith("data:image/png;base64,")
            page.locator(HANDLE).first.focus()
            page.keyboard.press("ArrowRight")  # the slider's next choice: the kernel shows its figure
            page.wait_for_function(
                "([sel, before]) => { const img = document.querySelector(sel); return img && img.src !== before; }",
                arg=[FIGURE, before], timeout=120_000)
            moved = page.text_content(READOUT).strip()
            assert moved != shown, f"the slider still reads {shown!r}"
            assert not tab.foreign, f"requests to other hosts: {tab.foreign}"
            assert not tab.errors, "\n".join(tab.errors)
        finally:
            tab.close()
