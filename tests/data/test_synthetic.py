"""data.synthetic: change pairs, EuroSAT-like and BigEarthNet-19-like sets made from the real scene and real spectra."""

import numpy as np
import pytest
import torch

from s2lab.data import synthetic
from s2lab.data.corine import LABELS_19
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.eurosat import EUROSAT_CLASSES
from s2lab.data.synthetic import (
    COVERS,
    KINDS,
    PlantConfig,
    cover_map,
    plant_changes,
    scene_radiometry,
    split_rows,
    synthetic_change_dataset,
    synthetic_multilabel,
    synthetic_scene_classification,
)
from s2lab.sensors import S2_10BANDS

NOISE = PlantConfig().noise_std


@pytest.fixture(scope="module")
def scene():
    return open_embedded_scene()


@pytest.fixture(scope="module")
def crop(scene):
    """256 x 256 px of farmland, forest and a creek (rows 600-855, columns 600-855)."""
    return scene.isel(y=slice(600, 856), x=slice(600, 856))


@pytest.fixture(scope="module")
def pair(crop):
    return plant_changes(crop, n=8, rng=np.random.default_rng(0))


def _residual(pair):
    """after - (gain * before + offset): the after-date noise outside the mask, the planted change inside."""
    expected = pair.gain[:, None, None] * pair.before.values + pair.offset[:, None, None]
    return pair.after.values - expected  # (C, H, W)


def test_cover_map_finds_the_scenes_covers(crop):
    cover = cover_map(crop)
    assert cover.dims == ("y", "x") and cover.dtype == np.uint8 and cover.attrs["covers"] == COVERS
    fractions = {name: float((cover.values == k).mean()) for k, name in enumerate(COVERS)}
    assert all(fractions[c] > 0.02 for c in ("water", "forest", "green", "bare")), fractions
    water = cover.values == COVERS.index("water")
    nir = crop.sel(band="B08").values
    assert nir[water].mean() < 0.05 < nir[cover.values == COVERS.index("green")].mean()


def test_mask_is_exact(pair):
    residual = _residual(pair)
    mask = pair.label.values.astype(bool)
    largest = np.abs(residual).max(axis=0)  # (H, W) the largest band difference at each pixel
    assert largest[~mask].max() < 7 * NOISE  # outside: only the documented gain, offset and noise
    assert residual[:, ~mask].std() == pytest.approx(NOISE, rel=0.05)
    assert np.mean(largest[mask] > 4 * NOISE) > 0.95  # inside: clearly changed, pixel by pixel
    assert np.mean(largest[~mask] > 4 * NOISE) < 0.002


def test_every_region_is_clearly_changed(pair):
    residual = _residual(pair)
    for k, kind in enumerate(pair.kinds, start=1):
        region = pair.regions.values == k
        change = np.abs(residual[:, region]).mean(axis=1)  # (C,) mean change of each band
        assert change.max() > 0.03, (kind, change)


def test_all_kinds_appear_and_regions_match_the_mask(pair, crop):
    assert set(pair.kinds) == set(KINDS) and len(pair.kinds) == 8
    regions = pair.regions.values
    assert sorted(np.unique(regions)) == list(range(len(pair.kinds) + 1))
    np.testing.assert_array_equal(pair.label.values, (regions > 0).astype(np.uint8))
    cover = cover_map(crop).values
    water = COVERS.index("water")
    for k, kind in enumerate(pair.kinds, start=1):
        planted_on = cover[regions == k]
        assert (planted_on != water).all(), kind  # nothing is planted on water
        if kind in ("burn_scar", "cleared_field"):
            assert np.isin(planted_on, [COVERS.index("forest"), COVERS.index("green")]).all(), kind


def test_after_differs_everywhere_as_a_real_pair(pair):
    outside = ~pair.label.values.astype(bool)
    assert np.mean(pair.after.values[:, outside] != pair.before.values[:, outside]) > 0.99
    assert np.all(np.abs(pair.gain - 1) <= PlantConfig().gain) and np.all(np.abs(pair.offset) <= PlantConfig().offset)


def test_synthetic_flags_and_georeference(pair, crop):
    assert pair.synthetic is True and "SYNTHETIC" in pair.description
    for array in (pair.before, pair.after, pair.label, pair.regions):
        assert array.attrs["synthetic"] is True
        assert array.rio.crs == crop.rio.crs and array.rio.transform() == crop.rio.transform()
    assert pair.before.dims == pair.after.dims == ("band", "y", "x") and pair.label.dims == ("y", "x")
    assert pair.label.dtype == np.uint8 and pair.after.dtype == np.float32
    np.testing.assert_array_equal(pair.before.values, crop.values)
    assert list(pair.after["band"].values) == list(S2_10BANDS)


def test_same_seed_same_pair_other_seed_other_pair(crop):
    small = crop.isel(y=slice(0, 96), x=slice(0, 96))
    reference = scene_radiometry(crop)
    a = plant_changes(small, n=4, rng=np.random.default_rng(7), reference=reference)
    b = plant_changes(small, n=4, rng=np.random.default_rng(7), reference=reference)
    c = plant_changes(small, n=4, rng=np.random.default_rng(8), reference=reference)
    np.testing.assert_array_equal(a.after.values, b.after.values)
    np.testing.assert_array_equal(a.regions.values, b.regions.values)
    assert not np.array_equal(a.after.values, c.after.values)
    t1 = plant_changes(small, n=4, rng=torch.Generator().manual_seed(3), reference=reference)
    t2 = plant_changes(small, n=4, rng=torch.Generator().manual_seed(3), reference=reference)
    np.testing.assert_array_equal(t1.after.values, t2.after.values)


def test_plant_changes_rejects_bad_input(crop):
    with pytest.raises(ValueError, match="tornado"):
        plant_changes(crop, kinds=("tornado",), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="B11"):
        plant_changes(crop.sel(band=["B02", "B03", "B04", "B08"]), rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        plant_changes(crop, rng=0)
    with pytest.raises(ValueError, match="dims"):
        plant_changes(crop.transpose("y", "x", "band"), rng=np.random.default_rng(0))


def test_split_rows_are_disjoint_halves():
    train, evaluation = split_rows(1947, "train"), split_rows(1947, "eval")
    assert (train.start, train.stop, evaluation.start, evaluation.stop) == (0, 973, 973, 1947)
    with pytest.raises(ValueError, match="test"):
        split_rows(1947, "test")


def test_change_dataset_tiles_come_from_their_split(scene):
    west = scene.isel(x=slice(0, 700))  # farmland: every window has room for changes
    H = west.sizes["y"]
    for split in ("train", "eval"):
        tiles = synthetic_change_dataset(6, 32, rng=np.random.default_rng(1), scene=west, split=split)
        before, after, mask = tiles
        assert before.shape == after.shape == (6, 10, 32, 32) and mask.shape == (6, 32, 32)
        assert before.dtype == torch.float32 and mask.dtype == torch.uint8
        assert set(mask.unique().tolist()) <= {0, 1} and mask.float().mean() > 0.02
        rows = split_rows(H, split)
        assert all(rows.start <= r and r + 32 <= rows.stop for r, _ in tiles.origins.tolist())
        for b, (r, c) in enumerate(tiles.origins.tolist()):
            np.testing.assert_array_equal(before[b].numpy(), west.values[:, r : r + 32, c : c + 32])
            assert all(k in KINDS for k in tiles.kinds[b])
        assert tiles.synthetic is True and tiles.split == split and "SYNTHETIC" in tiles.description
    with pytest.raises(ValueError, match="does not fit"):
        synthetic_change_dataset(1, 400, rng=np.random.default_rng(0), scene=west.isel(y=slice(0, 600)))


@pytest.fixture(scope="module")
def scenes():
    return synthetic_scene_classification(3, size=32, rng=np.random.default_rng(0))


def _ndvi(x):
    bands = list(S2_10BANDS)
    red, nir = x[:, bands.index("B04")], x[:, bands.index("B08")]
    return (nir - red) / (nir + red)


def _ndwi(x):
    bands = list(S2_10BANDS)
    green, nir = x[:, bands.index("B03")], x[:, bands.index("B08")]
    return (green - nir) / (green + nir)


def test_scene_classification_shapes_balance_and_flags(scenes):
    x, y, classes = scenes
    assert x.shape == (30, 10, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert classes == EUROSAT_CLASSES
    assert torch.bincount(y, minlength=10).tolist() == [3] * 10
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() < 1.5
    assert scenes.synthetic is True and "SYNTHETIC" in scenes.description
    assert set(scenes.recipes) == set(EUROSAT_CLASSES)


def test_scene_classes_look_like_their_names(scenes):
    x, y, classes = scenes
    per_class = {name: x[y == k] for k, name in enumerate(classes)}
    assert (_ndwi(per_class["SeaLake"]).median(dim=0).values > 0).all()  # water everywhere
    assert _ndvi(per_class["Pasture"]).mean() > 0.5
    assert _ndvi(per_class["Forest"]).mean() > 0.4
    assert _ndwi(per_class["River"]).amax(dim=(1, 2)).min() > 0  # every river image holds water
    assert _ndwi(per_class["Forest"]).amax(dim=(1, 2)).max() < 0  # and no forest image does


def test_scene_classification_is_deterministic_and_split_dependent(scenes):
    again = synthetic_scene_classification(3, size=32, rng=np.random.default_rng(0))
    torch.testing.assert_close(again.x, scenes.x, rtol=0, atol=0)
    held_out = synthetic_scene_classification(3, size=32, rng=np.random.default_rng(0), split="eval")
    assert not torch.equal(held_out.x, scenes.x)
    with pytest.raises(ValueError, match="size"):
        synthetic_scene_classification(1, size=4, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def multilabel():
    return synthetic_multilabel(40, size=32, rng=np.random.default_rng(0))


def test_multilabel_shapes_and_labels_match_the_label_map(multilabel):
    x, y, classes = multilabel
    assert x.shape == (40, 10, 32, 32) and y.shape == (40, 19) and y.dtype == torch.float32
    assert classes == LABELS_19 and multilabel.synthetic is True
    assert ((y.sum(dim=1) >= 1) & (y.sum(dim=1) <= 4)).all()
    for b in range(40):
        present = torch.zeros(19)
        present[multilabel.label_map[b].unique()] = 1.0
        torch.testing.assert_close(y[b], present)
    counts = y.sum(dim=0)
    assert (counts >= 1).all() and counts.max() <= 3 * counts.mean()  # every class drawn, none dominating


def test_multilabel_regions_look_like_their_classes(multilabel):
    x, _, classes = multilabel
    ndwi, ndvi = _ndwi(x), _ndvi(x)  # (B, S, S)
    label_map = multilabel.label_map
    marine, pasture = classes.index("Marine waters"), classes.index("Pastures")
    assert ndwi[label_map == marine].median() > 0.2
    assert ndvi[label_map == pasture].median() > 0.5
    same = synthetic_multilabel(3, size=32, rng=np.random.default_rng(0))
    torch.testing.assert_close(same.x, x[:3], rtol=0, atol=0)


def test_as_numpy_generator():
    rng = np.random.default_rng(0)
    assert synthetic.as_numpy_generator(rng) is rng
    a = synthetic.as_numpy_generator(torch.Generator().manual_seed(1)).random()
    b = synthetic.as_numpy_generator(torch.Generator().manual_seed(1)).random()
    assert a == b
    with pytest.raises(TypeError):
        synthetic.as_numpy_generator(42)
