"""Sensors: the Sentinel-2 MSI band table, Sentinel-1 polarisations, band sets and spectral response.

Everything else in s2lab names bands the way this module does (``"B02"``, ``"B8A"``, ``"VV"``) and keeps
them in the order of a band set, ``S2_10BANDS`` by default. Centre wavelengths and bandwidths are ESA's
values for Sentinel-2A (S2 MSI spectral response document COPE-GSEG-EOPG-TN-15-0007, v3.0); the spectral
response functions themselves come from the ``pyrsr`` package, which ships the same ESA tables at 1 nm.

Shapes use the glossary of ``docs/internals.md``: C is the number of bands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xarray as xr


@dataclass(frozen=True)
class Band:
    """One spectral band (or one SAR polarisation) of a sensor."""

    name: str  # canonical name: "B01" ... "B12", "B8A"; "VV", "VH" for Sentinel-1
    center_nm: float  # centre wavelength in nanometres
    bandwidth_nm: float  # spectral width in nanometres (ESA's bandwidth for S2; chirp bandwidth for S1)
    resolution_m: int  # ground sampling distance of the delivered product, metres
    description: str  # what the band is for, in a few words


SENTINEL2: tuple[Band, ...] = (
    Band("B01", 442.7, 21.0, 60, "coastal aerosol"),
    Band("B02", 492.4, 66.0, 10, "blue"),
    Band("B03", 559.8, 36.0, 10, "green"),
    Band("B04", 664.6, 31.0, 10, "red"),
    Band("B05", 704.1, 15.0, 20, "vegetation red edge 1"),
    Band("B06", 740.5, 15.0, 20, "vegetation red edge 2"),
    Band("B07", 782.8, 20.0, 20, "vegetation red edge 3"),
    Band("B08", 832.8, 106.0, 10, "near infrared (NIR)"),
    Band("B8A", 864.7, 21.0, 20, "narrow NIR (red edge 4)"),
    Band("B09", 945.1, 20.0, 60, "water vapour"),
    Band("B10", 1373.5, 31.0, 60, "shortwave infrared, cirrus"),
    Band("B11", 1613.7, 91.0, 20, "shortwave infrared 1 (SWIR1)"),
    Band("B12", 2202.4, 175.0, 20, "shortwave infrared 2 (SWIR2)"),
)
"""The 13 Sentinel-2A MSI bands in ESA's order (B8A between B08 and B09)."""

_SPEED_OF_LIGHT = 299_792_458.0  # m/s
_S1_FREQUENCY_HZ = 5.405e9  # Sentinel-1 C-band centre frequency
_S1_BANDWIDTH_HZ = 100e6  # the instrument's largest range (chirp) bandwidth
_S1_WAVELENGTH_NM = _SPEED_OF_LIGHT / _S1_FREQUENCY_HZ * 1e9  # about 55.5 mm
_S1_BANDWIDTH_NM = _SPEED_OF_LIGHT * _S1_BANDWIDTH_HZ / _S1_FREQUENCY_HZ**2 * 1e9  # about 1.03 mm

SENTINEL1: tuple[Band, ...] = (
    Band("VV", _S1_WAVELENGTH_NM, _S1_BANDWIDTH_NM, 10, "C-band SAR, vertical transmit, vertical receive"),
    Band("VH", _S1_WAVELENGTH_NM, _S1_BANDWIDTH_NM, 10, "C-band SAR, vertical transmit, horizontal receive"),
)
"""Sentinel-1 C-band SAR (5.405 GHz) as two 'bands', one per polarisation of the IW GRD product (10 m)."""

S2_13BANDS: tuple[str, ...] = tuple(b.name for b in SENTINEL2)
"""All 13 bands, as in Sentinel-2 L1C and EuroSAT MS."""

S2_12BANDS: tuple[str, ...] = tuple(n for n in S2_13BANDS if n != "B10")
"""The 12 bands of L2A products and BigEarthNet (no B10, the cirrus band)."""

S2_10BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
"""The 10 bands at 10 m and 20 m: the default band set everywhere in s2lab (SatMAE, S2MAE)."""

SATMAE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("B02", "B03", "B04", "B08"),
    ("B05", "B06", "B07", "B8A"),
    ("B11", "B12"),
)
"""SatMAE's spectral groups for 10 bands: visible + NIR (10 m), red edge (20 m), SWIR (20 m), by name."""

PLATFORMS = {"S2A": "Sentinel-2A", "S2B": "Sentinel-2B"}
"""Platforms with spectral response functions, short name -> pyrsr's satellite name."""

_BY_NAME: dict[str, Band] = {b.name: b for b in SENTINEL2 + SENTINEL1}


def _canonical(name: str) -> str:
    """The canonical spelling of a band name: "b8a", "B08A" -> "B8A"; "B8", "b08" -> "B08"; "vv" -> "VV"."""
    if not isinstance(name, str):
        raise TypeError(f"band names are strings like 'B02' or 'B8A', got {name!r}")
    key = name.strip().upper()
    match = re.fullmatch(r"B0*(\d{1,2})(A?)", key)
    if match:
        number, narrow = match.groups()
        key = f"B{int(number)}A" if narrow else f"B{int(number):02d}"
    return key


def band(name: str) -> Band:
    """The band called ``name``, spelled in any usual way ("B8A", "b8a", "B08", "B8", "vv").

    Raises:
        ValueError: ``name`` is not a Sentinel-2 band or a Sentinel-1 polarisation; the message lists
            the valid names.
    """
    key = _canonical(name)
    if key not in _BY_NAME:
        raise ValueError(f"unknown band {name!r}; valid names are {', '.join(_BY_NAME)}")
    return _BY_NAME[key]


def band_names(names: Iterable[str]) -> tuple[str, ...]:
    """Validate a band list and return it in canonical spelling, order kept.

    Args:
        names: band names, e.g. ``S2_10BANDS`` or ``["b2", "B3", "b4"]``.

    Returns:
        A tuple of C canonical names.

    Raises:
        ValueError: a name is unknown, a band appears twice, or the list is empty.
        TypeError: `names` is a single string, or holds something other than strings.
    """
    if isinstance(names, str):
        raise TypeError(f"expected a sequence of band names, got the single string {names!r}")
    canonical = tuple(band(n).name for n in names)
    if not canonical:
        raise ValueError("expected at least one band name, got none")
    repeated = sorted({n for n in canonical if canonical.count(n) > 1})
    if repeated:
        raise ValueError(f"bands {', '.join(repeated)} appear more than once in {list(canonical)}")
    return canonical


def wavelengths(names: Iterable[str] = S2_10BANDS) -> np.ndarray:
    """Centre wavelengths of ``names`` in nanometres, shape (C,), float64, in the order given."""
    return np.array([_BY_NAME[n].center_nm for n in band_names(names)], dtype=np.float64)


def sort_by_wavelength(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` in canonical spelling, sorted by centre wavelength (B08 comes before B8A)."""
    return tuple(sorted(band_names(names), key=lambda n: _BY_NAME[n].center_nm))


def satmae_group_indices(
    bands: Sequence[str] = S2_10BANDS, groups: Sequence[Sequence[str]] = SATMAE_GROUPS
) -> tuple[tuple[int, ...], ...]:
    """Positions of each SatMAE group's bands in the band list ``bands``.

    Args:
        bands: the C band names of the images, in channel order.
        groups: G groups of band names; ``SATMAE_GROUPS`` by default.

    Returns:
        G tuples of channel indices into ``bands``; for ``S2_10BANDS`` and ``SATMAE_GROUPS``:
        ``((0, 1, 2, 6), (3, 4, 5, 7), (8, 9))``.

    Raises:
        ValueError: a group names a band that ``bands`` lacks.
    """
    position = {n: i for i, n in enumerate(band_names(bands))}
    canonical_groups = [band_names(g) for g in groups]
    missing = [n for g in canonical_groups for n in g if n not in position]
    if missing:
        raise ValueError(f"SatMAE groups need bands {', '.join(missing)}, which {list(position)} lacks")
    return tuple(tuple(position[n] for n in g) for g in canonical_groups)


def _platform(platform: str) -> str:
    """The short platform name ("S2A", "S2B") for any usual spelling ("s2b", "Sentinel-2A")."""
    key = str(platform).strip().upper().replace("SENTINEL-", "S")
    if key not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
    return key


def response_functions(platform: str = "S2A") -> xr.DataArray:
    """Spectral response functions of the 13 MSI bands on a 1 nm grid, each summing to 1.

    Read once per platform from the ``pyrsr`` package (ESA's tables, 412-2320 nm) and cached; the
    values are read-only, so take ``.copy()`` before changing them.

    Args:
        platform: "S2A" or "S2B" (also "s2a", "Sentinel-2B").

    Returns:
        DataArray (band, wavelength), shape (13, 1909) for S2A, float64, with coords ``band`` (names in
        ``S2_13BANDS`` order), ``wavelength`` (nm) and ``center_nm`` (band, the response-weighted mean
        wavelength of this platform's band; within 0.1 nm of ``SENTINEL2``'s values for S2A).
        Summing over ``wavelength`` gives 1 for every band, so a band value is
        ``(rsr * spectrum).sum("wavelength")`` for a spectrum on the same grid.

    Raises:
        ValueError: unknown platform.
        ImportError: pyrsr is not installed (the message says how to install it).
    """
    return _response_functions(_platform(platform)).copy(deep=False)


@lru_cache(maxsize=len(PLATFORMS))
def _response_functions(platform: str) -> xr.DataArray:
    """``response_functions`` for a canonical platform name, cached."""
    try:
        import pyrsr
    except ImportError as err:
        raise ImportError("the spectral response functions need pyrsr: pip install pyrsr") from err
    rsr = pyrsr.RSR(PLATFORMS[platform], "MSI", format_bandnames=True)
    if set(rsr.bands) != set(S2_13BANDS):
        raise RuntimeError(f"pyrsr {pyrsr.__version__} gave bands {rsr.bands}, expected {list(S2_13BANDS)}")
    response = np.stack([np.asarray(rsr.rsrs_norm01[n], dtype=np.float64) for n in S2_13BANDS])  # (13, W)
    response /= response.sum(axis=1, keepdims=True)
    response.setflags(write=False)
    grid = np.asarray(rsr.rsrs_wvl, dtype=np.float64)  # (W,) nm
    return xr.DataArray(
        response,
        dims=("band", "wavelength"),
        coords={
            "band": list(S2_13BANDS),
            "wavelength": grid,
            "center_nm": ("band", response @ grid),
        },
        name="spectral_response",
        attrs={
            "platform": platform,
            "sensor": "MSI",
            "units": "1 (normalised: each band sums to 1 over its 1 nm samples)",
            "wavelength_units": "nm",
            "source": f"pyrsr {pyrsr.__version__}: ESA S2 MSI spectral responses (COPE-GSEG-EOPG-TN-15-0007)",
        },
    )
