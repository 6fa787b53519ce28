"""data.tiles on the real embedded scene: tensors, tiles and back, the one window sum."""

import numpy as np
import pytest
import torch

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.tiles import TileSum, random_tiles, tile, to_tensor, untile
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


def test_random_tiles_from_several_images_every_pixel_equally_likely(crop):
    """Windows over images of different sizes: each a real crop of one image, the images drawn by their area."""
    H, W = crop.shape[-2:]
    planes = []
    for n, (h, w) in enumerate([(H, W), (H // 2, W // 2)]):  # areas 4 : 1
        rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
        cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
        which = torch.full((h, w), float(n))
        planes.append(torch.cat([crop[:, :h, :w], rows[None], cols[None], which[None]]))  # (13, h, w)
    batch = random_tiles(planes, 16, 400, torch.Generator().manual_seed(0), check_nan=False)
    assert batch.shape == (400, 13, 16, 16)
    image = batch[:, 12, 0, 0].long()
    for b in range(0, 400, 37):
        r, c = int(batch[b, 10, 0, 0]), int(batch[b, 11, 0, 0])
        torch.testing.assert_close(batch[b], planes[image[b]][:, r:r + 16, c:c + 16])
    share = (image == 1).float().mean().item()
    assert 0.12 < share < 0.28, f"the small image (1/5 of the area) gave {share:.0%} of the windows"
    torch.testing.assert_close(random_tiles(planes, 16, 400, torch.Generator().manual_seed(0), check_nan=False), batch)
    planes[1][0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="image 1 holds 1 NaN"):
        random_tiles(planes, 16, 4, torch.Generator())
    random_tiles(planes, 16, 4, torch.Generator(), check_nan=False)  # the caller checked once: no scan
    with pytest.raises(ValueError, match="share their band count"):
        random_tiles([crop, crop[:3]], 16, 4, torch.Generator())
    with pytest.raises(ValueError, match="tile size 100 is larger"):
        random_tiles([crop, crop[:, :50, :50]], 100, 4, torch.Generator())


def test_tile_sum_a_band_of_rows_at_a_time_equals_all_at_once(crop):
    """Windows added row by row and taken a band of rows at a time: the same weighted mean as one sum, bounded."""
    size, stride = 32, 24
    tiles, origins = tile(crop, size, stride=stride)  # (B, 10, 32, 32)
    weight = torch.rand(size, size, generator=torch.Generator().manual_seed(0)) + 0.1  # (32, 32) one per window
    whole = TileSum(10, crop.shape[-1])
    whole.add(tiles, origins, weight=weight)
    expected = whole.mean(crop.shape[-2])
    torch.testing.assert_close(expected, crop)  # weights cancel where every window holds the same pixel values
    banded, rows, held = TileSum(10, crop.shape[-1]), [], []
    starts = sorted(set(origins[:, 0].tolist()))
    for i, r in enumerate(starts):
        banded.add(tiles[origins[:, 0] == r], origins[origins[:, 0] == r], weight=weight)
        held.append(banded.total.shape[1])
        rows.append(banded.mean(starts[i + 1] if i + 1 < len(starts) else crop.shape[-2]))
    torch.testing.assert_close(torch.cat(rows, dim=1), expected)
    assert max(held) <= size  # never more than one window's rows held at once
    with pytest.raises(ValueError, match="above the sums' first row"):
        banded.add(tiles[:1], torch.tensor([[0, 0]]))


def test_tile_sum_per_value_weights():
    """(b, C, s, s) weights: a weighted mean per value, NaN where a value got no weight."""
    sums = TileSum(2, 4, weight_channels=2)
    values = torch.stack([torch.full((2, 2, 2), 1.0), torch.full((2, 2, 2), 3.0)])  # (2, 2, 2, 2)
    weight = torch.ones(2, 2, 2, 2)
    weight[1, 1] = 0  # the second window says nothing about channel 1
    sums.add(values, torch.tensor([[0, 0], [0, 1]]), weight=weight)
    total, counts = sums.take(2)
    assert total.shape == (2, 2, 4) and counts.shape == (2, 2, 4)
    mean = total / counts
    torch.testing.assert_close(mean[0, 0], torch.tensor([1.0, 2.0, 3.0, float("nan")]), equal_nan=True)
    torch.testing.assert_close(mean[1, 0], torch.tensor([1.0, 1.0, float("nan"), float("nan")]), equal_nan=True)
    with pytest.raises(ValueError, match="weight_channels must be 1 or 2"):
        TileSum(2, 4, weight_channels=3)

