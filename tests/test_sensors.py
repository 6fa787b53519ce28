"""Tests for s2lab.sensors: the band table, name lookup, band sets and the spectral response functions."""

import numpy as np
import pytest

from s2lab.sensors import (
    S2_10BANDS,
    S2_12BANDS,
    S2_13BANDS,
    SATMAE_GROUPS,
    SENTINEL1,
    SENTINEL2,
    band,
    band_names,
    response_functions,
    satmae_group_indices,
    sort_by_wavelength,
    wavelengths,
)


def test_sentinel2_table_has_13_bands_in_esa_order():
    assert [b.name for b in SENTINEL2] == [
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
    ]
    centres = np.array([b.center_nm for b in SENTINEL2])
    assert np.all(np.diff(centres) > 0), "ESA's order is also the order of centre wavelengths"
    assert [b.resolution_m for b in SENTINEL2] == [60, 10, 10, 10, 20, 20, 20, 10, 20, 60, 60, 20, 20]
    assert all(b.bandwidth_nm > 0 and b.description for b in SENTINEL2)
    assert band("B04").center_nm == pytest.approx(664.6)
    assert band("B12").bandwidth_nm == pytest.approx(175.0)


def test_band_sets():
    assert S2_13BANDS == tuple(b.name for b in SENTINEL2)
    assert len(S2_12BANDS) == 12 and "B10" not in S2_12BANDS
    assert S2_10BANDS == ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
    assert sorted(n for g in SATMAE_GROUPS for n in g) == sorted(S2_10BANDS)


def test_sentinel1_is_c_band_at_10m():
    assert [b.name for b in SENTINEL1] == ["VV", "VH"]
    for b in SENTINEL1:
        assert b.center_nm * 1e-6 == pytest.approx(55.47, abs=0.01)  # mm
        assert b.resolution_m == 10
    assert band("vh") is SENTINEL1[1]


@pytest.mark.parametrize(("spelling", "expected"), [
    ("B8A", "B8A"), ("b8a", "B8A"), ("B08A", "B8A"), ("B08", "B08"), ("B8", "B08"), ("b8", "B08"),
    ("B1", "B01"), ("B10", "B10"), (" b12 ", "B12"), ("vv", "VV"),
])
def test_band_lookup_accepts_usual_spellings(spelling, expected):
    assert band(spelling).name == expected


@pytest.mark.parametrize("bad", ["B13", "B0", "B8B", "red", ""])
def test_band_lookup_error_lists_valid_names(bad):
    with pytest.raises(ValueError, match="valid names are B01, .*B8A.*VH") as err:
        band(bad)
    assert repr(bad) in str(err.value)


def test_band_names_validates_lists():
    assert band_names(["b2", "B3", "b04"]) == ("B02", "B03", "B04")
    with pytest.raises(ValueError, match="B02 appear more than once"):
        band_names(["B02", "b2"])
    with pytest.raises(ValueError, match="at least one"):
        band_names([])
    with pytest.raises(TypeError, match="single string"):
        band_names("B02")


def test_wavelengths_and_sorting():
    wl = wavelengths(S2_10BANDS)
    assert wl.shape == (10,) and wl.dtype == np.float64
    assert wl[S2_10BANDS.index("B8A")] == pytest.approx(864.7)
    assert wavelengths(["B8A", "b8"]).tolist() == pytest.approx([864.7, 832.8])
    assert sort_by_wavelength(["B12", "b8a", "B08", "B02", "B05"]) == ("B02", "B05", "B08", "B8A", "B12")


def test_satmae_group_indices():
    assert satmae_group_indices() == ((0, 1, 2, 6), (3, 4, 5, 7), (8, 9))
    groups = satmae_group_indices(S2_13BANDS)
    for names, indices in zip(SATMAE_GROUPS, groups, strict=True):
        assert tuple(S2_13BANDS[i] for i in indices) == names
    with pytest.raises(ValueError, match="B11, B12"):
        satmae_group_indices(S2_10BANDS[:-2])


def test_response_functions_shape_and_normalisation():
    rsr = response_functions("S2A")
    assert rsr.dims == ("band", "wavelength")
    assert tuple(rsr["band"].values) == S2_13BANDS
    grid = rsr["wavelength"].values
    assert rsr.shape == (13, grid.size)
    assert np.all(np.diff(grid) == 1.0), "a 1 nm grid"
    assert 400 < grid[0] < 450 and 2300 < grid[-1] < 2400
    assert np.all(rsr.values >= 0)
    np.testing.assert_allclose(rsr.sum("wavelength").values, 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="read-only"):
        rsr.values[0, 0] = 1.0


@pytest.mark.parametrize("platform", ["S2A", "S2B"])
def test_response_peaks_inside_each_band(platform):
    rsr = response_functions(platform)
    grid = rsr["wavelength"].values
    for b in SENTINEL2:
        response = rsr.sel(band=b.name).values
        peak = grid[np.argmax(response)]
        assert b.center_nm - b.bandwidth_nm <= peak <= b.center_nm + b.bandwidth_nm, b.name
        centroid = float((response * grid).sum())
        assert abs(centroid - b.center_nm) < b.bandwidth_nm / 2, b.name
        inside = np.abs(grid - b.center_nm) <= b.bandwidth_nm
        assert response[inside].sum() > 0.8, f"most of {b.name}'s response lies within one bandwidth"


def test_response_centroids_match_esa_centres_for_s2a():
    rsr = response_functions("s2a")
    np.testing.assert_allclose(rsr["center_nm"].values, wavelengths(S2_13BANDS), atol=0.1)


def test_response_functions_platforms_differ_and_unknown_is_rejected():
    a, b = response_functions("S2A"), response_functions("Sentinel-2B")
    assert b.attrs["platform"] == "S2B"
    assert abs(a["center_nm"].sel(band="B12").item() - b["center_nm"].sel(band="B12").item()) > 5
    with pytest.raises(ValueError, match="S2A, S2B"):
        response_functions("S2C")


def test_response_functions_cached_and_protected():
    first, again = response_functions("S2A"), response_functions("s2a")
    assert np.shares_memory(first.values, again.values), "read once, then served from the cache"
    first.attrs["note"] = "changed by a caller"
    assert "note" not in response_functions("S2A").attrs
