"""Headless Chromium (the Debian package) driven by Playwright, for the UI tests."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"]


@contextmanager
def signed_in_page(base_url: str, email: str, password: str, **context_options) -> Iterator[Page]:
    """A page whose browser context holds the session cookies of a real sign-in (context_options: Playwright's, e.g.
    locale and timezone_id)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(base_url=base_url, **context_options)
            r = context.request.post("/auth/login", data={"email": email, "password": password})
            assert r.status == 200, r.text()
            yield context.new_page()
        finally:
            browser.close()


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """A PNG of the page in the test's output folder; with DL_DOCS_SCREENSHOTS=<dir> also a JPEG there (how the
    README's picture of the annotator workspace is made)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    if docs := os.environ.get("DL_DOCS_SCREENSHOTS"):
        from PIL import Image

        Image.open(path).convert("RGB").save(Path(docs) / f"{name}.jpg", quality=85, optimize=True)
    return path
