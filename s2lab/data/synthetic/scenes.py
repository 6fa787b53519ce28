"""A synthetic EuroSAT-like scene-classification set: real scene windows and real spectra in layouts.

Every output says it is synthetic: ``synthetic=True`` on each returned dataclass and ``attrs["synthetic"] = True``
on each DataArray, with a ``description``. ``EUROSAT_RECIPES`` says how each of the ten classes is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from s2lab.data.eurosat import EUROSAT_CLASSES
from s2lab.data.synthetic.textures import (
    LabelledSet,
    Recipe,
    _fields,
    _highway,
    _industrial,
    _orchard,
    _prepare,
    _residential,
    _river,
)
from s2lab.sensors import S2_10BANDS

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


@dataclass(frozen=True, kw_only=True)
class SceneSet(LabelledSet):
    """A synthetic EuroSAT-like scene-classification set: x (B, C, S, S) ordered by class, y (B,) int64 class
    indices into ``classes`` (EuroSAT's, ``s2lab.data.eurosat.EUROSAT_CLASSES``); unpacks as
    ``x, y, classes = scenes``."""


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
    gen, bands, src = _prepare(count_per_class, "count_per_class", size, rng, bands, split)
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
