"""Tiles of synthetic change pairs from random windows of the real scene, for training a change head.

Every output says it is synthetic: ``synthetic=True`` on each returned dataclass and ``attrs["synthetic"] = True``
on each DataArray, with a ``description``. The tiles are the OSCD stand-in; each is a window of the scene with
``plant_changes`` (``s2lab.data.synthetic.changes``) applied.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.synthetic.changes import KINDS, PlantConfig, _check_kinds, _plant
from s2lab.data.synthetic.covers import (
    COVERS,
    _box_fraction,
    _check_scene,
    _integral,
    _radiometry,
    as_numpy_generator,
    cover_map,
)
from s2lab.sensors import band_names

@dataclass(frozen=True, kw_only=True)
class ChangeTiles:
    """Training tiles of synthetic change pairs; unpacks as ``before, after, label = tiles``."""

    before: torch.Tensor  # (B, C, S, S) float32 reflectance
    after: torch.Tensor  # (B, C, S, S) float32 reflectance, with planted changes
    label: torch.Tensor  # (B, S, S) uint8, 1 = change
    origins: torch.Tensor  # (B, 2) int64 row and column of each tile's top-left pixel in the scene
    kinds: tuple[tuple[str, ...], ...]  # the kinds planted in each tile
    split: str  # "train" or "eval": which half of the scene's rows the tiles come from
    synthetic: bool = True  # always True
    description: str = ""  # how the tiles were made

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.before, self.after, self.label))



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
        label=torch.from_numpy(masks),
        origins=torch.tensor(origins, dtype=torch.int64),
        kinds=tuple(kinds_per_tile),
        split=split,
        description=description,
    )
