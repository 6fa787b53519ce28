"""The explorer app's state, driven by setting its parameters (no browser, no panel)."""

import numpy as np
import pytest

pytest.importorskip("param", reason="the explorer's state needs param (the lab extra)")
pytest.importorskip("matplotlib", reason="the explorer's colour maps come from matplotlib (the lab extra)")

from s2lab import viz
from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.export import write_geotiff
from s2lab.explorer import BANDS, CROP, MAX_UPLOAD_MB, Explorer, embedded_source

UPLOAD_WINDOW = (slice(1100, 1292), slice(380, 572))  # 192 x 192 px of fields and a village, held-out half



@pytest.fixture(scope="module")
def state():
    return Explorer()


@pytest.fixture(scope="module")
def upload_bytes(tmp_path_factory):
    """A real 10-band crop of the embedded scene's held-out half, as a GeoTIFF's bytes."""
    scene = open_embedded_scene(BANDS)
    assert UPLOAD_WINDOW[0].start >= split_rows(scene.sizes["y"], "eval").start
    path = tmp_path_factory.mktemp("upload") / "crop.tif"
    write_geotiff(scene.isel(y=UPLOAD_WINDOW[0], x=UPLOAD_WINDOW[1]), path)
    return path.read_bytes()


def test_opens_on_the_embedded_scene_with_every_view(state):
    source = state.source
    assert source.key == "embedded" and source.held_out
    assert tuple(source.crop.shape) == (len(BANDS), CROP, CROP)
    rec = state.reconstructed
    assert set(rec.pictures) == {"original", "masked s2mae", "s2mae", "error s2mae", "masked satmae", "satmae",
                                 "error satmae"}
    assert all(p.shape == (CROP, CROP, 3) and p.dtype == np.uint8 for p in rec.pictures.values())
    for model in ("s2mae", "satmae"):
        assert np.isfinite(rec.scores[model]["psnr"]) and 0 < rec.scores[model]["sam_deg"] < 90
        assert rec.removed[model] == pytest.approx(state.mask_ratio, abs=0.02)
    assert state.scene.picture.ndim == 3 and max(state.scene.picture.shape[:2]) <= 512
    counts = state.tokens.counts
    assert counts["L"] == counts["G"] * counts["N"] and counts["tokens_shape"] == (1, counts["L"], counts["P"])
    assert state.changed is None  # the change map starts only when asked for
    assert viz.png(rec.pictures["original"]).startswith(b"\x89PNG")


def test_mask_ratio_changes_the_reconstruction(state):
    state.param.update(mask_ratio=0.75, strategy="random", seed=0)
    before = state.reconstructed
    state.mask_ratio = 0.25
    after = state.reconstructed
    assert after.mask_ratio == 0.25
    assert after.removed["s2mae"] == pytest.approx(0.25, abs=0.02)
    assert not np.array_equal(before.pictures["masked s2mae"], after.pictures["masked s2mae"])
    assert not np.array_equal(before.pictures["s2mae"], after.pictures["s2mae"])
    assert np.array_equal(before.pictures["original"], after.pictures["original"])
    assert after.scores["s2mae"]["psnr"] != before.scores["s2mae"]["psnr"]
    state.mask_ratio = 0.75
    assert np.array_equal(state.reconstructed.pictures["s2mae"], before.pictures["s2mae"])  # same seed, same mask


def test_strategy_and_seed_change_the_mask(state):
    state.param.update(mask_ratio=0.75, strategy="random", seed=0)
    random = state.reconstructed.pictures["masked s2mae"]
    state.strategy = "tube"
    tube = state.reconstructed
    assert tube.strategy == "tube"
    removed = np.all(tube.pictures["masked s2mae"] != tube.pictures["original"], axis=-1)  # (H, W) greyed pixels
    assert removed.mean() == pytest.approx(0.75, abs=0.05)  # a tube removes a location in every band
    assert not np.array_equal(random, tube.pictures["masked s2mae"])
    state.seed = 1
    assert not np.array_equal(tube.pictures["masked s2mae"], state.reconstructed.pictures["masked s2mae"])
    state.param.update(strategy="random", seed=0)


def test_token_sliders_change_the_counts(state):
    state.param.update(patch_size=16, bands_per_token=5)
    c = state.tokens.counts
    assert (c["G"], c["N"], c["L"], c["P"]) == (2, (CROP // 16) ** 2, 2 * (CROP // 16) ** 2, 5 * 16 * 16)
    assert c["satmae_L"] == 3 * c["N"]
    state.bands_per_token = 3
    assert state.tokens.counts["G"] == 4  # ceil(10 / 3): the last cube is padded
    state.param.update(patch_size=8, bands_per_token=2)


def test_tapped_pixel_shows_its_spectrum_and_nearest_materials(state):
    state.pick(1500, 1700)  # open sea
    view = state.spectrum
    assert view.pixel == (1500, 1700)
    np.testing.assert_array_equal(view.values, state.source.image.values[:, 1500, 1700])
    angles = [n["angle_deg"] for n in view.nearest]
    assert angles == sorted(angles)
    assert view.nearest[0]["material"] == "water"
    state.pick(10**6, -5)  # clipped into the image
    assert state.spectrum.pixel == (state.source.image.sizes["y"] - 1, 0)


def test_custom_composite_changes_the_pictures(state):
    true_colour = state.reconstructed.pictures["original"]
    state.param.update(composite="custom", red="B12", green="B08", blue="B02")
    assert state.bands() == ("B12", "B08", "B02")
    assert not np.array_equal(true_colour, state.reconstructed.pictures["original"])
    state.composite = "true colour"
    assert np.array_equal(true_colour, state.reconstructed.pictures["original"])


def test_one_band_upload_is_refused_with_a_message(tmp_path, state):
    scene = open_embedded_scene(["B04"])
    path = tmp_path / "red.tif"
    write_geotiff(scene.isel(y=UPLOAD_WINDOW[0], x=UPLOAD_WINDOW[1]), path)
    assert not state.upload(path.read_bytes(), "red.tif")
    assert "1 band" in state.message and "B02" in state.message
    assert state.source is embedded_source()


@pytest.mark.parametrize(
    "data, name, expected",
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "picture.tif", "not a GeoTIFF"),
        (bytes(64), "notes.txt", "expected a .tif"),
        (bytes((MAX_UPLOAD_MB + 1) * 2**20), "huge.tif", f"up to {MAX_UPLOAD_MB} MB"),
    ],
)
def test_bad_uploads_are_refused(state, data, name, expected):
    assert not state.upload(data, name)
    assert expected in state.message and name in state.message
    assert state.source is embedded_source()


def test_upload_is_shown_everywhere_and_only_in_its_session(upload_bytes):
    mine, other = Explorer(), Explorer()
    assert mine.upload(upload_bytes, "crop.tif"), mine.message
    assert mine.source.name == "upload crop.tif" and not mine.source.held_out
    H, W = (s.stop - s.start for s in UPLOAD_WINDOW)
    assert mine.scene.shape == (H, W)
    expected = viz.to_uint8(viz.composite(mine.source.crop, "true colour", bands=BANDS,
                                          limits=viz.stretch_limits(viz.composite_bands(mine.source.crop,
                                                                                        "true colour", BANDS))))
    np.testing.assert_array_equal(mine.reconstructed.pictures["original"], expected)
    assert mine.tokens.counts["H"] == CROP
    assert other.source is embedded_source()  # another session never sees the upload
    assert not np.array_equal(other.reconstructed.pictures["original"], mine.reconstructed.pictures["original"])
    mine.use_default()
    assert mine.source is embedded_source()


def test_change_on_an_upload_is_synthetic_and_the_threshold_moves_the_scores(upload_bytes):
    state = Explorer()
    assert state.upload(upload_bytes, "crop.tif"), state.message
    assert state.refresh_change(wait=True)
    view = state.changed
    assert view.synthetic and "SYNTHETIC" in view.name
    assert 0 < view.changed_share < 0.5
    assert view.pictures["overlay"].shape == view.pictures["after"].shape
    state.threshold = 0.05
    low = state.changed.scores
    state.threshold = 0.95
    high = state.changed.scores
    assert low["recall"] >= high["recall"] and low != high
    assert not np.array_equal(state.changed.pictures["overlay"], view.pictures["overlay"])


def test_change_pictures_of_a_large_pair_are_subsampled_but_scored_in_full(upload_bytes, monkeypatch):
    from s2lab.evaluate import score_change
    from s2lab.explorer import state as state_module

    monkeypatch.setattr(state_module, "CHANGE_PICTURE_SIDE", 100)  # the 256 px planted pair counts as large
    state = Explorer()
    assert state.upload(upload_bytes, "crop.tif"), state.message
    assert state.refresh_change(wait=True)
    state.threshold = 0.37  # a cut no other test made: computed now, under the patched side
    view, pair = state.changed, state._pair
    H, W = pair.probability.shape
    step = -(-max(H, W) // 100)
    assert step > 1 and view.step == step
    assert all(p.shape == (-(-H // step), -(-W // step), 3) for p in view.pictures.values())
    assert view.scores == score_change(pair.probability, pair.pair.label, 0.37)
