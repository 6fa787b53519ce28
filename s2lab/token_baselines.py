"""Naive reconstructions in token space: the removed tokens filled from the visible ones, with no learning at all.

Each baseline sees the visible tokens only, fills the removed ones and returns the visible ones unchanged. They work
on the layout of ``s2lab.tokenize`` (shapes from the glossary of ``docs/internals.md``); ``s2lab.baselines.fill_all``
runs them on images, beside the pixel fills:

    tokens (B, L, P), L = G * N, token l = g * N + n, n = row * w + col on the (h, w) token grid, N = h * w

- ``band_mean`` (``mean_of_visible``): the mean of the visible tokens of the same group; no spatial information.
- ``nearest`` (``nearest_visible``): a copy of the spatially nearest visible token of the same group.
- ``neighbourhood`` (``neighbourhood_mean``): the mean of the visible tokens of the same group among the 3 x 3
  tokens around it.

**Flat tokens.** Inside a token the values run band, then pixel (both tokenizers). Without ``patch_size`` a fill
is made value by value, so a copied or averaged token carries its sources' pixel texture to a place where it does
not belong. With ``patch_size=p`` every filled token is flat: each band the mean over the p x p pixels of its
sources, i.e. a spectrum. That is the stronger baseline on real images (texture is not where the sources put it)
and the one to report: on 36 tiles of 64 x 64 pixels of the embedded scene, [0, 1]-scaled, 8 x 8 x 2 cube tokens,
75% random masking, the masked-token MSE is about 0.030 / 0.025 / 0.023 (band_mean / nearest / neighbourhood)
flat, against 0.030 / 0.032 / 0.028 value by value.

**Fallback.** A group with no visible token at all (``spectral`` masking removes whole groups) has nothing of its
own to copy: its removed tokens get one number per image, the mean over the groups that have visible tokens of
each group's mean visible value (0 when nothing at all is visible). Band padding (``valid`` False) comes back 0.

All share the signature ``fn(tokens, mask, G, grid_hw, valid, *, patch_size=None)`` (``BASELINES``);
``run_baselines`` runs them all. They are vectorised over tokens: the 3 x 3 neighbourhood is one pooling, the
nearest visible token comes from scipy's exact Euclidean distance transform (one O(N) call per image and group),
and only the removed tokens are computed and written. Flat fills work on the (B, L, P / p^2) band means, p^2 times
less data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from s2lab.metrics import token_valid

Rows = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (R,) batch and token indices -> (R, V) fill values


class _Grid(NamedTuple):
    """The tokens as every baseline reads them."""

    values: torch.Tensor  # (B, L, V): the tokens (V = P), or with patch_size each band's pixel mean (V = P / p^2)
    removed: torch.Tensor  # (B, L) bool, True = removed
    weight: torch.Tensor | None  # (G, V) 1 on real bands, 0 on band padding; None when nothing is padding
    G: int  # spectral groups
    grid_hw: tuple[int, int] | None  # (h, w) token grid, h * w = N
    patch_size: int | None  # p when the fills are flat (per band), else None


def _prepare(
    tokens: torch.Tensor,
    mask: torch.Tensor,
    G: int,
    grid_hw: tuple[int, int] | None,
    valid: torch.Tensor | None,
    patch_size: int | None,
) -> _Grid:
    """Validate the shapes (raising ValueError with the sizes) and read the tokens into a ``_Grid``."""
    if tokens.ndim != 3:
        raise ValueError(f"expected tokens (B, L, P), got shape {tuple(tokens.shape)}")
    B, L, P = tokens.shape
    if tuple(mask.shape) != (B, L):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not fit tokens {tuple(tokens.shape)}: expected ({B}, {L})"
        )
    if G < 1 or L % G:
        raise ValueError(f"{L} tokens do not split into {G} spectral groups; expected L = G * N")
    N = L // G
    if grid_hw is not None and grid_hw[0] * grid_hw[1] != N:
        raise ValueError(
            f"token grid {grid_hw[0]} x {grid_hw[1]} holds {grid_hw[0] * grid_hw[1]} positions, "
            f"but {L} tokens in {G} groups have N = {N}"
        )
    real = token_valid(valid, L, P, tokens.device).view(G, N, P)[:, 0]  # (G, P) bool, one token per group read
    values = tokens
    if patch_size is not None:
        pixels = patch_size * patch_size
        if patch_size < 1 or P % pixels:
            raise ValueError(f"tokens of {P} values are not whole bands of {patch_size} x {patch_size} pixels")
        values = tokens.reshape(B, L, P // pixels, pixels).mean(-1)  # (B, L, V): each band's mean over its pixels
        real = real.view(G, P // pixels, pixels).any(-1)  # (G, V)
    weight = None if bool(real.all()) else real.to(values.dtype)
    return _Grid(values, mask.bool(), weight, G, grid_hw, patch_size)


def _paste(tokens: torch.Tensor, grid: _Grid, rows: Rows) -> torch.Tensor:
    """A copy of tokens (B, L, P) with every removed token replaced by its row of ``rows``, (V,) widened to (P,)."""
    out = tokens.clone(memory_format=torch.contiguous_format)
    bi, li = grid.removed.nonzero(as_tuple=True)  # (R,), (R,)
    fill = rows(bi, li).to(tokens.dtype)  # (R, V)
    if grid.patch_size is None:
        out[bi, li] = fill
    else:
        B, L, V = grid.values.shape
        out.view(B, L, V, -1)[bi, li] = fill[..., None]  # (R, V, p^2): each band flat over its pixels
    return out


def _real(fill: torch.Tensor, grid: _Grid, li: torch.Tensor) -> torch.Tensor:
    """fill (R, V) for tokens li (R,) with band padding zeroed."""
    N = grid.values.shape[1] // grid.G
    return fill if grid.weight is None else fill * grid.weight[li // N]


def _band_mean_rows(grid: _Grid) -> Rows:
    """The mean visible token of each group (the fallback value for a group without one)."""
    B, L, V = grid.values.shape
    G, N = grid.G, L // grid.G
    visible = (~grid.removed).to(grid.values.dtype).view(B * G, 1, N)
    total = torch.bmm(visible, grid.values.reshape(B * G, N, V)).view(B, G, V)  # (B, G, V) sums of visible
    if grid.weight is not None:
        total = total * grid.weight
    seen = visible.view(B, G, N).sum(-1)  # (B, G) visible tokens per group
    real = V if grid.weight is None else grid.weight.sum(-1)  # real values per token, per group
    group_mean = total.sum(-1) / (seen * real).clamp_min(1)  # (B, G) each group's mean visible value
    has_visible = seen > 0  # (B, G)
    fallback = (group_mean * has_visible).sum(1) / has_visible.sum(1).clamp_min(1)  # (B,)
    mean = torch.where(has_visible[..., None], total / seen.clamp_min(1)[..., None], fallback.view(B, 1, 1))
    return lambda bi, li: _real(mean[bi, li // N], grid, li)  # mean: (B, G, V)


def _nearest_positions(visible: torch.Tensor) -> torch.Tensor:
    """For every position of (B, G, h, w) bool grids, the flat index n of the nearest visible one: (B, G, h * w).

    Euclidean distance on the token grid, exact (scipy's distance transform); among equally near visible positions
    the transform's choice, fixed for a given grid. A visible position maps to itself; a grid without any visible
    position maps to itself too (the caller falls back).
    """
    B, G, h, w = visible.shape
    vis = visible.cpu().numpy()
    rows, cols = np.indices((h, w))
    nearest = np.broadcast_to(rows * w + cols, (B, G, h, w)).copy()  # (B, G, h, w)
    for b, g in np.ndindex(B, G):
        if vis[b, g].any() and not vis[b, g].all():
            iy, ix = ndimage.distance_transform_edt(~vis[b, g], return_distances=False, return_indices=True)
            nearest[b, g] = iy * w + ix
    return torch.from_numpy(nearest).to(visible.device).view(B, G, h * w)


def _nearest_rows(grid: _Grid) -> Rows:
    """The nearest visible token of the same group; the band mean fallback for a group without one."""
    B, L, _ = grid.values.shape
    G, N = grid.G, L // grid.G
    visible = ~grid.removed.reshape(B, G, *grid.grid_hw)  # (B, G, h, w)
    source = _nearest_positions(visible)  # (B, G, N) spatial index of the token to copy
    source = (source + torch.arange(G, device=source.device).view(1, G, 1) * N).view(B, L)  # (B, L) token index
    has_visible = visible.flatten(2).any(-1)  # (B, G)
    fallback = None if bool(has_visible.all()) else _band_mean_rows(grid)

    def rows(bi: torch.Tensor, li: torch.Tensor) -> torch.Tensor:
        fill = _real(grid.values[bi, source[bi, li]], grid, li)  # (R, V)
        if fallback is not None:
            empty = ~has_visible[bi, li // N]
            fill[empty] = fallback(bi[empty], li[empty])
        return fill

    return rows


def _neighbourhood_rows(grid: _Grid) -> Rows:
    """The mean visible token of the same group among the 3 x 3 around; the nearest one where there is none."""
    B, L, V = grid.values.shape
    G, (h, w) = grid.G, grid.grid_hw
    visible = (~grid.removed).to(grid.values.dtype).view(B * G, 1, h, w)
    x = (grid.values.reshape(B * G, h, w, V) * visible.view(B * G, h, w, 1)).permute(0, 3, 1, 2)  # (B*G, V, h, w)
    total = F.avg_pool2d(x, 3, stride=1, padding=1, divisor_override=1)  # (B*G, V, h, w): sums over 3 x 3
    count = F.avg_pool2d(visible, 3, stride=1, padding=1, divisor_override=1)  # (B*G, 1, h, w)
    total, count = total.permute(0, 2, 3, 1).reshape(B, L, V), count.reshape(B, L)

    def rows(bi: torch.Tensor, li: torch.Tensor) -> torch.Tensor:
        seen = count[bi, li]  # (R,) visible neighbours
        fill = _real(total[bi, li] / seen.clamp_min(1).unsqueeze(-1), grid, li)  # (R, V)
        lonely = seen == 0
        if bool(lonely.any()):
            fill[lonely] = _nearest_rows(grid)(bi[lonely], li[lonely])
        return fill

    return rows


def mean_of_visible(
    tokens: torch.Tensor,
    mask: torch.Tensor,
    G: int,
    grid_hw: tuple[int, int] | None = None,
    valid: torch.Tensor | None = None,
    *,
    patch_size: int | None = None,
) -> torch.Tensor:
    """Each removed token becomes the mean of the visible tokens of its group (the ``band_mean`` baseline).

    Args:
        tokens: (B, L, P) tokens, group-major.
        mask: (B, L), 1 = removed.
        G: spectral groups.
        grid_hw: (h, w) token grid, only checked against N here (the common signature).
        valid: (G, P) bool, False on band padding (or the model's (L, P), which repeats it); None when there is none.
        patch_size: p; given, each band of the fill is its mean over all p x p pixels of the group's visible
            tokens (the group's mean spectrum), otherwise the mean is taken value by value.

    Returns:
        (B, L, P): visible tokens unchanged, removed ones filled (see the module docstring for a group with no
        visible token).
    """
    grid = _prepare(tokens, mask, G, grid_hw, valid, patch_size)
    return _paste(tokens, grid, _band_mean_rows(grid))


def _check_grid(grid_hw: tuple[int, int] | None, name: str) -> None:
    if grid_hw is None:
        raise ValueError(f"{name} needs the token grid (h, w), got None")


def nearest_visible(
    tokens: torch.Tensor,
    mask: torch.Tensor,
    G: int,
    grid_hw: tuple[int, int],
    valid: torch.Tensor | None = None,
    *,
    patch_size: int | None = None,
) -> torch.Tensor:
    """Each removed token becomes a copy of the nearest visible token of its group (the ``nearest`` baseline).

    Nearest by Euclidean distance between token positions on the (h, w) grid; ties are broken deterministically
    (the same mask always picks the same token). Groups with no visible token fall back as ``mean_of_visible``.

    Args:
        tokens: (B, L, P). mask: (B, L), 1 = removed. G: spectral groups. grid_hw: (h, w), h * w = N.
        valid: (G, P) or (L, P) bool, False on band padding; None when there is none.
        patch_size: p; given, the copy is flattened to its per-band means (its spectrum).

    Returns:
        (B, L, P), visible tokens unchanged.
    """
    _check_grid(grid_hw, "nearest_visible")
    grid = _prepare(tokens, mask, G, grid_hw, valid, patch_size)
    return _paste(tokens, grid, _nearest_rows(grid))


def neighbourhood_mean(
    tokens: torch.Tensor,
    mask: torch.Tensor,
    G: int,
    grid_hw: tuple[int, int],
    valid: torch.Tensor | None = None,
    *,
    patch_size: int | None = None,
) -> torch.Tensor:
    """Each removed token becomes the mean of the visible tokens of its group among the 3 x 3 around it.

    Neighbours outside the grid do not count. A removed token with no visible neighbour falls back to
    ``nearest_visible`` (and that, for a group with no visible token, to ``mean_of_visible``).

    Args:
        tokens: (B, L, P). mask: (B, L), 1 = removed. G: spectral groups. grid_hw: (h, w), h * w = N.
        valid: (G, P) or (L, P) bool, False on band padding; None when there is none.
        patch_size: p; given, the mean is flattened to its per-band means (a spectrum).

    Returns:
        (B, L, P), visible tokens unchanged.
    """
    _check_grid(grid_hw, "neighbourhood_mean")
    grid = _prepare(tokens, mask, G, grid_hw, valid, patch_size)
    return _paste(tokens, grid, _neighbourhood_rows(grid))


Baseline = Callable[..., torch.Tensor]

BASELINES: dict[str, Baseline] = {
    "band_mean": mean_of_visible,
    "nearest": nearest_visible,
    "neighbourhood": neighbourhood_mean,
}


def run_baselines(
    tokens: torch.Tensor,
    mask: torch.Tensor,
    G: int,
    grid_hw: tuple[int, int],
    valid: torch.Tensor | None = None,
    *,
    patch_size: int | None = None,
) -> dict[str, torch.Tensor]:
    """Every baseline of ``BASELINES`` on the same tokens and mask.

    Args:
        tokens: (B, L, P). mask: (B, L), 1 = removed. G: spectral groups. grid_hw: (h, w), h * w = N.
        valid: (G, P) or (L, P) bool, False on band padding; None when there is none.
        patch_size: p, to fill flat tokens (per-band means; see the module docstring).

    Returns:
        ``{name: (B, L, P) predicted tokens}`` in the order of ``BASELINES``.
    """
    return {name: fn(tokens, mask, G, grid_hw, valid, patch_size=patch_size) for name, fn in BASELINES.items()}
