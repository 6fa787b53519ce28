"""Exercises of notebooks 06 (scene classification) and 07 (multi-label classification).

Each exercise is ``make(seed) -> dict`` (the student's data) and ``judge(answer, data) -> hint or None``, registered
under its key ``"NN.k"`` (see ``s2lab.exercises``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2lab.exercises.core import close, register, rng_for


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
