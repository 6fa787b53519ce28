"""Panel panes that draw the explorer's outputs: what ``apps/explorer.py`` shows, and what the latency bench times.

``Drawn(state, output)`` makes the panes of one output parameter of an ``Explorer`` (its pictures as PNG panes, its
tables as Markdown) and redraws them together whenever the output changes, under ``pn.io.hold``: what one slider
step changes (seven pictures and a table) reaches the browser as one websocket message, not one per pane. PNGs
come from ``s2lab.explorer.shared.encoded``, encoded once per picture however many sessions show it. ``lazy_tabs``
builds a tab when it is first opened. ``keep_url_in_step`` writes the state into the page's URL query.

Only the app and the bench import this module (it needs panel); the rest of the package does not.
"""

from __future__ import annotations

from collections.abc import Callable

import panel as pn
import param

from s2lab.explorer.shared import encoded
from s2lab.explorer.state import Explorer

PICTURE = 256  # display side of each crop picture, px (the crop's pixels drawn as squares)
PIXELATED = [":host img { image-rendering: pixelated; }"]  # show pixels as squares, not blurred


class Drawn:
    """The panes that draw ``state.<output>``, all redrawn in one hold when it changes.

    Args:
        state: the session's ``Explorer``.
        output: the name of one of its output parameters ("tokens", "reconstructed", "changed").
    """

    def __init__(self, state: Explorer, output: str):
        if output not in state.param or state.param[output].precedence != -1:
            raise ValueError(f"{output!r} is not an output parameter of Explorer")
        self.state, self.output = state, output
        self.draws: list[tuple[pn.pane.PaneBase, Callable]] = []
        state.param.watch(self.redraw, output)

    def picture(self, name: str, width: int = PICTURE, photo: bool = False) -> pn.pane.Image:
        """A pane of ``output.pictures[name]`` (empty while the output is None), CSS class ``picture-<name>``.

        Args:
            name: the picture's key in the output's ``pictures``.
            width: the pane's side in pixels.
            photo: a JPEG shown smoothly (pictures larger than their pane: a fifth of the bytes), not a PNG shown
                with its pixels as squares.
        """
        kind, style = (pn.pane.JPG, []) if photo else (pn.pane.PNG, PIXELATED)
        pane = kind(None, width=width, height=width, stylesheets=style,
                    css_classes=[f"picture-{name.replace(' ', '-')}"], margin=(2, 4))
        format = "jpeg" if photo else "png"
        return self._add(pane, lambda view: encoded(view.pictures[name], format) if view is not None else None)

    def markdown(self, text: Callable, **params) -> pn.pane.Markdown:
        """A Markdown pane of ``text(output)``."""
        return self._add(pn.pane.Markdown("", **params), text)

    def _add(self, pane, draw: Callable):
        self.draws.append((pane, draw))
        pane.object = draw(getattr(self.state, self.output))
        return pane

    def redraw(self, *_) -> None:
        """Draw every pane from the output as it is now, in one hold."""
        view = getattr(self.state, self.output)
        with pn.io.hold():
            for pane, draw in self.draws:
                pane.object = draw(view)


def immediate(widget: pn.widgets.Widget) -> pn.widgets.Widget:
    """The widget, its changes from the browser processed at once.

    Panel holds a change from the browser for 50 ms (``Syncable._debounce``), to batch the changes that follow it
    into one update: half of the 100 ms a slider step has from key press to picture. A step here is a look-up
    of shared views, so there is nothing worth batching.
    """
    widget._debounce = 0
    return widget


def lazy_tabs(*tabs: tuple[str, pn.viewable.Viewable], active: int = 0, **params) -> pn.Tabs:
    """Tabs whose page starts with the active tab's content only: each other tab is built when first opened, then
    kept (switching back is the browser's alone).

    A session's page then costs the server one tab, not all of them: thirty pages opening at once share two cores
    in seconds (``bench/app_load.py``). Panel's ``Tabs(dynamic=True)`` also builds a tab when opened, but takes it
    out of the page when left and sends it whole again on every return.

    Args:
        tabs: (title, content) pairs.
        active: the index of the tab the page opens on (a link's ``?tab=``), built at once.
        params: more ``pn.Tabs`` parameters (``css_classes``, ...).
    """
    if not tabs:
        raise ValueError("lazy_tabs needs at least one (title, content) tab")
    if not 0 <= active < len(tabs):
        raise ValueError(f"active={active} is not the index of one of the {len(tabs)} tabs")
    layout = pn.Tabs(*((title, content if i == active else pn.Spacer()) for i, (title, content) in enumerate(tabs)),
                     active=active, **params)

    def build(event) -> None:
        title, content = tabs[event.new]
        if layout.objects[event.new] is not content:
            layout[event.new] = (title, content)

    layout.param.watch(build, "active")
    return layout


def keep_url_in_step(location: pn.io.location.Location | None, state: param.Parameterized,
                     keys: dict[str, str]) -> None:
    """Write ``state`` into the page's URL query, every key of ``keys`` (parameter -> query key), and keep it in
    step as the parameters change, from when the page has loaded.

    The state is to have taken the link's own query first (``Explorer.apply_query``). Panel's ``location.sync``
    would read the query too, but sets every key in one ``param.update``, so one refused value drops them all; and
    as the page loads, the browser sends its address back to the server, so a query rewritten before then comes
    back as the link had it and is read again. Hence the sync starts once the page has loaded
    (``pn.state.onload``), from an empty query: it reads nothing, and writes every key.

    Args:
        location: the session's ``pn.state.location``; None (no server) does nothing.
        state: the ``Explorer``.
        keys: parameter name -> query key (``s2lab.explorer.presets.QUERY``).
    """
    if location is None:
        return

    def start() -> None:
        with pn.io.hold():  # one new address for the browser, not two
            location.search = ""
            location.sync(state, dict(keys))

    pn.state.onload(start)
