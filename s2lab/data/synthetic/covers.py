"""What every synthetic generator is made of: the real scene's covers and radiometry, and real library spectra.

Every output of a generator built on these says it is synthetic: ``synthetic=True`` on each returned dataclass and
``attrs["synthetic"] = True`` on each DataArray, with a ``description`` (``cover_map`` describes the real scene and
says ``synthetic=False``). Everything is a pure function of the ``rng`` argument (a ``numpy.random.Generator``, or a
``torch.Generator`` from which one numpy seed is drawn: ``as_numpy_generator``); nothing is seeded globally, so the
same generator state gives the same data.

Ingredients, all real:

- **The scene** (``s2lab.data.embedded``, Sentinel-2 L1C, early spring, US east coast). ``cover_map`` sorts its
  pixels into ``COVERS`` by thresholds on NDVI = (B08 - B04) / (B08 + B04), NDWI = (B03 - B08) / (B03 + B08),
  and the B04, B08, B11 reflectances, tuned by eye on this scene (see ``COVER_RULES``): open water, dark
  evergreen forest, bright green fields, bare fields (and beach sand), dark wet marsh, and "other" (mixed,
  built, edges). Windows dominated by one cover are the real textures that the generators reuse.
- **Library spectra** (``s2lab.spectra``): earthlib roofs, pavements, soils, sand, char, non-photosynthetic
  vegetation and canopy (earthlib's canopy spectra are PROSAIL simulations), USGS water; resampled to the
  bands through the Sentinel-2 response functions. A band a spectrum does not cover (B10 for earthlib) is
  given surface reflectance 0.
- **Atmosphere and brightness, to first order** (``scene_radiometry``). The scene is top-of-atmosphere
  reflectance and the libraries are surface reflectance, so a planted spectrum is ``haze + surface`` where
  ``haze`` (C,) is the scene's dark-object value, the 0.1st percentile of each band: about 0.09 in B02 and
  0.02 in B08 here, which is what the scene's open sea shows above the USGS sea-water spectrum
  (transmittance is taken as 1). Laboratory spectra are often brighter than a 10 m pixel of the same
  surface (dry white soils, white roofs), so where a family has an analogue cover in the scene
  (``ANALOGUE_COVERS``: soils and dry vegetation <-> bare fields, canopy <-> green fields, roofs and pavement
  <-> "other", which holds the built-up pixels) each spectrum is drawn to match the brightness of a random
  pixel of that cover: one of the ``NEAREST`` library spectra whose band-mean surface reflectance is closest
  to that pixel's. Water, char and sand spectra are drawn uniformly.

Held-out images: every generator takes ``split``; "train" draws windows from the top half of the scene's rows
and "eval" from the bottom half (``split_rows``: rows 0-972 and 973-1946 of the 1947-row embedded scene, all
1933 columns), so a model trained on "train" never sees an "eval" pixel. Both halves hold land and sea.
Library spectra are shared by both splits.

Shapes use the glossary of ``docs/internals.md``: B images, C bands, H, W pixels; S the side of a square tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr
from scipy import ndimage

from s2lab import spectra
from s2lab.sensors import S2_10BANDS, band_names

COVERS: tuple[str, ...] = ("other", "water", "forest", "green", "bare", "marsh")
"""Land-cover codes of ``cover_map``: value k means ``COVERS[k]``."""

INDEX_BANDS: tuple[str, ...] = ("B03", "B04", "B08", "B11")
"""Bands ``cover_map`` needs."""

COVER_RULES: dict[str, str] = {
    "water": "NDWI > 0 and B11 < 0.015 (marsh is wet too, but its B11 is above 0.015)",
    "forest": "not water, NDVI >= 0.45, B08 < 0.23, B04 < 0.055 (dark evergreen canopy)",
    "green": "not water, NDVI >= 0.55, B08 >= 0.25 (bright green crops and pasture)",
    "bare": "not water, NDVI < 0.35, B08 >= 0.16, B04 >= 0.08 (bare fields, beach sand)",
    "marsh": "not water, NDVI < 0.45, B08 < 0.13 (dark, wet marsh vegetation)",
    "other": "none of the above (mixed pixels, built-up, roads, field edges)",
}
"""How ``cover_map`` decides, for top-of-atmosphere reflectance (the rules are disjoint)."""

HAZE_PERCENTILE = 0.1
"""Percentile of each band taken as its dark-object (path) reflectance by ``scene_radiometry``."""

RADIOMETRY_PIXELS = 250_000
"""``scene_radiometry`` works on a regular subsample of about this many pixels (every 3rd row and column of the
embedded scene)."""

ANALOGUE_COVERS: dict[str, str] = {
    "soil": "bare", "npv": "bare", "canopy": "green", "built": "other", "roof": "other", "paved": "other",
}  # fmt: skip
"""Library family -> the scene cover whose brightness its drawn spectra match."""

NEAREST = 5
"""A brightness-matched draw picks uniformly among this many library spectra nearest in brightness."""

# Library spectra by family: (library, coordinate to select on, accepted values).
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "built": ("earthlib", "class", ("comp_shingle", "tile", "concrete_tile", "metal", "wood_shingle", "asphalt",
                                    "parking_lot")),
    "roof": ("earthlib", "class", ("comp_shingle", "tile", "concrete_tile", "metal", "wood_shingle")),
    "paved": ("earthlib", "class", ("asphalt", "road", "parking_lot")),
    "soil": ("earthlib", "class", ("soil",)),
    "sand": ("earthlib", "class", ("sand",)),
    "burned": ("earthlib", "material", ("burned",)),
    "npv": ("earthlib", "material", ("npv",)),
    "canopy": ("earthlib", "material", ("vegetation",)),
    "water": ("usgs", "class", ("water", "water_sediment_low")),  # not the milky 5 g/l clay suspension
}  # fmt: skip


def as_numpy_generator(rng: np.random.Generator | torch.Generator) -> np.random.Generator:
    """``rng`` itself, or a numpy generator seeded by one draw from a ``torch.Generator``.

    Raises:
        TypeError: ``rng`` is neither (an int seed is refused: pass ``numpy.random.default_rng(seed)``).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, torch.Generator):
        seed = torch.randint(0, 2**62, (1,), generator=rng, device=rng.device)
        return np.random.default_rng(int(seed.item()))
    raise TypeError(
        f"rng must be a numpy.random.Generator or a torch.Generator, got {type(rng).__name__}; "
        "e.g. rng=numpy.random.default_rng(0)"
    )


def _check_scene(scene: xr.DataArray, what: str = "scene") -> tuple[str, ...]:
    """The scene's band names, after checking it is a (band, y, x) DataArray."""
    if not isinstance(scene, xr.DataArray) or scene.dims != ("band", "y", "x"):
        dims = scene.dims if isinstance(scene, xr.DataArray) else type(scene).__name__
        raise ValueError(f"{what} must be a DataArray with dims (band, y, x), got {dims}")
    return tuple(str(b) for b in scene["band"].values)


def _plane(scene: xr.DataArray, data: np.ndarray, name: str, attrs: dict) -> xr.DataArray:
    """A (y, x) DataArray on ``scene``'s grid (its x, y and CRS coords, none of its band coords)."""
    coords = {k: c for k, c in scene.coords.items() if "band" not in c.dims}
    return xr.DataArray(data, dims=("y", "x"), coords=coords, name=name, attrs=attrs)


def cover_map(scene: xr.DataArray) -> xr.DataArray:
    """Each pixel's land cover by the thresholds of ``COVER_RULES``.

    Args:
        scene: (C, H, W) ``(band, y, x)`` top-of-atmosphere reflectance holding at least ``INDEX_BANDS``.

    Returns:
        (H, W) uint8 ``(y, x)`` on the scene's grid; value k is ``COVERS[k]`` (also in ``attrs["covers"]``).

    Raises:
        ValueError: not a (band, y, x) DataArray, or a band of ``INDEX_BANDS`` is missing.
    """
    names = _check_scene(scene)
    missing = [b for b in INDEX_BANDS if b not in names]
    if missing:
        raise ValueError(f"cover_map needs bands {', '.join(INDEX_BANDS)}; the scene lacks {', '.join(missing)}")
    b3, b4, b8, b11 = (np.asarray(scene.sel(band=b).values, dtype=np.float64) for b in INDEX_BANDS)  # (H, W)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (b8 - b4) / (b8 + b4)
        ndwi = (b3 - b8) / (b3 + b8)
    water = (ndwi > 0) & (b11 < 0.015)
    land = ~water
    cover = np.zeros(b3.shape, dtype=np.uint8)  # (H, W)
    cover[water] = COVERS.index("water")
    cover[land & (ndvi >= 0.45) & (b8 < 0.23) & (b4 < 0.055)] = COVERS.index("forest")
    cover[land & (ndvi >= 0.55) & (b8 >= 0.25)] = COVERS.index("green")
    cover[land & (ndvi < 0.35) & (b8 >= 0.16) & (b4 >= 0.08)] = COVERS.index("bare")
    cover[land & (ndvi < 0.45) & (b8 < 0.13)] = COVERS.index("marsh")
    return _plane(scene, cover, "cover", {"covers": COVERS, "synthetic": False})


class Radiometry(NamedTuple):
    """How library surface spectra are made to sit in a scene (see the module docstring)."""

    haze: np.ndarray  # (C,) dark-object (path) reflectance added to every surface spectrum
    brightness: dict[str, np.ndarray]  # cover -> (101,) percentiles 0-100 of its band-mean surface reflectance


def scene_radiometry(scene: xr.DataArray) -> Radiometry:
    """The haze of a scene and the brightness of each of its covers.

    Args:
        scene: (C, H, W) ``(band, y, x)`` top-of-atmosphere reflectance holding ``INDEX_BANDS``.

    Returns:
        ``Radiometry``: haze (C,), each band's ``HAZE_PERCENTILE`` percentile; brightness, for each cover present,
        the percentiles 0, 1, ..., 100 of (pixel - haze) averaged over bands. NaN pixels are ignored; a scene
        of more than ``RADIOMETRY_PIXELS`` pixels is subsampled regularly.
    """
    return _radiometry(np.asarray(scene.values, dtype=np.float32), cover_map(scene).values)


def _radiometry(values: np.ndarray, cover: np.ndarray) -> Radiometry:
    """``scene_radiometry`` of (C, H, W) values and their (H, W) cover map, on at most about
    ``RADIOMETRY_PIXELS`` pixels (a regular subsample of larger scenes)."""
    step = max(1, int(np.sqrt(cover.size / RADIOMETRY_PIXELS)))
    values, cover = values[:, ::step, ::step], cover[::step, ::step]
    flat = values.reshape(values.shape[0], -1)  # (C, H * W)
    percentile = np.nanpercentile if np.isnan(flat).any() else np.percentile
    haze = percentile(flat, HAZE_PERCENTILE, axis=1).astype(np.float64)  # (C,)
    surface = flat.mean(axis=0) - np.float32(haze.mean())  # (H * W,) band-mean surface reflectance
    codes = cover.ravel()
    brightness = {
        name: percentile(surface[codes == k], np.arange(101)) for k, name in enumerate(COVERS) if (codes == k).any()
    }
    return Radiometry(haze=haze, brightness=brightness)


def _draw(family: str, library: dict[str, np.ndarray], reference: Radiometry, rng: np.random.Generator) -> np.ndarray:
    """(C,) one surface spectrum of ``family``, brightness-matched to its analogue cover where it has one."""
    members = library[family]
    cover = ANALOGUE_COVERS.get(family)
    if cover not in reference.brightness:
        return members[rng.integers(len(members))]
    target = reference.brightness[cover][rng.integers(101)]
    nearest = np.argsort(np.abs(members.mean(axis=1) - target), kind="stable")[:NEAREST]
    return members[nearest[rng.integers(nearest.size)]]


def family_spectra(bands: Sequence[str] = S2_10BANDS) -> dict[str, np.ndarray]:
    """The library spectra of every ``FAMILIES`` entry as surface reflectance in ``bands``.

    Returns:
        family -> (n, C) float64 (read-only), spectra with a negative or missing value in a band other than
        B10 dropped, B10 (not covered by earthlib) set to 0.
    """
    return dict(_family_spectra(band_names(bands)))


@lru_cache(maxsize=4)
def _family_spectra(bands: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``family_spectra`` for a canonical band tuple, cached."""
    out = {}
    for family, (library, key, accepted) in FAMILIES.items():
        lib = spectra.library(library)
        chosen = lib.isel(spectrum=np.flatnonzero(np.isin(lib[key].values, accepted)))
        values = np.asarray(spectra.resample(chosen, bands).values, dtype=np.float64)  # (n, C)
        judged = values[:, [b != "B10" for b in bands]]
        keep = np.isfinite(judged).all(axis=1) & (np.nan_to_num(judged) >= 0).all(axis=1)
        values = np.nan_to_num(values[keep], nan=0.0)
        values.setflags(write=False)
        out[family] = values
    return out


def smooth_fractions(k: int, size: int, rng: np.random.Generator, *, smoothness: float, sharpness: float) -> np.ndarray:
    """(K, S, S) fractions that vary smoothly in space and sum to 1: a softmax of K smoothed noise fields.

    Args:
        k: K fractions.
        size: S pixels a side.
        rng: the source of randomness.
        smoothness: Gaussian sigma of the noise fields, pixels.
        sharpness: softmax gain; larger gives purer patches with sharper borders.
    """
    fields = np.stack([_smooth_noise(size, smoothness, rng) for _ in range(k)])  # (K, S, S), unit variance
    weights = np.exp(sharpness * (fields - fields.max(axis=0, keepdims=True)))
    return weights / weights.sum(axis=0, keepdims=True)  # (K, S, S)


def _smooth_noise(size: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(S, S) Gaussian-smoothed white noise scaled to zero mean and unit variance."""
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return (noise - noise.mean()) / (noise.std() + 1e-12)


def _integral(mask: np.ndarray) -> np.ndarray:
    """(H + 1, W + 1) summed-area table of a boolean (H, W) mask."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = mask.cumsum(axis=0).cumsum(axis=1)
    return table


def _box_fraction(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Fraction of True pixels in the size x size windows with top-left corners (rows, cols)."""
    total = table[rows + size, cols + size] - table[rows, cols + size] - table[rows + size, cols] + table[rows, cols]
    return total / float(size * size)

