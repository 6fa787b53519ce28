"""The CORINE Land Cover nomenclatures of BigEarthNet: its 43 level-3 classes (``LABELS_43``), the 19 classes of
BigEarthNet-MM (Sumbul et al. 2021, ``LABELS_19``) that merge and drop some of them (``to_19``), and the multi-hot
targets a classifier learns (``multi_hot``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# The 43 CORINE level-3 names of BigEarthNet v1 in the dataset's order, each with its class in the 19-class
# nomenclature (None: dropped, no reliable signature at 10-60 m). Source: Sumbul, Charfuelan, Demir, Markl,
# "BigEarthNet-MM", IEEE Geoscience and Remote Sensing Magazine 9(3), 2021, and the label_indices.json of its
# reference code (git.tu-berlin.de/rsim/BigEarthNet-S2_19-classes_models), which bigearthnet-common mirrors.
_43_TO_19: dict[str, str | None] = {
    "Continuous urban fabric": "Urban fabric",
    "Discontinuous urban fabric": "Urban fabric",
    "Industrial or commercial units": "Industrial or commercial units",
    "Road and rail networks and associated land": None,
    "Port areas": None,
    "Airports": None,
    "Mineral extraction sites": None,
    "Dump sites": None,
    "Construction sites": None,
    "Green urban areas": None,
    "Sport and leisure facilities": None,
    "Non-irrigated arable land": "Arable land",
    "Permanently irrigated land": "Arable land",
    "Rice fields": "Arable land",
    "Vineyards": "Permanent crops",
    "Fruit trees and berry plantations": "Permanent crops",
    "Olive groves": "Permanent crops",
    "Pastures": "Pastures",
    "Annual crops associated with permanent crops": "Permanent crops",
    "Complex cultivation patterns": "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation": (
        "Land principally occupied by agriculture, with significant areas of natural vegetation"
    ),
    "Agro-forestry areas": "Agro-forestry areas",
    "Broad-leaved forest": "Broad-leaved forest",
    "Coniferous forest": "Coniferous forest",
    "Mixed forest": "Mixed forest",
    "Natural grassland": "Natural grassland and sparsely vegetated areas",
    "Moors and heathland": "Moors, heathland and sclerophyllous vegetation",
    "Sclerophyllous vegetation": "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland/shrub": "Transitional woodland, shrub",
    "Beaches, dunes, sands": "Beaches, dunes, sands",
    "Bare rock": None,
    "Sparsely vegetated areas": "Natural grassland and sparsely vegetated areas",
    "Burnt areas": None,
    "Inland marshes": "Inland wetlands",
    "Peatbogs": "Inland wetlands",
    "Salt marshes": "Coastal wetlands",
    "Salines": "Coastal wetlands",
    "Intertidal flats": None,
    "Water courses": "Inland waters",
    "Water bodies": "Inland waters",
    "Coastal lagoons": "Marine waters",
    "Estuaries": "Marine waters",
    "Sea and ocean": "Marine waters",
}

LABELS_43: tuple[str, ...] = tuple(_43_TO_19)
"""The 43 CORINE level-3 class names of BigEarthNet v1, in the dataset's order."""

LABELS_19: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)
"""The 19 classes of BigEarthNet-MM (Sumbul et al. 2021), in the order of its reference code: index k of
``multi_hot`` is ``LABELS_19[k]``."""


def to_19(labels43: Iterable[str]) -> list[str]:
    """Map CORINE level-3 names (the 43 classes) to the 19-class nomenclature.

    Args:
        labels43: names from ``LABELS_43``, e.g. the ``labels`` of a BigEarthNet label file.

    Returns:
        The distinct 19-class names they map to, in ``LABELS_19`` order; classes without a 19-class
        counterpart (airports, bare rock, burnt areas, ...) are dropped, so the list may be empty.

    Raises:
        ValueError: a name is not one of the 43 (the message lists the unknown names).
    """
    labels43 = [labels43] if isinstance(labels43, str) else list(labels43)
    unknown = [name for name in labels43 if name not in _43_TO_19]
    if unknown:
        raise ValueError(f"unknown BigEarthNet labels {unknown}; expected names from LABELS_43 (CORINE level 3)")
    present = {_43_TO_19[name] for name in labels43}
    return [name for name in LABELS_19 if name in present]


def multi_hot(labels19: Iterable[str]) -> np.ndarray:
    """A (19,) float32 target with 1.0 at the index of each name in ``LABELS_19``.

    Raises:
        ValueError: a name is not one of the 19 classes.
    """
    labels19 = [labels19] if isinstance(labels19, str) else list(labels19)
    unknown = [name for name in labels19 if name not in LABELS_19]
    if unknown:
        raise ValueError(f"unknown 19-class labels {unknown}; expected names from LABELS_19 (map 43 names with to_19)")
    target = np.zeros(len(LABELS_19), dtype=np.float32)
    target[[LABELS_19.index(name) for name in labels19]] = 1.0
    return target
