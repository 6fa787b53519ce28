"""The reconstruct view: S2MAE and SatMAE on a source's crop, computed from its inputs and shared by the sessions.

``reconstruction_view(source, bands, strategy, seed, mask_ratio)`` is a function of its inputs alone, so every
session asking for the same inputs gets the same ``ReconstructionView`` from ``VIEWS`` (``s2lab.explorer.shared``).
Once a view is shown, the other positions of the mask-ratio slider for the same source, composite, strategy and
seed are computed on the background thread, nearest first (``prefill``): after the first seconds on a crop, a
slider step is a look-up and the PNGs are already encoded. ``warm_default`` does that for the view every session
opens on, when the server starts.

What a crop needs whatever the slider says (its windows for each model, the error colour scale, the stretch limits
of a composite) is computed once per source (``crop_data``, ``crop_limits``).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch

from s2lab import viz
from s2lab.data.tiles import tile, untile
from s2lab.explorer.models import model
from s2lab.explorer.pairs import run_later
from s2lab.explorer.shared import SharedViews, encoded, freeze
from s2lab.explorer.sources import BANDS, Source, embedded_source
from s2lab.explorer.views import ReconstructionView
from s2lab.reconstruct import reconstruct_tiles

ROLES = ("s2mae", "satmae")  # the models the view compares
RATIO_STEP = 0.05  # the mask-ratio slider's step
MAX_RATIO = 0.95  # the slider's last position
RATIOS = tuple(round(i * RATIO_STEP, 2) for i in range(round(MAX_RATIO / RATIO_STEP) + 1))  # 0.0 ... 0.95
MAX_VIEWS = 400  # reconstruct views kept per process (about 0.5 MB each with their PNGs: 20 seeds' slider walks)
ERROR_CMAP = "magma"  # colour map of the error pictures
DEFAULT = {"bands": viz.COMPOSITES["true colour"], "strategy": "random", "seed": 0}  # the view a session opens on

VIEWS = SharedViews(MAX_VIEWS, run_later)


@dataclass(frozen=True, eq=False)
class CropData:
    """What the reconstruct view needs of a source's crop, whatever the slider says."""

    tiles: dict[str, tuple[torch.Tensor, torch.Tensor]]  # role -> (B, C, w, w) windows of its img_size, (B, 2) origins
    error_max: float  # reflectance RMSE at the top of the error colour map: the band-mean guess's 98th percentile


CROPS = SharedViews(32, run_later)  # source key -> CropData
LIMITS = SharedViews(128, run_later)  # (source key, bands) -> stretch limits


def crop_data(source: Source) -> CropData:
    """The source crop's windows and error scale, computed once per source."""
    def compute() -> CropData:
        crop = source.crop  # (C, S, S)
        tiles = {role: tile(crop, model(role)[0].config.img_size) for role in ROLES}  # each model's training size
        mean = crop.mean(dim=(1, 2), keepdim=True).expand_as(crop)
        return CropData(tiles=tiles, error_max=float(np.percentile(viz.error_map(mean, crop), 98)))

    return CROPS.get(source.key, compute)


def crop_limits(source: Source, bands) -> np.ndarray:
    """(2, 3) stretch limits of the crop's composite ``bands``, computed once per source and band triple."""
    def compute() -> np.ndarray:
        limits = viz.stretch_limits(viz.composite_bands(source.crop, tuple(bands), BANDS))
        freeze(limits)
        return limits

    return LIMITS.get((source.key, tuple(bands)), compute)


def picture(image, bands: tuple[str, str, str], limits: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 composite of a (C, H, W) image of ``BANDS``."""
    return viz.to_uint8(viz.composite(image, bands, bands=BANDS, limits=limits))


def _key(source: Source, bands, strategy: str, seed: int, ratio: float) -> tuple:
    return (source.key, tuple(bands), strategy, int(seed), round(float(ratio), 4))


def _compute(source: Source, bands: tuple[str, str, str], strategy: str, seed: int, ratio: float) -> ReconstructionView:
    start = time.perf_counter()
    crop, data, limits = source.crop, crop_data(source), crop_limits(source, bands)
    idx = [BANDS.index(b) for b in bands]
    original = picture(crop, bands, limits)
    pictures, scores, removed = {"original": original}, {}, {}
    for role in ROLES:
        windows, origins = data.tiles[role]
        with torch.inference_mode():
            out = reconstruct_tiles(model(role)[0], windows, mask_ratio=ratio, strategy=strategy, seed=seed,
                                    baselines=False)
        pasted = untile(out["pasted"], origins, crop.shape)  # (C, S, S)
        mask = untile(out["mask"], origins, crop.shape)  # (C, S, S), 1 = removed
        pictures[f"masked {role}"] = viz.to_uint8(viz.masked_rgb(original / 255.0, mask[idx]))
        pictures[role] = picture(pasted, bands, limits)
        pictures[f"error {role}"] = viz.colorize(viz.error_map(pasted, crop), data.error_max, ERROR_CMAP)
        scores[role] = out["scores"]["model"]
        removed[role] = float(mask.mean())
    freeze(*pictures.values())
    return ReconstructionView(pictures=pictures, scores=scores, removed=removed, mask_ratio=float(ratio),
                              strategy=strategy, seed=int(seed), error_max=data.error_max,
                              seconds=time.perf_counter() - start)


def _computed(source: Source, key: tuple) -> ReconstructionView:
    _, bands, strategy, seed, ratio = key
    view = _compute(source, bands, strategy, seed, ratio)
    for p in view.pictures.values():
        encoded(p)  # encoded here, once, not when a session first shows it
    return view


_prefill_lock = threading.Lock()
_prefilling: dict[tuple, Future] = {}  # (source key, bands, strategy, seed) -> its slider walk computing


def prefill(source: Source, bands, strategy: str, seed: int, near: float = 0.75) -> Future | None:
    """Compute the view at every slider position for these inputs on the background thread, nearest ``near`` first.

    Returns:
        The job's future (the job already running for these inputs, if one is), or None when every position is
        stored.
    """
    family = (source.key, tuple(bands), strategy, int(seed))
    keys = [_key(source, bands, strategy, seed, r) for r in sorted(RATIOS, key=lambda r: (abs(r - near), r))]
    if all(k in VIEWS for k in keys):
        return None
    with _prefill_lock:
        running = _prefilling.get(family)
        if running is not None and not running.done():
            return running
        job = _prefilling[family] = VIEWS.prefill(keys, lambda key: _computed(source, key))
    return job


def reconstruction_view(source: Source, bands, strategy: str, seed: int, mask_ratio: float, *,
                        prefetch: bool = True) -> ReconstructionView:
    """S2MAE's and SatMAE's reconstructions of the source's crop at these inputs (shared; see the module docstring).

    Args:
        source: the image shown.
        bands: the (red, green, blue) band names of the pictures.
        strategy: a key of ``s2lab.masking.STRATEGIES``.
        seed: seed of the mask.
        mask_ratio: share of tokens removed.
        prefetch: then compute the other slider positions on the background thread.
    """
    key = _key(source, bands, strategy, seed, mask_ratio)
    view = VIEWS.get(key, lambda: _computed(source, key))
    if prefetch:
        prefill(source, bands, strategy, seed, near=float(mask_ratio))
    return view


def warm_default(ratio: float = 0.75) -> Future | None:
    """Start computing, on the background thread, the view every session opens on at every slider position."""
    return prefill(embedded_source(), DEFAULT["bands"], DEFAULT["strategy"], DEFAULT["seed"], near=ratio)
