"""The masking strategies side by side: which of the G x N tokens each one removes, drawn from ``s2lab.masking``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from s2lab.diagrams._draw import REMOVED, group_colour, positive
from s2lab.masking import STRATEGIES, draw_mask

# what each strategy draws, in a few words: the panels' subtitles
_DRAWS = {"random": "each token on its own", "tube": "a position, in every group",
          "consistent": "a position, in every group", "independent": "each token on its own (SatMAE)",
          "balanced": "each group its own positions,\nthe same share in every group",
          "spectral": "whole groups (the last one partly)"}


def masking_strategies_diagram(G: int = 5, N: int = 16, ratio: float = 0.75, *, seed: int = 0,
                               strategies: Sequence[str] = ("random", "tube", "balanced", "spectral")) -> Figure:
    """One G x N token grid per strategy: a row per spectral group, a column per spatial position, removed tokens grey.

    Each mask is drawn by ``s2lab.masking.draw_mask`` with a generator seeded by ``seed``, so the picture is the
    library's own masks. Under each grid: the kept count K and how many of the N positions keep no group at all
    (there the model sees none of the pixel's bands).

    Args:
        G, N: spectral groups and spatial positions; L = G N tokens.
        ratio: the share of tokens removed.
        seed: the generator's seed, the same for every strategy.
        strategies: keys of ``s2lab.masking.STRATEGIES``, one panel each.
    """
    positive(G=G, N=N)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"unknown masking strategies {unknown}; expected some of {', '.join(STRATEGIES)}")
    fig = Figure(figsize=(2.9 * len(strategies), 0.3 * G + 1.3), layout="constrained")
    axes = fig.subplots(1, len(strategies), squeeze=False)[0]
    for ax, name in zip(axes, strategies):
        mask = draw_mask(name, 1, G, N, ratio, generator=torch.Generator().manual_seed(seed))
        removed = np.asarray(mask.mask[0].reshape(G, N).cpu(), dtype=bool)  # (G, N): token l = g N + n
        for g in range(G):
            for n in range(N):
                ax.add_patch(Rectangle((n, G - 1 - g), 0.9, 0.9, lw=0,
                                       fc=REMOVED if removed[g, n] else group_colour(g)))
        blind = int(removed.all(axis=0).sum())  # positions with every group removed
        ax.set(xlim=(-0.2, N), ylim=(-0.2, G), aspect="equal", xticks=[], yticks=[])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(f"{name}: {_DRAWS[name]}", fontsize=9)
        ax.set_xlabel(f"kept K = {int((~removed).sum())} of {G * N}; positions with\nno group kept: {blind} of {N}",
                      fontsize=8)
    axes[0].set_yticks([G - 1 - g + 0.45 for g in range(G)], [f"group {g}" for g in range(G)], fontsize=7)
    axes[0].tick_params(length=0)
    fig.suptitle(f"Which tokens go at ratio {ratio:.2f}: rows = spectral groups g, columns = positions n "
                 f"(L = G N = {G} x {N}); grey = removed", fontsize=9)
    return fig
