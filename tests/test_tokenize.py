"""Tokenization: exact round trips over band counts, patch sizes and bands per token, and the documented layout.

Property tests over random shapes: tokens are a pure rearrangement (every value once, padding exactly zero, at the
documented place), patchify commutes with pixelwise arithmetic and batch order, sizes that are no multiple of the
patch are refused with the sizes.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from s2lab.tokenize import (
    CubeTokenizer,
    GroupTokenizer,
    TokenEmbed,
    patchify,
    patchify_groups,
    unpatchify,
    unpatchify_groups,
)


@settings(max_examples=60, deadline=None)
@given(
    C=st.integers(1, 16),
    s=st.integers(1, 6),
    p=st.sampled_from([1, 2, 4, 8]),
    h=st.integers(1, 4),
    w=st.integers(1, 4),
    B=st.integers(1, 3),
)
def test_cube_round_trip_and_token_count(C, s, p, h, w, B):
    s = min(s, C)
    x = torch.randn(B, C, h * p, w * p)
    tokens = patchify(x, p, s)
    G = -(-C // s)
    assert tokens.shape == (B, G * h * w, s * p * p)
    assert torch.equal(unpatchify(tokens, p, s, C, h * p, w * p), x)


@settings(max_examples=40, deadline=None)
@given(C=st.integers(2, 12), p=st.sampled_from([2, 4]), seed=st.integers(0, 10_000))
def test_group_round_trip_for_any_partition(C, p, seed):
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(C, generator=g).tolist()
    cut = sorted(torch.randperm(C - 1, generator=g)[: min(2, C - 1)].add(1).tolist())
    groups = [order[a:b] for a, b in zip([0, *cut], [*cut, C]) if b > a]
    x = torch.randn(2, C, 2 * p, 3 * p)
    tokens = patchify_groups(x, p, groups)
    assert tokens.shape == (2, len(groups) * 6, max(map(len, groups)) * p * p)
    assert torch.equal(unpatchify_groups(tokens, p, groups, C, 2 * p, 3 * p), x)


def test_layout_is_group_major_band_row_column():
    x = torch.arange(3 * 4 * 4, dtype=torch.float32).view(1, 3, 4, 4)  # C=3, H=W=4
    tokens = patchify(x, 2, 2)  # G = 2 (bands 0-1, band 2 + one padding band), N = 4
    assert tokens.shape == (1, 8, 8)
    first = x[0, 0:2, 0:2, 0:2].flatten()  # group 0, top-left patch: band, row, column
    assert torch.equal(tokens[0, 0], first)
    assert torch.equal(tokens[0, 4 + 3, :4], x[0, 2, 2:4, 2:4].flatten())  # group 1, bottom-right
    assert torch.equal(tokens[0, 4 + 3, 4:], torch.zeros(4))  # padding band is zero


def test_valid_marks_padding():
    tok = CubeTokenizer(patch_size=2, bands_per_token=3, in_chans=10)  # G = 4, last group holds 1 band
    assert tok.G == 4 and tok.valid.shape == (4, 12)
    assert tok.valid[:3].all() and tok.valid[3].sum() == 4
    x = torch.randn(1, 10, 4, 4)
    tokens = tok.patchify(x)
    assert (tokens.view(1, 4, 4, 12)[:, 3, :, 4:] == 0).all()
    satmae = GroupTokenizer(patch_size=2, groups=((0, 1, 2, 6), (3, 4, 5, 7), (8, 9)), in_chans=10)
    assert satmae.valid.sum(1).tolist() == [16, 16, 8]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: patchify(torch.zeros(1, 3, 10, 8), 4, 1), "10 x 8 pixels is not divisible by patch size 4"),
        (lambda: patchify(torch.zeros(3, 8, 8), 4, 1), "(B, C, H, W)"),
        (lambda: patchify_groups(torch.zeros(1, 4, 8, 8), 4, [[0, 1], [1, 2, 3]]), "each band exactly once"),
        (lambda: unpatchify(torch.zeros(1, 5, 16), 4, 1, 1, 8, 8), "expected (B, 4, 16)"),
        (lambda: CubeTokenizer(patch_size=4, bands_per_token=11, in_chans=10), "between 1 and the 10 bands"),
    ],
)
def test_bad_shapes_name_the_sizes(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_shared_embedding_is_a_3d_convolution():
    C, s, p, D = 6, 2, 4, 8
    embed = TokenEmbed(tokens_dim=s * p * p, dim=D)
    conv = torch.nn.Conv3d(1, D, kernel_size=(s, p, p), stride=(s, p, p))
    with torch.no_grad():
        conv.weight.copy_(embed.weight.T.reshape(D, 1, s, p, p))
        conv.bias.copy_(embed.bias)
    x = torch.randn(2, C, 8, 12)
    by_conv = conv(x[:, None]).flatten(2).transpose(1, 2)  # (B, G*h*w, D), group-major
    assert torch.allclose(embed(patchify(x, p, s)), by_conv, atol=1e-5)


def test_group_embedding_uses_one_projection_per_group():
    embed = TokenEmbed(tokens_dim=4, dim=3, groups=2)
    tokens = torch.randn(1, 2 * 5, 4)
    out = embed(tokens)
    assert out.shape == (1, 10, 3)
    assert torch.allclose(out[0, 7], tokens[0, 7] @ embed.weight[1] + embed.bias[1, 0])


# -- properties over random shapes: tokens are a pure rearrangement, in the documented place ------------------------
@st.composite
def cube_images(draw):
    """(x (B, C, H, W), p, s) with H, W multiples of p and 1 <= s <= C."""
    C, p = draw(st.integers(1, 13)), draw(st.sampled_from([1, 2, 4, 8]))
    s = draw(st.integers(1, C))
    shape = (draw(st.integers(1, 3)), C, draw(st.integers(1, 3)) * p, draw(st.integers(1, 3)) * p)
    seed = draw(st.integers(0, 2**31))
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)), p, s


@settings(max_examples=60, deadline=None)
@given(case=cube_images(), probe=st.integers(0, 10**6))
def test_tokens_are_a_pure_rearrangement_in_the_documented_order(case, probe):
    x, p, s = case
    B, C, H, W = x.shape
    tokenizer = CubeTokenizer(patch_size=p, bands_per_token=s, in_chans=C)
    G, N = tokenizer.G, (H // p) * (W // p)
    tokens = patchify(x, p, s).view(B, G, N, s * p * p)  # (B, G, N, P)
    valid, by_position = tokenizer.valid, tokens.transpose(1, 2)  # (G, P), (B, N, G, P)
    assert (by_position[:, :, ~valid] == 0).all()  # padding bands hold exactly zero
    assert torch.equal(by_position[:, :, valid].flatten().sort().values, x.flatten().sort().values)  # each value once
    b, g, n = probe % B, probe // B % G, probe // (B * G) % N  # token l = g * N + n holds bands g*s ..
    row, col = divmod(n, W // p)
    cube = x[b, g * s : (g + 1) * s, row * p : (row + 1) * p, col * p : (col + 1) * p]  # (<= s, p, p)
    assert torch.equal(tokens[b, g, n, : cube.numel()], cube.flatten())  # band, row, column


@settings(max_examples=40, deadline=None)
@given(case=cube_images(), scale=st.floats(-4, 4, allow_nan=False), seed=st.integers(0, 1000))
def test_patchify_commutes_with_pixelwise_arithmetic_and_batch_order(case, scale, seed):
    x, p, s = case
    y = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(patchify(scale * x + y, p, s), scale * patchify(x, p, s) + patchify(y, p, s))
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    assert torch.equal(patchify(x[order], p, s), patchify(x, p, s)[order])


@settings(max_examples=40, deadline=None)
@given(C=st.integers(2, 13), p=st.sampled_from([2, 4]), seed=st.integers(0, 10**6))
def test_group_tokens_hold_their_groups_bands_in_order(C, p, seed):
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(C, generator=g).tolist()
    cuts = sorted(set(torch.randint(1, C, (3,), generator=g).tolist()))
    groups = [order[a:b] for a, b in zip([0, *cuts], [*cuts, C])]
    x = torch.randn(1, C, p, 2 * p, generator=g)  # N = 2
    tokens = patchify_groups(x, p, groups).view(1, len(groups), 2, -1)  # (1, G, N, c_max * p * p)
    for k, bands in enumerate(groups):
        expected = x[0, bands, :, p : 2 * p].flatten()  # the second spatial position, the group's bands in order
        assert torch.equal(tokens[0, k, 1, : expected.numel()], expected)
        assert (tokens[0, k, 1, expected.numel() :] == 0).all()


@settings(max_examples=40, deadline=None)
@given(p=st.integers(2, 8), H=st.integers(1, 40), W=st.integers(1, 40))
def test_sizes_not_divisible_by_the_patch_are_refused_with_the_sizes(p, H, W):
    x = torch.zeros(1, 3, H, W)
    if H % p == 0 and W % p == 0:
        assert patchify(x, p, 1).shape == (1, 3 * (H // p) * (W // p), p * p)
    else:
        with pytest.raises(ValueError, match=rf"{H} x {W} pixels is not divisible by patch size {p}"):
            patchify(x, p, 1)
