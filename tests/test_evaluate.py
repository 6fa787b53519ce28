"""s2lab.evaluate (the change-scoring protocol), and the radiometric normalisation it passes to change_map and
change_task, on the ``pairs`` fixture (tests/conftest.py)."""

import numpy as np
import pytest
import torch

from s2lab.change import change_map
from s2lab.radiometry import NORMALIZATIONS, match_radiometry
from s2lab.evaluate import ceiling, evaluate_blend, evaluate_change, evaluate_cva, scores_at
from s2lab.models import S2MAE, ChangeDetector
from s2lab.tasks import change_task


def test_change_map_says_its_normalisation_and_moments_cannot_reach_a_window_scaled_model(pairs):
    before, after, _ = pairs[0]
    torch.manual_seed(0)
    model = ChangeDetector(encoder=S2MAE(img_size=64, in_chans=10, embed_dim=32, depth=1, num_heads=2,
                                         decoder_embed_dim=32, decoder_depth=1, scaling="window"))
    plain = change_map(model, before, after, device="cpu")
    moments = change_map(model, before, after, normalize="moments", device="cpu")
    quantiles = change_map(model, before, after, normalize="quantiles", device="cpu")
    assert plain.extra["normalize"] is None and NORMALIZATIONS["moments"] in moments.extra["normalize"]
    assert "no labels" in quantiles.extra["normalize"]
    # every window is scaled per band to [0, 1] inside the model: a per-band linear map changes nothing
    assert np.allclose(plain.probability.values, moments.probability.values, atol=1e-4)
    assert not np.allclose(plain.probability.values, quantiles.probability.values, atol=1e-4)
    with pytest.raises(ValueError, match="unknown radiometric normalisation"):
        change_map(model, before, after, normalize="histogram", device="cpu")
    torch.manual_seed(0)  # fixed dataset statistics keep the absolute level: the linear map reaches such a model
    fixed = ChangeDetector(encoder=S2MAE(img_size=64, in_chans=10, embed_dim=32, depth=1, num_heads=2,
                                         decoder_embed_dim=32, decoder_depth=1))
    assert not np.allclose(change_map(fixed, before, after, device="cpu").probability.values,
                           change_map(fixed, before, after, normalize="moments", device="cpu").probability.values,
                           atol=1e-4)


def test_scores_at_pools_pixels_and_scores_each_pair():
    probs = [np.array([0.9, 0.1, 0.8, 0.2]), np.array([0.7, 0.6])]
    labels = [np.array([1, 0, 0, 0]), np.array([1, 1])]
    result = scores_at(probs, labels, 0.5, ["a", "b"])
    # pooled: tp 3 (0.9, 0.7, 0.6), fp 1 (0.8), fn 0
    assert result["pooled"]["precision"] == pytest.approx(0.75) and result["pooled"]["recall"] == 1.0
    assert result["per_pair"]["a"]["precision"] == 0.5 and result["per_pair"]["b"]["f1"] == 1.0
    with pytest.raises(ValueError, match="one probability map, label and name per pair"):
        scores_at(probs, labels, 0.5, ["a"])


def test_ceiling_is_the_best_f1_of_any_threshold():
    probs = [np.array([0.9, 0.1, 0.8, 0.2]), np.array([0.7, 0.6, 0.3])]
    labels = [np.array([1, 0, 0, 1]), np.array([1, 1, 0])]
    best = ceiling(probs, labels)
    every = [scores_at(probs, labels, t, ["a", "b"])["pooled"]["f1"] for t in np.linspace(0, 1, 101)]
    assert best["f1"] == pytest.approx(max(every))
    assert scores_at(probs, labels, best["threshold"], ["a", "b"])["pooled"]["f1"] == pytest.approx(best["f1"])


def test_cva_floor_finds_the_planted_change_through_the_radiometric_change(pairs):
    result = evaluate_cva(pairs[:2], pairs[2:], eval_names=["third"])
    assert set(result) == {"otsu", "tuned", "smoothed"}
    assert result["smoothed"]["sigma"] in (0.0, 1.0, 2.0, 3.0)
    plain = evaluate_cva(pairs[:2], pairs[2:], eval_names=["third"], sigmas=())
    assert plain["smoothed"]["sigma"] == 0.0 and plain["smoothed"]["pooled"] == plain["tuned"]["pooled"]
    for way in result.values():
        assert way["per_pair"]["third"]["f1"] == pytest.approx(way["pooled"]["f1"])
    assert result["tuned"]["pooled"]["f1"] > 0.9  # standardised dates: the gain is gone, the scramble stays
    assert result["otsu"]["per_pair"]["third"]["otsu_threshold"] == pytest.approx(result["otsu"]["threshold"])


def test_evaluate_change_chooses_the_threshold_on_training_pairs_only(pairs):
    torch.manual_seed(0)
    model = ChangeDetector(encoder=S2MAE(img_size=64, in_chans=10, embed_dim=32, depth=1, num_heads=2,
                                         decoder_embed_dim=32, decoder_depth=1))
    chosen = evaluate_change(model, pairs[:2], pairs[2:], eval_names=["third"], device="cpu")
    assert chosen["threshold_from"] == "training pairs" and 0 <= chosen["threshold"] <= 1
    assert chosen["ceiling"]["f1"] >= chosen["pooled"]["f1"]  # no threshold beats the best one
    given = evaluate_change(model, [], pairs[2:], threshold=0.5, device="cpu")
    assert given["threshold_from"] == "given" and given["threshold"] == 0.5 and "pair0" in given["per_pair"]


def test_evaluate_blend_chooses_weight_and_threshold_on_training_pairs(pairs):
    torch.manual_seed(0)
    model = ChangeDetector(encoder=S2MAE(img_size=64, in_chans=10, embed_dim=32, depth=1, num_heads=2,
                                         decoder_embed_dim=32, decoder_depth=1))  # untrained: a weak ranking
    alone = evaluate_change(model, pairs[:2], pairs[2:], eval_names=["third"], device="cpu")
    zero = evaluate_blend(model, pairs[:2], pairs[2:], eval_names=["third"], device="cpu", weights=(0.0,))
    assert zero["weight"] == 0.0 and zero["pooled"]["f1"] == pytest.approx(alone["pooled"]["f1"])  # logit: same order
    blend = evaluate_blend(model, pairs[:2], pairs[2:], eval_names=["third"], device="cpu")
    assert blend["weight"] > 0 and blend["threshold_from"] == "training pairs" and blend["chosen_on"] == "in-fit"
    assert blend["sigma"] in (0.0, 1.0, 2.0, 3.0)
    assert blend["sigma_f1"][str(blend["sigma"])] == max(blend["sigma_f1"].values())
    assert blend["alone"]["threshold"] == pytest.approx(alone["threshold"], abs=1e-6)  # weight 0 is the model alone
    assert blend["alone"]["pooled"] == pytest.approx(alone["pooled"]) and "0.0" in blend["train_f1"]
    assert blend["train_f1"][str(blend["weight"])] == max(blend["train_f1"].values())
    assert blend["pooled"]["f1"] > max(alone["pooled"]["f1"], 0.9)  # the CVA evidence finds the planted change
    for bad in ((), (-0.1,), (float("nan"),)):
        with pytest.raises(ValueError, match="weights must be finite and non-negative"):
            evaluate_blend(model, pairs[:2], pairs[2:], weights=bad, device="cpu")
        with pytest.raises(ValueError, match="sigmas must be finite and non-negative"):
            evaluate_blend(model, pairs[:2], pairs[2:], sigmas=bad, device="cpu")


def test_evaluate_blend_chooses_on_out_of_fold_maps_when_given(pairs):
    torch.manual_seed(0)
    model = ChangeDetector(encoder=S2MAE(img_size=64, in_chans=10, embed_dim=32, depth=1, num_heads=2,
                                         decoder_embed_dim=32, decoder_depth=1))
    # stand-ins for maps of models that never saw the pair: exactly the label (the model is right) ...
    right = [np.where(np.asarray(label) > 0, 0.9, 0.1) for _, _, label in pairs[:2]]
    trusted = evaluate_blend(model, pairs[:2], pairs[2:], device="cpu", train_probabilities=right, sigmas=(0.0,))
    assert trusted["chosen_on"] == "out-of-fold" and trusted["weight"] == 0.0  # CVA adds nothing to a perfect map
    # ... or no information at all: then only the CVA evidence scores on the training pairs
    flat = [np.full(np.shape(label), 0.5) for _, _, label in pairs[:2]]
    assert evaluate_blend(model, pairs[:2], pairs[2:], device="cpu", train_probabilities=flat)["weight"] > 0
    with pytest.raises(ValueError, match=r"one \(H, W\) map per training pair"):
        evaluate_blend(model, pairs[:2], pairs[2:], device="cpu", train_probabilities=[p.ravel() for p in right])


def test_change_task_trains_on_the_normalised_pairs(pairs):
    model = ChangeDetector(encoder=S2MAE(img_size=64, in_chans=10, embed_dim=32, depth=1, num_heads=2,
                                         decoder_embed_dim=32, decoder_depth=1))
    matched = [(b, match_radiometry(b, a, "quantiles"), y) for b, a, y in pairs]
    normalised, _ = change_task(model, pairs, batch_size=2, img_size=64, normalize="quantiles")
    by_hand, _ = change_task(model, matched, batch_size=2, img_size=64)
    plain, _ = change_task(model, pairs, batch_size=2, img_size=64)
    one, two, raw = (fn(0, torch.Generator().manual_seed(3)) for fn in (normalised, by_hand, plain))
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    assert not torch.equal(one[1], raw[1]) and torch.equal(one[0], raw[0])  # only the after date changes
    with pytest.raises(ValueError, match="unknown radiometric normalisation 'gamma'"):
        change_task(model, pairs, batch_size=2, img_size=64, normalize="gamma")
