"""Headless Chromium for the browser tests (tests/test_browser.py, tests/test_lab.py).

Playwright drives Debian's ``/usr/bin/chromium`` (or ``$LOTTERYLIB_CHROMIUM``); it never downloads a
browser. :class:`Page` is a tab that records console errors, page errors, failed requests and every
request to a host other than this machine.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("LOTTERYLIB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"localhost", "127.0.0.1"}


@contextlib.contextmanager
def launch() -> Iterator:
    """A Playwright Chromium browser on Debian's executable; a test failure that says what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"the playwright package is missing ({e}): `make test` installs requirements.txt")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (`apt-get install chromium`; "
                    "`make test` does it) or set LOTTERYLIB_CHROMIUM")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)  # never a downloaded browser
        try:
            yield b
        finally:
            b.close()


class Page:
    """A browser tab that records console errors, page errors, failed and non-local requests."""

    def __init__(self, browser, local_schemes=("http", "https")):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.local_schemes = local_schemes
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"))
        self.page.on("request", self._request)

    def _failed(self, request) -> None:
        if "ERR_ABORTED" not in (request.failure or ""):  # not cancelled by a navigation (index.html)
            self.errors.append(f"failed request: {request.url[:120]} {request.failure}")

    def _request(self, request) -> None:
        u = urlsplit(request.url)
        if u.scheme in ("data", "blob", "about"):
            return
        if u.scheme == "file" and "file" in self.local_schemes:
            return
        if u.scheme not in self.local_schemes or u.hostname not in LOCAL_HOSTS:
            self.foreign.append(request.url)

    def close(self) -> None:
        self.page.close()
