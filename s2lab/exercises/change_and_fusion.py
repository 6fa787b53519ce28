"""Exercises of notebooks 08 (change detection) and 09 (SAR + optical fusion).

Each exercise is ``make(seed) -> dict`` (the student's data) and ``judge(answer, data) -> hint or None``, registered
under its key ``"NN.k"`` (see ``s2lab.exercises``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2lab.exercises.core import close, register, rng_for


# 08 Change detection -----------------------------------------------------------------------------------------------

def _make_08_1(seed: int) -> dict:
    """A 256 x 256 crop of the held-out half of the embedded scene (row, col within that half) and a planting seed."""
    from s2lab.data.embedded import split_rows

    from s2lab.data.embedded import open_embedded_scene

    rng = rng_for("08.1", seed)
    scene = open_embedded_scene(bands=["B04", "B08"])
    held_out = scene.isel(y=split_rows(scene.sizes["y"], "eval"))
    size = 256
    for _ in range(50):  # a crop with room for the changes: at least 40 % vegetation (NDVI > 0.4), not open sea
        row = 16 * rng.randrange(0, (held_out.sizes["y"] - size) // 16 + 1)
        col = 16 * rng.randrange(0, (held_out.sizes["x"] - size) // 16 + 1)
        red, nir = held_out.isel(y=slice(row, row + size), x=slice(col, col + size)).values  # (2, size, size)
        if float(((nir - red) / (nir + red + 1e-6) > 0.4).mean()) >= 0.4:
            break
    return {"row": row, "col": col, "size": size, "n": 10, "plant_seed": rng.randrange(1000)}


def _judge_08_1(answer: Any, d: dict) -> str | None:
    import torch

    from s2lab.cva import change_vector_analysis, otsu_threshold
    from s2lab.data.embedded import open_embedded_scene, split_rows
    from s2lab.data.synthetic import plant_changes, scene_radiometry
    from s2lab.evaluate import score_change

    standardised, raw = answer
    scene = open_embedded_scene()
    crop = scene.isel(y=split_rows(scene.sizes["y"], "eval")).isel(y=slice(d["row"], d["row"] + d["size"]),
                                                                    x=slice(d["col"], d["col"] + d["size"]))
    pair = plant_changes(crop, n=d["n"], rng=np.random.default_rng(d["plant_seed"]), reference=scene_radiometry(scene))
    f1 = {}
    for normalize in (True, False):
        magnitude = change_vector_analysis(torch.as_tensor(pair.before.values), torch.as_tensor(pair.after.values),
                                           normalize=normalize)  # (H, W)
        scaled = (magnitude - magnitude.min()) / (magnitude.max() - magnitude.min())
        f1[normalize] = score_change(scaled, pair.label, otsu_threshold(scaled))["f1"]
    return (close(standardised, f1[True], 0.01, "the F1 of CVA + Otsu with standardised bands")
            or close(raw, f1[False], 0.01, "the F1 of CVA + Otsu without standardising"))


register("08.1", "CVA with and without standardising on your planted pair", _make_08_1, _judge_08_1)
