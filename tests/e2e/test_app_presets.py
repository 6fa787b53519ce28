"""Links that preset the explorer, in Debian's chromium: ``/explorer?tab=reconstruct&ratio=0.9&strategy=tube`` opens
that tab at that ratio and strategy, the URL follows the widgets, and a bad link opens with the defaults and says why.
"""

from urllib.parse import parse_qsl, urlsplit

import pytest
from _app_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    START_S,
    VIEWPORT,
    WAIT_MS,
    press,
    require_browser,
    text,
    wait_for,
    watch_problems,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one chromium at a time under -n 2

sync_api = require_browser()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def url_query(page) -> str:
    """The page's URL query as ``key=value`` pairs, numbers rounded to 2 decimals (a slider's 0.9 + 0.05 is sent
    as 0.9500000000000001)."""
    def shown(value: str) -> str:
        try:
            return f"{float(value):.2f}" if "." in value else value
        except ValueError:
            return value

    return " ".join(f"{k}={shown(v)}" for k, v in parse_qsl(urlsplit(page.url).query))


def test_a_link_opens_its_tab_with_its_presets_and_the_url_follows(app_url, browser, served):
    problems = []
    page = browser.new_page(viewport=VIEWPORT)
    watch_problems(page, problems)
    page.goto(f"{app_url}?tab=reconstruct&ratio=0.9&strategy=tube", timeout=START_S * 1000)
    read_scores = lambda: text(page, ".recon-scores")
    scores = wait_for(page, read_scores, "ratio 0.90", "the reconstruction scores", timeout_ms=START_S * 1000)
    assert "strategy tube" in scores
    assert page.locator(".mask-ratio .noUi-handle").first.get_attribute("aria-valuetext") == "0.90"
    assert page.locator(".scene").count() == 0, "the first tab is built only when opened"
    # The URL shows every key once the page has loaded, then follows the widgets.
    wait_for(page, lambda: url_query(page), "tab=reconstruct ratio=0.90 strategy=tube seed=0", "the URL")
    assert "composite=true colour" in url_query(page)
    press(page, ".mask-ratio", "ArrowRight", 1)  # 0.9 -> 0.95
    wait_for(page, read_scores, "ratio 0.95", "the reconstruction scores after a slider step")
    wait_for(page, lambda: url_query(page), "ratio=0.95", "the URL after a slider step")
    page.get_by_text("Change", exact=True).click()
    wait_for(page, lambda: url_query(page), "tab=change", "the URL after opening the Change tab")
    page.close()
    assert not problems, "\n".join(problems)
    assert not served.errors(), "\n\n".join(served.errors())


def test_a_bad_link_opens_with_the_defaults_and_says_what_was_wrong(app_url, browser, served):
    problems = []
    page = browser.new_page(viewport=VIEWPORT)
    watch_problems(page, problems)
    page.goto(f"{app_url}?tab=nope&ratio=2&strategy=checkerboard", timeout=START_S * 1000)
    page.wait_for_selector(".scene canvas", state="attached", timeout=START_S * 1000)  # the first tab, the default
    read_message = lambda: " ".join(page.locator(".message li").all_inner_texts())
    message = wait_for(page, read_message, "ratio=2", "the message area")
    for said in ("tab=nope: expected one of scene, tokens, reconstruct, change; showing the default, scene",
                 "ratio=2: expected a number from 0 to 0.95; showing the default, 0.75",
                 "strategy=checkerboard: expected one of random, tube"):
        assert said in message, message
    wait_for(page, lambda: url_query(page), "tab=scene ratio=0.75 strategy=random", "the URL, the defaults")
    page.get_by_text("Mask and reconstruct", exact=True).click()
    scores = wait_for(page, lambda: text(page, ".recon-scores"), "ratio 0.75", "the reconstruction scores",
                      timeout_ms=WAIT_MS)
    assert "strategy random" in scores
    page.close()
    assert not problems, "\n".join(problems)
    assert not served.errors(), "\n\n".join(served.errors())
