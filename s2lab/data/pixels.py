"""One raster file's pixels, read when used: its header opened by rioxarray, its digital numbers as reflectance.

``open_header`` opens a file's header only (lazily, nodata masked as NaN); ``lazy`` turns it into an s2lab
``(band, y, x)`` array whose pixels are read from disk when indexed, only the indexed part, through ``Pixels``:
integer digital numbers become reflectance, (DN + offset) / 10000 (``s2lab.data.dn``), and a damaged file's read
error becomes a ``RasterError`` naming the file. No file stays open between reads. ``s2lab.data.raster`` builds
scenes from these.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rioxarray.exceptions import RioXarrayError
from xarray.backends import BackendArray
from xarray.core import indexing

from s2lab.data import grids
from s2lab.data.dn import DN_DTYPES, DN_SCALE, dn_offsets


class RasterError(ValueError):
    """A raster input that cannot be read, selected or written; the message names what and why."""


class Pixels(BackendArray):
    """One file's (C, H, W) bands as float32, read from disk when indexed, only the indexed part: digital numbers
    plus ``offset`` (C,) divided by ``scale``, nodata (GDAL's mask) as NaN, a failed read raised as a
    ``RasterError``. Each read opens the file and closes it again, so no file stays open while the array waits."""

    def __init__(self, path: Path, shape: tuple[int, int, int], scale: float, offset: np.ndarray):
        self.path, self.shape, self.scale, self.dtype = path, shape, np.float32(scale), np.dtype(np.float32)
        self.offset = np.asarray(offset, dtype=np.float32)  # (C,) DN

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self.read)

    def read(self, key: tuple = (slice(None),) * 3) -> np.ndarray:
        """The values at ``key``: one int, slice or integer array per axis (outer indexing)."""
        try:
            with open_header(self.path) as raw:
                if raw.shape != self.shape:
                    raise RasterError(f"{self.path} changed since it was opened: {raw.shape}, was {self.shape}")
                values = np.asarray(raw.variable[key].values, dtype=np.float32)  # a fresh array: nothing is cached
        except RasterioError as err:
            detail = err.__cause__ or err  # rasterio keeps GDAL's own message in the cause
            raise RasterError(f"{self.path} could not be read (truncated or corrupt file?): {detail}") from None
        if self.offset.any():
            offset = self.offset[key[0]]  # a scalar where the band axis was indexed by one int
            values += offset.reshape((-1,) + (1,) * (values.ndim - 1)) if offset.ndim else offset
        if self.scale != 1:
            values /= self.scale
        return values


def open_header(path: Path) -> xr.DataArray:
    """The file as rioxarray opens it: lazily, nodata masked as NaN, no coordinates (``grids.build`` makes them)."""
    try:
        with warnings.catch_warnings():  # a file without georeference is read on the identity grid, quietly
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            raw = rioxarray.open_rasterio(path, masked=True, cache=False, parse_coordinates=False)
    except (RasterioError, RioXarrayError, ValueError) as err:
        raise RasterError(f"{path} is not a readable raster (expected a GeoTIFF): {err}") from None
    if not isinstance(raw, xr.DataArray):  # the subdatasets of an HDF5 or NetCDF file
        raise RasterError(f"{path} is not a readable raster (expected a GeoTIFF): it holds subdatasets")
    return raw


def _offsets(raw: xr.DataArray, path: Path, scale: float, given: float | None) -> tuple[np.ndarray, str]:
    """(C,) DN offsets of ``raw``'s bands and their origin: none for floats, ``given`` if any, else the file's."""
    count = raw.sizes["band"]
    if scale == 1.0:
        return np.zeros(count, dtype=np.float32), "none"
    if given is not None:
        return np.full(count, given, dtype=np.float32), "given"
    try:
        return dn_offsets(raw.attrs, count)
    except ValueError as err:
        raise RasterError(f"{path}: {err}") from None


def lazy(raw: xr.DataArray, path: Path, names: Sequence[str], reflectance: bool, dn_offset: float | None,
          **attrs: Any) -> xr.DataArray:
    """``raw`` (C, H, W) as an s2lab array named ``names``, its pixels not read yet; ``raw``'s file closed.

    attrs ``dn_offset`` (one per band) and ``dn_offset_from`` say what was added to the digital numbers."""
    raw.close()  # the header is all it needs: the pixels open the file again when they are read
    scale = DN_SCALE if reflectance and raw.encoding["rasterio_dtype"] in DN_DTYPES else 1.0
    offset, origin = _offsets(raw, path, scale, dn_offset)
    attrs = {"source": str(path), "source_files": (str(path.resolve()),), "dn_scale": scale,
             "dn_offset": tuple(float(o) for o in offset), "dn_offset_from": origin, **attrs}
    pixels = indexing.LazilyIndexedArray(Pixels(path, raw.shape, scale, offset))  # (C, H, W), nothing read yet
    return grids.build(pixels, names, grids.grid_of(raw), attrs=attrs)
