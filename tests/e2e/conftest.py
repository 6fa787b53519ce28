"""Fixtures of the end-to-end tests: the explorer app served by ``panel serve`` for the browser tests, and the folder
the browser tests save their screenshots in."""

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
def screenshots(tmp_path_factory) -> Path:
    """Where a browser test saves its screenshots: ``S2LAB_SCREENSHOTS`` when set, else a temporary folder."""
    folder = os.environ.get("S2LAB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
