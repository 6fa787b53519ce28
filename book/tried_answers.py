"""Plausible wrong answers to the checked exercises, tried against ``s2lab.exercises.check``: what each one gets.

For every exercise checked in a notebook, ``TRIALS`` holds the answers tried: first the reference solution's own
answer (it must pass), then slips and misreadings a student could plausibly make, each computed from the student's
data as that student would compute it. Each is tried for the default student (``S2LAB_STUDENT`` unset, named
"student") and, where a particular draw shows something the default one does not, for one more seed (the reason is
given beside it).

``python book/tried_answers.py`` tries them all (1.2 and 2.5 minutes in two runs on 2 shared CPU cores; it loads the
shipped models) and writes ``tried_answers.json`` beside this file: per exercise and student, the data drawn, each
answer's description, whether it passed and the line the check printed; and per exercise how many different data the
seeds 0-199 draw. The instructors' page (``instructors.md``) shows that file; ``tests/test_book.py`` tries the quick
exercises' answers again and fails where a verdict has changed.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

OUT = Path(__file__).resolve().with_name("tried_answers.json")


@dataclass(frozen=True)
class Trial:
    """The answers tried for one exercise: ``answers(data) -> {description: answer}``, the first one the reference
    solution's; the extra seeds tried beside the default student, each with the reason; why each answer other than
    the solution's that passed for some student passes, by its description; quick when trying them takes a few
    seconds at most (no model is run)."""

    answers: Callable[[dict], dict[str, Any]]
    extra_seeds: tuple[tuple[int, str], ...] = ()
    passes_because: dict[str, str] = field(default_factory=dict)
    quick: bool = True


def _00_2(d: dict) -> dict[str, Any]:
    from s2lab.data.embedded import open_embedded_scene
    from s2lab.sensors import S2_10BANDS, S2_13BANDS

    scene = open_embedded_scene(bands=S2_13BANDS)
    window = {"y": slice(d["y0"], d["y0"] + d["size"]), "x": slice(d["x0"], d["x0"] + d["size"])}
    spread = scene.isel(**window).std(dim=("y", "x")).to_series()  # (13,) by band
    whole = scene.std(dim=("y", "x")).to_series()
    ten = scene.sel(band=list(S2_10BANDS)).isel(**window).std(dim=("y", "x")).to_series()
    return {
        "the solution's: standard deviation per band over your crop of the 13 bands":
            (spread.idxmax(), spread.idxmin()),
        "the same two bands in the other order (smallest, largest)": (spread.idxmin(), spread.idxmax()),
        "the whole scene's spread instead of your crop's": (whole.idxmax(), whole.idxmin()),
        "your crop of the 10-band scene (no B01, B09, B10)": (ten.idxmax(), ten.idxmin()),
    }


def _01_1(d: dict) -> dict[str, Any]:
    from s2lab import spectra
    from s2lab.sensors import S2_13BANDS

    usgs = spectra.library("usgs")

    def gap(name: str):
        spectrum = usgs.isel(spectrum=int(np.flatnonzero(usgs["name"].values == name)[0]))
        a, b = (spectra.resample(spectrum, bands=S2_13BANDS, platform=p).to_series() for p in ("S2A", "S2B"))
        return b - a, a  # (13,) each

    signed, a = gap(d["name"])
    largest = signed.abs().idxmax()
    relative = signed.abs() / a.abs()
    sea, _ = gap("Seawater_Coast_Chl_SW1_BECKa_AREF")
    return {
        "the solution's: |S2B - S2A| through both response functions, its largest band and size":
            (largest, float(signed.abs().max())),
        "the signed difference S2B - S2A (negative here or not)": (largest, float(signed[largest])),
        "the relative difference |S2B - S2A| / S2A instead of the difference":
            (relative.idxmax(), float(relative.max())),
        "the notebook's sea-water spectrum instead of yours": (sea.abs().idxmax(), float(sea.abs().max())),
    }


def _01_2(d: dict) -> dict[str, Any]:
    from s2lab import spectra

    def saturation(band: str, step: float, percent: float) -> float:
        previous = None
        for lai in np.arange(step, d["max_lai"] + 1e-9, step):
            value = float(spectra.resample(spectra.prosail_canopy(lai=float(lai)), bands=[band]).sel(band=band))
            if previous is not None and abs(value - previous) / previous < percent / 100:
                return float(lai - step)
            previous = value
        return math.nan

    own = saturation(d["band"], d["step"], d["percent"])
    return {
        "the solution's: the LAI from which one more step changes the band by less than the threshold": own,
        "the LAI at the end of that first small step (one step too far)": own + d["step"],
        "the notebook's question (B08, 1 %, steps of 0.5) instead of your band, threshold and step":
            saturation("B08", 0.5, 1.0),
    }


def _02_1(d: dict) -> dict[str, Any]:
    C, H, low, high = d["C"], d["H"], d["low"], d["high"]

    def pairs(groups: Callable[[int, int], int], c: int = C, h: int = H, lo: int = low, hi: int = high) -> list:
        return [(p, s) for p in d["patch_sizes"] if h % p == 0 for s in range(1, c + 1)
                if lo <= groups(c, s) * (h // p) ** 2 <= hi]

    right = pairs(lambda c, s: -(-c // s))
    return {
        "the solution's: L = ceil(C / s) (H / p)^2 for every p dividing H and s in 1..C": right,
        "G = C // s (the last, shorter group dropped)": pairs(lambda c, s: c // s),
        "the notebook's tile (10 bands, 120 px, 200-800 tokens) instead of yours":
            pairs(lambda c, s: -(-c // s), 10, 120, 200, 800),
        "the right list less its last pair": right[:-1],
    }


def _02_3(d: dict) -> dict[str, Any]:
    import torch

    from s2lab import pos_embed
    from s2lab.sensors import S2_13BANDS, wavelengths

    def nearest(dim: int, own_band: bool = False) -> dict[str, str]:
        table = pos_embed.SpatialSpectralEmbedding(kind="wavelength", dim=dim, grid=(1, 1), groups=1)
        codes = table.spectral_table(torch.tensor(wavelengths(S2_13BANDS)))  # (13, D_spec)
        similarity = torch.nn.functional.cosine_similarity(codes[:, None], codes[None], dim=-1)  # (13, 13)
        if not own_band:
            similarity.fill_diagonal_(-2.0)
        return {name: S2_13BANDS[int(similarity[i].argmax())] for i, name in enumerate(S2_13BANDS)}

    nm = np.asarray(wavelengths(S2_13BANDS))
    by_wavelength = {name: S2_13BANDS[int(np.argsort(np.abs(nm - nm[i]))[1])] for i, name in enumerate(S2_13BANDS)}
    return {
        "the solution's: cosine similarity of the codes at your width, a band not its own neighbour": nearest(d["dim"]),
        "the diagonal kept (each band's code is most similar to itself)": nearest(d["dim"], own_band=True),
        "the nearest band in wavelength (assumes the codes are monotone in distance)": by_wavelength,
        "the solution script's width 64 instead of yours": nearest(64),
    }


def _03_1(d: dict) -> dict[str, Any]:
    from s2lab import masking

    G, L = d["G"], d["G"] * d["N"]
    removed = L - masking.num_kept(L, d["ratio"])
    return {
        "the solution's: the exact hypergeometric share (a 200-draw estimate lands within 0.01 of it)":
            math.comb(L - G, removed - G) / math.comb(L, removed),
        "ratio ** G (each token removed independently)": d["ratio"] ** G,
        "the tube-masking share (the ratio itself)": d["ratio"],
        "the notebook's numbers, 0.75 ** 5, instead of yours": 0.75**5,
    }


def _03_3(d: dict) -> dict[str, Any]:
    from s2lab import masking

    K, p, G, r = 6 * d["D"], d["p"], d["G"], d["ratio"]

    def smallest(kept: Callable[[int], int]) -> int:
        side = p
        while kept(G * (side // p) ** 2) < K:
            side += p
        return side

    def num_kept(L: int) -> int:
        try:
            return masking.num_kept(L, r)
        except ValueError:  # too few tokens to keep one
            return 0

    side = smallest(num_kept)
    exact = p * math.sqrt(K / (1 - r) / G)  # the side in floating point, before rounding up to a multiple of p
    return {
        "the solution's: K = 6 D; the smallest multiple of p whose round(L (1 - r)) reaches K": (K, side),
        "K = 3 D (the factor 2 of the attention count dropped)": (3 * d["D"], side),
        "kept tokens counted as int(L (1 - r)), as MAE's code does": (K, smallest(lambda L: int(L * (1 - r)))),
        "the side p * ceil(sqrt(K / ((1 - r) G)) / p), in floating point": (K, p * math.ceil(exact / p)),
        "the side rounded to the nearest pixel, not up to a multiple of p": (K, round(exact)),
    }


def _reconstruction_scores(model_name: str, x, ratio: float, seed: int, strategy: str = "random") -> dict:
    from s2lab.models import load_model
    from s2lab.reconstruct import reconstruct_tiles

    return reconstruct_tiles(load_model(model_name)[0], x, mask_ratio=ratio, strategy=strategy, seed=seed)["scores"]


def _04_1(d: dict) -> dict[str, Any]:
    from s2lab.baselines import FILL_NAMES
    from s2lab.data.embedded import open_embedded_scene
    from s2lab.data.tiles import to_tensor
    from s2lab.sensors import S2_10BANDS

    crop = to_tensor(open_embedded_scene(bands=S2_10BANDS).isel(y=slice(d["y0"], d["y0"] + d["size"]),
                                                                x=slice(d["x0"], d["x0"] + d["size"])))[None]
    own = _reconstruction_scores("s2mae-s2-small", crop, d["ratio"], d["seed"])
    seed_0 = _reconstruction_scores("s2mae-s2-small", crop, d["ratio"], 0)

    def lead(scores: dict) -> float:
        return scores["model"]["psnr"] - max(scores[name]["psnr"] for name in FILL_NAMES)

    return {
        "the solution's: model PSNR minus the best fill's, your crop, ratio and mask seed": lead(own),
        "the sign reversed (best fill minus model)": -lead(own),
        "the lead over the band mean only": own["model"]["psnr"] - own["band_mean"]["psnr"],
        "mask seed 0 (reconstruct_tiles' default) instead of yours": lead(seed_0),
    }


def _05_2(d: dict) -> dict[str, Any]:
    from s2lab.baselines import FILL_NAMES
    from s2lab.exercises.reconstruction import held_out_tiles
    from s2lab.models import load_model

    shipped = load_model("s2mae-s2-small")[0]
    tiles = held_out_tiles(shipped, d["tiles"], d["img_size"], d["tile_seed"])  # (64, C, 32, 32)
    own = _reconstruction_scores("s2mae-s2-small", tiles, d["ratio"], d["mask_seed"])
    theirs = _reconstruction_scores("s2mae-s2-small", held_out_tiles(shipped, 64, 32, 1), d["ratio"], d["mask_seed"])

    def answer(scores: dict, pick: Callable = min, scale: float = 1e4) -> tuple[str, float]:
        return pick(FILL_NAMES, key=lambda name: scores[name]["mse"]), scale * scores["model"]["mse"]

    return {
        "the solution's: the fill of lowest masked MSE, and the model's masked MSE x 1e4": answer(own),
        "the model's MSE not multiplied by 1e4": answer(own, scale=1.0),
        "the fill of highest MSE": answer(own, pick=max),
        "the solution script's tiles (64, drawn with seed 1) instead of yours": answer(theirs),
    }


def _06_4(d: dict) -> dict[str, Any]:
    names, truth = d["classes"], d["truth"]
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)  # rows truth, columns prediction
    np.add.at(matrix, (truth, d["logits"].argmax(axis=1)), 1)
    off_diagonal = matrix - np.diag(np.diag(matrix))
    a, b = np.unravel_index(off_diagonal.argmax(), matrix.shape)
    precision = np.diag(matrix) / matrix.sum(axis=0)  # (K,) a column each
    recall = np.diag(matrix) / matrix.sum(axis=1)  # (K,) a row each
    accuracy = float(np.trace(matrix) / matrix.sum())
    pair = (names[a], names[b])
    least = names[int(precision.argmin())]
    return {
        "the solution's: accuracy, the largest off-diagonal cell (truth, prediction), the lowest precision":
            (accuracy, pair, least),
        "the accuracy in percent": (100 * accuracy, pair, least),
        "the confusion read as (prediction, truth)": (accuracy, pair[::-1], least),
        "the class of lowest recall instead of precision": (accuracy, pair, names[int(recall.argmin())]),
        "the class that takes the most frequent confusion, as the least precise": (accuracy, pair, names[b]),
    }


def _07_1(d: dict) -> dict[str, Any]:
    scores, truth = d["scores"], d["truth"]

    def ap(s: np.ndarray, t: np.ndarray) -> float:  # mean precision at the rank of each positive
        hits = t[np.argsort(-s, kind="stable")]
        return float((np.cumsum(hits) / np.arange(1, len(hits) + 1) * hits).sum() / hits.sum())

    def trapezoid(s: np.ndarray, t: np.ndarray) -> float:  # area under the precision-recall curve, trapezoids
        hits = t[np.argsort(-s, kind="stable")]
        found = np.cumsum(hits)
        precision = np.concatenate([[1.0], found / np.arange(1, len(hits) + 1)])
        recall = np.concatenate([[0.0], found / hits.sum()])
        return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2))

    per_class = [ap(scores[:, k], truth[:, k]) for k in range(truth.shape[1])]
    macro, micro = float(np.mean(per_class)), ap(scores.ravel(), truth.ravel())
    weights = truth.sum(axis=0) / truth.sum()
    return {
        "the solution's: AP by hand per class (macro) and over all pooled decisions (micro)": (macro, micro),
        "macro and micro swapped": (micro, macro),
        "micro as the mean of the per-class AP weighted by positives": (macro, float(weights @ per_class)),
        "AP as the trapezoidal area under the precision-recall curve":
            (float(np.mean([trapezoid(scores[:, k], truth[:, k]) for k in range(truth.shape[1])])),
             trapezoid(scores.ravel(), truth.ravel())),
        "both rounded to 3 decimals, as printed": (round(macro, 3), round(micro, 3)),
    }


def _08_1(d: dict) -> dict[str, Any]:
    import torch

    from s2lab.cva import change_vector_analysis, otsu_threshold
    from s2lab.data.embedded import open_embedded_scene, split_rows
    from s2lab.data.synthetic import plant_changes, scene_radiometry
    from s2lab.evaluate import score_change

    scene = open_embedded_scene()
    held_out = scene.isel(y=split_rows(scene.sizes["y"], "eval"))

    def f1(image, rescale: bool = True, threshold: float | None = None) -> tuple[float, float]:
        crop = image.isel(y=slice(d["row"], d["row"] + d["size"]), x=slice(d["col"], d["col"] + d["size"]))
        pair = plant_changes(crop, n=d["n"], rng=np.random.default_rng(d["plant_seed"]),
                             reference=scene_radiometry(scene))
        out = []
        for normalize in (True, False):
            magnitude = change_vector_analysis(torch.as_tensor(pair.before.values), torch.as_tensor(pair.after.values),
                                               normalize=normalize)  # (H, W)
            if rescale:
                magnitude = (magnitude - magnitude.min()) / (magnitude.max() - magnitude.min())
            cut = otsu_threshold(magnitude) if threshold is None else threshold
            out.append(float(score_change(magnitude, pair.label, cut)["f1"]))
        return out[0], out[1]

    right = f1(held_out)
    return {
        "the solution's: F1 of CVA + Otsu on your planted pair, standardised then raw": right,
        "the two F1 swapped": right[::-1],
        "a fixed threshold of 0.5 on the [0, 1]-scaled magnitude instead of Otsu's": f1(held_out, threshold=0.5),
        "the magnitude not rescaled to [0, 1] before Otsu": f1(held_out, rescale=False),
        "your row and column read in the whole scene, not its held-out half": f1(scene),
    }


def _09_4(d: dict) -> dict[str, Any]:
    from s2lab.exercises.change_and_fusion import held_out_fusion_windows
    from s2lab.models.fusmae import radar_use

    use = radar_use(*held_out_fusion_windows(d["model"]), mask_ratio=d["ratio"], seeds=d["seeds"])
    own = 1e4 * use["mean"]["own"]
    difference = 1e4 * use["minus_own"]["another patch's"]["mean"]
    rule = all(case["mean"] > case["sd"] for case in use["minus_own"].values())
    constant = use["minus_own"]["constant"]
    return {
        "the solution's: section 8's radar test at your ratio and seeds, and its rule": (own, difference, rule),
        "the verdict from the constant radar alone (it raises the error, so 'used')":
            (own, difference, bool(constant["mean"] > constant["sd"])),
        "the difference with its sign reversed (own - another patch's)": (own, -difference, rule),
        "the MSE not multiplied by 1e4": (own / 1e4, difference, rule),
    }


def _10_3(d: dict) -> dict[str, Any]:
    import torch

    from s2lab.exercises.hyperspectral_and_ablations import WAVELENGTH_CODE_WIDTH, sensor_wavelengths
    from s2lab.pos_embed import SpatialSpectralEmbedding

    nm, s = sensor_wavelengths(d), d["s"]
    low, high = d["removed_nm"]
    G, N = math.ceil(len(nm) / s), (d["tile"] // d["p"]) ** 2
    table = SpatialSpectralEmbedding(kind="wavelength", dim=4 * WAVELENGTH_CODE_WIDTH, grid=(1, 1), groups=1)

    def similarity(centres: list[float], a: int, b: int) -> float:
        codes = table.spectral_table(torch.tensor(centres, dtype=torch.float64))
        return float(torch.nn.functional.cosine_similarity(codes[a], codes[b], dim=0))

    groups = [nm[g * s:(g + 1) * s] for g in range(G)]
    means = [float(group.mean()) for group in groups]
    below = max(g for g in range(G) if groups[g].max() < low)  # the last group wholly below the window
    above = min(g for g in range(G) if groups[g].min() > high)  # the first group wholly above it
    band = int(np.flatnonzero(nm < low)[-1])  # the last kept band below the window
    full = math.ceil(d["channels"] / s)
    right = similarity(means, below, above)
    return {
        "the solution's: G = ceil(C / s) of the kept bands, L = G N, the codes of the last group wholly below the "
        "window and the first wholly above it": (G, G * N, right),
        "G = C // s (the last, shorter group dropped)": (len(nm) // s, len(nm) // s * N, right),
        "the removed window not removed": (full, full * N, right),
        "L = G (tile / p) (N not squared)": (G, G * (d["tile"] // d["p"]), right),
        "the codes of the two bands themselves, not of their groups":
            (G, G * N, similarity([float(nm[band]), float(nm[band + 1])], 0, 1)),
        "the groups holding the last band below and the first above the window (1 if one group holds both)":
            (G, G * N, similarity(means, band // s, (band + 1) // s)),
    }


def _11_3(d: dict) -> dict[str, Any]:
    import scipy.optimize

    from s2lab.data.hyperspectral import open_hyperspectral

    hs = open_hyperspectral()
    names = [str(n) for n in hs.endmembers["endmember"].values]
    window = hs.cube.values[:, d["row"]:d["row"] + d["size"], d["col"]:d["col"] + d["size"]]  # (C, size, size)
    Y = window.reshape(window.shape[0], -1).astype(np.float64)  # (C, n)
    M = hs.endmembers.values.astype(np.float64)  # (K, C)

    def fcls(Y: np.ndarray, M: np.ndarray, weight: float | None = 100.0) -> np.ndarray:
        """Mean abundance per endmember by NNLS, with a weighted sum-to-one row unless ``weight`` is None."""
        A = M.T if weight is None else np.vstack([M.T, weight * np.ones((1, len(M)))])
        rows = [y if weight is None else np.append(y, weight) for y in Y.T]
        return np.stack([scipy.optimize.nnls(A, y)[0] for y in rows], axis=1).mean(axis=1)

    step = d["step"]
    least_squares = np.linalg.lstsq(M[:, ::step].T, Y[::step], rcond=None)[0].mean(axis=1)
    reference = hs.abundances.values[:, d["row"]:d["row"] + d["size"], d["col"]:d["col"] + d["size"]]
    reference = reference.reshape(len(names), -1).mean(axis=1)  # (K,)
    return {
        "the solution's: fully constrained least squares (non-negative, summing to 1) on every step-th band":
            dict(zip(names, fcls(Y[::step], M[:, ::step]))),
        "every band instead of every step-th": dict(zip(names, fcls(Y, M))),
        "unconstrained least squares": dict(zip(names, least_squares)),
        "non-negative, without the sum-to-one row": dict(zip(names, fcls(Y[::step], M[:, ::step], weight=None))),
        "the cube's reference abundances of the window": dict(zip(names, reference)),
    }


def _12_4(d: dict) -> dict[str, Any]:
    from s2lab.exercises.hyperspectral_and_ablations import ablation_scores

    scores = ablation_scores(d)
    reference = np.array(scores["reference"])  # (seeds,)
    effects = {k: float(np.mean(np.array(scores[k]) - reference)) for k in d["changes"]}  # paired by mask seed
    ratios = {k: float(np.mean(scores[k]) / reference.mean()) for k in d["changes"]}
    largest = max(effects, key=lambda k: abs(effects[k]))

    def beyond(floor: float) -> int:
        return sum(abs(v) > floor for v in effects.values())

    floor = 2 * float(reference.std(ddof=1))
    return {
        "the solution's: the change of largest mean paired difference, that difference, the count beyond 2 sd":
            (largest, effects[largest], beyond(floor)),
        "the effect with its sign reversed": (largest, -effects[largest], beyond(floor)),
        "the effect as a ratio of means (change / reference)": (largest, ratios[largest], beyond(floor)),
        "the noise floor as 2 sd with ddof=0": (largest, effects[largest], beyond(2 * float(reference.std(ddof=0)))),
    }


TRIALS: dict[str, Trial] = {
    "00.2": Trial(_00_2),
    "01.1": Trial(_01_1, passes_because={
        "the signed difference S2B - S2A (negative here or not)":
            "not wrong: the exercise asks by how much, and the check compares the size only"}),
    "01.2": Trial(_01_2),
    "02.1": Trial(_02_1),
    "02.3": Trial(_02_3, extra_seeds=((4, "width 128, where the nearest band in wavelength is also the answer"),),
                  passes_because={"the nearest band in wavelength (assumes the codes are monotone in distance)":
                                  "at width 128 the codes' neighbours are the wavelength neighbours, so the check "
                                  "cannot tell the belief from the computation"}),
    "03.1": Trial(_03_1, passes_because={
        "ratio ** G (each token removed independently)":
            "for every grid and ratio the exercise draws it is less than 0.002 from the exact share, inside the 0.015 "
            "the check allows"}),
    "03.3": Trial(_03_3, extra_seeds=((34, "D = 96 at ratio 0.8: there L (1 - r) equals K exactly, and floating "
                                           "point makes it 575.99..."),),
                  passes_because={
                      "kept tokens counted as int(L (1 - r)), as MAE's code does":
                          "int and round agree unless L (1 - r) falls just short of a whole number",
                      "the side p * ceil(sqrt(K / ((1 - r) G)) / p), in floating point":
                          "right unless the exact side is a multiple of p that floating point overshoots",
                      "the side rounded to the nearest pixel, not up to a multiple of p":
                          "the exact side is 192 px here, a multiple of p already"}),
    "04.1": Trial(_04_1, extra_seeds=((0, "a crop where the model loses to a fill"),), quick=False,
                  passes_because={
                      "the sign reversed (best fill minus model)":
                          "the lead is about 0 dB for this student, so its sign is inside the 0.05 dB tolerance",
                      "mask seed 0 (reconstruct_tiles' default) instead of yours":
                          "a coincidence: on this crop the lead under mask seed 0 is within 0.05 dB of the lead "
                          "under the student's seed"}),
    "05.2": Trial(_05_2, quick=False),
    "06.4": Trial(_06_4),
    "07.1": Trial(_07_1),
    "08.1": Trial(_08_1, quick=False, passes_because={
        "the magnitude not rescaled to [0, 1] before Otsu":
            "not wrong: scaling the magnitudes scales Otsu's threshold with them, so the same pixels are cut"}),
    "09.4": Trial(_09_4, quick=False),
    "10.3": Trial(_10_3, extra_seeds=((7, "no group straddles the window: the last band below it and the first "
                                          "above fall in two groups"),),
                  passes_because={
                      "the codes of the two bands themselves, not of their groups":
                          "where no group straddles the window and s = 2, a group's mean wavelength is half a band step "
                          "from its bands', so the codes nearly coincide",
                      "the groups holding the last band below and the first above the window (1 if one group holds "
                      "both)": "where no group straddles the window these are the check's groups"}),
    "11.3": Trial(_11_3),
    "12.4": Trial(_12_4, quick=False, passes_because={
        "the noise floor as 2 sd with ddof=0":
            "the exercise does not fix the convention, and here both floors leave the same changes beyond"}),
}


def verdict(key: str, answer: Any, seed: int) -> tuple[bool, str]:
    """Whether ``exercises.check`` passes ``answer`` for ``seed``, and the line it prints."""
    from s2lab import exercises

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        passed = exercises.check(key, answer, seed=seed)
    return passed, printed.getvalue().strip()


def _summary(data: dict) -> dict:
    """The data of an exercise as JSON: arrays given by their shape."""
    def plain(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return f"array {tuple(v.shape)}"
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v.item() if isinstance(v, np.generic) else v

    return plain(data)


def try_exercise(key: str) -> list[dict]:
    """Every answer of ``TRIALS[key]`` for the default student and the extra seeds: one record per student."""
    from s2lab import exercises

    trial = TRIALS[key]
    records = []
    for seed, why in ((exercises.student_seed(exercises.DEFAULT_STUDENT), ""), *trial.extra_seeds):
        data = exercises.data(key, seed=seed)
        answers = [{"answer": what, **dict(zip(("passed", "printed"), verdict(key, answer, seed)))}
                   for what, answer in trial.answers(data).items()]
        records.append({"student": repr(exercises.DEFAULT_STUDENT) if not why else f"seed {seed}", "seed": seed,
                        "why": why, "data": _summary(data), "answers": answers})
    return records


def distinct_draws(key: str, seeds: int) -> int:
    """How many different data exercise ``key`` draws for the seeds 0 .. seeds - 1."""
    from s2lab import exercises

    def frozen(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return v.tobytes()
        if isinstance(v, dict):
            return tuple(sorted((k, frozen(x)) for k, x in v.items()))
        return tuple(frozen(x) for x in v) if isinstance(v, (list, tuple)) else v

    return len({frozen(exercises.data(key, seed=seed)) for seed in range(seeds)})


DRAW_SEEDS = 200  # the seeds whose data are compared by distinct_draws


def main() -> None:
    import torch

    from s2lab.data.hyperspectral import open_hyperspectral

    results = {}
    for key in TRIALS:
        results[key] = try_exercise(key)
        print(key, " ".join("pass" if a["passed"] else "-" for r in results[key] for a in r["answers"]), flush=True)
    OUT.write_text(json.dumps({
        "how": "python book/tried_answers.py: each answer of book/tried_answers.py's TRIALS given to "
               "s2lab.exercises.check for the student's seed",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "python": platform.python_version(), "torch": torch.__version__,
        "hyperspectral": str(open_hyperspectral().cube.attrs["source"]),
        "exercises": results,
        "draws": {"seeds": DRAW_SEEDS, "distinct": {key: distinct_draws(key, DRAW_SEEDS) for key in TRIALS}},
    }, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", OUT)


if __name__ == "__main__":
    sys.exit(main())
