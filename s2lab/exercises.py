"""Exercises checked automatically, with data of the student's own.

Each checkable exercise of the notebooks is registered here under its key, ``"NN.k"`` (notebook NN, exercise k). An
exercise has two functions:

- ``make(seed)`` draws the student's own data (a crop position, a mask ratio, an array of scores, ...) from the
  student's seed, so two students get different numbers to find and copying an answer fails;
- ``judge(answer, data)`` recomputes the expected answer from the same data with the library and returns None when
  the answer is right, or a hint naming what is wrong (never the expected answer itself).

In a notebook::

    from s2lab import exercises
    mine = exercises.data("03.1")      # this student's data: a dict
    answer = ...                       # computed from mine
    exercises.check("03.1", answer)    # prints a pass, or a hint; returns True / False

The student is named by the environment variable ``S2LAB_STUDENT`` (a name or an id; it is hashed into the seed).
Unset, everyone is ``"student"`` (``DEFAULT_STUDENT``), so a course sets it per student, e.g.
``S2LAB_STUDENT=jdoe jupyter lab``. Conceptual exercises are not registered: they stay open questions.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

STUDENT_VARIABLE = "S2LAB_STUDENT"
DEFAULT_STUDENT = "student"


def student_name() -> str:
    """The student's name or id: ``$S2LAB_STUDENT`` stripped, or ``DEFAULT_STUDENT`` when unset or blank."""
    return os.environ.get(STUDENT_VARIABLE, "").strip() or DEFAULT_STUDENT


def student_seed(name: str | None = None) -> int:
    """The student's seed, in [0, 2**31): the first 4 bytes of the SHA-256 of the name (default ``student_name()``)."""
    name = student_name() if name is None else str(name)
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big") >> 1


@dataclass(frozen=True)
class Exercise:
    """One checkable exercise: ``make(seed) -> dict`` draws the data, ``judge(answer, data) -> str | None`` checks."""

    key: str
    title: str
    make: Callable[[int], dict]
    judge: Callable[[Any, dict], str | None]


REGISTRY: dict[str, Exercise] = {}


def _register(key: str, title: str, make: Callable[[int], dict], judge: Callable[[Any, dict], str | None]) -> None:
    REGISTRY[key] = Exercise(key, title, make, judge)


def _exercise(key: str) -> Exercise:
    if key not in REGISTRY:
        raise KeyError(f"no checkable exercise {key!r}; expected one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[key]


def _rng(key: str, seed: int) -> random.Random:
    """One stream per (exercise, student), so the exercises of a student are independent of each other."""
    return random.Random(f"{key}:{int(seed)}")


def data(key: str, seed: int | None = None) -> dict:
    """The data of exercise ``key`` for the student of ``seed`` (default ``student_seed()``)."""
    return _exercise(key).make(student_seed() if seed is None else int(seed))


def check(key: str, answer: Any, seed: int | None = None) -> bool:
    """Check ``answer`` to exercise ``key`` for the student of ``seed``: print a pass or a hint, return True on a pass.

    ``answer`` None (or ``...``) means not answered yet: a reminder is printed, nothing is raised.
    """
    exercise = _exercise(key)
    if answer is None or answer is Ellipsis:
        print(f"[{key}] not answered yet: set `answer` and run the cell again.")
        return False
    who = f"student {student_name()!r}" if seed is None else f"seed {int(seed)}"
    try:
        hint = exercise.judge(answer, exercise.make(student_seed() if seed is None else int(seed)))
    except (TypeError, ValueError, IndexError, KeyError) as error:
        hint = f"the answer has the wrong form ({type(error).__name__}: {error})"
    if hint is None:
        print(f"[{key}] pass: {exercise.title} ({who}).")
        return True
    print(f"[{key}] not yet: {hint}.")
    return False


def _close(value: Any, expected: float, tolerance: float, what: str) -> str | None:
    """None when ``value`` is within ``tolerance`` of ``expected``; else a hint that says too high or too low."""
    value = float(value)
    if not math.isfinite(value):
        return f"{what} is not a finite number"
    if abs(value - expected) <= tolerance:
        return None
    return f"{what} is too {'high' if value > expected else 'low'} (off by more than {tolerance:g})"


def _band(value: Any, expected: str, what: str) -> str | None:
    """None when ``value`` names the band ``expected`` (e.g. "B8A"); else a hint naming the wrong band."""
    if str(value).upper() == expected.upper():
        return None
    return f"{what} is not {value!r}"


def _scene_shape() -> tuple[int, int]:
    """(rows, columns) of the embedded scene."""
    from s2lab.data.embedded import open_embedded_scene

    scene = open_embedded_scene()
    return scene.sizes["y"], scene.sizes["x"]


# 00 Meet the data --------------------------------------------------------------------------------------------------

def _make_00_2(seed: int) -> dict:
    """A 512 x 512 crop of the 13-band embedded scene: its top-left corner (y0, x0)."""
    rng = _rng("00.2", seed)
    return {"y0": 32 * rng.randrange(0, 45), "x0": 32 * rng.randrange(0, 45), "size": 512}


def _judge_00_2(answer: Any, d: dict) -> str | None:
    from s2lab.data.embedded import open_embedded_scene
    from s2lab.sensors import S2_13BANDS

    largest, smallest = answer
    crop = open_embedded_scene(bands=S2_13BANDS).isel(y=slice(d["y0"], d["y0"] + d["size"]),
                                                       x=slice(d["x0"], d["x0"] + d["size"]))
    spread = crop.std(dim=("y", "x")).to_series()  # (13,) by band name
    return (_band(largest, str(spread.idxmax()), "the band of largest spread in your crop")
            or _band(smallest, str(spread.idxmin()), "the band of smallest spread in your crop"))


_register("00.2", "the bands of largest and smallest spread in your crop", _make_00_2, _judge_00_2)


# 01 Spectral signatures --------------------------------------------------------------------------------------------

def _make_01_1(seed: int) -> dict:
    """One spectrum of the USGS library, by its name."""
    from s2lab import spectra

    names = sorted(set(str(n) for n in spectra.library("usgs")["name"].values))
    return {"library": "usgs", "name": _rng("01.1", seed).choice(names)}


def _judge_01_1(answer: Any, d: dict) -> str | None:
    from s2lab import spectra
    from s2lab.sensors import S2_13BANDS

    band, difference = answer
    library = spectra.library(d["library"])
    spectrum = library.isel(spectrum=int(np.flatnonzero(library["name"].values == d["name"])[0]))
    gap = (spectra.resample(spectrum, bands=S2_13BANDS, platform="S2B")
           - spectra.resample(spectrum, bands=S2_13BANDS, platform="S2A")).to_series().abs()  # (13,)
    return (_band(band, str(gap.idxmax()), "the band where S2A and S2B differ most")
            or _close(abs(float(difference)), float(gap.max()), 0.02 * float(gap.max()) + 1e-9,
                      "the size of the largest difference (reflectance)"))


_register("01.1", "Sentinel-2A against 2B on your spectrum", _make_01_1, _judge_01_1)


def _make_01_2(seed: int) -> dict:
    """A NIR band, an LAI step and a relative change (%) below which the band counts as saturated."""
    rng = _rng("01.2", seed)
    return {"band": rng.choice(("B07", "B08", "B8A")), "step": rng.choice((0.25, 0.5)),
            "percent": rng.choice((0.5, 1.0, 2.0)), "max_lai": 10.0}


def _judge_01_2(answer: Any, d: dict) -> str | None:
    from s2lab import spectra

    previous, saturated = None, None
    for lai in np.arange(d["step"], d["max_lai"] + 1e-9, d["step"]):  # LAI = step, 2 step, ... max_lai
        value = float(spectra.resample(spectra.prosail_canopy(lai=float(lai)), bands=[d["band"]]).sel(band=d["band"]))
        if previous is not None and abs(value - previous) / previous < d["percent"] / 100:
            saturated = float(lai - d["step"])  # from this LAI on, one more step changes the band by less
            break
        previous = value
    if saturated is None:
        return f"the band does not saturate below LAI {d['max_lai']} at this threshold"
    return _close(answer, saturated, d["step"] / 2, "the LAI where the band saturates")


_register("01.2", "where the NIR saturates with leaf area", _make_01_2, _judge_01_2)


# 02 Tokenization ---------------------------------------------------------------------------------------------------

PATCH_SIZES_02 = (4, 8, 10, 12, 20)


def _make_02_1(seed: int) -> dict:
    """A tile (C bands, H x H pixels) and a token budget [low, high]."""
    rng = _rng("02.1", seed)
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


_register("02.1", "the (p, s) pairs within your token budget", _make_02_1, _judge_02_1)


def _make_02_3(seed: int) -> dict:
    """The width of a ``SpatialSpectralEmbedding(kind="wavelength", dim=..., grid=(1, 1), groups=1)``."""
    return {"dim": _rng("02.3", seed).choice((32, 48, 64, 96, 128)), "kind": "wavelength"}


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


_register("02.3", "the most similar band by wavelength code", _make_02_3, _judge_02_3)


# 03 Masking --------------------------------------------------------------------------------------------------------

def _make_03_1(seed: int) -> dict:
    """A random-masking grid (G groups, N positions) and mask ratio."""
    rng = _rng("03.1", seed)
    return {"G": rng.choice((3, 4, 5)), "N": 256, "ratio": rng.choice((0.6, 0.7, 0.75, 0.8, 0.85))}


def _judge_03_1(answer: Any, d: dict) -> str | None:
    from s2lab import masking

    G, N = d["G"], d["N"]
    L = G * N
    removed = L - masking.num_kept(L, d["ratio"])
    exact = math.comb(L - G, removed - G) / math.comb(L, removed)  # all G tokens of one position among the removed
    return _close(answer, exact, 0.015, "the share of positions removed in all groups (random masking)")


_register("03.1", "positions removed in every group", _make_03_1, _judge_03_1)


def _make_03_3(seed: int) -> dict:
    """A width D, a mask ratio, the token size p and group count G."""
    rng = _rng("03.3", seed)
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


_register("03.3", "where attention costs as much as the per-token layers", _make_03_3, _judge_03_3)


# 04 Live reconstruction -------------------------------------------------------------------------------------------

def _make_04_1(seed: int) -> dict:
    """A 128 x 128 crop of the 10-band scene's held-out half (its top-left corner), a mask ratio and a mask seed."""
    from s2lab.data.embedded import split_rows

    rng = _rng("04.1", seed)
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
    return _close(answer, lead, 0.05, "S2MAE's PSNR lead over the best naive fill (dB)")


_register("04.1", "S2MAE's lead over the naive fills on your crop", _make_04_1, _judge_04_1)


# 05 Pretraining ----------------------------------------------------------------------------------------------------

def _make_05_2(seed: int) -> dict:
    """64 held-out 32 px tiles (the seed of their draw), a mask ratio and a mask seed."""
    rng = _rng("05.2", seed)
    return {"tiles": 64, "img_size": 32, "tile_seed": rng.randrange(1000), "ratio": rng.choice((0.25, 0.5, 0.75, 0.9)),
            "mask_seed": rng.randrange(1000)}


def _judge_05_2(answer: Any, d: dict) -> str | None:
    import torch

    from s2lab.baselines import FILL_NAMES
    from s2lab.data.pretraining import pretraining_images
    from s2lab.models import load_model
    from s2lab.reconstruct import reconstruct_tiles
    from s2lab.tasks import pretrain_task

    best_fill, model_mse = answer
    shipped = load_model("s2mae-s2-small")[0]
    draw, _ = pretrain_task(shipped, pretraining_images(["embedded:eval"]), batch_size=d["tiles"],
                            img_size=d["img_size"])
    tiles = draw(0, torch.Generator().manual_seed(d["tile_seed"]))  # (64, C, 32, 32)
    scores = reconstruct_tiles(shipped, tiles, mask_ratio=d["ratio"], seed=d["mask_seed"])["scores"]
    if best_fill not in FILL_NAMES or scores[best_fill]["mse"] > min(scores[n]["mse"] for n in FILL_NAMES):
        return f"{best_fill!r} is not the naive fill of lowest masked MSE (one of {', '.join(FILL_NAMES)})"
    expected = 1e4 * scores["model"]["mse"]
    return _close(model_mse, expected, 0.01 * expected, "the shipped model's masked MSE x 1e4")


_register("05.2", "the best naive fill and the shipped model on your tiles and mask", _make_05_2, _judge_05_2)


# 07 Multi-label ----------------------------------------------------------------------------------------------------

def _make_07_1(seed: int) -> dict:
    """(B, 4) scores and 0/1 labels of 4 classes of different frequency; the classes in ``perfect`` ranked perfectly."""
    rng = np.random.default_rng(_rng("07.1", seed).randrange(2**31))
    B = 100
    shares = (0.5, 0.2, 0.05, 0.01)
    truth = np.stack([np.arange(B) < round(f * B) for f in shares], axis=1).astype(np.float64)  # (B, 4)
    rng.shuffle(truth)
    perfect = [0] if rng.random() < 0.5 else [1, 2, 3]
    scores = rng.random((B, 4))
    for k in perfect:
        scores[:, k] = truth[:, k] + 0.1 * rng.random(B)  # every positive above every negative
    return {"scores": scores, "truth": truth, "shares": shares, "perfect": perfect}


def _judge_07_1(answer: Any, d: dict) -> str | None:
    import torch

    from s2lab.classification_metrics import mean_average_precision

    macro, micro = answer
    scores, truth = torch.as_tensor(d["scores"]), torch.as_tensor(d["truth"])
    return (_close(macro, mean_average_precision(scores, truth, "macro"), 1e-6, "macro mAP")
            or _close(micro, mean_average_precision(scores, truth, "micro"), 1e-6, "micro mAP"))


_register("07.1", "macro and micro mAP of your scores", _make_07_1, _judge_07_1)


# 08 Change detection -----------------------------------------------------------------------------------------------

def _make_08_1(seed: int) -> dict:
    """A 256 x 256 crop of the held-out half of the embedded scene (row, col within that half) and a planting seed."""
    from s2lab.data.embedded import split_rows

    from s2lab.data.embedded import open_embedded_scene

    rng = _rng("08.1", seed)
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
    return (_close(standardised, f1[True], 0.01, "the F1 of CVA + Otsu with standardised bands")
            or _close(raw, f1[False], 0.01, "the F1 of CVA + Otsu without standardising"))


_register("08.1", "CVA with and without standardising on your planted pair", _make_08_1, _judge_08_1)
