"""The app's panes: tabs built when first opened (``lazy_tabs``)."""

import pytest

pn = pytest.importorskip("panel")
from bokeh.models import Spacer  # noqa: E402

from s2lab.explorer.panes import lazy_tabs  # noqa: E402


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
