"""Results back out as rasters: values put on an input's grid (``from_numpy``), GeoTIFFs written whole
(``write_geotiff``) or a band of rows at a time (``RowWriter``).

A model returns a (C, H, W) numpy array or torch tensor computed from a ``(band, y, x)`` raster that
``s2lab.data.raster.open_raster`` read. ``from_numpy`` gives it that raster's grid (CRS, transform, coordinates) and
``source_files`` back; ``write_geotiff`` writes it with rioxarray (``da.rio.to_raster``) to a temporary file beside
the target and renames that over the target (``s2lab.files.atomic_path``), so no partial file is ever left, and
refuses to overwrite a file the data was read from. ``RowWriter`` writes a GeoTIFF larger than memory (a full
Sentinel-2 tile's reconstruction is 4.8 GB) as its rows are computed, with rasterio's windowed writes, the same
checks and the same atomic rename (``check_target``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rioxarray.exceptions import RioXarrayError

import rasterio
from rasterio.windows import Window

from s2lab.data import grids
from s2lab.data.raster import RasterError
from s2lab.files import atomic_path, check_output


def _to_numpy(data: Any) -> np.ndarray:
    if isinstance(data, xr.DataArray):
        return np.asarray(data.values)
    if hasattr(data, "detach"):  # a torch tensor, without importing torch here
        return data.detach().cpu().numpy()
    return np.asarray(data)


def _band_names(obj: Any, count: int) -> list[str] | None:
    if isinstance(obj, xr.DataArray) and "band" in obj.coords and obj["band"].size == count:
        return [str(b) for b in np.atleast_1d(obj["band"].values)]
    return None


def from_numpy(array: Any, like: xr.DataArray, band_names: Sequence[str] | None = None) -> xr.DataArray:
    """Put a (C, H, W) array (numpy or a torch tensor) on ``like``'s grid.

    Args:
        array: (C, H, W) values, H and W equal to ``like``'s.
        like: the array whose CRS, transform and coordinates the result takes.
        band_names: C names; default: ``like``'s band names when it has C bands, else band1, band2, ...

    Returns:
        (C, H, W) float32 ``(band, y, x)`` with ``like``'s georeference and ``source_files``.
    """
    data = _to_numpy(array)
    if data.ndim != 3:
        raise RasterError(f"expected a (C, H, W) array, got shape {data.shape}")
    grid = grids.grid_of(like)
    if data.shape[1:] != grid[2]:
        raise RasterError(f"array of H x W {data.shape[1:]} does not match the grid of like, {grid[2]}")
    names = list(band_names) if band_names is not None else _band_names(like, data.shape[0])
    names = names or [f"band{i + 1}" for i in range(data.shape[0])]
    if len(names) != data.shape[0]:
        raise RasterError(f"{len(names)} band names for an array of {data.shape[0]} bands")
    attrs = {k: like.attrs[k] for k in ("source", "source_files") if k in like.attrs}
    return grids.build(data.astype(np.float32, copy=False), names, grid, attrs=attrs)


def _georeference(da: Any, like: xr.DataArray | None, shape: tuple[int, int]) -> tuple[CRS | None, Affine | None]:
    for obj in (da, like):
        if isinstance(obj, xr.DataArray) and obj.rio.crs is not None:
            if (obj.sizes["y"], obj.sizes["x"]) != shape:
                raise RasterError(
                    f"like has a grid of {obj.sizes['y']} x {obj.sizes['x']} px; the data is {shape[0]} x {shape[1]}"
                )
            return obj.rio.crs, obj.rio.transform()
    if isinstance(da, xr.DataArray) and "x" in da.coords and "y" in da.coords:
        return None, da.rio.transform()
    return None, None


def write_geotiff(
    da: Any, path: str | os.PathLike, *, like: xr.DataArray | None = None, dtype: str | np.dtype | None = None
) -> Path:
    """Write a (band, y, x) or (y, x) raster as a GeoTIFF, atomically.

    The georeference is ``da``'s, or ``like``'s when ``da`` has no CRS (a numpy array or torch tensor
    computed from ``like``). Band names become the band descriptions. The file is written to a temporary
    file in the same folder and renamed over ``path``, so no partial file is ever left.

    Args:
        da: (C, H, W) or (H, W): a DataArray, numpy array or torch tensor.
        path: the GeoTIFF to write; must not be one of the files ``da`` or ``like`` was read from.
        like: an array with the georeference (and band names) to use when ``da`` has none.
        dtype: the file's data type (default float32, NaN as nodata); an integer type rounds and clips
            the values to its range and writes NaN as 0, then declared as nodata.

    Returns:
        The path written.
    """
    path = Path(path).expanduser()
    if isinstance(da, xr.DataArray) and da.dims not in (("band", "y", "x"), ("y", "x")):
        raise RasterError(f"expected dims (band, y, x) or (y, x), got {da.dims}")
    data = _to_numpy(da)
    data = data[None] if data.ndim == 2 else data
    if data.ndim != 3:
        raise RasterError(f"expected a (C, H, W) or (H, W) array, got shape {data.shape}")
    check_target(path, da, like)
    crs, transform = _georeference(da, like, data.shape[1:])
    names = _band_names(da, data.shape[0]) or _band_names(like, data.shape[0])
    out_dtype = np.dtype(dtype or np.float32)
    if np.issubdtype(out_dtype, np.integer):
        info = np.iinfo(out_dtype)
        nodata: float | None = 0 if np.isnan(data).any() else None
        data = np.clip(np.rint(np.nan_to_num(data, nan=0.0)), info.min, info.max).astype(out_dtype)
    else:
        nodata, data = float("nan"), data.astype(out_dtype, copy=False)
    out = xr.DataArray(data, dims=("band", "y", "x"), attrs={"long_name": tuple(names)} if names else {})  # (C, H, W)
    if crs is not None:
        out.rio.write_crs(crs, inplace=True)
    if transform is not None:
        out.rio.write_transform(transform, inplace=True)
    out.rio.write_nodata(nodata, encoded=False, inplace=True)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            if crs is None and transform is None:  # written without georeference on purpose
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
            out.rio.to_raster(tmp, driver="GTiff", compress="deflate", recalc_transform=False)
    except (RasterioError, RioXarrayError) as err:
        raise RasterError(f"could not write {path}: {err}") from None
    return path


GDAL_CACHE_BYTES = 256 * 2**20  # GDAL's block cache while a RowWriter is open (reads of the input included)


class RowWriter:
    """A GeoTIFF written a band of rows at a time, on ``like``'s grid, atomically: the file appears, whole, when
    the ``with`` block ends without an error; on an error nothing is left and what was at ``path`` is kept.

    Args:
        path: the GeoTIFF to write; must not be a file ``like`` was read from.
        like: (band, y, x) or (y, x) DataArray whose grid, CRS and transform the file takes.
        names: the C band names (band descriptions).
        dtype: the file's data type; NaN is its nodata for floats.
        block: None for strips of 16 rows (rows written in order complete them: nothing is held back), or the side
            of square tiles (a cloud-optimised layout; write whole rows of tiles at a time).

    GDAL's block cache is held to ``GDAL_CACHE_BYTES`` while the file is open (by default GDAL takes 5 % of the
    machine's memory), so memory stays bounded however large the file.
    """

    def __init__(self, path: str | os.PathLike, like: xr.DataArray, names: list[str], dtype: str = "float32",
                 block: int | None = None):
        self.path, self.like, self.names, self.dtype = Path(path).expanduser(), like, list(names), np.dtype(dtype)
        self.block = block
        check_target(self.path, like)
        self._stack = ExitStack()

    def __enter__(self) -> RowWriter:
        H, W = self.like.sizes["y"], self.like.sizes["x"]
        profile = {"driver": "GTiff", "count": len(self.names), "height": H, "width": W, "dtype": self.dtype.name,
                   "nodata": float("nan") if self.dtype.kind == "f" else None, "compress": "deflate",
                   "BIGTIFF": "IF_SAFER"}
        profile |= ({"tiled": False, "blockysize": 16} if self.block is None else
                    {"tiled": True, "blockxsize": self.block, "blockysize": self.block})
        crs = self.like.rio.crs
        if crs is not None:
            profile |= {"crs": crs, "transform": self.like.rio.transform()}
        self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES))
        tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self.file = self._stack.enter_context(rasterio.open(tmp, "w", **profile))
        except RasterioError as err:
            self._stack.close()
            raise RasterError(f"could not write {self.path}: {err}") from None
        for i, name in enumerate(self.names):
            self.file.set_band_description(i + 1, name)
        return self

    def write(self, start: int, values: Any) -> None:
        """Write ``values`` (C, n, W) (or (n, W) for one band; numpy or a CPU tensor) at image rows ``start`` to
        ``start + n``."""
        data = np.asarray(values, dtype=self.dtype)
        data = data[None] if data.ndim == 2 else data
        window = Window(0, start, data.shape[2], data.shape[1])
        try:
            self.file.write(data, window=window)
        except RasterioError as err:
            raise RasterError(f"could not write {self.path}: {err}") from None

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)


def check_target(path: Path, *inputs: Any) -> None:
    """Refuse an output path that is a folder, in a missing or unwritable folder, or one of the inputs' files
    (``s2lab.files.check_output`` on the ``source_files`` of the DataArrays among ``inputs``), as a ``RasterError``."""
    sources = [s for obj in inputs if isinstance(obj, xr.DataArray) for s in obj.attrs.get("source_files", ())]
    try:
        check_output(path, sources)
    except (OSError, ValueError) as err:
        raise RasterError(str(err)) from None
