"""A simulated browser session of the explorer: bokeh's websocket protocol spoken from Python, nothing rendered.

What a browser does on the network, and only that: it loads the app's page (the server builds the session's
document then), opens the websocket with the page's session token, pulls the document, says the document is
ready (bokeh's ``document_ready`` event, after which Panel sends a view's changes together), opens a tab as a click
does (the tabs' ``active``; the app builds a tab when first opened, and its models arrive in a PATCH-DOC), and
then sends the slider changes a key press sends (the slider's ``value`` and ``value_throttled``) as PATCH-DOC
messages and reads the server's PATCH-DOC messages until the new picture and scores have arrived. A class's
browsers run on the students' own machines; these sessions load the server as they would, without thirty renderers on the server's cores.

Shared by ``bench/app_load.py --driver protocol`` and the load test. Messages follow bokeh's protocol (header,
metadata and content as text frames, then each buffer as a header and a binary frame).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
import urllib.request
from collections.abc import Iterator

from tornado.websocket import websocket_connect

TOKEN = re.compile(r'"token":\s*"([^"]+)"')
_ids = itertools.count()


def _objects(value) -> Iterator[dict]:
    """Every serialized bokeh model in a document's JSON (nested ``{"type": "object", "id", "attributes"}``)."""
    if isinstance(value, dict):
        if value.get("type") == "object" and "id" in value:
            yield value
        for v in value.values():
            yield from _objects(v)
    elif isinstance(value, list):
        for v in value:
            yield from _objects(v)


class ProtocolSession:
    """One simulated browser session of a bokeh (Panel) app at ``url``.

    After ``open()``: ``models`` maps a CSS class to the ids of the models that carry it, ``texts`` holds the
    latest ``text`` of each model seen (HTML, unescaped), ``tabs`` the titles of the tabs, ``open_s`` the seconds
    the page and document took. Models that arrive later (a tab opened) are added as they come.
    """

    def __init__(self, url: str):
        self.url = url
        self.models: dict[str, list[str]] = {}
        self.texts: dict[str, str] = {}
        self.values: dict[str, float] = {}
        self.tabs: tuple[str, list[str]] | None = None  # (id of the tabs model, their titles)
        self.open_s: float | None = None
        self._conn = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task | None = None

    async def open(self, timeout_s: float) -> None:
        """Load the page, connect, pull the document, and start reading the server's messages."""
        start = time.perf_counter()
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(self.url, timeout=timeout_s).read().decode())
        token = TOKEN.search(page)
        if token is None:
            raise RuntimeError(f"no session token in the page at {self.url}")
        ws = re.sub(r"^http", "ws", self.url.split("?")[0]).replace("//localhost:", "//127.0.0.1:") + "/ws"
        self._conn = await asyncio.wait_for(
            websocket_connect(ws, subprotocols=["bokeh", token.group(1)], max_message_size=256 * 2**20), timeout_s)
        self._conn.protocol.set_nodelay(True)  # as browsers do: small frames go out at once (no Nagle delay)
        header, _, _ = await self._receive()
        if header["msgtype"] != "ACK":
            raise RuntimeError(f"expected ACK, got {header['msgtype']}")
        await self._send("PULL-DOC-REQ", {})
        while True:
            header, _, content = await asyncio.wait_for(self._receive(), timeout_s)
            if header["msgtype"] == "PULL-DOC-REPLY":
                break
        self._register(content["doc"])
        ready = {"type": "event", "name": "document_ready", "values": {"type": "map", "entries": []}}
        await self._send("PATCH-DOC", {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": ready}]})
        self.open_s = time.perf_counter() - start
        self._reader = asyncio.create_task(self._read())

    def _register(self, value) -> None:
        """Note the models serialized in ``value`` (a document, or a patch's events): CSS classes, texts, values."""
        for model in _objects(value):
            attributes = model.get("attributes", {})
            for css in attributes.get("css_classes", []):
                if model["id"] not in self.models.setdefault(css, []):
                    self.models[css].append(model["id"])
            if isinstance(attributes.get("text"), str):
                self.texts[model["id"]] = html.unescape(attributes["text"])
            if isinstance(attributes.get("value"), (int, float)):
                self.values[model["id"]] = float(attributes["value"])
            panels = attributes.get("tabs")
            if "tabs" in attributes.get("css_classes", []) and isinstance(panels, list):
                titles = [p.get("attributes", {}).get("title") for p in panels]
                if all(isinstance(t, str) for t in titles):
                    self.tabs = (model["id"], titles)

    def model(self, css: str) -> str:
        """The id of the (first) model with CSS class ``css``."""
        if css not in self.models:
            raise KeyError(f"no model with CSS class {css!r} in the document")
        return self.models[css][0]

    async def open_tab(self, title: str, css: str, contains: str, timeout_s: float) -> float:
        """Open the tab ``title`` as a click does and wait until the model with CSS class ``css`` (in that tab) is
        there (the app builds a tab when first opened) and shows ``contains``; return the seconds that took.
        ``asyncio.TimeoutError`` after ``timeout_s``."""
        if self.tabs is None or title not in self.tabs[1]:
            raise KeyError(f"no tab {title!r} in the document (tabs: {self.tabs and self.tabs[1]})")
        start = time.perf_counter()
        event = {"kind": "ModelChanged", "model": {"id": self.tabs[0]}, "attr": "active",
                 "new": self.tabs[1].index(title)}
        await self._send("PATCH-DOC", {"events": [event]})
        await self.wait_text(css, contains, timeout_s)
        return time.perf_counter() - start

    async def _until(self, done, what: str, timeout_s: float) -> None:
        """Wait until ``done()`` after a message has been read; ``asyncio.TimeoutError`` after ``timeout_s``."""
        deadline = time.perf_counter() + timeout_s
        while not done():
            self._changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise asyncio.TimeoutError(f"{what} did not arrive within {timeout_s:.0f} s")
            await asyncio.wait_for(self._changed.wait(), left)

    async def set_value(self, css: str, value: float) -> None:
        """What a key press on a slider sends: its ``value`` and ``value_throttled``."""
        ref = {"id": self.model(css)}
        self.values[ref["id"]] = value
        events = [{"kind": "ModelChanged", "model": ref, "attr": attr, "new": value}
                  for attr in ("value", "value_throttled")]
        await self._send("PATCH-DOC", {"events": events})

    async def wait_text(self, css: str, contains: str, timeout_s: float, changed_from: str | None = None) -> str:
        """Wait until the text of the model with CSS class ``css`` contains ``contains`` (and differs from
        ``changed_from``); return it. ``asyncio.TimeoutError`` after ``timeout_s``. The model may arrive meanwhile
        (a tab opened)."""

        def done() -> bool:
            if css not in self.models:
                return False
            text = self.texts.get(self.model(css), "")
            return contains in text and (changed_from is None or text != changed_from)

        await self._until(done, f"{css} showing {contains!r}", timeout_s)
        return self.texts[self.model(css)]

    def text(self, css: str) -> str:
        return self.texts.get(self.model(css), "")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._conn is not None:
            self._conn.close()

    # -- the wire --------------------------------------------------------------------------------------------------
    async def _send(self, msgtype: str, content: dict) -> None:
        header = {"msgid": str(next(_ids)), "msgtype": msgtype}
        for part in (header, {}, content):
            await self._conn.write_message(json.dumps(part))

    async def _frame(self):
        frame = await self._conn.read_message()
        if frame is None:
            raise ConnectionError("the server closed the websocket")
        return frame

    async def _receive(self) -> tuple[dict, dict, dict]:
        header = json.loads(await self._frame())
        metadata = json.loads(await self._frame())
        content = json.loads(await self._frame())
        for _ in range(header.get("num_buffers", 0)):
            await self._frame()  # the buffer's header
            await self._frame()  # its bytes
        return header, metadata, content

    async def _read(self) -> None:
        while True:
            header, _, content = await self._receive()
            if header["msgtype"] != "PATCH-DOC":
                continue
            self._register(content.get("events", []))  # the models of a tab opened
            for event in content.get("events", []):
                ident = event.get("model", {}).get("id")
                if event.get("kind") == "ModelChanged" and event.get("attr") == "text" and isinstance(
                        event.get("new"), str):
                    self.texts[ident] = html.unescape(event["new"])
                elif event.get("kind") == "ModelChanged" and event.get("attr") == "value":
                    self.values[ident] = event["new"]
            self._changed.set()


# -- many sessions at once -----------------------------------------------------------------------------------------
# slider -> (CSS class of the slider, its range walked, step, the picture that must change, the scores, the text
# that shows value v)
SLIDERS = {"ratio": ("mask-ratio", (0.05, 0.95), 0.05, "picture-s2mae", "recon-scores", "ratio {:.2f}"),
           "threshold": ("threshold", (0.2, 0.8), 0.01, None, "change-scores", "<td>{:.2f}</td>")}
# slider -> the text of its scores once its tab (``_app_server.TABS``) is drawn: the change map's table when computed
DRAWN = {"ratio": "ratio ", "threshold": "<td>"}


async def _open(url: str, session, timeout_s: float) -> ProtocolSession | None:
    """A session whose first tab is there (the scene and the pixel's spectrum), or None (the problem noted)."""
    client = ProtocolSession(url)
    start = time.perf_counter()
    try:
        await client.open(timeout_s)
        await client.wait_text("spectrum-angles", "<td>", timeout_s)
    except (OSError, RuntimeError, KeyError, asyncio.TimeoutError, ConnectionError) as err:
        session.problems.append(f"the page did not open: {type(err).__name__}: {err}")
        await client.close()
        return None
    session.open_s = time.perf_counter() - start
    return client


async def _move(client: ProtocolSession, slider: str, direction: int, session, t0: float, timeout_s: float) -> int:
    from _app_server import Update

    css, (lo, hi), step, picture, scores, shows = SLIDERS[slider]
    value = client.values[client.model(css)]
    if not lo - 1e-9 <= value + direction * step <= hi + 1e-9:
        direction = -direction
    value = round(value + direction * step, 2)
    old = None if picture is None else client.text(picture)
    start = time.perf_counter()
    update = Update(slider=slider, value=value, at_s=start - t0, ms=None)
    try:
        await client.set_value(css, value)
        await client.wait_text(scores, shows.format(value), timeout_s)
        if picture is not None:
            await client.wait_text(picture, "data:image/png", timeout_s, changed_from=old)
    except asyncio.TimeoutError:  # a failed update: its ms stays None
        pass
    except ConnectionError as err:
        session.problems.append(f"{slider} {value:.2f}: the connection closed: {err}")
    else:
        update.ms = (time.perf_counter() - start) * 1000
    session.updates.append(update)
    return direction


async def drive_protocol_sessions(url: str, *, sessions: int = 30, seconds: float = 60.0, think_s: float = 0.25,
                                  pattern: tuple[str, ...] = ("ratio", "ratio", "ratio", "threshold"),
                                  open_timeout_s: float = 120.0, timeout_s: float = 60.0) -> list:
    """``sessions`` simulated sessions (``ProtocolSession``) opened at once, then moving their sliders at once.

    The same walk as ``_app_server.drive_sessions`` (open the slider's tab when it is another, one step, wait until
    the picture and scores arrive, pause ``think_s``), timed from sending the change to receiving the last of them;
    each tab's first opening is timed until its scores arrive (``Session.tab_s``).

    Returns:
        One ``_app_server.Session`` per session.
    """
    from _app_server import TABS, Session

    found = [Session(index=i) for i in range(sessions)]
    clients = await asyncio.gather(*(_open(url, s, open_timeout_s) for s in found))

    async def work(client: ProtocolSession, session, t0: float) -> None:
        await asyncio.sleep(think_s * session.index / 10)  # the sessions do not start in step
        tab, turn, directions, opened = None, session.index, dict.fromkeys(SLIDERS, 1), set()
        while time.perf_counter() - t0 < seconds:
            slider = pattern[turn % len(pattern)]
            turn += 1
            if TABS[slider][0] != tab:
                tab = TABS[slider][0]
                try:
                    took = await client.open_tab(tab, SLIDERS[slider][4], DRAWN[slider], timeout_s)
                    if tab not in opened:  # a tab's first opening builds it; later ones are the browser's alone
                        session.tab_s.append(took)
                        opened.add(tab)
                except (asyncio.TimeoutError, KeyError, ConnectionError) as err:
                    session.problems.append(f"the tab {tab!r} did not open: {type(err).__name__}: {err}")
                    return
            directions[slider] = await _move(client, slider, directions[slider], session, t0, timeout_s)
            await asyncio.sleep(think_s)

    t0 = time.perf_counter()
    await asyncio.gather(*(work(c, s, t0) for c, s in zip(clients, found) if c is not None))
    await asyncio.gather(*(c.close() for c in clients if c is not None))
    return found
