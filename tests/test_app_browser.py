"""The explorer app served by ``panel serve`` and driven in Debian's chromium with Playwright.

Moves the mask-ratio slider and sees the reconstruction change, switches the masking strategy, moves the change
threshold and sees the scores change, uploads a real GeoTIFF crop, saves screenshots (to ``$S2LAB_SCREENSHOTS`` when
set, else the test's tmp folder) and finds no error in the browser console.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
APP = Path(__file__).resolve().parents[1] / "apps" / "explorer.py"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_S = 120  # the first session loads the scene and the models
WAIT_MS = 60_000  # one picture or score update, on a busy machine

pytestmark = pytest.mark.browser

REQUIRED = os.environ.get("S2LAB_REQUIRE_BROWSER") == "1"  # .ci/run sets it: there a missing browser is a failure


def _require(module: str, reason: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        if REQUIRED:
            pytest.fail(f"S2LAB_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


sync_api = _require("playwright.sync_api", "playwright is not installed (pip install playwright)")
if not CHROMIUM.exists():
    reason = f"Debian's chromium is missing at {CHROMIUM} (apt-get install -y chromium)"
    if REQUIRED:
        pytest.fail(f"S2LAB_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
_require("panel", "the app needs panel (the lab extra)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``panel serve apps/explorer.py`` starting on a free port: (process, port, log path)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "panel.log"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # no fight over busy cores
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", str(APP), "--port", str(port), "--liveness",
             f"--allow-websocket-origin=localhost:{port}"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=APP.parents[1],
        )
    try:
        yield proc, port, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(served, upload_file) -> str:
    """The app's URL once the server answers (the upload file is written while it starts)."""
    proc, port, log = served
    deadline = time.monotonic() + START_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"panel serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/liveness", timeout=5):
                return f"http://localhost:{port}/explorer"
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"panel serve did not answer within {START_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("S2LAB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def upload_file(served, tmp_path_factory) -> Path:
    """A real 10-band 160 x 160 px crop of the embedded scene's held-out half, as a GeoTIFF."""
    from s2lab.data.embedded import open_embedded_scene
    from s2lab.data.raster import write_geotiff
    from s2lab.explorer import BANDS

    scene = open_embedded_scene(BANDS)
    path = tmp_path_factory.mktemp("upload") / "my_crop.tif"
    write_geotiff(scene.isel(y=slice(1100, 1260), x=slice(380, 540)), path)
    return path


def _src(page, selector: str) -> str:
    return page.locator(f"{selector} img").first.get_attribute("src") or ""


def _text(page, selector: str) -> str:
    """The text of a Markdown pane (it lives in the pane's shadow DOM)."""
    return " ".join(page.locator(f"{selector} p, {selector} th, {selector} td").all_inner_texts())


def _wait_for(page, read, expected: str, what: str) -> str:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        text = read()
        if expected in text:
            return text
        page.wait_for_timeout(200)
    pytest.fail(f"{what} did not show {expected!r} within {WAIT_MS / 1000:.0f} s: {read()!r}")


def _wait_changed(page, read, old: str, what: str) -> str:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        new = read()
        if new and new != old:
            return new
        page.wait_for_timeout(100)
    pytest.fail(f"{what} did not change within {WAIT_MS / 1000:.0f} s")


def _press(page, selector: str, key: str, times: int) -> None:
    handle = page.locator(f"{selector} .noUi-handle").first
    handle.focus()
    for _ in range(times):
        handle.press(key)


def test_explorer_in_chromium(server, screenshots, upload_file):
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(server, timeout=START_S * 1000)
            page.wait_for_selector(".picture-original img", state="attached", timeout=START_S * 1000)
            page.screenshot(path=screenshots / "1_scene.png")

            page.get_by_text("Mask and reconstruct", exact=True).click()
            before = _src(page, ".picture-s2mae")
            assert before.startswith("data:image/png;base64,")
            _press(page, ".mask-ratio", "ArrowLeft", 4)  # 0.75 -> 0.55
            _wait_changed(page, lambda: _src(page, ".picture-s2mae"), before, "the S2MAE reconstruction")
            _wait_for(page, lambda: _text(page, ".recon-scores"), "ratio 0.55", "the reconstruction scores")
            masked = _src(page, ".picture-masked-s2mae")
            page.locator(".strategy").get_by_role("button", name="tube").click()
            _wait_changed(page, lambda: _src(page, ".picture-masked-s2mae"), masked, "the masked input (strategy)")
            _wait_for(page, lambda: _text(page, ".recon-scores"), "strategy tube", "the reconstruction scores")
            page.screenshot(path=screenshots / "2_reconstruct.png")

            page.get_by_text("Change", exact=True).click()
            read_scores = lambda: _text(page, ".change-scores")
            first = _wait_for(page, read_scores, "precision", "the change scores")
            _press(page, ".threshold", "ArrowRight", 10)
            _wait_changed(page, read_scores, first, "the change scores")
            page.screenshot(path=screenshots / "3_change.png")

            original = _src(page, ".picture-original")
            page.locator(".upload input[type=file]").set_input_files(upload_file)
            page.get_by_text(f"upload {upload_file.name}").first.wait_for(timeout=WAIT_MS)
            _wait_changed(page, lambda: _src(page, ".picture-original"), original, "the original after the upload")
            page.get_by_text("Mask and reconstruct", exact=True).click()
            page.screenshot(path=screenshots / "4_upload.png")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert {f.name for f in screenshots.iterdir()} >= {"1_scene.png", "2_reconstruct.png", "3_change.png",
                                                        "4_upload.png"}
