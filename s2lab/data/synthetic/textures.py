"""Real windows and real spectra in structured layouts: the textures of the scene-classification and multi-label sets.

``_Source`` gives real windows of one cover of the embedded scene and textured library fills; the layouts
(parcels, roads, rivers, planting rows, buildings and streets) combine them. The recipes shared by
``EUROSAT_RECIPES`` (``s2lab.data.synthetic.scenes``) and ``BIGEARTHNET_RECIPES``
(``s2lab.data.synthetic.multilabel``) live here, with what both sets share: ``LabelledSet`` (the fields of the set
they return) and ``_prepare`` (checking the arguments and opening the real windows). Nothing here is returned to a user unlabelled: the sets that use
these textures are marked ``synthetic=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage

from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.synthetic.covers import (
    COVERS,
    INDEX_BANDS,
    _box_fraction,
    _draw,
    _integral,
    _radiometry,
    _smooth_noise,
    cover_map,
    family_spectra,
    as_numpy_generator,
    smooth_fractions,
)
from s2lab.sensors import band_names

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


@lru_cache(maxsize=2)
def _source(bands: tuple[str, ...], split: str) -> _Source:
    """The ``_Source`` of ``bands`` and ``split``, kept for the next calls (building one takes a second or two;
    two are kept so that alternating "train" and "eval" does not rebuild them)."""
    return _Source(bands, split)


def _check_size(size: int, what: str) -> None:
    if not isinstance(size, int) or not 8 <= size <= 256:
        raise ValueError(f"{what} must be an int from 8 to 256 pixels, got {size!r}")


@dataclass(frozen=True, kw_only=True)
class LabelledSet:
    """A synthetic labelled set of images; unpacks as ``x, y, classes = images``. Its subclasses say what y is."""

    x: torch.Tensor  # (B, C, S, S) float32 top-of-atmosphere reflectance
    y: torch.Tensor  # (B, ...) the targets
    classes: tuple[str, ...]  # the class names
    bands: tuple[str, ...]  # the C band names
    split: str  # which half of the scene's rows the real windows come from
    recipes: dict[str, str] = field(default_factory=dict)  # class -> how its images are made
    synthetic: bool = True  # always True
    description: str = ""  # what the set is, in a sentence

    def __iter__(self) -> Iterator:
        return iter((self.x, self.y, self.classes))


def _prepare(count: int, what: str, size: int, rng: np.random.Generator | torch.Generator, bands: Sequence[str],
             split: str) -> tuple[np.random.Generator, tuple[str, ...], _Source]:
    """Check a set's arguments (``what``: the name of its count) and return (numpy generator, bands, source)."""
    gen = as_numpy_generator(rng)
    if count < 1:
        raise ValueError(f"{what} must be at least 1, got {count}")
    _check_size(size, "size")
    bands = band_names(bands)
    split_rows(0, split)  # validates the split name
    return gen, bands, _source(bands, split)
