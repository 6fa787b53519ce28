"""Between xarray and torch: scenes to tensors, tiles and back, and the two normalisations of S2MAE.

A scene ``(band, y, x)`` becomes a ``(C, H, W)`` float32 tensor; ``tile`` cuts it into ``(B, C, size, size)``
windows (the last row and column of windows sit flush with the far edges, so every pixel is covered
whatever the stride) and ``untile`` puts them back, averaging where windows overlap.

Scaling for the models lives in ``s2lab.scaling`` (``scale_unit`` and ``unscale_unit`` are imported here for the
notebooks that know them from this module); ``standardize`` subtracts a band mean and divides by a band standard
deviation, by default the statistics of the embedded real scene below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from s2lab.scaling import S2_BAND_STATS, band_stats, check_finite, scale_unit, unscale_unit
from s2lab.sensors import S2_10BANDS, band_names

__all__ = ["S2_BAND_STATS", "band_stats", "random_tiles", "scale_unit", "standardize", "tile", "to_tensor",
           "unscale_unit", "unstandardize", "untile"]

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


def window_origins(H: int, W: int, size: int, stride: int) -> torch.Tensor:
    """(B, 2) int64 top-left (row, column) of the windows ``tile`` lays out on an H x W image, row by row."""
    grid = torch.cartesian_prod(torch.tensor(_starts(H, size, stride)), torch.tensor(_starts(W, size, stride)))
    return grid.reshape(-1, 2).to(torch.int64)


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
    origins = window_origins(H, W, size, stride)  # (B, 2)
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
    check_finite(x, "the image")
    rows = torch.randint(0, H - size + 1, (count,), generator=generator, device=generator.device)  # (B,)
    cols = torch.randint(0, W - size + 1, (count,), generator=generator, device=generator.device)  # (B,)
    return _gather(x, rows, cols, size)


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
