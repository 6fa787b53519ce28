"""Masking strategies: which tokens the encoder sees.

Every strategy is a pure function ``(batch, groups, spatial, ratio, *, generator) -> Mask`` over a token grid of
G spectral groups by N spatial positions (L = G * N tokens, group-major, as ``s2lab.tokenize`` lays them out).
Each keeps exactly K = round(L * (1 - ratio)) tokens; they differ only in how the random order is drawn:

- ``random``: S2MAE's random 3D masking, every token on its own.
- ``tube``: a spatial position is kept or removed in all groups at once (the tube masking of video MAEs).
  SatMAE calls this **consistent** masking; ``consistent`` is the same function.
- ``independent``: SatMAE's independent masking as its code draws it (``random_masking`` over all G * N group
  tokens at once): each group's positions are its own, and its share varies from image to image. With group tokens
  it is exactly S2MAE's ``random``; the two differ only in what a token is.
- ``balanced``: independent positions per group, every group keeping the same share (to within one token): the
  lab's earlier reading of "independent".
- ``spectral``: whole groups are kept or removed at once, at every spatial position.

When K is not a multiple of the structure (a whole tube or a whole group), the last one is split at random, so the
count is always exact. The vocabulary follows facebookresearch/mae: ``ids_keep`` (B, K) are the kept tokens in
the order the encoder sees them, ``ids_restore`` (B, L) undoes the shuffle, ``mask`` (B, L) is 1 where removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch


class Mask(NamedTuple):
    """A drawn mask. ids_keep (B, K) long, ids_restore (B, L) long, mask (B, L) float, 1 = removed."""

    ids_keep: torch.Tensor
    ids_restore: torch.Tensor
    mask: torch.Tensor


def num_kept(tokens: int, ratio: float) -> int:
    """K = round(L * (1 - ratio)), validated: ratio in [0, 1) and at least one token kept."""
    if not 0.0 <= float(ratio) < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    kept = round(tokens * (1.0 - float(ratio)))
    if kept < 1:
        raise ValueError(
            f"mask ratio {ratio} keeps no token of {tokens}; use a ratio below {1 - 0.5 / tokens:.3f} or more tokens"
        )
    return kept


def mask_from_order(order: torch.Tensor, kept: int) -> Mask:
    """Keep the ``kept`` tokens with the smallest ``order`` values. order: (B, L), distinct per row."""
    ids_shuffle = torch.argsort(order, dim=1)  # (B, L) ascending: kept first
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (B, L)
    mask = torch.ones_like(order, dtype=torch.float32)
    mask[:, :kept] = 0
    mask = torch.gather(mask, 1, ids_restore)  # (B, L) back in token order
    return Mask(ids_shuffle[:, :kept], ids_restore, mask)


def mask_from_removed(removed: torch.Tensor) -> Mask:
    """The ``Mask`` that removes exactly the tokens marked in ``removed`` (B, L) bool, True = removed; every row must
    remove as many tokens and keep at least one (the encoder takes K tokens from every image)."""
    removed = removed.bool()
    counts = (~removed).sum(dim=1)
    if removed.ndim != 2 or not torch.all(counts == counts[0]) or int(counts[0]) < 1:
        raise ValueError(f"every row of the mask must keep the same number of tokens, at least one; kept "
                         f"{counts.tolist()}")
    L = removed.shape[1]
    order = removed.float() + torch.arange(L, device=removed.device) / (2 * L)  # kept first, in token order
    return mask_from_order(order, int(counts[0]))


def random_ranks(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """A random permutation 0..n-1 along the last axis, independently for every leading index."""
    return torch.argsort(torch.rand(shape, generator=generator), dim=-1).argsort(dim=-1).float()


def random_masking(batch: int, groups: int, spatial: int, ratio: float, *, generator: torch.Generator) -> Mask:
    """S2MAE random 3D masking: every one of the L = G * N tokens drawn independently."""
    kept = num_kept(groups * spatial, ratio)
    return mask_from_order(torch.rand(batch, groups * spatial, generator=generator), kept)


def tube_masking(batch: int, groups: int, spatial: int, ratio: float, *, generator: torch.Generator) -> Mask:
    """Tube (SatMAE consistent) masking: a spatial position is kept in all G groups or removed in all."""
    kept = num_kept(groups * spatial, ratio)
    position = random_ranks((batch, 1, spatial), generator)  # (B, 1, N): which positions come first
    order = position + torch.rand(batch, groups, spatial, generator=generator)  # (B, G, N), ties split at random
    return mask_from_order(order.flatten(1), kept)


consistent_masking = tube_masking


def independent_masking(batch: int, groups: int, spatial: int, ratio: float, *, generator: torch.Generator) -> Mask:
    """SatMAE independent masking, as ``models_mae_group_channels.py`` draws it: uniform over all G * N tokens."""
    return random_masking(batch, groups, spatial, ratio, generator=generator)


def balanced_masking(batch: int, groups: int, spatial: int, ratio: float, *, generator: torch.Generator) -> Mask:
    """Balanced independent masking: each group keeps its own random positions, all groups the same share."""
    kept = num_kept(groups * spatial, ratio)
    within = random_ranks((batch, groups, spatial), generator)  # (B, G, N): each group's own order
    turn = torch.rand(batch, groups, 1, generator=generator)  # (B, G, 1): which group goes first in each round
    return mask_from_order((within + turn).flatten(1), kept)


def spectral_masking(batch: int, groups: int, spatial: int, ratio: float, *, generator: torch.Generator) -> Mask:
    """Spectral masking: a whole group is kept at every position or removed at every position."""
    kept = num_kept(groups * spatial, ratio)
    group = random_ranks((batch, groups), generator)[..., None]  # (B, G, 1): which groups come first
    order = group + torch.rand(batch, groups, spatial, generator=generator)  # (B, G, N)
    return mask_from_order(order.flatten(1), kept)


Strategy = Callable[..., Mask]

STRATEGIES: dict[str, Strategy] = {
    "random": random_masking,
    "tube": tube_masking,
    "consistent": consistent_masking,
    "independent": independent_masking,
    "balanced": balanced_masking,
    "spectral": spectral_masking,
}


def draw_mask(
    strategy: str, batch: int, groups: int, spatial: int, ratio: float, *, generator: torch.Generator
) -> Mask:
    """Draw a mask with the strategy named ``strategy`` (a key of ``STRATEGIES``)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown masking strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy](batch, groups, spatial, ratio, generator=generator)
