"""The explorer app served by ``panel serve`` and driven in Debian's chromium with Playwright.

Taps the scene and sees the spectrum follow, moves the mask-ratio slider and sees the reconstruction change, switches the masking strategy, moves the change
threshold and sees the scores change, uploads a real GeoTIFF crop, saves screenshots (to ``$S2LAB_SCREENSHOTS`` when
set, else the test's tmp folder) and finds no error in the browser console.
"""

from pathlib import Path

import pytest
from _app_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    START_S,
    VIEWPORT,
    WAIT_MS,
    press,
    real_crop,
    require_browser,
    src,
    text,
    wait_changed,
    wait_for,
    watch_problems,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one chromium at a time under -n 2

sync_api = require_browser()


@pytest.fixture(scope="module")
def server(upload_file, app_url) -> str:
    """The app's URL once the server answers (the upload file is written while it starts: ``upload_file`` is set up first)."""
    return app_url


@pytest.fixture(scope="module")
def upload_file(served, tmp_path_factory) -> Path:
    """A real 10-band 160 x 160 px crop of the embedded scene's held-out half, as a GeoTIFF."""
    path = tmp_path_factory.mktemp("upload") / "my_crop.tif"
    real_crop(path)
    return path


def test_explorer_in_chromium(server, screenshots, upload_file):
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            watch_problems(page, problems)
            page.goto(server, timeout=START_S * 1000)
            page.wait_for_selector(".scene canvas", state="attached", timeout=START_S * 1000)
            page.screenshot(path=screenshots / "1_scene.png")
            read_pixel = lambda: text(page, ".spectrum-angles")
            centre = wait_for(page, read_pixel, "Pixel (", "the spectrum's pixel")
            page.locator(".scene").click(position={"x": 130, "y": 200})  # a tap on the scene picks a pixel
            assert "Pixel (" in wait_changed(page, read_pixel, centre, "the spectrum after a tap on the scene")

            page.get_by_text("Mask and reconstruct", exact=True).click()
            before = src(page, ".picture-s2mae")
            assert before.startswith("data:image/png;base64,")
            press(page, ".mask-ratio", "ArrowLeft", 4)  # 0.75 -> 0.55
            wait_changed(page, lambda: src(page, ".picture-s2mae"), before, "the S2MAE reconstruction")
            wait_for(page, lambda: text(page, ".recon-scores"), "ratio 0.55", "the reconstruction scores")
            masked = src(page, ".picture-masked-s2mae")
            page.locator(".strategy").get_by_role("button", name="tube").click()
            wait_changed(page, lambda: src(page, ".picture-masked-s2mae"), masked, "the masked input (strategy)")
            wait_for(page, lambda: text(page, ".recon-scores"), "strategy tube", "the reconstruction scores")
            page.screenshot(path=screenshots / "2_reconstruct.png")

            page.get_by_text("Change", exact=True).click()
            read_scores = lambda: text(page, ".change-scores")
            first = wait_for(page, read_scores, "precision", "the change scores")
            press(page, ".threshold", "ArrowRight", 10)
            wait_changed(page, read_scores, first, "the change scores")
            page.screenshot(path=screenshots / "3_change.png")

            page.get_by_text("Mask and reconstruct", exact=True).click()  # built once: shown again as it was left
            wait_for(page, lambda: text(page, ".recon-scores"), "strategy tube", "the reconstruction scores, again")
            original = src(page, ".picture-original")
            page.locator(".upload input[type=file]").set_input_files(upload_file)
            page.get_by_text(f"upload {upload_file.name}").first.wait_for(timeout=WAIT_MS)
            wait_changed(page, lambda: src(page, ".picture-original"), original, "the original after the upload")
            page.screenshot(path=screenshots / "4_upload.png")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert {f.name for f in screenshots.iterdir()} >= {"1_scene.png", "2_reconstruct.png", "3_change.png",
                                                        "4_upload.png"}
