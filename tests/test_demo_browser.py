"""`sosd demo`: the page's callbacks, the no-model page, and the whole page driven in headless Chromium.

The browser test starts `python -m sosd demo --checkpoint RUN --port P` (a tiny model trained here in
seconds, or the run named by SOSD_DEMO_CHECKPOINT), opens it in Debian's Chromium through Playwright,
picks an example scene, uploads a procedural scene of another size than the model's, and checks that
the depth map and the segmentation come back at the upload's size, that a click reads the depth and the
class at the clicked pixel, and that the opacity slider re-blends. It saves a full-page screenshot
(1280 px wide): to docs/demo_screenshot.png when SOSD_DEMO_CHECKPOINT is set (or to
SOSD_DEMO_SCREENSHOT), else into the test's temp folder, so routine runs never overwrite the picture in
the docs. It skips when /usr/bin/chromium, playwright or gradio is missing (scripts/install_browser.sh
installs them; never `playwright install`).

Run:        OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_demo_browser.py
Screenshot: SOSD_DEMO_CHECKPOINT=runs/esosd_indoor_small OMP_NUM_THREADS=1 \\
            .venv/bin/python -m pytest -q tests/test_demo_browser.py -k browser
"""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sosd
from sosd.data.synthetic import render_scene
from sosd.train.loop import fit
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SOSD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
UPLOAD_HW = (270, 360)  # not the tiny model's 48x64 nor the small model's 120x160, nor the examples' 240x320
SERVER_START_S = 240     # gradio + torch import and model load on a loaded 2-core machine
STEP_S = 120             # one prediction round trip in the page


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    given = os.environ.get("SOSD_DEMO_CHECKPOINT")
    if given:
        return Path(given).resolve()
    tmp = tmp_path_factory.mktemp("demo")
    fit(tiny_config(tmp, steps=8), progress=False)
    return tmp / "runs" / "tiny"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------- without a browser

def test_callbacks_give_maps_at_the_input_size_and_read_pixels(checkpoint):
    from sosd.demo import _Runner, blend, legend_html

    pred = sosd.load(checkpoint)
    run = _Runner(pred)
    img = render_scene("indoor", 3, 0, 100, 150).image
    state, depth, bar, note, overlay, legend, readout = run.predict(img, 0.5)
    assert depth.shape == overlay.shape == (100, 150, 3) and depth.dtype == overlay.dtype == np.uint8
    assert "depth (m)" in bar and "linear-gradient" in bar and "median" in note
    assert all(name in legend for name in pred.class_names) and "%" in legend
    ref = pred.predict(img)
    np.testing.assert_array_equal(state["depth"], ref.depth)
    text = run.readout(state, [149, 99])
    assert "x=149, y=99" in text and f"{ref.depth[99, 149]:.2f} m" in text
    assert pred.class_names[ref.labels[99, 149]] in text
    assert "x=149, y=99" in run.readout(state, [400, 300])  # clamped into the image
    np.testing.assert_array_equal(run.reblend(state, 0.0), img)
    np.testing.assert_array_equal(blend(img, ref.labels, len(pred.class_names), 0.5), overlay)
    assert run.predict(None, 0.5)[1] is None
    assert "absent" in legend_html(None, pred.class_names)


def test_page_without_a_checkpoint_says_how_to_get_one(monkeypatch, tmp_path):
    pytest.importorskip("gradio", minversion="6", reason="gradio 6+ is not installed: pip install 'sosd[demo]'")
    from sosd.demo import build_app, no_checkpoint_message

    monkeypatch.chdir(tmp_path)
    msg = no_checkpoint_message()
    assert "bash scripts/main.sh" in msg and "sosd demo --checkpoint runs/esosd_indoor_small" in msg
    app = build_app(None)
    values = [str(c.get("props", {}).get("value")) for c in app.config["components"]]
    assert any("bash scripts/main.sh" in v for v in values)
    app.close()


def test_demo_command_is_listed():
    from sosd.cli import build_parser

    help_text = build_parser().format_help()
    assert "demo" in help_text


# ------------------------------------------------------------------------------------- in Chromium

def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"sosd demo exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"sosd demo did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _natural_size(page, elem_id: str):
    return page.eval_on_selector(f"#{elem_id} img", "e => [e.naturalWidth, e.naturalHeight, e.complete]")


def _wait_image(page, elem_id: str, w: int, h: int, old_src: str | None = None) -> str:
    """Wait until #elem_id shows a loaded w x h image (other than ``old_src``); returns its src."""
    page.wait_for_function(
        """([id, w, h, old]) => { const e = document.querySelector('#' + id + ' img');
             return e && e.complete && e.naturalWidth === w && e.naturalHeight === h && e.src !== old; }""",
        arg=[elem_id, w, h, old_src or ""], timeout=STEP_S * 1000)
    return page.eval_on_selector(f"#{elem_id} img", "e => e.src")


def _click_pixel(page, elem_id: str, x: int, y: int) -> None:
    """Click image pixel (x, y) of #elem_id (the image is letterboxed in its box, never enlarged)."""
    box = page.locator(f"#{elem_id} img").bounding_box()
    nw, nh, _ = _natural_size(page, elem_id)
    r = min(box["width"] / nw, box["height"] / nh, 1.0)
    ox, oy = (box["width"] - nw * r) / 2, (box["height"] - nh * r) / 2
    page.mouse.click(box["x"] + ox + (x + 0.5) * r, box["y"] + oy + (y + 0.5) * r)


@pytest.fixture
def sync_api():
    """Playwright's sync API, or a skip naming what is missing (checked before any model is trained)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}: run scripts/install_browser.sh "
                    "(apt-get install chromium)")
    pytest.importorskip("gradio", minversion="6",
                        reason="gradio 6+ is not installed: run scripts/install_browser.sh")
    return pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed: run scripts/install_browser.sh")


def test_demo_page_in_headless_chromium(sync_api, checkpoint, tmp_path):

    shot = Path(os.environ.get("SOSD_DEMO_SCREENSHOT") or
                (ROOT / "docs" / "demo_screenshot.png" if os.environ.get("SOSD_DEMO_CHECKPOINT")
                 else tmp_path / "demo_screenshot.png"))
    h, w = UPLOAD_HW
    upload = tmp_path / "upload_scene.png"
    image = render_scene("indoor", 11, 2, h, w).image
    Image.fromarray(image).save(upload)
    expected = sosd.load(checkpoint).predict(image)

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "demo.log"
    env = dict(os.environ, OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "sosd", "demo", "--checkpoint", str(checkpoint),
                                 "--host", "127.0.0.1", "--port", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=str(tmp_path))
    try:
        _wait_http(url, proc, log, SERVER_START_S)
        assert f"open {url.rstrip('/')}" in log.read_text()
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=120_000)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.set_default_timeout(STEP_S * 1000)
                page.goto(url, timeout=STEP_S * 1000, wait_until="domcontentloaded")
                page.wait_for_selector("#sosd-input input[type=file]", state="attached")
                assert "trained at" in page.inner_text("#sosd-status")

                # an example scene (the generator's 240x320) runs the model when picked
                page.locator("#sosd-examples button, #sosd-examples td, #sosd-examples img").first.click()
                ex_src = _wait_image(page, "sosd-depth", 320, 240)
                _wait_image(page, "sosd-overlay", 320, 240)

                # an uploaded image of another size comes back at its own size
                page.set_input_files("#sosd-input input[type=file]", str(upload))
                depth_src = _wait_image(page, "sosd-depth", w, h, ex_src)
                overlay_src = _wait_image(page, "sosd-overlay", w, h)
                legend = page.inner_text("#sosd-legend")
                assert "%" in legend and all(n in legend for n in expected.class_names)
                bar = page.inner_text("#sosd-colorbar")
                assert "depth (m)" in bar and len(re.findall(r"\d+\.\d+", bar)) >= 3

                # the opacity slider re-blends the overlay (same size, new picture)
                num = page.locator("#sosd-alpha input[type=number]")
                num.fill("0.65")
                num.press("Enter")
                overlay_src = _wait_image(page, "sosd-overlay", w, h, overlay_src)

                # a click reads the depth and class of that pixel
                x, y = int(w * 0.55), int(h * 0.8)
                _click_pixel(page, "sosd-depth", x, y)
                page.wait_for_function("document.querySelector('#sosd-readout').innerText.includes('x=')")
                text = page.inner_text("#sosd-readout")
                m = re.search(r"x=(\d+), y=(\d+)\) · depth ([\d.]+) m · class (\S+)", text)
                assert m, text
                gx, gy, value, cls = int(m[1]), int(m[2]), float(m[3]), m[4]
                assert abs(gx - x) <= 1 and abs(gy - y) <= 1, (text, x, y)
                assert abs(value - float(expected.depth[gy, gx])) <= 0.011, (text, expected.depth[gy, gx])
                assert cls == expected.class_names[expected.labels[gy, gx]], text
                assert page.eval_on_selector("#sosd-depth img", "e => e.src") == depth_src

                page.wait_for_timeout(500)  # let the last repaint settle
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
    with Image.open(shot) as im:
        assert im.size[0] == 1280 and im.size[1] >= 600
