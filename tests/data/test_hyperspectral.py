"""data.hyperspectral: the real Jasper Ridge cube (when present) and the cube mixed from real library spectra."""

import numpy as np
import pytest
import torch

from s2lab import settings
from s2lab.data.hyperspectral import (
    JASPER_RIDGE_FILE,
    JASPER_RIDGE_REMOVED,
    load_jasper_ridge,
    mixed_cube,
    open_hyperspectral,
)


def _nir(da):
    """Mean over 750-900 nm of a DataArray with a wavelength coordinate on its band dimension."""
    return da.where((da["wavelength"] >= 750) & (da["wavelength"] <= 900), drop=True).mean("band")


@pytest.fixture(scope="module")
def jasper():
    folder = settings.data_dir("hyperspectral")
    if folder is None or not (folder / JASPER_RIDGE_FILE).is_file():
        pytest.skip(f"no {JASPER_RIDGE_FILE} under settings.data_dir('hyperspectral') ({folder})")
    return load_jasper_ridge()


@pytest.fixture(scope="module")
def mixed():
    return mixed_cube(size=40, n_bands=103, rng=np.random.default_rng(0))


def test_jasper_ridge_shapes_and_bands(jasper):
    assert jasper.cube.dims == ("band", "y", "x") and jasper.cube.shape == (198, 100, 100)
    assert jasper.endmembers.dims == ("endmember", "band") and jasper.endmembers.shape == (4, 198)
    assert jasper.abundances.shape == (4, 100, 100)
    assert list(jasper.endmembers["endmember"].values) == ["tree", "water", "dirt", "road"]
    channels = jasper.cube["band"].values
    assert not set(channels) & set(JASPER_RIDGE_REMOVED) and len(set(channels)) == 198
    wavelength = jasper.cube["wavelength"].values
    assert np.all(np.diff(wavelength) > 0) and 380 <= wavelength[0] < 420 and 2400 < wavelength[-1] <= 2500
    for lo, hi in ((1390, 1440), (1830, 1950)):  # the water-vapour absorptions near 1400 and 1900 nm are gone
        assert not ((wavelength > lo) & (wavelength < hi)).any()
    assert jasper.synthetic is False and jasper.cube.attrs["source"] == "jasper_ridge"
    assert 0 <= float(jasper.cube.min()) and float(jasper.cube.max()) < 1.5


def test_jasper_ridge_abundances_and_endmembers(jasper):
    total = jasper.abundances.sum("endmember").values
    np.testing.assert_allclose(total, 1.0, atol=1e-4)
    nir = _nir(jasper.endmembers)
    assert nir.idxmin("endmember").item() == "water"  # water is darkest in the near infrared
    assert nir.sel(endmember="tree") > nir.sel(endmember="road")
    recon = np.einsum("kc,khw->chw", jasper.endmembers.values, jasper.abundances.values)
    error = np.abs(recon - jasper.cube.values).mean() / jasper.cube.values.mean()
    assert error < 0.25  # the reference unmixing explains the cube to ~15%


def test_jasper_ridge_orientation(jasper):
    """Pixels run column by column: the reservoir is left of centre and the highway on the right."""
    columns = np.arange(100)
    water = jasper.abundances.sel(endmember="water").values
    road = jasper.abundances.sel(endmember="road").values
    assert (water.sum(axis=0) * columns).sum() / water.sum() < 45
    assert (road.sum(axis=0) * columns).sum() / road.sum() > 60


def test_mixed_cube_is_a_linear_mixture(mixed):
    cube, m, a = mixed.cube.values, mixed.endmembers.values, mixed.abundances.values
    assert cube.shape == (103, 40, 40) and m.shape == (4, 103) and a.shape == (4, 40, 40)
    assert a.min() >= 0 and np.allclose(a.sum(axis=0), 1.0, atol=1e-5)
    noise = cube - np.einsum("kc,khw->chw", m, a)
    assert abs(noise.mean()) < 2e-4 and noise.std() == pytest.approx(0.002, rel=0.05)
    assert a.max(axis=0).mean() > 0.6  # mostly near-pure patches, as in a real scene
    np.testing.assert_allclose(mixed.cube["wavelength"].values, np.linspace(400, 2450, 103))


def test_mixed_cube_endmembers_are_the_real_spectra(mixed):
    nir = _nir(mixed.endmembers)
    assert nir.idxmin("endmember").item() == "water"
    assert nir.sel(endmember="vegetation") > 2 * nir.sel(endmember="asphalt")
    assert mixed.synthetic is True and all(
        da.attrs["synthetic"] is True for da in (mixed.cube, mixed.endmembers, mixed.abundances)
    )
    assert mixed.cube.attrs["source"] == "mixed" and "SYNTHETIC" in mixed.description


def test_mixed_cube_is_deterministic(mixed):
    again = mixed_cube(size=40, n_bands=103, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again.cube.values, mixed.cube.values)
    other = mixed_cube(size=40, n_bands=103, rng=np.random.default_rng(1))
    assert not np.array_equal(other.abundances.values, mixed.abundances.values)
    from_torch = mixed_cube(size=8, n_bands=10, rng=torch.Generator().manual_seed(0))
    assert from_torch.cube.shape == (10, 8, 8)


def test_mixed_cube_rejects_bad_arguments():
    with pytest.raises(ValueError, match="wavelength_range"):
        mixed_cube(size=8, rng=np.random.default_rng(0), wavelength_range=(350.0, 2500.0))
    with pytest.raises(ValueError, match="lava"):
        mixed_cube(size=8, rng=np.random.default_rng(0), endmembers=("water", "lava"))
    with pytest.raises(TypeError):
        mixed_cube(size=8, rng=0)


def test_open_hyperspectral_falls_back_to_the_mixed_cube(tmp_path):
    fallback = open_hyperspectral(tmp_path)
    assert fallback.cube.attrs["source"] == "mixed" and fallback.synthetic is True
    np.testing.assert_array_equal(fallback.cube.values, open_hyperspectral(tmp_path).cube.values)


def test_open_hyperspectral_prefers_jasper_ridge(jasper):
    found = open_hyperspectral()
    assert found.cube.attrs["source"] == "jasper_ridge" and found.synthetic is False
    np.testing.assert_array_equal(found.cube.values, jasper.cube.values)


def test_load_jasper_ridge_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=JASPER_RIDGE_FILE):
        load_jasper_ridge(tmp_path)
