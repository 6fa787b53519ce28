"""Exercises of notebooks 04 (live reconstruction) and 05 (pretraining).

Each exercise is ``make(seed) -> dict`` (the student's data) and ``judge(answer, data) -> hint or None``, registered
under its key ``"NN.k"`` (see ``s2lab.exercises``).
"""

from __future__ import annotations

from typing import Any

from s2lab.exercises.core import close, register, rng_for


def _scene_shape() -> tuple[int, int]:
    """(rows, columns) of the embedded scene."""
    from s2lab.data.embedded import open_embedded_scene

    scene = open_embedded_scene()
    return scene.sizes["y"], scene.sizes["x"]


# 04 Live reconstruction -------------------------------------------------------------------------------------------

def _make_04_1(seed: int) -> dict:
    """A 128 x 128 crop of the 10-band scene's held-out half (its top-left corner), a mask ratio and a mask seed."""
    from s2lab.data.embedded import split_rows

    rng = rng_for("04.1", seed)
    height, width = _scene_shape()
    rows = split_rows(height, "eval")
    return {"y0": rows.start + 8 * rng.randrange(0, (rows.stop - rows.start - 128) // 8 + 1),
            "x0": 8 * rng.randrange(0, (width - 128) // 8 + 1), "size": 128,
            "ratio": rng.choice((0.5, 0.75, 0.9, 0.95)), "seed": rng.randrange(100)}


def _judge_04_1(answer: Any, d: dict) -> str | None:
    from s2lab.baselines import FILL_NAMES
    from s2lab.data.embedded import open_embedded_scene
    from s2lab.data.tiles import to_tensor
    from s2lab.models import load_model
    from s2lab.reconstruct import reconstruct_tiles
    from s2lab.sensors import S2_10BANDS

    crop = open_embedded_scene(bands=S2_10BANDS).isel(y=slice(d["y0"], d["y0"] + d["size"]),
                                                       x=slice(d["x0"], d["x0"] + d["size"]))
    scores = reconstruct_tiles(load_model("s2mae-s2-small")[0], to_tensor(crop)[None], mask_ratio=d["ratio"],
                               strategy="random", seed=d["seed"])["scores"]
    lead = scores["model"]["psnr"] - max(scores[name]["psnr"] for name in FILL_NAMES)
    return close(answer, lead, 0.05, "S2MAE's PSNR lead over the best naive fill (dB)")


register("04.1", "S2MAE's lead over the naive fills on your crop", _make_04_1, _judge_04_1)


# 05 Pretraining ----------------------------------------------------------------------------------------------------

def _make_05_2(seed: int) -> dict:
    """64 held-out 32 px tiles (the seed of their draw), a mask ratio and a mask seed."""
    rng = rng_for("05.2", seed)
    return {"tiles": 64, "img_size": 32, "tile_seed": rng.randrange(1000), "ratio": rng.choice((0.25, 0.5, 0.75, 0.9)),
            "mask_seed": rng.randrange(1000)}


def held_out_tiles(model, count: int, size: int, seed: int):
    """``count`` random size x size tiles (count, C, size, size) of the embedded scene's held-out half
    (``embedded:eval``), drawn as ``pretrain_task`` draws them for ``model``, from
    ``torch.Generator().manual_seed(seed)``."""
    import torch

    from s2lab.data.pretraining import pretraining_images
    from s2lab.tasks import pretrain_task

    draw, _ = pretrain_task(model, pretraining_images(["embedded:eval"]), batch_size=count, img_size=size)
    return draw(0, torch.Generator().manual_seed(seed))


def _judge_05_2(answer: Any, d: dict) -> str | None:
    from s2lab.baselines import FILL_NAMES
    from s2lab.models import load_model
    from s2lab.reconstruct import reconstruct_tiles

    best_fill, model_mse = answer
    shipped = load_model("s2mae-s2-small")[0]
    tiles = held_out_tiles(shipped, d["tiles"], d["img_size"], d["tile_seed"])  # (64, C, 32, 32)
    scores = reconstruct_tiles(shipped, tiles, mask_ratio=d["ratio"], seed=d["mask_seed"])["scores"]
    if best_fill not in FILL_NAMES or scores[best_fill]["mse"] > min(scores[n]["mse"] for n in FILL_NAMES):
        return f"{best_fill!r} is not the naive fill of lowest masked MSE (one of {', '.join(FILL_NAMES)})"
    expected = 1e4 * scores["model"]["mse"]
    return close(model_mse, expected, 0.01 * expected, "the shipped model's masked MSE x 1e4")


register("05.2", "the best naive fill and the shipped model on your tiles and mask", _make_05_2, _judge_05_2)
