"""Tests for s2lab.metrics: hand-computed values on small tensors, scikit-learn where installed, real OSCD data."""

import math

import numpy as np
import pytest
import torch

from s2lab import metrics
from s2lab.masking import random_masking
from s2lab.settings import data_dir
from s2lab.tokenize import CubeTokenizer


# -- reconstruction ----------------------------------------------------------------------------------------------
def test_psnr_of_known_mse():
    assert metrics.psnr(0.01) == pytest.approx(20.0)
    assert metrics.psnr(0.0001) == pytest.approx(40.0)
    assert metrics.psnr(0.04, peak=2.0) == pytest.approx(20.0)
    assert metrics.psnr(0.0) == math.inf
    out = metrics.psnr(torch.tensor([0.01, 0.001]))
    assert isinstance(out, torch.Tensor) and torch.allclose(out, torch.tensor([20.0, 30.0]))
    with pytest.raises(ValueError, match="negative"):
        metrics.psnr(-1.0)


def test_spectral_angle_parallel_orthogonal_opposite_and_zero():
    a = torch.tensor([[0.1, 0.2, 0.3], [1.0, 0.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    b = torch.tensor([[0.3, 0.6, 0.9], [0.0, 5.0, 0.0], [-1.0, -2.0, -0.5], [0.0, 0.0, 0.0], [0.2, 0.1, 0.0]])
    deg = torch.rad2deg(metrics.spectral_angle(a, b, dim=1))  # (5,)
    assert deg.shape == (5,)
    assert deg[0] == pytest.approx(0.0, abs=1e-4)  # parallel: exactly 0 with the atan2 form
    assert deg[1] == pytest.approx(90.0, abs=1e-4)
    assert deg[2] == pytest.approx(180.0, abs=1e-4)
    assert deg[3] == 0.0  # two zero spectra
    assert deg[4] == pytest.approx(90.0, abs=1e-4)  # zero vs non-zero, no NaN
    angle = metrics.spectral_angle(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]), dim=0)
    assert float(angle) == pytest.approx(math.pi / 4, abs=1e-6)


def test_spectral_angle_on_images_keeps_the_other_axes():
    x = torch.rand(2, 4, 3, 5) + 0.1
    angle = metrics.spectral_angle(x, 2 * x, dim=1)
    assert angle.shape == (2, 3, 5) and float(angle.abs().max()) < 1e-3


def test_masked_token_mse_by_hand_with_padding():
    pred = torch.zeros(1, 4, 3)
    target = torch.tensor([[[1.0, 1.0, 9.0], [2.0, 2.0, 9.0], [3.0, 0.0, 0.0], [4.0, 0.0, 0.0]]])
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    valid_g = torch.tensor([[True, True, False], [True, False, False]])  # (G=2, P=3); N = 2
    # token 0: values 1, 1 (the 9 is padding) -> 1; token 2: value 3 -> 9; mean over removed tokens: 5
    assert metrics.masked_token_mse(pred, target, mask, valid_g) == pytest.approx(5.0)
    valid_l = valid_g.repeat_interleave(2, dim=0)  # (L, P)
    assert metrics.masked_token_mse(pred, target, mask, valid_l) == pytest.approx(5.0)
    assert metrics.masked_psnr(pred, target, mask, valid_g, peak=5.0) == pytest.approx(10 * math.log10(5.0))
    # no padding: token 0 -> (1 + 1 + 81) / 3, token 2 -> 9 / 3
    assert metrics.masked_token_mse(pred, target, mask) == pytest.approx((83 / 3 + 3) / 2)
    with pytest.raises(ValueError, match="valid"):
        metrics.masked_token_mse(pred, target, mask, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        metrics.masked_token_mse(pred, target, mask[:, :3])


def test_masked_spectral_angle_by_hand():
    target = torch.ones(1, 2, 1, 3)  # three pixels with spectrum (1, 1)
    pred = torch.tensor([[[[1.0, 1.0, 5.0]], [[0.0, 7.0, 7.0]]]])
    mask = torch.tensor([[[[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]]]])  # only pixel 0 lost its bands
    # pixel 0: (1, 0) vs (1, 1) -> 45 degrees; pixels 1, 2 are visible and do not count
    assert metrics.masked_spectral_angle(pred, target, mask) == pytest.approx(45.0, abs=1e-4)
    half = torch.tensor([[[[1.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]]]])  # pixel 0: band 0 only; pixel 2: band 0 only
    # pasted: pixel 0 (1, 1) -> 0 deg; pixel 2 (5, 1) vs (1, 1) -> 45 - atan(1/5)
    expected = (0.0 + 45.0 - math.degrees(math.atan(0.2))) / 2
    assert metrics.masked_spectral_angle(pred, target, half) == pytest.approx(expected, abs=1e-4)
    assert metrics.masked_spectral_angle(pred, target, torch.zeros_like(mask)) == 0.0


def test_reconstruction_scores_match_token_mse_without_padding():
    tokenizer = CubeTokenizer(patch_size=4, bands_per_token=2, in_chans=4)
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 4, 8, 8, generator=generator)
    pred = torch.rand(2, 4, 8, 8, generator=generator)
    tokens_t, tokens_p = tokenizer.patchify(target), tokenizer.patchify(pred)  # (2, 8, 32)
    mask = random_masking(2, tokenizer.G, 4, 0.75, generator=generator).mask  # (2, 8)
    mask_img = tokenizer.unpatchify(mask[..., None].expand(-1, -1, tokenizer.P).contiguous(), 8, 8)
    scores = metrics.reconstruction_scores(pred, target, mask_img)
    assert set(scores) == {"mse", "psnr", "sam_deg"}
    assert scores["mse"] == pytest.approx(metrics.masked_token_mse(tokens_p, tokens_t, mask, tokenizer.valid))
    assert scores["psnr"] == pytest.approx(metrics.psnr(scores["mse"]))
    assert 0 < scores["sam_deg"] < 90
    assert metrics.reconstruction_scores(target, target, mask_img)["mse"] == 0.0
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        metrics.reconstruction_scores(pred[0], target[0], mask_img[0])


# -- binary maps -------------------------------------------------------------------------------------------------
def test_confusion_and_binary_scores_by_hand():
    pred = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
    truth = torch.tensor([[1, 0, 1, 0], [1, 1, 0, 0]])
    assert metrics.confusion(pred, truth) == {"tp": 2, "fp": 1, "fn": 2, "tn": 3}
    scores = metrics.binary_scores(pred.numpy().astype(bool), truth.numpy())
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert scores["iou"] == pytest.approx(2 / 5)
    assert scores["accuracy"] == pytest.approx(5 / 8)


def test_binary_scores_zero_division_and_bad_labels():
    none = torch.zeros(3, 3, dtype=torch.bool)
    scores = metrics.binary_scores(none, none)
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0, "accuracy": 1.0}
    assert metrics.binary_scores(none, none, zero_division=1.0)["f1"] == 1.0
    with pytest.raises(ValueError, match="labels == 2"):
        metrics.confusion(none, torch.full((3, 3), 2))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.confusion(none, none[:2])


def test_otsu_threshold_lands_between_the_modes():
    generator = torch.Generator().manual_seed(0)
    low = 0.2 + 0.05 * torch.randn(3000, generator=generator)
    high = 0.8 + 0.05 * torch.randn(1000, generator=generator)
    t = metrics.otsu_threshold(torch.cat([low, high]))
    assert 0.4 < t < 0.6
    assert float((low > t).float().mean()) < 0.01 and float((high > t).float().mean()) > 0.99
    assert metrics.otsu_threshold(np.array([np.nan, 0.3, 0.3])) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="finite"):
        metrics.otsu_threshold(np.array([np.nan]))


def test_otsu_threshold_matches_skimage():
    filters = pytest.importorskip("skimage.filters")
    values = np.random.default_rng(0).gamma(2.0, size=5000)
    assert metrics.otsu_threshold(values) == pytest.approx(filters.threshold_otsu(values))


def test_change_vector_analysis():
    generator = torch.Generator().manual_seed(0)
    before = torch.rand(4, 16, 16, generator=generator)
    after = before.clone()
    after[:, 4:8, 4:8] += 0.5  # a changed square
    magnitude = metrics.change_vector_analysis(before, after, normalize=False)
    assert magnitude.shape == (16, 16)
    assert torch.allclose(magnitude[4:8, 4:8], torch.full((4, 4), 1.0))  # sqrt(4 * 0.25)
    assert float(magnitude.sum()) == pytest.approx(16.0)
    brighter = 1.5 * before + 0.1  # same scene, other gain and offset: no change once standardised
    assert float(metrics.change_vector_analysis(before, brighter).abs().max()) < 1e-4
    assert float(metrics.change_vector_analysis(before, brighter, normalize=False).min()) > 0.1
    assert metrics.change_vector_analysis(before[None], after[None]).shape == (1, 16, 16)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.change_vector_analysis(before, after[:3])


@pytest.mark.skipif(data_dir("oscd") is None, reason="OSCD is not present (set S2LAB_DATA_DIR or S2LAB_OSCD_DIR)")
def test_change_vector_analysis_on_real_oscd_city():
    from s2lab.data.oscd import load_oscd_city

    pair = load_oscd_city("bercy")
    before, after = torch.as_tensor(pair.before.values), torch.as_tensor(pair.after.values)
    truth = torch.as_tensor(pair.label.values) == 1
    magnitude = metrics.change_vector_analysis(before, after)
    assert magnitude.shape == truth.shape
    assert float(magnitude[truth].mean()) > 2 * float(magnitude[~truth].mean())
    f1 = metrics.binary_scores(magnitude > metrics.otsu_threshold(magnitude), truth)["f1"]
    share = float(truth.float().mean())
    assert f1 > 2 * share / (1 + share)  # better than calling every pixel changed


# -- classification ----------------------------------------------------------------------------------------------
def test_accuracy_and_confusion_matrix_by_hand():
    truth = torch.tensor([0, 1, 2, 2, 1])
    pred = torch.tensor([0, 2, 2, 2, 1])
    assert metrics.accuracy(pred, truth) == pytest.approx(0.8)
    logits = torch.nn.functional.one_hot(pred, 3).float()  # (B, K) scores: argmax taken
    assert metrics.accuracy(logits, truth) == pytest.approx(0.8)
    cm = metrics.confusion_matrix(pred, truth, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 2]]  # rows truth, columns prediction
    with pytest.raises(ValueError, match=r"0\.\.2"):
        metrics.confusion_matrix(pred, torch.tensor([0, 1, 2, 3, 1]), 3)


def test_average_precision_by_hand():
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # ranks: hit, miss, hit, miss -> (R 1/2, P 1) + (R 1, P 2/3)
    assert metrics.average_precision(scores, torch.tensor([1, 0, 1, 0])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert metrics.average_precision(scores, torch.tensor([1, 1, 0, 0])) == pytest.approx(1.0)
    # tied scores enter together: one threshold holding 1 hit and 1 miss
    assert metrics.average_precision(torch.tensor([0.5, 0.5]), torch.tensor([1, 0])) == pytest.approx(0.5)
    assert metrics.average_precision(scores, torch.zeros(4)) == 0.0


def test_mean_average_precision_macro_vs_micro_by_hand():
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])  # (B=3, K=2)
    truth = torch.tensor([[1, 0], [0, 0], [0, 1]])
    per_class = metrics.mean_average_precision(scores, truth, average=None)
    assert per_class.tolist() == pytest.approx([1.0, 1.0])
    assert metrics.mean_average_precision(scores, truth) == pytest.approx(1.0)
    # micro ranks all six: 0.9 hit, 0.8 miss, 0.7 hit, ... -> 1/2 * 1 + 1/2 * 2/3
    assert metrics.mean_average_precision(scores, truth, average="micro") == pytest.approx(0.5 + 0.5 * 2 / 3)
    empty = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 1, 0]])  # class 2 has no positive: AP 0 unless skipped
    scores3 = torch.cat([scores, torch.rand(3, 1)], dim=1)
    assert metrics.mean_average_precision(scores3, empty) == pytest.approx(2 / 3)
    assert metrics.mean_average_precision(scores3, empty, skip_empty=True) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown average"):
        metrics.mean_average_precision(scores, truth, average="weighted")


def test_average_precision_matches_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for trial in range(20):
        truth = rng.random((40, 5)) < 0.3
        truth[0] = True  # every class has a positive (sklearn warns otherwise)
        scores = rng.integers(0, 4, (40, 5)).astype(float) if trial % 2 else rng.random((40, 5))  # ties, then none
        for average in ("macro", "micro", None):
            ours = metrics.mean_average_precision(torch.tensor(scores), torch.tensor(truth), average)
            assert np.allclose(np.asarray(ours), skm.average_precision_score(truth, scores, average=average))
