"""Test configuration: point s2lab at the project's shared real data when it sits beside the checkout; the fixtures
several test modules share (a crop of the real scene, the app server of the browser tests)."""

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


@pytest.fixture(scope="session")
def scene_crop():
    """150 rows x 200 columns of the real embedded scene (10 bands): neither side a multiple of a 32 px window."""
    from s2lab.data.embedded import open_embedded_scene  # after S2LAB_DATA_DIR is set above

    return open_embedded_scene().isel(y=slice(600, 750), x=slice(900, 1100))
