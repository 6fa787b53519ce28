"""s2lab.radiometry: the after date's values mapped onto the before date's (per-band moments, or quantiles), on the
``pairs`` fixture (tests/conftest.py) and on random values."""

import pytest
import torch

from s2lab.radiometry import match_radiometry


def test_match_radiometry_undoes_a_global_map_and_keeps_shapes(pairs):
    before, after, _ = pairs[0]
    brighter = before * 1.7 + 0.02
    assert torch.allclose(match_radiometry(before, brighter), before, atol=1e-5)
    squared = before.clamp_min(0) ** 2  # monotone, not linear: only histogram matching undoes it
    assert torch.equal(match_radiometry(before, squared, "quantiles"), before)
    assert not torch.allclose(match_radiometry(before, squared, "moments"), before, atol=1e-3)
    assert match_radiometry(before[None], after[None], "quantiles").shape == (1, *before.shape)
    with pytest.raises(ValueError, match="same shape"):
        match_radiometry(before, after[:, :10])
    with pytest.raises(ValueError, match="unknown radiometric normalisation 'gamma'"):
        match_radiometry(before, after, "gamma")


def test_histogram_matching_gives_each_value_befores_value_of_the_same_rank():
    torch.manual_seed(0)
    before, after = torch.rand(2, 3, 17, 19), torch.rand(2, 3, 17, 19) * 2 + 0.3
    after[0, 1, 0, :5] = 0.5  # ties keep their order of position
    ranks = after.flatten(-2).argsort(dim=-1, stable=True).argsort(dim=-1)  # (B, C, H * W)
    expected = before.flatten(-2).sort(dim=-1).values.gather(-1, ranks).view(after.shape)
    assert torch.equal(match_radiometry(before, after, "quantiles"), expected)
    assert torch.equal(match_radiometry(before[1], after[1], "quantiles"), expected[1])  # (C, H, W) too
    order = [x.flatten(-2).argsort(dim=-1, stable=True) for x in (after, expected)]
    assert torch.equal(*order)  # the order of the values is kept: only the histogram changes
