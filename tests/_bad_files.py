"""The bad files of the error tests, made from a 64 x 64 px crop of the embedded real scene, then damaged.

``make_lab(root)`` writes ``root/inputs/`` (good and damaged rasters: band orders and names, NaN and nodata, sizes,
truncated and empty files, junk folders, mismatched change pairs, labels) and ``root/models/`` (good, mismatched,
tampered and pickled checkpoints; unpickling the pickles creates ``root/UNPICKLED``). The ``lab`` fixture of
tests/conftest.py gives it to the command-line tests (tests/e2e/test_bad_inputs.py) and to the Python-API tests of
the modules that refuse the files.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import shutil
from pathlib import Path

import numpy as np
import rasterio
import torch

from s2lab.checkpoints import save_model
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.models import ChangeDetector, build, head_config
from s2lab.sensors import S2_10BANDS, S2_12BANDS, S2_13BANDS
from _tiny import TINY

EUROSAT_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
ROWS, COLS = slice(900, 964), slice(800, 864)  # a 64 x 64 px crop of the real scene: farmland and a road


class _Marker:
    """A pickle payload that creates a file when unpickled: proof of whether anything unpickled it."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (self.path,)


def _tiny(kind: str = "s2mae", in_chans: int = 10, **overrides) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build(kind, {**TINY, "in_chans": in_chans, **overrides})


def _write_plain(path: Path, data: np.ndarray, like, **profile) -> Path:
    """(C, H, W) ``data`` as a GeoTIFF on ``like``'s grid without band descriptions (no names, no wavelengths)."""
    with rasterio.open(path, "w", driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                       dtype=data.dtype.name, crs=like.rio.crs, transform=like.rio.transform(), **profile) as dst:
        dst.write(data)
    return path


def make_lab(root: Path) -> Path:
    """Write inputs/ (good and damaged rasters) and models/ (good, mismatched, tampered, pickled checkpoints)."""
    inputs, models = root / "inputs", root / "models"
    inputs.mkdir()
    models.mkdir()
    scene = open_embedded_scene(S2_13BANDS).isel(y=ROWS, x=COLS)  # (13, 64, 64) reflectance
    crop = scene.sel(band=list(S2_10BANDS))
    write_geotiff(crop, inputs / "crop.tif")
    dn = np.round(scene.values * 10000).astype("uint16")  # (13, 64, 64) digital numbers, ESA order
    write_geotiff(dn, inputs / "esa13.tif", like=scene, dtype="uint16")  # described B01 ... B12
    order = [list(S2_13BANDS).index(b) for b in EUROSAT_ORDER]
    _write_plain(inputs / "eurosat13.tif", dn[order], scene)  # B8A last, no descriptions
    _write_plain(inputs / "oneband.tif", dn[[3]], scene)
    rgb = np.clip(scene.sel(band=["B04", "B03", "B02"]).values * 3 * 255, 0, 255).astype("uint8")
    _write_plain(inputs / "rgb8.tif", rgb, scene)
    write_geotiff(crop.sel(band=["B04", "B03", "B02"]), inputs / "rgb_named.tif")
    write_geotiff(crop.copy(data=np.full(crop.shape, np.nan, "float32")), inputs / "allnan.tif")
    part = crop.values.copy()
    part[:, :16] = np.nan  # the top quarter of the rows
    write_geotiff(crop.copy(data=part), inputs / "partnan.tif")
    nodata = dn[[list(S2_13BANDS).index(b) for b in S2_10BANDS]].copy()
    nodata[:, :, :8] = 0  # the first 8 columns are nodata = 0
    _write_plain(inputs / "nodata.tif", nodata, scene, nodata=0)
    write_geotiff(crop.isel(y=slice(0, 5), x=slice(0, 5)), inputs / "small.tif")
    write_geotiff(crop.isel(y=slice(0, 50), x=slice(0, 37)), inputs / "odd.tif")
    raw = (inputs / "crop.tif").read_bytes()
    (inputs / "truncated.tif").write_bytes(raw[: len(raw) // 2])
    (inputs / "header.tif").write_bytes(raw[:200])
    (inputs / "empty.tif").write_bytes(b"")
    (inputs / "notes.txt").write_text("not a raster\n")
    (inputs / "empty_folder").mkdir()
    junk = inputs / "junk_folder"  # every band the model takes, none of them a raster
    junk.mkdir()
    for n, name in enumerate(S2_10BANDS):  # a kilobyte from inside a GeoTIFF, text, nothing, a TIFF's first 8 bytes
        (junk / f"T18_{name}.tif").write_bytes([raw[1000:2000], b"hello", b"", raw[:8]][n % 4])
    wide = open_embedded_scene().isel(y=ROWS, x=slice(864, 928))
    write_geotiff(wide, inputs / "beside.tif")  # the same size, 640 m east
    write_geotiff(crop.isel(y=slice(0, 32), x=slice(0, 32)), inputs / "quarter.tif")
    write_geotiff(crop.rio.write_crs("EPSG:32617"), inputs / "other_crs.tif")
    write_geotiff(crop.sel(band=list(S2_10BANDS)[:-1]), inputs / "nine_bands.tif")
    write_geotiff(np.ones((1, 10, 10), "uint8"), inputs / "label_10px.tif", dtype="uint8")
    write_geotiff(np.ones((1, 64, 64), "uint8"), inputs / "label.tif", dtype="uint8")

    save_model(models / "tiny", _tiny(), kind="s2mae", config={**TINY, "in_chans": 10},
               meta={"bands": list(S2_10BANDS)})
    save_model(models / "twelve", _tiny(in_chans=12, scaling="window"), kind="s2mae",
               config={**TINY, "in_chans": 12, "scaling": "window"},
               meta={"bands": list(S2_12BANDS)})
    detector = ChangeDetector(encoder=_tiny())
    save_model(models / "change", detector, kind="change", config=head_config(detector),
               meta={"bands": list(S2_10BANDS)})
    for stem in ("wide", "tampered"):
        shutil.copy(models / "tiny.safetensors", models / f"{stem}.safetensors")
    info = json.loads((models / "tiny.json").read_text())
    (models / "wide.json").write_text(json.dumps({**info, "config": {**info["config"], "embed_dim": 48}}))
    shutil.copy(models / "tiny.json", models / "tampered.json")
    data = bytearray((models / "tampered.safetensors").read_bytes())
    data[-5] ^= 0xFF  # one byte of the last tensor
    (models / "tampered.safetensors").write_bytes(bytes(data))
    payload = pickle.dumps(_Marker(root / "UNPICKLED"), protocol=4)
    (models / "evil.pt").write_bytes(payload)
    (models / "disguised.safetensors").write_bytes(payload)
    shutil.copy(models / "tiny.json", models / "disguised.json")
    return root
