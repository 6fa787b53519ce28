"""Scores: how good a reconstruction, a change map or a classifier is.

Three families, torch tensors (or numpy arrays) in, python floats out, tensors where a map or per-class values
come out. Shapes use the glossary of ``docs/internals.md``.

- **Reconstruction**, on the removed values only and in reflectance: the lab's one yardstick for every model and
  baseline, whatever scaling a model uses inside. Masked MSE, PSNR with peak 1.0 reflectance, and the spectral
  angle (SAM) between predicted and true reflectance spectra. (The token functions also score a model's own
  scaled target, where a notebook teaches the target itself.)
- **Binary maps** (change detection): confusion counts, precision, recall, F1, IoU; Otsu's threshold to turn a
  change score into a map; change vector analysis (CVA), the classic label-free floor for change detection.
- **Classification**: accuracy, the confusion matrix, average precision per class and its mean (mAP), with
  scikit-learn's definitions.

Zero division: a ratio whose denominator is zero (precision with nothing predicted, recall with nothing true)
is ``zero_division`` (0.0 by default, as scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from s2lab.models.mae import masked_mse

AVERAGES = ("macro", "micro", None)


def _tensor(x: Any) -> torch.Tensor:
    """A tensor from a tensor, a numpy array, an xarray DataArray or a list (no copy when possible)."""
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}; expected the same shape")


# -- reconstruction ----------------------------------------------------------------------------------------------
def token_valid(valid: torch.Tensor | None, L: int, P: int, device: torch.device | None = None) -> torch.Tensor:
    """Which token values are real bands, for every token: (L, P) bool.

    Args:
        valid: a tokenizer's (G, P) ``valid`` (repeated over the N spatial tokens of each group, as the
            group-major layout needs), an (L, P) one, or None when every value is real.
        L, P: tokens and values per token.
        device: where the result lives (default: where ``valid`` is, else the CPU).
    """
    if valid is None:
        return torch.ones(L, P, dtype=torch.bool, device=device)
    valid = torch.as_tensor(valid, device=device).bool()
    if valid.ndim != 2 or valid.shape[1] != P or valid.shape[0] == 0 or L % valid.shape[0]:
        raise ValueError(
            f"valid of shape {tuple(valid.shape)} does not fit {L} tokens of {P} values: expected (G, {P}) "
            f"with G dividing {L}, or ({L}, {P})"
        )
    return valid.repeat_interleave(L // valid.shape[0], dim=0)  # (L, P)


def _check_tokens(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    _same_shape(pred, target, "predicted and target tokens")
    if pred.ndim != 3 or tuple(mask.shape) != tuple(pred.shape[:2]):
        raise ValueError(
            f"expected tokens (B, L, P) and a mask (B, L), got tokens {tuple(pred.shape)} and mask {tuple(mask.shape)}"
        )


def masked_token_mse(
    pred_tokens: torch.Tensor, target_tokens: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
) -> float:
    """Mean squared error over the removed tokens' real values (``s2lab.models.mae.masked_mse`` as a float).

    Each removed token's MSE over its valid values, averaged over removed tokens; 0.0 when none was removed.

    Args:
        pred_tokens, target_tokens: (B, L, P), in the model's scaled space (its training target).
        mask: (B, L), 1 = removed.
        valid: (G, P) or (L, P) bool, False on band padding; None when there is none.
    """
    _check_tokens(pred_tokens, target_tokens, mask)
    _, L, P = pred_tokens.shape
    weight = token_valid(valid, L, P, pred_tokens.device)
    return float(masked_mse(pred_tokens.float(), target_tokens.float(), mask.float(), weight))


def psnr(mse: float | torch.Tensor, peak: float = 1.0) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB, 10 log10(peak^2 / mse): inf for mse 0.

    Args:
        mse: a mean squared error, a float or a tensor of any shape (then a tensor of that shape comes back).
        peak: the largest possible value: 1.0 reflectance on the lab's yardstick.
    """
    if isinstance(mse, torch.Tensor):
        return 10 * torch.log10(peak**2 / mse)
    mse = float(mse)
    if mse < 0:
        raise ValueError(f"a mean squared error cannot be negative, got {mse}")
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def masked_psnr(
    pred_tokens: torch.Tensor,
    target_tokens: torch.Tensor,
    mask: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    peak: float = 1.0,
) -> float:
    """PSNR in dB of ``masked_token_mse`` (same arguments); inf when nothing was removed."""
    return psnr(masked_token_mse(pred_tokens, target_tokens, mask, valid), peak)


def spectral_angle(a: torch.Tensor, b: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Angle in radians between spectra, along ``dim`` (the band axis C).

    Computed as 2 atan2(|a' - b'|, |a' + b'|) on unit vectors a', b' (Kahan's form: exact 0 for parallel spectra,
    where arccos of the cosine loses half the digits). Zero vectors are safe: two zero spectra are 0 apart, a zero
    and a non-zero one pi / 2 apart (cosine similarity 0, as ``torch.nn.functional.cosine_similarity`` has it).

    Args:
        a, b: tensors of the same shape, e.g. (B, C, H, W) with dim=1.
        dim: the spectral axis.

    Returns:
        The shape of ``a`` without ``dim``, e.g. (B, H, W), in [0, pi].
    """
    _same_shape(a, b, "spectral angle")
    a = a if a.is_floating_point() else a.float()
    b = b if b.is_floating_point() else b.float()
    tiny = torch.finfo(a.dtype).tiny
    ua = a / _norm(a, dim, keepdim=True).clamp_min(tiny)
    ub = b / _norm(b, dim, keepdim=True).clamp_min(tiny)
    return 2 * torch.atan2(_norm(ua - ub, dim), _norm(ua + ub, dim))


def _norm(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """Euclidean norm along ``dim``, as sqrt of the sum of squares: on the CPU many times faster than
    ``Tensor.norm`` along a strided band axis (e.g. dim 1 of (B, C, H, W))."""
    return (x * x).sum(dim=dim, keepdim=keepdim).sqrt()


def _check_images(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    _same_shape(pred, target, "predicted and target images")
    _same_shape(pred, mask, "images and their per-pixel mask")
    if pred.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(pred.shape)}")


def masked_spectral_angle(pred_img: torch.Tensor, target_img: torch.Tensor, mask_img: torch.Tensor) -> float:
    """Mean spectral angle in degrees over the pixels that lost at least one band.

    The prediction is first pasted into the target where values were removed (visible values are the truth), so
    the full prediction and the pasted image give the same score; the angle is taken over all C bands of each
    pixel whose mask has any band removed. 0.0 when no pixel lost a band.

    Args:
        pred_img, target_img: (B, C, H, W), in reflectance for the lab's yardstick.
        mask_img: (B, C, H, W), 1 = removed (``Reconstruction.mask``, or the token mask unpatchified).
    """
    _check_images(pred_img, target_img, mask_img)
    removed = mask_img.bool()
    pixels = removed.any(dim=1)  # (B, H, W)
    if not bool(pixels.any()):
        return 0.0
    target = target_img.float()
    pasted = torch.where(removed, pred_img.float(), target)
    angle = spectral_angle(pasted, target, dim=1)  # (B, H, W)
    return math.degrees(float(angle[pixels].mean()))


def reconstruction_scores(pred_img01: torch.Tensor, target_img01: torch.Tensor, mask_img: torch.Tensor) -> dict:
    """The lab's reconstruction yardstick on the removed values: MSE, PSNR (dB) and spectral angle (degrees).

    ``mse`` is the mean over the removed values of the images; it equals ``masked_token_mse`` on the tokens
    when every token holds the same number of real values (no band padding). Nothing removed gives
    mse 0.0, psnr inf, sam_deg 0.0.

    Args:
        pred_img01: (B, C, H, W) prediction or pasted image, in reflectance on the lab's yardstick.
        target_img01: (B, C, H, W) the true image, the same space.
        mask_img: (B, C, H, W), 1 = removed.

    Returns:
        ``{"mse": float, "psnr": float, "sam_deg": float}``.
    """
    _check_images(pred_img01, target_img01, mask_img)
    removed = mask_img.bool()
    squared = torch.where(removed, (pred_img01.float() - target_img01.float()) ** 2, 0.0)
    mse = float(squared.sum() / removed.sum().clamp_min(1))
    return {"mse": mse, "psnr": psnr(mse), "sam_deg": masked_spectral_angle(pred_img01, target_img01, mask_img)}


# -- binary maps (change detection) ------------------------------------------------------------------------------
def _binary(x: Any, what: str) -> torch.Tensor:
    """A bool tensor from bool or 0/1 values; other values (OSCD's 1/2 labels) are refused."""
    x = _tensor(x)
    if x.dtype != torch.bool:
        if x.numel() and not bool(((x == 0) | (x == 1)).all()):
            found = torch.unique(x)[:6].tolist()
            raise ValueError(
                f"{what} must be bool or 0/1, found values {found}; OSCD's label GeoTIFFs hold 1 = no change, "
                f"2 = change: convert them with `labels == 2`"
            )
        x = x.bool()
    return x


def confusion(pred_bool: Any, truth_bool: Any) -> dict[str, int]:
    """Counts of a binary map against the truth, over all elements.

    Args:
        pred_bool, truth_bool: the same shape, e.g. (H, W) or (B, H, W); bool or 0/1, True = change.

    Returns:
        ``{"tp", "fp", "fn", "tn"}`` as ints.
    """
    pred, truth = _binary(pred_bool, "the predicted map"), _binary(truth_bool, "the true map")
    _same_shape(pred, truth, "predicted and true maps")
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "tn": pred.numel() - tp - fp - fn}


def _ratio(num: float, den: float, zero_division: float) -> float:
    return float(num) / den if den else float(zero_division)


def binary_scores(pred: Any, truth: Any, *, zero_division: float = 0.0) -> dict[str, float]:
    """Precision, recall, F1, IoU and accuracy of a binary map.

    precision = tp / (tp + fp), recall = tp / (tp + fn), f1 = 2 tp / (2 tp + fp + fn), iou = tp / (tp + fp + fn),
    accuracy = (tp + tn) / all; each is ``zero_division`` when its denominator is 0 (e.g. no change predicted
    and none true).

    Args:
        pred, truth: the same shape, bool or 0/1, True = change.
        zero_division: the value of a ratio with a zero denominator.

    Returns:
        ``{"precision", "recall", "f1", "iou", "accuracy"}`` as floats.
    """
    c = confusion(pred, truth)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    return {
        "precision": _ratio(tp, tp + fp, zero_division),
        "recall": _ratio(tp, tp + fn, zero_division),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, zero_division),
        "iou": _ratio(tp, tp + fp + fn, zero_division),
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn, zero_division),
    }


def otsu_threshold(values: Any, bins: int = 256) -> float:
    """Otsu's threshold: the cut that maximises the between-class variance of a histogram.

    The same algorithm as ``skimage.filters.threshold_otsu`` (a ``bins``-bin histogram over the finite values,
    the threshold a bin centre); values strictly above it are the upper class (change). NaN and inf are ignored;
    a constant input returns that constant.

    Args:
        values: any shape, e.g. a CVA magnitude (H, W); a tensor or a numpy array.
        bins: histogram bins.
    """
    v = values.detach().double().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    v = v.astype(np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("Otsu's threshold needs at least one finite value, got none")
    if bins < 2:
        raise ValueError(f"Otsu's threshold needs at least 2 histogram bins, got {bins}")
    lo, hi = v.min(), v.max()
    if lo == hi:
        return float(lo)
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    weight_below = np.cumsum(hist)  # pixels at or below each bin
    weight_above = np.cumsum(hist[::-1])[::-1]  # pixels at or above each bin
    mean_below = np.cumsum(hist * centers) / weight_below
    mean_above = (np.cumsum((hist * centers)[::-1]) / weight_above[::-1])[::-1]
    between = weight_below[:-1] * weight_above[1:] * (mean_below[:-1] - mean_above[1:]) ** 2
    return float(centers[:-1][np.argmax(between)])


def change_vector_analysis(before: torch.Tensor, after: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
    """Change vector analysis: the length of each pixel's spectral change vector, a change score without labels.

    Args:
        before, after: (C, H, W) images of the same place (or (B, C, H, W) pairs), reflectance.
        normalize: first standardise each image's bands by their own mean and standard deviation over (H, W),
            which cancels differences of illumination and calibration between the dates (no labels are used).

    Returns:
        (H, W) magnitude (or (B, H, W)), |after - before| over the C bands; threshold it, e.g. with
        ``otsu_threshold``, to get a change map.
    """
    before, after = _tensor(before).float(), _tensor(after).float()
    _same_shape(before, after, "before and after images")
    if before.ndim not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W) images, got shape {tuple(before.shape)}")
    if normalize:
        before, after = _standardize_bands(before), _standardize_bands(after)
    return (after - before).pow(2).sum(dim=-3).sqrt()  # (H, W) or (B, H, W)


def _standardize_bands(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Every band of (..., C, H, W) to zero mean, unit standard deviation over its own pixels."""
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True, unbiased=False).clamp_min(eps)
    return (x - mean) / std


# -- classification ----------------------------------------------------------------------------------------------
def _labels(pred: Any, truth: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true class indices; scores (..., K) are turned into labels by argmax."""
    pred, truth = _tensor(pred), _tensor(truth)
    if pred.ndim == truth.ndim + 1:
        pred = pred.argmax(dim=-1)
    _same_shape(pred, truth, "predicted and true labels (or scores (B, K) for labels (B,))")
    if pred.numel() == 0:
        raise ValueError("no labels to score: got empty tensors")
    return pred.long(), truth.long()


def accuracy(pred: Any, truth: Any) -> float:
    """Share of correct labels.

    Args:
        pred: (B,) labels, or (B, K) scores (argmax taken). truth: (B,) labels.
    """
    pred, truth = _labels(pred, truth)
    return float((pred == truth).double().mean())


def confusion_matrix(pred: Any, truth: Any, n: int) -> torch.Tensor:
    """Counts of (true class, predicted class): (n, n) int64, rows truth, columns prediction (scikit-learn's way).

    Args:
        pred: (B,) labels or (B, K) scores. truth: (B,) labels. n: number of classes.
    """
    pred, truth = _labels(pred, truth)
    for name, x in (("predicted", pred), ("true", truth)):
        if int(x.min()) < 0 or int(x.max()) >= n:
            raise ValueError(f"{name} labels must lie in 0..{n - 1}, found {int(x.min())}..{int(x.max())}")
    return torch.bincount((truth * n + pred).flatten().cpu(), minlength=n * n).view(n, n)


def average_precision(scores: Any, truth: Any) -> float:
    """Average precision of one class: sum over thresholds of (R_i - R_{i-1}) P_i (scikit-learn's definition).

    The thresholds are the distinct scores, from the highest down (tied scores enter together); no interpolation.
    A class without any positive has AP 0.0, as in scikit-learn.

    Args:
        scores: (B,) higher = more likely positive (logits or probabilities).
        truth: (B,) bool or 0/1.
    """
    scores, truth = _tensor(scores).double().flatten(), _binary(truth, "true labels").flatten()
    _same_shape(scores, truth, "scores and true labels")
    if scores.numel() == 0 or not bool(torch.isfinite(scores).all()):
        raise ValueError(f"average precision needs finite scores, got {scores.numel()} values, some not finite")
    order = torch.argsort(scores, descending=True, stable=True)
    s, t = scores[order], truth[order].double()
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # the last of each group of tied scores: one threshold each
    tps = torch.cumsum(t, 0)[last]
    ranks = torch.arange(1, len(s) + 1, dtype=torch.float64, device=s.device)[last]
    if float(tps[-1]) == 0:
        return 0.0
    precision, recall = tps / ranks, tps / tps[-1]
    return float((torch.diff(recall, prepend=recall.new_zeros(1)) * precision).sum())


def mean_average_precision(
    scores: Any, truth: Any, average: str | None = "macro", *, skip_empty: bool = False
) -> float | torch.Tensor:
    """Average precision over K classes (multi-label), as ``sklearn.metrics.average_precision_score``.

    Args:
        scores: (B, K) per-class scores. truth: (B, K) bool or 0/1.
        average: ``"macro"`` the mean of the K per-class APs; ``"micro"`` one AP over all B * K decisions
            together; None the (K,) per-class APs as a float64 tensor.
        skip_empty: leave out of the macro mean the classes with no positive in ``truth`` (scikit-learn counts
            them as 0.0, which drags the mean down on small evaluation sets).
    """
    if average not in AVERAGES:
        raise ValueError(f"unknown average {average!r}; expected one of {', '.join(map(repr, AVERAGES))}")
    scores, truth = _tensor(scores), _binary(truth, "true labels")
    _same_shape(scores, truth, "scores and true labels")
    if scores.ndim != 2:
        raise ValueError(f"expected (B, K) scores and labels, got shape {tuple(scores.shape)}")
    if average == "micro":
        return average_precision(scores.flatten(), truth.flatten())
    per_class = torch.tensor([average_precision(scores[:, k], truth[:, k]) for k in range(scores.shape[1])],
                             dtype=torch.float64)  # (K,)
    if average is None:
        return per_class
    keep = truth.any(dim=0).cpu() if skip_empty else torch.ones_like(per_class, dtype=torch.bool)
    if not bool(keep.any()):
        raise ValueError("no class has a positive label; the mean average precision is undefined")
    return float(per_class[keep].mean())
