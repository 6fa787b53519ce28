"""Synthetic labelled data made from REAL spectra and the REAL embedded scene, for where no labelled data exists.

Every output says it is synthetic: ``synthetic=True`` on each returned dataclass and ``attrs["synthetic"] = True``
on each DataArray, with a ``description``. Everything is a pure function of the ``rng`` argument (a
``numpy.random.Generator``, or a ``torch.Generator`` from which one numpy seed is drawn); nothing is seeded
globally, so the same generator state gives the same data.

The generators, one module each:

- ``changes.plant_changes``: a before / after pair from one scene with an exact change mask;
  ``change_tiles.synthetic_change_dataset``: tiles of such pairs for training (the OSCD stand-in).
- ``scenes.synthetic_scene_classification``: a EuroSAT-like set, ten classes (``EUROSAT_RECIPES`` says how each
  is made).
- ``multilabel.synthetic_multilabel``: BigEarthNet-19-like images of 1-4 regions (``BIGEARTHNET_RECIPES``).

What they share: ``covers`` (the scene's land covers and radiometry, library spectra by family, smooth random
fields; its docstring says how library spectra are made to sit in the scene and which rows "train" and "eval"
draw from) and ``textures`` (real windows and library spectra in layouts, for the two classification sets).
Every name below is importable from ``s2lab.data.synthetic`` itself.
"""

from s2lab.data.embedded import split_rows
from s2lab.data.synthetic.change_tiles import ChangeTiles, synthetic_change_dataset
from s2lab.data.synthetic.changes import KINDS, PlantConfig, PlantedPair, plant_changes
from s2lab.data.synthetic.covers import (
    ANALOGUE_COVERS,
    COVER_RULES,
    COVERS,
    FAMILIES,
    HAZE_PERCENTILE,
    INDEX_BANDS,
    NEAREST,
    RADIOMETRY_PIXELS,
    Radiometry,
    as_numpy_generator,
    cover_map,
    family_spectra,
    scene_radiometry,
    smooth_fractions,
)
from s2lab.data.synthetic.multilabel import BIGEARTHNET_RECIPES, MultiLabelSet, synthetic_multilabel
from s2lab.data.synthetic.scenes import EUROSAT_RECIPES, SceneSet, synthetic_scene_classification
from s2lab.data.synthetic.textures import Recipe

__all__ = [
    "ANALOGUE_COVERS",
    "BIGEARTHNET_RECIPES",
    "COVERS",
    "COVER_RULES",
    "ChangeTiles",
    "EUROSAT_RECIPES",
    "FAMILIES",
    "HAZE_PERCENTILE",
    "INDEX_BANDS",
    "KINDS",
    "MultiLabelSet",
    "NEAREST",
    "PlantConfig",
    "PlantedPair",
    "RADIOMETRY_PIXELS",
    "Radiometry",
    "Recipe",
    "SceneSet",
    "as_numpy_generator",
    "cover_map",
    "family_spectra",
    "plant_changes",
    "scene_radiometry",
    "smooth_fractions",
    "split_rows",
    "synthetic_change_dataset",
    "synthetic_multilabel",
    "synthetic_scene_classification",
]
