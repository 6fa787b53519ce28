"""Tests for s2lab.classification_metrics: hand-computed values on small tensors, scikit-learn where installed."""

import numpy as np
import pytest
import torch

from s2lab.classification_metrics import (
    accuracy,
    average_precision,
    binary_scores,
    confusion,
    confusion_matrix,
    mean_average_precision,
)


# -- binary maps -------------------------------------------------------------------------------------------------
def test_confusion_and_binary_scores_by_hand():
    pred = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
    truth = torch.tensor([[1, 0, 1, 0], [1, 1, 0, 0]])
    assert confusion(pred, truth) == {"tp": 2, "fp": 1, "fn": 2, "tn": 3}
    scores = binary_scores(pred.numpy().astype(bool), truth.numpy())
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert scores["iou"] == pytest.approx(2 / 5)
    assert scores["accuracy"] == pytest.approx(5 / 8)


def test_binary_scores_zero_division_and_bad_labels():
    none = torch.zeros(3, 3, dtype=torch.bool)
    scores = binary_scores(none, none)
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0, "accuracy": 1.0}
    assert binary_scores(none, none, zero_division=1.0)["f1"] == 1.0
    with pytest.raises(ValueError, match="labels == 2"):
        confusion(none, torch.full((3, 3), 2))
    with pytest.raises(ValueError, match="shapes differ"):
        confusion(none, none[:2])


# -- classification ----------------------------------------------------------------------------------------------
def test_accuracy_and_confusion_matrix_by_hand():
    truth = torch.tensor([0, 1, 2, 2, 1])
    pred = torch.tensor([0, 2, 2, 2, 1])
    assert accuracy(pred, truth) == pytest.approx(0.8)
    logits = torch.nn.functional.one_hot(pred, 3).float()  # (B, K) scores: argmax taken
    assert accuracy(logits, truth) == pytest.approx(0.8)
    cm = confusion_matrix(pred, truth, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 2]]  # rows truth, columns prediction
    with pytest.raises(ValueError, match=r"0\.\.2"):
        confusion_matrix(pred, torch.tensor([0, 1, 2, 3, 1]), 3)


def test_average_precision_by_hand():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # ranks: hit, miss, hit, miss -> (R 1/2, P 1) + (R 1, P 2/3)
    assert average_precision(scores, torch.tensor([1, 0, 1, 0])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(scores, torch.tensor([1, 1, 0, 0])) == pytest.approx(1.0)
    # tied scores enter together: one threshold holding 1 hit and 1 miss
    assert average_precision(torch.tensor([0.5, 0.5]), torch.tensor([1, 0])) == pytest.approx(0.5)
    assert average_precision(scores, torch.zeros(4)) == 0.0


def test_mean_average_precision_macro_vs_micro_by_hand():
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])  # (B=3, K=2)
    truth = torch.tensor([[1, 0], [0, 0], [0, 1]])
    per_class = mean_average_precision(scores, truth, average=None)
    assert per_class.tolist() == pytest.approx([1.0, 1.0])
    assert mean_average_precision(scores, truth) == pytest.approx(1.0)
    # micro ranks all six: 0.9 hit, 0.8 miss, 0.7 hit, ... -> 1/2 * 1 + 1/2 * 2/3
    assert mean_average_precision(scores, truth, average="micro") == pytest.approx(0.5 + 0.5 * 2 / 3)
    empty = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 1, 0]])  # class 2 has no positive: AP 0 unless skipped
    scores3 = torch.cat([scores, torch.rand(3, 1)], dim=1)
    assert mean_average_precision(scores3, empty) == pytest.approx(2 / 3)
    assert mean_average_precision(scores3, empty, skip_empty=True) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown average"):
        mean_average_precision(scores, truth, average="weighted")


def test_average_precision_matches_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for trial in range(20):
        truth = rng.random((40, 5)) < 0.3
        truth[0] = True  # every class has a positive (sklearn warns otherwise)
        scores = rng.integers(0, 4, (40, 5)).astype(float) if trial % 2 else rng.random((40, 5))  # ties, then none
        for average in ("macro", "micro", None):
            ours = mean_average_precision(torch.tensor(scores), torch.tensor(truth), average)
            assert np.allclose(np.asarray(ours), skm.average_precision_score(truth, scores, average=average))
