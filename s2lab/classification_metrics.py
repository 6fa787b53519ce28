"""Classification metrics: predictions against labels, with scikit-learn's definitions.

Torch tensors or numpy arrays in, python floats out, tensors where per-class values come out. Shapes use the
glossary of ``docs/internals.md``.

- **Binary maps** (change detection, pixel by pixel): confusion counts, precision, recall, F1, IoU.
- **Classes**: accuracy, the confusion matrix, average precision per class and its mean (mAP).

Zero division: a ratio whose denominator is zero (precision with nothing predicted, recall with nothing true)
is ``zero_division`` (0.0 by default, as scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

from typing import Any

import torch

from s2lab.metrics import _same_shape, _tensor

AVERAGES = ("macro", "micro", None)


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
