"""Synthetic labelled data made from REAL spectra and the REAL embedded scene, for where no labelled data exists.

Every output says it is synthetic: ``synthetic=True`` on each returned dataclass and ``attrs["synthetic"] = True``
on each DataArray, with a ``description``. Everything is a pure function of the ``rng`` argument (a
``numpy.random.Generator``, or a ``torch.Generator`` from which one numpy seed is drawn); nothing is seeded
globally, so the same generator state gives the same data.

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

The generators:

- ``plant_changes``: a before / after pair from one scene with an exact change mask; ``synthetic_change_dataset``
  tiles of such pairs for training (the OSCD stand-in).
- ``synthetic_scene_classification``: a EuroSAT-like set, ten classes (``EUROSAT_RECIPES`` says how each is made).
- ``synthetic_multilabel``: BigEarthNet-19-like images of 1-4 regions (``BIGEARTHNET_RECIPES``).

Shapes use the glossary of ``docs/internals.md``: B images, C bands, H, W pixels; S the side of a square tile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr
from scipy import ndimage

from s2lab import spectra
from s2lab.data.bigearthnet import LABELS_19
from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.eurosat import EUROSAT_CLASSES
from s2lab.sensors import S2_10BANDS, band_names

KINDS: tuple[str, ...] = ("building", "flooding", "burn_scar", "cleared_field")
"""The changes ``plant_changes`` knows."""

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

_PLANTED_FAMILY = {"building": "built", "burn_scar": "burned", "cleared_field": "soil"}  # flooding: water + soil
_ELIGIBLE = {  # covers a change may be planted on
    "building": ("forest", "green", "bare"),
    "flooding": ("forest", "green", "bare"),
    "burn_scar": ("forest", "green"),
    "cleared_field": ("forest", "green"),
}
_BLOB_KINDS = ("flooding", "burn_scar")


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


# ---------------------------------------------------------------------------------------------------------------
# Bitemporal change pairs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PlantConfig:
    """Sizes and magnitudes of ``plant_changes`` (pixels are 10 m; reflectance in [0, 1])."""

    building_side: tuple[int, int] = (4, 14)  # side of a new building's rectangle, px (40-140 m), inclusive range
    field_side: tuple[int, int] = (12, 40)  # side of a cleared field's rectangle, px
    blob_radius: tuple[int, int] = (6, 22)  # radius of a flood or burn-scar blob, px
    blend: tuple[float, float] = (0.05, 0.2)  # fraction of the original pixel kept under a planted spectrum
    texture: float = 0.03  # relative std of per-pixel brightness texture on a planted spectrum
    turbidity: float = 0.15  # largest fraction of soil mixed into flood water (suspended sediment)
    gain: float = 0.03  # after-date gain per band, drawn uniformly from 1 +- gain
    offset: float = 0.003  # after-date offset per band, drawn uniformly from +- offset
    noise_std: float = 0.002  # after-date Gaussian noise per pixel and band (after values are clipped at 0)
    min_pixels: int = 12  # a region with fewer pixels (after keeping eligible ones) is redrawn
    tries: int = 20  # placement attempts per region before it is skipped

    def __post_init__(self) -> None:
        for name in ("building_side", "field_side", "blob_radius"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 1 <= low <= high, got {(lo, hi)}")
        if not 0.0 <= self.blend[0] <= self.blend[1] < 1.0:
            raise ValueError(f"blend must be (low, high) with 0 <= low <= high < 1, got {self.blend}")
        if min(self.texture, self.turbidity, self.gain, self.offset, self.noise_std) < 0:
            raise ValueError("texture, turbidity, gain, offset and noise_std must be >= 0")
        if self.min_pixels < 1 or self.tries < 1:
            raise ValueError(f"min_pixels and tries must be >= 1, got {self.min_pixels}, {self.tries}")


@dataclass(frozen=True, kw_only=True)
class ChangePair:
    """A synthetic bitemporal pair: the real scene and the same scene with planted changes."""

    before: xr.DataArray  # (C, H, W) the scene as given (real pixels, but one half of a synthetic pair)
    after: xr.DataArray  # (C, H, W) planted regions plus the after-date radiometric difference, same grid
    mask: xr.DataArray  # (H, W) uint8, 1 exactly where a planted spectrum was applied, else 0
    regions: xr.DataArray  # (H, W) int16, 0 unchanged, k > 0 the k-th planted region (its kind is kinds[k - 1])
    kinds: tuple[str, ...]  # the kind of each planted region, in region order
    gain: np.ndarray  # (C,) after-date gain per band: after ~ gain * before + offset outside the mask
    offset: np.ndarray  # (C,) after-date offset per band
    noise_std: float  # std of the after-date per-pixel noise
    synthetic: bool = True  # always True
    description: str = "SYNTHETIC change pair: real scene, real library spectra planted with an exact mask"


def _rectangle(sides: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A filled (h, w) rectangle with sides drawn from ``sides``."""
    h, w = rng.integers(sides[0], sides[1] + 1, size=2)
    return np.ones((h, w), dtype=bool)


def _blob(radii: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A connected, irregular blob in a (2R + 1, 2R + 1) box, its centre pixel inside."""
    radius = int(rng.integers(radii[0], radii[1] + 1))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    distance = np.hypot(yy, xx) / radius
    shape = (1.0 - distance + 0.35 * _smooth_noise(2 * radius + 1, radius / 3, rng)) > 0.3
    shape[radius, radius] = True
    labels, _ = ndimage.label(shape)
    return labels == labels[radius, radius]


def _place(
    kind: str, eligible: np.ndarray, rng: np.random.Generator, config: PlantConfig
) -> tuple[slice, slice, np.ndarray] | None:
    """Rows, columns and the (h, w) region of a new ``kind`` change on ``eligible`` pixels, or None."""
    H, W = eligible.shape
    candidates = np.flatnonzero(eligible)
    if candidates.size == 0:
        return None
    for _ in range(config.tries):
        r, c = divmod(int(candidates[rng.integers(candidates.size)]), W)
        if kind in _BLOB_KINDS:
            shape = _blob(config.blob_radius, rng)
        else:
            shape = _rectangle(config.building_side if kind == "building" else config.field_side, rng)
        h, w = shape.shape
        r0, c0 = r - h // 2, c - w // 2
        rows, cols = slice(max(r0, 0), min(r0 + h, H)), slice(max(c0, 0), min(c0 + w, W))
        region = shape[rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0] & eligible[rows, cols]
        labels, _ = ndimage.label(region)
        region = labels == labels[r - rows.start, c - cols.start]  # the part connected to the drawn centre
        if region.sum() >= max(config.min_pixels, 0.5 * shape.sum()):
            return rows, cols, region
    return None


def _planted(
    kind: str, original: np.ndarray, library: dict[str, np.ndarray], reference: Radiometry, rng: np.random.Generator,
    config: PlantConfig,
) -> np.ndarray:
    """(C, P) new values of P pixels of one region: haze + a library spectrum with texture, a little original."""
    if kind == "flooding":
        sediment = rng.uniform(0.0, config.turbidity)
        surface = (1.0 - sediment) * _draw("water", library, reference, rng) + sediment * _draw(
            "soil", library, reference, rng
        )  # (C,)
    else:
        surface = _draw(_PLANTED_FAMILY[kind], library, reference, rng)  # (C,)
    texture = 1.0 + config.texture * rng.standard_normal(original.shape[1])  # (P,)
    spectrum = reference.haze[:, None] + surface[:, None] * texture[None, :]  # (C, P)
    kept = rng.uniform(*config.blend)
    return (1.0 - kept) * spectrum + kept * original


def _check_kinds(kinds: Sequence[str], n: int) -> tuple[str, ...]:
    """``kinds`` as a tuple, after checking they are known and that n >= 1 regions are asked for."""
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown or no change kinds {unknown or kinds}; expected some of {', '.join(KINDS)}")
    if n < 1:
        raise ValueError(f"the number of regions must be at least 1, got {n}")
    return kinds


def _plant(
    before: np.ndarray,
    cover: np.ndarray,
    bands: tuple[str, ...],
    reference: Radiometry,
    kinds: tuple[str, ...],
    n: int,
    rng: np.random.Generator,
    config: PlantConfig,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
    """``plant_changes`` on arrays: (C, H, W) before and (H, W) cover -> (C, H, W) after, (H, W) int16 regions,
    the kinds placed, (C,) gain and (C,) offset."""
    library = family_spectra(bands)
    after = before.astype(np.float64)  # (C, H, W)
    regions = np.zeros(cover.shape, dtype=np.int16)  # (H, W)
    placed: list[str] = []
    for i in rng.permutation(n):
        kind = kinds[i % len(kinds)]
        eligible = np.isin(cover, [COVERS.index(c) for c in _ELIGIBLE[kind]]) & (regions == 0)
        found = _place(kind, eligible, rng, config)
        if found is None:
            continue
        rows, cols, region = found
        window = after[:, rows, cols]  # (C, h, w), a view
        window[:, region] = _planted(kind, window[:, region], library, reference, rng, config)
        regions[rows, cols][region] = len(placed) + 1
        placed.append(kind)
    C = before.shape[0]
    gain = 1.0 + rng.uniform(-config.gain, config.gain, C)  # (C,)
    offset = rng.uniform(-config.offset, config.offset, C)  # (C,)
    after = gain[:, None, None] * after + offset[:, None, None] + config.noise_std * rng.standard_normal(after.shape)
    return np.maximum(after, 0.0).astype(np.float32), regions, tuple(placed), gain, offset


def plant_changes(
    scene: xr.DataArray,
    *,
    kinds: Sequence[str] = KINDS,
    n: int = 8,
    rng: np.random.Generator | torch.Generator,
    reference: Radiometry | None = None,
    config: PlantConfig = PlantConfig(),
) -> ChangePair:
    """Plant real material spectra into a real scene: a bitemporal pair with an exact change mask.

    The n regions take the kinds in turn (so each kind appears when n >= len(kinds)), in random order, each on
    pixels of the covers it makes sense on and not on an earlier region:

    - "building": a rectangle (``building_side``) of one earthlib roof, concrete or asphalt spectrum, on
      forest, green or bare land;
    - "flooding": an irregular blob (``blob_radius``) of USGS water with up to ``turbidity`` soil mixed in, on
      the same land (water and marsh pixels inside the blob stay as they are);
    - "burn_scar": a blob of an earthlib char spectrum on forest or green fields;
    - "cleared_field": a rectangle (``field_side``) of an earthlib soil on forest or green fields.

    A planted pixel is ``(1 - k) * (haze + surface * t) + k * original``, k drawn per region from ``blend``,
    t = 1 + ``texture`` * N(0, 1) per pixel. Then the whole after image (inside the mask too) gets a date-to-date
    radiometric difference, as a real pair always has: after = max(0, gain * after + offset + noise), gain per
    band in 1 +- ``gain`` (3%), offset per band in +- ``offset`` (0.003), noise N(0, ``noise_std`` = 0.002) per
    pixel and band. So outside the mask after - (gain * before + offset) is pure noise; inside it the change is
    typically 0.05-0.3 in the bands where the materials differ.

    Args:
        scene: (C, H, W) ``(band, y, x)`` top-of-atmosphere reflectance holding ``INDEX_BANDS`` (the before image).
        kinds: which of ``KINDS`` to plant.
        n: number of regions to try; a region that finds no room after ``config.tries`` draws is skipped.
        rng: the source of randomness.
        reference: the haze added to library spectra and the cover brightness they match; default
            ``scene_radiometry(scene)`` (pass that of the whole scene when ``scene`` is a small crop).
        config: sizes and magnitudes.

    Returns:
        ``ChangePair`` with before, after (C, H, W), mask, regions (H, W) on the scene's grid (coords, CRS),
        ``attrs["synthetic"] = True`` on each; ``kinds`` the kind of each planted region.

    Raises:
        ValueError: a bad scene, an unknown kind, n < 1, or a reference haze of the wrong length.
    """
    gen = as_numpy_generator(rng)
    bands = _check_scene(scene)
    kinds = _check_kinds(kinds, n)
    before = np.asarray(scene.values, dtype=np.float32)  # (C, H, W)
    cover = cover_map(scene).values  # (H, W)
    reference = _radiometry(before, cover) if reference is None else reference
    if np.shape(reference.haze) != (len(bands),):
        raise ValueError(f"reference haze must have one value per band ({len(bands)}), got {np.shape(reference.haze)}")
    after, regions, placed, gain, offset = _plant(before, cover, band_names(bands), reference, kinds, n, gen, config)
    description = (
        f"SYNTHETIC change pair: {len(placed)} regions ({', '.join(sorted(set(placed))) or 'none'}) of real library "
        "spectra planted into the real scene; after-date gain, offset and noise everywhere"
    )
    attrs = {"synthetic": True, "description": description}
    return ChangePair(
        before=scene.copy(data=before).assign_attrs(attrs | {"date": "before"}),
        after=scene.copy(data=after).assign_attrs(attrs | {"date": "after"}),
        mask=_plane(scene, (regions > 0).astype(np.uint8), "change", attrs),
        regions=_plane(scene, regions, "region", attrs | {"kinds": tuple(placed)}),
        kinds=tuple(placed),
        gain=gain,
        offset=offset,
        noise_std=config.noise_std,
        description=description,
    )


@dataclass(frozen=True, kw_only=True)
class ChangeTiles:
    """Training tiles of synthetic change pairs; unpacks as ``before, after, mask = tiles``."""

    before: torch.Tensor  # (B, C, S, S) float32 reflectance
    after: torch.Tensor  # (B, C, S, S) float32 reflectance, with planted changes
    mask: torch.Tensor  # (B, S, S) uint8, 1 = change
    origins: torch.Tensor  # (B, 2) int64 row and column of each tile's top-left pixel in the scene
    kinds: tuple[tuple[str, ...], ...]  # the kinds planted in each tile
    split: str  # "train" or "eval": which half of the scene's rows the tiles come from
    synthetic: bool = True  # always True
    description: str = ""  # how the tiles were made

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.before, self.after, self.mask))


def _integral(mask: np.ndarray) -> np.ndarray:
    """(H + 1, W + 1) summed-area table of a boolean (H, W) mask."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = mask.cumsum(axis=0).cumsum(axis=1)
    return table


def _box_fraction(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Fraction of True pixels in the size x size windows with top-left corners (rows, cols)."""
    total = table[rows + size, cols + size] - table[rows, cols + size] - table[rows + size, cols] + table[rows, cols]
    return total / float(size * size)


def synthetic_change_dataset(
    count: int,
    size: int,
    *,
    rng: np.random.Generator | torch.Generator,
    scene: xr.DataArray | None = None,
    split: str = "train",
    kinds: Sequence[str] = KINDS,
    regions_per_tile: int = 4,
    min_land: float = 0.4,
    config: PlantConfig = PlantConfig(),
) -> ChangeTiles:
    """Tiles of synthetic change pairs from random windows of a real scene, for training a change head.

    Each tile's window lies in the ``split`` half of the scene's rows (``split_rows``) and is drawn until at
    least ``min_land`` of it is land that changes can be planted on (the best of 30 draws otherwise); then
    ``plant_changes`` plants ``regions_per_tile`` regions in it, with the radiometry of the whole scene.

    Args:
        count: B tiles.
        size: S pixels a side, at most half the scene's height.
        rng: the source of randomness.
        scene: (C, H, W) ``(band, y, x)`` reflectance holding ``INDEX_BANDS``; default the embedded scene.
        split: "train" (top half of the rows) or "eval" (bottom half).
        kinds: which of ``KINDS`` to plant.
        regions_per_tile: n of ``plant_changes``.
        min_land: the least fraction of forest, green or bare pixels a window should hold.
        config: sizes and magnitudes of ``plant_changes``.

    Returns:
        ``ChangeTiles``: before, after (B, C, S, S) float32, mask (B, S, S) uint8, origins (B, 2), kinds per tile;
        ``synthetic=True``.

    Raises:
        ValueError: count < 1, a size that does not fit the split, an unknown split, or a bad scene.
    """
    gen = as_numpy_generator(rng)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    kinds = _check_kinds(kinds, regions_per_tile)
    scene = open_embedded_scene() if scene is None else scene
    bands = band_names(_check_scene(scene))
    H, W = scene.sizes["y"], scene.sizes["x"]
    rows = split_rows(H, split)
    if not 1 <= size <= min(rows.stop - rows.start, W):
        raise ValueError(
            f"size {size} does not fit the {split} half of a {H} x {W} scene ({rows.stop - rows.start} rows)"
        )
    values = np.asarray(scene.values, dtype=np.float32)  # (C, H, W)
    cover = cover_map(scene).values  # (H, W)
    plantable = _integral(np.isin(cover, [COVERS.index(c) for c in ("forest", "green", "bare")]))
    reference = _radiometry(values, cover)
    before = np.empty((count, len(bands), size, size), dtype=np.float32)  # (B, C, S, S)
    after = np.empty_like(before)  # (B, C, S, S)
    masks = np.empty((count, size, size), dtype=np.uint8)  # (B, S, S)
    origins, kinds_per_tile = [], []
    for b in range(count):
        r = gen.integers(rows.start, rows.stop - size + 1, size=30)  # (30,) candidate top rows
        c = gen.integers(0, W - size + 1, size=30)  # (30,) candidate left columns
        land = _box_fraction(plantable, r, c, size)  # (30,)
        best = int(np.argmax(land >= min_land)) if (land >= min_land).any() else int(np.argmax(land))
        window = (slice(int(r[best]), int(r[best]) + size), slice(int(c[best]), int(c[best]) + size))
        before[b] = values[:, window[0], window[1]]
        after[b], regions, placed, _, _ = _plant(
            before[b], cover[window], bands, reference, kinds, regions_per_tile, gen, config
        )
        masks[b] = regions > 0
        origins.append((int(r[best]), int(c[best])))
        kinds_per_tile.append(placed)
    description = (
        f"SYNTHETIC change tiles: {count} windows of {size} px from the {split} rows {rows.start}-{rows.stop - 1} "
        f"of the real scene, {regions_per_tile} planted regions each (kinds {', '.join(kinds)})"
    )
    return ChangeTiles(
        before=torch.from_numpy(before),
        after=torch.from_numpy(after),
        mask=torch.from_numpy(masks),
        origins=torch.tensor(origins, dtype=torch.int64),
        kinds=tuple(kinds_per_tile),
        split=split,
        description=description,
    )


# ---------------------------------------------------------------------------------------------------------------
# Scene classification and multi-label sets: real windows and real spectra in structured layouts
# ---------------------------------------------------------------------------------------------------------------


class _Source:
    """The embedded scene's ``split`` rows in ``bands``, ready to give real windows and textured library fills."""

    PURE = 0.9  # a window this pure in a cover counts as a clean example of it

    def __init__(self, bands: tuple[str, ...], split: str) -> None:
        scene = open_embedded_scene(bands)
        rows = split_rows(scene.sizes["y"], split)
        self.values = np.asarray(scene.values[:, rows], dtype=np.float32)  # (C, H', W) the split's rows
        full_cover = cover_map(open_embedded_scene(INDEX_BANDS)).values  # (H, W)
        reference = _radiometry(np.asarray(scene.values, dtype=np.float32), full_cover)  # of the whole scene
        self.reference = reference
        self.haze = reference.haze  # (C,)
        self.library = family_spectra(bands)
        cover = full_cover[rows]  # (H', W)
        water = cover == COVERS.index("water")
        from_land = ndimage.distance_transform_edt(water)  # (H', W) pixels to the nearest non-water pixel
        self.masks = {name: cover == COVERS.index(name) for name in COVERS[1:]}
        self.masks["open_water"] = from_land > 50  # sea at least 500 m from any land
        self.masks["shore_water"] = water & (from_land <= 10)  # creeks, channels and water along shores
        self._tables: dict[str, np.ndarray] = {}  # cover -> summed-area table of its mask
        self._windows: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def _candidates(self, cover: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-left corners of the purest ``cover`` windows of ``size`` (on a 4 px lattice), cached."""
        key = (cover, size)
        if key not in self._windows:
            if cover not in self._tables:
                self._tables[cover] = _integral(self.masks[cover])
            table = self._tables[cover]
            H, W = self.masks[cover].shape
            r, c = np.meshgrid(np.arange(0, H - size + 1, 4), np.arange(0, W - size + 1, 4), indexing="ij")
            r, c = r.ravel(), c.ravel()
            purity = _box_fraction(table, r, c, size)
            good = np.flatnonzero(purity >= self.PURE)
            if good.size < 20:
                good = np.argsort(purity)[-20:]
            self._windows[key] = (r[good], c[good])
        return self._windows[key]

    def real(self, cover: str, size: int, rng: np.random.Generator) -> np.ndarray:
        """(C, S, S) a real window dominated by ``cover``, its other pixels replaced by their nearest ``cover``
        pixel, randomly rotated by a multiple of 90 degrees and flipped."""
        rows, cols = self._candidates(cover, size)
        pick = rng.integers(rows.size)
        r, c = int(rows[pick]), int(cols[pick])
        window = self.values[:, r : r + size, c : c + size]  # (C, S, S)
        inside = self.masks[cover][r : r + size, c : c + size]
        if not inside.all():
            nearest = ndimage.distance_transform_edt(~inside, return_distances=False, return_indices=True)
            window = window[:, nearest[0], nearest[1]]  # (C, S, S)
        window = np.rot90(window, int(rng.integers(4)), axes=(1, 2))
        return (window[:, :, ::-1] if rng.random() < 0.5 else window).copy()

    def spectrum(self, family: str, rng: np.random.Generator) -> np.ndarray:
        """(C,) one surface reflectance spectrum of ``family``, brightness-matched where it has an analogue cover."""
        return _draw(family, self.library, self.reference, rng)

    def surface(self, family: str, size: int, rng: np.random.Generator, texture: float = 0.05) -> np.ndarray:
        """(C, S, S) one ``family`` spectrum above the haze with smooth and per-pixel brightness texture."""
        t = 1.0 + texture * (0.8 * _smooth_noise(size, 2.0, rng) + 0.6 * rng.standard_normal((size, size)))
        return self.haze[:, None, None] + self.spectrum(family, rng)[:, None, None] * t[None]

    def mixture(self, families: Sequence[str], size: int, rng: np.random.Generator) -> np.ndarray:
        """(C, S, S) one spectrum of each family mixed by smooth fractions, above the haze, with texture."""
        fractions = smooth_fractions(len(families), size, rng, smoothness=4.0, sharpness=2.0)  # (K, S, S)
        surface = np.einsum("kc,khw->chw", np.stack([self.spectrum(f, rng) for f in families]), fractions)
        t = 1.0 + 0.03 * rng.standard_normal((size, size))
        return self.haze[:, None, None] + surface * t[None]


def _blend(a: np.ndarray, b: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """(C, S, S) ``a`` where fraction is 0, ``b`` where it is 1, mixed linearly between."""
    return a * (1.0 - fraction[None]) + b * fraction[None]


def _soft(mask: np.ndarray) -> np.ndarray:
    """A boolean (S, S) layout as fractions, its edges softened as a 10 m sensor sees them."""
    return np.clip(ndimage.gaussian_filter(mask.astype(np.float64), 0.5), 0.0, 1.0)


def _parcels(size: int, rng: np.random.Generator, sides: tuple[int, int]) -> np.ndarray:
    """(S, S) int labels of rectangular parcels: the square split recursively until no side exceeds sides[1]."""
    labels = np.zeros((size, size), dtype=np.int64)
    stack, count = [(0, size, 0, size)], 0
    while stack:
        r0, r1, c0, c1 = stack.pop()
        h, w = r1 - r0, c1 - c0
        if max(h, w) <= sides[1] or max(h, w) < 2 * sides[0]:
            labels[r0:r1, c0:c1] = count
            count += 1
        elif h >= w:
            cut = int(rng.integers(r0 + sides[0], r1 - sides[0] + 1))
            stack += [(r0, cut, c0, c1), (cut, r1, c0, c1)]
        else:
            cut = int(rng.integers(c0 + sides[0], c1 - sides[0] + 1))
            stack += [(r0, r1, c0, cut), (r0, r1, cut, c1)]
    return labels


def _line(size: int, rng: np.random.Generator, width: float, meander: float) -> np.ndarray:
    """(S, S) fractions of a band of ``width`` px across the square, at a random angle, meandering by ``meander`` px."""
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2 - rng.uniform(-size / 6, size / 6, size=(2, 1, 1))
    along = xx * np.cos(angle) + yy * np.sin(angle)
    across = -xx * np.sin(angle) + yy * np.cos(angle)
    wavelength = rng.uniform(size / 2, 1.5 * size)
    across = across + meander * np.sin(2 * np.pi * along / wavelength + rng.uniform(0, 2 * np.pi))
    return np.clip(width / 2 + 0.5 - np.abs(across), 0.0, 1.0)


def _rows(size: int, rng: np.random.Generator, period: float) -> np.ndarray:
    """(S, S) fractions of parallel planting rows, ``period`` px apart at a random angle, each about half wide."""
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size]
    phase = 2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 2 * np.pi)
    return np.clip(0.5 + 0.9 * np.cos(phase), 0.0, 1.0)


def _dots(size: int, rng: np.random.Generator, density: float, radius: float) -> np.ndarray:
    """(S, S) boolean patches (tree crowns, pools) of about ``radius`` px covering about ``density`` of the square."""
    field_ = _smooth_noise(size, radius, rng)
    return field_ > np.quantile(field_, 1.0 - density)


def _buildings(
    size: int, rng: np.random.Generator, sides: tuple[int, int], density: float, spacing: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(S, S) building ids (-1 = none) and (S, S) street fractions; streets every ``spacing`` px (None: no grid)."""
    streets = np.zeros((size, size), dtype=bool)
    if spacing is not None:
        offset = rng.integers(0, spacing, size=2)
        width = int(rng.integers(1, 3))
        for start in range(int(offset[0]) - spacing, size, spacing):
            streets[max(start, 0) : max(start + width, 0), :] = True
        for start in range(int(offset[1]) - spacing, size, spacing):
            streets[:, max(start, 0) : max(start + width, 0)] = True
    ids = np.full((size, size), -1, dtype=np.int64)
    target = density * size * size
    for k in range(4 * size * size // max(sides[0] ** 2, 1)):
        if (ids >= 0).sum() >= target:
            break
        h, w = rng.integers(sides[0], sides[1] + 1, size=2)
        r, c = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        block = (slice(r, r + h), slice(c, c + w))
        grown = (slice(max(r - 1, 0), r + h + 1), slice(max(c - 1, 0), c + w + 1))
        if (ids[grown] < 0).all() and not streets[block].any():
            ids[block] = k
    return ids, _soft(streets)


def _roofs(src: _Source, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(C, S, S) each building's roof spectrum above the haze and (S, S) the building fractions."""
    roofs = np.zeros((src.haze.size, *ids.shape))
    for k in np.unique(ids[ids >= 0]):
        roofs[:, ids == k] = (src.haze + src.spectrum("roof", rng))[:, None]
    roofs *= 1.0 + 0.03 * rng.standard_normal(ids.shape)[None]
    return roofs, _soft(ids >= 0)


def _fields(
    src: _Source, size: int, rng: np.random.Generator, sides: tuple[int, int], covers: Sequence[str]
) -> np.ndarray:
    """Parcels, each a different real window of one of ``covers``, with faint planting stripes."""
    labels = _parcels(size, rng, sides)
    out = np.empty((src.haze.size, size, size))
    for k in range(labels.max() + 1):
        parcel = labels == k
        stripes = 1.0 + 0.03 * (2 * _rows(size, rng, rng.uniform(2.0, 4.0)) - 1)  # (S, S)
        out[:, parcel] = (src.real(covers[rng.integers(len(covers))], size, rng) * stripes[None])[:, parcel]
    return out


def _residential(src: _Source, size: int, rng: np.random.Generator) -> np.ndarray:
    """(C, S, S) small roofs and a street grid over real lawns (green fields) dotted with real trees."""
    garden = _blend(src.real("green", size, rng), src.real("forest", size, rng), _soft(_dots(size, rng, 0.4, 2.0)))
    ids, streets = _buildings(size, rng, (2, 3), 0.2, int(rng.integers(8, 15)))
    roofs, built = _roofs(src, ids, rng)
    return _blend(_blend(garden, src.surface("paved", size, rng), streets), roofs, built)


def _industrial(src: _Source, size: int, rng: np.random.Generator) -> np.ndarray:
    """(C, S, S) large roofs on a yard of pavement and soil mixed by smooth fractions."""
    yard = src.mixture(("paved", "soil"), size, rng)
    ids, _ = _buildings(size, rng, (5, 16), 0.55, None)
    roofs, built = _roofs(src, ids, rng)
    return _blend(yard, roofs, built)


def _highway(src: _Source, size: int, rng: np.random.Generator) -> np.ndarray:
    """(C, S, S) one or two roads of a pavement spectrum across a real forest, field or bare window."""
    out = src.real(("forest", "green", "bare")[rng.integers(3)], size, rng)
    road = _line(size, rng, rng.uniform(1.5, 3.5), rng.uniform(0.0, 2.0))
    if rng.random() < 0.3:
        road = np.maximum(road, _line(size, rng, rng.uniform(1.0, 2.5), rng.uniform(0.0, 4.0)))
    return _blend(out, src.surface("paved", size, rng, texture=0.03), road)


def _river(src: _Source, size: int, rng: np.random.Generator) -> np.ndarray:
    """(C, S, S) a meandering band of real shore water across a real land window."""
    banks = src.real(("forest", "green", "bare", "marsh")[rng.integers(4)], size, rng)
    river = _line(size, rng, rng.uniform(3.0, 8.0), rng.uniform(3.0, 10.0))
    return _blend(banks, src.real("shore_water", size, rng), river)


def _orchard(src: _Source, size: int, rng: np.random.Generator) -> np.ndarray:
    """(C, S, S) rows of real forest canopy, partly covering a real bare field."""
    rows = _rows(size, rng, rng.uniform(3.0, 6.0)) * rng.uniform(0.3, 0.6)
    return _blend(src.real("bare", size, rng), src.real("forest", size, rng), rows)


def _broadleaf(src: _Source, size: int, rng: np.random.Generator) -> np.ndarray:
    """(C, S, S) a canopy spectrum modulated by the brightness of a real forest window."""
    forest = src.real("forest", size, rng).mean(axis=0)  # (S, S) brightness of a real canopy
    t = forest / forest.mean()
    return src.haze[:, None, None] + src.spectrum("canopy", rng)[:, None, None] * t[None]


def _scatter(
    base: np.ndarray, patches: np.ndarray, rng: np.random.Generator, density: float, radius: float
) -> np.ndarray:
    """``patches`` showing through ``base`` in dots covering about ``density`` of the square."""
    return _blend(base, patches, _soft(_dots(base.shape[-1], rng, density, radius)))


Recipe = Callable[[_Source, int, np.random.Generator], np.ndarray]

EUROSAT_RECIPES: dict[str, tuple[Recipe, str]] = {
    "AnnualCrop": (
        lambda s, n, g: _fields(s, n, g, (12, 32), ("green", "bare")),
        "rectangular parcels, each a real green-field or bare-field window, with faint planting stripes",
    ),
    "Forest": (lambda s, n, g: s.real("forest", n, g), "a real window of the scene's forest"),
    "HerbaceousVegetation": (lambda s, n, g: s.real("marsh", n, g), "a real window of the scene's marsh grass"),
    "Highway": (_highway, "a real forest, field or bare window crossed by one or two roads of earthlib pavement"),
    "Industrial": (_industrial, "large earthlib roofs on a yard mixed from earthlib pavement and soil"),
    "Pasture": (lambda s, n, g: s.real("green", n, g), "a real window of the scene's green fields"),
    "PermanentCrop": (_orchard, "rows of real forest canopy over a real bare field (orchard / vineyard layout)"),
    "Residential": (_residential, "small earthlib roofs and a street grid over real lawn and tree windows"),
    "River": (_river, "a meandering band of real creek water across a real land window"),
    "SeaLake": (lambda s, n, g: s.real("water", n, g), "a real window of the scene's open water"),
}
"""How each EuroSAT-like class is made: class -> (recipe(source, size, rng) -> (C, S, S), description)."""

BIGEARTHNET_RECIPES: dict[str, tuple[Recipe, str]] = {
    "Urban fabric": (_residential, "small earthlib roofs and streets over real lawns and trees"),
    "Industrial or commercial units": (_industrial, "large earthlib roofs on a pavement and soil yard"),
    "Arable land": (
        lambda s, n, g: _fields(s, n, g, (20, 60), ("green", "bare")),
        "large parcels of real green and bare fields",
    ),
    "Permanent crops": (_orchard, "rows of real canopy over a real bare field"),
    "Pastures": (lambda s, n, g: s.real("green", n, g), "a real green-field window"),
    "Complex cultivation patterns": (
        lambda s, n, g: _fields(s, n, g, (6, 16), ("green", "bare", "marsh")),
        "small parcels of real green, bare and marsh windows",
    ),
    "Land principally occupied by agriculture, with significant areas of natural vegetation": (
        lambda s, n, g: _scatter(_fields(s, n, g, (15, 40), ("green", "bare")), s.real("forest", n, g), g, 0.35, 8.0),
        "real fields with large patches of real forest",
    ),
    "Agro-forestry areas": (
        lambda s, n, g: _scatter(s.real("green", n, g), s.real("forest", n, g), g, 0.25, 1.5),
        "scattered real tree crowns over a real pasture",
    ),
    "Broad-leaved forest": (
        _broadleaf,
        (
            "an earthlib (PROSAIL) canopy spectrum with the texture of a real forest window (the scene's own forest "
            "is evergreen)"
        ),
    ),
    "Coniferous forest": (lambda s, n, g: s.real("forest", n, g), "a real window of the scene's evergreen forest"),
    "Mixed forest": (
        lambda s, n, g: _scatter(s.real("forest", n, g), _broadleaf(s, n, g), g, 0.5, 3.0),
        "patches of the broad-leaved recipe within a real forest window",
    ),
    "Natural grassland and sparsely vegetated areas": (
        lambda s, n, g: s.mixture(("canopy", "npv", "soil"), n, g),
        "earthlib canopy, dry vegetation and soil mixed by smooth fractions",
    ),
    "Moors, heathland and sclerophyllous vegetation": (
        lambda s, n, g: _scatter(s.mixture(("npv", "npv", "canopy"), n, g), s.real("forest", n, g), g, 0.15, 1.5),
        "mostly earthlib dry vegetation with some canopy and scattered real shrubs",
    ),
    "Transitional woodland, shrub": (
        lambda s, n, g: _scatter(s.real("marsh", n, g), s.real("forest", n, g), g, 0.35, 2.5),
        "scattered real tree crowns over real low vegetation",
    ),
    "Beaches, dunes, sands": (
        lambda s, n, g: s.surface("sand", n, g, texture=0.06),
        "an earthlib sand spectrum with texture",
    ),
    "Inland wetlands": (
        lambda s, n, g: _scatter(s.real("marsh", n, g), s.real("shore_water", n, g), g, 0.3, 3.0),
        "real marsh with pools of real shallow water",
    ),
    "Coastal wetlands": (lambda s, n, g: s.real("marsh", n, g), "a real window of the scene's salt marsh"),
    "Inland waters": (
        lambda s, n, g: s.real("shore_water", n, g),
        "real water within 100 m of land (creeks, channels; the scene has no lake)",
    ),
    "Marine waters": (lambda s, n, g: s.real("open_water", n, g), "real open sea, more than 500 m from land"),
}
"""How each BigEarthNet-19 class is made: class -> (recipe(source, size, rng) -> (C, S, S), description)."""


@lru_cache(maxsize=2)
def _source(bands: tuple[str, ...], split: str) -> _Source:
    """The ``_Source`` of ``bands`` and ``split``, kept for the next calls (building one takes a second or two;
    two are kept so that alternating "train" and "eval" does not rebuild them)."""
    return _Source(bands, split)


def _check_size(size: int, what: str) -> None:
    if not isinstance(size, int) or not 8 <= size <= 256:
        raise ValueError(f"{what} must be an int from 8 to 256 pixels, got {size!r}")


@dataclass(frozen=True, kw_only=True)
class SceneSet:
    """A synthetic EuroSAT-like scene-classification set; unpacks as ``x, y, classes = scenes``."""

    x: torch.Tensor  # (B, C, S, S) float32 top-of-atmosphere reflectance, ordered by class
    y: torch.Tensor  # (B,) int64 class indices into ``classes``
    classes: tuple[str, ...]  # the class names, EuroSAT's (``s2lab.data.eurosat.EUROSAT_CLASSES``)
    bands: tuple[str, ...]  # the C band names
    split: str  # which half of the scene's rows the real windows come from
    recipes: dict[str, str] = field(default_factory=dict)  # class -> how its images are made
    synthetic: bool = True  # always True
    description: str = ""  # what the set is, in a sentence

    def __iter__(self) -> Iterator:
        return iter((self.x, self.y, self.classes))


def synthetic_scene_classification(
    count_per_class: int,
    *,
    size: int = 64,
    rng: np.random.Generator | torch.Generator,
    bands: Sequence[str] = S2_10BANDS,
    split: str = "train",
) -> SceneSet:
    """A EuroSAT-like set: real scene windows where a class exists in the scene, real spectra in layouts elsewhere.

    Forest, HerbaceousVegetation (the scene's marsh grass), Pasture and SeaLake are real windows of the
    embedded scene whose pixels are at least 90% of the matching cover (``cover_map``; the rest replaced by
    the nearest such pixel), randomly rotated and flipped. AnnualCrop, PermanentCrop, River and Highway lay
    real windows out in parcels, rows or bands; Industrial and Residential place earthlib roof and pavement
    spectra in building and street layouts. ``EUROSAT_RECIPES`` describes each. The real windows come from
    the ``split`` half of the scene's rows.

    Args:
        count_per_class: images of each of the 10 classes.
        size: S, pixels a side (EuroSAT: 64).
        rng: the source of randomness.
        bands: C band names.
        split: "train" or "eval" (``split_rows``).

    Returns:
        ``SceneSet``: x (10 * count_per_class, C, S, S) float32, y (B,) int64, classes ``EUROSAT_CLASSES``;
        ``synthetic=True``, ``recipes``, ``description``.

    Raises:
        ValueError: count_per_class < 1, a size outside 8-256, an unknown band or split.
    """
    gen = as_numpy_generator(rng)
    if count_per_class < 1:
        raise ValueError(f"count_per_class must be at least 1, got {count_per_class}")
    _check_size(size, "size")
    bands = band_names(bands)
    split_rows(0, split)  # validates the split name
    src = _source(bands, split)
    x = np.empty((len(EUROSAT_CLASSES) * count_per_class, len(bands), size, size), dtype=np.float32)
    for k, name in enumerate(EUROSAT_CLASSES):
        recipe = EUROSAT_RECIPES[name][0]
        for i in range(count_per_class):
            x[k * count_per_class + i] = recipe(src, size, gen)
    y = torch.arange(len(EUROSAT_CLASSES)).repeat_interleave(count_per_class)  # (B,)
    return SceneSet(
        x=torch.from_numpy(x),
        y=y,
        classes=EUROSAT_CLASSES,
        bands=bands,
        split=split,
        recipes={name: how for name, (_, how) in EUROSAT_RECIPES.items()},
        description=(
            f"SYNTHETIC EuroSAT-like set: {count_per_class} images of {size} px per class, from real windows "
            f"({split} rows) of the embedded Sentinel-2 scene and real library spectra"
        ),
    )


@dataclass(frozen=True, kw_only=True)
class MultiLabelSet:
    """A synthetic BigEarthNet-19-like multi-label set; unpacks as ``x, y, classes = images``."""

    x: torch.Tensor  # (B, C, S, S) float32 top-of-atmosphere reflectance
    y: torch.Tensor  # (B, 19) float32 multi-hot: 1.0 where the class covers some pixels of the image
    classes: tuple[str, ...]  # the 19 class names (``s2lab.data.bigearthnet.LABELS_19``)
    label_map: torch.Tensor  # (B, S, S) int64, the class index of every pixel
    bands: tuple[str, ...]  # the C band names
    split: str  # which half of the scene's rows the real windows come from
    recipes: dict[str, str] = field(default_factory=dict)  # class -> how its regions are made
    synthetic: bool = True  # always True
    description: str = ""  # what the set is, in a sentence

    def __iter__(self) -> Iterator:
        return iter((self.x, self.y, self.classes))


def _regions(size: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(S, S) int labels 0..k-1 of k regions: Voronoi cells of random seeds with wavy borders."""
    yy, xx = np.mgrid[0:size, 0:size]
    seeds = rng.uniform(0, size, size=(k, 2))
    distance = np.stack([np.hypot(yy - r, xx - c) + 0.1 * size * _smooth_noise(size, size / 8, rng) for r, c in seeds])
    return distance.argmin(axis=0)


def synthetic_multilabel(
    count: int,
    *,
    size: int = 120,
    rng: np.random.Generator | torch.Generator,
    bands: Sequence[str] = S2_10BANDS,
    split: str = "train",
    max_regions: int = 4,
) -> MultiLabelSet:
    """A BigEarthNet-19-like set: each image is 1 to ``max_regions`` regions of distinct classes.

    Regions are Voronoi cells of random seeds with wavy borders; each region's class is drawn uniformly
    (without repeats in an image) from the 19 classes and filled by its recipe (``BIGEARTHNET_RECIPES``:
    real scene windows of the matching cover, or real spectra in layouts). The labels are exactly the
    classes that cover at least one pixel, and ``label_map`` says which pixel is which.

    Args:
        count: B images.
        size: S, pixels a side (BigEarthNet: 120).
        rng: the source of randomness.
        bands: C band names.
        split: "train" or "eval" (``split_rows``).
        max_regions: the most regions (and labels) in an image, 1-19.

    Returns:
        ``MultiLabelSet``: x (B, C, S, S) float32, y (B, 19) float32 multi-hot, classes ``LABELS_19``,
        label_map (B, S, S); ``synthetic=True``.

    Raises:
        ValueError: count < 1, a size outside 8-256, a bad max_regions, an unknown band or split.
    """
    gen = as_numpy_generator(rng)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    _check_size(size, "size")
    if not 1 <= max_regions <= len(LABELS_19):
        raise ValueError(f"max_regions must be 1-{len(LABELS_19)}, got {max_regions}")
    bands = band_names(bands)
    split_rows(0, split)  # validates the split name
    src = _source(bands, split)
    x = np.empty((count, len(bands), size, size), dtype=np.float32)
    label_map = np.empty((count, size, size), dtype=np.int64)
    for b in range(count):
        k = int(gen.integers(1, max_regions + 1))
        classes = gen.choice(len(LABELS_19), size=k, replace=False)
        cells = _regions(size, k, gen)  # (S, S)
        for j, cls in enumerate(classes):
            fill = BIGEARTHNET_RECIPES[LABELS_19[cls]][0](src, size, gen)  # (C, S, S)
            x[b][:, cells == j] = fill[:, cells == j]
        label_map[b] = classes[cells]
    y = np.zeros((count, len(LABELS_19)), dtype=np.float32)
    for b in range(count):
        y[b, np.unique(label_map[b])] = 1.0
    return MultiLabelSet(
        x=torch.from_numpy(x),
        y=torch.from_numpy(y),
        classes=LABELS_19,
        label_map=torch.from_numpy(label_map),
        bands=bands,
        split=split,
        recipes={name: how for name, (_, how) in BIGEARTHNET_RECIPES.items()},
        description=(
            f"SYNTHETIC BigEarthNet-19-like set: {count} images of {size} px, 1-{max_regions} regions each, from "
            f"real windows ({split} rows) of the embedded Sentinel-2 scene and real library spectra"
        ),
    )
