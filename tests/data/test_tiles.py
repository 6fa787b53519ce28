"""data.tiles on the real embedded scene: tensors, tiles and back, unit scaling, standardisation."""

import numpy as np
import pytest
import torch

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.tiles import (
    S2_BAND_STATS,
    band_stats,
    random_tiles,
    scale_unit,
    standardize,
    tile,
    to_tensor,
    unscale_unit,
    unstandardize,
    untile,
)
from s2lab.sensors import S2_10BANDS, S2_13BANDS


@pytest.fixture(scope="module")
def scene():
    return open_embedded_scene(S2_13BANDS)


@pytest.fixture(scope="module")
def crop(scene):
    """(10, 150, 230) real reflectance: sizes no tile size used below divides."""
    return to_tensor(scene.sel(band=list(S2_10BANDS)).isel(y=slice(400, 550), x=slice(700, 930)))


def test_to_tensor(scene):
    sub = scene.isel(y=slice(0, 20), x=slice(0, 30))
    x = to_tensor(sub)
    assert x.shape == (13, 20, 30) and x.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), sub.values)
    x[0, 0, 0] = 99.0
    assert sub.values[0, 0, 0] != 99.0  # a copy, not a view of the scene
    assert to_tensor(sub.sel(band="B04")).shape == (1, 20, 30)
    with pytest.raises(ValueError, match=r"dims \(band, y, x\) or \(y, x\)"):
        to_tensor(sub.transpose("y", "x", "band"))


def test_tile_covers_every_pixel_and_round_trips(crop):
    tiles, origins = tile(crop, 64)
    # rows 0, 64 and 86 (flush with 150); columns 0, 64, 128 and 166 (flush with 230)
    assert tiles.shape == (12, 10, 64, 64) and origins.shape == (12, 2) and origins.dtype == torch.int64
    assert sorted(set(origins[:, 0].tolist())) == [0, 64, 86]
    assert sorted(set(origins[:, 1].tolist())) == [0, 64, 128, 166]
    r, c = origins[5].tolist()
    torch.testing.assert_close(tiles[5], crop[:, r : r + 64, c : c + 64])
    torch.testing.assert_close(untile(tiles, origins, crop.shape), crop)
    overlapping, o2 = tile(crop, 32, stride=20)
    assert len(overlapping) == len(set(map(tuple, o2.tolist())))
    torch.testing.assert_close(untile(overlapping, o2, crop.shape[-2:]), crop)


def test_untile_averages_overlaps():
    tiles = torch.stack([torch.full((1, 4, 4), 1.0), torch.full((1, 4, 4), 3.0)])  # (2, 1, 4, 4)
    origins = torch.tensor([[0, 0], [0, 2]])
    out = untile(tiles, origins, (5, 6))
    assert out.shape == (1, 5, 6)
    assert (out[0, :4, :2] == 1).all() and (out[0, :4, 2:4] == 2).all() and (out[0, :4, 4:] == 3).all()
    assert torch.isnan(out[0, 4]).all()  # no tile covers the last row
    assert (untile(tiles, origins, (5, 6), blend="max")[0, :4, 2:4] == 3).all()
    with pytest.raises(ValueError, match="unknown blend"):
        untile(tiles, origins, (5, 6), blend="median")
    with pytest.raises(ValueError, match="reach outside the 3 x 6 image"):
        untile(tiles, origins, (3, 6))


def test_tile_drops_nan_tiles(crop):
    x = crop.clone()
    x[3, 70, 100] = float("nan")  # inside exactly one 64 x 64 tile (rows 64-127, columns 64-127)
    full, _ = tile(x, 64, drop_nan=False)
    kept, origins = tile(x, 64)
    assert len(full) == 12 and len(kept) == 11
    assert [64, 64] not in origins.tolist()
    assert not torch.isnan(kept).any()
    rebuilt = untile(kept, origins, x.shape)
    assert torch.isnan(rebuilt[:, 64:86, 64:128]).all()  # only the dropped tile's own pixels are missing
    torch.testing.assert_close(rebuilt[:, :64], crop[:, :64])


def test_tile_validation(crop):
    with pytest.raises(ValueError, match=r"tile size 200 is larger than the image of 150 x 230 pixels"):
        tile(crop, 200)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        tile(crop, 32, stride=0)
    with pytest.raises(ValueError, match=r"expected a \(C, H, W\) image"):
        tile(crop[None], 32)
    with pytest.raises(ValueError, match="all 1 tiles"):
        tile(torch.full((1, 8, 8), float("nan")), 8)


def test_random_tiles_positions_and_generator(crop):
    H, W = crop.shape[-2:]
    rows = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W)
    cols = torch.arange(W, dtype=torch.float32)[None, :].expand(H, W)
    x = torch.cat([crop, rows[None], cols[None]])  # (12, H, W): two extra planes that spell the position
    batch = random_tiles(x, 16, 50, torch.Generator().manual_seed(0))
    assert batch.shape == (50, 12, 16, 16)
    r0, c0 = batch[:, 10, 0, 0].long(), batch[:, 11, 0, 0].long()
    offsets = torch.arange(16, dtype=torch.float32)
    torch.testing.assert_close(batch[:, 10, :, 0], r0[:, None].float() + offsets)
    torch.testing.assert_close(batch[:, 11, 0, :], c0[:, None].float() + offsets)
    for b in (0, 17, 49):
        torch.testing.assert_close(batch[b], x[:, r0[b] : r0[b] + 16, c0[b] : c0[b] + 16])
    assert r0.max() <= H - 16 and c0.max() <= W - 16 and len(set(r0.tolist())) > 10
    torch.testing.assert_close(random_tiles(x, 16, 50, torch.Generator().manual_seed(0)), batch)
    assert not torch.equal(random_tiles(x, 16, 50, torch.Generator().manual_seed(1)), batch)
    x[0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="holds 1 NaN"):
        random_tiles(x, 16, 4, torch.Generator())
    with pytest.raises(ValueError, match="count must be at least 1"):
        random_tiles(crop, 16, 0, torch.Generator())


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
