"""The explorer app under load and under bad uploads, through the real server (``panel serve``) in Debian's chromium.

A short CI version of ``bench/app_load.py``: ten browser sessions move the mask-ratio and threshold sliders at once
for 15 s, and none meets a server error, a browser error or a change it never sees; then thirty simulated sessions
(bokeh's websocket protocol, as a class's browsers speak it) do the same, and every change reaches each of them. Then, through the same server:
an oversized file, a file that is not a raster and a one-band GeoTIFF are each refused with a message naming what
was wrong; a file too large for one websocket message closes only its own session's connection, and the page says
so; meanwhile the server keeps serving another session and opens new ones. And a real GeoTIFF crop one session
uploads is never seen by another session, open before the upload or after it: an idle session is sent nothing at all while
another one uploads and moves its sliders.
"""

import asyncio

import pytest
from _app_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    START_S,
    VIEWPORT,
    WAIT_MS,
    drive_sessions,
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

SESSIONS = 10  # browser sessions at once: a small class on one server
CLASS = 30  # simulated sessions at once (bokeh's protocol, nothing rendered): a class on one server
LOAD_S = 15.0  # how long they move sliders (the bench does a minute)
EMBEDDED = "embedded Sentinel-2 scene"  # how the app names its default image


@pytest.fixture(scope="module")
def server(uploads, app_url) -> str:
    """The app's URL once the server answers (the upload files are written while it starts: ``uploads`` is set up first)."""
    return app_url


@pytest.fixture(scope="module")
def uploads(served, tmp_path_factory) -> dict:
    """Files a learner might upload, made from a real 160 x 160 px crop of the embedded scene's held-out half."""
    from s2lab.data.export import write_geotiff
    from s2lab.explorer import BANDS, MAX_UPLOAD_MB

    folder = tmp_path_factory.mktemp("uploads")
    good = folder / "my_crop.tif"
    crop = real_crop(good)
    one_band = write_geotiff(crop.isel(band=[BANDS.index("B04")]), folder / "one_band.tif")
    big = folder / "big_scene.tif"  # a valid GeoTIFF, padded past the limit: only its size is wrong
    big.write_bytes(good.read_bytes().ljust((MAX_UPLOAD_MB + 1) * 2**20, b"\0"))
    huge = folder / "huge_scene.tif"  # as base64, more than bokeh's 20 MiB websocket message
    huge.write_bytes(good.read_bytes().ljust(20 * 2**20, b"\0"))
    notes = folder / "notes.tif"
    notes.write_text("field notes, not a raster\n" * 200)
    return {"good": good, "big": big, "huge": huge, "notes": notes, "one band": one_band, "max_mb": MAX_UPLOAD_MB}


def _open(browser, url: str, problems: list[str]):
    """A new session: a page in its own browser context, its reconstruction tab open and showing its pictures."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    watch_problems(page, problems)
    page.goto(url, timeout=START_S * 1000)
    page.get_by_text("Mask and reconstruct", exact=True).click(timeout=START_S * 1000)
    page.wait_for_selector(".picture-original img", state="attached", timeout=START_S * 1000)
    return page


def _slider_works(page, key: str) -> None:
    """One mask-ratio step shows a new S2MAE picture and the ratio it was made with."""
    page.get_by_text("Mask and reconstruct", exact=True).click()
    before = src(page, ".picture-s2mae")
    press(page, ".mask-ratio", key, 1)
    ratio = page.locator(".mask-ratio .noUi-handle").first.get_attribute("aria-valuetext")
    wait_changed(page, lambda: src(page, ".picture-s2mae"), before, "the S2MAE reconstruction")
    wait_for(page, lambda: text(page, ".recon-scores"), f"ratio {ratio}", "the reconstruction scores")


def _check_server(served) -> None:
    assert served.alive(), f"the server stopped:\n{served.tail()}"
    assert not served.errors(), "errors in the server's log:\n" + "\n".join(served.errors())


def test_ten_sessions_moving_sliders_meet_no_error(server, served, record_property):
    sessions = asyncio.run(drive_sessions(server, sessions=SESSIONS, seconds=LOAD_S))
    _check_server(served)
    problems = [f"session {s.index}: {p}" for s in sessions for p in s.problems]
    assert not problems, "\n".join(problems)
    for s in sessions:
        assert s.open_s is not None and s.latencies(), f"session {s.index} saw no change"
        assert all(u.ms is not None for u in s.updates)
    shown = {u.slider for s in sessions for u in s.updates}
    assert shown == {"ratio", "threshold"}, f"only {shown} moved"
    ms = sorted(m for s in sessions for m in s.latencies())
    record_property("changes_shown", len(ms))
    record_property("p95_ms", round(ms[int(0.95 * (len(ms) - 1))]))


def test_a_class_of_simulated_sessions_sees_every_change(server, served, record_property):
    """Thirty sessions speaking bokeh's protocol as browsers do (``tests/_bokeh_session.py``), sliders moving at once:
    every change arrives with its own value (the scores say so), and the server logs no error."""
    from _bokeh_session import drive_protocol_sessions

    sessions = asyncio.run(drive_protocol_sessions(server, sessions=CLASS, seconds=LOAD_S))
    _check_server(served)
    problems = [f"session {s.index}: {p}" for s in sessions for p in s.problems]
    assert not problems, "\n".join(problems)
    for s in sessions:
        assert s.open_s is not None, f"session {s.index} never opened"
        assert s.updates and all(u.ms is not None for u in s.updates), f"session {s.index} lost a change"
    assert {u.slider for s in sessions for u in s.updates} == {"ratio", "threshold"}
    ms = sorted(m for s in sessions for m in s.latencies())
    record_property("class_changes_shown", len(ms))
    record_property("class_p95_ms", round(ms[int(0.95 * (len(ms) - 1))]))


def test_bad_uploads_are_refused_and_the_server_keeps_serving(server, served, uploads):
    refusals = {  # file -> what the message must say
        uploads["big"]: f"is {uploads['max_mb'] + 1:.1f} MB; files up to {uploads['max_mb']} MB are accepted",
        uploads["notes"]: "is not a GeoTIFF: its first bytes",
        uploads["one band"]: "has 1 band; the models need the 10 Sentinel-2 bands",
    }
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            other = _open(browser, server, problems)
            page = _open(browser, server, problems)
            embedded = src(page, ".picture-original")
            for path, expected in refusals.items():
                page.locator(".upload input[type=file]").set_input_files(path)
                message = wait_for(page, lambda: text(page, ".message"), f"Upload refused: {path.name}",
                                   f"the message after uploading {path.name}")
                assert expected in message, message
            assert src(page, ".picture-original") == embedded
            assert page.get_by_text(f"Image: {EMBEDDED}").count() == 1
            _slider_works(page, "ArrowRight")
            page.locator(".upload input[type=file]").set_input_files(uploads["huge"])
            page.locator(".notyf__message", has_text="Lost the connection to the server").wait_for(timeout=WAIT_MS)
            _slider_works(other, "ArrowLeft")
            _open(browser, server, problems)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    _check_server(served)


def test_a_session_never_sees_another_sessions_upload(server, served, uploads):
    good = uploads["good"]
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            a = _open(browser, server, problems)
            b = browser.new_context(viewport=VIEWPORT).new_page()
            to_b = []  # every websocket frame the server sends B
            b.on("websocket", lambda ws: ws.on("framereceived", lambda frame: to_b.append(frame)))
            watch_problems(b, problems)
            b.goto(server, timeout=START_S * 1000)
            b.get_by_text("Change", exact=True).click()  # B's last own update: its change map
            wait_for(b, lambda: text(b, ".change-scores"), "precision", "B's change scores")
            b.get_by_text("Mask and reconstruct", exact=True).click()
            b.wait_for_selector(".picture-original img", state="attached", timeout=WAIT_MS)
            b.wait_for_timeout(1000)
            embedded, sent_to_b = src(b, ".picture-original"), len(to_b)
            assert src(a, ".picture-original") == embedded
            a.locator(".upload input[type=file]").set_input_files(good)
            a.get_by_text(f"Image: upload {good.name}").wait_for(timeout=WAIT_MS)
            wait_changed(a, lambda: src(a, ".picture-original"), embedded, "A's original after its upload")
            _slider_works(a, "ArrowLeft")
            assert len(to_b) == sent_to_b, f"B, idle, was sent {len(to_b) - sent_to_b} frames while A worked"
            _slider_works(b, "ArrowLeft")  # B is served after A's upload, and still shows its own image
            c = _open(browser, server, problems)  # a session opened after the upload
            for name, page in (("B", b), ("C", c)):
                assert page.get_by_text(good.name).count() == 0, f"session {name} shows A's upload"
                assert page.get_by_text(f"Image: {EMBEDDED}").count() == 1, f"session {name} left the scene"
                assert src(page, ".picture-original") == embedded, f"session {name}'s crop changed"
            assert src(a, ".picture-original") != embedded
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    _check_server(served)
