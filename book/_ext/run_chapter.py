"""Sphinx extension for the Sparse Tickets book.

* A "Run this chapter" box under the title of every chapter (a page made from a notebook), with the
  exact commands that execute it and check its claims, for the quick and the full profile, and the
  one that opens it live (``make lab``). The claim prefix of each chapter comes from
  ``lotterylib.claims.CHAPTERS``.
* Pages whose widgets all have a static HTML version (``lotterylib.widgets.interactive_figure``; the
  book prefers ``text/html`` to the widget view, see ``nb_mime_priority_overrides``) do not load the
  ipywidgets manager and its embedded state, which they would not use.
* Inline scripts are written once per page: sphinx-thebe's and sphinx-togglebutton's are otherwise
  added twice (Sphinx 7 does not deduplicate a script added with ``None`` and with ``""`` as its
  file name), and the second ``const THEBE_JS_URL`` is a JavaScript error on every page.
* The ``index.html`` redirect to the first page names the book's favicon (else a browser asks the
  server for ``/favicon.ico``, a 404 in its console) and a title.
* The theme's download button of a chapter page links the notebook the page was built from: the
  executed copy (``_sources/notebooks/*.ipynb``, a relative link that works offline). Its tooltip says
  so, and a ``download`` attribute makes a browser save it, whatever type a server gives ``.ipynb``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path, PurePosixPath
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOK_DOWNLOAD_TOOLTIP = "Download this chapter's notebook, as executed for this book"
# The theme's link macro takes no attributes, so the ``download`` attribute is set when the page loads.
NOTEBOOK_DOWNLOAD_JS = """document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("a.btn-download-source-button[href$='.ipynb']").forEach(function (a) {
    a.setAttribute("download", a.getAttribute("href").split("/").pop());
  });
});"""


def claim_prefixes() -> dict[str, str]:
    """Chapter document name (``notebooks/01_magnitude_pruning``) → claim id prefix (``HAN``)."""
    try:
        from lotterylib.claims import CHAPTERS
    except ImportError:  # the book can still be built without the library; no claims line then
        return {}
    return {doc: prefix for prefix, doc in CHAPTERS.items()}


def commands(notebook: str, prefix: str | None, profile: str) -> str:
    """The shell commands (run from the repository root) that execute ``notebook`` in ``profile``."""
    name = PurePosixPath(notebook).name
    lines = [f"BOOK_PROFILE={profile} .venv/bin/papermill --cwd notebooks {notebook} build/{name}"]
    if prefix and profile == "full":
        # Long runs go through `run`: it resumes from the cache and stores the summary in results/.
        lines.append(f".venv/bin/python -m lotterylib run --profile full --only {prefix} --device cuda  # or cpu")
    elif prefix:
        lines.append(f".venv/bin/python -m lotterylib claims --profile {profile} --only {prefix}")
    return "\n".join(lines)


def run_box(docname: str, prefix: str | None) -> nodes.admonition:
    notebook = f"{docname}.ipynb"
    # "dropdown": collapsed under its title by sphinx-togglebutton (part of Jupyter Book)
    box = nodes.admonition(classes=["tip", "dropdown", "run-this-chapter"])
    box += nodes.title(text="Run this chapter")
    intro = nodes.paragraph()
    intro += nodes.Text("From the repository root, once ")
    intro += nodes.literal(text="make book")
    intro += nodes.Text(" or ")
    intro += nodes.literal(text="make test")
    intro += nodes.Text(" has set up ")
    intro += nodes.literal(text=".venv")
    intro += nodes.Text(", with the datasets in ")
    intro += nodes.literal(text="$LOTTERYLIB_DATA")
    intro += nodes.Text(" (the Makefile's default: ")
    intro += nodes.literal(text="../shared/data")
    intro += nodes.Text("). The first command executes this chapter into ")
    intro += nodes.literal(text="build/")
    if prefix:
        intro += nodes.Text(", the second checks its claims (")
        intro += nodes.literal(text=f"{prefix}-*")
        intro += nodes.Text(") from the same cached runs.")
    else:
        intro += nodes.Text(".")
    box += intro
    for profile, what in [("quick", "Quick profile (CPU, minutes; what the book shows):"),
                          ("full", "Full profile (the papers' settings; a GPU or a long CPU run):")]:
        box += nodes.paragraph(text=what)
        code = "mkdir -p build\n" + commands(notebook, prefix, profile)
        box += nodes.literal_block(code, code, language="bash")
    live = nodes.paragraph()
    live += nodes.Text("Live, with the sliders redrawn by a kernel: ")
    live += nodes.literal(text="make lab")
    live += nodes.Text(" opens ")
    live += nodes.literal(text="notebooks/")
    live += nodes.Text(" in JupyterLab (")
    live += nodes.literal(text="BOOK_PROFILE=full make lab")
    live += nodes.Text(" for the full profile).")
    box += live
    return box


def add_run_box(app: Sphinx, doctree: nodes.document) -> None:
    env = app.env
    docname = env.docname
    if not str(env.doc2path(docname)).endswith(".ipynb"):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not section.children or not isinstance(section[0], nodes.title):
        return
    section.insert(1, run_box(docname, claim_prefixes().get(docname)))


def drop_unused_widget_state(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                             doctree: Any) -> None:
    """Runs before myst-nb adds a page's scripts: no widget view on the page → no widget manager."""
    if doctree is None or WIDGET_VIEW in context.get("body", ""):
        return
    js_files = getattr(app.env, "nb_metadata", {}).get(pagename, {}).get("js_files", {})
    for key in [k for k in js_files if k.startswith("ipywidgets")]:
        del js_files[key]


def dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                   doctree: Any) -> None:
    """Keeps the first of scripts with the same file name (None and "" alike) and attributes."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, kept = set(), []
    for js in scripts:
        key = (getattr(js, "filename", None) or "", getattr(js, "priority", None),
               tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def describe_notebook_download(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any],
                               doctree: Any) -> None:
    """Runs after the theme's header buttons: the source of a chapter page is its executed notebook."""
    if context.get("page_source_suffix") != ".ipynb":
        return
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []):
            if button.get("label") == "download-source-button":
                button["tooltip"] = NOTEBOOK_DOWNLOAD_TOOLTIP


def complete_redirect(app: Sphinx, exception: Exception | None) -> None:
    """Rewrites the bare ``<meta http-equiv="Refresh">`` index.html as a small page with a favicon."""
    index = Path(app.outdir) / "index.html"
    if exception is not None or app.builder.format != "html" or not index.exists():
        return
    m = re.fullmatch(r'\s*<meta http-equiv="Refresh" content="0; url=([^"]+)" />\s*', index.read_text("utf8"))
    if not m:
        return
    url = html.escape(m.group(1))
    icon = f'<link rel="icon" href="_static/{Path(app.config.html_favicon).name}">' if app.config.html_favicon else ""
    title = html.escape(app.config.html_title or app.config.project)
    index.write_text(f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
                     f'<meta http-equiv="Refresh" content="0; url={url}">{icon}<title>{title}</title></head>'
                     f'<body><a href="{url}">{title}</a></body></html>\n', encoding="utf8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", add_run_box)
    app.connect("html-page-context", drop_unused_widget_state, priority=400)
    app.connect("html-page-context", describe_notebook_download, priority=600)  # the theme's run at 501
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.add_js_file(None, body=NOTEBOOK_DOWNLOAD_JS)
    app.connect("build-finished", complete_redirect, priority=900)  # after sphinx-external-toc writes it
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
