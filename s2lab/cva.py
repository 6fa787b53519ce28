"""Change vector analysis (CVA), the classic label-free floor for change detection, and Otsu's threshold that
cuts its magnitude into a change map.

Torch tensors or numpy arrays in; a magnitude per pixel, or a threshold as a python float, out. Shapes use the
glossary of ``docs/internals.md``. ``s2lab.change.change_map_cva`` maps a whole before / after pair this way, and
``s2lab.evaluate`` scores it beside the models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from s2lab.metrics import _same_shape, _tensor


def otsu_threshold(values: Any, bins: int = 256) -> float:
    """Otsu's threshold: the cut that maximises the between-class variance of a histogram.

    The same algorithm as ``skimage.filters.threshold_otsu`` (a ``bins``-bin histogram over the finite values,
    the threshold a bin centre); values strictly above it are the upper class (change). NaN and inf are ignored;
    a constant input returns that constant.

    Args:
        values: any shape, e.g. a CVA magnitude (H, W); a tensor or a numpy array.
        bins: histogram bins.
    """
    v = values.detach().double().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    v = v.astype(np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("Otsu's threshold needs at least one finite value, got none")
    if bins < 2:
        raise ValueError(f"Otsu's threshold needs at least 2 histogram bins, got {bins}")
    lo, hi = v.min(), v.max()
    if lo == hi:
        return float(lo)
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    weight_below = np.cumsum(hist)  # pixels at or below each bin
    weight_above = np.cumsum(hist[::-1])[::-1]  # pixels at or above each bin
    mean_below = np.cumsum(hist * centers) / weight_below
    mean_above = (np.cumsum((hist * centers)[::-1]) / weight_above[::-1])[::-1]
    between = weight_below[:-1] * weight_above[1:] * (mean_below[:-1] - mean_above[1:]) ** 2
    return float(centers[:-1][np.argmax(between)])


def change_vector_analysis(before: torch.Tensor, after: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
    """Change vector analysis: the length of each pixel's spectral change vector, a change score without labels.

    Args:
        before, after: (C, H, W) images of the same place (or (B, C, H, W) pairs), reflectance.
        normalize: first standardise each image's bands by their own mean and standard deviation over (H, W),
            which cancels differences of illumination and calibration between the dates (no labels are used).

    Returns:
        (H, W) magnitude (or (B, H, W)), |after - before| over the C bands; threshold it, e.g. with
        ``otsu_threshold``, to get a change map.
    """
    before, after = _tensor(before).float(), _tensor(after).float()
    _same_shape(before, after, "before and after images")
    if before.ndim not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W) images, got shape {tuple(before.shape)}")
    if normalize:
        before, after = _standardize_bands(before), _standardize_bands(after)
    return (after - before).pow(2).sum(dim=-3).sqrt()  # (H, W) or (B, H, W)


def _standardize_bands(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Every band of (..., C, H, W) to zero mean, unit standard deviation over its own pixels."""
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True, unbiased=False).clamp_min(eps)
    return (x - mean) / std
