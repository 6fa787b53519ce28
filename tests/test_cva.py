"""Tests for s2lab.cva: Otsu's threshold and change vector analysis on small tensors, skimage where installed,
real OSCD data."""

import numpy as np
import pytest
import torch

from s2lab.classification_metrics import binary_scores
from s2lab.cva import change_vector_analysis, otsu_threshold
from s2lab.settings import data_dir


def test_otsu_threshold_lands_between_the_modes():
    generator = torch.Generator().manual_seed(0)
    low = 0.2 + 0.05 * torch.randn(3000, generator=generator)
    high = 0.8 + 0.05 * torch.randn(1000, generator=generator)
    t = otsu_threshold(torch.cat([low, high]))
    assert 0.4 < t < 0.6
    assert float((low > t).float().mean()) < 0.01 and float((high > t).float().mean()) > 0.99
    assert otsu_threshold(np.array([np.nan, 0.3, 0.3])) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="finite"):
        otsu_threshold(np.array([np.nan]))


def test_otsu_threshold_matches_skimage():
    filters = pytest.importorskip("skimage.filters")
    values = np.random.default_rng(0).gamma(2.0, size=5000)
    assert otsu_threshold(values) == pytest.approx(filters.threshold_otsu(values))


def test_change_vector_analysis():
    generator = torch.Generator().manual_seed(0)
    before = torch.rand(4, 16, 16, generator=generator)
    after = before.clone()
    after[:, 4:8, 4:8] += 0.5  # a changed square
    magnitude = change_vector_analysis(before, after, normalize=False)
    assert magnitude.shape == (16, 16)
    assert torch.allclose(magnitude[4:8, 4:8], torch.full((4, 4), 1.0))  # sqrt(4 * 0.25)
    assert float(magnitude.sum()) == pytest.approx(16.0)
    brighter = 1.5 * before + 0.1  # same scene, other gain and offset: no change once standardised
    assert float(change_vector_analysis(before, brighter).abs().max()) < 1e-4
    assert float(change_vector_analysis(before, brighter, normalize=False).min()) > 0.1
    assert change_vector_analysis(before[None], after[None]).shape == (1, 16, 16)
    with pytest.raises(ValueError, match="shapes differ"):
        change_vector_analysis(before, after[:3])


@pytest.mark.skipif(data_dir("oscd") is None, reason="OSCD is not present (set S2LAB_DATA_DIR or S2LAB_OSCD_DIR)")
def test_change_vector_analysis_on_real_oscd_city():
    from s2lab.data.oscd import load_oscd_city

    pair = load_oscd_city("bercy")
    before, after = torch.as_tensor(pair.before.values), torch.as_tensor(pair.after.values)
    truth = torch.as_tensor(pair.label.values) == 1
    magnitude = change_vector_analysis(before, after)
    assert magnitude.shape == truth.shape
    assert float(magnitude[truth].mean()) > 2 * float(magnitude[~truth].mean())
    f1 = binary_scores(magnitude > otsu_threshold(magnitude), truth)["f1"]
    share = float(truth.float().mean())
    assert f1 > 2 * share / (1 + share)  # better than calling every pixel changed
