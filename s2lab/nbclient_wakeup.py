"""Cells after an ipywidgets ``Output`` run at once under nbclient: the wait for a cell's reply, in short slices.

Why. nbclient (which MyST-NB, jupyter-cache and nbmake run notebooks with) waits for a cell's ``execute_reply`` with
one ``await kc.shell_channel.get_msg(timeout=<the cell's timeout>)`` on the kernel client's zmq.asyncio shell socket.
While the cell runs, nbclient plays the front end's part for each ``Output`` widget the cell writes into: it sends the
widget's new state back to the kernel as a ``comm_msg`` on that same socket, through a blocking shadow of it
(jupyter_client's ``Session.send``). A ZMQ socket tells the event loop it has something through an edge-triggered
file descriptor; that blocking send takes in the socket's pending events, the reply's arrival among them, and the
asyncio socket is not told, so the waiting poll is not woken. The reply is read only when the poll times out: the
whole per-cell timeout later, with the kernel idle meanwhile (upstream: jupyter/nbclient#312, not fixed in nbclient
0.11). It happens now and then, whenever the reply lands before the widget's last update is sent.

Fix. ``install()`` makes every ``NotebookClient`` wait on its shell channel in slices of ``STEP`` seconds: a slice
that ends without a wake-up polls the socket itself, so a reply that arrived unannounced is read within one slice.
The caller's timeout is kept: ``Empty`` is raised only once its whole timeout has passed. Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from queue import Empty
from time import monotonic
from typing import Any

STEP = 0.1  # seconds: the longest a cell's reply can wait unread; a slice that ends costs one zmq poll


def in_slices(get_msg: Callable[..., Awaitable[Any]], step: float = STEP) -> Callable[..., Awaitable[Any]]:
    """``get_msg(timeout=...)`` of an async channel, awaited in slices of at most ``step`` seconds.

    Args:
        get_msg: a coroutine function ``get_msg(timeout=None)`` that returns a message or raises ``queue.Empty``
            when ``timeout`` seconds pass without one (``None``: no limit).
        step: the longest slice, in seconds (> 0).

    Returns:
        A coroutine function with the same signature and the same overall timeout.

    Raises:
        ValueError: ``step`` is not a positive number of seconds.
    """
    if not step > 0:
        raise ValueError(f"step must be a positive number of seconds, got {step!r}")

    async def get_msg_in_slices(timeout: float | None = None) -> Any:
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            left = step if deadline is None else max(0.0, deadline - monotonic())
            try:
                return await get_msg(timeout=min(step, left))
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise

    get_msg_in_slices.in_slices = True
    return get_msg_in_slices


def install(step: float = STEP) -> None:
    """Make every ``nbclient.NotebookClient`` started from now on wait for its shell replies in slices (see above).

    Safe to call more than once; only the kernel clients that nbclient starts itself are changed.
    """
    from nbclient import NotebookClient
    from nbclient.util import run_sync

    original = NotebookClient.async_start_new_kernel_client
    if getattr(original, "in_slices", False):
        return

    async def async_start_new_kernel_client(self):
        kc = await original(self)
        channel = kc.shell_channel
        if not getattr(channel.get_msg, "in_slices", False):
            channel.get_msg = in_slices(channel.get_msg, step)
        return kc

    async_start_new_kernel_client.in_slices = True
    async_start_new_kernel_client.__doc__ = original.__doc__
    NotebookClient.async_start_new_kernel_client = async_start_new_kernel_client
    NotebookClient.start_new_kernel_client = run_sync(async_start_new_kernel_client)  # setup_kernel's
