"""data.bigearthnet on the 6 real BigEarthNet v1 patches shipped in bigearthnet-common."""

import importlib.util
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2lab.data.bigearthnet import EMBEDDED, bigearthnet_patches, load_bigearthnet_patch
from s2lab.data.corine import LABELS_19, LABELS_43, multi_hot, to_19
from s2lab.sensors import S2_10BANDS, S2_12BANDS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bigearthnet_common") is None, reason="bigearthnet-common is not installed"
)


def package_folder() -> Path:
    return Path(next(iter(importlib.util.find_spec("bigearthnet_common").submodule_search_locations)))


def raw_member(archive: str, patch: str, filename: str) -> bytes:
    """The bytes of one file of a patch, straight from the package's archive."""
    with tarfile.open(package_folder() / archive) as tf:
        for member in tf:
            if member.name.endswith(f"{patch}/{filename}"):
                return tf.extractfile(member).read()
    raise KeyError(filename)


@pytest.fixture(scope="module")
def patches():
    return [load_bigearthnet_patch(name, root=EMBEDDED) for name in bigearthnet_patches(EMBEDDED)]


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """The two archives unpacked as a user would have them: S2 patches flat in the root, S1 one level down."""
    root = tmp_path_factory.mktemp("ben") / "bigearthnet"
    for archive in ("BigEarthNet-S2-Example.tar.bz2", "BigEarthNet-S1-Example.tar.bz2"):
        with tarfile.open(package_folder() / archive) as tf:
            tf.extractall(root, filter="data")
    for patch in (root / "BigEarthNet-S2-Example").iterdir():
        shutil.move(patch, root / patch.name)
    return root


def test_six_real_patches_with_s2_s1_and_labels(patches):
    assert len(patches) == 6
    for p in patches:
        assert p.s2.shape == (10, 120, 120)
        assert p.s2.dtype == np.float32
        assert list(p.s2["band"].values) == list(S2_10BANDS)
        assert list(p.s2["native_res"].values) == [10, 10, 10, 20, 20, 20, 10, 20, 20, 20]
        assert p.s1 is not None and p.s1.shape == (2, 120, 120)
        assert list(p.s1["band"].values) == ["VV", "VH"]
        assert p.s1_name.endswith("_".join(p.name.split("_")[-2:]))
        # S1 and S2 of a patch cover the same 1.2 km square on the same UTM grid.
        assert p.s1.rio.crs == p.s2.rio.crs
        np.testing.assert_array_equal(p.s1["x"].values, p.s2["x"].values)
        np.testing.assert_array_equal(p.s1["y"].values, p.s2["y"].values)
        assert 0.0 < float(np.nanmedian(p.s2.values)) < 1.0  # L2A reflectance, not digital numbers
        assert float(np.nanmedian(p.s1.sel(band="VH").values)) < float(np.nanmedian(p.s1.sel(band="VV").values)) < 0
        assert p.labels43 and set(p.labels43) <= set(LABELS_43)
        assert list(p.labels19) == to_19(p.labels43)
        assert set(p.labels19) <= set(LABELS_19)
        assert p.multi_hot.shape == (19,)
        assert p.multi_hot.sum() == len(p.labels19) >= 1
        assert [LABELS_19[i] for i in np.flatnonzero(p.multi_hot)] == list(p.labels19)
        assert p.synthetic is False and p.s2.attrs["synthetic"] is False


def read_member(patch: str, band: str) -> np.ndarray:
    """The raw uint16 digital numbers of one S2 band file of the package archive."""
    data = raw_member("BigEarthNet-S2-Example.tar.bz2", patch, f"{patch}_{band}.tif")
    with rasterio.MemoryFile(data) as mem, mem.open() as src:
        return src.read(1)


def test_s2_bands_are_the_archive_values(patches):
    p = patches[0]
    np.testing.assert_allclose(p.s2.sel(band="B04").values, read_member(p.name, "B04") / 10000.0, rtol=0, atol=1e-7)
    swir = read_member(p.name, "B11") / 10000.0
    assert swir.shape == (60, 60)
    # 20 m band upsampled bilinearly to 10 m: same mean, same coarse pattern.
    upsampled = p.s2.sel(band="B11").values
    assert abs(upsampled.mean() - swir.mean()) < 0.01 * swir.mean()
    coarse = upsampled.reshape(60, 2, 60, 2).mean(axis=(1, 3))
    assert np.corrcoef(coarse.ravel(), swir.ravel())[0, 1] > 0.95


def test_labels_are_the_label_file(patches):
    p = patches[-1]
    meta = json.loads(raw_member("BigEarthNet-S2-Example.tar.bz2", p.name, f"{p.name}_labels_metadata.json"))
    assert list(p.labels43) == meta["labels"]
    assert p.metadata["coordinates"] == meta["coordinates"]
    assert "labels" not in p.metadata


def test_mapping_tables():
    assert len(LABELS_43) == len(set(LABELS_43)) == 43
    assert len(LABELS_19) == len(set(LABELS_19)) == 19
    assert set(to_19(LABELS_43)) == set(LABELS_19)  # every 19-class name is reached
    assert to_19(["Salines", "Airports", "Salt marshes"]) == ["Coastal wetlands"]
    assert to_19(["Sea and ocean", "Continuous urban fabric"]) == ["Urban fabric", "Marine waters"]
    assert to_19(["Bare rock", "Burnt areas"]) == []
    with pytest.raises(ValueError, match="Moon dust"):
        to_19(["Pastures", "Moon dust"])
    with pytest.raises(ValueError, match="Pasture"):
        multi_hot(["Pasture"])
    assert multi_hot([]).sum() == 0


def test_mapping_agrees_with_bigearthnet_common():
    try:
        from bigearthnet_common import constants
    except ImportError as error:
        pytest.skip(f"bigearthnet_common.constants does not import here: {error}")
    assert LABELS_19 == tuple(constants.NEW_LABELS_ORIGINAL_ORDER)
    assert LABELS_43 == tuple(constants.OLD_LABELS_ORIGINAL_ORDER)
    for name in LABELS_43:
        expected = constants.OLD2NEW_LABELS_DICT[name]
        assert to_19([name]) == ([] if expected is None else [expected])


def test_band_choice_and_order():
    name = bigearthnet_patches(EMBEDDED)[2]
    p12 = load_bigearthnet_patch(name, root=EMBEDDED, bands=S2_12BANDS)
    assert p12.s2.shape == (12, 120, 120)
    assert list(p12.s2["band"].values) == list(S2_12BANDS)
    rgb = load_bigearthnet_patch(name, root=EMBEDDED, bands=["b4", "B3", "B02"])
    assert list(rgb.s2["band"].values) == ["B04", "B03", "B02"]
    np.testing.assert_array_equal(rgb.s2.sel(band="B03").values, p12.s2.sel(band="B03").values)
    with pytest.raises(ValueError, match="B10"):
        load_bigearthnet_patch(name, root=EMBEDDED, bands=["B02", "B10"])
    with pytest.raises(ValueError, match="no BigEarthNet patch 'nope'"):
        load_bigearthnet_patch("nope", root=EMBEDDED)


def test_user_folder_reads_the_same(user_folder, patches, monkeypatch):
    monkeypatch.setenv("S2LAB_BIGEARTHNET_DIR", str(user_folder))
    assert bigearthnet_patches() == bigearthnet_patches(EMBEDDED)
    for p in patches[:2]:
        q = load_bigearthnet_patch(p.name)
        assert str(user_folder.resolve()) in q.s2.attrs["source"]
        np.testing.assert_array_equal(q.s2.values, p.s2.values)
        np.testing.assert_array_equal(q.s1.values, p.s1.values)
        assert q.s1_name == p.s1_name and q.labels19 == p.labels19


def test_user_folder_without_s1(tmp_path, patches):
    name = patches[0].name
    shutil.copytree(package_folder_patch(tmp_path, name), tmp_path / "only_s2" / name)
    p = load_bigearthnet_patch(name, root=tmp_path / "only_s2")
    assert p.s1 is None and p.s1_name is None
    np.testing.assert_array_equal(p.s2.values, patches[0].s2.values)


def package_folder_patch(tmp_path: Path, name: str) -> Path:
    """One S2 patch folder unpacked from the package archive."""
    with tarfile.open(package_folder() / "BigEarthNet-S2-Example.tar.bz2") as tf:
        members = [m for m in tf.getmembers() if f"/{name}/" in m.name]
        tf.extractall(tmp_path / "unpacked", members=members, filter="data")
    return tmp_path / "unpacked" / "BigEarthNet-S2-Example" / name


def test_default_root_falls_back_to_the_embedded_patches(tmp_path, monkeypatch):
    monkeypatch.setenv("S2LAB_BIGEARTHNET_DIR", str(tmp_path))  # exists, holds no patch
    assert bigearthnet_patches() == bigearthnet_patches(EMBEDDED)
    with pytest.raises(FileNotFoundError, match="missing"):
        bigearthnet_patches(tmp_path / "missing")


def test_missing_band_file_is_named(tmp_path, patches):
    name = patches[0].name
    folder = tmp_path / "broken" / name
    shutil.copytree(package_folder_patch(tmp_path, name), folder)
    (folder / f"{name}_B8A.tif").unlink()
    with pytest.raises(FileNotFoundError, match=f"{name}_B8A.tif"):
        load_bigearthnet_patch(name, root=tmp_path / "broken")
