"""Fixtures of the end-to-end tests: the explorer app served by ``panel serve`` for the browser tests (``served``, and
``app_url`` once it answers), and the folder the browser tests save their screenshots in."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``panel serve apps/explorer.py`` starting on a free port, one per test module (``tests/_app_server.py``)."""
    from _app_server import AppServer  # the browser modules' helper; imported only by the modules that use it

    with AppServer(tmp_path_factory.mktemp("server") / "panel.log") as app:
        yield app


@pytest.fixture(scope="module")
def app_url(served) -> str:
    """The app's URL once the server answers; the test fails with the server's log when it does not start."""
    try:
        return served.wait()
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where a browser test saves its screenshots: ``S2LAB_SCREENSHOTS`` when set, else a temporary folder."""
    folder = os.environ.get("S2LAB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
