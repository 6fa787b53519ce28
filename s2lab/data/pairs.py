"""The one bitemporal sample type: a before / after pair of images on one grid, and its change label.

Every source of change pairs returns a ``ChangePair`` (or a subclass that adds what only it knows):

    ChangePair            before, after (C, H, W); label (H, W) 1 = change; name, synthetic, description
      OSCDPair            + city, dates, label_encoding            (s2lab.data.oscd.load_oscd_city)
      PlantedPair         + regions, kinds, gain, offset, noise_std (s2lab.data.synthetic.plant_changes)

The truth is called ``label`` everywhere. A pair unpacks as ``before, after, label = pair``, so code that scores or
trains on pairs (``s2lab.evaluate``, ``s2lab.tasks.change_task``) takes a ``ChangePair`` or a plain
``(before, after, label)`` tuple of tensors or arrays alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import xarray as xr


@dataclass(frozen=True, kw_only=True)
class ChangePair:
    """A before / after pair of images on one grid and its change label."""

    before: xr.DataArray  # (C, H, W) reflectance
    after: xr.DataArray  # (C, H, W) reflectance on before's grid
    label: xr.DataArray | None  # (H, W) uint8, 1 = change, 0 = no change; None for unlabelled imagery
    name: str  # e.g. "OSCD nantes" or "SYNTHETIC: planted changes"
    synthetic: bool  # True when the changes were planted, not observed
    description: str = ""  # where the pair comes from, in a sentence

    def __iter__(self) -> Iterator[Any]:
        return iter((self.before, self.after, self.label))
