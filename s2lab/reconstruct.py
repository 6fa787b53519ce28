"""Reconstruction of a whole image, window by window (the recipe the windows follow: ``s2lab.windows``).

The notebooks, the app and the ``s2lab`` command all come here to mask and reconstruct a scene.

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

``reconstruct_tiles`` is the fast path for live views: one batch of tiles, no windows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from s2lab.baselines import fill_all
from s2lab.data.tiles import TileSum, to_tensor
from s2lab.device import autocast, pick_device
from s2lab.masking import draw_mask
from s2lab.metrics import psnr, reconstruction_scores
from s2lab.models.mae import MaskedAutoencoder, Reconstruction
from s2lab.data.export import RowWriter
from s2lab.data.memory import check_fits, size_text
from s2lab.windows import (IN_MEMORY_COPIES, Image, Rows, WindowPlan, as_raster, band_list, check_window, image_rows,
                           model_device, rows_of)

Scores = dict[str, dict[str, float]]  # method ("model", then each baseline) -> {mse, psnr, sam_deg}


@dataclass
class ReconstructionResult:
    """A whole image masked and reconstructed, window by window."""

    prediction: xr.DataArray | None  # (band, y, x) float32 reflectance the model predicts at every pixel
    pasted: xr.DataArray | None  # (band, y, x) float32: the input where kept, the prediction where removed
    mask: xr.DataArray | None  # (band, y, x) uint8, 1 = removed (by every window covering the pixel)
    scores: Scores  # "model" and each baseline -> {mse, psnr, sam_deg} over removed tokens
    masked_fraction: float  # share of the image's values removed
    nan_fraction: float  # share of pixels with NaN in some band, filled with the band median before the model
    mask_ratio: float  # share of each window's tokens removed
    strategy: str  # the masking strategy, a key of s2lab.masking.STRATEGIES
    seed: int  # batch k drew its masks from torch.Generator().manual_seed(seed + k)
    windows: int  # windows the model saw
    seconds: float  # wall-clock time of the whole call
    device: str  # where the model ran, e.g. "cpu" or "cuda:0"
    output: str | None = None  # the GeoTIFF the pasted image was written to, a band of rows at a time (the three
    # images are then None: none was in memory at once)

    def summary(self) -> dict:
        """Everything but the images, as JSON-ready values (what ``s2lab reconstruct --json`` prints)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("prediction", "pasted", "mask")}


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
Sink = Callable[[int, torch.Tensor, torch.Tensor], None]  # (first row, prediction (C, n, W), mask (C, n, W) bool)


def _finished(seen: TileSum, removed: TileSum, stop: int) -> tuple[int, torch.Tensor, torch.Tensor]:
    """The rows ``seen.top`` to ``stop`` that no later window covers, resolved as the module docstring says:
    (first row, prediction (C, n, W'), mask (C, n, W') bool, True where every covering window removed the value)."""
    start = seen.top
    total, cover = seen.take(stop)  # (C, n, W') predictions summed over every covering window, (1, n, W') count
    removed_total, removed = removed.take(stop)  # (C, n, W') summed over the windows that removed it, their count
    prediction = torch.where(removed > 0, removed_total / removed.clamp(min=1), total / cover)
    return start, prediction, removed == cover


def _reconstruct_rows(model: MaskedAutoencoder, rows: Rows, sink: Sink, *, mask_ratio: float, strategy: str,
                      seed: int, window: int, overlap: int, batch_size: int, device: torch.device, progress: bool,
                      score: bool, baselines: bool) -> tuple[list[_BatchScores], int, int]:
    """Reconstruct ``rows`` window by window; ``sink`` gets the finished image rows (cropped to H x W) in order.
    Returns the batches' scores, the number of windows and the number of removed values."""
    plan = WindowPlan([rows], window, overlap)
    seen, removed = TileSum(rows.C, rows.Wp), TileSum(rows.C, rows.Wp, weight_channels=rows.C)
    parts, masked = [], 0
    training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode():
            for batch in plan.batches(batch_size, progress, "reconstruct"):
                x = batch.windows[0].to(device)  # (b, C, w, w)
                generator = torch.Generator().manual_seed(seed + batch.index)
                with autocast(device):
                    rec = model.reconstruct(x, mask_ratio=mask_ratio, strategy=strategy, generator=generator)
                rec = Reconstruction(*(t.float() for t in rec))
                if score:
                    parts.append(_window_scores(model, x, rec, batch.real.to(device), baselines=baselines))
                prediction, mask = rec.prediction.cpu(), rec.mask.cpu()
                seen.add(prediction, batch.origins)
                removed.add(prediction, batch.origins, weight=mask)
                start, prediction, mask = _finished(seen, removed, min(batch.done, rows.H))
                if prediction.shape[1]:
                    mask = mask[:, :, : rows.W]
                    masked += int(mask.sum())
                    sink(start, prediction[:, :, : rows.W], mask)
    finally:
        model.train(training)
    return parts, len(plan), masked


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
    device = model_device(model)
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
    out: str | os.PathLike | None = None,
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
        out: a GeoTIFF path: the pasted image is written there a band of rows at a time, on the input's grid (a
            lazily opened raster is then read a band of rows at a time too, so a full Sentinel-2 tile needs a
            few hundred MB), and the result holds no image. None: the three images are returned, in memory.

    Returns:
        ``ReconstructionResult`` with (band, y, x) images on the input's grid and georeference, and the scores.

    Raises:
        ValueError: wrong band count, image smaller than a patch, a band NaN everywhere, bad window or overlap,
            a mask ratio outside [0, 1) or keeping no token of a window, an unknown strategy (all before any
            window is computed).
        RasterError: the image would not fit the memory limit (``s2lab.data.memory.check_fits``), or ``out``
            cannot be written (nothing is left at ``out`` then, and what was there is kept).
    """
    start = time.perf_counter()
    config = model.config
    window = config.img_size if window is None else int(window)
    check_window(window, overlap, config.patch_size)
    spatial = (window // config.patch_size) ** 2  # N of one window
    draw_mask(strategy, 1, model.tokenizer.G, spatial, mask_ratio, generator=torch.Generator())  # refused before work
    settings = dict(mask_ratio=mask_ratio, strategy=strategy, seed=seed, window=window, overlap=overlap,
                    batch_size=batch_size, progress=progress, score=score, baselines=baselines)
    rows = image_rows(image, config.in_chans, config.patch_size, window, "the image")
    C, H, W = rows.C, rows.H, rows.W
    device = pick_device(device)
    if out is not None:
        with RowWriter(out, image, band_list(image, C)) as writer:
            def write(start: int, prediction: torch.Tensor, mask: torch.Tensor) -> None:
                original = rows_of(image, start, start + prediction.shape[1])  # (C, n, W), NaN kept
                writer.write(start, torch.where(mask, prediction, original))

            parts, windows, masked = _reconstruct_rows(model, rows, write, **settings, device=device)
        return ReconstructionResult(None, None, None, _pool(parts), masked / (C * H * W), rows.nan_fraction(),
                                    float(mask_ratio), strategy, int(seed), windows, time.perf_counter() - start,
                                    str(device), output=str(out))
    check_fits(IN_MEMORY_COPIES * 4 * C * H * W, size_text((C, H, W)), "reconstructing it in memory (or pass out=)")
    full_pred, full_mask = torch.empty(C, H, W), torch.empty(C, H, W, dtype=torch.bool)

    def keep(start: int, prediction: torch.Tensor, mask: torch.Tensor) -> None:
        full_pred[:, start : start + prediction.shape[1]] = prediction
        full_mask[:, start : start + mask.shape[1]] = mask

    parts, windows, masked = _reconstruct_rows(model, rows, keep, **settings, device=device)
    pasted = torch.where(full_mask, full_pred, to_tensor(image))  # NaN kept: pasting into the image as it was
    prediction = as_raster(full_pred, image)
    return ReconstructionResult(
        prediction=prediction,
        pasted=as_raster(pasted, image),
        mask=prediction.copy(deep=False, data=full_mask.numpy().astype(np.uint8)),
        scores=_pool(parts),
        masked_fraction=masked / full_mask.numel(),
        nan_fraction=rows.nan_fraction(),
        mask_ratio=float(mask_ratio),
        strategy=strategy,
        seed=int(seed),
        windows=windows,
        seconds=time.perf_counter() - start,
        device=str(device),
    )

