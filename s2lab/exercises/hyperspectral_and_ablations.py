"""Exercises of notebooks 10 (hyperspectral: any band count), 11 (unmixing) and 12 (ablations).

Each exercise is ``make(seed) -> dict`` (the student's data) and ``judge(answer, data) -> hint or None``, registered
under its key ``"NN.k"`` (see ``s2lab.exercises``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2lab.exercises.core import close, register, rng_for
from s2lab.exercises.reconstruction import held_out_tiles


# 10 Hyperspectral: any band count -------------------------------------------------------------------------------------

WAVELENGTH_CODE_WIDTH = 16  # D_spec of the wavelength codes compared in 10.3 (the width of notebook 10's model)


def _make_10_3(seed: int) -> dict:
    """An imaging spectrometer's band grid (``channels`` centres every ``step_nm`` from ``first_nm``; those inside
    the water-vapour window ``removed_nm`` removed), the bands per token s, the patch size p and a square tile size."""
    rng = rng_for("10.3", seed)
    first, step, low = rng.choice((400, 405, 410, 415)), rng.choice((5, 6, 8, 10, 12)), rng.choice((1330, 1340, 1350))
    return {"first_nm": first, "step_nm": step, "channels": (rng.choice((2400, 2450, 2500)) - first) // step + 1,
            "removed_nm": (low, low + rng.choice((80, 100, 120))), "s": rng.choice((2, 3, 4, 5)), "p": 8,
            "tile": rng.choice((32, 48, 64))}


def sensor_wavelengths(d: dict) -> np.ndarray:
    """(C,) band centres in nm of a 10.3 sensor: ``channels`` centres every ``step_nm`` from ``first_nm``, less those
    inside the removed window (both ends included)."""
    nm = d["first_nm"] + d["step_nm"] * np.arange(d["channels"], dtype=np.float64)
    low, high = d["removed_nm"]
    return nm[(nm < low) | (nm > high)]


def _judge_10_3(answer: Any, d: dict) -> str | None:
    import torch

    from s2lab.pos_embed import SpatialSpectralEmbedding
    from s2lab.tokenize import CubeTokenizer

    G, L, similarity = answer
    nm = sensor_wavelengths(d)  # (C,)
    tokenizer = CubeTokenizer(patch_size=d["p"], bands_per_token=d["s"], in_chans=len(nm))
    groups = tokenizer.bands_of_group  # G tuples of band indices, the last one maybe shorter
    if int(G) != tokenizer.G:
        return ("G is wrong (count the bands left after the removed window, then runs of s adjacent bands; the last "
                "run may be shorter)")
    if int(L) != tokenizer.G * (d["tile"] // d["p"]) ** 2:
        return "L is wrong (L = G N, with N the p x p patches of your tile)"
    means = torch.tensor([nm[list(group)].mean() for group in groups])  # (G,) nm
    table = SpatialSpectralEmbedding(kind="wavelength", dim=4 * WAVELENGTH_CODE_WIDTH, grid=(1, 1), groups=1)
    codes = table.spectral_table(means)  # (G, D_spec)
    low, high = d["removed_nm"]
    below = max(g for g, group in enumerate(groups) if nm[group[-1]] < low)  # the last group wholly below the window
    above = min(g for g, group in enumerate(groups) if nm[group[0]] > high)  # the first wholly above it
    expected = float(torch.nn.functional.cosine_similarity(codes[below], codes[above], dim=0))
    return close(similarity, expected, 0.01, "the similarity of the codes of the last group wholly below the window "
                 "and the first wholly above it (a group straddling the window is skipped; mean wavelength / 100 nm, "
                 "sin and cos, D_spec = 16)")


register("10.3", "the tokens and wavelength codes of your sensor", _make_10_3, _judge_10_3)


# 11 Unmixing ----------------------------------------------------------------------------------------------------------

def _make_11_3(seed: int) -> dict:
    """A 10 x 10 px window of the hyperspectral cube (its top-left row, col) and a band step: unmix it with every
    step-th band."""
    rng = rng_for("11.3", seed)
    return {"row": 5 * rng.randrange(0, 19), "col": 5 * rng.randrange(0, 19), "size": 10,
            "step": rng.choice((2, 3, 6, 12, 20))}


SUM_TO_ONE_WEIGHT = 100.0  # the weight of the sum-to-one row appended to the endmembers (Heinz & Chang, 2001)


def _judge_11_3(answer: Any, d: dict) -> str | None:
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


register("11.3", "unmixing your window with every step-th band", _make_11_3, _judge_11_3)


# 12 Ablations ---------------------------------------------------------------------------------------------------------

def _make_12_4(seed: int) -> dict:
    """An evaluation-time ablation of the shipped models: a reference setting, three one-at-a-time changes, held-out
    tiles (the seed of their draw) and three mask seeds for the noise floor."""
    rng = rng_for("12.4", seed)
    first = rng.randrange(1000)
    return {"tiles": 32, "img_size": 32, "tile_seed": rng.randrange(1000), "mask_seeds": [first, first + 1, first + 2],
            "reference": {"model": "s2mae-s2-small", "strategy": "random", "ratio": rng.choice((0.6, 0.75))},
            "changes": {"model": {"model": "satmae-s2-small"},
                        "strategy": {"strategy": rng.choice(("tube", "spectral", "balanced"))},
                        "mask ratio": {"ratio": rng.choice((0.5, 0.9))}}}


def ablation_scores(d: dict) -> dict[str, list[float]]:
    """The ratio model masked MSE / best naive fill's, per mask seed, for the reference and each change of a 12.4
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


def _judge_12_4(answer: Any, d: dict) -> str | None:
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


register("12.4", "reading your evaluation ablation of the shipped models", _make_12_4, _judge_12_4)
