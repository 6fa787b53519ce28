"""Sentinel-2 digital numbers as reflectance: the scale, the processing-baseline offset, a check for a missing offset.

Sentinel-2 products store reflectance as integers: reflectance = (DN + offset) / 10000. Up to processing baseline
03.01 the offset is 0. From baseline 04.00 (products processed from 25 January 2022) it is -1000, so that dark
pixels are not clipped at 0: ``RADIO_ADD_OFFSET`` in an L1C product's metadata, ``BOA_ADD_OFFSET`` in an L2A one.
A GeoTIFF made from such a product keeps the offset only where its maker wrote it down; ``dn_offsets`` reads it from
what rioxarray exposes of a file's metadata (its ``attrs``):

- a tag ``RADIO_ADD_OFFSET`` or ``BOA_ADD_OFFSET``: one number for every band, or one per band (comma-separated);
- else GDAL's band offset and scale (``add_offset``, ``scale_factor``; ``gdal_translate`` keeps them) where the
  scale is 1/10000: the offset is ``add_offset / scale_factor`` DN.

A file with neither is read with offset 0, as it must be for every file from before 04.00: OSCD (2015-18),
BigEarthNet v1 and EuroSAT (2017-18) and the embedded scene (whose minimum DNs, 0 in B10 and 3 in B12, are
impossible with the offset). ``offset_warning`` says when offset 0 looks wrong: a file 0.1 too bright has no
reflectance below 0.1, while almost every scene has some in its darkest band (water and shadow in the near and
shortwave infrared, the cirrus band B10 everywhere), so the darkest band's 1st-percentile DN at 1000 or more is
suspicious.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

# Integer types that hold Sentinel-2 digital numbers (reflectance x 10000); other types are left as they are.
DN_DTYPES = ("uint16", "int16")
DN_SCALE = 10000.0
OFFSET_TAGS = ("RADIO_ADD_OFFSET", "BOA_ADD_OFFSET")  # L1C, L2A
SUSPECT_DN = 1000  # a darkest-band 1st percentile at or above this, with no offset, suggests a missing one
WHOLE_PX = 2**22  # the check reads a band of at most this many pixels whole (4 M: 16 MiB of float32) ...
STRIPS, STRIP_ROWS = 16, 8  # ... and a larger one in 16 strips of 8 rows: a few reads whatever the size


def _numbers(value: object, what: str) -> np.ndarray:
    """A tag's value (a number, a sequence, or a string of numbers separated by commas or spaces) as float64."""
    text = value.replace(",", " ").split() if isinstance(value, str) else value
    try:
        numbers = np.atleast_1d(np.asarray(text, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{what} is {value!r}; expected a number of DN, e.g. -1000") from None
    if numbers.ndim != 1 or not numbers.size or not np.isfinite(numbers).all():
        raise ValueError(f"{what} is {value!r}; expected finite numbers of DN, e.g. -1000")
    return numbers


def dn_offsets(attrs: Mapping, count: int) -> tuple[np.ndarray, str]:
    """The DN offset of each of a file's ``count`` bands, from the metadata rioxarray exposes.

    Args:
        attrs: the ``attrs`` of ``rioxarray.open_rasterio`` (dataset tags, the first band's tags, GDAL's
            ``scale_factor`` and ``add_offset``).
        count: the file's band count C.

    Returns:
        (C,) float32 offsets in DN and where they came from: the tag's name, "gdal offset", or "none" (zeros).

    Raises:
        ValueError: a tag that is not a number, or not one per band.
    """
    for tag in OFFSET_TAGS:
        if tag in attrs:
            numbers = _numbers(attrs[tag], f"the {tag} tag")
            if numbers.size not in (1, count):
                raise ValueError(f"the {tag} tag holds {numbers.size} values for {count} bands; expected 1 or {count}")
            return np.broadcast_to(numbers, (count,)).astype(np.float32), tag
    scale, add = attrs.get("scale_factor", 1.0), attrs.get("add_offset", 0.0)
    if np.ndim(scale) == 0 and np.ndim(add) == 0 and add != 0 and abs(scale * DN_SCALE - 1) < 1e-6:
        return np.full(count, round(add / scale), dtype=np.float32), "gdal offset"
    return np.zeros(count, dtype=np.float32), "none"


def _first_percentiles(image: xr.DataArray) -> np.ndarray:
    """(C,) the 1st-percentile DN of each band of ``image`` (band, y, x); NaN for a band without a valid pixel.

    An image of at most ``WHOLE_PX`` pixels a band is read whole; a larger one (a lazily read file) only in
    ``STRIPS`` strips of ``STRIP_ROWS`` rows spread over its height, one read each.
    """
    H, W = image.sizes["y"], image.sizes["x"]
    if H * W <= WHOLE_PX:
        sample = np.asarray(image.values, dtype=np.float64)  # (C, H, W)
    else:
        starts = np.unique(np.linspace(0, H - STRIP_ROWS, STRIPS).round().astype(int))
        sample = np.concatenate([np.asarray(image.isel(y=slice(s, s + STRIP_ROWS)).values, dtype=np.float64)
                                 for s in starts], axis=1)  # (C, STRIPS * STRIP_ROWS, W)
    valid = np.isfinite(sample).any(axis=(1, 2))
    p1 = np.full(len(sample), np.nan)
    p1[valid] = [np.nanpercentile(band, 1) for band in sample[valid]]
    return p1 * image.attrs["dn_scale"]


def offset_warning(images: Sequence[xr.DataArray]) -> str | None:
    """One line when an input read from integer DN with no offset found or given looks 0.1 too bright, else None.

    Args:
        images: the files of one input, each (band, y, x) as read (``s2lab.data.raster.file_arrays``: every band
            of the input, not only those a model takes, so that the cirrus band B10 counts where it is there).

    Returns:
        A line naming the input, its darkest band and that band's 1st-percentile DN, when that DN is
        ``SUSPECT_DN`` or more and no file had an offset; None otherwise (floats, an offset found or given).
    """
    unchecked = [im for im in images if im.attrs.get("dn_scale", 1.0) != 1.0 and im.attrs["dn_offset_from"] == "none"]
    if not unchecked or len(unchecked) < len(images):
        return None
    p1 = np.concatenate([_first_percentiles(im) for im in unchecked])  # (C,) over every file's bands
    names = [str(b) for im in unchecked for b in im["band"].values]
    if np.isnan(p1).all():
        return None
    darkest = int(np.nanargmin(p1))
    if p1[darkest] < SUSPECT_DN:
        return None
    source = unchecked[0].attrs["source"] if len(unchecked) == 1 else str(Path(unchecked[0].attrs["source"]).parent)
    return (f"{source}: its darkest band, {names[darkest]}, has a 1st-percentile DN of {p1[darkest]:.0f} "
            f"(>= {SUSPECT_DN}) and no DN offset was found or given; if it comes from processing baseline 04.00 "
            "or later (products processed from 25 January 2022), pass --dn-offset -1000 (a bright desert without "
            "its B10 band can also do this)")
