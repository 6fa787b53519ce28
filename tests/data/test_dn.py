"""data.dn through data.raster on real files: the shipped data reads as DN / 10000 exactly as before, a real crop
written as a baseline-04.00 file (DN + 1000, with its offset in the metadata or given) reads back equal, and a file
0.1 too bright is warned about, naming its darkest band and that band's 1st-percentile DN."""

from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2lab.data.dn import DN_SCALE, SUSPECT_DN, dn_offsets, offset_warning
from s2lab.data.embedded import embedded_scene_path
from s2lab.data.oscd import IMAGES
from s2lab.data.pretraining import pretraining_images
from s2lab.data.raster import RasterError, file_arrays, open_raster
from s2lab.settings import data_dir

TEN_M = ["B02", "B03", "B04", "B08"]  # the embedded scene's 10 m bands: one grid, water and land


@pytest.fixture(scope="module")
def scene_dn() -> tuple[np.ndarray, dict]:
    """(4, H, W) uint16 DNs of the embedded scene's 10 m bands, whole, and a GeoTIFF profile for them."""
    stack = []
    for name in TEN_M:
        with rasterio.open(embedded_scene_path() / f"s2_{name}.jp2") as src:
            stack.append(src.read(1))
            profile = {"driver": "GTiff", "count": len(TEN_M), "height": src.height, "width": src.width,
                       "dtype": "uint16", "crs": src.crs, "transform": src.transform}
    return np.stack(stack), profile


def write(path: Path, dn: np.ndarray, profile: dict, *, tags: dict | None = None,
          gdal: tuple[float, float] | None = None) -> Path:
    """``dn`` (C, H, W) as a GeoTIFF with band descriptions, dataset ``tags`` and GDAL (scale, offset)."""
    with rasterio.open(path, "w", **profile) as out:
        out.write(dn)
        for i, name in enumerate(TEN_M):
            out.set_band_description(i + 1, name)
        if tags:
            out.update_tags(**tags)
        if gdal:
            out.scales, out.offsets = (gdal[0],) * len(dn), (gdal[1],) * len(dn)
    return path


def first_percentiles(dn: np.ndarray) -> np.ndarray:
    return np.percentile(dn.reshape(len(dn), -1).astype(np.float64), 1, axis=1)


def test_the_shipped_data_reads_as_dn_over_10000_exactly_and_raises_no_warning():
    folder = embedded_scene_path()
    scene = open_raster(folder, bands=["B04", "B10"])
    with rasterio.open(folder / "s2_B04.jp2") as src:
        b04 = src.read(1)
    np.testing.assert_array_equal(scene.sel(band="B04").values, b04.astype(np.float32) / np.float32(DN_SCALE))
    assert scene.attrs["dn_offset"] == (0.0, 0.0) and scene.attrs["dn_offset_from"] == "none"
    assert offset_warning(file_arrays(folder)) is None

    root = data_dir("oscd")
    if root is None:
        pytest.skip("OSCD is not here (S2LAB_DATA_DIR)")
    # Abu Dhabi: a desert whose darkest 10-band 1st percentile is over 1000 DN; its B10 file keeps it unwarned.
    imgs = root / IMAGES / "abudhabi" / "imgs_1"
    b04_file = next(imgs.glob("*_B04.tif"))
    city = open_raster(imgs, bands=["B04"])
    with rasterio.open(b04_file) as src:
        np.testing.assert_array_equal(city.values[0], src.read(1).astype(np.float32) / np.float32(DN_SCALE))
    assert first_percentiles(city.values * DN_SCALE).min() >= SUSPECT_DN
    assert offset_warning(file_arrays(imgs)) is None


@pytest.mark.parametrize(("tags", "gdal", "origin"), [
    ({"RADIO_ADD_OFFSET": "-1000"}, None, "RADIO_ADD_OFFSET"),
    ({"BOA_ADD_OFFSET": "-1000,-1000,-1000,-1000"}, None, "BOA_ADD_OFFSET"),
    (None, (1e-4, -0.1), "gdal offset"),
])
def test_a_baseline_04_crop_with_its_offset_in_the_metadata_reads_back_equal(tmp_path, scene_dn, tags, gdal, origin):
    dn, profile = scene_dn
    original = open_raster(write(tmp_path / "before.tif", dn, profile))
    shifted = open_raster(write(tmp_path / "after.tif", dn + 1000, profile, tags=tags, gdal=gdal))
    assert shifted.attrs["dn_offset"] == (-1000.0,) * 4 and shifted.attrs["dn_offset_from"] == origin
    np.testing.assert_array_equal(shifted.values, original.values)
    np.testing.assert_array_equal(shifted.isel(band=2, y=slice(100, 140)).values,
                                  original.isel(band=2, y=slice(100, 140)).values)  # a lazy slice, one band
    assert offset_warning(file_arrays(tmp_path / "after.tif")) is None


def test_without_metadata_the_offset_given_reads_it_equal_and_none_given_is_warned(tmp_path, scene_dn):
    dn, profile = scene_dn
    original = open_raster(write(tmp_path / "before.tif", dn, profile))
    path = write(tmp_path / "after.tif", dn + 1000, profile)
    np.testing.assert_array_equal(open_raster(path, dn_offset=-1000).values, original.values)
    assert offset_warning(file_arrays(path, dn_offset=-1000)) is None
    bright = open_raster(path)
    assert bright.attrs["dn_offset_from"] == "none"
    np.testing.assert_allclose(bright.values - original.values, 0.1, atol=1e-6)  # 0.1 too bright
    assert offset_warning(file_arrays(tmp_path / "before.tif")) is None
    p1 = first_percentiles(dn + 1000)
    darkest = int(np.argmin(p1))
    line = offset_warning(file_arrays(path))
    assert "\n" not in line and "--dn-offset -1000" in line
    assert f"{TEN_M[darkest]}, has a 1st-percentile DN of {p1[darkest]:.0f}" in line


def test_pretraining_reads_raster_paths_with_the_offset_given(tmp_path, scene_dn):
    dn, profile = scene_dn
    original = pretraining_images([write(tmp_path / "before.tif", dn, profile)], TEN_M)
    shifted = pretraining_images([write(tmp_path / "after.tif", dn + 1000, profile)], TEN_M, dn_offset=-1000)
    assert len(original) == len(shifted) == 1 and (shifted[0] == original[0]).all()


def test_bad_offset_metadata_and_arguments_are_named(tmp_path, scene_dn):
    dn, profile = scene_dn
    small = dn[:, :64, :64]
    profile = {**profile, "height": 64, "width": 64}
    with pytest.raises(RasterError, match="RADIO_ADD_OFFSET tag is 'minus'"):
        open_raster(write(tmp_path / "word.tif", small, profile, tags={"RADIO_ADD_OFFSET": "minus"}))
    with pytest.raises(RasterError, match="holds 2 values for 4 bands"):
        open_raster(write(tmp_path / "two.tif", small, profile, tags={"BOA_ADD_OFFSET": "-1000,-1000"}))
    with pytest.raises(RasterError, match="dn_offset must be a finite number"):
        open_raster(tmp_path / "two.tif", dn_offset=float("nan"))
    offsets, origin = dn_offsets({"scale_factor": 1.0, "add_offset": 0.0}, 3)
    assert origin == "none" and offsets.tolist() == [0.0, 0.0, 0.0]
    offsets, origin = dn_offsets({"scale_factor": 0.5, "add_offset": 3.0}, 1)  # not reflectance x 10000: ignored
    assert origin == "none"
