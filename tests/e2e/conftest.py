"""Fixtures of the end-to-end tests: the explorer app served by ``panel serve`` for the browser tests."""

import pytest


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``panel serve apps/explorer.py`` starting on a free port, one per test module (``tests/_app_server.py``)."""
    from _app_server import AppServer  # the browser modules' helper; imported only by the modules that use it

    with AppServer(tmp_path_factory.mktemp("server") / "panel.log") as app:
        yield app
