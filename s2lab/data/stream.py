"""Rasters larger than memory: read a band of rows at a time, written a band of rows at a time, and the limit.

A full Sentinel-2 tile is 10980 x 10980 pixels: 4.8 GB as 10 float32 bands, and reconstructing it in memory would
need three such images. ``s2lab.reconstruct`` and ``s2lab.change`` therefore read a lazily opened raster
(``s2lab.data.raster.open_raster`` reads no pixel before it is asked for) a band of rows at a time
(``s2lab.windows.image_rows``) and hand their finished rows to a ``RowWriter``, which writes them into the output GeoTIFF as they
come; memory then depends on the image's width, not its height.

The memory limit is ``S2LAB_MEMORY_LIMIT_GIB`` (default 3 GiB). Work that would need more is refused before it
starts, in one line that names the image's size and the limit (``check_fits``).

NaN pixels are filled with their band's median over an evenly strided sample of the image (``s2lab.windows``), so
the same image gives the same fill whether it is in memory or read a band of rows at a time.
"""

from __future__ import annotations

import os
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import rasterio
import torch
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from s2lab.data.raster import RasterError
from s2lab.files import atomic_path, check_writable

MEMORY_LIMIT_GIB = 3.0  # default of S2LAB_MEMORY_LIMIT_GIB
GIB = 2**30


def memory_limit() -> float:
    """The memory limit in bytes: ``S2LAB_MEMORY_LIMIT_GIB`` (a positive number) or ``MEMORY_LIMIT_GIB``."""
    text = os.environ.get("S2LAB_MEMORY_LIMIT_GIB", "")
    try:
        gib = float(text) if text else MEMORY_LIMIT_GIB
    except ValueError:
        gib = -1.0
    if not gib > 0:
        raise ValueError(f"S2LAB_MEMORY_LIMIT_GIB={text!r} is not a positive number of GiB (default {MEMORY_LIMIT_GIB})")
    return gib * GIB


def check_fits(need: float, image: str, what: str) -> None:
    """Refuse, in one line, work that needs ``need`` bytes, more than ``memory_limit()``.

    Args:
        need: the bytes the work would hold at once.
        image: the image's size as the user knows it, e.g. "10 x 100000 x 100000 px".
        what: the work, e.g. "reconstructing it in memory".
    """
    limit = memory_limit()
    if need > limit:
        raise RasterError(f"an image of {image} needs about {_bytes(need)} for {what}, over the memory limit of "
                          f"{_bytes(limit)} (S2LAB_MEMORY_LIMIT_GIB); use a smaller image or raise the limit")


def _bytes(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 2**20:.1f} MiB"


def size_text(shape) -> str:
    """(C, H, W) as "C x H x W px"."""
    return " x ".join(str(int(n)) for n in shape) + " px"


class RowWriter:
    """A GeoTIFF written a band of rows at a time, on ``like``'s grid, atomically: the file appears, whole, when
    the ``with`` block ends without an error; on an error nothing is left and what was at ``path`` is kept.

    Args:
        path: the GeoTIFF to write; must not be a file ``like`` was read from.
        like: (band, y, x) or (y, x) DataArray whose grid, CRS and transform the file takes.
        names: the C band names (band descriptions).
        dtype: the file's data type; NaN is its nodata for floats.
    """

    def __init__(self, path: str | os.PathLike, like: xr.DataArray, names: list[str], dtype: str = "float32"):
        self.path, self.like, self.names, self.dtype = Path(path).expanduser(), like, list(names), np.dtype(dtype)
        check_target(self.path, like)
        self._stack = ExitStack()

    def __enter__(self) -> RowWriter:
        H, W = self.like.sizes["y"], self.like.sizes["x"]
        profile = {"driver": "GTiff", "count": len(self.names), "height": H, "width": W, "dtype": self.dtype.name,
                   "nodata": float("nan") if self.dtype.kind == "f" else None, "compress": "deflate",
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "BIGTIFF": "IF_SAFER"}
        crs = self.like.rio.crs
        if crs is not None:
            profile |= {"crs": crs, "transform": self.like.rio.transform()}
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

    def write(self, start: int, values: torch.Tensor | np.ndarray) -> None:
        """Write ``values`` (C, n, W) (or (n, W) for one band) at image rows ``start`` to ``start + n``."""
        data = np.asarray(values, dtype=self.dtype)
        data = data[None] if data.ndim == 2 else data
        window = Window(0, start, data.shape[2], data.shape[1])
        try:
            self.file.write(data, window=window)
        except RasterioError as err:
            raise RasterError(f"could not write {self.path}: {err}") from None

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)


def check_target(path: Path, *inputs) -> None:
    """Refuse an output path that is a folder, in a missing or unwritable folder, or one of the inputs' files."""
    target = path.resolve()
    for obj in inputs:
        sources = obj.attrs.get("source_files", ()) if isinstance(obj, xr.DataArray) else ()
        if any(Path(s).resolve() == target for s in sources):
            raise RasterError(f"refusing to write {path}: it is an input of this raster; choose another path")
    if path.is_dir():
        raise RasterError(f"{path} is a folder; expected a file path ending in .tif")
    if not path.parent.is_dir():
        raise RasterError(f"folder {path.parent} does not exist; create it first")
    try:
        check_writable(path.parent)
    except OSError as err:
        raise RasterError(f"cannot write {path}: its folder {path.parent} is not writable ({err.strerror})") from None
