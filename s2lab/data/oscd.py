"""OSCD, the Onera Satellite Change Detection dataset, read from its own folder layout.

Caye Daudt, Le Saux, Boulch, Gousseau, "Urban change detection for multispectral Earth observation using
convolutional neural networks", IGARSS 2018. Sentinel data: modified Copernicus data; labels CC BY-NC-SA.

    <root>/Onera Satellite Change Detection dataset - Images/
        train.txt, test.txt                      comma-separated city names
        <city>/imgs_1/*_B01.tif ... *_B8A.tif    before: one GeoTIFF per band at 10 / 20 / 60 m, EPSG:4326
        <city>/imgs_2/...                        after, the same
        <city>/dates.txt                         "date_1: 20161130" / "date_2: 20170829"
    <root>/Onera Satellite Change Detection dataset - Train Labels/<city>/cm/<city>-cm.tif

Quirks handled here: the dataset README says the label GeoTIFF holds 0/1 but the files hold 1 = no change,
2 = change (both are accepted and ``label_encoding`` says which was found); the label GeoTIFF has no
georeference, so it is put on the before image's grid, whose size it has; in a few cities the after
image has a slightly different pixel count than the before image (abudhabi: 795 x 782 vs 799 x 785) over
the same extent, so the after image is resampled onto the before grid (the dataset's README: "the older
images with resolution of 10m per pixel is used").
"""

from __future__ import annotations

import datetime
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from s2lab.data.pairs import ChangePair
from s2lab.data.raster import RasterError, match_grid, open_raster, same_grid
from s2lab.sensors import S2_10BANDS
from s2lab.settings import data_dir

IMAGES = "Onera Satellite Change Detection dataset - Images"
LABELS = ("Onera Satellite Change Detection dataset - Train Labels", "Onera Satellite Change Detection dataset - Test Labels")
SPLITS = ("train", "test")
# Label values found in the file -> (no-change value, change value) and the name recorded in label_encoding.
ENCODINGS = {"1/2": (1, 2), "0/1": (0, 1), "0/255": (0, 255)}


@dataclass(frozen=True, kw_only=True)
class OSCDPair(ChangePair):
    """One OSCD city: before (imgs_1) and after (imgs_2) reflectance on imgs_1's 10 m grid (EPSG:4326), and its change
    label on that grid (None for the test cities, published without labels). ``synthetic`` is always False."""

    city: str  # the city's folder name, e.g. "bercy"
    dates: tuple[datetime.date, datetime.date] | None  # acquisition dates (before, after) from dates.txt
    label_encoding: str | None  # what the label file held: "1/2" (1 = no change, 2 = change), "0/1" or "0/255"


def _is_images_folder(folder: Path) -> bool:
    return (folder / "train.txt").is_file() or any((c / "imgs_1").is_dir() for c in folder.iterdir() if c.is_dir())


def images_dir(root: str | os.PathLike | None = None) -> Path:
    """The OSCD Images folder under ``root`` (or under ``data_dir("oscd")``); ``root`` may be that folder itself.

    Raises:
        FileNotFoundError: no OSCD data was found; the message says how to point s2lab at it.
    """
    base = data_dir("oscd", root)
    if base is None:
        raise FileNotFoundError(
            f"OSCD not found: pass root= or set S2LAB_OSCD_DIR (or S2LAB_DATA_DIR holding oscd/) to the folder "
            f"that holds {IMAGES!r}"
        )
    if (base / IMAGES).is_dir():
        return base / IMAGES
    if _is_images_folder(base):
        return base
    raise FileNotFoundError(f"{base} holds neither {IMAGES!r} nor OSCD city folders with imgs_1/ and imgs_2/")


def _listed(images: Path, split: str) -> list[str]:
    path = images / f"{split}.txt"
    if not path.is_file():
        return []
    return [c.strip() for c in re.split(r"[,\s]+", path.read_text()) if c.strip()]


def oscd_cities(
    root: str | os.PathLike | None = None, *, split: str | None = None, labelled: bool | None = None
) -> list[str]:
    """Cities present on disk (both ``imgs_1`` and ``imgs_2``), in the order of train.txt then test.txt.

    OSCD publishes the images of its 10 test cities without their change labels: such a city is unlabelled
    imagery (pretraining, reconstruction, unlabelled change maps), never an error.

    Args:
        root: the OSCD folder (default ``data_dir("oscd")``).
        split: "train" or "test" for the cities that file lists; None for every city present, listed
            ones first, then any other city folder by name.
        labelled: True for the cities with a change label only, False for those without, None for both.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)} or None")
    images = images_dir(root)
    present = sorted(c.name for c in images.iterdir() if (c / "imgs_1").is_dir() and (c / "imgs_2").is_dir())
    if split is not None:
        cities = [c for c in _listed(images, split) if c in present]
    else:
        listed = [c for s in SPLITS for c in _listed(images, s)]
        ordered = list(dict.fromkeys(c for c in listed if c in present))
        cities = ordered + [c for c in present if c not in ordered]
    if labelled is None:
        return cities
    return [c for c in cities if (_label_path(images, c) is not None) == labelled]


def _dates(city_dir: Path) -> tuple[datetime.date, datetime.date] | None:
    path = city_dir / "dates.txt"
    if not path.is_file():
        return None
    found = dict(re.findall(r"(date_[12])\s*:\s*(\d{8})", path.read_text()))
    if set(found) != {"date_1", "date_2"}:
        raise ValueError(f"{path} does not hold 'date_1: YYYYMMDD' and 'date_2: YYYYMMDD'")
    before, after = (datetime.datetime.strptime(found[k], "%Y%m%d").date() for k in ("date_1", "date_2"))
    return before, after


def _label_path(images: Path, city: str) -> Path | None:
    for name in LABELS:
        folder = images.parent / name / city / "cm"
        if (folder / f"{city}-cm.tif").is_file():
            return folder / f"{city}-cm.tif"
        found = sorted(folder.glob("*.tif")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def read_label(path: Path, grid: xr.DataArray) -> tuple[xr.DataArray, str]:
    """The label as (H, W) uint8 0/1 on ``grid``'s (y, x) grid, and the encoding found in the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # OSCD labels carry no georeference
            with rasterio.open(path) as src:
                raw = src.read(1)
    except RasterioError as err:
        raise RasterError(f"{path} is not a readable label GeoTIFF: {err}") from None
    H, W = grid.sizes["y"], grid.sizes["x"]
    if raw.shape != (H, W):
        raise ValueError(f"label {path} is {raw.shape[0]} x {raw.shape[1]} px, the before image {H} x {W}")
    values = set(np.unique(raw).tolist())
    encoding = next((name for name, pair in ENCODINGS.items() if values <= set(pair)), None)
    if encoding is None:
        raise ValueError(f"label {path} holds values {sorted(values)}; expected 1/2, 0/1 or 0/255")
    change = ENCODINGS[encoding][1]
    label = xr.DataArray(
        (raw == change).astype(np.uint8),
        dims=("y", "x"),
        coords={"y": grid["y"], "x": grid["x"], "spatial_ref": grid["spatial_ref"]},
        attrs={"source": str(path), "label_encoding": encoding, "meaning": "1 = change, 0 = no change"},
        name="change",
    )
    return label, encoding


def load_oscd_city(
    city: str, *, root: str | os.PathLike | None = None, bands: Sequence[str] = S2_10BANDS
) -> OSCDPair:
    """One OSCD city as a before / after pair on one 10 m grid, with its change label.

    Args:
        city: the city's folder name, one of ``oscd_cities(root)``.
        root: the OSCD folder (default ``data_dir("oscd")``).
        bands: bands to load, in this order (default the 10 bands of S2MAE).

    Returns:
        ``OSCDPair`` with before and after (C, H, W) reflectance on imgs_1's 10 m grid, the (H, W) label
        (None for a city without one), the dates and the label encoding found.

    Raises:
        FileNotFoundError: no OSCD data. ValueError: unknown city, or a label that does not fit the images.
        RasterError: unreadable band files, or an after image that does not cover the before image.
    """
    images = images_dir(root)
    city_dir = images / city
    if not (city_dir / "imgs_1").is_dir() or not (city_dir / "imgs_2").is_dir():
        raise ValueError(f"no OSCD city {city!r} in {images}; cities present: {', '.join(oscd_cities(root))}")
    dates = _dates(city_dir)
    before = open_raster(city_dir / "imgs_1", bands=bands)
    after = open_raster(city_dir / "imgs_2", bands=bands)
    if not same_grid(before, after):
        try:
            after = match_grid(after, before)
        except RasterError as err:
            raise RasterError(
                f"{city}: imgs_2 ({after.sizes['y']} x {after.sizes['x']} px) cannot be put on the imgs_1 grid "
                f"({before.sizes['y']} x {before.sizes['x']} px): {err}"
            ) from None
        after.attrs["resampled_to"] = "imgs_1 grid"
    for da, time, date in ((before, "before", dates and dates[0]), (after, "after", dates and dates[1])):
        da.attrs.update(city=city, time=time, synthetic=False)
        if date:
            da.attrs["date"] = date.isoformat()
    label, encoding = None, None
    label_path = _label_path(images, city)
    if label_path is not None:
        label, encoding = read_label(label_path, before)
    when = f", {dates[0]} -> {dates[1]}" if dates else ""
    description = (f"real Sentinel-2 pair from OSCD ({city}{when}, label {encoding})" if label is not None
                   else f"real Sentinel-2 pair from OSCD ({city}{when}), no change label (an OSCD test city)")
    return OSCDPair(name=f"OSCD {city}", before=before, after=after, label=label, synthetic=False,
                    description=description, city=city, dates=dates, label_encoding=encoding)
