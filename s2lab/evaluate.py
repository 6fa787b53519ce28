"""Scoring change maps on held-out cities: what ``s2lab finetune --task change``, ``scripts/results.py`` and the
notebooks share.

The protocol (OSCD style): a threshold is chosen on the TRAINING pairs only (the F1-best cut of their pooled
pixels, ``best_threshold``) and carried unchanged to the evaluation pairs, whose precision, recall,
F1 and IoU are reported pooled over all their pixels (every pixel counts once, so a large city weighs more) and per
pair. Change vector analysis, the model-free floor, is scored the same way twice: cut at each image's own Otsu
threshold (no labels at all) and at a threshold tuned on the training pairs. ``evaluate_blend`` adds the CVA
magnitude to a model's logit, with its weight, too, chosen on the training pairs.

A pair is ``(before (C, H, W), after (C, H, W), label (H, W) 0/1)``: tensors or DataArrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from s2lab.change import MODEL_THRESHOLD, blend_scores, change_map, smooth_maps
from s2lab.classification_metrics import binary_scores
from s2lab.cva import change_vector_analysis, otsu_threshold
from s2lab.data.pairs import ChangePair
from s2lab.data.tiles import to_tensor

Pair = ChangePair | tuple[Any, Any, Any]  # unpacks as before (C, H, W), after (C, H, W), label (H, W) 0/1


# -- scoring a map against a label ---------------------------------------------------------------------------------
def _flat(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values.values if isinstance(values, xr.DataArray) else values).ravel()


def _check_label(probability, label) -> tuple[np.ndarray, np.ndarray]:
    """Flattened probability (float64) and label (bool), validated: same size, label of 0 / 1, no NaN."""
    p_shape, l_shape = tuple(np.shape(probability)), tuple(np.shape(label))
    if p_shape != l_shape:
        raise ValueError(f"probability has shape {p_shape} but the label {l_shape}; they must match")
    p, y = _flat(probability).astype(np.float64), _flat(label)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"the label holds {sorted(values)}; expected 0 = no change, 1 = change")
    if np.isnan(p).any():
        raise ValueError(f"the probability holds {int(np.isnan(p).sum())} NaN values")
    return p, y.astype(bool)


def score_change(probability, label, threshold: float = MODEL_THRESHOLD) -> dict[str, float]:
    """Precision, recall, F1, IoU (and accuracy) of ``probability >= threshold`` against ``label``.

    Args:
        probability: (H, W) change probability (DataArray, numpy array or tensor).
        label: (H, W) 0 / 1 truth, 1 = change.
        threshold: the cut; choose it on training cities only (``best_threshold``).

    Returns:
        ``s2lab.classification_metrics.binary_scores`` of the cut map.
    """
    p, y = _check_label(probability, label)
    return binary_scores(p >= threshold, y)


def best_threshold(probability, label) -> float:
    """The threshold that maximises F1 of ``probability >= threshold`` against ``label``, found exactly.

    Use it on TRAINING cities only and carry the number to the test cities; choosing it on a test city's own label
    overstates the score.

    Args:
        probability: (H, W) change probability (DataArray, numpy array or tensor).
        label: (H, W) 0 / 1 truth with at least one changed pixel.

    Returns:
        A probability value t such that cutting at ``>= t`` gives the highest F1 (the largest such t on ties).
    """
    p, y = _check_label(probability, label)
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("the label holds no changed pixel; F1 and its best threshold are undefined")
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    tp = np.cumsum(y_sorted)  # true positives when cutting after each position
    fp = np.cumsum(~y_sorted)
    last = np.r_[p_sorted[1:] != p_sorted[:-1], True]  # cut only between distinct values
    f1 = np.where(last, 2 * tp / (tp + fp + positives), -1.0)
    return float(p_sorted[int(np.argmax(f1))])


def _labels(pairs: Sequence[Pair]) -> list[np.ndarray]:
    """Each pair's (H * W,) label: from a tensor, a DataArray or an array."""
    return [label.detach().cpu().numpy().ravel() if isinstance(label, torch.Tensor)
            else np.asarray(getattr(label, "values", label)).ravel() for _, _, label in pairs]


def _names(pairs: Sequence[Pair], names: Sequence[str] | None) -> list[str]:
    names = [f"pair{i}" for i in range(len(pairs))] if names is None else list(names)
    if len(names) != len(pairs):
        raise ValueError(f"{len(names)} names given for {len(pairs)} pairs")
    return names


def scores_at(probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray], threshold: float,
              names: Sequence[str]) -> dict:
    """Scores of ``probability >= threshold``: pooled over every pixel of every pair, and per pair.

    Args:
        probabilities: one (H * W,) map per pair (flattened). labels: the matching (H * W,) 0/1 labels.
        threshold: the cut. names: one name per pair (e.g. the city).

    Returns:
        ``{"threshold", "pooled": binary scores, "per_pair": {name: binary scores}}``.
    """
    if not (len(probabilities) == len(labels) == len(names)) or not names:
        raise ValueError(f"need one probability map, label and name per pair, got {len(probabilities)}, "
                         f"{len(labels)} and {len(names)}")
    pooled = score_change(np.concatenate(probabilities), np.concatenate(labels), threshold)
    per_pair = {n: score_change(p, y, threshold) for n, p, y in zip(names, probabilities, labels)}
    return {"threshold": float(threshold), "pooled": pooled, "per_pair": per_pair}


def ceiling(probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict:
    """The best pooled F1 at any threshold, found with the evaluation labels themselves.

    A diagnosis, never a result: it says how well a method *ranks* the pixels, apart from how well its threshold
    carries over from the training cities. Returns ``{"threshold", "f1"}``.
    """
    p, y = np.concatenate(probabilities), np.concatenate(labels)
    cut = best_threshold(p, y)
    return {"threshold": cut, "f1": score_change(p, y, cut)["f1"]}


def change_probabilities(model: torch.nn.Module, pairs: Sequence[Pair], *, normalize: str | None = None,
                         device: str | None = None) -> list[np.ndarray]:
    """A ``ChangeDetector``'s (H, W) change probability map of every pair (``s2lab.change.change_map``)."""
    return [change_map(model, before, after, normalize=normalize, device=device).probability.values
            for before, after, _ in pairs]


def _ravel(maps: Iterable[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(m).ravel() for m in maps]


def evaluate_change(model: torch.nn.Module, train_pairs: Sequence[Pair], eval_pairs: Sequence[Pair], *,
                    eval_names: Sequence[str] | None = None, normalize: str | None = None,
                    device: str | None = None, threshold: float | None = None) -> dict:
    """A change model scored on ``eval_pairs`` at a threshold chosen on ``train_pairs`` (see the module docstring).

    Args:
        model: a ``ChangeDetector``.
        train_pairs: the pairs it was trained on; only used to choose the threshold (skipped when one is given).
        eval_pairs: held-out pairs. eval_names: their names (default pair0, pair1, ...).
        normalize: the radiometric normalisation the model was trained with (``s2lab.radiometry.NORMALIZATIONS``).
        device: where to run. threshold: a fixed cut instead of the one chosen on the training pairs.

    Returns:
        ``scores_at``'s dict, plus ``"threshold_from"`` ("training pairs" or "given"), ``"normalize"`` and
        ``"ceiling"`` (``ceiling``: the best F1 any threshold would give on the evaluation pairs; not a result).
    """
    names = _names(eval_pairs, eval_names)
    source = "given"
    if threshold is None:
        train = _ravel(change_probabilities(model, train_pairs, normalize=normalize, device=device))
        threshold = best_threshold(np.concatenate(train), np.concatenate(_labels(train_pairs)))
        source = "training pairs"
    probabilities = _ravel(change_probabilities(model, eval_pairs, normalize=normalize, device=device))
    labels = _labels(eval_pairs)
    return {**scores_at(probabilities, labels, threshold, names), "threshold_from": source, "normalize": normalize,
            "ceiling": ceiling(probabilities, labels)}


def cva_magnitudes(pairs: Sequence[Pair]) -> list[np.ndarray]:
    """Change vector analysis of every pair, each date's bands standardised on its own: (H, W) magnitude maps."""
    return [change_vector_analysis(to_tensor(before), to_tensor(after)).numpy() for before, after, _ in pairs]


BLEND_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.0)  # CVA weights tried by ``evaluate_blend``
BLEND_SIGMAS = (0.0, 1.0, 2.0, 3.0)  # smoothings (pixels) of the blended score tried by ``evaluate_blend``


def evaluate_blend(model: torch.nn.Module, train_pairs: Sequence[Pair], eval_pairs: Sequence[Pair], *,
                   eval_names: Sequence[str] | None = None, normalize: str | None = None,
                   device: str | None = None, weights: Sequence[float] = BLEND_WEIGHTS,
                   sigmas: Sequence[float] = BLEND_SIGMAS,
                   train_probabilities: Sequence[np.ndarray] | None = None) -> dict:
    """A change model and change vector analysis together (``s2lab.change.blend_scores``):
    sigmoid(G_sigma * (logit(model probability) + w * CVA magnitude)), G_sigma a Gaussian smoothing.

    A late fusion of the learned score with the classical one (``cva_magnitudes``, whole-image standardised, which
    the model's window-by-window view cannot see). The weight ``w``, the smoothing ``sigma`` and the threshold are
    all chosen on ``train_pairs`` only: for each (w, sigma) the F1-best cut of the training pairs' pooled scores, and
    the pair whose cut scores best there (the smaller w, then the smaller sigma, on a tie). (0, 0), the model alone,
    is always among them, and its scores come back too: one pass of the model serves both.

    A model's probabilities on the cities it was fitted to look better than they will on new ones, so a choice made
    on them leans to the model (too small a w) and to no smoothing. ``train_probabilities`` gives out-of-fold maps
    of the training pairs instead (``s2lab.finetune.change_out_of_fold``: each city mapped by a model fine-tuned
    without it), an honest stand-in for new cities. Other arguments as ``evaluate_change``.

    Returns:
        ``scores_at``'s dict on ``eval_pairs``, plus ``"weight"``, ``"sigma"``, ``"train_f1"`` (per weight, at the
        chosen sigma), ``"sigma_f1"`` (per sigma, at its best weight), ``"threshold_from"`` ("training pairs"),
        ``"chosen_on"`` ("in-fit" or "out-of-fold" probabilities), ``"normalize"``, ``"ceiling"``, and ``"alone"``:
        the same for the model alone (``evaluate_change``'s scores, the probabilities clipped to [1e-6, 1 - 1e-6],
        its threshold chosen on the same training probabilities).
    """
    if not weights or any(not np.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"weights must be finite and non-negative, at least one; got {list(weights)}")
    if not sigmas or any(not np.isfinite(s) or s < 0 for s in sigmas):
        raise ValueError(f"sigmas must be finite and non-negative (pixels), at least one; got {list(sigmas)}")
    weights, sigmas = sorted({0.0, *map(float, weights)}), sorted({0.0, *map(float, sigmas)})
    names = _names(eval_pairs, eval_names)
    train_labels, labels = np.concatenate(_labels(train_pairs)), _labels(eval_pairs)
    if train_probabilities is None:
        train_p, chosen_on = change_probabilities(model, train_pairs, normalize=normalize, device=device), "in-fit"
    else:
        train_p, chosen_on = [np.asarray(p) for p in train_probabilities], "out-of-fold"
        shapes = [tuple(np.shape(label)) for _, _, label in train_pairs]
        if [p.shape for p in train_p] != shapes:
            raise ValueError(f"train_probabilities must be one (H, W) map per training pair, shapes {shapes}; "
                             f"got {[p.shape for p in train_p]}")
    train_m = cva_magnitudes(train_pairs)
    f1, cuts = {}, {}
    for w in weights:
        for sigma in sigmas:
            blended = np.concatenate(_ravel(blend_scores(p, m, w, sigma) for p, m in zip(train_p, train_m)))
            cuts[w, sigma] = best_threshold(blended, train_labels)
            f1[w, sigma] = score_change(blended, train_labels, cuts[w, sigma])["f1"]
    weight, sigma = max(f1, key=f1.get)  # max keeps the first (smallest w, then sigma) of equal scores
    eval_p = change_probabilities(model, eval_pairs, normalize=normalize, device=device)
    eval_m = cva_magnitudes(eval_pairs)
    scores, alone = (_ravel(blend_scores(p, m, w, s) for p, m in zip(eval_p, eval_m))
                     for w, s in ((weight, sigma), (0.0, 0.0)))
    return {**scores_at(scores, labels, cuts[weight, sigma], names), "weight": weight, "sigma": sigma,
            "train_f1": {str(w): f1[w, sigma] for w in weights},
            "sigma_f1": {str(s): max(f1[w, s] for w in weights) for s in sigmas},
            "threshold_from": "training pairs", "chosen_on": chosen_on,
            "normalize": normalize, "ceiling": ceiling(scores, labels),
            "alone": {**scores_at(alone, labels, cuts[0.0, 0.0], names), "ceiling": ceiling(alone, labels)}}


def evaluate_cva(train_pairs: Sequence[Pair], eval_pairs: Sequence[Pair], *,
                 eval_names: Sequence[str] | None = None, sigmas: Sequence[float] = BLEND_SIGMAS) -> dict:
    """The floor: change vector analysis on ``eval_pairs``, cut three ways.

    Returns:
        ``{"otsu": ..., "tuned": ..., "smoothed": ...}``. ``otsu`` cuts each pair's magnitude, scaled to [0, 1], at
        its own Otsu threshold (no labels; its ``threshold`` entry is the mean of those cuts, and ``per_pair`` gives
        each cut as ``otsu_threshold``); ``tuned`` (``scores_at``'s dict and its ``"ceiling"``) cuts the standardised
        magnitude at the F1-best value of the training pairs' pooled pixels; ``smoothed`` likewise after a Gaussian
        smoothing of the magnitude maps, its ``"sigma"`` (pixels, from ``sigmas``) chosen on the training pairs too:
        the floor the smoothed blend of ``evaluate_blend`` should be held against.
    """
    names = _names(eval_pairs, eval_names)
    magnitudes, labels = cva_magnitudes(eval_pairs), _labels(eval_pairs)
    scaled = [((m - m.min()) / max(float(m.max() - m.min()), 1e-6)).ravel() for m in magnitudes]
    cuts = [otsu_threshold(s) for s in scaled]
    otsu = {"pooled": score_change(np.concatenate([s >= c for s, c in zip(scaled, cuts)]).astype(float),
                                   np.concatenate(labels), 0.5),
            "per_pair": {n: {**score_change(s, y, c), "otsu_threshold": c}
                         for n, s, y, c in zip(names, scaled, labels, cuts)},
            "threshold": float(np.mean(cuts))}
    train_m, train_labels = cva_magnitudes(train_pairs), np.concatenate(_labels(train_pairs))

    def smooth(maps: Sequence[np.ndarray], sigma: float) -> list[np.ndarray]:
        return _ravel(smooth_maps(m, sigma) for m in maps)

    def tuned(sigma: float) -> dict:
        train = np.concatenate(smooth(train_m, sigma))
        cut = best_threshold(train, train_labels)
        return {"cut": cut, "train_f1": score_change(train, train_labels, cut)["f1"]}

    chosen = {float(sigma): tuned(float(sigma)) for sigma in sorted({0.0, *sigmas})}
    sigma = max(chosen, key=lambda s: chosen[s]["train_f1"])  # the smallest of equal scores

    def scored(sigma: float) -> dict:
        maps = smooth(magnitudes, sigma)
        return {**scores_at(maps, labels, chosen[sigma]["cut"], names), "ceiling": ceiling(maps, labels)}

    return {"otsu": otsu, "tuned": scored(0.0), "smoothed": {**scored(sigma), "sigma": sigma}}
