"""The built book in a real browser: headless Chromium, driven by Playwright, with no network.

Needs ``make book`` first (``make test`` does it) and ``/usr/bin/chromium`` (the Makefile installs
Debian's when missing). Every page of ``book/_build/html`` is served from a localhost port and checked:
no console errors, no request to another host, every figure loaded, the math typeset by the book's own
MathJax, the "Run this chapter" box on chapters, each static slider/dropdown redrawing its figure, and
each chapter's download button saving its executed notebook. The offline search page is checked too,
one chapter's slider from ``file://``, and one chapter's figures in the theme's dark mode.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
from chromium import Page, launch

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book" / "_build" / "html"
PAGES = sorted(p.relative_to(BOOK).as_posix() for p in BOOK.rglob("*.html")
               if not p.relative_to(BOOK).parts[0].startswith("_")) or ["index.html"]
CHAPTERS = [p for p in PAGES if p.startswith("notebooks/")]
EXECUTED = ROOT / "book" / "notebooks"  # the executed chapters the book is built from (make book)


@pytest.fixture(scope="module")
def book() -> Path:
    if not (BOOK / "index.html").exists() or not (BOOK / "search.html").exists():
        pytest.fail(f"the built book is missing ({BOOK}): run `make book` first (`make test` does)")
    return BOOK


class _Quiet(http.server.SimpleHTTPRequestHandler):
    missing: list[str] = []

    def send_error(self, code, *args, **kwargs):
        self.missing.append(f"{code} {self.path}")
        super().send_error(code, *args, **kwargs)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(book: Path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(book)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


def wait_for_math(page) -> dict:
    """Waits for MathJax to typeset every math element; returns the counts."""
    count = "() => document.querySelectorAll('.math').length"
    n = page.evaluate(count)
    if n:
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.math')).every(e => e.querySelector('mjx-container'))",
            timeout=30_000)
    return page.evaluate("() => ({math: document.querySelectorAll('.math').length, "
                         "typeset: document.querySelectorAll('mjx-container').length, "
                         "errors: document.querySelectorAll('mjx-merror').length})")


def broken_images(page) -> list[str]:
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=30_000)
    return page.evaluate("() => Array.from(document.images).filter(i => !(i.naturalWidth > 0))"
                         ".map(i => i.getAttribute('src').slice(0, 80))")


def wait_for_search(page) -> None:
    page.wait_for_function("() => (document.querySelector('#search-results .search-summary') || {})"
                           ".textContent?.includes('found')", timeout=30_000)


# Moves every control of every static interactive figure on the page to another choice and reports
# the image source before and after, and the label shown next to the control.
MOVE_CONTROLS = """async () => {
  const out = [];
  for (const fig of document.querySelectorAll('.lotterylib-interactive')) {
    const img = fig.querySelector('img.lfig-image');
    for (const el of fig.querySelectorAll('[data-lfig-control]')) {
      const labels = JSON.parse(el.getAttribute('data-labels'));
      const before = img.src;
      const k = (parseInt(el.value, 10) + 1) % labels.length;
      if (el.tagName === 'SELECT') { el.selectedIndex = k; } else { el.value = String(k); }
      el.dispatchEvent(new Event('input', {bubbles: true}));
      el.dispatchEvent(new Event('change', {bubbles: true}));
      await img.decode();
      const label = fig.querySelector("output[data-for='" + el.getAttribute('data-lfig-control') + "']");
      out.push({control: el.getAttribute('data-description'), choices: labels.length,
                changed: img.src !== before, loaded: img.naturalWidth > 0,
                label: label ? label.textContent : labels[parseInt(el.value, 10)], expected: labels[k]});
    }
  }
  return out;
}"""


def download_notebook(page, name: str) -> bytes:
    """Clicks the page's download button for its notebook (the theme's download menu); the bytes saved."""
    link = page.locator("a.btn-download-source-button")
    assert link.count() == 1, "no download button for the page's source"
    href = link.get_attribute("href")
    assert href == f"../_sources/notebooks/{name}.ipynb", f"the download button links {href}"
    assert link.get_attribute("download") == f"{name}.ipynb", "the notebook link has no download attribute"
    page.locator(".dropdown-download-buttons button.dropdown-toggle").click()
    with page.expect_download(timeout=30_000) as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"{name}.ipynb", download.suggested_filename
    return Path(download.path()).read_bytes()


@pytest.mark.parametrize("page_path", PAGES)
def test_page(page_path: str, server: str, browser) -> None:
    tab = Page(browser)
    missing = len(_Quiet.missing)
    try:
        page = tab.page
        page.goto(server + page_path, wait_until="load")
        page.wait_for_load_state("networkidle")  # index.html redirects to the first page
        math = wait_for_math(page)
        assert math["typeset"] >= math["math"] and math["errors"] == 0, f"math not typeset: {math}"
        assert not broken_images(page), f"images that did not load: {broken_images(page)}"
        html = page.content()
        assert "application/vnd.jupyter.widget-view+json" not in html, \
            "a widget without a static version (use lotterylib.widgets.interactive_figure)"
        if page_path in CHAPTERS:
            box = page.locator(".run-this-chapter")
            assert box.count() == 1, "no 'Run this chapter' box"
            name = Path(page_path).stem
            text = box.text_content()
            assert f"notebooks/{name}.ipynb" in text and "BOOK_PROFILE=full" in text, text
            moves = page.evaluate(MOVE_CONTROLS)
            assert moves, "a chapter without an interactive figure"
            for m in moves:
                if m["choices"] > 1:
                    assert m["changed"] and m["loaded"], f"moving {m['control']} did not redraw: {m}"
                assert m["label"] == m["expected"], f"label of {m['control']} shows {m['label']}: {m}"
            saved = download_notebook(page, name)
            assert saved == (EXECUTED / f"{name}.ipynb").read_bytes(), "the download is not the executed chapter"
            notebook = json.loads(saved)
            assert notebook["nbformat"] == 4 and any(c.get("outputs") for c in notebook["cells"]), \
                "the downloaded notebook has no outputs"
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(200)  # the browser's own requests (the favicon) come after the page's
        assert not _Quiet.missing[missing:], f"not found on the server: {_Quiet.missing[missing:]}"
        assert not tab.foreign, f"requests to other hosts: {tab.foreign}"
        assert not tab.errors, "\n".join(tab.errors + [f"server: {m}" for m in _Quiet.missing])
    finally:
        tab.close()


def test_search_works_offline(server: str, browser) -> None:
    tab = Page(browser)
    try:
        tab.page.goto(server + "search.html?q=lottery", wait_until="load")
        wait_for_search(tab.page)
        tab.page.wait_for_load_state("networkidle")  # the summaries of the results are fetched
        links = tab.page.eval_on_selector_all("ul.search li a", "as => as.map(a => a.getAttribute('href'))")
        assert any("02_lottery_ticket" in h for h in links), links
        assert tab.page.locator("ul.search li p.context").count() > 0, "no result summaries"
        assert not tab.foreign, f"requests to other hosts: {tab.foreign}"
        assert not tab.errors, "\n".join(tab.errors + [f"server: {m}" for m in _Quiet.missing])
    finally:
        tab.close()


def test_slider_and_search_from_file_url(book: Path, browser) -> None:
    """The same pages opened as files, without a server."""
    tab = Page(browser, local_schemes=("file",))
    try:
        pages = [p for p in CHAPTERS if (book / p).read_text(encoding="utf8").count("lotterylib-interactive")]
        assert pages, "no chapter with an interactive figure"
        tab.page.goto((book / pages[0]).as_uri(), wait_until="load")
        moves = tab.page.evaluate(MOVE_CONTROLS)
        assert moves and all(m["changed"] for m in moves if m["choices"] > 1), moves
        # The download button's link is relative: from a file it names the executed notebook beside the page.
        href = tab.page.get_attribute("a.btn-download-source-button", "href")
        target = ((book / pages[0]).parent / href).resolve()
        assert target == (book / "_sources" / pages[0]).with_suffix(".ipynb") and target.is_file(), href
        assert not tab.foreign and not tab.errors, (tab.foreign, tab.errors)
        # Search lists the same results from a file; only the summaries under each result are missing
        # (Sphinx fetches the pages for them, which browsers refuse for file:// URLs).
        tab.page.goto((book / "search.html").as_uri() + "?q=lottery", wait_until="load")
        wait_for_search(tab.page)
        links = tab.page.eval_on_selector_all("ul.search li a", "as => as.map(a => a.getAttribute('href'))")
        assert any("02_lottery_ticket" in h for h in links), links
        summary_fetch = ("CORS policy", "Failed to fetch", "net::ERR_FAILED")
        assert not tab.foreign, f"requests to other hosts: {tab.foreign}"
        assert not [e for e in tab.errors if not any(s in e for s in summary_fetch)], tab.errors
    finally:
        tab.close()


# Every figure of a cell output: its pixels that are not fully opaque (read back through a canvas), the
# CSS filter the theme applies to it, and the contrast of the interactive figures' control labels with
# the background they are drawn on (WCAG's ratio of relative luminances; 4.5 is its AA level for text).
FIGURES_IN_THIS_THEME = """async () => {
  const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => v / 255)
                       .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
                     return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = el => { for (; el; el = el.parentElement) { const c = rgba(getComputedStyle(el).backgroundColor);
                                                                  if (c.length === 3 || c[3] > 0) return c; }
                             return [255, 255, 255]; };
  const contrast = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
  const images = [];
  for (const img of document.querySelectorAll('.bd-content .cell_output img')) {
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let transparent = 0;
    for (let i = 3; i < px.length; i += 4) { if (px[i] < 255) transparent++; }
    images.push({src: img.getAttribute('src').slice(0, 60), pixels: px.length / 4, transparent,
                 filter: getComputedStyle(img).filter});
  }
  const labels = Array.from(document.querySelectorAll('.lotterylib-interactive label, .lotterylib-interactive output'))
    .map(el => ({text: el.textContent, contrast: contrast(rgba(getComputedStyle(el).color), background(el))}));
  return {theme: document.documentElement.dataset.theme, page: lum(background(document.body)), images, labels};
}"""


def test_figures_readable_in_dark_mode(server: str, browser) -> None:
    """The theme's dark mode on a chapter with plain and interactive figures: every figure is opaque
    (a transparent PNG would put black axes and text on the dark page), none is inverted by a filter,
    and the interactive figures' labels keep their contrast."""
    pages = [p for p in CHAPTERS if 'class="lotterylib-interactive"' in (BOOK / p).read_text(encoding="utf8")]
    assert pages, "no chapter with an interactive figure"
    tab = Page(browser)
    try:
        page = tab.page
        page.goto(server + pages[0], wait_until="load")
        toggle = page.locator("button.theme-switch-button").first
        for _ in range(3):  # the theme's toggle cycles through its modes
            if page.evaluate("document.documentElement.dataset.theme") == "dark":
                break
            toggle.click()
        seen = page.evaluate(FIGURES_IN_THIS_THEME)
        assert seen["theme"] == "dark" and seen["page"] < 0.05, f"the page is not dark: {seen['theme']}, {seen['page']}"
        assert len(seen["images"]) >= 2, f"too few figures to check: {seen['images']}"
        for image in seen["images"]:
            assert image["pixels"] > 0 and image["transparent"] == 0, f"a figure with transparent pixels: {image}"
            assert "invert" not in image["filter"], f"a figure inverted in dark mode: {image}"
        assert seen["labels"], "no labels on the interactive figures"
        for label in seen["labels"]:
            assert label["contrast"] >= 4.5, f"a figure's label hard to read in dark mode: {label}"
        assert not tab.foreign and not tab.errors, (tab.foreign, tab.errors)
    finally:
        tab.close()
