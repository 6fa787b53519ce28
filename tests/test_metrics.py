"""Tests for s2lab.metrics: reconstruction scores, hand-computed on small tensors."""

import math

import pytest
import torch

from s2lab import metrics
from s2lab.masking import random_masking
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
