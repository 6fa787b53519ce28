"""reconstruct: whole images window by window, on crops of the real embedded scene.

The models are small and untrained: their quality does not matter here, the mechanics do (windows, padding,
masks, georeference, validation, determinism).
"""

import numpy as np
import pytest
import torch

from s2lab.baselines import FILL_NAMES, gaussian_fill
from s2lab.data.export import write_geotiff
from s2lab.data.raster import RasterError, open_raster
from s2lab.metrics import spectral_angle
from s2lab.models import S2MAE, SatMAE
from s2lab.reconstruct import reconstruct_image, reconstruct_tiles
from _tiny import TINY


@pytest.fixture(scope="module")
def mae():
    return S2MAE(**TINY).eval()


# -- reconstruct_image ----------------------------------------------------------------------------------------------
def test_reconstruct_image_keeps_input_and_georeference(mae, scene_crop):
    result = reconstruct_image(mae, scene_crop, mask_ratio=0.75, seed=3, device="cpu")
    for da in (result.prediction, result.pasted, result.mask):
        assert da.dims == ("band", "y", "x") and da.shape == scene_crop.shape
        assert da.rio.crs == scene_crop.rio.crs
        assert da.rio.transform() == scene_crop.rio.transform()
        assert list(da["band"].values) == list(scene_crop["band"].values)
    assert result.mask.dtype == np.uint8 and set(np.unique(result.mask.values)) == {0, 1}
    kept, removed = result.mask.values == 0, result.mask.values == 1
    assert np.array_equal(result.pasted.values[kept], scene_crop.values[kept])  # exactly the input where kept
    assert np.array_equal(result.pasted.values[removed], result.prediction.values[removed])
    assert abs(result.masked_fraction - 0.75) < 0.03
    assert result.masked_fraction == pytest.approx(float(removed.mean()))
    assert result.windows == 5 * 7  # 150 x 200 padded to 160 x 224
    assert np.isfinite(result.prediction.values).all()
    assert set(result.scores) == {"model", *FILL_NAMES}
    for scores in result.scores.values():
        assert set(scores) == {"mse", "psnr", "sam_deg"} and all(np.isfinite(v) for v in scores.values())
    assert result.nan_fraction == 0.0 and result.device == "cpu" and result.seconds > 0
    assert "prediction" not in result.summary() and result.summary()["windows"] == 35


def test_reconstruct_image_matches_the_documented_windows_and_masks(mae, scene_crop):
    """50 x 60 px mirrored to 64 x 64 is 4 windows; batches of 2 draw their masks from seeds seed + 0 and seed + 1."""
    image = scene_crop.values[:, :50, :60]
    result = reconstruct_image(mae, torch.as_tensor(image), mask_ratio=0.5, seed=7, batch_size=2, device="cpu")
    padded = torch.as_tensor(np.pad(image, ((0, 0), (0, 14), (0, 4)), mode="reflect"))
    corners = [(0, 0), (0, 32), (32, 0), (32, 32)]  # row by row, as tile lays them out
    windows = torch.stack([padded[:, r : r + 32, c : c + 32] for r, c in corners])
    prediction, mask, error = (torch.zeros_like(padded) for _ in range(3))
    angle = torch.zeros(padded.shape[1:])  # spectral angle of the pasted pixel, between reflectance spectra
    for k in range(2):
        batch = windows[2 * k : 2 * k + 2]
        rec = mae.reconstruct(batch, mask_ratio=0.5, generator=torch.Generator().manual_seed(7 + k))
        squared = (rec.prediction - batch) ** 2  # the error in reflectance, the lab's yardstick
        angles = spectral_angle(torch.where(rec.mask.bool(), rec.prediction, batch), batch)  # (2, w, w)
        for j, (r, c) in enumerate(corners[2 * k : 2 * k + 2]):
            prediction[:, r : r + 32, c : c + 32], mask[:, r : r + 32, c : c + 32] = rec.prediction[j], rec.mask[j]
            error[:, r : r + 32, c : c + 32], angle[r : r + 32, c : c + 32] = squared[j], angles[j]
    np.testing.assert_allclose(result.prediction.values, prediction[:, :50, :60].numpy(), rtol=1e-5, atol=1e-6)
    assert np.array_equal(result.mask.values, mask[:, :50, :60].numpy().astype(np.uint8))
    removed = mask[:, :50, :60].bool()  # scored: removed pixels of the image, not of the mirrored padding
    expected_mse = float(error[:, :50, :60][removed].mean())
    assert result.scores["model"]["mse"] == pytest.approx(expected_mse, rel=1e-4)
    expected_sam = float(np.degrees(angle[:50, :60][removed.any(dim=0)].mean().item()))
    assert result.scores["model"]["sam_deg"] == pytest.approx(expected_sam, rel=1e-4)


@pytest.mark.parametrize("shape", [(37, 45), (20, 27)])
def test_non_multiple_and_small_images_keep_their_shape(mae, scene_crop, shape):
    image = torch.as_tensor(scene_crop.values[:, : shape[0], : shape[1]])
    result = reconstruct_image(mae, image, mask_ratio=0.75, device="cpu")
    assert result.pasted.shape == (10, *shape) and result.pasted.dims == ("band", "y", "x")
    kept = result.mask.values == 0
    assert np.array_equal(result.pasted.values[kept], image.numpy()[kept])
    assert np.isfinite(result.prediction.values).all()


def test_overlap_blending_leaves_no_seams_on_constant_input():
    """Per-window min-max scaling maps a flat field to 0 in every window, so any model predicts the field itself."""
    mae = S2MAE(**TINY, scaling="window").eval()
    spectrum = torch.linspace(0.05, 0.3, 10)  # a flat field of one real-looking spectrum
    image = spectrum[:, None, None].expand(-1, 70, 90).clone()
    result = reconstruct_image(mae, image, mask_ratio=0.75, overlap=12, device="cpu")
    assert result.windows > 9  # (70 x 90 padded to 96 x 96, a window every 20 px) more than without overlap
    for values in (result.prediction.values, result.pasted.values):
        np.testing.assert_allclose(values, spectrum[:, None, None].expand(-1, 70, 90).numpy(), atol=1e-5)
    assert 0.3 < result.masked_fraction < 0.75  # removed only where every covering window removed it


def test_overlap_pastes_the_input_where_any_window_kept_it(mae, scene_crop):
    result = reconstruct_image(mae, scene_crop.isel(y=slice(0, 60), x=slice(0, 70)), mask_ratio=0.75, overlap=16,
                               device="cpu")
    kept = result.mask.values == 0
    assert np.array_equal(result.pasted.values[kept], scene_crop.values[:, :60, :70][kept])
    assert np.isfinite(result.prediction.values).all()


def test_wrong_band_count_names_both_counts_and_the_bands(mae, scene_crop):
    with pytest.raises(ValueError, match=r"4 bands \(B02, B03, B04, B05\).*takes 10"):
        reconstruct_image(mae, scene_crop.isel(band=slice(0, 4)), device="cpu")


def test_bad_sizes_raise(mae, scene_crop):
    with pytest.raises(ValueError, match="smaller than one 8 x 8 patch"):
        reconstruct_image(mae, scene_crop.isel(y=slice(0, 5)), device="cpu")
    with pytest.raises(ValueError, match="multiple of the model's patch size 8"):
        reconstruct_image(mae, scene_crop, window=20, device="cpu")
    with pytest.raises(ValueError, match=r"overlap 32 must be in \[0, 32\)"):
        reconstruct_image(mae, scene_crop, overlap=32, device="cpu")


def test_reconstruct_image_refuses_before_any_window(lab, mae):
    crop = open_raster(lab / "inputs" / "crop.tif")
    part = crop.copy(data=crop.values.copy())
    part.loc["B05"] = np.nan
    cases = [
        (open_raster(lab / "inputs" / "oneband.tif"), {}, r"has 1 bands \(band1\) but the model takes 10"),
        (open_raster(lab / "inputs" / "rgb_named.tif"), {}, r"has 3 bands \(B04, B03, B02\) but the model takes 10"),
        (open_raster(lab / "inputs" / "allnan.tif"), {}, r"the image is NaN everywhere"),
        (part, {}, r"has bands that are NaN everywhere \(B05\)"),
        (open_raster(lab / "inputs" / "small.tif"), {}, r"5 x 5 px is smaller than one 8 x 8 patch"),
        (crop, {"mask_ratio": 1.0}, r"mask ratio must be in \[0, 1\), got 1\.0"),
        (crop, {"mask_ratio": -0.1}, r"mask ratio must be in \[0, 1\), got -0\.1"),
        (crop, {"mask_ratio": float("nan")}, r"mask ratio must be in \[0, 1\), got nan"),
        (crop, {"mask_ratio": 0.999}, r"mask ratio 0\.999 keeps no token of \d+"),
        (crop, {"strategy": "diagonal"}, r"unknown masking strategy 'diagonal'"),
    ]
    windows = []
    original = mae.reconstruct
    mae.reconstruct = lambda *args, **kwargs: windows.append(1) or original(*args, **kwargs)
    try:
        for image, kwargs, message in cases:
            with pytest.raises(ValueError, match=message):
                reconstruct_image(mae, image, **kwargs)
    finally:
        del mae.reconstruct
    assert windows == []  # every refusal came before the first window


def test_nan_pixels_are_filled_and_reported(mae, scene_crop):
    image = scene_crop.isel(y=slice(0, 40), x=slice(0, 48)).copy()
    image.values[:, 5:10, 7:13] = np.nan  # 30 of 1920 pixels of nodata
    image.values[3, 20, 30] = np.nan  # one more, in one band only
    result = reconstruct_image(mae, image, mask_ratio=0.5, device="cpu")
    assert result.nan_fraction == pytest.approx(31 / 1920)
    assert np.isfinite(result.prediction.values).all()
    nan = np.isnan(image.values)
    assert np.array_equal(np.isnan(result.pasted.values), nan & (result.mask.values == 0))
    lower_median = [np.sort(band[~np.isnan(band)])[(np.sum(~np.isnan(band)) - 1) // 2] for band in image.values]
    filled = np.where(nan, np.array(lower_median)[:, None, None], image.values)  # torch.nanmedian's median
    expected = reconstruct_image(mae, torch.as_tensor(filled), mask_ratio=0.5, device="cpu")
    np.testing.assert_array_equal(result.prediction.values, expected.prediction.values)
    everywhere = image.copy()
    everywhere.values[:] = np.nan
    with pytest.raises(ValueError, match="NaN everywhere"):
        reconstruct_image(mae, everywhere, device="cpu")
    one_band = image.copy()
    one_band.values[2] = np.nan
    with pytest.raises(ValueError, match="B04"):
        reconstruct_image(mae, one_band, device="cpu")


def test_scores_can_be_skipped_or_kept_to_the_model(mae, scene_crop):
    """Scoring never changes the pictures; the model's score is the same with or without the baselines."""
    image = scene_crop.isel(y=slice(0, 64), x=slice(0, 96))
    full = reconstruct_image(mae, image, seed=2, batch_size=2, device="cpu")
    model_only = reconstruct_image(mae, image, seed=2, batch_size=2, device="cpu", baselines=False)
    none = reconstruct_image(mae, image, seed=2, batch_size=2, device="cpu", score=False)
    assert set(full.scores) == {"model", *FILL_NAMES} and set(model_only.scores) == {"model"} and none.scores == {}
    assert model_only.scores["model"] == pytest.approx(full.scores["model"], rel=1e-6)
    for other in (model_only, none):
        assert np.array_equal(other.pasted.values, full.pasted.values)
        assert np.array_equal(other.mask.values, full.mask.values)


def test_determinism_under_seed(mae, scene_crop):
    image = scene_crop.isel(y=slice(0, 64), x=slice(0, 80))
    a = reconstruct_image(mae, image, seed=5, device="cpu")
    b = reconstruct_image(mae, image, seed=5, device="cpu")
    c = reconstruct_image(mae, image, seed=6, device="cpu")
    assert np.array_equal(a.mask.values, b.mask.values) and np.array_equal(a.pasted.values, b.pasted.values)
    assert a.scores == b.scores
    assert not np.array_equal(a.mask.values, c.mask.values)


def test_satmae_and_training_mode_restored(scene_crop):
    model = SatMAE(**TINY).train()
    result = reconstruct_image(model, scene_crop.isel(y=slice(0, 40), x=slice(0, 40)), mask_ratio=0.6, device="cpu")
    assert model.training  # put back as it was
    assert result.pasted.shape == (10, 40, 40) and set(result.scores) == {"model", *FILL_NAMES}


# -- reconstruct_tiles ----------------------------------------------------------------------------------------------
def test_reconstruct_tiles_scores_in_reflectance(mae, scene_crop):
    x = torch.as_tensor(scene_crop.values[None, :, :32, :64])
    out = reconstruct_tiles(mae, x, mask_ratio=0.75, strategy="tube", seed=2)
    assert out["pasted"].shape == x.shape and out["mask"].mean().item() == pytest.approx(0.75, abs=0.02)
    removed = out["mask"].bool()
    mse = float(((out["prediction"] - x)[removed] ** 2).mean())
    assert out["scores"]["model"]["mse"] == pytest.approx(mse, rel=1e-4)
    assert out["scores"]["model"]["psnr"] == pytest.approx(10 * np.log10(1.0 / mse), rel=1e-4)  # peak 1 reflectance
    gaussian = gaussian_fill(x, out["mask"], 4.0)
    assert out["scores"]["gaussian_4px"]["mse"] == pytest.approx(float(((gaussian - x)[removed] ** 2).mean()), rel=1e-4)
    again = reconstruct_tiles(mae, x, mask_ratio=0.75, strategy="tube", seed=2)
    assert torch.equal(again["mask"], out["mask"]) and again["scores"] == out["scores"]


# -- a band of rows at a time ---------------------------------------------------------------------------------------
def test_written_a_band_of_rows_at_a_time_equals_in_memory(mae, scene_crop, tmp_path):
    """out=: the file read lazily and the pasted image written as rows finish, equal to the in-memory result."""
    image = scene_crop.copy(deep=True)
    image.values[2, 10:20, 30:40] = np.nan
    image.values[:, 120, 5] = np.nan
    write_geotiff(image, tmp_path / "in.tif")
    kwargs = dict(mask_ratio=0.6, seed=5, overlap=8, batch_size=3, device="cpu")
    memory = reconstruct_image(mae, image, **kwargs)
    streamed = reconstruct_image(mae, open_raster(tmp_path / "in.tif"), out=tmp_path / "out.tif", **kwargs)
    assert streamed.prediction is None and streamed.pasted is None and streamed.output == str(tmp_path / "out.tif")
    back = open_raster(tmp_path / "out.tif")
    np.testing.assert_array_equal(back.values, memory.pasted.values)  # NaN where removed nowhere, as the input
    assert back.rio.crs == image.rio.crs and back.rio.transform() == image.rio.transform()
    assert list(back["band"].values) == list(image["band"].values)
    assert streamed.scores == memory.scores
    assert (streamed.masked_fraction, streamed.nan_fraction, streamed.windows) == (
        memory.masked_fraction, memory.nan_fraction, memory.windows)
    assert streamed.nan_fraction == pytest.approx((100 + 1) / (150 * 200))
    assert "output" in streamed.summary() and "pasted" not in streamed.summary()


def test_over_the_memory_limit_is_refused_in_one_line(mae, scene_crop, tmp_path, monkeypatch):
    """In memory: refused beyond the limit, naming the size and the limit; out= needs only a band of rows."""
    monkeypatch.setenv("S2LAB_MEMORY_LIMIT_GIB", "0.0062")  # 6.3 MiB: 10 x 150 x 200 needs 6.9 MiB in memory
    refusal = (r"^an image of 10 x 150 x 200 px needs about 6\.9 MiB for reconstructing it in memory \(or pass out=\), "
               r"over the memory limit of 6\.3 MiB \(S2LAB_MEMORY_LIMIT_GIB\)")
    with pytest.raises(RasterError, match=refusal):
        reconstruct_image(mae, scene_crop, device="cpu")
    result = reconstruct_image(mae, scene_crop, device="cpu", out=tmp_path / "out.tif")
    assert result.windows == 35 and (tmp_path / "out.tif").exists()
    monkeypatch.setenv("S2LAB_MEMORY_LIMIT_GIB", "0.0001")  # not even a band of rows
    with pytest.raises(RasterError, match="for a band of rows of it"):
        reconstruct_image(mae, scene_crop, device="cpu", out=tmp_path / "other.tif")
    assert not (tmp_path / "other.tif").exists()
    monkeypatch.setenv("S2LAB_MEMORY_LIMIT_GIB", "lots")
    with pytest.raises(ValueError, match="S2LAB_MEMORY_LIMIT_GIB='lots' is not a positive number of GiB"):
        reconstruct_image(mae, scene_crop, device="cpu")

