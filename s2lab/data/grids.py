"""The grid a raster lies on, and resampling between two grids: the mechanics under ``s2lab.data.raster``.

    Grid = (crs, transform, (H, W))   a CRS (None when a file has none), the affine transform from pixel (col, row)
                                      to CRS coordinates of the pixel's corner, the size in pixels

- ``grid_of(da)``, ``same(a, b)`` (to a millionth of a pixel), ``finest(grids)``, ``bounds(transform, shape)``,
  ``mismatch(src, dst, what)``: why ``src`` cannot be resampled onto ``dst`` (other CRS, rotated, other extent).
- ``build(values, names, grid)``: the ``(band, y, x)`` DataArray with every s2lab coordinate (band, wavelength,
  native_res, y and x at pixel centres, CRS and transform in ``.rio``); the values may be lazy.
- ``warp(data, src, dst, out)``: GDAL's bilinear warp (``rasterio.warp.reproject``, the call under rioxarray's
  ``da.rio.reproject_match``) sampled at the target pixel centres (``XSCALE=YSCALE=1``: no wider kernel when
  shrinking). The source is first extended by ``EDGE_PAD`` copies of its edge pixels, so a coarse band whose
  footprint stops a few metres short of the target grid repeats its edge pixel there instead of leaving NaN. A
  NaN source pixel makes every output pixel it touches NaN.

Nothing here raises on a bad input: ``s2lab.data.raster`` asks ``mismatch`` first and raises a ``RasterError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject

from s2lab.data.bands import band_wavelength

Grid = tuple["CRS | None", Affine, tuple[int, int]]  # (crs, transform, (H, W))
EDGE_PAD = 2  # source pixels repeated beyond each edge; a target grid may reach one source pixel past it
_PIXEL_GRID = CRS.from_wkt('LOCAL_CS["pixel grid",UNIT["metre",1]]')  # stands in for two grids without a CRS


def grid_of(da: xr.DataArray) -> Grid:
    """The grid of a ``(..., y, x)`` array with a georeference (``.rio``)."""
    return da.rio.crs, da.rio.transform(), (da.sizes["y"], da.sizes["x"])


def same(a: Grid, b: Grid) -> bool:
    """Same CRS, same shape, transforms equal to a millionth of a pixel."""
    tolerance = 1e-6 * min(abs(a[1].a), abs(a[1].e))
    return a[0] == b[0] and a[2] == b[2] and a[1].almost_equals(b[1], precision=tolerance)


def finest(grids: Sequence[Grid]) -> Grid:
    """The grid with the smallest pixel area; ties go to the first one."""
    return min(grids, key=lambda g: abs(g[1].a * g[1].e))


def bounds(transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a north-up grid of ``shape`` (H, W)."""
    xs = sorted((transform.c, transform.c + transform.a * shape[1]))
    ys = sorted((transform.f, transform.f + transform.e * shape[0]))
    return xs[0], ys[0], xs[1], ys[1]


def mismatch(src: Grid, dst: Grid, what: str) -> str | None:
    """Why ``src`` (called ``what``) cannot be resampled onto ``dst``, or None: ``warp`` needs the same grid, or one
    CRS, north-up grids and the same extent within a pixel (of the coarser grid)."""
    if same(src, dst):
        return None
    (src_crs, st, src_shape), (dst_crs, dt, dst_shape) = src, dst
    if src_crs != dst_crs:
        return f"{what} is in CRS {src_crs}, the target grid in {dst_crs}; expected one CRS"
    for transform, name in ((st, what), (dt, "the target grid")):
        if transform.b != 0 or transform.d != 0:
            return f"{name} has a rotated or sheared transform {tuple(transform)[:6]}; expected a north-up grid"
    sb, db = bounds(st, src_shape), bounds(dt, dst_shape)
    tol_x, tol_y = max(abs(st.a), abs(dt.a)) * 1.001, max(abs(st.e), abs(dt.e)) * 1.001
    if any(abs(s - d) > t for s, d, t in zip(sb, db, (tol_x, tol_y, tol_x, tol_y))):
        return (f"{what} covers {tuple(round(v, 6) for v in sb)} ({src_shape[0]} x {src_shape[1]} px), the target grid "
                f"{tuple(round(v, 6) for v in db)} ({dst_shape[0]} x {dst_shape[1]} px); expected the same extent "
                "within one pixel")
    return None


def build(data: Any, names: Sequence[str], grid: Grid, *, native_res: Sequence[float] | None = None,
          attrs: Mapping[str, Any] | None = None) -> xr.DataArray:
    """A (band, y, x) DataArray of (C, H, W) values (numpy, or lazy) on ``grid``, with every s2lab coordinate.

    ``native_res`` (C,) defaults to the grid's pixel width.
    """
    crs, transform, (H, W) = grid
    names = [str(n) for n in names]
    res = [abs(transform.a)] * len(names) if native_res is None else list(native_res)
    da = xr.DataArray(data, dims=("band", "y", "x"), attrs=dict(attrs or {}), coords={
        "band": names,
        "wavelength": ("band", np.array([band_wavelength(n) for n in names], dtype=np.float64)),
        "native_res": ("band", np.array(res, dtype=np.float64)),
        "y": transform.f + transform.e * (np.arange(H) + 0.5),  # pixel centres
        "x": transform.c + transform.a * (np.arange(W) + 0.5),
    })
    if crs is not None:  # in place: rioxarray's default deep-copies the data
        da.rio.write_crs(crs, inplace=True)
    return da.rio.write_transform(transform, inplace=True)


def warp(data: np.ndarray, src: Grid, dst: Grid, out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear resampling of (C, h, w) float32 ``data`` on the north-up grid ``src`` onto ``dst`` (the same CRS, the
    same extent within a pixel: see ``mismatch``) -> (C, H, W) float32, written into ``out`` when given.

    ``data`` itself (or a copy into ``out``) when the grids are the same.
    """
    if same(src, dst):
        if out is None:
            return data
        out[...] = data
        return out
    out = np.empty((data.shape[0], *dst[2]), dtype=np.float32) if out is None else out  # (C, H, W)
    out[...] = np.nan  # the padded source covers every target pixel; NaN shows any it would not
    crs, st, _ = src
    padded = np.pad(data, ((0, 0), (EDGE_PAD, EDGE_PAD), (EDGE_PAD, EDGE_PAD)), mode="edge")  # (C, h + 4, w + 4)
    padded_transform = Affine(st.a, 0, st.c - EDGE_PAD * st.a, 0, st.e, st.f - EDGE_PAD * st.e)
    # No nodata declared on either side: GDAL's fast path, and NaN spreads through the weights like any value.
    reproject(padded, out, src_transform=padded_transform, src_crs=crs or _PIXEL_GRID, dst_transform=dst[1],
              dst_crs=crs or _PIXEL_GRID, resampling=Resampling.bilinear, src_nodata=None, dst_nodata=None,
              init_dest_nodata=False, XSCALE=1, YSCALE=1)
    return out
