"""Change maps of a whole before / after pair, window by window (the recipe: ``s2lab.windows``).

Scoring a map against a label is ``s2lab.evaluate``'s (``score_change``, ``best_threshold``).

The notebooks, the app and the ``s2lab`` command all come here to map change.

**Change** (``change_map``). Windows of both dates at the same places go through a ``ChangeDetector``; overlapping
windows are blended with weights that fall off linearly over the ``overlap`` pixels at each window's border, so no
seam shows. Season and radiometry differ between dates and look like change: ``normalize`` first maps every band of
AFTER onto BEFORE over the whole image (``s2lab.radiometry``, a relative radiometric normalisation that uses no
labels; a model should be trained with the same setting): ``"moments"`` linearly to BEFORE's mean and standard
deviation, ``"quantiles"`` monotonically onto BEFORE's histogram. A ``ChangeDetector`` scales every window of each
date with its encoder's input scaling: with per-window min-max scaling every per-band linear map cancels, so
``"moments"`` leaves its output unchanged and only the non-linear ``"quantiles"`` reaches it; with the default
fixed dataset statistics both reach it. ``change_map_cva`` is the model-free floor: change vector analysis (which
standardises each date's bands on its own, the same normalisation), thresholded by Otsu's method.

**Pairs larger than memory** (a full Sentinel-2 tile is 4.8 GB per date as float32): where the pair would not fit
the memory limit (``s2lab.data.memory``), both dates are read a band of rows at a time, and the whole-image
statistics (the normalisation, CVA's band means and deviations) are taken on strided samples of each date
(``s2lab.windows.image_rows``). Only (H, W) maps are held: the probability, CVA's magnitude, the blend.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr
from scipy.ndimage import gaussian_filter

from s2lab.cva import change_vector_analysis, otsu_threshold
from s2lab.data.raster import same_grid
from s2lab.data.tiles import TileSum
from s2lab.device import autocast, pick_device
from s2lab.models.heads import ChangeDetector
from s2lab.data.memory import memory_limit
from s2lab.radiometry import NORMALIZATIONS, check_normalize, fit_radiometry, match_radiometry
from s2lab.scaling import SCALE_EPS
from s2lab.windows import (IN_MEMORY_COPIES, Image, Rows, WindowPlan, as_raster, band_list, check_window,
                           image_rows, prepare)

MODEL_THRESHOLD = 0.5  # a ChangeDetector's default cut on the sigmoid probability
BLEND_ROWS = 512  # rows at a time of the CVA magnitude and of the blend of a pair too large for memory


@dataclass
class ChangeResult:
    """A change map: a probability per pixel and the threshold that makes it a binary map."""

    probability: xr.DataArray  # (y, x) float32 in [0, 1] on before's grid, with before's georeference
    threshold: float  # the default cut: 0.5 for a model's sigmoid, Otsu's threshold for change vector analysis
    method: str  # "model" or "cva"
    nan_fraction: float  # share of pixels with NaN in some band of either date, filled before the model
    windows: int = 0  # windows the model saw (0 for change vector analysis)
    seconds: float = 0.0  # wall-clock time of the whole call
    device: str = "cpu"  # where the model ran
    extra: dict = field(default_factory=dict)  # method-specific details (CVA: the magnitude's range)

    def change(self, threshold: float | None = None) -> xr.DataArray:
        """(y, x) uint8 change map, 1 = change: probability >= ``threshold`` (default ``self.threshold``)."""
        cut = self.threshold if threshold is None else float(threshold)
        return (self.probability >= cut).astype(np.uint8).rename("change")

    def summary(self) -> dict:
        """Everything but the map, as JSON-ready values."""
        return {k: v for k, v in self.__dict__.items() if not isinstance(v, xr.DataArray)}


# -- change --------------------------------------------------------------------------------------------------------
def _check_pair(before: Image, after: Image) -> None:
    """Same shape, band names, CRS and grid, or a ValueError naming what differs."""
    b_shape, a_shape = tuple(before.shape), tuple(after.shape)
    if b_shape != a_shape:
        raise ValueError(f"before has shape {b_shape} and after {a_shape}; they must match (band, y, x)")
    if not (isinstance(before, xr.DataArray) and isinstance(after, xr.DataArray)):
        return
    b_bands, a_bands = band_list(before, b_shape[0]), band_list(after, a_shape[0])
    if b_bands != a_bands:
        raise ValueError(f"before has bands {', '.join(b_bands)} but after has {', '.join(a_bands)}")
    if before.rio.crs != after.rio.crs:
        raise ValueError(f"before is in CRS {before.rio.crs} but after in {after.rio.crs}")
    if before.rio.crs is not None and not same_grid(before, after):
        raise ValueError(
            f"before and after have the same size but different transforms ({before.rio.transform()} vs "
            f"{after.rio.transform()}); put after on before's grid (s2lab.data.raster.match_grid)"
        )


def _feather(window: int, overlap: int) -> torch.Tensor:
    """(window, window) blending weights: 1 inside, falling linearly to 1 / (overlap + 1) over the border."""
    ramp = torch.clamp((torch.arange(window) + 1.0) / (overlap + 1), max=1.0)  # (w,)
    edge = torch.minimum(ramp, ramp.flip(0))
    return edge[:, None] * edge[None, :]


def _as_map(values: torch.Tensor, like: Image) -> xr.DataArray:
    """(H, W) values as a (y, x) float32 DataArray on ``like``'s grid and georeference."""
    return as_raster(values[None], like).isel(band=0, drop=True).rename("change_probability")


def _in_memory(image: Image, copies: int = 2 * IN_MEMORY_COPIES) -> bool:
    """Whether whole-image work on a pair of such images fits the memory limit (``s2lab.data.memory``)."""
    return copies * 4 * math.prod(image.shape) <= memory_limit()


def _pair_rows(before: Image, after: Image, normalize: str | None, in_chans: int | None, patch: int,
               window: int) -> tuple[list[Rows], str]:
    """Before and after as ``Rows``, after normalised onto before; and a note on how.

    A pair that fits in memory is normalised exactly over every pixel (``match_radiometry``); a larger one is read a
    band of rows at a time and normalised by a map fitted on strided samples (``fit_radiometry``)."""
    if _in_memory(before):
        xb, nan_b = prepare(before, in_chans, patch, "before")
        xa, nan_a = prepare(after, in_chans, patch, "after")
        if normalize is not None:
            xa = match_radiometry(xb, xa, normalize)
        return [Rows.of(xb, nan_b, window), Rows.of(xa, nan_a, window)], ""
    rows_b = image_rows(before, in_chans, patch, window, "before")
    rows_a = image_rows(after, in_chans, patch, window, "after")
    if normalize is None:
        return [rows_b, rows_a], ""
    rows_a.transform = fit_radiometry(rows_b.sample, rows_a.sample, normalize).apply
    note = f"; fitted on a strided sample of {rows_b.sample.shape[1]} px per band (the pair is larger than memory)"
    return [rows_b, rows_a], note


def change_map(
    model: ChangeDetector,
    before: Image,
    after: Image,
    *,
    normalize: str | None = None,
    window: int | None = None,
    overlap: int | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> ChangeResult:
    """The change probability of every pixel of a before / after pair, window by window.

    Args:
        model: a ``ChangeDetector``; moved to ``device`` and run in eval mode (its training mode restored after).
        before, after: (band, y, x) DataArrays of reflectance on one grid (same shape, bands, CRS and transform),
            or (C, H, W) tensors; C must be the encoder's ``in_chans``. NaN pixels are filled with their band's
            median.
        normalize: None, or a key of ``NORMALIZATIONS`` applied to the whole pair first (``match_radiometry``);
            use what the model was trained with. The result's ``extra["normalize"]`` says which.
        window: window side in pixels, a multiple of the patch size (default the encoder's ``img_size``).
        overlap: pixels shared by neighbouring windows (default a quarter of the window), blended by weights
            falling off towards each window's border.
        batch_size: window pairs per forward pass; bounds the memory.
        device: "cpu", "cuda", "mps" or None for the best available.
        progress: show a progress bar over the batches.

    Returns:
        ``ChangeResult`` with the (y, x) probability on before's grid and georeference, threshold 0.5.

    Raises:
        ValueError: the dates differ in shape, bands, CRS or grid; wrong band count; image smaller than a patch;
            an unknown ``normalize``.
    """
    start = time.perf_counter()
    check_normalize(normalize)
    config = model.encoder.config
    window = config.img_size if window is None else int(window)
    overlap = window // 4 if overlap is None else int(overlap)
    check_window(window, overlap, config.patch_size)
    _check_pair(before, after)
    images, note = _pair_rows(before, after, normalize, config.in_chans, config.patch_size, window)
    device = pick_device(device)
    plan = WindowPlan(images, window, overlap)
    weight = _feather(window, overlap)  # (w, w)
    H, W = images[0].H, images[0].W
    sums = TileSum(1, plan.images[0].Wp)  # (1, rows, W') probability times weight, and the weights
    probability = torch.empty(H, W)
    training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode(), autocast(device):
            for batch in plan.batches(batch_size, progress, "change"):
                b, a = (w.to(device) for w in batch.windows)  # (b, C, w, w) each
                logits = model(b, a)  # (b, w, w)
                first = sums.top
                sums.add(torch.sigmoid(logits.float()).cpu()[:, None], batch.origins, weight=weight)
                rows = sums.mean(min(batch.done, H))[0, :, :W]  # (n, W) finished rows
                probability[first : first + rows.shape[0]] = rows
    finally:
        model.train(training)
    return ChangeResult(
        probability=_as_map(probability, before),
        threshold=MODEL_THRESHOLD,
        method="model",
        nan_fraction=images[0].nan_fraction(images[1]),
        windows=len(plan),
        seconds=time.perf_counter() - start,
        device=str(device),
        extra={"normalize": None if normalize is None else f"{normalize}: {NORMALIZATIONS[normalize]} (no labels)"
                                                              + note},
    )


def cva_magnitude(before: Image, after: Image) -> tuple[torch.Tensor, float]:
    """Change vector analysis of a pair (``s2lab.cva.change_vector_analysis``): (H, W) float32 magnitude and the
    share of pixels NaN in some band of either date (filled with the band medians first).

    A pair that fits in memory is computed at once; a larger one a band of rows at a time, each date's band means
    and standard deviations taken on a strided sample (``s2lab.windows.image_rows``)."""
    _check_pair(before, after)
    if _in_memory(before):
        xb, nan_b = prepare(before, None, 1, "before")
        xa, nan_a = prepare(after, None, 1, "after")
        return change_vector_analysis(xb, xa), float((nan_b | nan_a).float().mean())
    # window 1 pads nothing: only the images' rows and their samples are used here
    rows_b, rows_a = image_rows(before, None, 1, 1, "before"), image_rows(after, None, 1, 1, "after")
    stats = []
    for sample in (rows_b.sample, rows_a.sample):  # (C, n)
        mean, std = sample.mean(dim=1), sample.std(dim=1, unbiased=False).clamp_min(1e-6)
        stats.append((mean[:, None, None], std[:, None, None]))
    H, W = rows_b.H, rows_b.W
    magnitude, nan = torch.empty(H, W), 0
    for top in range(0, H, BLEND_ROWS):
        (xb, nan_b), (xa, nan_a) = rows_b.read(top, top + BLEND_ROWS), rows_a.read(top, top + BLEND_ROWS)
        (mb, sb), (ma, sa) = stats
        magnitude[top : top + BLEND_ROWS] = ((xa - ma) / sa - (xb - mb) / sb).pow(2).sum(dim=0).sqrt()
        nan += int((nan_b | nan_a).sum())
    return magnitude, nan / (H * W)


def change_map_cva(before: Image, after: Image) -> ChangeResult:
    """The model-free floor: change vector analysis, its magnitude scaled to [0, 1], cut at Otsu's threshold.

    Args:
        before, after: (band, y, x) DataArrays of reflectance on one grid, or (C, H, W) tensors; NaN pixels are
            filled with their band's median.

    Returns:
        ``ChangeResult`` with the (y, x) scaled magnitude as probability on before's grid, and Otsu's threshold;
        ``extra`` holds the magnitude's min and max.
    """
    start = time.perf_counter()
    magnitude, nan_fraction = cva_magnitude(before, after)  # (H, W)
    lo, hi = float(magnitude.min()), float(magnitude.max())
    probability = (magnitude - lo) / max(hi - lo, SCALE_EPS)
    return ChangeResult(
        probability=_as_map(probability, before),
        threshold=float(otsu_threshold(probability)),
        method="cva",
        nan_fraction=nan_fraction,
        seconds=time.perf_counter() - start,
        extra={"magnitude_min": lo, "magnitude_max": hi},
    )


def smooth_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """(..., H, W) maps smoothed over their last two axes by a Gaussian of ``sigma`` pixels (reflected at the
    borders), float64; returned unchanged (as float64) at sigma 0. The smoothing of the change blend and of the
    smoothed CVA floor (``s2lab.evaluate.evaluate_cva``)."""
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number of pixels >= 0, got {sigma}")
    maps = np.asarray(maps, dtype=np.float64)
    if sigma == 0:
        return maps
    if maps.ndim < 2:
        raise ValueError(f"smoothing (sigma={sigma:g}) needs (H, W) maps, got shape {maps.shape}")
    return gaussian_filter(maps, sigma=(0,) * (maps.ndim - 2) + (sigma, sigma), mode="reflect")


def blend_scores(probability: np.ndarray | torch.Tensor, magnitude: np.ndarray | torch.Tensor,
                 weight: float, sigma: float = 0.0) -> np.ndarray:
    """The late fusion of a change model with change vector analysis, as a probability:
    ``sigmoid(G_sigma * (logit(p) + weight * m))``, p the model's probability, m the CVA magnitude (each date's bands
    standardised on its own) and G_sigma a Gaussian smoothing of sigma pixels (none at 0).

    Args:
        probability, magnitude: matching shapes; (..., H, W) maps when ``sigma`` > 0 (it smooths the last two axes).
        weight: the CVA weight w >= 0 (0: the model alone). sigma: the smoothing in pixels >= 0. Change in OSCD's
            labels comes in blobs (buildings, sites), and a pixel's score is noisy: the smoothing lets neighbours
            vote. Both are chosen on training cities (``s2lab.evaluate.evaluate_blend``).

    Returns:
        The blended probability, float64, the shape of ``probability``. Without smoothing it is monotone in the
        blended score, so a cut on it is a cut on that score.
    """
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-6, 1 - 1e-6)
    score = smooth_maps(np.log(p / (1 - p)) + weight * np.asarray(magnitude, dtype=np.float64), sigma)
    return 1.0 / (1.0 + np.exp(-score))


def blend_with_cva(result: ChangeResult, before: Image, after: Image, weight: float, threshold: float,
                   sigma: float = 0.0) -> ChangeResult:
    """A model's ``ChangeResult`` blended with change vector analysis of the same pair (``blend_scores``).

    Args:
        result: ``change_map``'s result on before / after.
        before, after: the pair it was computed on (CVA sees the whole images, unlike the model's windows).
        weight: the CVA weight w, chosen on training cities (``s2lab.evaluate.evaluate_blend``).
        threshold: the cut of the blended probability, chosen there too. sigma: its smoothing in pixels, likewise.

    Returns:
        ``ChangeResult`` of method "model + cva" with the blended probability and ``threshold``.
    """
    start = time.perf_counter()
    magnitude = cva_magnitude(before, after)[0].numpy()  # (H, W)
    p = result.probability.values
    blended = np.empty(p.shape, dtype=np.float32)
    halo = int(4.0 * sigma + 0.5)  # gaussian_filter's radius: rows beyond it do not reach a row's smoothed value
    for top in range(0, p.shape[0], BLEND_ROWS):  # a band of rows at a time: a full tile's float64 maps would not fit
        bottom = min(top + BLEND_ROWS, p.shape[0])
        lo, hi = max(top - halo, 0), min(bottom + halo, p.shape[0])
        blended[top:bottom] = blend_scores(p[lo:hi], magnitude[lo:hi], weight, sigma)[top - lo : bottom - lo]
    probability = result.probability.copy(data=blended)
    return ChangeResult(probability=probability, threshold=float(threshold), method="model + cva",
                        nan_fraction=result.nan_fraction, windows=result.windows,
                        seconds=result.seconds + time.perf_counter() - start, device=result.device,
                        extra={**result.extra, "cva_weight": float(weight), "sigma": float(sigma)})


def detect_change(model: ChangeDetector, meta: dict, before: Image, after: Image, *, blend: bool = True,
                  **kwargs) -> ChangeResult:
    """A change map the way a checkpoint's ``meta`` says it was chosen on its training cities: its radiometric
    normalisation, its threshold, and the blend with change vector analysis where ``meta["method"]`` is
    "model + cva" (and ``blend``). The default of ``s2lab detect-change``, the app and notebook 08.

    Args:
        model: a ``ChangeDetector``. meta: its checkpoint's meta (``s2lab finetune --task change`` writes it).
        before, after: as ``change_map``. blend: False for the model alone whatever ``meta`` chose.
        kwargs: passed to ``change_map`` (device, progress, ...).
    """
    result = change_map(model, before, after, normalize=meta.get("normalize"), **kwargs)
    result.threshold = float(meta.get("threshold", result.threshold))
    if blend and meta.get("method") == "model + cva":
        chosen = meta["blend"]
        result = blend_with_cva(result, before, after, chosen["cva_weight"], chosen["threshold"],
                                chosen.get("sigma", 0.0))
    return result


def chosen_threshold(meta: dict, default: float = 0.5) -> float:
    """The threshold of the map ``detect_change`` makes by default with a checkpoint of this ``meta``."""
    if meta.get("method") == "model + cva":
        return float(meta["blend"]["threshold"])
    return float(meta.get("threshold", default))
