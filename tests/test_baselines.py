"""Tests for s2lab.baselines: the pixel fills by hand, and every fill of ``fill_all`` under a per-band scaling."""

import pytest
import torch
from torch.nn import functional as F

from s2lab.baselines import FILL_NAMES, cross_band_fill, fill_all, gaussian_fill
from s2lab.masking import random_masking
from s2lab.tokenize import CubeTokenizer


# -- gaussian_fill and fill_all: pixels, not tokens ----------------------------------------------------------------
def test_gaussian_fill_by_hand_on_one_row():
    """One removed pixel between visible ones: the Gaussian weights of the visible pixels of its own band."""
    image = torch.tensor([[[[1.0, 2.0, 0.0, 4.0, 8.0]]]])  # (1, 1, 1, 5), the middle value removed
    mask = torch.tensor([[[[0.0, 0.0, 1.0, 0.0, 0.0]]]])
    weights = torch.exp(-0.5 * torch.tensor([2.0, 1.0, 1.0, 2.0]) ** 2)  # distances 2, 1, 1, 2 at sigma 1
    expected = (weights * torch.tensor([1.0, 2.0, 4.0, 8.0])).sum() / weights.sum()
    filled = gaussian_fill(image, mask, 1.0)
    assert filled[0, 0, 0, 2] == pytest.approx(float(expected), rel=1e-5)
    assert torch.equal(filled[mask == 0], image[mask == 0])


def test_gaussian_fill_uses_its_own_band_only_and_falls_back_to_the_band_mean():
    image = torch.stack([torch.full((6, 6), 0.2), torch.full((6, 6), 0.7)])[None]  # (1, 2, 6, 6)
    mask = torch.zeros_like(image)
    mask[0, 0, :3] = 1  # band 0: top half removed; band 1: all visible
    assert torch.allclose(gaussian_fill(image, mask, 1.5), image)  # flat bands: every fill is the band's value
    far = torch.zeros(1, 1, 40, 40)
    far[0, 0, 0, 0] = 1.0
    far_mask = torch.ones_like(far)
    far_mask[0, 0, 0, 0] = 0  # one visible pixel, far from most removed ones at sigma 1
    assert torch.allclose(gaussian_fill(far, far_mask, 1.0)[0, 0, 39, 39], torch.tensor(1.0))  # the band mean
    with pytest.raises(ValueError, match="sigma must be positive"):
        gaussian_fill(image, mask, 0.0)
    with pytest.raises(ValueError, match=r"one shape \(B, C, H, W\)"):
        gaussian_fill(image, mask[:, :1], 1.0)


def test_fill_all_commutes_with_a_per_band_affine_scaling():
    """Every fill averages visible values of one band, so filling a scaled image is scaling the filled image."""
    tokenizer = CubeTokenizer(patch_size=4, bands_per_token=2, in_chans=4)
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(2, 4, 16, 16, generator=generator)
    token_mask = random_masking(2, 2, 16, 0.75, generator=generator).mask  # (B, L), L = G * N = 2 * 16
    mask_img = tokenizer.unpatchify(token_mask[..., None].expand(-1, -1, tokenizer.P).contiguous(), 16, 16)
    a, b = torch.tensor([2.0, 0.5, 3.0, 1.0]).view(1, 4, 1, 1), torch.tensor([0.1, -0.2, 0.0, 0.3]).view(1, 4, 1, 1)
    plain, scaled = fill_all(image, mask_img, tokenizer), fill_all(a * image + b, mask_img, tokenizer)
    assert set(plain) == set(FILL_NAMES)
    for name in FILL_NAMES:
        assert torch.allclose(scaled[name], a * plain[name] + b, atol=1e-5), name


def test_cross_band_fill_borrows_the_texture_of_a_correlated_visible_band():
    """Band 0 = 2 x band 1 + 0.1: with each cell's true mean as the level, the fill recovers band 0's pixels exactly
    where band 1 is visible, and keeps the level where no band is."""
    torch.manual_seed(0)
    base = torch.rand(1, 1, 16, 16) * 0.3
    x = torch.cat([2 * base + 0.1, base, torch.rand(1, 1, 16, 16)], dim=1)  # (1, 3, 16, 16)
    mask = torch.zeros_like(x)
    mask[:, 0, :4, :4] = 1  # band 0 removed in one 4 x 4 cell, band 1 visible there
    mask[:, :, 8:12, 8:12] = 1  # every band removed in another cell
    level = F.interpolate(F.avg_pool2d(x, 4), scale_factor=4, mode="nearest")  # the true cell means
    filled = cross_band_fill(x, mask, level, patch_size=4)
    assert torch.allclose(filled[:, 0, :4, :4], x[:, 0, :4, :4], atol=1e-5)  # texture borrowed from band 1
    assert torch.equal(filled[:, :, 8:12, 8:12], level[:, :, 8:12, 8:12])  # nothing visible there: the level
    assert torch.equal(filled[mask == 0], x[mask == 0])
    with pytest.raises(ValueError, match="one shape"):
        cross_band_fill(x, mask[:, :2], level, patch_size=4)
