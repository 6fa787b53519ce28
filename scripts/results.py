"""Every results table of the lab, measured on data the shipped checkpoints never saw.

    python scripts/results.py [--sections [reconstruction change classification ablations]] [--quick]

Writes ``docs/results/<section>.json`` (every figure), rebuilds ``docs/results.md`` from all section files present,
and replaces the block between ``<!-- results:begin -->`` and ``<!-- results:end -->`` in README.md. Splits, windows
and seeds are fixed here, so a second run on the same torch build gives the same numbers.

- **reconstruction**: the shipped S2MAE and SatMAE on unseen real images (every whole window, of each model's
  training size, of ``embedded:eval``, the bottom half of the embedded scene; both dates of the held-out OSCD cities
  where OSCD is found), at mask ratios ``RATIOS``; batch k of windows draws its masks from
  ``torch.Generator().manual_seed(SEED + k)``. The lab's yardstick, in reflectance: masked MSE over the removed
  values, PSNR of the pooled MSE with peak 1.0, spectral angle between reflectance spectra; for the model, every
  naive fill of ``s2lab.baselines.fill_all`` (the same windows and masks), and ``flat_floor``: each removed token
  filled with its own true per-band mean (the best flat fill with oracle token means).
- **change**: OSCD, thresholds chosen on the training cities, pooled and per-city scores on ``EVAL_CITIES``
  (``s2lab.evaluate``); change vector analysis with Otsu and with a tuned threshold; the shipped model alone and
  blended with CVA (``s2lab.evaluate.evaluate_blend``, weight and threshold from the training cities), and which of
  the two its training cities chose as the default; and pretrained against from scratch: the shipped encoder and the
  same network with fresh weights, each fine-tuned ``CHANGE_STEPS`` steps with every seed of ``CHANGE_SEEDS``.
- **classification**: pretrained vs random encoders on the synthetic EuroSAT-like set (``s2lab.data.synthetic``;
  EuroSAT itself is not on this machine): a ridge probe on frozen mean-pooled encoder features, train split
  images from the scene's top half, eval split from its bottom half. And on real land cover (``land_cover``): the
  Jasper Ridge cube seen through Sentinel-2's bands, a ridge probe of each 8 px square's dominant class.
- **loss**: the first S2MAE stage continued with the loss in the scaled space or in reflectance (``LOSS_STEPS``).
- **fusion**: the shipped FUS-MAE's S2 reconstruction of held-out BigEarthNet patches with their own S1, another
  patch's and a constant (``s2lab.models.fusmae.radar_use``).
- **ablations**: short pretraining runs (``ABLATION_STEPS``) at fixed mask ratios and at two patch sizes, each
  scored by the same probe and by reconstruction on ``embedded:eval`` windows, beside the paper's numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from s2lab.baselines import cross_band_fill, fill_all, gaussian_fill
from s2lab.cli import main as s2lab
from s2lab.data.bigearthnet import load_bigearthnet_patch
from s2lab.data.hyperspectral import load_jasper_ridge
from s2lab.data.oscd import load_oscd_city, oscd_cities
from s2lab.data.synthetic import synthetic_scene_classification
from s2lab.data.tiles import tile, to_tensor
from s2lab.change import chosen_threshold, detect_change
from s2lab.evaluate import ceiling, evaluate_blend, evaluate_cva, scores_at
from s2lab.masking import mask_from_removed, num_kept, random_ranks
from s2lab.metrics import psnr, reconstruction_scores
from s2lab.models import build, load_model
from s2lab.models.fusmae import radar_use
from s2lab.reconstruct import reconstruct_tiles
from s2lab.sensors import S2_10BANDS
from s2lab.settings import data_dir
from s2lab.spectra import resample
from s2lab.data.pretraining import pretraining_images

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_checkpoints import EVAL_CITIES, TOKENS, WIDTH, pretraining_data, stage_state

RATIOS = (0.5, 0.75, 0.9, 0.95)  # the app slider's range, the ratios that matter
SEED = 0  # masks, weights of random encoders, fine-tuning runs, synthetic sets
WINDOW = 64  # window side in pixels, the models' training img_size
BATCH = 32  # windows per forward pass (fixes which windows share a mask seed)
CHANGE_STEPS = 200  # fine-tuning steps of each pretrained / from-scratch run (the shipped model has 600)
PROBE_PER_CLASS = (40, 20)  # synthetic images per class: train split, eval split
ABLATION_STEPS = 300  # pretraining steps of each ablation run
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
WEIGHTS = Path(__file__).resolve().parents[1] / "s2lab" / "weights"  # the shipped checkpoints
PAPER = {  # S2MAE (Li et al., CVPR 2024): the figures the paper reports
    "eurosat_accuracy": 99.16, "bigearthnet_map": 85.59, "oscd_f1": 53.28, "oscd_f1_two_datasets": 54.26,
    "mask_ratio_map": {"0.9": 85.59, "0.75": 84.94, "0.5": 84.32, "0.25": 82.81},
    "patch_size_map": {"8": 85.59, "16": 78.42},
}


# -- reconstruction ------------------------------------------------------------------------------------------------
def windows(image, size: int = WINDOW) -> torch.Tensor:
    """Every whole, non-overlapping ``size`` window of an image, row by row from the top-left corner.

    Args:
        image: (C, H, W) tensor or (band, y, x) DataArray, H and W at least ``size``.

    Returns:
        (B, C, size, size) with B = (H // size) * (W // size); pixels beyond the last whole window are left out.
    """
    x = to_tensor(image)
    H, W = x.shape[-2:]
    if H < size or W < size:
        raise ValueError(f"an image of {H} x {W} px holds no whole {size} x {size} window")
    return tile(x[:, : H // size * size, : W // size * size], size, stride=size, drop_nan=False)[0]


def flat_floor(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Each p x p cell of every band replaced by its own mean: (B, C, H, W) -> (B, C, H, W).

    Scored on the removed tokens, this is the best flat fill with oracle token means: one value per band and token,
    the true one, no texture. It is not a bound on a model, which can borrow texture across bands where another
    band group of the same pixel is visible.
    """
    cells = F.avg_pool2d(x, patch_size)  # (B, C, H / p, W / p)
    return F.interpolate(cells, scale_factor=patch_size, mode="nearest")


def pool(parts: Sequence[dict]) -> dict:
    """Scores of several batches or images as if computed at once.

    Args:
        parts: each ``{method: {"mse", "sam_deg", "values", "pixels"}}``: values removed and pixels touched.

    Returns:
        ``{method: {"mse", "psnr", "sam_deg", "values", "pixels"}}``: MSE weighted by values, angle by pixels; the
        PSNR is that of the pooled MSE (peak 1.0 reflectance).
    """
    pooled = {}
    for method in parts[0]:
        values = sum(p[method]["values"] for p in parts)
        pixels = sum(p[method]["pixels"] for p in parts)
        mse = sum(p[method]["mse"] * p[method]["values"] for p in parts) / max(values, 1)
        sam = sum(p[method]["sam_deg"] * p[method]["pixels"] for p in parts) / max(pixels, 1)
        pooled[method] = {"mse": mse, "psnr": psnr(mse), "sam_deg": sam, "values": values, "pixels": pixels}
    return pooled


def score_windows(model, x: torch.Tensor, *, ratio: float, strategy: str, seed: int = SEED,
                  batch_size: int = BATCH) -> dict:
    """Model, fills and the flat floor on windows x (B, C, S, S), batch k masked with seed + k; pooled, reflectance."""
    parts = []
    for k, start in enumerate(range(0, len(x), batch_size)):
        batch = x[start:start + batch_size]
        out = reconstruct_tiles(model, batch, mask_ratio=ratio, strategy=strategy, seed=seed + k)
        mask = out["mask"]  # (b, C, S, S), 1 = removed
        floor = reconstruction_scores(flat_floor(batch, model.config.patch_size), batch, mask)
        level = fill_all(batch, mask, model.tokenizer)["neighbourhood"]
        borrowed = cross_band_fill(batch, mask, level, model.config.patch_size)  # the review's fill across bands
        scores = {**out["scores"], "cross_band": reconstruction_scores(borrowed, batch, mask), "flat_floor": floor}
        counts = {"values": int(mask.sum()), "pixels": int(mask.bool().any(dim=1).sum())}
        parts.append({m: {**s, **counts} for m, s in scores.items()})
    return pool(parts)


def fill_names(scores: dict) -> list[str]:
    """The naive fills among a row's methods (everything but the model and the flat floor)."""
    return [m for m in scores if m not in ("model", "flat_floor")]


def summarise(scores: dict) -> dict:
    """The model's MSE against the best naive fill's, and the flat floor's against it."""
    best = min(fill_names(scores), key=lambda b: scores[b]["mse"])
    return {"best_baseline": best, "model_to_best": scores["model"]["mse"] / scores[best]["mse"],
            "floor_to_best": scores["flat_floor"]["mse"] / scores[best]["mse"]}


def coverage(model, x: torch.Tensor, *, ratio: float, strategy: str, seed: int = SEED,
             batch_size: int = BATCH) -> dict:
    """Where the error is: removed values split by whether another band group is visible at their pixel.

    A removed token whose place still shows another group (``covered``) can borrow that group's texture, as the
    spectral bands of one pixel are strongly correlated; an ``uncovered`` one must be guessed from its neighbours.
    Same windows and masks as ``score_windows``.

    Returns:
        ``{part: {"share", "model", "gaussian", "flat_floor"}}`` for part covered / uncovered: the share of the
        removed values, and each method's MSE over them in reflectance (``gaussian``: the fill at 4 px).
    """
    sums: dict[tuple[str, str], float] = {}
    counts = {"covered": 0, "uncovered": 0}
    for k, start in enumerate(range(0, len(x), batch_size)):
        batch = x[start:start + batch_size]
        out = reconstruct_tiles(model, batch, mask_ratio=ratio, strategy=strategy, seed=seed + k, baselines=False)
        removed = out["mask"].bool()  # (b, C, S, S)
        seen_here = (~removed).any(dim=1, keepdim=True)  # (b, 1, S, S): some band of the pixel is visible
        guesses = {"model": out["prediction"], "gaussian": gaussian_fill(batch, out["mask"], 4.0),
                   "flat_floor": flat_floor(batch, model.config.patch_size)}
        for part, where in (("covered", removed & seen_here), ("uncovered", removed & ~seen_here)):
            counts[part] += int(where.sum())
            for method, guess in guesses.items():
                sums[part, method] = sums.get((part, method), 0.0) + float(((guess - batch)[where] ** 2).sum())
    total = max(sum(counts.values()), 1)
    return {part: {"share": n / total, **{m: sums[part, m] / max(n, 1) for m in ("model", "gaussian", "flat_floor")}}
            for part, n in counts.items()}


def cross_band_test(model, x: torch.Tensor, *, ratio: float, seed: int = SEED, windows_max: int = 64) -> dict:
    """Does the model borrow from the other bands of the same pixel? The fidelity review's controlled test.

    For each window (at most ``windows_max``): draw a random mask and split the covered positions (a removed and a
    visible band group there) at random in two halves; the targets are the removed tokens of the first half. Score
    them three ways, in reflectance: as drawn; with the visible groups at their positions hidden too (``same
    pixel``); and with as many visible tokens hidden at the other half's positions instead (``elsewhere``, the
    control: as few visible tokens, but none taken from the targets' pixels).

    Returns:
        ``{"as drawn", "same pixel hidden", "elsewhere hidden"}`` MSE over the target values, and the windows and
        tokens hidden.
    """
    G, generator = model.tokenizer.G, torch.Generator().manual_seed(seed)
    sums, count, hidden, used = {"as drawn": 0.0, "same pixel hidden": 0.0, "elsewhere hidden": 0.0}, 0, 0, 0
    for b in range(min(len(x), windows_max)):
        window = x[b:b + 1]
        hw = model.check_input(window)
        removed = model.draw(1, hw, ratio, "random", generator, window.device).mask.bool().view(G, -1)  # (G, N)
        covered = removed.any(0) & (~removed).any(0)  # (N,) positions with a removed and a visible group
        half = torch.rand(covered.shape, generator=generator) < 0.5  # (N,) split the covered positions in two
        tested, other = covered & half, covered & ~half
        targets = removed & tested  # (G, N): scored
        at_pixel = ~removed & tested  # (G, N): the visible groups the test hides
        elsewhere = (~removed & other).flatten().nonzero().flatten()  # visible tokens at the other covered positions
        n = int(at_pixel.sum())
        if not targets.any() or n >= int((~removed).sum()) or len(elsewhere) < n:
            continue  # nothing to test, or hiding them would leave nothing visible or no fair control
        control = removed.flatten().clone()
        control[elsewhere[torch.randperm(len(elsewhere), generator=generator)[:n]]] = True
        where = model.mask_image(targets.flatten()[None].float(), *window.shape[-2:]).bool()  # (1, C, H, W)
        for name, gone in (("as drawn", removed.flatten()), ("same pixel hidden", (removed | at_pixel).flatten()),
                           ("elsewhere hidden", control)):
            rec = model.reconstruct(window, mask=mask_from_removed(gone[None]))
            sums[name] += float(((rec.prediction - window)[where] ** 2).sum())
        count, hidden, used = count + int(where.sum()), hidden + n, used + 1
    return {**{k: v / max(count, 1) for k, v in sums.items()}, "windows": used,
            "hidden_per_window": hidden / max(used, 1), "ratio": ratio}


@functools.lru_cache(maxsize=1)
def unseen_images() -> dict[str, tuple[torch.Tensor, ...]]:
    """The unseen images, read once: ``embedded:eval`` and, where OSCD is found, both dates of ``EVAL_CITIES``."""
    images = {"embedded:eval": tuple(pretraining_images(["embedded:eval"]))}
    if data_dir("oscd") is not None:
        pairs = [load_oscd_city(c, bands=S2_10BANDS) for c in EVAL_CITIES]
        images["oscd:" + "+".join(EVAL_CITIES)] = tuple(to_tensor(d) for p in pairs for d in (p.before, p.after))
    return images


def image_sets(quick: bool, size: int = WINDOW) -> dict[str, torch.Tensor]:
    """Windows of ``size`` px of the unseen images (``unseen_images``)."""
    sets = {name: torch.cat([windows(x, size) for x in images]) for name, images in unseen_images().items()}
    return {name: x[:BATCH] for name, x in sets.items()} if quick else sets


def trained_strategy(info: dict) -> str:
    """The masking a checkpoint was trained with, by today's names: checkpoints from before the ``loss`` field
    called the equal-share-per-group masking "independent", which is now ``balanced``."""
    strategy = (info.get("meta") or {}).get("strategy", "random")
    return "balanced" if strategy == "independent" and "loss" not in (info.get("config") or {}) else strategy


def reconstruction(quick: bool) -> dict:
    """Each shipped MAE on the unseen images cut into windows of its own training size, scored in reflectance."""
    rows, split, borrow = [], {}, {}
    for model_name in ("s2mae-s2-small", "satmae-s2-small"):
        model, info = load_model(model_name)
        model, strategy = model.eval(), trained_strategy(info)
        size = model.config.img_size
        for name, x in image_sets(quick, size).items():
            for ratio in RATIOS:
                scores = score_windows(model, x, ratio=ratio, strategy=strategy)
                rows.append({"images": name, "windows": len(x), "window": size, "model": model_name,
                             "strategy": strategy, "ratio": ratio, "scores": scores, **summarise(scores)})
            if model_name == "s2mae-s2-small" and name == "embedded:eval":  # where S2MAE's error is
                split = {str(r): coverage(model, x, ratio=r, strategy="random") for r in RATIOS}
                borrow = {str(r): cross_band_test(model, x, ratio=r, windows_max=8 if quick else 256)
                          for r in (0.75, 0.9)}
    return {"rows": rows, "seed": SEED, "batch": BATCH, "coverage": split, "cross_band": borrow,
            "paired": paired(quick),
            "space": "reflectance: MSE over the removed values, PSNR with peak 1.0, angle between reflectance spectra"}


PAIRED_RATIOS = (0.75, 0.9)


def paired(quick: bool, names: Sequence[str] = ("s2mae-s2-small", "satmae-s2-small")) -> dict:
    """S2MAE and SatMAE under one shared spatial mask: the same positions removed in every band (tube masking on the
    N positions both token grids share), so both models and the fills face exactly the same removed pixels."""
    models = {name: load_model(name)[0].eval() for name in names}
    grids = {(m.config.patch_size, m.config.img_size) for m in models.values()}
    if len(grids) > 1:
        return {"skipped": f"the models' token grids differ (patch size, window: {sorted(grids)})"}
    patch, size = grids.pop()
    out = {}
    for name, x in image_sets(quick, size).items():
        N = (size // patch) ** 2
        for ratio in PAIRED_RATIOS:
            sums: dict[str, float] = {}
            count = 0
            for k, start in enumerate(range(0, len(x), BATCH)):
                batch = x[start:start + BATCH]
                ranks = random_ranks((len(batch), N), torch.Generator().manual_seed(SEED + k))
                gone = ranks >= num_kept(N, ratio)  # (b, N) positions removed in every band
                for model_name, model in models.items():
                    mask = mask_from_removed(gone.repeat(1, model.tokenizer.G))  # (b, G * N), group-major
                    rec = model.reconstruct(batch, mask=mask)
                    removed = rec.mask.bool()
                    sums[model_name] = sums.get(model_name, 0.0) + float(((rec.prediction - batch)[removed] ** 2).sum())
                count += int(removed.sum())
                for fill, guess in fill_all(batch, rec.mask, model.tokenizer).items():  # the same pixels for both
                    sums[fill] = sums.get(fill, 0.0) + float(((guess - batch)[removed] ** 2).sum())
            mse = {m: v / max(count, 1) for m, v in sums.items()}
            best = min((m for m in mse if m not in models), key=mse.get)
            out.setdefault(name, []).append({"ratio": ratio, "mse": mse, "best_fill": best, "windows": len(x)})
    return {"models": list(names), "rows": out}


FILL_TITLES = {"band_mean": "band mean", "nearest": "nearest", "neighbourhood": "3 x 3 mean",
               "cross_band": "3 x 3 mean + texture across bands"}


def _fill_title(name: str) -> str:
    return FILL_TITLES.get(name, name.replace("gaussian_", "Gaussian ").replace("px", " px"))


def reconstruction_markdown(result: dict) -> str:
    lines = []
    for images in dict.fromkeys(r["images"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["images"] == images]
        fills = fill_names(rows[0]["scores"])
        sizes = " and ".join(f"{r['windows']} windows of {r['window']} px for {r['model']}"
                             for r in {r["model"]: r for r in rows}.values())
        lines += [(f"Unseen images: **{images}** ({sizes}, each model's training size). Masked "
                   "MSE over the removed values, in reflectance; PSNR (peak 1.0 reflectance) of the pooled MSE; "
                   "spectral angle between reflectance spectra, over the pixels that lost a band."), "",
                  ("| model | mask ratio | model MSE | " + " | ".join(_fill_title(f) for f in fills)
                   + " | model / best fill | flat floor / best | PSNR (dB) | spectral angle (deg) |"),
                  "| --- | --- | --- | " + " | ".join("---" for _ in fills) + " | --- | --- | --- | --- |"]
        for r in rows:
            s = r["scores"]
            lines.append(f"| {r['model']} | {r['ratio']:.2f} | {s['model']['mse'] * 1e4:.2f} | "
                         + " | ".join(f"{s[b]['mse'] * 1e4:.2f}" for b in fills)
                         + f" | **{r['model_to_best']:.2f}** | {r['floor_to_best']:.2f} | {s['model']['psnr']:.1f} | "
                         f"{s['model']['sam_deg']:.2f} |")
        lines += ["", "MSE in units of 1e-4 reflectance squared.", ""]
    split = result.get("coverage")
    if split:
        lines += [("Where the error is (S2MAE, embedded:eval): removed values whose pixel still shows another "
                   "band group (covered: their texture can be borrowed across bands) against those whose pixel lost "
                   "every group (uncovered: only neighbours to go on). MSE / Gaussian fill (4 px) on each part."), "",
                  ("| mask ratio | covered share | model / fill, covered | flat floor / fill, covered | "
                   "model / fill, uncovered | flat floor / fill, uncovered |"),
                  "| --- | --- | --- | --- | --- | --- |"]
        for ratio, parts in split.items():
            c, u = parts["covered"], parts["uncovered"]
            lines.append(f"| {float(ratio):.2f} | {c['share']:.2f} | {c['model'] / c['gaussian']:.2f} | "
                         f"{c['flat_floor'] / c['gaussian']:.2f} | {u['model'] / u['gaussian']:.2f} | "
                         f"{u['flat_floor'] / u['gaussian']:.2f} |")
        lines += ["", ("The flat floor is the best flat fill with oracle token means (each removed token's true "
                       "per-band mean, no texture). It is not a bound on a model: on covered values a model can "
                       "copy texture across the bands of one pixel and go below it."), ""]
    pair = result.get("paired")
    if pair and "skipped" not in pair:
        a, b = pair["models"]
        lines += [(f"Paired (fidelity E17): {a} and {b} under one shared spatial mask, the same positions removed in "
                   "every band (tube masking on the positions both token grids share), so both models and the fills "
                   "face exactly the same removed pixels. MSE in 1e-4 reflectance squared."), "",
                  f"| images | mask ratio | {a} | {b} | best fill | {a} / fill | {b} / fill |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for images, rows in pair["rows"].items():
            for r in rows:
                m, fill = r["mse"], r["mse"][r["best_fill"]]
                lines.append(f"| {images} | {r['ratio']:.2f} | {m[a] * 1e4:.2f} | {m[b] * 1e4:.2f} | "
                             f"{_fill_title(r['best_fill'])} {fill * 1e4:.2f} | **{m[a] / fill:.2f}** | "
                             f"**{m[b] / fill:.2f}** |")
        lines += ["", ("With whole positions removed, no band of a removed pixel is visible: neither model can borrow "
                       "across bands there, so this compares their spatial inference alone."), ""]
    elif pair:
        lines += [f"Paired comparison of the two models under one mask: skipped, {pair['skipped']}.", ""]
    borrow = result.get("cross_band")
    if borrow:
        lines += [("Does S2MAE borrow across the bands of one pixel? The fidelity review's controlled test (S2MAE, "
                   "embedded:eval): the removed tokens at covered positions, scored as drawn, with the visible groups "
                   "at those same positions hidden too, and, as a control, with as many visible tokens hidden at "
                   "other positions (`cross_band_test`). MSE in 1e-4 reflectance squared."), "",
                  "| mask ratio | windows | tokens hidden per window | as drawn | same pixel hidden | "
                  "elsewhere hidden (control) |", "| --- | --- | --- | --- | --- | --- |"]
        for ratio, r in borrow.items():
            lines.append(f"| {float(ratio):.2f} | {r['windows']} | {r['hidden_per_window']:.1f} | "
                         f"{r['as drawn'] * 1e4:.2f} | {r['same pixel hidden'] * 1e4:.2f} | "
                         f"{r['elsewhere hidden'] * 1e4:.2f} |")
        verdicts = []
        for ratio, r in borrow.items():
            same, control = r["same pixel hidden"] / r["as drawn"] - 1, r["elsewhere hidden"] / r["as drawn"] - 1
            verdicts.append(f"at {float(ratio):.2f}, {same:+.0%} against {control:+.0%} for the control: "
                            + ("the bands of the same pixel matter more than as many tokens elsewhere"
                               if same > control else "no more than hiding as many tokens elsewhere"))
        lines += ["", ("Hiding the other bands of the targets' own pixels changes their error " + "; ".join(verdicts)
                       + ". Only windows with enough visible tokens in both halves are tested (the windows column). "
                       "Under the per-window scaling, hiding tokens also narrows the visible range each band is "
                       "scaled by, which the control shares."), ""]
    return "\n".join(lines)


# -- change --------------------------------------------------------------------------------------------------------
CHANGE_ARMS = {"pretrained": False, "from scratch": True}  # arm -> --fresh-weights (the same network, new weights)
CHANGE_SEEDS = (0, 1, 2)  # fine-tuning seeds of each arm


def train_change(runs: Path, name: str, fresh: bool, seed: int, train: list[str], steps: int, img_size: int) -> Path:
    """Fine-tune one change arm from the shipped S2MAE with ``s2lab finetune`` at the shipped change model's
    settings (quantile matching, the encoder's window size ``img_size``), resumed or reused when already run; its
    folder."""
    out = runs / f"{re.sub(r'[^a-z0-9]+', '-', name)}-seed{seed}"
    state = stage_state(out, steps)
    if state != "done":
        args = ["finetune", "--task", "change", "--init", "s2mae-s2-small", *(["--fresh-weights"] if fresh else []),
                "--normalize", "quantiles", "--img-size", str(img_size), "--train-cities", *train,
                "--eval-cities", *EVAL_CITIES, "--steps", str(steps), "--seed", str(seed), "--out", str(out),
                "--checkpoint-every", "100", "--quiet", *(["--resume"] if state == "resume" else [])]
        if s2lab(args):
            raise SystemExit(f"s2lab {' '.join(args)} failed")
    return out


def _brief(scores: dict) -> dict:
    keys = ("precision", "recall", "f1", "iou")
    return {"threshold": scores["threshold"], "pooled": {k: scores["pooled"][k] for k in keys},
            "per_city": {c: {k: s[k] for k in keys} for c, s in scores["per_pair"].items()},
            **({"ceiling_f1": scores["ceiling"]["f1"]} if "ceiling" in scores else {})}


def oscd_pairs(cities: Sequence[str]) -> list[tuple]:
    """(before, after, label) of each OSCD city, the 10 default bands."""
    return [(p.before, p.after, p.label) for p in (load_oscd_city(c, bands=S2_10BANDS) for c in cities)]


def _default_f1(meta: dict) -> float:
    """Pooled F1 on the eval cities of the method a fine-tuned change model chose on its training cities."""
    return meta["blend"]["f1"] if meta.get("method") == "model + cva" else meta["f1"]


def change(quick: bool, runs: Path) -> dict:
    if data_dir("oscd") is None:
        return {"skipped": "OSCD not found (set S2LAB_DATA_DIR or S2LAB_OSCD_DIR)"}
    train = [c for c in oscd_cities(labelled=True) if c not in EVAL_CITIES]
    train_pairs, eval_pairs = oscd_pairs(train), oscd_pairs(EVAL_CITIES)
    cva = evaluate_cva(train_pairs, eval_pairs, eval_names=EVAL_CITIES)
    smoothed = f"CVA smoothed (sigma {cva['smoothed']['sigma']:g} px), sigma and threshold tuned on training cities"
    rows = {"CVA, Otsu per image": _brief(cva["otsu"]), "CVA, threshold tuned on training cities": _brief(cva["tuned"]),
            smoothed: _brief(cva["smoothed"])}
    model, info = load_model("change-oscd-small")
    meta = info.get("meta") or {}
    blend = evaluate_blend(model, train_pairs, eval_pairs, eval_names=EVAL_CITIES, normalize=meta.get("normalize"))
    rows["change-oscd-small alone"] = _brief(blend["alone"])  # its threshold chosen on its training cities
    rows["change-oscd-small + CVA, chosen in-fit"] = {**_brief(blend), "weight": blend["weight"],
                                                      "sigma": blend["sigma"]}
    # the shipped default, exactly as s2lab detect-change makes it: the choice stored in the checkpoint
    maps = [detect_change(model, meta, before, after).probability.values.ravel() for before, after, _ in eval_pairs]
    labels = [np.asarray(label).ravel() for _, _, label in eval_pairs]
    default = f"change-oscd-small, detect-change default ({meta.get('method', 'model')})"
    rows[default] = _brief({**scores_at(maps, labels, chosen_threshold(meta), EVAL_CITIES),
                            "ceiling": ceiling(maps, labels)})
    if meta.get("method") == "model + cva":
        chosen = meta["blend"]
        rows[default].update(weight=chosen["cva_weight"], sigma=chosen.get("sigma", 0.0),
                             chosen_on=chosen.get("chosen_on", "in-fit"))
    arms = {}
    steps, seeds = (10, CHANGE_SEEDS[:1]) if quick else (CHANGE_STEPS, CHANGE_SEEDS)
    for arm, fresh in CHANGE_ARMS.items():
        f1s = []
        for seed in seeds:
            run = train_change(runs, arm, fresh, seed, train, steps, model.encoder.config.img_size)
            run_meta = json.loads((run / "model.json").read_text())["meta"]
            f1s.append(_default_f1(run_meta))
        arms[arm] = {"f1": f1s, "mean": float(np.mean(f1s)), "sd": float(np.std(f1s, ddof=1)) if len(f1s) > 1 else 0.0}
    return {"train_cities": train, "eval_cities": list(EVAL_CITIES), "rows": rows, "default": default,
            "default_method": meta.get("method", "model"), "arms": arms, "arm_steps": steps, "seeds": list(seeds),
            "paper_f1": PAPER["oscd_f1"]}


def change_markdown(result: dict) -> str:
    if "skipped" in result:
        return f"Change detection: skipped, {result['skipped']}.\n"
    cities = result["eval_cities"]
    lines = [(f"OSCD, trained on {', '.join(result['train_cities'])}; scored on {' and '.join(cities)} at a threshold "
             "fixed on the training cities (Otsu: each image's own, no labels)."), "",
             "| method | threshold | pooled precision | pooled recall | pooled F1 | pooled IoU | "
             + " | ".join(f"{c} F1" for c in cities) + " | ceiling F1 |",
             "| --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in cities) + " | --- |"]
    for name, r in result["rows"].items():
        p = r["pooled"]
        ceiling = f"{r['ceiling_f1']:.3f}" if "ceiling_f1" in r else "-"
        lines.append(f"| {name} | {r['threshold']:.3f} | {p['precision']:.3f} | {p['recall']:.3f} | "
                     f"**{p['f1']:.3f}** | {p['iou']:.3f} | "
                     + " | ".join(f"{r['per_city'][c]['f1']:.3f}" for c in cities) + f" | {ceiling} |")
    blend = next((r for r in result["rows"].values() if "weight" in r), None)
    if blend:
        lines += ["", ("The + CVA rows: sigmoid(G_sigma * (the model's logit + w x the CVA magnitude)), each date's "
                  "bands standardised over the whole image, which the model's windows never see, and G_sigma a "
                  "Gaussian smoothing of sigma pixels. The weight w, sigma and the threshold are the F1-best on the "
                  "training cities (`s2lab.evaluate.evaluate_blend`); no held-out label is used. Chosen in-fit, on "
                  "the shipped model's own maps of the cities it was fitted to, they flatter the model (too small a "
                  "w, no smoothing); the shipped default chose them out of fold (`s2lab finetune --cross-fit`): "
                  "each training city mapped by a model fine-tuned without it.")]
        for name, r in result["rows"].items():
            if "weight" in r:
                lines.append(f"- {name}: w {r['weight']:g}, sigma {r.get('sigma', 0.0):g} px"
                             + (f", chosen {r['chosen_on']}" if "chosen_on" in r else "") + ".")
    if "default" in result:
        tuned = result["rows"]["CVA, threshold tuned on training cities"]["pooled"]["f1"]
        mine = result["rows"][result["default"]]["pooled"]["f1"]
        lines += ["", (f"**The default of `s2lab detect-change`** (and of the app and notebook 08) is what the training "
                  f"cities chose: {result['default_method']} (the row {result['default']}), pooled F1 {mine:.3f}, "
                  f"against {tuned:.3f} for CVA with a threshold tuned on the same cities: "
                  f"{mine - tuned:+.3f}.")]
        smooth = next((r for n, r in result["rows"].items() if n.startswith("CVA smoothed")), None)
        if smooth:
            lines[-1] += (f" Smoothing helps CVA too: with its smoothing chosen on the training cities as well, CVA "
                          f"scores {smooth['pooled']['f1']:.3f}, and the default is {mine - smooth['pooled']['f1']:+.3f} "
                          "against that stronger floor.")
    arms = result.get("arms")
    if arms:
        lines += ["", (f"Pretrained against from scratch: the shipped S2MAE encoder, and the same network with fresh "
                  f"weights, each fine-tuned {result['arm_steps']} steps with seeds {result['seeds']} at the shipped "
                  "settings; pooled F1 of each run's default method on the held-out cities, mean ± sd over seeds."),
                  "", "| encoder | pooled F1 per seed | mean ± sd |", "| --- | --- | --- |"]
        for arm, a in arms.items():
            lines.append(f"| {arm} | {', '.join(f'{f:.3f}' for f in a['f1'])} | {a['mean']:.3f} ± {a['sd']:.3f} |")
        if {"pretrained", "from scratch"} <= set(arms):
            gap = arms["pretrained"]["mean"] - arms["from scratch"]["mean"]
            spread = max(arms["pretrained"]["sd"], arms["from scratch"]["sd"])
            lines += ["", (f"Pretrained minus from scratch: {gap:+.3f}, against a seed spread (largest sd) of "
                      f"{spread:.3f}: " + ("more than the spread." if gap > spread else "not more than the spread."))]
    lines += ["", ("Ceiling F1: the best pooled F1 any threshold would give, found with the held-out cities' own "
              "labels. It is a diagnosis, not a result: it measures how well a method ranks the pixels, apart from "
              "how well its threshold carries over from the training cities. Where a model's ceiling is below the "
              "goal, no choice of threshold reaches it."),
              "", (f"The paper reports F1 {result['paper_f1']} on OSCD's official test cities, with far more "
              "pretraining data and compute."), ""]
    return "\n".join(lines)


# -- classification probe --------------------------------------------------------------------------------------------
def probe_sets(quick: bool):
    """The synthetic EuroSAT-like train and eval sets (labelled synthetic), seeded."""
    generator = torch.Generator().manual_seed(SEED)
    counts = (4, 2) if quick else PROBE_PER_CLASS
    return [synthetic_scene_classification(n, size=WINDOW, rng=generator, split=split)
            for n, split in zip(counts, ("train", "eval"))]


@torch.no_grad()
def features(encoder, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Mean-pooled encoder tokens (as ``SceneClassifier`` pools them): (N, C, H, W) -> (N, D)."""
    encoder.eval()
    return torch.cat([encoder.encode(x[i:i + batch_size]).mean(dim=1) for i in range(0, len(x), batch_size)])


def ridge_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                classes: int, alpha: float = 1e-2) -> float:
    """Accuracy of a ridge classifier (least squares onto one-hot targets) on standardised features.

    Args:
        train_x: (N, D) features, train_y: (N,) classes; test_x: (M, D), test_y: (M,). classes: K.
        alpha: the ridge penalty, relative to the number of training rows.
    """
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    a = torch.cat([(train_x - mean) / std, torch.ones(len(train_x), 1)], dim=1).double()  # (N, D + 1)
    b = torch.cat([(test_x - mean) / std, torch.ones(len(test_x), 1)], dim=1).double()
    target = F.one_hot(train_y.long(), classes).double()  # (N, K)
    weights = torch.linalg.solve(a.T @ a + alpha * len(a) * torch.eye(a.shape[1], dtype=a.dtype), a.T @ target)
    return float(((b @ weights).argmax(1) == test_y.long()).double().mean())


def _random_twin(name: str):
    """The same network as the shipped ``name``, randomly initialised with torch seeded to ``SEED``."""
    _, info = load_model(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return build(info["kind"], info["config"])


def _encoders():
    """(name, label, encoder) of each shipped pretrained encoder and its randomly initialised twin."""
    for name in ("s2mae-s2-small", "satmae-s2-small"):
        yield name, "pretrained", load_model(name)[0]
        yield name, "random", _random_twin(name)


def classification(quick: bool) -> dict:
    train, test = probe_sets(quick)
    rows = {f"{name} {label}": ridge_probe(features(encoder, train.x), train.y, features(encoder, test.x), test.y,
                                           len(train.classes)) for name, label, encoder in _encoders()}
    return {"data": train.description, "synthetic": True, "train_images": len(train.x), "eval_images": len(test.x),
            "classes": list(train.classes), "probe": "ridge on frozen mean-pooled encoder features", "accuracy": rows,
            "paper_eurosat_accuracy": PAPER["eurosat_accuracy"], "land_cover": land_cover()}


# The real probe: Jasper Ridge (AVIRIS) seen through Sentinel-2's bands; every CELL x CELL px square on a STRIDE px
# lattice is labelled by its dominant reference abundance. Squares above row SPLIT_ROW train, squares from it test.
CELL, STRIDE, SPLIT_ROW = 8, 4, 48


def jasper_ridge_s2() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The Jasper Ridge cube resampled to the 10 Sentinel-2 bands with their response functions.

    Returns:
        image (10, 100, 100) reflectance, abundances (K, 100, 100), the K endmember names.
    """
    cube = load_jasper_ridge()
    spectra = cube.cube.swap_dims(band="wavelength").transpose("y", "x", "wavelength")  # (H, W, 198)
    image = resample(spectra, S2_10BANDS).transpose("band", "y", "x")  # (10, H, W)
    names = [str(n) for n in cube.abundances[cube.abundances.dims[0]].values]
    return to_tensor(image), torch.as_tensor(cube.abundances.values), names


@torch.no_grad()
def cell_features(encoder, image: torch.Tensor, window: int | None = None) -> dict[tuple[int, int], torch.Tensor]:
    """Each CELL-px square's encoder feature, averaged over every ``window`` that holds it whole.

    The windows are ``s2lab.data.tiles.tile``'s (default the encoder's ``img_size``), every STRIDE px (and one
    flush with the bottom and right edges when the image calls for it). A square is the mean of the (CELL / p)^2
    tokens of patch size p that tile it (one token when p = CELL), so squares lie on the windows' p-px lattice.
    Returns ``{(row, col) of the square's top-left pixel: (D,) feature}``.
    """
    p = encoder.config.patch_size
    tiles, origins = tile(image, window or encoder.config.img_size, stride=STRIDE, drop_nan=False)
    maps = F.avg_pool2d(encoder.eval().feature_map(tiles), CELL // p, stride=1)  # (N, D, squares, squares)
    sums: dict[tuple[int, int], torch.Tensor] = {}
    counts: dict[tuple[int, int], int] = {}
    for (r, c), fmap in zip(origins.tolist(), maps):
        for i in range(fmap.shape[1]):
            for j in range(fmap.shape[2]):
                key = (r + p * i, c + p * j)
                sums[key] = sums.get(key, 0) + fmap[:, i, j]
                counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sorted(sums)}


def land_cover() -> dict:
    """Pretrained vs random encoders on real land cover: a ridge probe of each square's dominant Jasper Ridge class.

    Beside them: the square's mean spectrum (10 values) through the same probe, and the majority class.
    """
    if data_dir("hyperspectral") is None:
        return {"skipped": "the Jasper Ridge cube not found (set S2LAB_DATA_DIR or S2LAB_HYPERSPECTRAL_DIR)"}
    image, abundances, names = jasper_ridge_s2()
    features = {f"{name} {kind}": cell_features(encoder, image) for name, kind, encoder in _encoders()}
    keys = sorted(set.intersection(*(set(cells) for cells in features.values())))  # squares every encoder saw
    label = torch.stack([abundances[:, r:r + CELL, c:c + CELL].mean((1, 2)).argmax() for r, c in keys])  # (N,)
    train = torch.tensor([r + CELL <= SPLIT_ROW for r, _ in keys])
    test = torch.tensor([r >= SPLIT_ROW for r, _ in keys])

    def probe(x: torch.Tensor) -> float:
        return ridge_probe(x[train], label[train], x[test], label[test], len(names))

    rows = {name: probe(torch.stack([cells[key] for key in keys])) for name, cells in features.items()}
    rows["mean spectrum of the square (no encoder)"] = probe(
        torch.stack([image[:, r:r + CELL, c:c + CELL].mean((1, 2)) for r, c in keys]))
    majority = int(torch.bincount(label[train], minlength=len(names)).argmax())
    rows["majority class of the train squares"] = float((label[test] == majority).double().mean())
    return {"data": "the Jasper Ridge AVIRIS cube, resampled to the 10 Sentinel-2 bands (S2A response functions)",
            "synthetic": False, "cell_px": CELL, "stride_px": STRIDE, "split_row": SPLIT_ROW, "classes": names,
            "train_squares": int(train.sum()), "test_squares": int(test.sum()),
            "train_counts": torch.bincount(label[train], minlength=len(names)).tolist(),
            "test_counts": torch.bincount(label[test], minlength=len(names)).tolist(), "accuracy": rows}


def classification_markdown(result: dict) -> str:
    lines = [(f"Scene classification probe on the **synthetic** EuroSAT-like set ({result['train_images']} train / "
             f"{result['eval_images']} eval images, {len(result['classes'])} classes; EuroSAT itself is absent "
             f"here): {result['probe']}."), "", "| encoder | probe accuracy |", "| --- | --- |"]
    lines += [f"| {name} | {acc:.3f} |" for name, acc in result["accuracy"].items()]
    lines += ["", "The paper's 99.16 EuroSAT accuracy is a full fine-tune on the real set; not comparable.", ""]
    real = result.get("land_cover")
    if real and "skipped" not in real:
        counts = ", ".join(f"{n} {a}/{b}" for n, a, b in zip(real["classes"], real["train_counts"], real["test_counts"]))
        lines += [(f"Land-cover probe on **real** data: {real['data']}. Each {real['cell_px']} x {real['cell_px']} px "
                  f"square (one token; squares every {real['stride_px']} px) is labelled by its dominant reference "
                  f"abundance; the {real['train_squares']} squares above row {real['split_row']} train a ridge probe "
                  f"on the frozen token features, the {real['test_squares']} from that row down test it (train/test "
                  f"squares per class: {counts})."), "", "| features | probe accuracy |", "| --- | --- |"]
        lines += [f"| {name} | {acc:.3f} |" for name, acc in real["accuracy"].items()]
        lines += ["", ("The square's own mean spectrum beats every frozen encoder here: four spectrally distinct "
                  "materials need no spatial context, and the encoders see each window scaled band by band to [0, 1], "
                  "which removes the absolute reflectance the spectrum probe keeps. The comparison that matters is "
                  "pretrained against random, row by row."), ""]
    elif real:
        lines += [f"Land-cover probe on real data: skipped, {real['skipped']}.", ""]
    return "\n".join(lines)


# -- ablations -----------------------------------------------------------------------------------------------------
ABLATIONS = {  # name -> (mask ratio, patch size, reconstruction target, bands per token)
    "ratio 0.5": (0.5, 8, "unit", 2), "ratio 0.75": (0.75, 8, "unit", 2), "ratio 0.9": (0.9, 8, "unit", 2),
    "patch 16, ratio 0.9": (0.9, 16, "unit", 2),
    # one band per token: 10 groups instead of 5, so a removed token's pixel more often shows another band
    "1 band per token, ratio 0.9": (0.9, 8, "unit", 1),
    # MAE's norm_pix_loss: each token standardised. Its pictures are un-standardised with the removed tokens' own
    # mean and standard deviation, so its score borrows what it should predict (see MaskedAutoencoder.reconstruct)
    "patch target, ratio 0.9 (leaks)": (0.9, 8, "patch", 2),
}


def ablations(quick: bool, runs: Path) -> dict:
    steps = 10 if quick else ABLATION_STEPS
    data = ["embedded:train"]
    train, test = probe_sets(quick)
    x_eval = windows(pretraining_images(["embedded:eval"])[0])[: BATCH * (1 if quick else 4)]
    rows = {}
    for name, (ratio, patch, target, bands_per_token) in ABLATIONS.items():
        out = runs / re.sub(r"[^a-z0-9]+", "-", name)
        state = stage_state(out, steps)
        if state != "done":
            args = ["pretrain", "--data", *data, "--steps", str(steps), "--batch-size", "32", "--lr", "1e-3",
                    "--mask-ratio", str(ratio), "--patch-size", str(patch), "--seed", str(SEED), "--out", str(out),
                    "--checkpoint-every", "100", "--quiet", *WIDTH, "--img-size", str(WINDOW), "--target", target,
                    "--bands-per-token", str(bands_per_token),
                    *(["--resume"] if state == "resume" else [])]
            if s2lab(args):
                raise SystemExit(f"s2lab {' '.join(args)} failed")
        model = load_model(out / "model.safetensors")[0].eval()
        scores = score_windows(model, x_eval, ratio=0.9, strategy="random")
        covered = coverage(model, x_eval, ratio=0.9, strategy="random")["covered"]
        rows[name] = {"ratio": ratio, "patch_size": patch, "target": target, "bands_per_token": bands_per_token,
                      **summarise(scores), "covered_share": covered["share"],
                      "covered_model_to_baseline": covered["model"] / covered["gaussian"],
                      "probe_accuracy": ridge_probe(features(model, train.x), train.y, features(model, test.x),
                                                    test.y, len(train.classes))}
    return {"steps": steps, "data": data, "seed": SEED, "eval_windows": len(x_eval), "rows": rows,
            "paper": {"mask_ratio_map": PAPER["mask_ratio_map"], "patch_size_map": PAPER["patch_size_map"]}}


def ablations_markdown(result: dict) -> str:
    paper = result["paper"]
    lines = [(f"Short runs ({result['steps']} steps x 32 tiles on {', '.join(result['data'])}, seed {result['seed']}), "
             f"scored by reconstruction at mask ratio 0.9 on {result['eval_windows']} embedded:eval windows and by "
             "the synthetic classification probe; beside the paper's BigEarthNet mAP."), "",
             ("| run | model / best baseline at 0.9 | covered share | model / baseline, covered | "
              "probe accuracy (synthetic) | paper mAP |"), "| --- | --- | --- | --- | --- | --- |"]
    for name, r in result["rows"].items():
        ref = paper["patch_size_map"]["16"] if r["patch_size"] == 16 else paper["mask_ratio_map"].get(str(r["ratio"]))
        ref = "-" if r["target"] != "unit" or r["bands_per_token"] != 2 else ref
        lines.append(f"| {name} | {r['model_to_best']:.2f} | {r['covered_share']:.2f} | "
                     f"{r['covered_model_to_baseline']:.2f} | {r['probe_accuracy']:.3f} | {ref} |")
    lines += ["", ("Read with care: each run is one seed of a few hundred steps, far short of the paper's pretraining. "
              "Scored at 0.9, a model pretrained at 0.9 is on home ground, so the ratio rows favour it by design; the "
              "synthetic probe's differences are within a few images of 200. A patch-16 model's baseline fills "
              "16 x 16 px tokens, so its ratio is against an easier-to-beat (coarser) baseline and is not comparable "
              "with the patch-8 rows. The paper measures BigEarthNet mAP after fine-tuning, which this lab cannot "
              "reproduce here.")]
    rows = result["rows"]
    if "1 band per token, ratio 0.9" in rows and "ratio 0.9" in rows:
        one, two = rows["1 band per token, ratio 0.9"], rows["ratio 0.9"]
        lines += ["", (f"The 1-band row makes 10 spectral groups instead of 5. At 0.9, {one['covered_share']:.0%} of "
                  f"the removed values then keep another band visible at their pixel, against {two['covered_share']:.0%}"
                  f" with 2 bands per token: far more texture is there to borrow across bands. Its ratio is "
                  f"{one['model_to_best']:.2f} against {two['model_to_best']:.2f}, and on covered values "
                  f"{one['covered_model_to_baseline']:.2f} against {two['covered_model_to_baseline']:.2f}; the "
                  "encoder and decoder see twice the tokens (640 per 64 px window)."
                  + (" After these few steps neither model does better on covered values than overall: the texture "
                     "is there, but borrowing it across bands is learnt late, if at all."
                     if all(r["covered_model_to_baseline"] > 0.9 * r["model_to_best"] for r in (one, two)) else ""))]
    leak = next((r for r in rows.values() if r.get("target") == "patch"), None)
    if leak:
        lines += ["", ("The patch-target row is a warning, not a result. A model trained on MAE's norm_pix_loss "
                  "predicts each token standardised, and its pictures are put back here with the removed tokens' own "
                  "mean and standard deviation (as some third-party MAE visualisers do; MAE's own demo draws its "
                  "pictures with a model trained on plain pixels instead). Its ratio, {:.2f}, borrows the flat part of "
                  "the answer from the truth: the flat floor (those true means alone) is {:.2f} on the same windows. "
                  "Ratios near 0.3 at 0.9 can come from such scoring; the unit-target rows, which predict every value "
                  "from the visible tokens only, are the honest measure. Its probe accuracy ({:.3f}) is a fair figure: "
                  "the probe reads the encoder only (MAE, too, found the normalised target gives better "
                  "features).").format(leak["model_to_best"], leak["floor_to_best"], leak["probe_accuracy"])]
    return "\n".join(lines) + "\n"


# -- scaling -------------------------------------------------------------------------------------------------------
SCALING_STEPS = 400  # pretraining steps of each scaling run
SCALING_RATIOS = (0.5, 0.9)


def scaling(quick: bool, runs: Path) -> dict:
    """The input scaling that ships, measured: the shipped S2MAE's recipe (data, tokens, width, mask-ratio range)
    pretrained ``SCALING_STEPS`` steps once per scaling (same seed, same batches), scored on the yardstick."""
    steps = 10 if quick else SCALING_STEPS
    data, _ = pretraining_data()
    rows = []
    for choice in ("dataset", "window"):
        out = runs / f"scaling-{choice}"
        state = stage_state(out, steps)
        if state != "done":
            args = ["pretrain", "--data", *data, "--steps", str(steps), "--batch-size", "32", "--lr", "1e-3",
                    "--mask-ratio", "0.5:0.95", "--seed", str(SEED), "--out", str(out), "--checkpoint-every", "100",
                    "--quiet", *WIDTH, *TOKENS, "--scaling", choice, *(["--resume"] if state == "resume" else [])]
            if s2lab(args):
                raise SystemExit(f"s2lab {' '.join(args)} failed")
        model = load_model(out / "model.safetensors")[0].eval()
        for name, x in image_sets(quick, model.config.img_size).items():
            x = x[: BATCH * (1 if quick else 4)]
            for ratio in SCALING_RATIOS:
                scores = score_windows(model, x, ratio=ratio, strategy="random")
                rows.append({"scaling": choice, "images": name, "windows": len(x), "ratio": ratio,
                             "mse": scores["model"]["mse"], **summarise(scores)})
    shipped = json.loads((WEIGHTS / "s2mae-s2-small.json").read_text())["config"].get("scaling", "window")
    return {"steps": steps, "seed": SEED, "rows": rows, "shipped": shipped}


def scaling_markdown(result: dict) -> str:
    lines = [(f"The shipped S2MAE's recipe (data, 4 px tokens on 32 px tiles, width, mask ratios 0.5 to 0.95) "
              f"pretrained {result['steps']} steps once per input scaling, seed {result['seed']}, the same batches; "
              "scored on the yardstick (masked MSE in reflectance) against the best fill. `dataset`: fixed per-band "
              "statistics of the pretraining data (SpectralGPT's and SatMAE's way, the default of `s2lab pretrain`); "
              "`window`: each window's band range over its visible values."), "",
             "| scaling | images | mask ratio | model MSE (1e-4) | model / best fill |", "| --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['scaling']} | {r['images']} ({r['windows']} windows) | {r['ratio']:.2f} | "
                     f"{r['mse'] * 1e4:.2f} | **{r['model_to_best']:.2f}** |")
    by = {}
    for r in result["rows"]:
        by.setdefault(r["scaling"], []).append(r["model_to_best"])
    if {"dataset", "window"} <= set(by):
        better = min(by, key=lambda k: sum(by[k]))
        lines += ["", (f"Summed over these rows, `{better}` is ahead (model / best fill summed: window "
                       f"{sum(by['window']):.2f}, dataset {sum(by['dataset']):.2f}), one seed of a short run. Per-window "
                       "scaling shows every window at full contrast, so dark, flat scenes (the marsh and the sea of "
                       "embedded:eval) weigh as much in the loss as bright cities; fixed statistics leave them "
                       f"a sliver of the range. The shipped S2MAE uses `{result['shipped']}`.")]
    return "\n".join(lines) + "\n"


# -- loss ----------------------------------------------------------------------------------------------------------
LOSS_STEPS = 800  # steps of each continuation arm
LOSS_RATIOS = (0.5, 0.9)
STAGE_ONE = Path("runs/shipped/s2mae/model.safetensors")  # scripts/train_checkpoints.py's first S2MAE stage


def loss(quick: bool, runs: Path, init: Path = STAGE_ONE) -> dict:
    """Where the loss is taken, measured: the first S2MAE stage of ``scripts/train_checkpoints.py`` continued
    ``LOSS_STEPS`` steps on the same data and settings (the first refining stage's learning rate and seed), once with the papers'
    loss (MSE in the scaled space) and once with the loss in reflectance; both scored on every unseen window."""
    if not init.exists():
        return {"skipped": f"{init} not found: run scripts/train_checkpoints.py --only s2mae first"}
    steps = 10 if quick else LOSS_STEPS
    data, _ = pretraining_data()
    rows = []
    for choice in ("scaled", "reflectance"):
        out = runs / f"loss-{choice}"
        state = stage_state(out, steps)
        if state != "done":
            args = ["pretrain", "--init", str(init), "--data", *data, "--steps", str(steps), "--batch-size", "32",
                    "--lr", "5e-4", "--seed", "1", "--mask-ratio", "0.5:0.95", "--loss", choice, "--out", str(out),
                    "--checkpoint-every", "100", "--quiet", *(["--resume"] if state == "resume" else [])]
            if s2lab(args):
                raise SystemExit(f"s2lab {' '.join(args)} failed")
        model = load_model(out / "model.safetensors")[0].eval()
        for name, x in image_sets(quick, model.config.img_size).items():
            for ratio in LOSS_RATIOS:
                scores = score_windows(model, x, ratio=ratio, strategy="random")
                rows.append({"loss": choice, "images": name, "windows": len(x), "ratio": ratio,
                             "mse": scores["model"]["mse"], **summarise(scores)})
    return {"steps": steps, "init": str(init), "rows": rows}


def loss_markdown(result: dict) -> str:
    if "skipped" in result:
        return f"Skipped: {result['skipped']}.\n"
    lines = [(f"The first S2MAE stage (4500 steps, the papers' loss) continued {result['steps']} more steps on the same "
              "data, learning rate 5e-4, seed 1, the same batches, once per loss; scored on every unseen window. "
              "`scaled`: the MSE in the scaled space, as the papers train. `reflectance`: the same error with each "
              "band of each window weighted by its squared scaling range (the window's band range), so the loss is "
              "the reflectance MSE the yardstick measures (`MAEConfig.loss`)."), "",
             "| loss | images | mask ratio | model MSE (1e-4) | model / best fill |", "| --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['loss']} | {r['images']} ({r['windows']} windows) | {r['ratio']:.2f} | "
                     f"{r['mse'] * 1e4:.2f} | **{r['model_to_best']:.2f}** |")
    by = {}
    for r in result["rows"]:
        by.setdefault(r["loss"], []).append(r["model_to_best"])
    if {"scaled", "reflectance"} <= set(by):
        wins = sum(a < b for a, b in zip(by["reflectance"], by["scaled"]))
        lines += ["", (f"The reflectance loss is ahead in {wins} of {len(by['scaled'])} rows. Under per-window "
                       "scaling, the papers' loss counts a flat field or a calm sea, stretched to [0, 1], as much as a "
                       "city; the yardstick, in reflectance, barely sees their errors. The shipped S2MAE's later "
                       "stages use the reflectance loss (`scripts/train_checkpoints.py`, `REFINE_STAGES`).")]
    return "\n".join(lines) + "\n"


# -- fusion --------------------------------------------------------------------------------------------------------
FUSION_RATIOS = (0.75, 0.9)
RADAR_OTHER = "another patch's"  # the swapped-radar case of radar_use
FUSION_SEEDS = tuple(range(10))  # mask draws, shared by the three radar cases


def fusion(quick: bool) -> dict:
    """Does the shipped FUS-MAE use the radar? Its S2 reconstruction of the held-out BigEarthNet patches (every whole
    32 px window) with their own S1, another patch's, and a constant (``s2lab.models.fusmae.radar_use``), beside the
    best naive fill of the same masks."""
    if not (WEIGHTS / "fusmae-ben-small.json").exists():
        return {"skipped": "no shipped fusmae-ben-small: run scripts/train_checkpoints.py --only fusmae"}
    model, info = load_model("fusmae-ben-small")
    held = info["meta"]["held_out"]["bigearthnet_patches"]
    patches = [load_bigearthnet_patch(name) for name in held]
    size = model.config.img_size
    s2 = torch.cat([windows(p.s2, size) for p in patches])  # (B, 10, S, S), the patches in order
    s1 = torch.cat([windows(p.s1, size) for p in patches])  # (B, 2, S, S)
    seeds = FUSION_SEEDS[:2] if quick else FUSION_SEEDS
    rows = []
    for ratio in FUSION_RATIOS:
        use = radar_use(model, s2, s1, mask_ratio=ratio, seeds=seeds)
        fills: dict[str, list[float]] = {}
        for seed in seeds:  # the naive fills of the same removed values
            rec = model.reconstruct(s2, s1, mask_ratio=ratio, generator=torch.Generator().manual_seed(seed))
            removed = rec.mask.bool()
            for name, guess in fill_all(s2, rec.mask, model.s2_tokenizer).items():
                fills.setdefault(name, []).append(float(((guess - s2)[removed] ** 2).mean()))
        best = min(fills, key=lambda n: sum(fills[n]))
        rows.append({**use, "best_fill": best, "best_fill_mse": float(np.mean(fills[best]))})
    return {"patches": held, "trained_on": info["meta"]["data"], "steps": info["meta"]["steps"],
            "modality_masking": model.config.modality_masking, "rows": rows}


def fusion_markdown(result: dict) -> str:
    if "skipped" in result:
        return f"Skipped: {result['skipped']}.\n"
    lines = [(f"The shipped `fusmae-ben-small` ({result['steps']} steps on {len(result['trained_on'])} BigEarthNet "
              f"S2 + S1 patches, masks {result['modality_masking']} across the sensors) on the "
              f"{len(result['patches'])} patches it never saw ({', '.join(result['patches'])}), every whole window; "
              "S2 masked MSE in reflectance, mean over the mask seeds, with the same masks in every column. "
              "Another patch's: each window gets the S1 of the window at the same place in the other held-out patch. "
              "Constant: each window's S1 replaced by its band means."), "",
             "| mask ratio | own S1 (1e-4) | another patch's S1 | constant S1 | another - own (mean ± sd) | "
             "constant - own (mean ± sd) | best fill |", "| --- | --- | --- | --- | --- | --- | --- |"]
    verdicts = []
    for r in result["rows"]:
        m, d = r["mean"], r["minus_own"]
        other, const, swapped = d["another patch's"], d["constant"], m["another patch's"]
        lines.append(f"| {r['mask_ratio']:.2f} | {m['own'] * 1e4:.2f} | {swapped * 1e4:.2f} | "
                     f"{m['constant'] * 1e4:.2f} | {other['mean'] * 1e4:+.2f} ± {other['sd'] * 1e4:.2f} | "
                     f"{const['mean'] * 1e4:+.2f} ± {const['sd'] * 1e4:.2f} | {r['best_fill']} "
                     f"{r['best_fill_mse'] * 1e4:.2f} |")
        uses = all(d[c]["mean"] > d[c]["sd"] for c in d)
        verdicts.append(f"at {r['mask_ratio']:.2f} " + ("better with its own radar than with either other, by more "
                                                        "than the spread over masks" if uses else
                                                        "not better with its own radar by more than the spread"))
    lines += ["", "The reconstruction is " + "; ".join(verdicts) + "."]
    rows = result["rows"]
    if all(abs(r["minus_own"][RADAR_OTHER]["mean"]) <= r["minus_own"][RADAR_OTHER]["sd"] for r in rows):
        lines[-1] += (" Its own radar and another patch's give the same error: the model does not read what the "
                      "radar says about the place. That a constant radar hurts shows only that it expects radar-like "
                      "input.")
    if all(r["mean"]["own"] > r["best_fill_mse"] for r in rows):
        lines[-1] += " It also stays above the best naive fill of the same pixels."
    lines[-1] += (" Six real pairs (four to train on) are far from the data FUS-MAE was made for; read the figures "
                  "as what this lab's model does, not as a test of the method.")
    lines.append("")
    return "\n".join(lines)


# -- output --------------------------------------------------------------------------------------------------------
SECTIONS = {"reconstruction": ("Reconstruction of unseen real images", reconstruction_markdown),
            "change": ("Change detection on OSCD", change_markdown),
            "classification": ("Pretrained vs from scratch: classification probe", classification_markdown),
            "ablations": ("Mask-ratio and patch-size ablations at lab scale", ablations_markdown),
            "scaling": ("Input scaling: fixed dataset statistics against each window's range", scaling_markdown),
            "loss": ("Where the loss is taken: the scaled space or reflectance", loss_markdown),
            "fusion": ("FUS-MAE: does it use the radar?", fusion_markdown)}


FIDELITY = """\
## The fidelity review, point by point

A fidelity review audited the lab against the papers and the anchors' code (MAE, SatMAE, SpectralGPT). Its points on models,
targets, metrics and results, and where each stands:

| point | status |
| --- | --- |
| E1 "has not learnt to use the bands of one pixel" | Fixed. The sentence is gone; the flat floor is described as what it is, the best flat fill with oracle token means, not a bound; and the review's controlled test (hide the other groups at covered places, against hiding as many tokens elsewhere) is measured for the shipped S2MAE in the reconstruction section (`cross_band_test`). |
| E2 `raw` target confounded | Fixed. `target="raw"` is gone (it raises and says why); the slides' "without norm" row is `scaling="none"`: input and target both in reflectance. |
| E3 per-window min-max attributed to the paper | Fixed. Fixed per-band statistics of the pretraining data (SentinelNormalize, without its clip) are `scaling="dataset"`, the default of `s2lab pretrain`, stored in each checkpoint. Per-window min-max is "the lab's choice", now over the visible values only: before, unscaling a reconstruction used the removed values' own minimum and maximum, a leak. The shipped S2MAE uses per-window scaling, which measured better in a pilot (the dataset scaling's ratio to the best fill was 1.4x the window scaling's at 0.9 after 1000-1200 steps); `python scripts/results.py --sections scaling` measures the two arms at equal steps, and its table is not in this file yet. |
| E4 spectral angle in the stretched space | Fixed. Every score (CLI, app, notebooks, these tables) is in reflectance: masked MSE, PSNR with peak 1.0, the angle between reflectance spectra. |
| E5 progressive pretraining | Fixed. `s2lab pretrain --init CHECKPOINT --data ...` continues a model on other data (the shipped S2MAE's second stage uses it), and notebook 05 gives its from-scratch arm the same tokens as both progressive stages together, and says what the paper means (a schedule over datasets). |
| E6 change model compared with the weakest floor only | Fixed here and in notebook 08: CVA with a threshold tuned on the training cities is a row, and the default of `detect-change` is what the training cities chose (the model alone or blended with CVA). |
| E7 pretrained against scratch on one seed | Change detection: three fine-tuning seeds per arm, mean and spread. The classification probes are still one seed. |
| E8 SatMAE "independent" masking | Fixed: `independent` is now SatMAE's uniform draw over all G x L tokens; the lab's earlier variant, an equal share per group, is `balanced` (the shipped SatMAE was trained with it, and is scored with it). |
| E9 SatMAE's learnable embeddings | Stated in `models/satmae.py` and the README. |
| E10 "learnable is S2MAE's best" | Fixed in `pos_embed.py` and notebook 12 ("S2MAE's choice"; all three variants within 0.05 mAP), with the slides' numbers filled in. |
| E11 which mAP the paper reports | Notebook 07 says that the paper does not say, and that the closest public code (SpectralGPT's) averages a per-batch micro AP, neither of the two mAPs it computes. |
| E12 spatial-only baselines | Fixed. Gaussian fills of each band's visible pixels (2 and 4 px) joined the fills, and so did the review's cross-band fill (`s2lab.baselines.cross_band_fill`: the 3 x 3 level plus the texture of the best-correlated band visible at the same pixel, slope fitted on co-visible pixels); the best fill of every row is taken over all of them. In reflectance it beats the 3 x 3 mean but not the Gaussian fills. |
| E13 FUS-MAE wording and the silent wavelength swap | Fixed. `pos_embed="wavelength"` raises for FUS-MAE; notebook 09 calls the layer "the lab's early fusion" and describes the paper's heavier block. FUS-MAE's window scaling, too, now takes each band's range from the visible values only. |
| E14 the reader ignores the processing-baseline offset | Fixed. `open_raster` reads (DN + offset) / 10000 with the offset from the file's `RADIO_ADD_OFFSET` / `BOA_ADD_OFFSET` tag or GDAL band offset, or from `--dn-offset` (`reconstruct`, `detect-change`, `pretrain`); a file read with offset 0 whose darkest band's 1st-percentile DN is 1000 or more gets a one-line warning. The shipped data (all before baseline 04.00) reads exactly as before. |
| E15 Jasper Ridge's description | Fixed in notebook 10: channels 1-3, 108-112, 154-166 and 220-224 removed, values radiance-derived and scaled by `maxValue`. |
| E16 PSNR | Labelled as the PSNR of the pooled MSE; notebook 04 no longer promises "about a decibel" over the best fill. |
| E17 S2MAE and SatMAE unpaired | Answered where the two share a token grid: the reconstruction section scores both under one shared spatial mask (the same removed pixels for both and for the fills); otherwise that table says why it was skipped. The main table still scores each with the masks it was trained with. |
"""


def render(results: dict[str, dict]) -> str:
    """The markdown of every section present, in ``SECTIONS`` order, and where the fidelity review stands."""
    parts = []
    for key, (title, make) in SECTIONS.items():
        if key in results:
            parts += [f"## {title}", "", make(results[key])]
    return "\n".join(parts) + "\n" + FIDELITY


def replace_block(text: str, block: str) -> str:
    """``text`` with everything between the results markers replaced by ``block``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"expected one {BEGIN} followed by one {END}")
    head, rest = text.split(BEGIN)
    return f"{head}{BEGIN}\n{block.strip()}\n{rest[rest.index(END):]}"


def _data_summary(meta: dict) -> str:
    """What a checkpoint saw, in a few words, from its meta."""
    if meta.get("task") == "change":
        return f"OSCD labels of {', '.join(meta.get('train_cities', []))}; init {meta.get('init')}"
    data = meta.get("data", [])
    cities = sorted({d.split("/")[1] for d in data if d.startswith("oscd/")})
    pairs = [d for d in data if d.startswith("bigearthnet:")]
    parts = ([d for d in data if not d.startswith(("oscd/", "bigearthnet:"))]
             + ([f"both dates of {len(cities)} OSCD cities"] if cities else [])
             + ([f"{len(pairs)} BigEarthNet S1 + S2 pairs"] if pairs else []))
    return ", ".join(parts)


def _steps(meta: dict) -> str:
    """The steps a checkpoint trained, its stages shown when it had two (the first on the papers' loss)."""
    if "stage_steps" in meta:
        first, *rest = meta["stage_steps"]
        return f"{meta['steps_total']} ({first} + {' + '.join(map(str, rest))} on the reflectance loss)"
    return str(meta.get("steps", "-"))


def checkpoints_table(folder: Path = WEIGHTS) -> list[str]:
    """The README's table of the shipped checkpoints, read from their JSON files and sizes."""
    lines = ["| name | kind | parameters | file | data | steps | device | wall | CPU time |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for path in sorted(folder.glob("*.json")):
        info = json.loads(path.read_text())
        meta = info.get("meta") or {}
        params = sum(math.prod(shape) for shape, _ in info["tensors"].values())
        size = path.with_suffix(".safetensors").stat().st_size / 1e6
        spent = meta.get("training") or {}
        wall = f"{spent['wall_s'] / 60:.0f} min" if "wall_s" in spent else "-"
        cpu = f"{spent['cpu_s'] / 60:.0f} min" if "cpu_s" in spent else "-"
        device = f"{spent.get('device', '-')}" + (f", {spent['threads']} threads" if spent.get("threads") else "")
        lines.append(f"| `{path.stem}` | {info['kind']} | {params / 1e6:.2f} M | {size:.1f} MB | {_data_summary(meta)} | "
                     f"{_steps(meta)} | {device} | {wall} | {cpu} |")
    return lines


def readme_block(results: dict[str, dict]) -> str:
    """The README's short version: the headline of each section present, and a pointer to docs/results.md."""
    lines = [("Measured by `python scripts/results.py` on data the checkpoints never saw (CPU, float32); the full "
             "tables, with PSNR, spectral angle and per-city scores, are in [docs/results.md](docs/results.md)."), "",
             "The shipped checkpoints (`s2lab/weights/`, written by `scripts/train_checkpoints.py`):", "",
             *checkpoints_table(), ""]
    rec = results.get("reconstruction")
    if rec:
        lines += [("Reconstruction on the lab's one yardstick: masked MSE in reflectance over the removed values, "
                   "model against the best naive fill of the same visible pixels (band mean, nearest, 3 x 3 mean, the 3 x 3 "
                   "mean with texture borrowed across bands, "
                   "Gaussian 2 px and 4 px), each model with the masks it was trained with ("
                   + ", ".join(f"{m}: {s}" for m, s in {r["model"]: r["strategy"] for r in rec["rows"]}.items())
                   + "):"), "",
                  "| images | mask ratio | S2MAE MSE (1e-4) | best fill MSE (1e-4) | S2MAE / best fill | "
                  "SatMAE / its best fill |", "| --- | --- | --- | --- | --- | --- |"]
        for images in dict.fromkeys(r["images"] for r in rec["rows"]):
            rows = [r for r in rec["rows"] if r["images"] == images]
            for ratio in RATIOS:
                s2, sat = (next((r for r in rows if r["model"] == m and r["ratio"] == ratio), None)
                           for m in ("s2mae-s2-small", "satmae-s2-small"))
                if s2 is None:
                    continue
                best = s2["scores"][s2["best_baseline"]]["mse"]
                theirs = f"{sat['model_to_best']:.2f}" if sat else "-"
                lines.append(f"| {images} | {ratio:.2f} | {s2['scores']['model']['mse'] * 1e4:.2f} | {best * 1e4:.2f} | "
                             f"**{s2['model_to_best']:.2f}** | {theirs} |")
        s2rows = [r for r in rec["rows"] if r["model"] == "s2mae-s2-small"]
        at90 = [r for r in s2rows if r["ratio"] == 0.9]
        if at90:
            worst90 = max(r["model_to_best"] for r in at90)
            beaten = all(r["model_to_best"] < 1 for r in s2rows)
            lines += ["", (f"Goals (on every held-out set): S2MAE at 0.9 at most 0.5 x the best fill: worst "
                      f"{worst90:.2f}, {'met' if worst90 <= 0.5 else 'not met'}; below the best fill at every ratio "
                      f"from 0.5 to 0.95: {'met' if beaten else 'not met'}.")]
        lines.append("")
    ch = results.get("change")
    if ch and "skipped" not in ch:
        cities = ch["eval_cities"]
        lines += [f"Change detection, OSCD {' + '.join(cities)} pooled (thresholds, weights and smoothing fixed on the "
                  "training cities):", "",
                  "| method | precision | recall | F1 | " + " | ".join(f"{c} F1" for c in cities) + " |",
                  "| --- | --- | --- | --- | " + " | ".join("---" for _ in cities) + " |"]
        for name, r in ch["rows"].items():
            q = r["pooled"]
            lines.append(f"| {name} | {q['precision']:.3f} | {q['recall']:.3f} | **{q['f1']:.3f}** | "
                         + " | ".join(f"{r['per_city'][c]['f1']:.3f}" for c in cities) + " |")
        if "default" in ch:
            tuned = ch["rows"]["CVA, threshold tuned on training cities"]["pooled"]["f1"]
            mine = ch["rows"][ch["default"]]["pooled"]["f1"]
            lines += ["", (f"Goal: the default of `s2lab detect-change` ({ch['default']}) beats CVA with a tuned "
                      f"threshold by at least 0.05 pooled F1: {mine - tuned:+.3f}, "
                      f"{'met' if mine - tuned >= 0.05 else 'not met'}.")]
            smooth = next((r for n, r in ch["rows"].items() if n.startswith("CVA smoothed")), None)
            if smooth:
                lines[-1] += (f" Against CVA smoothed as well (its smoothing chosen on the training cities), the "
                              f"stronger floor: {mine - smooth['pooled']['f1']:+.3f}.")
            arms = ch.get("arms") or {}
            if {"pretrained", "from scratch"} <= set(arms):
                gap = arms["pretrained"]["mean"] - arms["from scratch"]["mean"]
                spread = max(arms["pretrained"]["sd"], arms["from scratch"]["sd"])
                lines[-1] += (f" Pretrained beats from scratch by more than the {len(ch['seeds'])}-seed spread: "
                              f"{gap:+.3f} against {spread:.3f}, {'met' if gap > spread else 'not met'}.")
        lines += ["", (f"The paper: F1 {ch['paper_f1']} on OSCD's official test cities with far more data and "
                  "compute."), ""]
    fu = results.get("fusion")
    if fu and "skipped" not in fu:
        parts = [f"at {r['mask_ratio']:.2f} {r['mean']['own'] * 1e4:.1f} with its own S1, "
                 f"{r['mean'][RADAR_OTHER] * 1e4:.1f} with another patch's, {r['mean']['constant'] * 1e4:.1f} "
                 f"with a constant (best fill {r['best_fill_mse'] * 1e4:.1f})" for r in fu["rows"]]
        lines += [(f"FUS-MAE radar test (`fusmae-ben-small`, S2 masked MSE in reflectance x 1e-4 on the "
                   f"{len(fu['patches'])} held-out BigEarthNet patches, {len(fu['rows'][0]['seeds'])} mask draws): "
                   + "; ".join(parts) + ". Section 'FUS-MAE' of docs/results.md says what that shows."), ""]
    cl = results.get("classification")
    if cl:
        lines += ["Classification probe (**synthetic** EuroSAT-like set, ridge on frozen features): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in cl["accuracy"].items()) + ".", ""]
        real = cl.get("land_cover")
        if real and "skipped" not in real:
            lines += [f"Land-cover probe (**real**: {real['data']}; ridge on frozen token features): "
                      + ", ".join(f"{k} {v:.3f}" for k, v in real["accuracy"].items()) + ".", ""]
    return "\n".join(line if line.startswith("|") else textwrap.fill(line, 120, break_on_hyphens=False)
                     for line in lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="*", choices=tuple(SECTIONS), default=list(SECTIONS),
                        help="the sections to measure (default all; none: only rebuild the markdown from the JSON)")
    parser.add_argument("--quick", action="store_true", help="a few windows and steps: checks the script runs")
    parser.add_argument("--out", type=Path, default=Path("docs/results"), help="the JSON folder")
    parser.add_argument("--markdown", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--runs", type=Path, default=Path("runs/results"), help="working folder of training runs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    make = {"reconstruction": lambda: reconstruction(args.quick),
            "change": lambda: change(args.quick, args.runs),
            "classification": lambda: classification(args.quick),
            "ablations": lambda: ablations(args.quick, args.runs),
            "scaling": lambda: scaling(args.quick, args.runs),
            "loss": lambda: loss(args.quick, args.runs),
            "fusion": lambda: fusion(args.quick)}
    for section in args.sections:
        (args.out / f"{section}.json").write_text(json.dumps(make[section](), indent=2))
    results = {p.stem: json.loads(p.read_text()) for p in sorted(args.out.glob("*.json")) if p.stem in SECTIONS}
    args.markdown.write_text("# Results\n\nProduced by `python scripts/results.py`; every figure measured "
                             "(CPU, float32).\n\n" + render(results))
    written = [str(args.out), str(args.markdown)]
    if args.readme.exists() and BEGIN in args.readme.read_text():
        args.readme.write_text(replace_block(args.readme.read_text(), readme_block(results)))
        written.append(str(args.readme))
    print(json.dumps({"sections": args.sections, "written": written}))


if __name__ == "__main__":
    main()
