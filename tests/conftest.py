"""Test configuration: point s2lab at the project's shared real data when it sits beside the checkout; the app
server fixture the browser test modules share."""

import os
from pathlib import Path

import pytest

_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "S2LAB_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["S2LAB_DATA_DIR"] = str(_SHARED_DATA)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``panel serve apps/explorer.py`` starting on a free port, one per test module (``tests/_app_server.py``)."""
    from _app_server import AppServer  # the browser modules' helper; imported only by the modules that use it

    with AppServer(tmp_path_factory.mktemp("server") / "panel.log") as app:
        yield app
