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


# 09 SAR + optical fusion -------------------------------------------------------------------------------------------

def _make_09_4(seed: int) -> dict:
    """A mask ratio and 5 mask seeds for the radar test of the shipped FUS-MAE on the patches it never saw."""
    rng = rng_for("09.4", seed)
    first = rng.randrange(1000)
    return {"model": "fusmae-ben-small", "ratio": rng.choice((0.5, 0.6, 0.75, 0.9)),
            "seeds": list(range(first, first + 5))}


def held_out_fusion_windows(model_name: str = "fusmae-ben-small"):
    """The shipped FUS-MAE and every whole window of the BigEarthNet patches it never saw, in order:
    (model, s2 (B, 10, S, S) reflectance, s1 (B, 2, S, S) dB), S the model's tile size."""
    import torch

    from s2lab.data.bigearthnet import EMBEDDED, load_bigearthnet_patch
    from s2lab.data.tiles import tile, to_tensor
    from s2lab.models import load_model
    from s2lab.sensors import S2_10BANDS

    model, info = load_model(model_name)
    size = model.config.img_size
    s2, s1 = [], []
    for name in info["meta"]["held_out"]["bigearthnet_patches"]:
        patch = load_bigearthnet_patch(name, root=EMBEDDED, bands=S2_10BANDS)
        for image, out in ((to_tensor(patch.s2), s2), (to_tensor(patch.s1), s1)):
            whole = image[:, : image.shape[1] // size * size, : image.shape[2] // size * size]
            out.append(tile(whole, size, stride=size, drop_nan=False)[0])
    return model, torch.cat(s2), torch.cat(s1)


def _judge_09_4(answer: Any, d: dict) -> str | None:
    from s2lab.models.fusmae import radar_use

    own, another_minus_own, uses_radar = answer
    model, s2, s1 = held_out_fusion_windows(d["model"])
    use = radar_use(model, s2, s1, mask_ratio=d["ratio"], seeds=d["seeds"])
    expected_own = 1e4 * use["mean"]["own"]
    difference = use["minus_own"]["another patch's"]
    used = all(case["mean"] > case["sd"] for case in use["minus_own"].values())
    hint = (close(own, expected_own, 0.01 * expected_own, "the S2 masked MSE x 1e4 with each window's own S1")
            or close(another_minus_own, 1e4 * difference["mean"], 0.02 * abs(1e4 * difference["mean"]) + 1e-3,
                     "the mean paired difference (another patch's S1 - own S1) x 1e4"))
    if hint:
        return hint
    if not isinstance(uses_radar, (bool, np.bool_)):
        return "the verdict is not True or False"
    if bool(uses_radar) != used:
        return ("the verdict does not follow the rule: the radar is used when both differences from the own-S1 case "
                "(another patch's, constant) are positive and larger than their spread over the mask seeds")
    return None


register("09.4", "does the shipped FUS-MAE lean on the radar at your mask ratio", _make_09_4, _judge_09_4)
