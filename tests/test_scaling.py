"""s2lab.scaling on the real embedded scene: unit scaling and back, the band statistics, standardisation."""

import numpy as np
import pytest
import torch

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.tiles import tile, to_tensor
from s2lab.scaling import S2_BAND_STATS, band_stats, scale_unit, standardize, unscale_unit, unstandardize
from s2lab.sensors import S2_10BANDS, S2_13BANDS


@pytest.fixture(scope="module")
def scene():
    return open_embedded_scene(S2_13BANDS)


@pytest.fixture(scope="module")
def crop(scene):
    """(10, 150, 230) real reflectance."""
    return to_tensor(scene.sel(band=list(S2_10BANDS)).isel(y=slice(400, 550), x=slice(700, 930)))


def test_scale_unit_round_trip(crop):
    x, _ = tile(crop, 64)  # (12, 10, 64, 64)
    x[0, 2] = 0.25  # a constant band
    x01, lo, hi = scale_unit(x)
    assert x01.shape == x.shape and lo.shape == hi.shape == (12, 10, 1, 1)
    flat = x01.flatten(2)
    torch.testing.assert_close(flat.amin(-1)[1:], torch.zeros(11, 10))
    torch.testing.assert_close(flat.amax(-1)[1:], torch.ones(11, 10))
    assert (x01[0, 2] == 0).all()
    torch.testing.assert_close(lo[:, :, 0, 0], x.flatten(2).amin(-1))
    torch.testing.assert_close(unscale_unit(x01, lo, hi), x, atol=1e-6, rtol=1e-5)
    x[1, 1, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="holds 1 NaN"):
        scale_unit(x)
    with pytest.raises(ValueError, match=r"expected an image batch \(B, C, H, W\)"):
        scale_unit(crop)


def test_band_stats_are_the_embedded_scenes(scene):
    values = scene.values.reshape(13, -1)
    for i, name in enumerate(S2_13BANDS):
        mean, std = S2_BAND_STATS[name]
        assert mean == pytest.approx(values[i].mean(dtype=np.float64), rel=1e-3, abs=1e-5)
        assert std == pytest.approx(values[i].std(dtype=np.float64), rel=1e-3, abs=1e-5)


def test_standardize(crop):
    x = crop[:, :32, :48]  # (10, 32, 48)
    mean, std = band_stats()
    z = standardize(x)
    torch.testing.assert_close(z, (x - mean[:, None, None]) / std[:, None, None])
    torch.testing.assert_close(unstandardize(z), x, atol=1e-6, rtol=1e-5)
    batch = x[None, :3]  # (1, 3, 32, 48)
    mean3, std3 = band_stats(["B02", "B03", "B04"])
    torch.testing.assert_close(mean3, mean[:3])
    torch.testing.assert_close(std3, std[:3])
    torch.testing.assert_close(standardize(batch, bands=["B02", "B03", "B04"]), z[None, :3])
    torch.testing.assert_close(standardize(batch, [0.0, 0.0, 0.0], [2.0, 2.0, 2.0]), batch / 2)
    with pytest.raises(ValueError, match=r"the image has 3 bands but mean has shape \(10,\)"):
        standardize(batch)
    with pytest.raises(ValueError, match="std must be positive"):
        standardize(batch, [0.0, 0.0, 0.0], [1.0, 0.0, 1.0])
