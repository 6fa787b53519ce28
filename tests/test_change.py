"""change: change maps of whole before / after pairs window by window, on crops of the real embedded scene and real
OSCD cities.

The models are small and untrained: their quality does not matter here, the mechanics do (windows, padding,
blending, georeference, validation, thresholds).
"""

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.ndimage import gaussian_filter

from s2lab.change import (BLEND_ROWS, ChangeResult, blend_scores, blend_with_cva, change_map, change_map_cva,
                          chosen_threshold, cva_magnitude, detect_change)
from s2lab.classification_metrics import binary_scores
from s2lab.cva import change_vector_analysis
from s2lab.data.export import write_geotiff
from s2lab.data.raster import open_raster
from s2lab.data.oscd import load_oscd_city, read_label
from s2lab.evaluate import best_threshold, score_change
from s2lab.models import S2MAE, ChangeDetector
from s2lab.settings import data_dir
from _tiny import TINY

NO_OSCD = "OSCD not found (set S2LAB_DATA_DIR or S2LAB_OSCD_DIR)"
needs_oscd = pytest.mark.skipif(data_dir("oscd") is None, reason=NO_OSCD)


@pytest.fixture(scope="module")
def bercy():
    if data_dir("oscd") is None:
        pytest.skip(NO_OSCD)
    return load_oscd_city("bercy")


# -- change ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detector():
    return ChangeDetector(encoder=S2MAE(**TINY), hidden=8).eval()


@needs_oscd
def test_change_map_on_a_real_city_keeps_shape_and_georeference(detector, bercy):
    before, after = bercy.before.isel(y=slice(0, 70), x=slice(0, 90)), bercy.after.isel(y=slice(0, 70), x=slice(0, 90))
    result = change_map(detector, before, after, device="cpu")
    p = result.probability
    assert p.dims == ("y", "x") and p.shape == (70, 90) and p.dtype == np.float32
    assert p.rio.crs == before.rio.crs and p.rio.transform() == before.rio.transform()
    assert float(p.min()) >= 0 and float(p.max()) <= 1
    assert result.windows == 4 * 4 and result.threshold == 0.5  # 96 x 96 padded, a window every 24 px
    assert result.change().dtype == np.uint8 and result.change().shape == (70, 90)


def test_change_map_blending_divides_out(detector, scene_crop):
    """A one-window image gives the model's own probability: the blending weights cancel."""
    before, after = scene_crop.isel(y=slice(0, 32), x=slice(0, 32)), scene_crop.isel(y=slice(40, 72), x=slice(50, 82))
    after = after.assign_coords(y=before.y, x=before.x)
    result = change_map(detector, before, after, overlap=8, device="cpu")
    with torch.no_grad():
        expected = torch.sigmoid(detector(torch.as_tensor(before.values[None]), torch.as_tensor(after.values[None])))
    np.testing.assert_allclose(result.probability.values, expected[0].numpy(), rtol=1e-5, atol=1e-6)


def test_change_map_blends_overlaps_with_linear_feathering(detector, scene_crop):
    """32 x 56 px mirrored to 32 x 64: windows at columns 0, 24 and 32, weights ramping over the 8 shared pixels."""
    before, after = scene_crop.isel(y=slice(0, 32), x=slice(0, 56)), scene_crop.isel(y=slice(40, 72), x=slice(50, 106))
    after = after.assign_coords(y=before.y, x=before.x)
    result = change_map(detector, before, after, overlap=8, device="cpu")
    assert result.windows == 3
    mirror = ((0, 0), (0, 0), (0, 8))
    b = torch.as_tensor(np.pad(before.values, mirror, mode="reflect"))
    a = torch.as_tensor(np.pad(after.values, mirror, mode="reflect"))
    i = torch.arange(32.0)
    ramp = torch.minimum(torch.clamp((i + 1) / 9, max=1.0), torch.clamp((32 - i) / 9, max=1.0))  # (w,)
    weight = ramp[:, None] * ramp[None, :]  # (w, w)
    total, norm = torch.zeros(32, 64), torch.zeros(32, 64)
    with torch.no_grad():
        for c in (0, 24, 32):
            p = torch.sigmoid(detector(b[None, :, :, c : c + 32], a[None, :, :, c : c + 32]))[0]
            total[:, c : c + 32] += weight * p
            norm[:, c : c + 32] += weight
    np.testing.assert_allclose(result.probability.values, (total / norm)[:, :56].numpy(), rtol=1e-5, atol=1e-6)


def test_change_map_validates_the_pair(detector, scene_crop):
    before = scene_crop.isel(y=slice(0, 40), x=slice(0, 40))
    with pytest.raises(ValueError, match=r"before has shape \(10, 40, 40\) and after \(10, 40, 41\)"):
        change_map(detector, before, scene_crop.isel(y=slice(0, 40), x=slice(0, 41)), device="cpu")
    renamed = before.assign_coords(band=[f"X{i}" for i in range(10)])
    with pytest.raises(ValueError, match="after has X0, X1"):
        change_map(detector, before, renamed, device="cpu")
    with pytest.raises(ValueError, match="EPSG:32618.*EPSG:4326"):
        change_map(detector, before, before.rio.write_crs("EPSG:4326"), device="cpu")
    shifted = scene_crop.isel(y=slice(10, 50), x=slice(0, 40))
    with pytest.raises(ValueError, match="match_grid"):
        change_map(detector, before, shifted, device="cpu")
    with pytest.raises(ValueError, match=r"4 bands .* takes 10"):
        change_map(detector, before.isel(band=slice(0, 4)), before.isel(band=slice(0, 4)), device="cpu")


def test_change_pairs_and_labels_must_match(lab):
    crop = open_raster(lab / "inputs" / "crop.tif")
    nine = open_raster(lab / "inputs" / "nine_bands.tif")  # B02 ... B8A, B11
    swapped = nine.sel(band=[*nine["band"].values[:7], "B11", "B8A"])
    cases = [
        (crop, open_raster(lab / "inputs" / "quarter.tif"), r"before has shape \(10, 64, 64\) and after \(10, 32, 32\)"),
        (crop, open_raster(lab / "inputs" / "other_crs.tif"), r"before is in CRS EPSG:32618 but after in EPSG:32617"),
        (crop, open_raster(lab / "inputs" / "beside.tif"), r"same size but different transforms"),
        (nine, swapped, r"before has bands B02, .*B8A, B11 but after has B02, .*B11, B8A"),
    ]
    for before, after, message in cases:
        with pytest.raises(ValueError, match=message):
            change_map_cva(before, after)
    with pytest.raises(ValueError, match=r"label_10px\.tif is 10 x 10 px, the before image 64 x 64"):
        read_label(lab / "inputs" / "label_10px.tif", crop)
    with pytest.raises(ValueError, match=r"probability has shape \(64, 64\) but the label \(10, 10\)"):
        score_change(np.zeros((64, 64)), np.zeros((10, 10)))


@needs_oscd
def test_cva_on_a_real_pair_finds_change(bercy):
    result = change_map_cva(bercy.before, bercy.after)
    p = result.probability
    assert p.shape == bercy.label.shape and p.rio.crs == bercy.before.rio.crs
    assert float(p.min()) == 0.0 and float(p.max()) == pytest.approx(1.0)
    assert 0 < result.threshold < 1 and result.method == "cva"
    otsu = score_change(p, bercy.label, result.threshold)
    assert otsu["f1"] > 0
    best = best_threshold(p, bercy.label)
    assert score_change(p, bercy.label, best)["f1"] >= otsu["f1"]


def test_blend_scores_by_hand():
    p, m = np.array([0.2, 0.5, 0.9]), np.array([1.0, 0.0, -2.0])
    expected = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + 0.5 * m)))
    np.testing.assert_allclose(blend_scores(p, m, 0.5), expected, rtol=1e-12)
    np.testing.assert_allclose(blend_scores(p, m, 0.0), p, rtol=1e-9)  # weight 0: the model alone


def test_blend_scores_smooths_the_blended_logit_of_a_map():
    rng = np.random.default_rng(0)
    p, m = rng.uniform(0.01, 0.99, (2, 12, 15)), rng.normal(size=(2, 12, 15))  # two (H, W) maps
    logit = np.log(p / (1 - p)) + 0.4 * m
    by_hand = [1 / (1 + np.exp(-gaussian_filter(z, 1.5, mode="reflect"))) for z in logit]  # each map on its own
    np.testing.assert_allclose(blend_scores(p, m, 0.4, sigma=1.5), by_hand, rtol=1e-12)
    spot = np.full((9, 9), 0.01)
    spot[4, 4] = 0.99  # one confident pixel among sure "no change": smoothing lets its neighbours outvote it
    assert blend_scores(spot, np.zeros_like(spot), 0.0, sigma=1.0)[4, 4] < 0.5 < spot[4, 4]
    with pytest.raises(ValueError, match=r"needs \(H, W\) maps"):
        blend_scores(p[0, 0], m[0, 0], 0.4, sigma=1.0)
    with pytest.raises(ValueError, match="sigma must be a finite number of pixels >= 0"):
        blend_scores(p, m, 0.4, sigma=-1.0)


def test_detect_change_follows_what_the_training_cities_chose(detector, scene_crop):
    before = scene_crop.isel(y=slice(0, 64), x=slice(0, 64))
    after = before.copy(data=before.values * np.linspace(0.8, 1.2, 64)[None, None, :])  # a brightening to the east
    alone = change_map(detector, before, after, device="cpu")
    meta = {"threshold": 0.4, "method": "model", "blend": {"cva_weight": 0.3, "threshold": 0.6}}
    kept = detect_change(detector, meta, before, after, device="cpu")
    np.testing.assert_array_equal(kept.probability.values, alone.probability.values)
    assert kept.threshold == 0.4 and kept.method == "model" and chosen_threshold(meta) == 0.4
    blended_meta = {**meta, "method": "model + cva"}
    blended = detect_change(detector, blended_meta, before, after, device="cpu")
    magnitude = change_vector_analysis(torch.as_tensor(before.values), torch.as_tensor(after.values)).numpy()
    np.testing.assert_allclose(blended.probability.values, blend_scores(alone.probability.values, magnitude, 0.3),
                               rtol=1e-5, atol=1e-6)
    assert blended.method == "model + cva" and blended.threshold == 0.6 == chosen_threshold(blended_meta)
    assert blended.probability.rio.crs == before.rio.crs and blended.extra["cva_weight"] == 0.3
    plain = detect_change(detector, blended_meta, before, after, blend=False, device="cpu")
    np.testing.assert_array_equal(plain.probability.values, alone.probability.values)
    smoothed_meta = {**blended_meta, "blend": {"cva_weight": 0.3, "sigma": 2.0, "threshold": 0.6}}
    smoothed = detect_change(detector, smoothed_meta, before, after, device="cpu")
    np.testing.assert_allclose(smoothed.probability.values,
                               blend_scores(alone.probability.values, magnitude, 0.3, sigma=2.0), rtol=1e-5, atol=1e-6)
    assert smoothed.extra["sigma"] == 2.0 and blended.extra["sigma"] == 0.0  # older checkpoints: no smoothing


def test_best_threshold_is_the_f1_maximum():
    generator = np.random.default_rng(0)
    label = generator.random((30, 40)) < 0.2
    probability = np.round(np.clip(label * 0.3 + generator.random((30, 40)) * 0.8, 0, 1), 2)  # ties included
    best = best_threshold(probability, label.astype(np.uint8))
    f1 = {t: binary_scores(probability >= t, label)["f1"] for t in np.unique(probability)}
    assert f1[best] == max(f1.values())
    assert score_change(probability, label, best) == binary_scores(probability >= best, label)
    with pytest.raises(ValueError, match="no changed pixel"):
        best_threshold(probability, np.zeros((30, 40)))
    with pytest.raises(ValueError, match=r"\[1, 2\]"):
        score_change(probability, label + 1, 0.5)


# -- pairs larger than memory ---------------------------------------------------------------------------------------
@needs_oscd
def test_a_pair_larger_than_memory_is_read_a_band_of_rows_at_a_time(detector, bercy, tmp_path, monkeypatch):
    """Over the memory limit: both dates read lazily a band of rows at a time, statistics on strided samples, the
    result close to the in-memory one (equal without normalisation), and the blend smoothed band by band exactly."""
    crop = {"y": slice(0, 300), "x": slice(0, 200)}
    before, after = bercy.before.isel(crop), bercy.after.isel(crop)
    after = after.copy(deep=True)
    after.values[3, 5:9, 7:11] = np.nan
    write_geotiff(before, tmp_path / "before.tif")
    write_geotiff(after, tmp_path / "after.tif")
    lazy_b, lazy_a = open_raster(tmp_path / "before.tif"), open_raster(tmp_path / "after.tif")
    meta = {"normalize": "moments", "method": "model + cva", "threshold": 0.5,
            "blend": {"cva_weight": 0.7, "sigma": 1.0, "threshold": 0.6}}
    memory = {n: detect_change(detector, {**meta, "normalize": n}, before, after, device="cpu")
              for n in (None, "moments", "quantiles")}
    monkeypatch.setenv("S2LAB_MEMORY_LIMIT_GIB", "0.02")  # 21 MB: under the 2 x 6 copies of 10 x 300 x 200 floats
    for normalize, tolerance in ((None, 1e-6), ("moments", 1e-4), ("quantiles", 0.05)):
        large = detect_change(detector, {**meta, "normalize": normalize}, lazy_b, lazy_a, device="cpu")
        np.testing.assert_allclose(large.probability.values, memory[normalize].probability.values, atol=tolerance)
        assert large.nan_fraction == memory[normalize].nan_fraction == pytest.approx(16 / 60000)
        if normalize is not None:
            assert "strided sample of 60000 px per band" in large.extra["normalize"]
    magnitude, _ = cva_magnitude(lazy_b, lazy_a)
    monkeypatch.delenv("S2LAB_MEMORY_LIMIT_GIB")
    np.testing.assert_allclose(magnitude.numpy(), cva_magnitude(before, after)[0].numpy(), rtol=1e-4, atol=1e-4)
    p, m = np.random.default_rng(0).random((2, 2 * BLEND_ROWS + 37, 20))  # more rows than two blend bands
    result = ChangeResult(probability=xr.DataArray(p.astype(np.float32), dims=("y", "x")), threshold=0.5,
                          method="model", nan_fraction=0.0)
    monkeypatch.setattr("s2lab.change.cva_magnitude", lambda b, a: (torch.as_tensor(m, dtype=torch.float32), 0.0))
    banded = blend_with_cva(result, None, None, 0.5, 0.5, sigma=1.5).probability.values
    whole = blend_scores(p.astype(np.float32), m.astype(np.float32), 0.5, sigma=1.5)  # all rows at once
    np.testing.assert_allclose(banded, whole, rtol=1e-6)
