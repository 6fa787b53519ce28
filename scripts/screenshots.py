"""The README's pictures of the explorer: its Mask and reconstruct tab at mask ratios 0.75 and 0.9, as a browser shows it.

    python scripts/screenshots.py [--out docs/images]

Serves ``apps/explorer.py`` with ``panel serve`` and drives it in Debian's chromium with Playwright (the helpers of
``tests/_app_server.py``, which the browser tests use), random masking, seed 0, the shipped checkpoints. Writes
``explorer_reconstruct_075.png`` and ``explorer_reconstruct_090.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from _app_server import (  # noqa: E402  (the shared helpers live beside the tests)
    CHROMIUM,
    CHROMIUM_ARGS,
    START_S,
    VIEWPORT,
    AppServer,
    press,
    src,
    text,
    wait_changed,
    wait_for,
)

STEPS = {0.75: 0, 0.9: 3}  # slider steps of 0.05 to the right of the default 0.75


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where the pictures go")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright import sync_api

    with tempfile.TemporaryDirectory() as folder, AppServer(Path(folder) / "server.log") as server:
        url = server.wait()
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(url, timeout=START_S * 1000)
                page.wait_for_selector(".picture-original img", state="attached", timeout=START_S * 1000)
                page.get_by_text("Mask and reconstruct", exact=True).click()
                wait_for(page, lambda: text(page, ".recon-scores"), "ratio 0.75", "the reconstruction scores")
                done = 0
                for ratio, steps in STEPS.items():
                    if steps > done:
                        before = src(page, ".picture-s2mae")
                        press(page, ".mask-ratio", "ArrowRight", steps - done)
                        wait_changed(page, lambda: src(page, ".picture-s2mae"), before, "the S2MAE reconstruction")
                        wait_for(page, lambda: text(page, ".recon-scores"), f"ratio {ratio:.2f}", "the scores")
                        done = steps
                    path = args.out / f"explorer_reconstruct_{round(ratio * 100):03d}.png"
                    page.screenshot(path=path)
                    print(path)
            finally:
                browser.close()


if __name__ == "__main__":
    main()
