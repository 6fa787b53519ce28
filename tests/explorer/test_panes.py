"""The app's panes: tabs built when first opened (``lazy_tabs``), the URL kept in step (``keep_url_in_step``)."""

import pytest

pn = pytest.importorskip("panel")
import param  # noqa: E402
from bokeh.models import Spacer  # noqa: E402

from s2lab.explorer.panes import keep_url_in_step, lazy_tabs  # noqa: E402


def _tabs():
    contents = [pn.Column(pn.pane.Markdown(f"tab {i}", css_classes=[f"tab-{i}"])) for i in range(3)]
    return contents, lazy_tabs(*((f"T{i}", c) for i, c in enumerate(contents)), css_classes=["tabs"])


def test_a_page_starts_with_its_first_tab_built_and_the_others_empty():
    contents, tabs = _tabs()
    root = tabs.get_root()
    assert tabs.objects[0] is contents[0]
    assert [type(panel.child).__name__ for panel in root.tabs[1:]] == ["Spacer", "Spacer"]
    assert [panel.title for panel in root.tabs] == ["T0", "T1", "T2"]
    assert "tabs" in root.css_classes


def test_a_tab_is_built_when_first_opened_and_then_kept():
    contents, tabs = _tabs()
    root = tabs.get_root()
    tabs.active = 2
    assert tabs.objects[2] is contents[2]
    built = root.tabs[2].child
    assert not isinstance(built, Spacer) and "tab-2" in built.children[0].css_classes
    assert isinstance(root.tabs[1].child, Spacer), "only the opened tab is built"
    tabs.active = 0
    tabs.active = 2
    assert root.tabs[2].child is built, "a tab opened again is the same models, not built anew"
    assert root.tabs[0].child is not None and tabs.objects[0] is contents[0]


def test_no_tabs_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        lazy_tabs()


def test_a_page_opened_on_another_tab_builds_that_one_only():
    contents = [pn.Column(pn.pane.Markdown(f"tab {i}")) for i in range(3)]
    tabs = lazy_tabs(*((f"T{i}", c) for i, c in enumerate(contents)), active=2)
    root = tabs.get_root()
    assert root.active == 2 and tabs.objects[2] is contents[2]
    assert [type(panel.child).__name__ for panel in root.tabs[:2]] == ["Spacer", "Spacer"]
    tabs.active = 0
    assert tabs.objects[0] is contents[0] and isinstance(root.tabs[1].child, Spacer)


def test_an_active_tab_that_is_not_there_is_an_error():
    with pytest.raises(ValueError, match="active=3 is not the index of one of the 3 tabs"):
        lazy_tabs(*((f"T{i}", pn.Spacer()) for i in range(3)), active=3)


class _State(param.Parameterized):
    mask_ratio = param.Number(default=0.75, bounds=(0.0, 0.95))
    strategy = param.Selector(default="random", objects=["random", "tube"])


def test_the_url_shows_every_key_of_the_state_and_follows_it():
    from panel.io.location import Location

    state, location = _State(), Location(search="?ratio=2&strategy=tube&foo=1")  # as the link had it
    state.strategy = "tube"  # what the state took from the link (Explorer.apply_query)
    keep_url_in_step(location, state, {"mask_ratio": "ratio", "strategy": "strategy"})  # no server: at once
    assert location.search == "?ratio=0.75&strategy=tube"  # the refused ratio and the unknown key are gone
    assert state.mask_ratio == 0.75
    state.mask_ratio = 0.9
    assert location.query_params == {"ratio": 0.9, "strategy": "tube"}


def test_without_a_location_the_url_is_left_alone():
    keep_url_in_step(None, _State(), {"mask_ratio": "ratio"})
