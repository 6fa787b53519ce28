"""Positional embeddings: the sine-cosine tables, the three kinds, interpolation to a new grid."""

import pytest
import torch

from s2lab.pos_embed import SpatialSpectralEmbedding, interpolate_grid, sincos_1d, sincos_2d


def test_sincos_1d_matches_the_formula():
    table = sincos_1d(8, torch.tensor([0.0, 3.0]))
    omega = 1.0 / 10000 ** (torch.arange(4) / 4.0)
    assert torch.allclose(table[1], torch.cat([(3 * omega).sin(), (3 * omega).cos()]), atol=1e-6)
    assert torch.equal(table[0], torch.cat([torch.zeros(4), torch.ones(4)]))


def test_sincos_2d_rows_then_columns():
    table = sincos_2d(16, 3, 5)
    assert table.shape == (15, 16)
    assert torch.equal(table[7, :8], sincos_1d(8, torch.tensor([1.0]))[0])  # row 1
    assert torch.equal(table[7, 8:], sincos_1d(8, torch.tensor([2.0]))[0])  # column 2


@pytest.mark.parametrize("kind", ["learnable", "sincos"])
def test_table_is_group_major_spatial_then_spectral(kind):
    pe = SpatialSpectralEmbedding(kind=kind, dim=32, grid=(4, 4), groups=3)
    table = pe((4, 4))
    assert table.shape == (3 * 16, 32)
    assert torch.equal(table[16 + 5, :24], table[5, :24])  # same position, another group: same spatial part
    assert not torch.equal(table[16 + 5, 24:], table[5, 24:])  # different spectral part
    assert (len(list(pe.parameters())) == 2) == (kind == "learnable")


def test_wavelength_kind_takes_any_band_count_and_is_continuous():
    pe = SpatialSpectralEmbedding(kind="wavelength", dim=32, grid=(2, 2), groups=5)
    a = pe((2, 2), torch.tensor([490.0, 560.0, 665.0]))
    b = pe((2, 2), torch.linspace(400, 2400, 50))
    assert a.shape == (12, 32) and b.shape == (200, 32)
    near = pe((2, 2), torch.tensor([491.0]))[0, 24:]
    far = pe((2, 2), torch.tensor([1610.0]))[0, 24:]
    assert (near - a[0, 24:]).norm() < (far - a[0, 24:]).norm()
    with pytest.raises(ValueError, match="needs the mean wavelength"):
        pe((2, 2))


def test_interpolation_keeps_size_and_smoothness():
    table = sincos_2d(16, 4, 4)
    assert torch.equal(interpolate_grid(table, (4, 4), (4, 4)), table)
    bigger = interpolate_grid(table, (4, 4), (8, 8))
    assert bigger.shape == (64, 16)
    pe = SpatialSpectralEmbedding(kind="learnable", dim=16, grid=(4, 4), groups=2)
    assert pe((8, 8)).shape == (2 * 64, 16)


def test_bad_widths_and_kinds():
    with pytest.raises(ValueError, match="divisible by 8"):
        SpatialSpectralEmbedding(kind="sincos", dim=20, grid=(2, 2), groups=1)
    with pytest.raises(ValueError, match="expected one of learnable, sincos, wavelength"):
        SpatialSpectralEmbedding(kind="rope", dim=16, grid=(2, 2), groups=1)


def test_wavelength_embedding_puts_neighbouring_bands_nearest():
    from s2lab.sensors import S2_10BANDS, wavelengths

    pe = SpatialSpectralEmbedding(kind="wavelength", dim=64, grid=(1, 1), groups=1)
    table = pe((1, 1), torch.tensor(wavelengths(S2_10BANDS)))[:, 48:]  # (10, D_spec)
    distance = torch.cdist(table, table) + torch.eye(10) * 1e9
    nearest = distance.argmin(1)
    assert ((nearest - torch.arange(10)).abs() == 1).all(), nearest.tolist()
