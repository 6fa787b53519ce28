"""Applying a trained model to a real image: reconstruction and change maps over whole scenes, window by window.

The notebooks, the app and the ``s2lab`` command all come here. A model never sees a whole scene: it sees square
windows of ``window`` pixels (by default its training ``img_size``), ``batch_size`` at a time, so memory is bounded
and attention never spans more than one window. The recipe, shared by both tasks:

    image (C, H, W) reflectance; NaN pixels filled with their band's median       _fill_nan
      -> pad the right and bottom edges by reflection to a multiple of the window  _pad_reflect
      -> window corners, one every ``window - overlap`` pixels, as ``tile`` lays  _origins (s2lab.data.tiles.tile)
         them out; batches of ``batch_size`` windows (b, C, w, w) cut as needed   _cut
      -> each batch through the model, inference_mode, autocast
      -> summed into running sums over the padded image, overlaps averaged        _Stitcher
      -> cropped to (H, W) with the input's georeference                           s2lab.data.raster.from_numpy

Memory is the image, its padded copy and a few image-sized sums, whatever the number of windows: the embedded
scene (10 x 1947 x 1933) reconstructs in about 1.5 GiB.

**Reconstruction** (``reconstruct_image``). Windows are numbered row by row, as ``tile`` lays them out; batch k
holds windows ``k * batch_size`` to ``(k + 1) * batch_size - 1`` and draws its masks from
``torch.Generator().manual_seed(seed + k)`` (on the CPU, whatever the device), so the same seed, window, overlap and
batch size give the same masks on any machine. Where windows overlap, a pixel counts as removed only if every window
covering it removed it (so with overlap the removed share is below ``mask_ratio``); its prediction is the mean over
the windows that removed it. Scores are computed on the lab's one yardstick, in reflectance (masked MSE, PSNR with
peak 1.0 reflectance, spectral angle between reflectance spectra), over the removed tokens' pixels that lie in the
image (not in the reflected padding, not NaN-filled), pooled over all windows as if computed at
once. The naive baselines of ``s2lab.baselines`` see the same windows and the same masks, so their scores are the
floor the model must beat.

**Change** (``change_map``). Windows of both dates at the same places go through a ``ChangeDetector``; overlapping
windows are blended with weights that fall off linearly over the ``overlap`` pixels at each window's border, so no
seam shows. Season and radiometry differ between dates and look like change: ``normalize`` first maps every band of
AFTER onto BEFORE over the whole image (``match_radiometry``, a relative radiometric normalisation that uses no
labels; a model should be trained with the same setting): ``"moments"`` linearly to BEFORE's mean and standard
deviation, ``"quantiles"`` monotonically onto BEFORE's histogram. A ``ChangeDetector`` scales every window of each
date with its encoder's input scaling: with per-window min-max scaling every per-band linear map cancels, so
``"moments"`` leaves its output unchanged and only the non-linear ``"quantiles"`` reaches it; with the default
fixed dataset statistics both reach it. ``change_map_cva`` is the model-free floor: change vector analysis (which standardises each date's
bands on its own, the same normalisation), thresholded by Otsu's method.
``score_change`` and ``best_threshold`` compare a map with a label; choose a threshold on training cities only.

``reconstruct_tiles`` is the fast path for live views: one batch of tiles, no windows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from s2lab.baselines import fill_all
from s2lab.data.raster import from_numpy, same_grid
from s2lab.data.tiles import tile, to_tensor
from s2lab.device import autocast, pick_device
from s2lab.masking import draw_mask
from s2lab.metrics import (
    binary_scores,
    change_vector_analysis,
    otsu_threshold,
    psnr,
    reconstruction_scores,
)
from s2lab.models.heads import ChangeDetector
from s2lab.models.mae import MaskedAutoencoder, Reconstruction
from s2lab.scaling import SCALE_EPS

MODEL_THRESHOLD = 0.5  # a ChangeDetector's default cut on the sigmoid probability
NORMALIZATIONS = {  # change_map's per-image radiometric normalisations (none uses labels) -> what each does
    "moments": "each band of after mapped linearly to before's mean and standard deviation over the image",
    "quantiles": "each band of after mapped monotonically onto before's values (histogram matching over the image)",
}

Image = xr.DataArray | torch.Tensor  # (band, y, x) DataArray or (C, H, W) tensor
Scores = dict[str, dict[str, float]]  # method ("model", then each baseline) -> {mse, psnr, sam_deg}


@dataclass
class ReconstructionResult:
    """A whole image masked and reconstructed, window by window."""

    prediction: xr.DataArray  # (band, y, x) float32 reflectance the model predicts at every pixel
    pasted: xr.DataArray  # (band, y, x) float32: the input where kept, the prediction where removed
    mask: xr.DataArray  # (band, y, x) uint8, 1 = removed (by every window covering the pixel)
    scores: Scores  # "model" and each baseline -> {mse, psnr, sam_deg} over removed tokens
    masked_fraction: float  # share of the image's values removed
    nan_fraction: float  # share of pixels with NaN in some band, filled with the band median before the model
    mask_ratio: float  # share of each window's tokens removed
    strategy: str  # the masking strategy, a key of s2lab.masking.STRATEGIES
    seed: int  # batch k drew its masks from torch.Generator().manual_seed(seed + k)
    windows: int  # windows the model saw
    seconds: float  # wall-clock time of the whole call
    device: str  # where the model ran, e.g. "cpu" or "cuda:0"

    def summary(self) -> dict:
        """Everything but the images, as JSON-ready values (what ``s2lab reconstruct --json`` prints)."""
        return {k: v for k, v in self.__dict__.items() if not isinstance(v, xr.DataArray)}


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


# -- validation and preparation ------------------------------------------------------------------------------------
def _band_list(image: Image, count: int) -> list[str]:
    if isinstance(image, xr.DataArray) and "band" in image.coords:
        return [str(b) for b in np.atleast_1d(image["band"].values)]
    return [f"band{i + 1}" for i in range(count)]


def _check_bands(image: Image, x: torch.Tensor, in_chans: int, what: str) -> None:
    if x.shape[0] != in_chans:
        names = ", ".join(_band_list(image, x.shape[0]))
        raise ValueError(
            f"{what} has {x.shape[0]} bands ({names}) but the model takes {in_chans} (its in_chans); "
            f"select the model's bands first (s2lab.data.raster.select_bands)"
        )


def _check_window(window: int, overlap: int, patch: int) -> None:
    if window < patch or window % patch:
        raise ValueError(f"window {window} must be a positive multiple of the model's patch size {patch}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap {overlap} must be in [0, {window}) for a window of {window} px")


def _check_size(x: torch.Tensor, patch: int, what: str) -> None:
    H, W = x.shape[-2:]
    if H < patch or W < patch:
        raise ValueError(f"{what} of {H} x {W} px is smaller than one {patch} x {patch} patch of the model")


def _fill_nan(x: torch.Tensor, names: Sequence[str], what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN values of x (C, H, W) replaced by their band's median; returns (filled x, (H, W) bool NaN pixels).

    The median is ``torch.nanmedian``'s: the lower of the two middle values when the count is even.
    """
    nan = torch.isnan(x)  # (C, H, W)
    if not nan.any():
        return x, torch.zeros(x.shape[-2:], dtype=torch.bool)
    empty = nan.flatten(1).all(dim=1)  # (C,)
    if empty.all():
        raise ValueError(f"{what} is NaN everywhere; nothing to run the model on")
    if empty.any():
        bands = ", ".join(n for n, e in zip(names, empty.tolist()) if e)
        raise ValueError(f"{what} has bands that are NaN everywhere ({bands}); drop them or give a valid image")
    median = torch.nanmedian(x.flatten(1), dim=1).values  # (C,)
    return torch.where(nan, median[:, None, None], x), nan.any(dim=0)


def _reflect_index(n: int, size: int) -> torch.Tensor:
    """Indices 0 .. size - 1 reflected into 0 .. n - 1 (mirror without repeating the edge, as often as needed)."""
    if n == 1:
        return torch.zeros(size, dtype=torch.int64)
    period = 2 * (n - 1)
    i = torch.arange(size) % period
    return torch.where(i >= n, period - i, i)


def _pad_reflect(x: torch.Tensor, window: int) -> torch.Tensor:
    """(C, H, W) -> (C, H', W'), H' and W' the next multiples of ``window``, right and bottom mirrored."""
    H, W = x.shape[-2:]
    Hp, Wp = math.ceil(H / window) * window, math.ceil(W / window) * window
    return x[:, _reflect_index(H, Hp)][:, :, _reflect_index(W, Wp)]


def _pad_zero(x: torch.Tensor, window: int) -> torch.Tensor:
    """(C, H, W) -> (C, H', W') padded with zeros to the same size as ``_pad_reflect``."""
    H, W = x.shape[-2:]
    Hp, Wp = math.ceil(H / window) * window, math.ceil(W / window) * window
    return torch.nn.functional.pad(x, (0, Wp - W, 0, Hp - H))


def _prepare(image: Image, in_chans: int | None, patch: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (C, H, W) float32 tensor with NaN filled, and its (H, W) bool NaN pixels.

    Args:
        image: (band, y, x) DataArray or (C, H, W) tensor.
        in_chans: the bands the model takes; None for any count.
        patch: the smallest side accepted, in pixels.
        what: the image's name in error messages.
    """
    x = to_tensor(image)
    if in_chans is not None:
        _check_bands(image, x, in_chans, what)
    _check_size(x, patch, what)
    return _fill_nan(x, _band_list(image, x.shape[0]), what)


def _as_raster(values: torch.Tensor, like: Image) -> xr.DataArray:
    """(C, H, W) values on ``like``'s grid and georeference; plain (band, y, x) when ``like`` is a tensor."""
    if isinstance(like, xr.DataArray):
        return from_numpy(values, like)
    return xr.DataArray(values.numpy(), dims=("band", "y", "x"), coords={"band": _band_list(like, values.shape[0])})


def _batches(count: int, batch_size: int, progress: bool, desc: str):
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    starts = range(0, count, batch_size)
    return tqdm(starts, desc=desc, unit="batch", disable=not progress)


# -- scores --------------------------------------------------------------------------------------------------------
@dataclass
class _BatchScores:
    """One batch's scores and what they were averaged over, for pooling batches."""

    scores: Scores  # method -> {mse, psnr, sam_deg}
    values: int  # removed real values (the MSE's denominator)
    pixels: int  # real pixels that lost at least one band (the spectral angle's denominator)


def _window_scores(
    model: MaskedAutoencoder,
    x: torch.Tensor,
    rec: Reconstruction,
    real: torch.Tensor | None = None,
    baselines: bool = True,
) -> _BatchScores:
    """Scores of the model and of every naive baseline on one batch, in reflectance.

    Args:
        model: the model that made ``rec``.
        x: (B, C, H, W) reflectance the model saw.
        rec: its reconstruction, images (B, C, H, W) float32.
        real: (B, 1, H, W) 1 where a pixel is real image (not padding, not NaN-filled); None for all.
        baselines: also score the naive baselines (False: the model only, about twice as fast).

    Returns:
        Each method's ``s2lab.metrics.reconstruction_scores`` in reflectance over the removed real pixels; the
        baselines fill the same removed values from the same visible ones (``s2lab.baselines.fill_all``).
    """
    removed = rec.mask.bool() if real is None else rec.mask.bool() & real.bool()  # (B, C, H, W) scored values
    pixels = removed.any(dim=1)  # (B, H, W): real pixels that lost at least one band
    target, scored = _removed_pixels(x, pixels), _removed_pixels(removed, pixels)  # (1, C, M, 1) each
    scores = {"model": reconstruction_scores(_removed_pixels(rec.prediction, pixels), target, scored)}
    if baselines:
        for name, guess in fill_all(x, rec.mask, model.tokenizer).items():
            scores[name] = reconstruction_scores(_removed_pixels(guess, pixels), target, scored)
    return _BatchScores(scores, int(scored.sum()), int(pixels.sum()))


def _removed_pixels(image: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """The M pixels of ``image`` (B, C, H, W) where ``pixels`` (B, H, W) is True, as a (1, C, M, 1) image.

    Every score is taken over pixels that lost a band, so scoring these equals scoring the whole image, on less
    data; and their bands lie next to each other in memory, where a norm over the band axis is about ten times
    faster on a CPU than across the planes of a (B, C, H, W) tensor.
    """
    return image.permute(0, 2, 3, 1)[pixels].T[None, :, :, None]  # (M, C) -> (1, C, M, 1)


def _pool(parts: Sequence[_BatchScores]) -> Scores:
    """Batches' scores as if computed at once: MSE and spectral angle weighted by their counts, PSNR of the MSE."""
    values, pixels = sum(b.values for b in parts), sum(b.pixels for b in parts)
    pooled = {}
    for method in parts[0].scores if parts else ():
        mse = sum(b.scores[method]["mse"] * b.values for b in parts) / max(values, 1)
        sam = sum(b.scores[method]["sam_deg"] * b.pixels for b in parts) / max(pixels, 1)
        pooled[method] = {"mse": mse, "psnr": psnr(mse), "sam_deg": sam}
    return pooled


# -- reconstruction ------------------------------------------------------------------------------------------------
def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _cut(image: torch.Tensor, origins: torch.Tensor, window: int) -> torch.Tensor:
    """The windows of ``image`` (C, H', W') with top-left corners ``origins`` (b, 2): (b, C, w, w), one batch."""
    return torch.stack([image[:, r : r + window, c : c + window] for r, c in origins.tolist()])


def _origins(shape: Sequence[int], window: int, stride: int) -> torch.Tensor:
    """(B, 2) top-left corners of the windows ``s2lab.data.tiles.tile`` lays out on an (H', W') image, row by row."""
    return tile(torch.zeros(1, *shape, dtype=torch.uint8), window, stride=stride, drop_nan=False)[1]


class _Stitcher:
    """Reconstructed windows summed into the padded image batch by batch, overlaps resolved as the module docstring
    says; memory is four running sums the size of the image, whatever the number of windows.

    Args:
        shape: (C, H', W') of the padded image.
        window: w, the windows' side in pixels.
    """

    def __init__(self, shape: Sequence[int], window: int):
        self.window = window
        self.removed_sum = torch.zeros(shape)  # (C, H', W') prediction summed over the windows that removed a value
        self.removed = torch.zeros(shape)  # (C, H', W') windows that removed each value
        self.total = torch.zeros(shape)  # (C, H', W') prediction summed over every window covering a value
        self.cover = torch.zeros(1, *shape[1:])  # (1, H', W') windows covering each pixel

    def add(self, prediction: torch.Tensor, mask: torch.Tensor, origins: torch.Tensor) -> None:
        """prediction (b, C, w, w), mask (b, C, w, w) bool (True = removed), origins (b, 2) (row, column)."""
        w = self.window
        for pred, removed, (r, c) in zip(prediction, mask, origins.tolist()):
            at = (slice(None), slice(r, r + w), slice(c, c + w))
            self.total[at] += pred
            self.removed_sum[at] += pred * removed
            self.removed[at] += removed
            self.cover[at] += 1

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """prediction (C, H', W'): the mean over the windows that removed a value, else over all covering it; and
        mask (C, H', W') bool, True where every covering window removed the value. Consumes the sums."""
        mask = self.removed == self.cover
        any_removed = self.removed > 0
        self.removed_sum /= self.removed.clamp_(min=1)
        self.total /= self.cover
        prediction = torch.where(any_removed, self.removed_sum, self.total, out=self.total)
        self.removed_sum = self.removed = None
        return prediction, mask


def reconstruct_tiles(
    model: MaskedAutoencoder,
    x: torch.Tensor,
    *,
    mask_ratio: float = 0.75,
    strategy: str = "random",
    seed: int = 0,
    baselines: bool = True,
) -> dict:
    """Mask and reconstruct one batch of tiles, with scores: the fast path for live views (one batch, no windows).

    Runs where the model is; the mask is drawn from ``torch.Generator().manual_seed(seed)``.

    Args:
        model: a ``MaskedAutoencoder`` (S2MAE or SatMAE).
        x: (B, C, H, W) reflectance without NaN, H and W multiples of the patch size.
        mask_ratio: share of tokens removed, in [0, 1).
        strategy: a key of ``s2lab.masking.STRATEGIES``.
        seed: seed of the mask.
        baselines: also score every naive baseline; False scores the model only (about twice as fast, for views
            that must follow a slider).

    Returns:
        ``{"prediction", "pasted", "mask", "scores"}``: the three (B, C, H, W) images of ``Reconstruction`` on the
        CPU (mask 1 = removed) and method -> {mse, psnr, sam_deg} for "model" and (with ``baselines``) every naive
        baseline, in reflectance over the removed tokens.
    """
    device = _model_device(model)
    x = x.to(device=device, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        with autocast(device):
            rec = model.reconstruct(x, mask_ratio=mask_ratio, strategy=strategy, generator=generator)
        rec = Reconstruction(*(t.float() for t in rec))
        scores = _window_scores(model, x, rec, baselines=baselines).scores
    return {**{k: v.cpu() for k, v in rec._asdict().items()}, "scores": scores}


def reconstruct_image(
    model: MaskedAutoencoder,
    image: Image,
    *,
    mask_ratio: float = 0.75,
    strategy: str = "random",
    seed: int = 0,
    window: int | None = None,
    overlap: int = 0,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = False,
    score: bool = True,
    baselines: bool = True,
) -> ReconstructionResult:
    """Mask and reconstruct a whole image of any size, window by window (see the module docstring).

    Args:
        model: a ``MaskedAutoencoder`` (S2MAE or SatMAE); moved to ``device`` and run in eval mode (its training
            mode is restored afterwards).
        image: (band, y, x) DataArray of reflectance, or a (C, H, W) tensor; C must be the model's ``in_chans``;
            NaN pixels are filled with their band's median.
        mask_ratio: share of each window's tokens removed, in [0, 1).
        strategy: a key of ``s2lab.masking.STRATEGIES``.
        seed: batch k of windows draws its masks from ``torch.Generator().manual_seed(seed + k)``.
        window: window side in pixels, a multiple of the patch size (default the model's ``img_size``).
        overlap: pixels shared by neighbouring windows, in [0, window).
        batch_size: windows per forward pass; bounds the memory.
        device: "cpu", "cuda", "mps" or None for the best available (``s2lab.device.pick_device``).
        progress: show a progress bar over the batches.
        score: compute the scores; False skips them (``scores`` is then empty), for pictures only.
        baselines: score the naive baselines too; False scores the model only (scoring is then about four times
            cheaper).

    Returns:
        ``ReconstructionResult`` with (band, y, x) images on the input's grid and georeference, and the scores.

    Raises:
        ValueError: wrong band count, image smaller than a patch, a band NaN everywhere, bad window or overlap,
            a mask ratio outside [0, 1) or keeping no token of a window, an unknown strategy (all before any
            window is computed).
    """
    start = time.perf_counter()
    config = model.config
    window = config.img_size if window is None else int(window)
    _check_window(window, overlap, config.patch_size)
    spatial = (window // config.patch_size) ** 2  # N of one window
    draw_mask(strategy, 1, model.tokenizer.G, spatial, mask_ratio, generator=torch.Generator())  # refused before work
    x, nan_pixels = _prepare(image, config.in_chans, config.patch_size, "the image")
    H, W = x.shape[-2:]
    device = pick_device(device)
    real = _pad_zero((~nan_pixels)[None].float(), window)  # (1, H', W'), 0 on padding and NaN-filled pixels
    padded = _pad_reflect(x, window)  # (C, H', W')
    del x
    real_windows, origins = tile(real, window, stride=window - overlap, drop_nan=False)  # (B, 1, w, w), (B, 2)
    stitcher, parts = _Stitcher(padded.shape, window), []
    training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode():
            for k, i in enumerate(_batches(len(origins), batch_size, progress, "reconstruct")):
                batch = _cut(padded, origins[i : i + batch_size], window).to(device)  # (b, C, w, w)
                generator = torch.Generator().manual_seed(seed + k)
                with autocast(device):
                    rec = model.reconstruct(batch, mask_ratio=mask_ratio, strategy=strategy, generator=generator)
                rec = Reconstruction(*(t.float() for t in rec))
                if score:
                    real_batch = real_windows[i : i + batch_size].to(device)  # (b, 1, w, w)
                    parts.append(_window_scores(model, batch, rec, real_batch, baselines=baselines))
                stitcher.add(rec.prediction.cpu(), rec.mask.bool().cpu(), origins[i : i + batch_size])
    finally:
        model.train(training)
    del padded
    full_pred, full_mask = stitcher.result()
    full_pred, full_mask = full_pred[:, :H, :W], full_mask[:, :H, :W]  # (C, H, W) each
    pasted = torch.where(full_mask, full_pred, to_tensor(image))  # NaN kept: pasting into the image as it was
    prediction = _as_raster(full_pred, image)
    return ReconstructionResult(
        prediction=prediction,
        pasted=_as_raster(pasted, image),
        mask=prediction.copy(deep=False, data=full_mask.numpy().astype(np.uint8)),
        scores=_pool(parts),
        masked_fraction=float(full_mask.sum()) / full_mask.numel(),
        nan_fraction=float(nan_pixels.float().mean()),
        mask_ratio=float(mask_ratio),
        strategy=strategy,
        seed=int(seed),
        windows=len(origins),
        seconds=time.perf_counter() - start,
        device=str(device),
    )


# -- change --------------------------------------------------------------------------------------------------------
def _check_pair(before: Image, after: Image) -> None:
    """Same shape, band names, CRS and grid, or a ValueError naming what differs."""
    b_shape, a_shape = tuple(before.shape), tuple(after.shape)
    if b_shape != a_shape:
        raise ValueError(f"before has shape {b_shape} and after {a_shape}; they must match (band, y, x)")
    if not (isinstance(before, xr.DataArray) and isinstance(after, xr.DataArray)):
        return
    b_bands, a_bands = _band_list(before, b_shape[0]), _band_list(after, a_shape[0])
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
    return _as_raster(values[None], like).isel(band=0, drop=True).rename("change_probability")


def match_radiometry(
    before: torch.Tensor, after: torch.Tensor, method: str = "moments", eps: float = SCALE_EPS
) -> torch.Tensor:
    """``after`` with each band mapped onto ``before``'s radiometry over the whole image (no labels).

    A relative radiometric normalisation: a global change of each band (season, sun, atmosphere, calibration) is
    removed; real change, local by nature, moves the image statistics little. ``"moments"``: a gain and offset per
    band, so that the mean and standard deviation equal ``before``'s. ``"quantiles"``: histogram matching, each
    value replaced by ``before``'s value of the same rank (ties by position), so the two histograms are equal.

    Args:
        before, after: (C, H, W) or (B, C, H, W) reflectance without NaN, the same shape; statistics over (H, W).
        method: a key of ``NORMALIZATIONS``.

    Returns:
        after normalised, the shape of ``after``.
    """
    if before.shape != after.shape or before.ndim not in (3, 4):
        raise ValueError(f"before {tuple(before.shape)} and after {tuple(after.shape)} must be two (C, H, W) or "
                         "(B, C, H, W) images of the same shape")
    _check_normalize(method)
    if method == "quantiles":  # band by band: the int64 ranks of a whole scene would be 8 bytes per value at once
        out = torch.empty_like(after)
        for c in range(after.shape[-3]):
            a, b = after[..., c, :, :].flatten(-2), before[..., c, :, :].flatten(-2)  # (..., H * W)
            order = a.argsort(dim=-1, stable=True)  # positions of after's values, smallest first
            matched = torch.empty_like(a).scatter_(-1, order, b.sort(dim=-1).values)  # rank k gets before's k-th
            out[..., c, :, :] = matched.view(after.shape[:-3] + after.shape[-2:])
        return out
    mean_b, std_b = before.mean(dim=(-2, -1), keepdim=True), before.std(dim=(-2, -1), keepdim=True, unbiased=False)
    mean_a, std_a = after.mean(dim=(-2, -1), keepdim=True), after.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (after - mean_a) / std_a.clamp_min(eps) * std_b + mean_b


def _check_normalize(normalize: str | None) -> None:
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown radiometric normalisation {normalize!r}; expected None or one of "
                         f"{', '.join(NORMALIZATIONS)}")


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
    _check_normalize(normalize)
    config = model.encoder.config
    window = config.img_size if window is None else int(window)
    overlap = window // 4 if overlap is None else int(overlap)
    _check_window(window, overlap, config.patch_size)
    _check_pair(before, after)
    xb, nan_b = _prepare(before, config.in_chans, config.patch_size, "before")
    xa, nan_a = _prepare(after, config.in_chans, config.patch_size, "after")
    if normalize is not None:
        xa = match_radiometry(xb, xa, normalize)
    H, W = xb.shape[-2:]
    nan_fraction = float((nan_b | nan_a).float().mean())
    device = pick_device(device)
    padded_b, padded_a = _pad_reflect(xb, window), _pad_reflect(xa, window)  # (C, H', W') each, cut alike
    del xb, xa
    origins = _origins(padded_b.shape[-2:], window, window - overlap)  # (B, 2)
    weight = _feather(window, overlap)  # (w, w)
    total = torch.zeros(padded_b.shape[-2:])  # (H', W') probability times weight, summed over windows
    norm = torch.zeros(padded_b.shape[-2:])  # (H', W') weights summed over windows
    training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode(), autocast(device):
            for i in _batches(len(origins), batch_size, progress, "change"):
                at = origins[i : i + batch_size]  # (b, 2)
                b, a = _cut(padded_b, at, window).to(device), _cut(padded_a, at, window).to(device)  # (b, C, w, w)
                logits = model(b, a)  # (b, w, w)
                for p, (r, c) in zip(torch.sigmoid(logits.float()).cpu(), at.tolist()):
                    total[r : r + window, c : c + window] += p * weight
                    norm[r : r + window, c : c + window] += weight
    finally:
        model.train(training)
    return ChangeResult(
        probability=_as_map(total[:H, :W] / norm[:H, :W], before),
        threshold=MODEL_THRESHOLD,
        method="model",
        nan_fraction=nan_fraction,
        windows=len(origins),
        seconds=time.perf_counter() - start,
        device=str(device),
        extra={"normalize": None if normalize is None else f"{normalize}: {NORMALIZATIONS[normalize]} (no labels)"},
    )


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
    _check_pair(before, after)
    xb, nan_b = _prepare(before, None, 1, "before")
    xa, nan_a = _prepare(after, None, 1, "after")
    magnitude = change_vector_analysis(xb, xa)  # (H, W)
    lo, hi = float(magnitude.min()), float(magnitude.max())
    probability = (magnitude - lo) / max(hi - lo, SCALE_EPS)
    return ChangeResult(
        probability=_as_map(probability, before),
        threshold=float(otsu_threshold(probability)),
        method="cva",
        nan_fraction=float((nan_b | nan_a).float().mean()),
        seconds=time.perf_counter() - start,
        extra={"magnitude_min": lo, "magnitude_max": hi},
    )


def blend_scores(probability: np.ndarray | torch.Tensor, magnitude: np.ndarray | torch.Tensor,
                 weight: float) -> np.ndarray:
    """The late fusion of a change model with change vector analysis, as a probability:
    ``sigmoid(logit(p) + weight * m)``, p the model's probability and m the CVA magnitude (each date's bands
    standardised on its own), any matching shapes. Monotone in the blended score, so a cut on it is a cut on that
    score."""
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-6, 1 - 1e-6)
    score = np.log(p / (1 - p)) + weight * np.asarray(magnitude, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-score))


def blend_with_cva(result: ChangeResult, before: Image, after: Image, weight: float, threshold: float) -> ChangeResult:
    """A model's ``ChangeResult`` blended with change vector analysis of the same pair (``blend_scores``).

    Args:
        result: ``change_map``'s result on before / after.
        before, after: the pair it was computed on (CVA sees the whole images, unlike the model's windows).
        weight: the CVA weight w, chosen on training cities (``s2lab.evaluate.evaluate_blend``).
        threshold: the cut of the blended probability, chosen there too.

    Returns:
        ``ChangeResult`` of method "model + cva" with the blended probability and ``threshold``.
    """
    start = time.perf_counter()
    xb, _ = _prepare(before, None, 1, "before")
    xa, _ = _prepare(after, None, 1, "after")
    magnitude = change_vector_analysis(xb, xa).numpy()  # (H, W)
    blended = blend_scores(result.probability.values, magnitude, weight).astype(np.float32)
    probability = result.probability.copy(data=blended)
    return ChangeResult(probability=probability, threshold=float(threshold), method="model + cva",
                        nan_fraction=result.nan_fraction, windows=result.windows,
                        seconds=result.seconds + time.perf_counter() - start, device=result.device,
                        extra={**result.extra, "cva_weight": float(weight)})


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
        result = blend_with_cva(result, before, after, chosen["cva_weight"], chosen["threshold"])
    return result


def chosen_threshold(meta: dict, default: float = 0.5) -> float:
    """The threshold of the map ``detect_change`` makes by default with a checkpoint of this ``meta``."""
    if meta.get("method") == "model + cva":
        return float(meta["blend"]["threshold"])
    return float(meta.get("threshold", default))


# -- scoring a map against a label ---------------------------------------------------------------------------------
def _flat(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values.values if isinstance(values, xr.DataArray) else values).ravel()


def _check_label(probability, label) -> tuple[np.ndarray, np.ndarray]:
    """Flattened probability (float64) and label (bool), validated: same size, label of 0 / 1, no NaN."""
    p_shape, l_shape = tuple(np.shape(probability)), tuple(np.shape(label))
    if p_shape != l_shape:
        raise ValueError(f"probability has shape {p_shape} but the label {l_shape}; they must match")
    p, y = _flat(probability).astype(np.float64), _flat(label)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"the label holds {sorted(values)}; expected 0 = no change, 1 = change")
    if np.isnan(p).any():
        raise ValueError(f"the probability holds {int(np.isnan(p).sum())} NaN values")
    return p, y.astype(bool)


def score_change(probability, label, threshold: float = MODEL_THRESHOLD) -> dict[str, float]:
    """Precision, recall, F1, IoU (and accuracy) of ``probability >= threshold`` against ``label``.

    Args:
        probability: (H, W) change probability (DataArray, numpy array or tensor).
        label: (H, W) 0 / 1 truth, 1 = change.
        threshold: the cut; choose it on training cities only (``best_threshold``).

    Returns:
        ``s2lab.metrics.binary_scores`` of the cut map.
    """
    p, y = _check_label(probability, label)
    return binary_scores(p >= threshold, y)


def best_threshold(probability, label) -> float:
    """The threshold that maximises F1 of ``probability >= threshold`` against ``label``, found exactly.

    Use it on TRAINING cities only and carry the number to the test cities; choosing it on a test city's own label
    overstates the score.

    Args:
        probability: (H, W) change probability (DataArray, numpy array or tensor).
        label: (H, W) 0 / 1 truth with at least one changed pixel.

    Returns:
        A probability value t such that cutting at ``>= t`` gives the highest F1 (the largest such t on ties).
    """
    p, y = _check_label(probability, label)
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("the label holds no changed pixel; F1 and its best threshold are undefined")
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    tp = np.cumsum(y_sorted)  # true positives when cutting after each position
    fp = np.cumsum(~y_sorted)
    last = np.r_[p_sorted[1:] != p_sorted[:-1], True]  # cut only between distinct values
    f1 = np.where(last, 2 * tp / (tp + fp + positives), -1.0)
    return float(p_sorted[int(np.argmax(f1))])
