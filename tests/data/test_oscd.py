"""data.oscd on the real OSCD subset found through s2lab.settings (skipped where it is absent)."""

import datetime
import warnings

import numpy as np
import pytest
import rasterio

from s2lab.data.export import write_geotiff
from s2lab.data.oscd import IMAGES, LABELS, images_dir, load_oscd_city, oscd_cities
from s2lab.data.raster import RasterError
from s2lab.sensors import S2_10BANDS
from s2lab.settings import data_dir

pytestmark = pytest.mark.skipif(
    data_dir("oscd") is None, reason="OSCD not found: set S2LAB_OSCD_DIR or S2LAB_DATA_DIR (with oscd/)"
)


@pytest.fixture(scope="module")
def pairs():
    """Every labelled city."""
    return {city: load_oscd_city(city) for city in oscd_cities(labelled=True)}


@pytest.fixture(scope="module")
def unlabelled():
    """Every city OSCD publishes without its change label (the test cities)."""
    return {city: load_oscd_city(city) for city in oscd_cities(labelled=False)}


def _band_file(city: str, folder: str, band: str):
    return next((images_dir() / city / folder).glob(f"*_{band}.tif"))


def _raw_label(city: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(images_dir().parent / LABELS[0] / city / "cm" / f"{city}-cm.tif") as src:
            return src.read(1)


def _listed(split: str) -> list[str]:
    path = images_dir() / f"{split}.txt"
    names = path.read_text().strip().split(",") if path.is_file() else []
    return [c for c in names if (images_dir() / c / "imgs_1").is_dir()]


def test_cities_are_the_folders_listed():
    train, test = _listed("train"), _listed("test")
    assert train and oscd_cities() == train + test  # train.txt's cities, then test.txt's
    assert oscd_cities(split="train") == train and oscd_cities(split="test") == test


def test_labelled_and_unlabelled_cities_split_every_city():
    labelled, unlabelled = oscd_cities(labelled=True), oscd_cities(labelled=False)
    assert labelled and sorted(labelled + unlabelled) == sorted(oscd_cities())
    for city in labelled:
        assert any((images_dir().parent / name / city / "cm").is_dir() for name in LABELS), city
    for city in unlabelled:
        assert not any((images_dir().parent / name / city).exists() for name in LABELS), city
    # OSCD publishes no test labels: every test city present is unlabelled
    assert oscd_cities(split="test", labelled=False) == oscd_cities(split="test")


def test_unlabelled_cities_load_as_imagery(unlabelled):
    for city, pair in unlabelled.items():
        assert pair.label is None and pair.label_encoding is None, city
        assert pair.before.shape == pair.after.shape and pair.before.sizes["band"] == len(S2_10BANDS), city
        assert not np.isnan(pair.before.values).any() and not np.isnan(pair.after.values).any(), city
        assert 0 < float(np.median(pair.before.sel(band="B04").values)) < 0.5, city
        assert pair.dates is not None and pair.dates[0] < pair.dates[1], city


def test_every_city_loads_on_one_grid(pairs):
    for city, pair in pairs.items():
        assert pair.city == city and pair.synthetic is False
        assert list(pair.before["band"].values) == list(S2_10BANDS)
        assert pair.before.shape == pair.after.shape, city
        assert pair.label is not None and pair.label.shape == pair.before.shape[1:], city
        assert not np.isnan(pair.before.values).any() and not np.isnan(pair.after.values).any()
        assert 0 < float(np.median(pair.before.sel(band="B04").values)) < 0.5  # reflectance, not DN


def test_georeference_is_kept(pairs):
    for city, pair in pairs.items():
        with rasterio.open(_band_file(city, "imgs_1", "B02")) as src:
            crs, transform, shape = src.crs, src.transform, src.shape
        assert pair.before.rio.crs == crs and pair.before.rio.crs.to_epsg() == 4326
        assert pair.before.rio.transform().almost_equals(transform) and pair.before.shape[1:] == shape
        assert pair.after.rio.transform().almost_equals(transform)
        assert pair.label.rio.crs == crs and pair.label.rio.transform().almost_equals(transform)


def test_after_resampled_only_where_sizes_differ(pairs):
    for city, pair in pairs.items():
        with rasterio.open(_band_file(city, "imgs_2", "B02")) as src:
            differs = src.shape != pair.before.shape[1:]
        assert ("resampled_to" in pair.after.attrs) == differs, city
    if "abudhabi" in pairs:
        assert pairs["abudhabi"].after.attrs["resampled_to"] == "imgs_1 grid"


def test_labels_have_both_classes_and_a_plausible_change_fraction(pairs):
    for city, pair in pairs.items():
        raw = _raw_label(city)
        values = set(np.unique(raw).tolist())
        assert pair.label_encoding == ("1/2" if values == {1, 2} else "0/1"), (city, values)
        label = pair.label.values
        assert label.dtype == np.uint8 and set(np.unique(label).tolist()) == {0, 1}, city
        assert (label == 1).sum() == (raw == raw.max()).sum()
        assert 0 < label.mean() < 0.5, city


def test_dates(pairs):
    for city, pair in pairs.items():
        before, after = pair.dates
        assert isinstance(before, datetime.date) and datetime.date(2015, 6, 23) <= before < after, city
        assert pair.before.attrs["date"] == before.isoformat() and pair.after.attrs["time"] == "after"


def test_root_may_be_the_images_folder_or_its_parent():
    city = oscd_cities(labelled=True)[0]
    assert oscd_cities(images_dir()) == oscd_cities(images_dir().parent) == oscd_cities()
    pair = load_oscd_city(city, root=images_dir(), bands=["B04", "B8A"])
    assert list(pair.before["band"].values) == ["B04", "B8A"] and pair.label is not None


def test_unknown_city_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match=r"no OSCD city 'atlantis'.*cities present: .*" + oscd_cities()[0]):
        load_oscd_city("atlantis")
    with pytest.raises(FileNotFoundError, match="neither"):
        oscd_cities(tmp_path)
    with pytest.raises(FileNotFoundError):
        oscd_cities(tmp_path / "absent")


@pytest.fixture
def small_root(tmp_path):
    """A copy of the smallest real city laid out as OSCD, with links to the real band files."""
    city = min(oscd_cities(labelled=True), key=lambda c: np.prod(_raw_label(c).shape))
    for folder in ("imgs_1", "imgs_2"):
        (tmp_path / IMAGES / city / folder).mkdir(parents=True)
        for f in (images_dir() / city / folder).glob("*.tif"):
            (tmp_path / IMAGES / city / folder / f.name).symlink_to(f)
    (tmp_path / IMAGES / city / "dates.txt").symlink_to(images_dir() / city / "dates.txt")
    (tmp_path / LABELS[0] / city / "cm").mkdir(parents=True)
    return tmp_path, city


def test_zero_one_labels_are_read_too(small_root):
    root, city = small_root
    raw = _raw_label(city)
    zero_one = (raw == 2).astype(np.uint8)
    write_geotiff(zero_one, root / LABELS[0] / city / "cm" / f"{city}-cm.tif", dtype="uint8")
    pair = load_oscd_city(city, root=root)
    assert pair.label_encoding == "0/1"
    np.testing.assert_array_equal(pair.label.values, zero_one)
    assert oscd_cities(root) == [city]  # no train.txt in the copy: the folders present


def test_label_of_the_wrong_size_and_unknown_values(small_root):
    root, city = small_root
    path = root / LABELS[0] / city / "cm" / f"{city}-cm.tif"
    raw = _raw_label(city)
    write_geotiff(raw[:-1], path, dtype="uint8")
    with pytest.raises(ValueError, match=rf"is {raw.shape[0] - 1} x {raw.shape[1]} px, the before image {raw.shape[0]} x"):
        load_oscd_city(city, root=root)
    write_geotiff(raw * 3, path, dtype="uint8")
    with pytest.raises(ValueError, match=r"holds values \[3, 6\]"):
        load_oscd_city(city, root=root)


def test_after_of_another_extent_is_refused(small_root):
    root, city = small_root
    for link in (root / IMAGES / city / "imgs_2").glob("*.tif"):  # keep only the northern half of every band
        with rasterio.open(link) as src:
            dn, profile = src.read(1), src.profile
        link.unlink()
        profile.update(height=dn.shape[0] // 2)
        with rasterio.open(link, "w", **profile) as dst:
            dst.write(dn[: dn.shape[0] // 2], 1)
    with pytest.raises(RasterError, match=r"imgs_2 \(\d+ x \d+ px\) cannot be put on the imgs_1 grid \(\d+ x \d+ px\)"):
        load_oscd_city(city, root=root)
