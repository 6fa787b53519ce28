"""Tokens: an image cut into 3D cubes (S2MAE) or into 2D patches per band group (SatMAE), and back.

A **cube token** covers ``p x p`` pixels by ``s`` adjacent bands, so it keeps local spectral continuity
(S2MAE, SpectralGPT). A **group token** covers ``p x p`` pixels by all bands of one fixed band group
(SatMAE's groups). Both tokenizers give the same layout, so every model and masking strategy can use either:

    image (B, C, H, W) -> tokens (B, L, P) with L = G * N, token l = g * N + n   (group-major)

where G is the number of spectral groups, N = (H / p) * (W / p) the spatial tokens and P the values per token.

Padding rule: H and W must be multiples of p (no spatial padding: crop or tile first). When C is not a
multiple of s, the band axis is padded with zero bands at the end up to G * s = ceil(C / s) * s; for band
groups of unequal size every group is padded with zeros up to the largest group. ``valid`` (G, P) marks the
real values, and ``unpatchify`` drops the padding, so ``unpatchify(patchify(x)) == x`` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn


def _check_image(x: torch.Tensor, p: int) -> tuple[int, int, int, int]:
    if x.ndim != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got a tensor of shape {tuple(x.shape)}")
    if p < 1:
        raise ValueError(f"patch size must be at least 1, got {p}")
    B, C, H, W = x.shape
    if H % p or W % p:
        raise ValueError(
            f"image of {H} x {W} pixels is not divisible by patch size {p}; "
            f"crop or tile it to a multiple of {p} (e.g. {H // p * p} x {W // p * p})"
        )
    return B, C, H, W


def patchify(x: torch.Tensor, p: int, s: int) -> torch.Tensor:
    """Cut images into cube tokens of p x p pixels by s adjacent bands.

    Args:
        x: (B, C, H, W) images, H and W multiples of p.
        p: patch size in pixels.
        s: bands per token; C is zero-padded at the end to a multiple of s.

    Returns:
        (B, L, s * p * p) tokens, L = ceil(C / s) * (H / p) * (W / p), group-major; inside a token the
        values run band, row, column.
    """
    C = _check_image(x, p)[1]
    if s < 1:
        raise ValueError(f"bands per token must be at least 1, got {s}")
    G = math.ceil(C / s)
    if G * s != C:
        x = nn.functional.pad(x, (0, 0, 0, 0, 0, G * s - C))  # (B, G*s, H, W)
    return rearrange(x, "b (g s) (h p1) (w p2) -> b (g h w) (s p1 p2)", s=s, p1=p, p2=p)


def unpatchify(tokens: torch.Tensor, p: int, s: int, C: int, H: int, W: int) -> torch.Tensor:
    """Inverse of ``patchify``: (B, L, s * p * p) -> (B, C, H, W), padding bands dropped."""
    G = math.ceil(C / s)
    expected = (G * (H // p) * (W // p), s * p * p)
    if tokens.ndim != 3 or tuple(tokens.shape[1:]) != expected:
        raise ValueError(
            f"tokens of shape {tuple(tokens.shape)} do not fit a {C}-band {H} x {W} image with p={p}, s={s}: "
            f"expected (B, {expected[0]}, {expected[1]})"
        )
    x = rearrange(tokens, "b (g h w) (s p1 p2) -> b (g s) (h p1) (w p2)", h=H // p, w=W // p, s=s, p1=p, p2=p)
    return x[:, :C]


def check_groups(groups: Sequence[Sequence[int]], C: int) -> tuple[tuple[int, ...], ...]:
    """Validate band groups: each band index in [0, C) appears exactly once."""
    groups = tuple(tuple(int(i) for i in g) for g in groups)
    flat = sorted(i for g in groups for i in g)
    if any(len(g) == 0 for g in groups) or flat != list(range(C)):
        raise ValueError(f"band groups {groups} must split the {C} bands 0..{C - 1}, each band exactly once")
    return groups


def patchify_groups(x: torch.Tensor, p: int, groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """Cut images into SatMAE group tokens: p x p pixels by all bands of one group.

    Args:
        x: (B, C, H, W) images.
        p: patch size in pixels.
        groups: band indices of each group, splitting 0..C-1 (e.g. ((0, 1, 2, 6), (3, 4, 5, 7), (8, 9))).

    Returns:
        (B, L, c_max * p * p) tokens, L = G * N, smaller groups zero-padded up to c_max bands.
    """
    B, C, H, W = _check_image(x, p)
    groups = check_groups(groups, C)
    c_max = max(len(g) for g in groups)
    stacked = x.new_zeros(B, len(groups), c_max, H, W)  # (B, G, c_max, H, W)
    for i, g in enumerate(groups):
        stacked[:, i, : len(g)] = x[:, list(g)]
    return rearrange(stacked, "b g c (h p1) (w p2) -> b (g h w) (c p1 p2)", p1=p, p2=p)


def unpatchify_groups(
    tokens: torch.Tensor, p: int, groups: Sequence[Sequence[int]], C: int, H: int, W: int
) -> torch.Tensor:
    """Inverse of ``patchify_groups``: (B, L, c_max * p * p) -> (B, C, H, W)."""
    groups = check_groups(groups, C)
    c_max = max(len(g) for g in groups)
    expected = (len(groups) * (H // p) * (W // p), c_max * p * p)
    if tokens.ndim != 3 or tuple(tokens.shape[1:]) != expected:
        raise ValueError(
            f"tokens of shape {tuple(tokens.shape)} do not fit a {C}-band {H} x {W} image in groups {groups} "
            f"with p={p}: expected (B, {expected[0]}, {expected[1]})"
        )
    stacked = rearrange(
        tokens, "b (g h w) (c p1 p2) -> b g c (h p1) (w p2)", g=len(groups), h=H // p, w=W // p, p1=p, p2=p
    )
    x = tokens.new_empty(tokens.shape[0], C, H, W)
    for i, g in enumerate(groups):
        x[:, list(g)] = stacked[:, i, : len(g)]
    return x


class CubeTokenizer:
    """S2MAE tokens: p x p pixels by s adjacent bands, for images of C bands.

    Attributes:
        G: spectral groups, ceil(C / s). P: values per token, s * p * p.
        valid: (G, P) bool, False where a value is band padding.
        bands_of_group: band indices each group covers (padding excluded).
    """

    def __init__(self, *, patch_size: int, bands_per_token: int, in_chans: int):
        if not 1 <= bands_per_token <= in_chans:
            raise ValueError(f"bands per token must be between 1 and the {in_chans} bands, got {bands_per_token}")
        self.p, self.s, self.C = patch_size, bands_per_token, in_chans
        self.G = math.ceil(in_chans / bands_per_token)
        self.P = bands_per_token * patch_size * patch_size
        band_index = torch.arange(self.G * self.s).view(self.G, self.s, 1).expand(-1, -1, patch_size**2)
        self.valid = (band_index < in_chans).reshape(self.G, self.P)  # (G, P)
        self.bands_of_group = tuple(
            tuple(range(g * self.s, min((g + 1) * self.s, in_chans))) for g in range(self.G)
        )

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, L, P)."""
        if x.shape[1] != self.C:
            raise ValueError(f"expected {self.C} bands, got an image with {x.shape[1]}")
        return patchify(x, self.p, self.s)

    def unpatchify(self, tokens: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """(B, L, P) -> (B, C, H, W)."""
        return unpatchify(tokens, self.p, self.s, self.C, H, W)


class GroupTokenizer:
    """SatMAE tokens: p x p pixels by all bands of one band group. Same attributes as ``CubeTokenizer``."""

    def __init__(self, *, patch_size: int, groups: Sequence[Sequence[int]], in_chans: int):
        self.groups = check_groups(groups, in_chans)
        self.p, self.C, self.G = patch_size, in_chans, len(self.groups)
        c_max = max(len(g) for g in self.groups)
        self.P = c_max * patch_size * patch_size
        self.valid = torch.stack(
            [(torch.arange(c_max) < len(g)).repeat_interleave(patch_size**2) for g in self.groups]
        )  # (G, P)
        self.bands_of_group = self.groups

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, L, P)."""
        return patchify_groups(x, self.p, self.groups)

    def unpatchify(self, tokens: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """(B, L, P) -> (B, C, H, W)."""
        return unpatchify_groups(tokens, self.p, self.groups, self.C, H, W)


class TokenEmbed(nn.Module):
    """Linear projection of tokens to width D, shared by all groups (S2MAE) or one per group (SatMAE).

    The shared form on cube tokens is S2MAE's 3D patch embedding: it equals
    ``nn.Conv3d(1, D, kernel_size=(s, p, p), stride=(s, p, p))`` on the (B, 1, C, H, W) image,
    written as a Linear on patchified tokens so that it works for any band count.

    Args:
        tokens_dim: P, values per token.
        dim: D, model width.
        groups: G when each group has its own projection (SatMAE), None for one shared projection.
    """

    def __init__(self, *, tokens_dim: int, dim: int, groups: int | None = None):
        super().__init__()
        self.groups = groups
        shape = (tokens_dim, dim) if groups is None else (groups, tokens_dim, dim)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(dim if groups is None else (groups, 1, dim)))
        for w in self.weight.view(-1, tokens_dim, dim):
            nn.init.xavier_uniform_(w)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, P) -> (B, L, D)."""
        if self.groups is None:
            return tokens @ self.weight + self.bias
        x = rearrange(tokens, "b (g n) p -> b g n p", g=self.groups)
        x = torch.einsum("bgnp,gpd->bgnd", x, self.weight) + self.bias  # (B, G, N, D)
        return rearrange(x, "b g n d -> b (g n) d")
