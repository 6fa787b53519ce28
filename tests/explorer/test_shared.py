"""What the explorer's sessions share: views computed once, bounded, and PNGs encoded once."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from s2lab.explorer.shared import SharedViews, encoded, freeze
from s2lab.viz import png


@pytest.fixture
def background():
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor.submit


def test_a_view_is_computed_once_however_many_threads_ask_at_once(background):
    views, calls = SharedViews(4, background), []

    def compute():
        calls.append(threading.get_ident())
        time.sleep(0.2)  # long enough for every thread to ask while it computes
        return object()

    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda _: views.get("k", compute), range(6)))
    assert len(calls) == 1
    assert all(g is got[0] for g in got)
    assert views.get("k", compute) is got[0] and views.hits >= 1


def test_the_least_recently_used_view_goes_first(background):
    views = SharedViews(2, background)
    for key in "ab":
        views.get(key, lambda key=key: key.upper())
    views.get("a", lambda: "never")  # "a" is now the most recent
    views.get("c", lambda: "C")
    assert "a" in views and "c" in views and "b" not in views and len(views) == 2


def test_a_failed_computation_is_not_stored_and_raises_for_every_waiter(background):
    views = SharedViews(2, background)

    def fail():
        time.sleep(0.1)
        raise ValueError("no such crop")

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(views.get, "k", fail) for _ in range(3)]
        for f in futures:
            with pytest.raises(ValueError, match="no such crop"):
                f.result()
    assert "k" not in views
    assert views.get("k", lambda: 1) == 1  # asked again, computed again


def test_prefill_computes_the_missing_views_in_order_on_the_background_thread(background):
    views, order = SharedViews(8, background), []
    views.get(2, lambda: "two")

    def compute(key):
        order.append((key, threading.current_thread().name))
        return key * 10

    assert views.prefill([3, 2, 1], compute).result(timeout=10) == 2
    assert [k for k, _ in order] == [3, 1]  # 2 was stored already
    assert all(name != threading.current_thread().name for _, name in order)
    assert views.get(1, lambda: "never") == 10


def test_maxsize_below_one_is_refused(background):
    with pytest.raises(ValueError, match="maxsize must be at least 1, got 0"):
        SharedViews(0, background)


def test_a_read_only_picture_is_encoded_once_a_writable_one_every_time():
    picture = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    assert encoded(picture) == png(picture) and encoded(picture) is not encoded(picture)  # writable: anew
    freeze(picture)
    first = encoded(picture)
    assert first == png(picture) and encoded(picture) is first
    other = picture.copy()
    other[0, 0] = 255 - other[0, 0]
    freeze(other)
    assert encoded(other) != first  # another picture, its own PNG


def test_a_photograph_can_be_encoded_as_jpeg_once():
    from s2lab.viz import jpeg

    picture = np.random.default_rng(1).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    freeze(picture)
    data = encoded(picture, "jpeg")
    assert data.startswith(b"\xff\xd8") and data == jpeg(picture) and encoded(picture, "jpeg") is data
    assert encoded(picture, "png").startswith(b"\x89PNG")  # the other format, its own bytes
    with pytest.raises(KeyError):
        encoded(picture, "gif")
