"""The web page in a real browser: Debian's Chromium driven by Playwright, DeepMind's I3D behind it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.serve.conftest import Server

DATA = Path(__file__).parents[1] / "data"
SCREENSHOT = Path(__file__).parents[2] / "docs" / "img" / "serve-page.png"
CHROMIUM = os.environ.get("ACTIONREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set ACTIONREC_CHROMIUM)"),
]


def test_page_uploads_a_clip_and_shows_the_top5_and_the_annotated_video(i3d_server: Server, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)  # a phone
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(i3d_server.url + "/")
            sync_api.expect(page.locator("#model")).to_contain_text("400 classes", timeout=30_000)
            page.set_input_files("#file", str(DATA / "cricket_rgb.gif"))
            sync_api.expect(page.locator("#top1")).to_have_text("playing cricket", timeout=120_000)
            bars = page.locator("#bars li")
            assert bars.count() == 5
            assert bars.nth(0).locator(".score").inner_text().startswith("99.")
            annotated = page.locator("#annotated")
            sync_api.expect(annotated).to_be_visible(timeout=30_000)
            page.wait_for_function("document.getElementById('annotated').readyState >= 2", timeout=30_000)  # a frame decoded
            width = page.evaluate("document.getElementById('annotated').videoWidth")
            assert width >= 224
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
            page.evaluate("""() => new Promise((done) => {
                const v = document.getElementById('annotated');
                v.pause();
                v.addEventListener('seeked', done, { once: true });
                v.currentTime = 1.0;
            })""")
            page.wait_for_function("document.getElementById('annotated').readyState >= 2")
            page.wait_for_timeout(500)  # let the media controls drop their loading spinner
            shot = tmp_path / "serve-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("ACTIONREC_UPDATE_SCREENSHOT"):
                from PIL import Image

                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                with Image.open(shot) as im:  # a 128-colour palette keeps the committed PNG small
                    im.convert("RGB").quantize(128).save(SCREENSHOT, optimize=True)
            assert not errors, errors
        finally:
            browser.close()
