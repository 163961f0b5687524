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


TIMELINE = Path(__file__).parents[2] / "docs" / "img" / "timeline.png"


def test_a_long_video_becomes_a_job_with_a_timeline(two_action_ckpt: Path, tmp_path: Path) -> None:
    """A 25 s video (eye makeup, pool cleaning, eye makeup) uploaded on the page: a job with a progress bar, then one
    lane per label with its bands; hover names label and score, a click seeks the player; /jobs/ID shows it again."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    from tests.serve.longvideo import concat_clips

    video = tmp_path / "makeup-pool-makeup.mp4"
    concat_clips(video, ["xvid.avi", "h264.mp4", "xvid.avi"], width=320, height=240)
    server = Server(two_action_ckpt, "--threads", "1", "--max-batch", "4", log=tmp_path / "server.log")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 640, "height": 900}, device_scale_factor=1)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url + "/")
                sync_api.expect(page.locator("#model")).to_contain_text("2 classes", timeout=30_000)
                page.set_input_files("#file", str(video))
                sync_api.expect(page.locator("#job-progress")).to_be_visible(timeout=30_000)
                lanes = page.locator("#timeline .lane")
                sync_api.expect(lanes).to_have_count(2, timeout=180_000)
                assert lanes.locator(".lane-label").all_inner_texts() == ["eye makeup", "cleaning pool"]
                assert lanes.nth(0).locator(".band").count() == 2 and lanes.nth(1).locator(".band").count() == 1
                assert page.locator("#segments li").count() == 3
                job_path = page.evaluate("location.pathname")
                assert job_path.startswith("/jobs/") and page.locator("#share-link").inner_text() == server.url + job_path

                pool = lanes.nth(1).locator(".band")
                pool.hover()
                sync_api.expect(page.locator("#tip")).to_be_visible()
                tip = page.locator("#tip").inner_text()
                assert tip.startswith("cleaning pool · ") and "%" in tip
                pool.click()
                start = float(pool.get_attribute("data-start"))
                assert abs(start - 6.56) <= 1.0  # the boundary (test_jobs.py checks its accuracy)
                page.wait_for_function(f"Math.abs(document.getElementById('preview').currentTime - {start}) < 1.5")
                page.evaluate("""() => new Promise((done) => {
                    const v = document.getElementById('preview');
                    v.pause();
                    v.addEventListener('seeked', done, { once: true });
                    v.currentTime = 9.0;
                })""")
                page.wait_for_timeout(300)
                pool.hover()
                shot = tmp_path / "timeline.png"
                page.screenshot(path=str(shot), full_page=True)
                if os.environ.get("ACTIONREC_UPDATE_SCREENSHOT"):
                    from PIL import Image

                    with Image.open(shot) as im:
                        im.convert("RGB").quantize(128).save(TIMELINE, optimize=True)

                shared = browser.new_page(viewport={"width": 390, "height": 844})  # the shareable URL, without the video
                shared.on("pageerror", lambda e: errors.append(str(e)))
                shared.goto(server.url + job_path)
                sync_api.expect(shared.locator("#timeline .lane")).to_have_count(2, timeout=30_000)
                sync_api.expect(shared.locator("#local-row")).to_be_visible()
                assert shared.evaluate("document.documentElement.scrollWidth") <= 390
                assert not errors, errors
            finally:
                browser.close()
    finally:
        server.stop()
