"""BigEarthNet v1: multi-label Sentinel-2 patches with their Sentinel-1 twins and CORINE land-cover labels.

A BigEarthNet v1 patch covers 1.2 x 1.2 km: 12 Sentinel-2 L2A bands (120 x 120 px at 10 m, 60 x 60 at 20 m,
20 x 20 at 60 m; uint16 reflectance x 10000), the Sentinel-1 patch of the same place (VV and VH backscatter
in dB, 120 x 120 float32) and the CORINE Land Cover 2018 classes present in it, as names of the 43
level-3 classes. Most work uses the 19-class nomenclature of BigEarthNet-MM (Sumbul et al. 2021), which
merges and drops some of the 43 (``to_19``).

Two places hold patches, in the dataset's own layout:

- the 6 real patches inside the ``bigearthnet-common`` package (``EMBEDDED``, the default): its two
  ``.tar.bz2`` archives are read straight from the installed package folder (``tarfile`` + rasterio's
  ``MemoryFile``), without importing the package (its import breaks with ``fastcore>=1.8``);
- a user's BigEarthNet folder found by ``settings.data_dir("bigearthnet")``: patch folders
  ``<patch>/<patch>_B02.tif ... <patch>_labels_metadata.json`` and S1 folders ``<s1>/<s1>_VV.tif``,
  ``<s1>_VH.tif``, ``<s1>_labels_metadata.json`` (whose ``corresponding_s2_patch`` names the S2 patch),
  directly under the folder or one level down (``BigEarthNet-v1.0/``, ``BigEarthNet-S1-v1.0/`` as
  ``s2lab.data.download.fetch("bigearthnet-v1")`` unpacks them). The v2 layout (reBEN) is not read here.

Shapes use the glossary of ``docs/internals.md``: C bands, H, W pixels.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr
from rasterio.io import MemoryFile

from s2lab import settings
from s2lab.data.corine import multi_hot, to_19
from s2lab.data.dn import DN_DTYPES, DN_SCALE
from s2lab.data.raster import open_raster, select_bands, stack_bands
from s2lab.sensors import S2_10BANDS, S2_12BANDS, band_names

EMBEDDED = "embedded"
"""Pass as ``root`` to read the 6 patches shipped in ``bigearthnet-common`` whatever the settings say."""

_ARCHIVES = ("BigEarthNet-S2-Example.tar.bz2", "BigEarthNet-S1-Example.tar.bz2")

_S2_NAME = re.compile(r"S2[AB]_MSIL2A_\d{8}T\d+_\d+_\d+")
_S1_NAME = re.compile(r"S1[AB]_IW_GRDH_1SDV_\d{8}T\d{6}_\w+_\d+_\d+")

FileSource = Path | bytes  # a file on disk, or the bytes of an archive member


@dataclass(frozen=True, kw_only=True)
class BigEarthNetPatch:
    """One BigEarthNet v1 patch: Sentinel-2, Sentinel-1 and its labels."""

    name: str  # the Sentinel-2 patch name, e.g. "S2A_MSIL2A_20170613T101031_87_48"
    s2: xr.DataArray  # (C, 120, 120) float32 (band, y, x) L2A reflectance (DN / 10000) on the 10 m grid
    s1: xr.DataArray | None  # (2, 120, 120) float32 (band=VV, VH, y, x) backscatter in dB as shipped; None if absent
    s1_name: str | None  # the Sentinel-1 patch name; None when the S1 patch is absent
    labels43: tuple[str, ...]  # CORINE level-3 names from the label file, as listed there
    labels19: tuple[str, ...]  # the same mapped with ``to_19``, in ``LABELS_19`` order
    multi_hot: np.ndarray  # (19,) float32, 1.0 at the indices of ``labels19`` in ``LABELS_19``
    metadata: dict = field(default_factory=dict)  # the rest of the S2 label file: coordinates, projection, date
    synthetic: bool = False  # always False: these are real patches


def bigearthnet_patches(root: str | os.PathLike | None = None) -> list[str]:
    """The names of the Sentinel-2 patches under ``root``, sorted.

    Args:
        root: a BigEarthNet v1 folder, ``EMBEDDED`` for the 6 patches of ``bigearthnet-common``, or None:
            ``settings.data_dir("bigearthnet")`` when it holds v1 patches, else ``EMBEDDED``.

    Raises:
        FileNotFoundError: ``root`` does not exist, or ``EMBEDDED`` is asked for and ``bigearthnet-common``
            is not installed.
    """
    return sorted(_index(_resolve_root(root)).s2)


def load_bigearthnet_patch(
    name: str, *, root: str | os.PathLike | None = None, bands: Sequence[str] = S2_10BANDS
) -> BigEarthNetPatch:
    """Read one patch: its Sentinel-2 bands on the 10 m grid, its Sentinel-1 twin and its labels.

    Args:
        name: a Sentinel-2 patch name from ``bigearthnet_patches(root)``.
        root: as in ``bigearthnet_patches``.
        bands: Sentinel-2 bands to return, in this order; any of ``S2_12BANDS`` (BigEarthNet has no B10).

    Returns:
        A ``BigEarthNetPatch``: ``s2`` (C, 120, 120) reflectance with 20 m and 60 m bands resampled
        bilinearly onto the 10 m grid (``s2lab.data.raster.stack_bands``); ``s1`` (2, 120, 120) VV, VH in
        dB, or None when the folder has no Sentinel-1 patch for it.

    Raises:
        ValueError: an unknown patch name, or bands that BigEarthNet does not have.
        FileNotFoundError: a patch folder without its band or label files.
    """
    bands = band_names(bands)
    absent = [b for b in bands if b not in S2_12BANDS]
    if absent:
        raise ValueError(f"BigEarthNet has no band {', '.join(absent)}; its 12 bands are {', '.join(S2_12BANDS)}")
    root_key = _resolve_root(root)
    index = _index(root_key)
    if name not in index.s2:
        shown = ", ".join(sorted(index.s2)[:6])
        raise ValueError(
            f"no BigEarthNet patch {name!r} in {index.where}; it has {len(index.s2)} patches ({shown}, ...)"
        )
    files = _files(index.s2[name])
    meta = _label_file(files, name, index.where)
    s2 = select_bands(_read_bands(files, name, bands, index.where, reflectance=True), bands)
    s2.attrs.update(source=f"BigEarthNet v1 patch {name} ({index.where})", patch=name, level="L2A", synthetic=False)
    s1_name = _s1_name_for(root_key, name)
    s1 = None
    if s1_name is not None:
        s1 = _read_bands(_files(index.s1[s1_name]), s1_name, ("VV", "VH"), index.where, reflectance=False)
        s1.attrs.update(source=f"BigEarthNet v1 S1 patch {s1_name} ({index.where})", patch=s1_name)
        s1.attrs.update(units="dB", synthetic=False)
    labels43 = tuple(meta.get("labels", ()))
    labels19 = tuple(to_19(labels43))
    return BigEarthNetPatch(
        name=name,
        s2=s2,
        s1=s1,
        s1_name=s1_name,
        labels43=labels43,
        labels19=labels19,
        multi_hot=multi_hot(labels19),
        metadata={k: v for k, v in meta.items() if k != "labels"},
    )


@dataclass(frozen=True)
class _Index:
    """Where the patches of one root are."""

    where: str  # the root, in words, for messages
    s2: dict[str, Path | dict[str, bytes]]  # S2 patch name -> its folder, or its files' bytes by file name
    s1: dict[str, Path | dict[str, bytes]]  # S1 patch name -> the same


def _embedded_folder() -> Path | None:
    """The installed ``bigearthnet_common`` package folder (found without importing it), or None."""
    spec = importlib.util.find_spec("bigearthnet_common")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _resolve_root(root: str | os.PathLike | None) -> str:
    """``EMBEDDED`` or the resolved path of a BigEarthNet folder, as a string (a cache key)."""
    if root is None:
        found = settings.data_dir("bigearthnet")
        key = str(found.resolve()) if found is not None else EMBEDDED
        return key if key != EMBEDDED and _index(key).s2 else EMBEDDED
    if str(root) == EMBEDDED:
        return EMBEDDED
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"BigEarthNet folder {path} does not exist")
    return str(path.resolve())


@lru_cache(maxsize=4)
def _index(root_key: str) -> _Index:
    if root_key != EMBEDDED:
        s2, s1 = _scan(Path(root_key))
        return _Index(where=root_key, s2=s2, s1=s1)
    folder = _embedded_folder()
    if folder is None:
        raise FileNotFoundError(
            "the 6 embedded BigEarthNet patches need the bigearthnet-common package: pip install bigearthnet-common"
        )
    s2: dict[str, Path | dict[str, bytes]] = {}
    s1: dict[str, Path | dict[str, bytes]] = {}
    for archive in _ARCHIVES:
        with tarfile.open(folder / archive) as tf:
            for member in tf:
                parts = member.name.split("/")
                if not member.isfile() or len(parts) < 2:
                    continue
                patch = parts[-2]
                target = s2 if _S2_NAME.fullmatch(patch) else s1 if _S1_NAME.fullmatch(patch) else None
                if target is not None:
                    target.setdefault(patch, {})[parts[-1]] = tf.extractfile(member).read()
    return _Index(where=f"bigearthnet-common ({folder})", s2=s2, s1=s1)


def _scan(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """S2 and S1 patch folders directly under ``folder`` or one level down, recognised by their names."""
    s2: dict[str, Path] = {}
    s1: dict[str, Path] = {}
    for level in (folder, *sorted(p for p in folder.iterdir() if p.is_dir() and not _is_patch(p.name))):
        for entry in os.scandir(level):
            if entry.is_dir() and _S2_NAME.fullmatch(entry.name):
                s2[entry.name] = Path(entry.path)
            elif entry.is_dir() and _S1_NAME.fullmatch(entry.name):
                s1[entry.name] = Path(entry.path)
    return s2, s1


def _is_patch(name: str) -> bool:
    return bool(_S2_NAME.fullmatch(name) or _S1_NAME.fullmatch(name))


def _files(entry: Path | dict[str, bytes]) -> Mapping[str, FileSource]:
    """File name -> file (or bytes) of one patch."""
    if isinstance(entry, Path):
        return {f.name: f for f in entry.iterdir() if f.is_file()}
    return entry


def _read_bands(
    files: Mapping[str, FileSource], patch: str, names: Sequence[str], where: str, *, reflectance: bool
) -> xr.DataArray:
    """The band files ``<patch>_<name>.tif`` of one patch stacked on its finest grid, (C, H, W)."""
    arrays = {}
    for name in names:
        key = f"{patch}_{name}.tif"
        if key not in files:
            raise FileNotFoundError(f"patch {patch} in {where} has no {key}; it holds {', '.join(sorted(files))}")
        arrays[name] = _open_band(files[key], reflectance=reflectance)
    return stack_bands(arrays)


def _label_file(files: Mapping[str, FileSource], patch: str, where: str) -> dict:
    key = f"{patch}_labels_metadata.json"
    if key not in files:
        raise FileNotFoundError(f"patch {patch} in {where} has no label file {key}")
    source = files[key]
    return json.loads(source.read_text() if isinstance(source, Path) else source.decode())


@lru_cache(maxsize=4)
def _s1_by_suffix(root_key: str) -> dict[str, tuple[str, ...]]:
    """S1 patch names grouped by their grid position ``<col>_<row>``, which they share with their S2 patch."""
    groups: dict[str, list[str]] = {}
    for s1_name in _index(root_key).s1:
        groups.setdefault("_".join(s1_name.split("_")[-2:]), []).append(s1_name)
    return {k: tuple(v) for k, v in groups.items()}


def _s1_name_for(root_key: str, s2_name: str) -> str | None:
    """The S1 patch whose label file names ``s2_name`` as its ``corresponding_s2_patch``, or None."""
    index = _index(root_key)
    for s1_name in _s1_by_suffix(root_key).get("_".join(s2_name.split("_")[-2:]), ()):
        meta = _label_file(_files(index.s1[s1_name]), s1_name, index.where)
        if meta.get("corresponding_s2_patch") == s2_name:
            return s1_name
    return None


def _open_band(source: FileSource, *, reflectance: bool) -> xr.DataArray:
    """One band file (or its bytes) as a (1, y, x) float32 array; uint16 DN / 10000 when ``reflectance``."""
    if isinstance(source, Path):
        return open_raster(source, reflectance=reflectance)
    with MemoryFile(source) as memfile, memfile.open() as src:
        scale = DN_SCALE if reflectance and src.dtypes[0] in DN_DTYPES else 1.0
        da = rioxarray.open_rasterio(src, masked=True).load()
    out = (da / np.float32(scale)).astype(np.float32)
    out.attrs = {}
    return out
