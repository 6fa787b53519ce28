"""Band names of raster files: their canonical spelling, their wavelength order and where a file's names come from.

No I/O here: ``s2lab.data.raster`` reads the files and asks this module what to call their bands.

- ``normalize_band_name("b8a") -> "B8A"``: a known Sentinel-2 / Sentinel-1 name in its canonical spelling; any other
  name is kept (stripped), so that a user's own band names pass through.
- ``band_wavelength(name)``: the centre wavelength in nm, NaN for an unknown name.
- ``wavelength_order(names)``: names sorted by centre wavelength, unknown names last, ties in the order given.
- ``band_in_file_name(stem)``: the band a one-band file is named after (``T31_20200101_B02`` -> "B02"), or None.
- ``names_in_file(descriptions, count)``: a multi-band file's names from its band descriptions, else assumed from
  its band count (13, 12 or 10 bands: that Sentinel-2 set in ESA order), else band1, band2, ...
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from s2lab.sensors import S2_10BANDS, S2_12BANDS, S2_13BANDS, Band, band

_BAND_IN_NAME = re.compile(r"(?:^|[_\-.])(B\d{1,2}A?)$", re.IGNORECASE)
# A file of this many bands without descriptions is taken to hold that Sentinel-2 set in ESA order.
ASSUMED_BY_COUNT: dict[int, tuple[str, ...]] = {13: S2_13BANDS, 12: S2_12BANDS, 10: S2_10BANDS}


def _known(name: str) -> Band | None:
    try:
        return band(name)
    except ValueError:
        return None


def normalize_band_name(name: str) -> str:
    """The canonical spelling of a known band ("B2", "b8a" -> "B02", "B8A"); other names stripped, kept."""
    known = _known(name)
    return known.name if known else name.strip()


def band_wavelength(name: str) -> float:
    """The centre wavelength of band ``name`` in nm; NaN for a name that is not a known band."""
    known = _known(name)
    return float(known.center_nm) if known else float("nan")


def wavelength_order(names: Sequence[str]) -> list[str]:
    """Names sorted by centre wavelength, ties and unknown names (last) in the order given."""
    def key(name: str) -> tuple[bool, float]:
        nm = band_wavelength(name)
        return math.isnan(nm), 0.0 if math.isnan(nm) else nm

    return sorted(names, key=key)


def band_in_file_name(stem: str) -> str | None:
    """The canonical band a file is named after by the end of its stem (``s2_B8A``, ``x-b3``), or None."""
    match = _BAND_IN_NAME.search(stem)
    return normalize_band_name(match.group(1)) if match else None


def names_in_file(descriptions: Sequence[str | None], count: int) -> tuple[list[str], str]:
    """The names of a file's ``count`` bands in file order, and where they came from.

    Returns:
        (names, source): source is "descriptions" (the file's band descriptions; an empty one is called band<i>),
        "assumed" (13, 12 or 10 bands without descriptions, taken to be ``S2_13BANDS`` / ``S2_12BANDS`` /
        ``S2_10BANDS`` in ESA order) or "none" (band1, band2, ...).
    """
    if any(descriptions):
        return [normalize_band_name(d) if d else f"band{i + 1}" for i, d in enumerate(descriptions)], "descriptions"
    if count in ASSUMED_BY_COUNT:
        return list(ASSUMED_BY_COUNT[count]), "assumed"
    return [f"band{i + 1}" for i in range(count)], "none"
