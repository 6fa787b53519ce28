"""The models, block by block: masked-autoencoder pretraining, FUS-MAE's fusion, the siamese change detector."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from s2lab.diagrams._draw import HIGHLIGHT, REMOVED, arrow, box, canvas, group_colour, positive
from s2lab.masking import Mask, random_masking
from s2lab.models.fusmae import FUSIONS, MODALITY_MASKING, FUSMAEConfig


def _draw_mask(G: int, N: int, ratio: float, mask: Mask | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if mask is None:
        mask = random_masking(1, G, N, ratio, generator=torch.Generator().manual_seed(seed))
    removed = np.asarray(mask.mask[0].detach().cpu(), dtype=bool)  # (L,)
    keep = np.asarray(mask.ids_keep[0].detach().cpu())  # (K,) in the order the encoder sees them
    if removed.shape != (G * N,):
        raise ValueError(f"the mask has {removed.size} tokens; G x N = {G} x {N} needs {G * N}")
    return removed, keep


def mae_diagram(G: int = 3, N: int = 4, ratio: float = 0.75, *, mask: Mask | None = None, seed: int = 0,
                depth: int | None = None, embed_dim: int | None = None, decoder_depth: int | None = None,
                decoder_embed_dim: int | None = None) -> Figure:
    """Masked-autoencoder pretraining, token by token, on a G x N grid (L = G N tokens, group-major).

    Rows, top to bottom: the L tokens with the removed ones grey; the K visible ones in ``ids_keep`` order into the
    encoder; the encoder's K outputs plus L - K copies of the mask token, put back in token order by ``ids_restore``;
    the decoder on all L; the loss on the removed tokens only.

    Args:
        G, N: spectral groups and spatial positions; L = G N must be at most 48 to be drawn token by token.
        ratio: the share of tokens removed, when ``mask`` is not given.
        mask: a drawn ``Mask`` (batch element 0 is drawn), e.g. from ``s2lab.masking``; default: ``random_masking``
            with a generator seeded by ``seed``.
        depth, embed_dim, decoder_depth, decoder_embed_dim: the model's sizes, printed on its boxes when given.
    """
    positive(G=G, N=N)
    L = G * N
    if L > 48:
        raise ValueError(f"L = G x N = {G} x {N} = {L} tokens are too many to draw one by one (at most 48)")
    removed, keep = _draw_mask(G, N, ratio, mask, seed)
    K = len(keep)
    size = 100 / (L + 2)  # one token's square
    fig, ax = canvas(10, 8.6, (-34, 102), (-6, 104))

    def tokens(y: float, columns, colours, labels, ink=None) -> None:
        for i, (x, colour) in enumerate(zip(columns, colours)):
            ax.add_patch(Rectangle((size * (x + 1), y), 0.85 * size, 0.85 * size, fc=colour, ec="#333333", lw=0.8))
            ax.text(size * (x + 1.425), y + 0.425 * size, labels[i], ha="center", va="center", fontsize=6,
                    color="black" if ink is None else ink[i])

    def row_label(y: float, text: str) -> None:
        ax.text(-1, y + 0.4 * size, text, ha="right", va="center", fontsize=8)

    group = np.arange(L) // N
    colour = [group_colour(g) for g in group]
    y = 92
    tokens(y, range(L), [REMOVED if r else c for r, c in zip(removed, colour)], [str(l) for l in range(L)])
    row_label(y, f"tokens l = g N + n\n(L = {L}, G = {G}, N = {N})")
    ax.text(50, y + size + 1, f"grey = removed: L - K = {L - K} tokens (ratio {1 - K / L:.2f}); kept K = {K}",
            ha="center", fontsize=8)
    y = 76
    tokens(y, range(K), [colour[i] for i in keep], [str(i) for i in keep])
    row_label(y, "encoder input:\nthe K kept (ids_keep)")
    arrow(ax, (50, 90), (50, y + size + 0.5))
    enc = f"encoder: {depth} blocks, width D = {embed_dim}" if depth and embed_dim else "encoder (transformer blocks)"
    box(ax, 0, 62, 100, 7, f"{enc}; runs on the K = {K} visible tokens only", "#cfe2f3", size=9)
    arrow(ax, (50, y - 0.5), (50, 69))
    y = 48
    tokens(y, range(L), ["#08306b"] * K + ["white"] * (L - K), [str(i) for i in keep] + ["M"] * (L - K),
           ["white"] * K + ["black"] * (L - K))
    row_label(y, f"K encoded + {L - K} mask\ntokens M appended")
    arrow(ax, (50, 62), (50, y + size + 0.5))
    y = 32
    restored = ["white" if r else "#08306b" for r in removed]
    tokens(y, range(L), restored, ["M" if r else str(l) for l, r in enumerate(removed)],
           ["black" if r else "white" for r in removed])
    row_label(y, "ids_restore: back in\ntoken order (+ positions)")
    arrow(ax, (50, 48 - 0.5), (50, y + size + 0.5))
    dec = (f"decoder: {decoder_depth} blocks, width {decoder_embed_dim}" if decoder_depth and decoder_embed_dim
           else "decoder (light)")
    box(ax, 0, 18, 100, 7, f"{dec}; runs on all L = {L} tokens, predicts every token's values", "#d9ead3", size=9)
    arrow(ax, (50, y - 0.5), (50, 25))
    y = 4
    tokens(y, range(L), [c if r else "white" for r, c in zip(removed, colour)], [str(l) for l in range(L)])
    for l in np.flatnonzero(removed):
        ax.add_patch(Rectangle((size * (l + 1) - 0.4, y - 0.4), 0.85 * size + 0.8, 0.85 * size + 0.8, fill=False,
                               ec=HIGHLIGHT, lw=1.6))
    row_label(y, "prediction of every token")
    arrow(ax, (50, 18), (50, y + size + 0.5))
    ax.text(50, -4.5, f"loss: mean squared error over the {L - K} removed tokens only (red); the {K} visible ones "
            "were seen, so predicting them would be copying", ha="center", fontsize=8, color=HIGHLIGHT)
    ax.set_title("Masked autoencoder: visible tokens -> encoder -> mask tokens inserted -> decoder -> loss on the "
                 "removed tokens", fontsize=9)
    return fig


def fusion_diagram(config: FUSMAEConfig | None = None) -> Figure:
    """FUS-MAE: Sentinel-2 and Sentinel-1 tokens on one grid, fused by cross-attention where ``config.fusion`` says.

    Args:
        config: the model's ``FUSMAEConfig`` (default: the defaults); its fusion, masking across modalities,
            patch and sizes are drawn.
    """
    config = config or FUSMAEConfig()
    if config.fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {config.fusion!r}; expected one of {', '.join(FUSIONS)}")
    if config.modality_masking not in MODALITY_MASKING:
        raise ValueError(f"unknown modality masking {config.modality_masking!r}; expected one of "
                         f"{', '.join(MODALITY_MASKING)}")
    p, s, C = config.patch_size, config.bands_per_token, config.in_chans
    G, N = -(-C // s), (config.img_size // p) ** 2
    early, feature = config.fusion in ("early", "both"), config.fusion in ("feature", "both")
    fig, ax = canvas(12, 4.6, (-1, 127), (-8, 46))
    cross = "#D55E00"
    rows = {"S2": 30, "S1": 4}
    for name, y in rows.items():
        optical = name == "S2"
        shape = f"({C}, H, W)" if optical else f"({config.s1_chans}, H, W)"
        box(ax, 0, y, 14, 9, f"Sentinel-{name[1]}\n{'optical' if optical else 'SAR VV, VH'}\n{shape}",
             "#cfe2f3" if optical else "#fde9d9", size=7)
        tok = (f"{G} x {N} cubes\n(s = {s}, p = {p})" if optical
               else f"1 x {N} tokens\n({config.s1_chans} bands, p = {p})")
        box(ax, 18, y, 15, 9, tok, size=7)
        box(ax, 37, y, 15, 9, f"patch embed\n+ position\n+ modality {name}", size=7)
        box(ax, 56, y, 11, 9, f"keep\nvisible\n(mask {name})", size=7)
        box(ax, 90, y, 17, 9, f"{name} decoder\n+ mask tokens\n{config.decoder_depth} blocks", "#d9ead3", size=7)
        box(ax, 111, y, 14, 9, f"{name} prediction\nMSE on the\nremoved {name} tokens", size=7)
        for a, b in ((14, 18), (33, 37), (52, 56), (107, 111)):
            arrow(ax, (a, y + 4.5), (b, y + 4.5))
        arrow(ax, (83, y + 4.5), (90, y + 4.5))
    box(ax, 71, 4, 12, 35, f"shared\nencoder\n{config.depth} blocks\nD = {config.embed_dim}\n\neach\nmodality\n"
         "on its own", "#cfe2f3", size=7)
    for y in rows.values():
        arrow(ax, (67, y + 4.5), (71, y + 4.5))
    if early:
        arrow(ax, (66, 30), (66, 13), style="<|-|>", colour=cross)
        ax.text(64.8, 21.5, "early fusion:\ncross-attention\nS2 <-> S1", ha="right", va="center", fontsize=7,
                color=cross)
    if feature:
        arrow(ax, (84, 30.5), (92, 13), colour=cross, connectionstyle="arc3,rad=0.1")
        arrow(ax, (84, 12.5), (92, 30), colour=cross, connectionstyle="arc3,rad=-0.1")
        ax.text(99, 21.5, "feature fusion: each decoder\ncross-attends to the other's\nencoded tokens",
                ha="center", va="center", fontsize=7, color=cross)
    ax.text(118, 21.5, "loss =\nS2 MSE\n+ S1 MSE", ha="center", va="center", fontsize=8)
    masks = ("consistent: the same positions removed in S1 and in every S2 group" if config.modality_masking ==
             "consistent" else "independent: each modality draws its own mask")
    ax.text(63, -5, f"masks {masks}", ha="center", fontsize=8)
    ax.set_title(f"FUS-MAE, fusion = {config.fusion!r}: Sentinel-2 and Sentinel-1 tokens on one {p} x {p} px grid",
                 fontsize=9)
    return fig


def change_diagram(C: int = 10, p: int = 8, D: int = 128, hidden: int = 32) -> Figure:
    """The siamese change detector (``ChangeDetector``): one encoder, one set of weights, run on both dates.

    Args:
        C: bands. p: patch side of the encoder's tokens (the feature map is p times coarser). D: encoder width.
        hidden: channels of the head.
    """
    positive(C=C, p=p, D=D, hidden=hidden)
    fig, ax = canvas(12, 4.6, (-8, 127), (-6, 44))
    box(ax, 0, 30, 13, 8, f"before\n({C}, H, W)", "#cfe2f3", size=7)
    box(ax, 0, 14, 13, 8, f"after\n({C}, H, W)", "#fde9d9", size=7)
    box(ax, 20, 14, 16, 24, "shared\nencoder\n(S2MAE,\nno masking)\n\none set of\nweights", "#cfe2f3", size=7)
    for y in (34, 18):
        arrow(ax, (13, y), (20, y))
    box(ax, 42, 30, 16, 8, f"f1 (D = {D},\nH/{p}, W/{p})", size=7)
    box(ax, 42, 14, 16, 8, f"f2 (D = {D},\nH/{p}, W/{p})", size=7)
    for y in (34, 18):
        arrow(ax, (36, y), (42, y))
    box(ax, 63, 20, 17, 12, f"|f1 - f2|, f1 + f2\n({2 * D}, H/{p}, W/{p})", size=7)
    arrow(ax, (58, 34), (63, 28))
    arrow(ax, (58, 18), (63, 24))
    box(ax, 84, 20, 17, 12, f"token head\n1x1 conv, 3x3 conv\n-> ({hidden}, H/{p}, W/{p})\nupsample x {p}", size=7)
    arrow(ax, (80, 26), (84, 26))
    box(ax, 42, -2, 38, 9, f"pixel head: scaled before, after, |before - after|\n({3 * C}, H, W) -> 3x3 conv "
         f"-> ({hidden}, H, W)", "#f2f2f2", size=7)
    ax.plot([0, -5, -5], [34, 34, 2.5], color="#333333", lw=1.2)  # before, round the left
    ax.plot([6.5, 6.5], [14, 2.5], color="#333333", lw=1.2)  # after, straight down
    arrow(ax, (-5, 2.5), (42, 2.5), "both dates", size=7, offset=(0, 0.3))
    arrow(ax, (80, 2.5), (105, 18), connectionstyle="arc3,rad=0.15")
    box(ax, 105, 14, 20, 18, f"fuse\nconcat ({2 * hidden}, H, W)\n3x3 conv, 1x1 conv\n\nchange logits (H, W)\n"
         "sigmoid -> probability", "#d9ead3", size=7)
    arrow(ax, (101, 26), (105, 26))
    arrow(ax, (80, 2.5), (105, 18), connectionstyle="arc3,rad=0.15")
    ax.set_title("Siamese change detector: the same encoder on both dates; the head decodes their feature difference, "
                 "sharpened by a pixel branch", fontsize=9)
    return fig
