"""Bitemporal change pairs: real library spectra planted into the real scene, with an exact change mask.

Every output says it is synthetic: ``synthetic=True`` on each returned dataclass and ``attrs["synthetic"] = True``
on each DataArray, with a ``description``. ``plant_changes`` makes one pair; ``s2lab.data.synthetic.change_tiles`` cuts
training tiles of such pairs. Covers, radiometry and library spectra come from ``s2lab.data.synthetic.covers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from scipy import ndimage

from s2lab.data.pairs import ChangePair
from s2lab.data.synthetic.covers import (
    COVERS,
    Radiometry,
    _check_scene,
    _draw,
    _plane,
    _radiometry,
    _smooth_noise,
    as_numpy_generator,
    cover_map,
    family_spectra,
)
from s2lab.sensors import band_names

KINDS: tuple[str, ...] = ("building", "flooding", "burn_scar", "cleared_field")
"""The changes ``plant_changes`` knows."""

_PLANTED_FAMILY = {"building": "built", "burn_scar": "burned", "cleared_field": "soil"}  # flooding: water + soil
_ELIGIBLE = {  # covers a change may be planted on
    "building": ("forest", "green", "bare"),
    "flooding": ("forest", "green", "bare"),
    "burn_scar": ("forest", "green"),
    "cleared_field": ("forest", "green"),
}
_BLOB_KINDS = ("flooding", "burn_scar")


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
class PlantedPair(ChangePair):
    """A synthetic bitemporal pair: before is the real scene as given (real pixels, but one half of a synthetic pair);
    after has the planted regions plus the after-date radiometric difference, on the same grid; ``label`` is 1
    exactly where a planted spectrum was applied. ``synthetic`` is always True."""

    regions: xr.DataArray  # (H, W) int16, 0 unchanged, k > 0 the k-th planted region (its kind is kinds[k - 1])
    kinds: tuple[str, ...]  # the kind of each planted region, in region order
    gain: np.ndarray  # (C,) after-date gain per band: after ~ gain * before + offset outside the mask
    offset: np.ndarray  # (C,) after-date offset per band
    noise_std: float  # std of the after-date per-pixel noise


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
) -> PlantedPair:
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
        ``PlantedPair`` with before, after (C, H, W), label, regions (H, W) on the scene's grid (coords, CRS),
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
    return PlantedPair(
        name="SYNTHETIC: planted changes",
        synthetic=True,
        before=scene.copy(data=before).assign_attrs(attrs | {"date": "before"}),
        after=scene.copy(data=after).assign_attrs(attrs | {"date": "after"}),
        label=_plane(scene, (regions > 0).astype(np.uint8), "change", attrs),
        regions=_plane(scene, regions, "region", attrs | {"kinds": tuple(placed)}),
        kinds=tuple(placed),
        gain=gain,
        offset=offset,
        noise_std=config.noise_std,
        description=description,
    )
