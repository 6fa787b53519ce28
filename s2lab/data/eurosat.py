"""EuroSAT MS: 27,000 Sentinel-2 L1C scenes of 64 x 64 px in 10 land-use classes, read from its own folders.

The dataset (Helber et al. 2019) ships one 13-band uint16 GeoTIFF per image, ``<ClassName>/<ClassName>_<n>.tif``,
under a folder that depends on the zip it came from: ``EuroSAT_MS/`` (Zenodo) or
``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/`` (the authors' original ``EuroSATallBands.zip``).
Both are found under ``settings.data_dir("eurosat")``; ``s2lab.data.download.fetch("eurosat")`` puts them there.

The files carry no band descriptions, and their band order is not ESA's: B8A comes last
(B01 ... B08, B09, B10, B11, B12, B8A; see phelber/EuroSAT issue 7 and torchgeo pull request 2480).
``EUROSAT_FILE_BANDS`` holds that order; a file that does have band descriptions is read by them.

No EuroSAT ships with s2lab: without it, ``eurosat_available()`` is False and the notebooks use the synthetic
EuroSAT-like set of ``s2lab.data.synthetic``, labelled synthetic. Shapes: B images, C bands, H = W = 64.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioError

from s2lab import settings
from s2lab.data.dn import DN_DTYPES, DN_SCALE
from s2lab.data.raster import RasterError
from s2lab.sensors import S2_10BANDS, band_names

EUROSAT_CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)
"""The 10 classes; label k is ``EUROSAT_CLASSES[k]`` (alphabetical, as torchgeo numbers them)."""

EUROSAT_FILE_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)  # fmt: skip
"""The band order inside EuroSAT MS files: ESA's order with B8A moved to the end."""

EUROSAT_SIZE = 64
"""Height and width of every EuroSAT image, pixels."""

_NESTINGS = (
    Path(),
    Path("EuroSAT_MS"),
    Path("EuroSATallBands"),
    Path("ds/images/remote_sensing/otherDatasets/sentinel_2/tif"),
    Path("EuroSATallBands/ds/images/remote_sensing/otherDatasets/sentinel_2/tif"),
)
_NUMBER = re.compile(r"_(\d+)$")


def eurosat_root(root: str | os.PathLike | None = None) -> Path | None:
    """The folder that holds the class folders, or None when there is no EuroSAT.

    Args:
        root: a folder holding EuroSAT as unzipped (either zip's nesting); default
            ``settings.data_dir("eurosat")``.
    """
    try:
        base = settings.data_dir("eurosat", root)
    except FileNotFoundError:
        return None
    if base is None:
        return None
    return next((base / n for n in _NESTINGS if any((base / n / c).is_dir() for c in EUROSAT_CLASSES)), None)


def eurosat_available(root: str | os.PathLike | None = None) -> bool:
    """Whether EuroSAT MS class folders are found under ``root`` (default ``settings.data_dir("eurosat")``)."""
    return eurosat_root(root) is not None


def load_eurosat(
    root: str | os.PathLike | None = None,
    *,
    bands: Sequence[str] = S2_10BANDS,
    limit_per_class: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Read EuroSAT MS images as reflectance tensors with their class labels.

    All 27,000 images at 10 bands take 4.4 GB as float32; ``limit_per_class`` reads a subset.

    Args:
        root: the EuroSAT folder (either zip's nesting); default ``settings.data_dir("eurosat")``.
        bands: bands to return, in this order (any of the 13).
        limit_per_class: read at most this many images of each class (default: all).
        generator: draws which images make up each class's subset; None takes the lowest-numbered ones.

    Returns:
        ``(x, y, classes)``: x (B, C, 64, 64) float32 reflectance (DN / 10000), ordered by class and then by
        file number; y (B,) int64 indices into ``classes``; classes ``EUROSAT_CLASSES``.

    Raises:
        FileNotFoundError: no EuroSAT under ``root``; the message says how to get it.
        ValueError: a bad ``limit_per_class`` or an unknown band name.
        RasterError: a file that is not a 64 x 64 EuroSAT image or lacks a band asked for.
    """
    bands = band_names(bands)
    if limit_per_class is not None and (not isinstance(limit_per_class, int) or limit_per_class < 1):
        raise ValueError(f"limit_per_class must be a positive int or None, got {limit_per_class!r}")
    folder = eurosat_root(root)
    if folder is None:
        raise FileNotFoundError(
            f"no EuroSAT MS class folders ({', '.join(EUROSAT_CLASSES[:2])}, ...) under "
            f"{root or settings.data_dir('eurosat') or 'S2LAB_EUROSAT_DIR / S2LAB_DATA_DIR/eurosat'}; get it with "
            "s2lab.data.download.fetch('eurosat') or unzip EuroSAT_MS.zip there"
        )
    chosen = [
        (path, k) for k, name in enumerate(EUROSAT_CLASSES) for path in _pick(folder / name, limit_per_class, generator)
    ]
    if not chosen:
        raise FileNotFoundError(f"the EuroSAT class folders under {folder} hold no .tif images")
    x = np.empty((len(chosen), len(bands), EUROSAT_SIZE, EUROSAT_SIZE), dtype=np.float32)  # (B, C, H, W)
    for i, (path, _) in enumerate(chosen):
        x[i] = _read(path, bands)
    y = torch.tensor([k for _, k in chosen], dtype=torch.long)  # (B,)
    return torch.from_numpy(x), y, EUROSAT_CLASSES


def _pick(class_folder: Path, limit: int | None, generator: torch.Generator | None) -> list[Path]:
    """The images of one class folder sorted by number, or a subset of ``limit`` of them."""
    if not class_folder.is_dir():
        return []
    files = sorted(
        (f for f in class_folder.iterdir() if f.suffix.lower() in (".tif", ".tiff")),
        key=lambda f: (int(m.group(1)) if (m := _NUMBER.search(f.stem)) else -1, f.name),
    )
    if limit is None or limit >= len(files):
        return files
    if generator is None:
        return files[:limit]
    keep = torch.randperm(len(files), generator=generator)[:limit].sort().values
    return [files[i] for i in keep.tolist()]


def _read(path: Path, bands: Sequence[str]) -> np.ndarray:
    """(C, 64, 64) float32 reflectance of ``bands`` from one EuroSAT file."""
    try:
        with rasterio.open(path) as src:
            if (src.height, src.width) != (EUROSAT_SIZE, EUROSAT_SIZE):
                raise RasterError(f"{path} is {src.height} x {src.width} px; EuroSAT images are 64 x 64")
            names = _file_bands(src, path)
            missing = [b for b in bands if b not in names]
            if missing:
                raise RasterError(f"{path} has no band {', '.join(missing)}; it holds {', '.join(names)}")
            data = src.read([names.index(b) + 1 for b in bands]).astype(np.float32)
            scale = DN_SCALE if src.dtypes[0] in DN_DTYPES else 1.0
    except RasterioError as error:
        raise RasterError(f"{path} is not a readable GeoTIFF: {error}") from None
    return data / np.float32(scale)


def _file_bands(src: rasterio.DatasetReader, path: Path) -> list[str]:
    """Band names of a file: its band descriptions, or ``EUROSAT_FILE_BANDS`` for 13 undescribed bands."""
    if all(src.descriptions):
        try:
            return list(band_names(src.descriptions))
        except ValueError as error:
            raise RasterError(f"{path} has band descriptions that name no Sentinel-2 band: {error}") from None
    if src.count == len(EUROSAT_FILE_BANDS):
        return list(EUROSAT_FILE_BANDS)
    raise RasterError(f"{path} holds {src.count} bands without names; EuroSAT MS files hold 13")
