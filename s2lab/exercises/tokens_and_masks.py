"""Exercises of notebooks 02 (tokenization) and 03 (masking).

Each exercise is ``make(seed) -> dict`` (the student's data) and ``judge(answer, data) -> hint or None``, registered
under its key ``"NN.k"`` (see ``s2lab.exercises``).
"""

from __future__ import annotations

import math
from typing import Any

from s2lab.exercises.core import close, register, rng_for


# 02 Tokenization ---------------------------------------------------------------------------------------------------

PATCH_SIZES_02 = (4, 8, 10, 12, 20)


def _make_02_1(seed: int) -> dict:
    """A tile (C bands, H x H pixels) and a token budget [low, high]."""
    rng = rng_for("02.1", seed)
    return {"C": rng.choice((10, 12, 13)), "H": rng.choice((96, 120, 160, 240)),
            "low": rng.choice((100, 200, 300)), "high": rng.choice((600, 800, 1200)), "patch_sizes": PATCH_SIZES_02}


def _judge_02_1(answer: Any, d: dict) -> str | None:
    import torch

    from s2lab import tokenize

    given = {(int(p), int(s)) for p, s in answer}
    image = torch.zeros(1, d["C"], d["H"], d["H"])
    expected = {(p, s) for p in d["patch_sizes"] if d["H"] % p == 0 for s in range(1, d["C"] + 1)
                if d["low"] <= tokenize.patchify(image, p, s).shape[1] <= d["high"]}
    wrong = sorted(given - expected)
    if wrong:
        return f"{len(wrong)} pair(s) do not give between {d['low']} and {d['high']} tokens, e.g. (p, s) = {wrong[0]}"
    if expected - given:
        return f"{len(expected - given)} pair(s) are missing (p must divide H; s runs over 1..C)"
    return None


register("02.1", "the (p, s) pairs within your token budget", _make_02_1, _judge_02_1)


def _make_02_3(seed: int) -> dict:
    """The width of a ``SpatialSpectralEmbedding(kind="wavelength", dim=..., grid=(1, 1), groups=1)``."""
    return {"dim": rng_for("02.3", seed).choice((32, 48, 64, 96, 128)), "kind": "wavelength"}


def _judge_02_3(answer: Any, d: dict) -> str | None:
    import torch

    from s2lab import pos_embed
    from s2lab.sensors import S2_13BANDS, wavelengths

    table = pos_embed.SpatialSpectralEmbedding(kind=d["kind"], dim=d["dim"], grid=(1, 1), groups=1)
    codes = table.spectral_table(torch.tensor(wavelengths(S2_13BANDS)))  # (13, D_spec)
    similarity = torch.nn.functional.cosine_similarity(codes[:, None], codes[None], dim=-1)  # (13, 13)
    similarity.fill_diagonal_(-2.0)  # a band is not its own neighbour
    given = {str(k).upper(): str(v).upper() for k, v in dict(answer).items()}
    if set(given) != set(S2_13BANDS):
        return f"expected one entry per band of the 13 ({', '.join(S2_13BANDS)}), got {len(given)}"
    wrong = [name for i, name in enumerate(S2_13BANDS) if given[name] != S2_13BANDS[int(similarity[i].argmax())]]
    if wrong:
        return f"{len(wrong)} of 13 are wrong, e.g. the most similar band of {wrong[0]} is not {given[wrong[0]]}"
    return None


register("02.3", "the most similar band by wavelength code", _make_02_3, _judge_02_3)


# 03 Masking --------------------------------------------------------------------------------------------------------

def _make_03_1(seed: int) -> dict:
    """A random-masking grid (G groups, N positions) and mask ratio."""
    rng = rng_for("03.1", seed)
    return {"G": rng.choice((3, 4, 5)), "N": 256, "ratio": rng.choice((0.6, 0.7, 0.75, 0.8, 0.85))}


def _judge_03_1(answer: Any, d: dict) -> str | None:
    from s2lab import masking

    G, N = d["G"], d["N"]
    L = G * N
    removed = L - masking.num_kept(L, d["ratio"])
    exact = math.comb(L - G, removed - G) / math.comb(L, removed)  # all G tokens of one position among the removed
    return close(answer, exact, 0.015, "the share of positions removed in all groups (random masking)")


register("03.1", "positions removed in every group", _make_03_1, _judge_03_1)


def _make_03_3(seed: int) -> dict:
    """A width D, a mask ratio, the token size p and group count G."""
    rng = rng_for("03.3", seed)
    return {"D": rng.choice((64, 96, 128, 192, 256)), "ratio": rng.choice((0.75, 0.8, 0.9)), "p": 8, "G": 5}


def _judge_03_3(answer: Any, d: dict) -> str | None:
    from s2lab import masking

    K, side = (int(v) for v in answer)
    K_equal = 6 * d["D"]  # 12 K D^2 (per-token layers) = 2 K^2 D (attention)
    if K != K_equal:
        return "K is not where 12 K D^2 equals 2 K^2 D"
    p, G = d["p"], d["G"]
    # Below this side L (1 - ratio) < K - 1, so no smaller side keeps K tokens: search upwards from it.
    smallest = p * max(1, math.floor(math.sqrt((K_equal - 1) / (1 - d["ratio"]) / G)))
    while masking.num_kept(G * (smallest // p) ** 2, d["ratio"]) < K_equal:
        smallest += p
    if side % p or side != smallest:
        return (f"the crop side is not the smallest multiple of p = {p} whose kept tokens reach K "
                f"(it is too {'large' if side > smallest else 'small'})")
    return None


register("03.3", "where attention costs as much as the per-token layers", _make_03_3, _judge_03_3)
