"""data.eurosat: the reader on EuroSAT's own folder layout.

No real EuroSAT exists on this machine, so the folders are built here from real pixels: 64 x 64 tiles of the
embedded Sentinel-2 scene written as 13-band uint16 GeoTIFFs in EuroSAT's band order (B8A last, no band
descriptions), one class folder each. The class of a tile means nothing: this tests the reader, not a dataset.
"""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.eurosat import (
    EUROSAT_CLASSES,
    EUROSAT_FILE_BANDS,
    eurosat_available,
    load_eurosat,
)
from s2lab.data.export import write_geotiff
from s2lab.data.raster import RasterError
from s2lab.sensors import S2_10BANDS, S2_13BANDS

OFFICIAL_NESTING = Path("ds/images/remote_sensing/otherDatasets/sentinel_2/tif")
NUMBERS = (1, 2, 10)  # lexical order would put 10 before 2


@pytest.fixture(scope="module")
def scene():
    return open_embedded_scene(bands=S2_13BANDS)


def tile_dn(scene, k: int) -> tuple[np.ndarray, rasterio.Affine]:
    """Tile k of the scene as EuroSAT stores it: (13, 64, 64) uint16 DN in ``EUROSAT_FILE_BANDS`` order."""
    row, col = divmod(k, 25)
    window = scene.isel(y=slice(row * 70, row * 70 + 64), x=slice(col * 70, col * 70 + 64))
    dn = np.rint(window.sel(band=list(EUROSAT_FILE_BANDS)).values * 10000).astype(np.uint16)
    return dn, window.rio.transform()


def write_eurosat_file(path: Path, dn: np.ndarray, transform, crs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = dn.shape
    with rasterio.open(
        path, "w", driver="GTiff", count=count, height=height, width=width, dtype="uint16", crs=crs, transform=transform
    ) as dst:
        dst.write(dn)


@pytest.fixture(scope="module")
def eurosat(tmp_path_factory, scene):
    """An official-zip layout with 3 images per class; returns (root, {(class, n): DN array in file order})."""
    root = tmp_path_factory.mktemp("eurosat")
    truth = {}
    for c, name in enumerate(EUROSAT_CLASSES):
        for i, n in enumerate(NUMBERS):
            dn, transform = tile_dn(scene, c * len(NUMBERS) + i)
            write_eurosat_file(root / OFFICIAL_NESTING / name / f"{name}_{n}.tif", dn, transform, scene.rio.crs)
            truth[name, n] = dn
    return root, truth


def expected(truth, name: str, n: int, bands) -> np.ndarray:
    dn = truth[name, n]
    return np.stack([dn[EUROSAT_FILE_BANDS.index(b)] for b in bands]) / np.float32(10000)


def test_reads_every_image_with_labels_in_class_order(eurosat):
    root, truth = eurosat
    x, y, classes = load_eurosat(root)
    assert classes == EUROSAT_CLASSES
    assert x.shape == (30, 10, 64, 64) and x.dtype == torch.float32
    assert y.dtype == torch.long and y.tolist() == [k for k in range(10) for _ in NUMBERS]
    for i, (name, n) in enumerate((name, n) for name in EUROSAT_CLASSES for n in NUMBERS):
        np.testing.assert_allclose(x[i].numpy(), expected(truth, name, n, S2_10BANDS), rtol=0, atol=1e-6)


def test_b8a_is_read_from_the_last_channel(eurosat, scene):
    root, truth = eurosat
    x, _, _ = load_eurosat(root, bands=S2_13BANDS)
    assert x.shape == (30, 13, 64, 64)
    b8a = x[0, S2_13BANDS.index("B8A")].numpy()
    np.testing.assert_allclose(b8a, truth["AnnualCrop", 1][12] / 10000, atol=1e-6)
    # ... which is the scene's real B8A, not its B09 (the 9th channel of the file).
    tile = scene.sel(band="B8A").isel(y=slice(0, 64), x=slice(0, 64)).values
    np.testing.assert_allclose(b8a, tile, atol=6e-5)
    assert np.abs(b8a - scene.sel(band="B09").isel(y=slice(0, 64), x=slice(0, 64)).values).mean() > 0.01


def test_limit_per_class_takes_the_lowest_numbers_or_a_random_subset(eurosat):
    root, truth = eurosat
    x, y, _ = load_eurosat(root, bands=["B04"], limit_per_class=2)
    assert x.shape == (20, 1, 64, 64) and torch.bincount(y).tolist() == [2] * 10
    np.testing.assert_allclose(x[1, 0].numpy(), expected(truth, "AnnualCrop", 2, ["B04"])[0], atol=1e-6)
    a, ya, _ = load_eurosat(root, bands=["B04"], limit_per_class=1, generator=torch.Generator().manual_seed(3))
    b, yb, _ = load_eurosat(root, bands=["B04"], limit_per_class=1, generator=torch.Generator().manual_seed(3))
    assert a.shape == (10, 1, 64, 64) and torch.equal(a, b) and torch.equal(ya, yb)
    draws = set()
    for seed in range(6):
        x, _, _ = load_eurosat(root, bands=["B04"], limit_per_class=1, generator=torch.Generator().manual_seed(seed))
        draws.add(tuple(x[:, 0, 0, 0].tolist()))
    assert len(draws) > 1  # the generator does choose
    with pytest.raises(ValueError, match="limit_per_class"):
        load_eurosat(root, limit_per_class=0)


def test_availability_and_the_default_folder(eurosat, tmp_path, monkeypatch):
    root, _ = eurosat
    assert eurosat_available(root)
    assert not eurosat_available(tmp_path)
    assert not eurosat_available(tmp_path / "missing")
    monkeypatch.setenv("S2LAB_EUROSAT_DIR", str(root))
    assert eurosat_available()
    assert load_eurosat(limit_per_class=1)[0].shape == (10, 10, 64, 64)
    monkeypatch.setenv("S2LAB_EUROSAT_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="fetch"):
        load_eurosat()


def test_zenodo_nesting_and_described_bands(tmp_path, scene):
    # A file with band descriptions (written by s2lab itself, float reflectance, ESA order) is read by name.
    window = scene.isel(y=slice(500, 564), x=slice(500, 564))
    (tmp_path / "EuroSAT_MS" / "River").mkdir(parents=True)
    write_geotiff(window, tmp_path / "EuroSAT_MS" / "River" / "River_1.tif")
    x, y, _ = load_eurosat(tmp_path, bands=["B8A", "B02"])
    assert y.tolist() == [EUROSAT_CLASSES.index("River")]
    np.testing.assert_allclose(x[0].numpy(), window.sel(band=["B8A", "B02"]).values, atol=1e-7)


def test_bad_files_are_named(tmp_path, scene):
    forest = tmp_path / "Forest"
    forest.mkdir()
    small = scene.isel(y=slice(0, 32), x=slice(0, 32))
    write_eurosat_file(
        forest / "Forest_1.tif",
        np.rint(small.sel(band=list(EUROSAT_FILE_BANDS)).values * 10000).astype(np.uint16),
        small.rio.transform(),
        scene.rio.crs,
    )
    with pytest.raises(RasterError, match="Forest_1.tif is 32 x 32"):
        load_eurosat(tmp_path)
    (forest / "Forest_1.tif").write_bytes(b"not a tiff")
    with pytest.raises(RasterError, match="Forest_1.tif"):
        load_eurosat(tmp_path)
    with pytest.raises(ValueError, match="B99"):
        load_eurosat(tmp_path, bands=["B99"])
