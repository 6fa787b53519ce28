"""Naive reconstructions: the removed tokens filled from the visible ones, with no learning at all.

A masked autoencoder earns its keep only where it beats these. Each baseline sees the visible tokens only, fills
the removed ones and returns the visible ones unchanged. They work in token space, on the layout of
``s2lab.tokenize`` (shapes from the glossary of ``docs/internals.md``):

    tokens (B, L, P), L = G * N, token l = g * N + n, n = row * w + col on the (h, w) token grid, N = h * w

- ``band_mean`` (``mean_of_visible``): the mean of the visible tokens of the same group; no spatial information.
- ``nearest`` (``nearest_visible``): a copy of the spatially nearest visible token of the same group.
- ``neighbourhood`` (``neighbourhood_mean``): the mean of the visible tokens of the same group among the 3 x 3
  tokens around it.

**Flat tokens.** Inside a token the values run band, then pixel (both tokenizers). Without ``patch_size`` a fill
is made value by value, so a copied or averaged token carries its sources' pixel texture to a place where it does
not belong. With ``patch_size=p`` every filled token is flat: each band the mean over the p x p pixels of its
sources, i.e. a spectrum. That is the stronger baseline on real images (texture is not where the sources put it)
and the one to report.

**Fallback.** A group with no visible token at all (``spectral`` masking removes whole groups) has nothing of its
own to copy: its removed tokens get one number per image, the mean over the groups that have visible tokens of
each group's mean visible value (0 when nothing at all is visible). Band padding (``valid`` False) comes back 0.

All share the signature ``fn(tokens, mask, G, grid_hw, valid, *, patch_size=None)`` (``BASELINES``);
``run_baselines`` runs them all. They are vectorised over tokens: the 3 x 3 neighbourhood is one pooling, and the
nearest visible token comes from scipy's exact Euclidean distance transform, one O(N) call per (image, group).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from s2lab.metrics import token_valid


def _check(
    tokens: torch.Tensor, mask: torch.Tensor, G: int, grid_hw: tuple[int, int] | None, patch_size: int | None
) -> tuple[int, int, int, int]:
    """Validate the shapes; return B, L, P and N."""
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
    if patch_size is not None and (patch_size < 1 or P % (patch_size * patch_size)):
        raise ValueError(f"tokens of {P} values are not whole bands of {patch_size} x {patch_size} pixels")
    return B, L, P, N


def _group_valid(valid: torch.Tensor | None, G: int, L: int, P: int, like: torch.Tensor) -> torch.Tensor:
    """(G, P) 0/1 weights in ``like``'s dtype from a (G, P) or (L, P) ``valid`` (one token per group read), or None."""
    return token_valid(valid, L, P, like.device).view(G, L // G, P)[:, 0].to(like.dtype)


def _paste(
    tokens: torch.Tensor,
    removed: torch.Tensor,
    fill: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    patch_size: int | None,
) -> torch.Tensor:
    """A copy of tokens (B, L, P) with each removed token (b, l) replaced by the row that ``fill`` gives.

    fill takes the (R,) batch and token indices of the R tokens where ``removed`` (B, L) is True and returns their
    (R, P) values; with ``patch_size`` each band of each row is flattened to its mean over the p x p pixels.
    """
    out = tokens.clone()
    bi, li = removed.nonzero(as_tuple=True)  # (R,), (R,)
    rows = fill(bi, li)  # (R, P)
    if patch_size is not None:
        pixels = patch_size * patch_size
        bands = rows.view(len(rows), rows.shape[1] // pixels, pixels).mean(-1, keepdim=True)  # (R, P / p^2, 1)
        rows = bands.expand(-1, -1, pixels).reshape(rows.shape)
    out[bi, li] = rows.to(tokens.dtype)
    return out


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
    B, L, P, N = _check(tokens, mask, G, grid_hw, patch_size)
    weight = _group_valid(valid, G, L, P, tokens)  # (G, P)
    removed = mask.bool()
    visible = (~removed).to(tokens.dtype).view(B * G, 1, N)
    total = torch.bmm(visible, tokens.reshape(B * G, N, P)).view(B, G, P) * weight  # (B, G, P) sums of visible
    seen = visible.view(B, G, N).sum(-1, keepdim=True)  # (B, G, 1) visible tokens per group
    group_mean = total.sum(-1) / (seen[..., 0] * weight.sum(-1)).clamp_min(1)  # (B, G) mean visible value
    has_visible = seen[..., 0] > 0  # (B, G)
    fallback = (group_mean * has_visible).sum(1) / has_visible.sum(1).clamp_min(1)  # (B,)
    mean = torch.where(has_visible[..., None], total / seen.clamp_min(1), fallback.view(B, 1, 1)) * weight
    return _paste(tokens, removed, lambda bi, li: mean[bi, li // N], patch_size)  # mean: (B, G, P)


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
    B, L, P, N = _check(tokens, mask, G, grid_hw, patch_size)
    weight = _group_valid(valid, G, L, P, tokens)  # (G, P)
    removed = mask.bool()
    visible = ~removed.view(B, G, *grid_hw)  # (B, G, h, w)
    source = _nearest_positions(visible)  # (B, G, N) spatial index of the token to copy
    source = (source + torch.arange(G, device=tokens.device).view(1, G, 1) * N).view(B, L)  # (B, L) token index
    has_visible = visible.flatten(2).any(-1).repeat_interleave(N, dim=1)  # (B, L): its group has a visible token
    out = _paste(
        tokens, removed & has_visible, lambda bi, li: tokens[bi, source[bi, li]] * weight[li // N], patch_size
    )
    if bool(has_visible.all()):
        return out
    fallback = mean_of_visible(tokens, mask, G, grid_hw, valid, patch_size=patch_size)
    return torch.where((removed & ~has_visible)[..., None], fallback, out)


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
    B, L, P, N = _check(tokens, mask, G, grid_hw, patch_size)
    h, w = grid_hw
    weight = _group_valid(valid, G, L, P, tokens)  # (G, P)
    removed = mask.bool()
    visible = (~removed).to(tokens.dtype).view(B * G, 1, h, w)
    x = (tokens.view(B * G, h, w, P) * visible.view(B * G, h, w, 1)).permute(0, 3, 1, 2)  # (B*G, P, h, w)
    total = F.avg_pool2d(x, 3, stride=1, padding=1, divisor_override=1)  # (B*G, P, h, w): sums over 3 x 3
    count = F.avg_pool2d(visible, 3, stride=1, padding=1, divisor_override=1)  # (B*G, 1, h, w)
    total = total.permute(0, 2, 3, 1).reshape(B, L, P)
    count = count.reshape(B, L)
    lonely = removed & (count == 0)  # (B, L): removed tokens with no visible neighbour
    out = _paste(
        tokens,
        removed & ~lonely,
        lambda bi, li: total[bi, li] / count[bi, li].unsqueeze(-1) * weight[li // N],
        patch_size,
    )
    if not bool(lonely.any()):
        return out
    fallback = nearest_visible(tokens, mask, G, grid_hw, valid, patch_size=patch_size)
    return torch.where(lonely[..., None], fallback, out)


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
