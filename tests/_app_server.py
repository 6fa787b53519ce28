"""Serving the explorer app and driving it in Debian's chromium: shared by the browser tests and bench/app_load.py.

- ``AppServer``: ``panel serve apps/explorer.py`` in a subprocess on a free port, its log, the errors in the log.
- ``require_browser``: skip a test module without playwright, chromium or what it drives (panel, jupyterlab); fail
  it when ``S2LAB_REQUIRE_BROWSER=1``, as in CI.
- One page driven step by step (sync Playwright): ``src``, ``text``, ``wait_for``, ``wait_changed``, ``press``.
- Many pages at once (async Playwright): ``drive_sessions`` opens N sessions in one chromium, each moving the
  mask-ratio and threshold sliders with the keyboard for a while, and times each change until the page shows it.

pytest is imported only by ``require_browser``, so the bench runs without it; this module imports without
playwright, so a test module can skip with a reason.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

try:
    from playwright.async_api import Error as PlaywrightError
except ImportError:  # require_browser skips (or fails) the tests; the bench cannot run without it anyway
    PlaywrightError = Exception

CHROMIUM = Path("/usr/bin/chromium")
APP = Path(__file__).resolve().parents[1] / "apps" / "explorer.py"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1500, "height": 1100}  # the whole app fits: no scrolling to reach a slider
START_S = 120  # the first session loads the scene and the models
WAIT_MS = 60_000  # one picture or score update, on a busy machine
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"  # levels in the log, so errors can be found
# A session whose page was served is kept 2 min (bokeh's default: 15 s) for its browser to connect. Under load a
# browser connects later than 15 s; bokeh then builds the session a second time on connect, and Panel never points
# that one's stylesheets at the server: they load from cdn.holoviz.org, which fails offline (bench/app_load.py).
SERVE_ARGS = ("--unused-session-lifetime", "120000")
REQUIRED = os.environ.get("S2LAB_REQUIRE_BROWSER") == "1"  # .ci/run sets it: there a missing browser is a failure


def require_browser(needs: tuple[str, ...] = ("panel",)):
    """Skip the calling test module unless playwright, Debian's chromium and ``needs`` are there (fail it in CI).

    Args:
        needs: the modules the test drives besides the browser (the app: panel; the notebooks: jupyterlab).

    Returns:
        The ``playwright.sync_api`` module.
    """
    import pytest

    def missing(reason: str):
        if REQUIRED:
            pytest.fail(f"S2LAB_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)

    try:
        from playwright import sync_api
    except ImportError:
        missing("playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        missing(f"Debian's chromium is missing at {CHROMIUM} (apt-get install -y chromium)")
    for name in needs:
        try:
            importlib.import_module(name)
        except ImportError:
            missing(f"{name} is not installed (the lab extra)")
    return sync_api


def real_crop(path: Path):
    """Write a real 10-band 160 x 160 px crop of the embedded scene's held-out half to ``path`` (a GeoTIFF).

    Returns the crop as a (band, y, x) DataArray, so a test can write variants of it (one band, say).
    """
    from s2lab.data.embedded import open_embedded_scene
    from s2lab.data.export import write_geotiff
    from s2lab.explorer import BANDS

    crop = open_embedded_scene(BANDS).isel(y=slice(1100, 1260), x=slice(380, 540))
    write_geotiff(crop, path)
    return crop


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``panel serve apps/explorer.py`` on a free port, started by the constructor; a context manager that stops it.

    Args:
        log: file the server's output goes to (created).
        args: more ``panel serve`` options (e.g. ``["--num-threads", "2"]``).
    """

    def __init__(self, log: Path, *, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.log = Path(log)
        self.url = f"http://localhost:{self.port}/explorer"
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # no fight over busy cores
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "panel", "serve", str(APP), "--port", str(self.port), "--liveness",
                 f"--allow-websocket-origin=localhost:{self.port}", "--log-format", LOG_FORMAT, *SERVE_ARGS, *args],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=APP.parents[1],
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait(self, timeout_s: float = START_S) -> str:
        """Wait until the server answers on its liveness endpoint; return the app's URL.

        Raises:
            RuntimeError: the server exited, or did not answer within ``timeout_s`` (with the log's tail).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"panel serve exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://localhost:{self.port}/liveness", timeout=5):
                    return self.url
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"panel serve did not answer within {timeout_s:.0f} s:\n{self.tail()}") from None
                time.sleep(0.5)

    def alive(self) -> bool:
        """The server process is still running."""
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def errors(self) -> list[str]:
        """Each traceback, ERROR or CRITICAL record of the log (with the lines that belong to it)."""
        records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", self.log.read_text(errors="replace"))
        return [r.strip() for r in records if re.search(r" (ERROR|CRITICAL) |Traceback \(most recent call", r)]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- one page, step by step (sync Playwright) ----------------------------------------------------------------------
def src(page, selector: str) -> str:
    """The ``src`` of the picture in a PNG pane (a data URL)."""
    return page.locator(f"{selector} img").first.get_attribute("src") or ""


def text(page, selector: str) -> str:
    """The text of a Markdown or Alert pane (it lives in the pane's shadow DOM)."""
    return " ".join(page.locator(f"{selector} p, {selector} th, {selector} td").all_inner_texts())


def wait_for(page, read, expected: str, what: str, timeout_ms: float = WAIT_MS) -> str:
    """Poll ``read()`` until it contains ``expected``; return it.

    Raises:
        AssertionError: it did not within ``timeout_ms`` (naming ``what`` and the last text read).
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        found = read()
        if expected in found:
            return found
        page.wait_for_timeout(200)
    raise AssertionError(f"{what} did not show {expected!r} within {timeout_ms / 1000:.0f} s: {read()!r}")


def wait_changed(page, read, old: str, what: str, timeout_ms: float = WAIT_MS) -> str:
    """Poll ``read()`` until it is neither empty nor ``old``; return it (AssertionError after ``timeout_ms``)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        new = read()
        if new and new != old:
            return new
        page.wait_for_timeout(100)
    raise AssertionError(f"{what} did not change within {timeout_ms / 1000:.0f} s")


def press(page, selector: str, key: str, times: int) -> None:
    """Press a key ``times`` on the handle of the noUiSlider inside ``selector`` (one step per press)."""
    handle = page.locator(f"{selector} .noUi-handle").first
    handle.focus()
    for _ in range(times):
        handle.press(key)


def watch_problems(page, problems: list[str]) -> None:
    """Append the page's console errors and uncaught errors to ``problems`` as they happen (sync or async page)."""
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


# -- many pages at once (async Playwright) -------------------------------------------------------------------------
# Inside a pane's shadow root: has the picture of host ``p`` left ``old``, and does the Markdown of host ``t`` show
# ``want`` (in a paragraph, or as a whole table cell when ``cell``)? When so: milliseconds on the page's clock since
# the last key press (``_KEY_CLOCK_JS``), checked at every animation frame; else false.
_UPDATED_JS = """([p, t, old, want, cell]) => {
  const img = p === null ? null : p.shadowRoot.querySelector('img');
  if (p !== null && (!img || img.getAttribute('src') === old)) return false;
  const texts = [...t.shadowRoot.querySelectorAll(cell ? 'td' : 'p')].map(e => e.textContent.trim());
  if (!texts.some(s => cell ? s === want : s.includes(want))) return false;
  return performance.now() - window.__s2labKeyAt;
}"""
# The page's clock at every key press, recorded before the slider sees the key (capture phase, composed events).
_KEY_CLOCK_JS = "document.addEventListener('keydown', () => { window.__s2labKeyAt = performance.now(); }, true)"
_SRC_JS = "p => { const img = p.shadowRoot.querySelector('img'); return img ? img.getAttribute('src') : ''; }"
# slider -> (its tab, what its scores show once the tab is drawn: in a paragraph, or a table cell)
TABS = {"ratio": ("Mask and reconstruct", "t => [...t.shadowRoot.querySelectorAll('p')].some(p => "
                                          "p.textContent.includes('ratio '))"),
        "threshold": ("Change", "t => t.shadowRoot.querySelector('td') !== null")}
# slider -> (css class of the slider, its range walked, step, the pane whose picture must change, the scores pane)
SLIDERS = {"ratio": (".mask-ratio", (0.05, 0.95), 0.05, ".picture-s2mae", ".recon-scores"),
           "threshold": (".threshold", (0.2, 0.8), 0.01, None, ".change-scores")}


@dataclass
class Update:
    """One slider change and how long the page took to show it."""

    slider: str  # "ratio" or "threshold"
    value: float  # the slider's new value
    at_s: float  # seconds since the load started, at the key press
    ms: float | None  # key press to the page showing the new value, on the page's clock; None: never (failed)


@dataclass
class Session:
    """What one browser session did and met."""

    index: int  # 0 ... N - 1
    open_s: float | None = None  # seconds from opening the URL to the first tab drawn (None: never was)
    tab_s: list[float] = field(default_factory=list)  # seconds from each tab's first click to its scores shown
    updates: list[Update] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # console errors, page errors, a page that did not open

    def latencies(self, slider: str | None = None) -> list[float]:
        """Milliseconds of the changes shown (of one slider, or all)."""
        return [u.ms for u in self.updates if u.ms is not None and slider in (None, u.slider)]

    def failed(self) -> list[str]:
        """The changes the page never showed, as text."""
        return [f"{u.slider} {u.value:.2f} at {u.at_s:.1f} s" for u in self.updates if u.ms is None]


async def wait_first_tab(page, timeout_ms: float) -> None:
    """Wait until the app's first tab is drawn: the scene's canvas and the pixel's spectrum table (async page).

    The other tabs are built when first opened (``s2lab.explorer.panes.lazy_tabs``).
    """
    await page.wait_for_selector(".scene canvas", state="attached", timeout=timeout_ms)
    angles = await page.locator(".spectrum-angles").first.element_handle()
    await page.wait_for_function("t => t.shadowRoot.querySelector('td') !== null", arg=angles, polling=100,
                                 timeout=timeout_ms)


async def _open(browser, url: str, session: Session, timeout_ms: float):
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    watch_problems(page, session.problems)
    await page.add_init_script(_KEY_CLOCK_JS)
    start = time.perf_counter()
    try:
        await page.goto(url, timeout=timeout_ms)
        await wait_first_tab(page, timeout_ms)
    except PlaywrightError as err:  # a timeout, a navigation error: a finding either way
        session.problems.append(f"the page did not open: {type(err).__name__}: {str(err).splitlines()[0]}")
        await context.close()
        return None, None
    session.open_s = time.perf_counter() - start
    return context, page


async def _move(page, slider: str, direction: int, session: Session, t0: float, timeout_ms: float) -> int:
    """Move ``slider`` one step up (``direction`` 1) or down (-1), turning at the ends of its walk; wait until the
    page shows the new value. Returns the direction taken."""
    css, (lo, hi), step, picture, scores = SLIDERS[slider]
    handle = page.locator(f"{css} .noUi-handle").first
    value = float(await handle.get_attribute("aria-valuetext"))  # aria-valuenow is rounded to 0.1
    if not lo - 1e-9 <= value + direction * step <= hi + 1e-9:
        direction = -direction
    host = None if picture is None else await page.locator(picture).first.element_handle()
    old = None if host is None else await host.evaluate(_SRC_JS)
    text_host = await page.locator(scores).first.element_handle()
    await handle.focus()
    start = time.perf_counter()
    await handle.press("ArrowRight" if direction > 0 else "ArrowLeft")
    value = float(await handle.get_attribute("aria-valuetext"))  # the value the slider sends
    want = f"ratio {value:.2f}" if slider == "ratio" else f"{value:.2f}"
    update = Update(slider=slider, value=value, at_s=start - t0, ms=None)
    try:
        shown = await page.wait_for_function(_UPDATED_JS, arg=[host, text_host, old, want, slider == "threshold"],
                                             polling="raf", timeout=timeout_ms)
    except PlaywrightError:  # not shown in time, or the page went away: a failed update (ms stays None)
        pass
    else:
        update.ms = float(await shown.json_value())
    session.updates.append(update)
    return direction


async def _work(page, session: Session, t0: float, seconds: float, pattern: tuple[str, ...], think_s: float,
                timeout_ms: float) -> None:
    """Move the sliders in turn (``pattern``, started at an offset per session) until ``seconds`` have passed."""
    await asyncio.sleep(think_s * session.index / 10)  # the sessions do not start in step
    tab, turn, directions, opened = None, session.index, dict.fromkeys(SLIDERS, 1), set()
    while time.perf_counter() - t0 < seconds:
        slider = pattern[turn % len(pattern)]
        turn += 1
        if TABS[slider][0] != tab:
            tab, drawn = TABS[slider]
            start = time.perf_counter()
            try:
                await page.get_by_text(tab, exact=True).click()
                scores = page.locator(SLIDERS[slider][4]).first
                await scores.wait_for(state="attached", timeout=timeout_ms)
                await page.wait_for_function(drawn, arg=await scores.element_handle(), polling="raf",
                                             timeout=timeout_ms)
            except PlaywrightError as err:
                session.problems.append(f"the tab {tab!r} did not open: {type(err).__name__}: "
                                        f"{str(err).splitlines()[0]}")
                return
            if tab not in opened:  # a tab's first opening builds it; later ones are the browser's alone
                session.tab_s.append(time.perf_counter() - start)
                opened.add(tab)
        directions[slider] = await _move(page, slider, directions[slider], session, t0, timeout_ms)
        await asyncio.sleep(think_s)


async def drive_sessions(url: str, *, sessions: int = 10, seconds: float = 60.0, think_s: float = 0.25,
                         pattern: tuple[str, ...] = ("ratio", "ratio", "ratio", "threshold"),
                         open_timeout_ms: float = START_S * 1000, timeout_ms: float = WAIT_MS) -> list[Session]:
    """Open ``sessions`` pages of the app in one headless chromium, then move their sliders at once.

    Every page is its own browser context, so its own bokeh session (its own ``Explorer``). All pages open
    concurrently; once all show their first tab, each opens the tab of its slider (the first opening of each timed
    until the tab's scores show, ``Session.tab_s``), moves one slider one step with the keyboard
    (a noUiSlider handle's arrow key), waits until the page shows the new value, pauses ``think_s``, and goes on,
    for ``seconds``. A mask-ratio change is shown when the S2MAE picture is a new one and the scores say
    ``ratio R``; a threshold change when the change scores' table holds the new threshold (pictures and scores are
    one view, drawn together).

    Args:
        url: the app's URL.
        sessions: pages open at once.
        seconds: how long the sliders move (after all pages opened).
        think_s: pause after each shown change.
        pattern: the sliders moved in turn by each session (it switches tabs when the slider's tab changes).
        open_timeout_ms: longest wait for a page to show its first tab.
        timeout_ms: longest wait for one change to show; longer is a failed update.

    Returns:
        One ``Session`` per page.
    """
    from playwright.async_api import async_playwright

    found = [Session(index=i) for i in range(sessions)]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            opened = await asyncio.gather(*(_open(browser, url, s, open_timeout_ms) for s in found))
            t0 = time.perf_counter()
            await asyncio.gather(*(_work(page, s, t0, seconds, pattern, think_s, timeout_ms)
                                   for s, (_, page) in zip(found, opened) if page is not None))
            await asyncio.gather(*(context.close() for context, _ in opened if context is not None))
        finally:
            await browser.close()
    return found
