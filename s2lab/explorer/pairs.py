"""The explorer's change pairs: a ``ChangePair`` (before, after, label) and the shipped change model's probability map.

The default pair is a held-out OSCD city where OSCD is found, else changes planted on the embedded scene; it is
computed once per process, on a background thread, since a whole OSCD city takes seconds, and shared read-only.
An upload's pair is planted on the upload, computed on the same thread, and belongs to its session.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from s2lab.change import detect_change
from s2lab.data.oscd import load_oscd_city, oscd_cities
from s2lab.data.pairs import ChangePair
from s2lab.data.synthetic import plant_changes, scene_radiometry
from s2lab.explorer.models import device, model
from s2lab.explorer.sources import BANDS, Source, embedded_source
from s2lab.settings import data_dir

CHANGE_SIDE = 256  # side of a synthetic change pair cut from the scene or an upload
EMBEDDED_CHANGE = (1088, 496)  # (row, col) of the synthetic change pair's corner in the embedded scene


@dataclass(frozen=True, eq=False)
class ScoredPair:
    """A change pair and the shipped change model's probability map on it."""

    pair: ChangePair  # before, after (C, H, W), label (H, W) 1 = change, name, synthetic, description
    probability: np.ndarray  # (H, W) float32 in [0, 1], from ``s2lab.change.detect_change``
    seconds: float  # time the probability map took


def _scored(pair: ChangePair) -> ScoredPair:
    detector, info = model("change")
    with torch.inference_mode():  # the model's own default: alone or blended with CVA, as its training cities chose
        result = detect_change(detector, info.get("meta") or {}, pair.before, pair.after, device=device())
    return ScoredPair(pair, np.asarray(result.probability.values, dtype=np.float32), result.seconds)


def _planted_pair(image: xr.DataArray, origin: tuple[int, int], name: str, reference=None) -> ScoredPair:
    row, col = origin
    side = min(CHANGE_SIDE, image.sizes["y"] - row, image.sizes["x"] - col)
    crop = image.isel(y=slice(row, row + side), x=slice(col, col + side))
    crop = crop.fillna(crop.median(dim=("y", "x")))
    pair = plant_changes(crop, rng=np.random.default_rng(0), reference=reference)
    return _scored(dataclasses.replace(pair, name=f"SYNTHETIC: planted changes on {name}"))


def _held_out_cities() -> list[str]:
    """The OSCD cities the shipped change model was evaluated on, never trained on (its checkpoint says which)."""
    return (model("change")[1].get("meta") or {}).get("eval_cities", [])


def _oscd_city() -> str | None:
    """The OSCD city the change view shows: the change model's first held-out city present, else any city."""
    if data_dir("oscd") is None:
        return None
    try:
        present = oscd_cities(labelled=True)
    except FileNotFoundError:
        return None
    held_out = _held_out_cities()
    return next((c for c in held_out if c in present), present[0] if present else None)


@functools.lru_cache(maxsize=1)
def default_change_pair() -> ScoredPair:
    """A held-out OSCD city where ``data_dir("oscd")`` finds OSCD, else changes planted on the embedded scene.

    Computed once per process (a whole city takes seconds); later calls return the same pair.
    """
    city = _oscd_city()
    if city is not None:
        pair = load_oscd_city(city, bands=BANDS)
        held = city in _held_out_cities()
        return _scored(dataclasses.replace(pair, name=f"{pair.name}{' (held out)' if held else ' (seen in training)'}"))
    scene = embedded_source().image
    return _planted_pair(scene, EMBEDDED_CHANGE, "the embedded scene (held-out half)", scene_radiometry(scene))


_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2lab-explorer")  # long computations, in turn


def run_later(fn, *args) -> Future:
    """Run ``fn(*args)`` on the explorer's background thread, after what is queued there already."""
    return _executor.submit(fn, *args)


_default_future: Future | None = None
_default_lock = threading.Lock()


def default_change_future() -> Future:
    """``default_change_pair`` computing on a background thread (started by the first call)."""
    global _default_future
    with _default_lock:
        if _default_future is None:
            _default_future = _executor.submit(default_change_pair)
        return _default_future


def change_future(source: Source) -> Future:
    """A source's change pair computing on the background thread: the default pair for the embedded scene, else
    changes planted on the ``CHANGE_SIDE`` px around the source's crop (a new computation at every call)."""
    if source.key == "embedded":
        return default_change_future()
    image, (row, col), side = source.image, source.crop_origin, source.crop.shape[-1]
    corner = (max(0, row + side // 2 - CHANGE_SIDE // 2), max(0, col + side // 2 - CHANGE_SIDE // 2))
    return _executor.submit(_planted_pair, image, corner, source.name)
