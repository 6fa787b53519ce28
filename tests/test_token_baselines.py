"""Tests for s2lab.token_baselines: small hand cases, the fallbacks, and real tiles of the embedded scene."""

import pytest
import torch

from s2lab.masking import random_masking, spectral_masking
from s2lab.metrics import masked_token_mse
from s2lab.token_baselines import BASELINES, mean_of_visible, nearest_visible, neighbourhood_mean, run_baselines
from s2lab.tokenize import CubeTokenizer


def _grid_tokens(values: torch.Tensor) -> torch.Tensor:
    """(G, h, w) numbers -> (1, G * h * w, 2) tokens, each holding its number twice."""
    return values.reshape(1, -1, 1).expand(-1, -1, 2).clone()


def _mask(removed: torch.Tensor) -> torch.Tensor:
    """(G, h, w) bool -> (1, L) float mask, 1 = removed."""
    return removed.reshape(1, -1).float()


@pytest.mark.parametrize("name", list(BASELINES))
def test_visible_tokens_unchanged_and_shapes(name):
    generator = torch.Generator().manual_seed(0)
    tokens = torch.rand(3, 2 * 20, 8, generator=generator)  # B = 3, G = 2, N = 4 x 5, P = 8
    mask = random_masking(3, 2, 20, 0.6, generator=generator).mask
    pred = BASELINES[name](tokens, mask, 2, (4, 5), None)
    assert pred.shape == tokens.shape and pred.dtype == tokens.dtype
    strided = tokens.transpose(1, 2).contiguous().transpose(1, 2)  # the same values, not contiguous
    assert torch.equal(BASELINES[name](strided, mask, 2, (4, 5), None, patch_size=2),
                       BASELINES[name](tokens, mask, 2, (4, 5), None, patch_size=2))
    visible = mask == 0
    assert torch.equal(pred[visible], tokens[visible])
    assert not torch.equal(pred[~visible], tokens[~visible])
    assert torch.isfinite(pred).all()


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("patch_size", [None, 2])
def test_constant_image_reconstructed_exactly(name, patch_size):
    tokenizer = CubeTokenizer(patch_size=2, bands_per_token=2, in_chans=3)  # band padding in the last group
    image = torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1, 1).expand(2, 3, 8, 6).contiguous()
    tokens = tokenizer.patchify(image)  # (2, 24, 8)
    mask = random_masking(2, tokenizer.G, 12, 0.75, generator=torch.Generator().manual_seed(1)).mask
    pred = BASELINES[name](tokens, mask, tokenizer.G, (4, 3), tokenizer.valid, patch_size=patch_size)
    assert torch.allclose(pred, tokens, atol=1e-6)


def test_nearest_visible_picks_the_nearest_token_of_the_same_group():
    values = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)  # G = 2 groups on a 3 x 4 grid
    removed = torch.ones(2, 3, 4, dtype=torch.bool)
    removed[0, 0, 0] = removed[0, 2, 3] = False  # group 0 sees its two corners
    removed[1, 1, 1] = False  # group 1 sees one token
    pred = nearest_visible(_grid_tokens(values), _mask(removed), 2, (3, 4))[0, :, 0].view(2, 3, 4)
    a, b = values[0, 0, 0], values[0, 2, 3]
    expected0 = torch.tensor([[a, a, a, b], [a, a, b, b], [a, b, b, b]])
    # (0, 2) is 2 from (0, 0) and sqrt(5) from (2, 3); (1, 1) is sqrt(2) from (0, 0) and sqrt(5) from (2, 3)
    assert torch.equal(pred[0], expected0)
    assert torch.equal(pred[1], torch.full((3, 4), float(values[1, 1, 1])))  # never group 0's tokens


def test_nearest_visible_ties_are_deterministic():
    values = torch.arange(9, dtype=torch.float32).view(1, 3, 3)
    removed = torch.ones(1, 3, 3, dtype=torch.bool)
    removed[0, 0, 1] = removed[0, 1, 0] = removed[0, 1, 2] = removed[0, 2, 1] = False  # four at distance 1
    picks = {float(nearest_visible(_grid_tokens(values), _mask(removed), 1, (3, 3))[0, 4, 0]) for _ in range(3)}
    assert len(picks) == 1 and picks <= {1.0, 3.0, 5.0, 7.0}


def test_neighbourhood_mean_by_hand():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])[None]  # G = 1, 3 x 3
    removed = torch.tensor([[True, False, True], [False, True, True], [True, True, False]])[None]
    pred = neighbourhood_mean(_grid_tokens(values), _mask(removed), 1, (3, 3))[0, :, 0].view(3, 3)
    expected = torch.tensor(
        [
            [(2 + 4) / 2, 2.0, 2.0],  # (0, 2): only 2 is a visible neighbour
            [4.0, (2 + 4 + 9) / 3, (2 + 9) / 2],
            [4.0, (4 + 9) / 2, 9.0],
        ]
    )
    assert torch.allclose(pred, expected)


def test_neighbourhood_mean_falls_back_to_nearest_visible():
    values = torch.arange(25, dtype=torch.float32).view(1, 5, 5)
    removed = torch.ones(1, 5, 5, dtype=torch.bool)
    removed[0, 0, 0] = False  # the only visible token; (4, 4) has no visible neighbour
    pred = neighbourhood_mean(_grid_tokens(values), _mask(removed), 1, (5, 5))
    assert torch.allclose(pred[0, :, 0], torch.zeros(25))


def test_mean_of_visible_by_hand_per_value_and_per_band():
    tokens = torch.tensor([[[1.0, 3.0, 10.0, 30.0], [5.0, 7.0, 50.0, 70.0], [0.0, 0.0, 0.0, 0.0]]])  # G = 1, P = 4
    mask = torch.tensor([[0.0, 0.0, 1.0]])
    per_value = mean_of_visible(tokens, mask, 1)[0, 2]
    assert per_value.tolist() == [3.0, 5.0, 30.0, 50.0]
    per_band = mean_of_visible(tokens, mask, 1, patch_size=1)[0, 2]  # p = 1: every value is its own band
    assert per_band.tolist() == [3.0, 5.0, 30.0, 50.0]
    flat = mean_of_visible(tokens, mask, 1, patch_size=2)[0, 2]  # p = 2: one band of 2 x 2 pixels
    assert flat.tolist() == [22.0] * 4  # (1 + 3 + 10 + 30 + 5 + 7 + 50 + 70) / 8


def test_fallback_when_a_group_is_fully_masked():
    tokenizer = CubeTokenizer(patch_size=2, bands_per_token=1, in_chans=3)  # G = 3, one band per group
    image = torch.tensor([0.2, 0.4, 0.9]).view(1, 3, 1, 1).expand(1, 3, 4, 4).contiguous()
    tokens = tokenizer.patchify(image)  # (1, 12, 4)
    removed = torch.zeros(3, 4, dtype=torch.bool)
    removed[2] = True  # group 2 has no visible token
    removed[0, 1] = True
    mask = removed.view(1, -1).float()
    for name, fn in BASELINES.items():
        pred = fn(tokens, mask, 3, (2, 2), tokenizer.valid)
        fallback = pred[0, 8:].view(-1)  # group 2
        assert torch.allclose(fallback, torch.full_like(fallback, (0.2 + 0.4) / 2)), name
        assert torch.allclose(pred[0, 1], tokens[0, 0]), name  # group 0 still uses its own tokens
    everything = torch.ones(1, 12)
    assert torch.equal(mean_of_visible(tokens, everything, 3), torch.zeros_like(tokens))


def test_spectral_masking_runs_on_every_baseline():
    generator = torch.Generator().manual_seed(0)
    tokens = torch.rand(2, 4 * 9, 6, generator=generator)
    mask = spectral_masking(2, 4, 9, 0.5, generator=generator).mask  # whole groups removed
    for pred in run_baselines(tokens, mask, 4, (3, 3)).values():
        assert torch.isfinite(pred).all() and torch.equal(pred[mask == 0], tokens[mask == 0])


def test_validation_names_the_sizes():
    tokens = torch.rand(1, 12, 4)
    with pytest.raises(ValueError, match="mask of shape"):
        nearest_visible(tokens, torch.zeros(1, 11), 3, (2, 2))
    with pytest.raises(ValueError, match="spectral groups"):
        nearest_visible(tokens, torch.zeros(1, 12), 5, (2, 2))
    with pytest.raises(ValueError, match="token grid 3 x 3"):
        neighbourhood_mean(tokens, torch.zeros(1, 12), 3, (3, 3))
    with pytest.raises(ValueError, match="whole bands"):
        mean_of_visible(tokens, torch.zeros(1, 12), 3, patch_size=3)


def test_neighbourhood_beats_band_mean_on_real_tiles():
    from s2lab.data.embedded import open_embedded_scene
    from s2lab.data.tiles import tile, to_tensor
    from s2lab.scaling import scale_unit

    scene = to_tensor(open_embedded_scene())  # (10, 1947, 1933) reflectance
    tiles, _ = tile(scene, 64, stride=384)  # (25, 10, 64, 64) crops spread over the scene
    x01, _, _ = scale_unit(tiles)
    tokenizer = CubeTokenizer(patch_size=8, bands_per_token=2, in_chans=10)  # the app's tokens: L = 320, P = 128
    tokens = tokenizer.patchify(x01)
    mask = random_masking(len(tokens), tokenizer.G, 64, 0.75, generator=torch.Generator().manual_seed(0)).mask
    preds = run_baselines(tokens, mask, tokenizer.G, (8, 8), tokenizer.valid, patch_size=8)
    mse = {name: masked_token_mse(pred, tokens, mask, tokenizer.valid) for name, pred in preds.items()}
    assert mse["neighbourhood"] < 0.9 * mse["band_mean"]  # spatial correlation is real
    assert mse["neighbourhood"] < mse["nearest"]  # and averaging neighbours beats copying one
    textured = neighbourhood_mean(tokens, mask, tokenizer.G, (8, 8), tokenizer.valid)  # value by value
    assert mse["neighbourhood"] < masked_token_mse(textured, tokens, mask, tokenizer.valid)  # flat tokens win


def test_nearest_visible_copies_a_token_at_the_smallest_distance():
    generator = torch.Generator().manual_seed(2)
    h, w = 7, 9
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for _ in range(5):
        mask = random_masking(1, 1, h * w, 0.9, generator=generator).mask  # (1, 63)
        tokens = torch.arange(h * w, dtype=torch.float32).view(1, -1, 1)  # each token holds its position n
        source = nearest_visible(tokens, mask, 1, (h, w))[0, :, 0].long()  # (N,) position copied
        kept = (mask[0] == 0).view(h, w)
        d2 = (rows.reshape(-1, 1, 1) - rows) ** 2 + (cols.reshape(-1, 1, 1) - cols) ** 2  # (N, h, w)
        nearest = d2.masked_fill(~kept, 10**6).flatten(1).amin(1)  # (N,) squared distance to the nearest kept
        chosen = (rows.flatten() - rows.flatten()[source]) ** 2 + (cols.flatten() - cols.flatten()[source]) ** 2
        assert torch.equal(chosen, nearest) and kept.flatten()[source].all()
