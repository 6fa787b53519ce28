"""A synthetic BigEarthNet-19-like multi-label set: images of 1-4 regions, each a class made from real data.

Every output says it is synthetic: ``synthetic=True`` on each returned dataclass and ``attrs["synthetic"] = True``
on each DataArray, with a ``description``. ``BIGEARTHNET_RECIPES`` says how each of the 19 classes is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from s2lab.data.corine import LABELS_19
from s2lab.data.synthetic.covers import _smooth_noise
from s2lab.data.synthetic.textures import (
    LabelledSet,
    Recipe,
    _broadleaf,
    _fields,
    _industrial,
    _orchard,
    _prepare,
    _residential,
    _scatter,
)
from s2lab.sensors import S2_10BANDS

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


@dataclass(frozen=True, kw_only=True)
class MultiLabelSet(LabelledSet):
    """A synthetic BigEarthNet-19-like multi-label set: y (B, 19) float32 multi-hot, 1.0 where the class covers
    some pixels of the image, classes ``s2lab.data.corine.LABELS_19``; unpacks as ``x, y, classes = images``."""

    label_map: torch.Tensor  # (B, S, S) int64, the class index of every pixel


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
    if not 1 <= max_regions <= len(LABELS_19):
        raise ValueError(f"max_regions must be 1-{len(LABELS_19)}, got {max_regions}")
    gen, bands, src = _prepare(count, "count", size, rng, bands, split)
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
