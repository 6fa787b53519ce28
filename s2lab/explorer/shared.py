"""What the explorer's sessions share: views computed once per process, keyed by their inputs, and their PNGs.

A view (the seven pictures and scores of one reconstruction, one cut of the change map) depends only on its
inputs: the source, the composite, the strategy, seed and mask ratio, the threshold. A class that opens the app
asks for the same views again and again (every session starts on the same defaults), and a slider walks a few
dozen positions, so the views live here, once per process, and a slider step is mostly a look-up:

    SharedViews.get(key, compute)     the view for ``key``; computed in the caller's thread when missing, or
                                      waited for when another thread is computing it already (never twice)
    SharedViews.prefill(keys, ...)    compute views ahead of need on the background thread (``run_later``): the
                                      other positions of the slider on screen, nearest first
    encoded(picture, format)          PNG (or JPEG) bytes of a read-only picture, encoded once however many
                                      sessions show it

Views are frozen and their pictures read-only (``freeze``), so sharing them between sessions and threads is safe.
The cache holds at most ``maxsize`` views and forgets the least recently used first.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future

import numpy as np

from s2lab.viz import jpeg, png

ENCODERS = {"png": png, "jpeg": jpeg}  # picture formats: lossless, and compact for photographs shown as they are


class SharedViews:
    """A bounded, thread-safe, least-recently-used store of views by key, each computed once.

    Args:
        maxsize: views kept; the least recently used goes first.
        run_later: ``submit(fn, *args) -> Future`` of the thread that prefills (a one-worker executor).
    """

    def __init__(self, maxsize: int, run_later: Callable[..., Future]):
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._run_later = run_later
        self._views: OrderedDict[Hashable, object] = OrderedDict()
        self._computing: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0  # look-ups served from the store, and computed (or waited for)

    def __len__(self) -> int:
        return len(self._views)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._views

    def get(self, key: Hashable, compute: Callable[[], object]) -> object:
        """The view for ``key``: stored, or being computed by another thread (waited for), or computed here."""
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
                self.hits += 1
                return self._views[key]
            self.misses += 1
            future = self._computing.get(key)
            mine = future is None
            if mine:
                future = self._computing[key] = Future()
        if not mine:
            return future.result()
        try:
            view = compute()
        except BaseException as err:
            with self._lock:
                del self._computing[key]
            future.set_exception(err)
            raise
        with self._lock:
            self._views[key] = view
            while len(self._views) > self.maxsize:
                self._views.popitem(last=False)
            del self._computing[key]
        future.set_result(view)
        return view

    def prefill(self, keys: Iterable[Hashable], compute: Callable[[Hashable], object]) -> Future:
        """Compute on the background thread, in order, the views of ``keys`` not stored yet (``compute(key)``).

        Returns:
            The background job's future (its result: how many views it computed).
        """
        keys = list(keys)

        def fill() -> int:
            computed = 0
            for key in keys:
                if key not in self._views and key not in self._computing:
                    self.get(key, lambda key=key: compute(key))
                    computed += 1
            return computed

        return self._run_later(fill)


def freeze(*pictures: np.ndarray) -> None:
    """Make pictures read-only, so they can be shared and their PNGs kept (``encoded``)."""
    for picture in pictures:
        picture.flags.writeable = False


_encoded: dict[tuple[int, str], tuple[weakref.ref, bytes]] = {}  # (id, format) of a read-only picture -> it, bytes
_encoded_lock = threading.Lock()


def encoded(picture: np.ndarray, format: str = "png") -> bytes:
    """PNG (or JPEG) bytes of an (H, W, 3) uint8 picture; a read-only one is encoded once, as long as it lives."""
    encode = ENCODERS[format]
    if picture.flags.writeable:
        return encode(picture)
    key = (id(picture), format)
    with _encoded_lock:
        held = _encoded.get(key)
    if held is not None and held[0]() is picture:
        return held[1]
    data = encode(picture)

    def forget(_ref, key=key) -> None:
        with _encoded_lock:
            _encoded.pop(key, None)

    with _encoded_lock:
        _encoded[key] = (weakref.ref(picture, forget), data)
    return data
