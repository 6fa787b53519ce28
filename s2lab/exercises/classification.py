"""Exercises of notebooks 06 (scene classification) and 07 (multi-label classification).

Each exercise is ``make(seed) -> dict`` (the student's data) and ``judge(answer, data) -> hint or None``, registered
under its key ``"NN.k"`` (see ``s2lab.exercises``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2lab.exercises.core import close, register, rng_for


# 06 Scene classification ------------------------------------------------------------------------------------------

def _make_06_4(seed: int) -> dict:
    """Logits (N, 10) and true labels (N,) of a classifier of EuroSAT's 10 classes, with one pair of classes often
    confused (the images of ``a`` called ``b``) and one class ``c`` that takes a stray image of most other classes."""
    from s2lab.data.eurosat import EUROSAT_CLASSES

    rng = np.random.default_rng(rng_for("06.4", seed).randrange(2**31))
    K = len(EUROSAT_CLASSES)
    for _ in range(100):  # until the largest confusion and the lowest precision are each one class (pair)
        per_class = rng.integers(10, 16, size=K)  # (K,) test images per class
        truth = np.repeat(np.arange(K), per_class)  # (N,)
        predicted = truth.copy()
        a, b, c = (int(k) for k in rng.choice(K, size=3, replace=False))
        predicted[np.flatnonzero(truth == a)[:int(rng.integers(3, 6))]] = b  # a -> b, 3 to 5 times
        for k in range(K):  # one image of most classes but a, b, c goes to c
            if k not in (a, b, c) and rng.random() < 0.8:
                predicted[np.flatnonzero(truth == k)[0]] = c
        matrix = np.zeros((K, K), dtype=np.int64)
        np.add.at(matrix, (truth, predicted), 1)
        precision = np.sort(np.diag(matrix) / matrix.sum(axis=0))  # (K,)
        if precision[1] - precision[0] > 0.01:
            break
    logits = rng.normal(0.0, 1.0, size=(len(truth), K))  # (N, K)
    logits[np.arange(len(truth)), predicted] += 6.0  # the prediction is the highest logit
    order = rng.permutation(len(truth))
    return {"logits": logits[order], "truth": truth[order], "classes": list(EUROSAT_CLASSES)}


def _judge_06_4(answer: Any, d: dict) -> str | None:
    import torch

    from s2lab.classification_metrics import accuracy, confusion_matrix

    acc, (true_class, predicted_class), least_precise = answer
    classes, K = d["classes"], len(d["classes"])
    logits, truth = torch.as_tensor(d["logits"]), torch.as_tensor(d["truth"])
    matrix = confusion_matrix(logits, truth, K).numpy()  # (K, K): rows truth, columns prediction
    wrong = matrix.copy()
    np.fill_diagonal(wrong, 0)
    pair = np.unravel_index(wrong.argmax(), wrong.shape)
    precision = np.diag(matrix) / matrix.sum(axis=0).clip(min=1)  # (K,) per predicted class
    hint = close(acc, accuracy(logits, truth), 1e-6, "the accuracy")
    if hint:
        return hint
    if (str(true_class), str(predicted_class)) != (classes[pair[0]], classes[pair[1]]):
        return (f"{true_class} called {predicted_class} is not the most frequent confusion (rows are the truth, "
                f"columns the prediction; leave out the diagonal)")
    if str(least_precise) != classes[int(precision.argmin())]:
        return (f"{least_precise} is not the class of lowest precision (precision reads a column: of the images "
                f"called k, the share that are k)")
    return None


register("06.4", "reading your confusion matrix", _make_06_4, _judge_06_4)


# 07 Multi-label ----------------------------------------------------------------------------------------------------

def _make_07_1(seed: int) -> dict:
    """(B, 4) scores and 0/1 labels of 4 classes of different frequency; the classes in ``perfect`` ranked perfectly."""
    rng = np.random.default_rng(rng_for("07.1", seed).randrange(2**31))
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
    return (close(macro, mean_average_precision(scores, truth, "macro"), 1e-6, "macro mAP")
            or close(micro, mean_average_precision(scores, truth, "micro"), 1e-6, "micro mAP"))


register("07.1", "macro and micro mAP of your scores", _make_07_1, _judge_07_1)
