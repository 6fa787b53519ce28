"""Exercises of notebooks 10 (hyperspectral) and 11 (ablations).

Each exercise is ``make(seed) -> dict`` (the student's data) and ``judge(answer, data) -> hint or None``, registered
under its key ``"NN.k"`` (see ``s2lab.exercises``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2lab.exercises.core import close, register, rng_for
from s2lab.exercises.reconstruction import held_out_tiles


# 10 Hyperspectral --------------------------------------------------------------------------------------------------

def _make_10_4(seed: int) -> dict:
    """A 10 x 10 px window of the hyperspectral cube (its top-left row, col) and a band step: unmix it with every
    step-th band."""
    rng = rng_for("10.4", seed)
    return {"row": 5 * rng.randrange(0, 19), "col": 5 * rng.randrange(0, 19), "size": 10,
            "step": rng.choice((2, 3, 6, 12, 20))}


SUM_TO_ONE_WEIGHT = 100.0  # the weight of the sum-to-one row appended to the endmembers (Heinz & Chang, 2001)


def _judge_10_4(answer: Any, d: dict) -> str | None:
    import scipy.optimize

    from s2lab.data.hyperspectral import open_hyperspectral

    hs = open_hyperspectral()
    names = [str(n) for n in hs.endmembers["endmember"].values]
    given = {str(k): float(v) for k, v in dict(answer).items()}
    if set(given) != set(names):
        return f"expected one mean abundance per endmember ({', '.join(names)}), got {', '.join(given) or 'none'}"
    bands = slice(None, None, d["step"])
    window = hs.cube.values[bands, d["row"]:d["row"] + d["size"], d["col"]:d["col"] + d["size"]]  # (C', size, size)
    Y = window.reshape(window.shape[0], -1).astype(np.float64)  # (C', n)
    M = hs.endmembers.values[:, bands].astype(np.float64)  # (K, C')
    augmented = np.vstack([M.T, SUM_TO_ONE_WEIGHT * np.ones((1, len(names)))])  # (C' + 1, K)
    A = np.stack([scipy.optimize.nnls(augmented, np.append(y, SUM_TO_ONE_WEIGHT))[0] for y in Y.T], axis=1)  # (K, n)
    for k, name in enumerate(names):
        hint = close(given[name], float(A[k].mean()), 0.005, f"the mean abundance of {name} in your window")
        if hint:
            return hint + " (every step-th band of the cube and of the endmembers; abundances >= 0 summing to 1)"
    return None


register("10.4", "unmixing your window with every step-th band", _make_10_4, _judge_10_4)


# 11 Ablations ------------------------------------------------------------------------------------------------------

def _make_11_4(seed: int) -> dict:
    """An evaluation-time ablation of the shipped models: a reference setting, three one-at-a-time changes, held-out
    tiles (the seed of their draw) and three mask seeds for the noise floor."""
    rng = rng_for("11.4", seed)
    first = rng.randrange(1000)
    return {"tiles": 32, "img_size": 32, "tile_seed": rng.randrange(1000), "mask_seeds": [first, first + 1, first + 2],
            "reference": {"model": "s2mae-s2-small", "strategy": "random", "ratio": rng.choice((0.6, 0.75))},
            "changes": {"model": {"model": "satmae-s2-small"},
                        "strategy": {"strategy": rng.choice(("tube", "spectral", "balanced"))},
                        "mask ratio": {"ratio": rng.choice((0.5, 0.9))}}}


def ablation_scores(d: dict) -> dict[str, list[float]]:
    """The ratio model masked MSE / best naive fill's, per mask seed, for the reference and each change of an 11.4
    data dict: {"reference": [...], change: [...]} (one value per mask seed, the same masks seeds in every list)."""
    from s2lab.baselines import FILL_NAMES
    from s2lab.models import load_model
    from s2lab.reconstruct import reconstruct_tiles

    models = {name: load_model(name)[0] for name in ("s2mae-s2-small", "satmae-s2-small")}
    tiles = held_out_tiles(models["s2mae-s2-small"], d["tiles"], d["img_size"], d["tile_seed"])  # (B, 10, S, S)
    settings = {"reference": d["reference"], **{k: {**d["reference"], **v} for k, v in d["changes"].items()}}
    out = {}
    for name, s in settings.items():
        out[name] = []
        for mask_seed in d["mask_seeds"]:
            scores = reconstruct_tiles(models[s["model"]], tiles, mask_ratio=s["ratio"], strategy=s["strategy"],
                                       seed=mask_seed)["scores"]
            out[name].append(scores["model"]["mse"] / min(scores[f]["mse"] for f in FILL_NAMES))
    return out


def _judge_11_4(answer: Any, d: dict) -> str | None:
    largest, effect, beyond = answer
    scores = ablation_scores(d)
    reference = np.array(scores["reference"])  # (seeds,)
    effects = {k: float(np.mean(np.array(scores[k]) - reference)) for k in d["changes"]}  # paired by mask seed
    floor = 2 * float(reference.std(ddof=1))
    expected = max(effects, key=lambda k: abs(effects[k]))
    if str(largest) not in effects:
        return f"{largest!r} is not one of the changes ({', '.join(effects)})"
    if str(largest) != expected:
        return f"the {largest} change does not move the ratio most (compare the size of each mean paired difference)"
    hint = close(effect, effects[expected], 0.01 + 0.02 * abs(effects[expected]),
                 f"the {expected} change's mean paired difference from the reference (with its sign)")
    if hint:
        return hint
    if int(beyond) != sum(abs(v) > floor for v in effects.values()):
        return ("the count of changes beyond the noise floor is wrong (beyond: the size of the mean difference exceeds "
                "twice the reference's standard deviation over the mask seeds, ddof=1)")
    return None


register("11.4", "reading your evaluation ablation of the shipped models", _make_11_4, _judge_11_4)
