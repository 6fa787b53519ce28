"""Architecture diagrams drawn by code: each function returns a matplotlib ``Figure`` built from the sizes it is given.

- ``tokenization_diagram``: a (C, H, W) image cut into p x p x s cube tokens (S2MAE's 3D tokenization).
- ``satmae_groups_diagram``: SatMAE's band groups, each with its own patch embedding.
- ``mae_diagram``: masked-autoencoder pretraining on G x N tokens: visible tokens -> encoder -> mask tokens
  inserted -> decoder -> loss on the removed tokens only.
- ``fusion_diagram``: FUS-MAE, Sentinel-2 and Sentinel-1 tokens meeting by cross-attention (early, feature, both).
- ``change_diagram``: the siamese change detector (``s2lab.models.ChangeDetector``).

Every label states the numbers it was drawn with, so a diagram drawn from a model's config describes that model. The
figures are plain ``matplotlib.figure.Figure`` objects, not registered with pyplot: a notebook shows one by ending a
cell with it, once, and nothing else is drawn. matplotlib comes with the lab extra.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Polygon, Rectangle

from s2lab.masking import Mask, random_masking
from s2lab.models.fusmae import FUSIONS, MODALITY_MASKING, FUSMAEConfig
from s2lab.sensors import S2_10BANDS, SATMAE_GROUPS, band_names, wavelengths

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; one colour per spectral group
GROUP_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
REMOVED = "#d9d9d9"  # a removed token
HIGHLIGHT = "#D55E00"


def _positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _group_colour(g: int) -> str:
    return GROUP_COLOURS[g % len(GROUP_COLOURS)]


def _tint(colour: str, amount: float) -> tuple[float, float, float]:
    """An opaque colour between white (amount 0) and ``colour`` (amount 1)."""
    return tuple(1 - amount * (1 - np.asarray(to_rgb(colour))))


def _canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.set_axis_off()
    return fig, ax


def _box(ax, x: float, y: float, w: float, h: float, text: str, colour: str = "#f2f2f2", size: float = 8,
         **text_kw) -> tuple[float, float, float, float]:
    """A rounded box with its centre text; returns (x, y, w, h)."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.6", fc=colour, ec="#333333",
                                lw=1.0, zorder=2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, zorder=3, **text_kw)
    return x, y, w, h


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str | None = None, colour="#333333",
           style: str = "-|>", size: float = 7, offset: tuple[float, float] = (0, 1.2), **kw) -> None:
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops={"arrowstyle": style, "color": colour, "lw": 1.2, "shrinkA": 0, "shrinkB": 0, **kw})
    if text:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], text, ha="center",
                va="bottom", fontsize=size, color=colour, zorder=3)


def tokenization_diagram(C: int = 10, s: int = 2, p: int = 8, H: int = 32, W: int = 32,
                         bands: Sequence[str] | None = None, token: tuple[int, int, int] = (1, 1, 2)) -> Figure:
    """A (C, H, W) image as a stack of band slices, cut into p x p x s cubes: S2MAE's 3D tokens.

    The bands are grouped front to back into G = ceil(C / s) slabs of s bands (the last padded with zero bands when s
    does not divide C); each slab's face is cut into N = (H / p)(W / p) patches, so L = G * N tokens. One cube,
    ``token = (g, row, column)``, is outlined in the stack and drawn again, enlarged, with its sides.

    Args:
        C: bands. s: bands per token. p: patch side in pixels. H, W: image size in pixels, multiples of p.
        bands: the C band names, to label the groups (default: ``S2_10BANDS`` when C = 10, else band indices).
        token: (g, row, column) of the highlighted cube.
    """
    _positive(C=C, s=s, p=p, H=H, W=W)
    if s > C:
        raise ValueError(f"bands per token s = {s} must be between 1 and the C = {C} bands")
    if H % p or W % p:
        raise ValueError(f"image size H x W = {H} x {W} must be a multiple of the patch side p = {p}")
    if bands is None:
        bands = S2_10BANDS if C == len(S2_10BANDS) else tuple(f"band {c}" for c in range(C))
    if len(bands) != C:
        raise ValueError(f"{len(bands)} band names given for C = {C} bands")
    G, h, w = -(-C // s), H // p, W // p
    N, L = h * w, G * h * w
    g0, r0, c0 = token
    if not (0 <= g0 < G and 0 <= r0 < h and 0 <= c0 < w):
        raise ValueError(f"token (g, row, column) = {tuple(token)} is outside the G x h x w = {G} x {h} x {w} grid")

    unit = 0.9 * W / (G * s + 0.8 * (G - 1))  # depth of one band along the oblique axis
    gap = 0.8 * unit
    ex, ey = 0.55, 0.4  # the oblique axis (bands run away from the viewer, up and to the right)
    start = [g * (s * unit + gap) for g in range(G)]  # depth where slab g begins

    def at(x: float, y: float, z: float) -> tuple[float, float]:
        return x + ex * z, y + ey * z

    depth = start[-1] + s * unit
    right = W + ex * depth
    cube_x = right + 0.35 * W  # where the enlarged cube goes
    scale = 0.3 * W / p  # the enlarged cube is 0.3 W a side
    fig, ax = _canvas(10, 5.2, (-0.35 * W, cube_x + scale * (p + ex * s * 2.2) + 0.45 * W),
                      (-0.5 * H, H + ey * depth + 0.3 * H))

    for g in reversed(range(G)):  # back to front: a slab nearer the viewer is drawn above the ones behind
        colour, z = _group_colour(g), 1 + 0.01 * (G - g)
        z0 = start[g]
        for k in reversed(range(s)):
            c = g * s + k
            za, zb = z0 + k * unit, z0 + (k + 1) * unit
            pad = c >= C
            face = {"fc": "white" if pad else _tint(colour, 0.55), "ec": "#333333", "lw": 0.4,
                    "hatch": "////" if pad else None, "zorder": z}
            ax.add_patch(Polygon([at(0, H, za), at(W, H, za), at(W, H, zb), at(0, H, zb)], **face))  # top
            ax.add_patch(Polygon([at(W, 0, za), at(W, H, za), at(W, H, zb), at(W, 0, zb)], **face))  # side
        ax.add_patch(Polygon([at(0, 0, z0), at(W, 0, z0), at(W, H, z0), at(0, H, z0)], fc=_tint(colour, 0.75),
                             ec="#333333", lw=0.8, zorder=z))  # the slab's front face, its first band
        for k in range(1, w):
            ax.plot(*zip(at(k * p, 0, z0), at(k * p, H, z0), at(k * p, H, z0 + s * unit)), color="white", lw=0.6,
                    zorder=z + 0.005)
        for k in range(1, h):
            ax.plot(*zip(at(0, k * p, z0), at(W, k * p, z0), at(W, k * p, z0 + s * unit)), color="white", lw=0.6,
                    zorder=z + 0.005)
        members = [bands[c] for c in range(g * s, min(C, (g + 1) * s))]
        padded = (g + 1) * s - C
        label = f"g = {g}: " + " ".join(members) + (f" + {padded} zero band{'s' * (padded > 1)}" if padded > 0 else "")
        x, y = at(W, 0, z0 + s * unit / 2)
        ax.text(x + 0.3, y - 0.6, label, fontsize=7, rotation=-50, rotation_mode="anchor", ha="left", va="top",
                color=colour)

    # the highlighted cube, as a wireframe through the stack
    x0, x1, y1, y0 = c0 * p, (c0 + 1) * p, H - r0 * p, H - (r0 + 1) * p  # row 0 at the top
    za, zb = start[g0], start[g0] + s * unit
    corners = [(x, y) for x in (x0, x1) for y in (y0, y1)]
    for z in (za, zb):
        ax.add_patch(Polygon([at(x0, y0, z), at(x1, y0, z), at(x1, y1, z), at(x0, y1, z)], fill=False,
                             ec=HIGHLIGHT, lw=2, zorder=5))
    for x, y in corners:
        ax.plot(*zip(at(x, y, za), at(x, y, zb)), color=HIGHLIGHT, lw=2, zorder=5)

    # the sides of the image
    ax.annotate("", xy=(W, -0.12 * H), xytext=(0, -0.12 * H), arrowprops={"arrowstyle": "<->", "lw": 0.8})
    ax.text(W / 2, -0.15 * H, f"W = {W} px", ha="center", va="top", fontsize=8)
    ax.annotate("", xy=(-0.08 * W, H), xytext=(-0.08 * W, 0), arrowprops={"arrowstyle": "<->", "lw": 0.8})
    ax.text(-0.11 * W, H / 2, f"H = {H} px", ha="right", va="center", fontsize=8, rotation=90)
    ax.annotate("", xy=at(0, H + 0.06 * H, depth), xytext=at(0, H + 0.06 * H, 0),
                arrowprops={"arrowstyle": "->", "lw": 0.8})
    x, y = at(0, H + 0.09 * H, depth / 2)
    ax.text(x, y, f"C = {C} bands", ha="right", va="bottom", fontsize=8, rotation=math.degrees(math.atan2(ey, ex)))

    # the token, enlarged
    n = r0 * w + c0
    l = g0 * N + n
    side, thick = scale * p, scale * s * 2.2
    bx, by = cube_x, 0.15 * H
    ax.add_patch(Polygon([(bx, by + side), (bx + side, by + side), (bx + side + ex * thick, by + side + ey * thick),
                          (bx + ex * thick, by + side + ey * thick)], fc=_group_colour(g0), alpha=0.55, ec=HIGHLIGHT))
    ax.add_patch(Polygon([(bx + side, by), (bx + side, by + side), (bx + side + ex * thick, by + side + ey * thick),
                          (bx + side + ex * thick, by + ey * thick)], fc=_group_colour(g0), alpha=0.55, ec=HIGHLIGHT))
    ax.add_patch(Rectangle((bx, by), side, side, fc=_group_colour(g0), alpha=0.75, ec=HIGHLIGHT, lw=2))
    ax.text(bx + side / 2, by - 0.03 * H, f"p = {p} px", ha="center", va="top", fontsize=8)
    ax.text(bx - 0.03 * W, by + side / 3, f"p = {p} px", ha="right", va="center", fontsize=8, rotation=90)
    ax.text(bx + side + ex * thick + 0.03 * W, by + side + ey * thick / 2, f"s = {s} bands", ha="left",
            va="center", fontsize=8)
    ax.text(bx, by + side + ey * thick + 0.06 * H,
            f"token l = g N + n = {g0} x {N} + {n} = {l}\n(g = {g0}, row {r0}, column {c0})\n"
            f"P = s p² = {s * p * p} values", ha="left", va="bottom", fontsize=8, color=HIGHLIGHT)
    ax.annotate("", xy=(bx - 0.02 * W, by + side), xytext=at(x1, (y0 + y1) / 2, zb),
                arrowprops={"arrowstyle": "->", "color": HIGHLIGHT, "lw": 1, "connectionstyle": "arc3,rad=-0.2"})
    ax.set_title(f"(C, H, W) = ({C}, {H}, {W}) cut into p x p x s = {p} x {p} x {s} cubes: G = ceil(C/s) = {G} "
                 f"groups x N = (H/p)(W/p) = {N} positions = L = {L} tokens", fontsize=9)
    return fig


def satmae_groups_diagram(groups: Sequence[Sequence[str]] = SATMAE_GROUPS, p: int = 8, D: int = 128) -> Figure:
    """SatMAE's band groups: bands in wavelength order, coloured by group; each group has its own patch embedding.

    Args:
        groups: G groups of band names (SatMAE's three by default); bands may sit anywhere in wavelength.
        p: patch side in pixels. D: the embedding width.
    """
    _positive(p=p, D=D)
    groups = [band_names(g) for g in groups]
    if not groups or any(not g for g in groups):
        raise ValueError(f"expected one or more non-empty band groups, got {groups}")
    every = [b for g in groups for b in g]
    if len(set(every)) != len(every):
        raise ValueError(f"a band is in more than one group: {groups}")
    nm = dict(zip(every, wavelengths(every)))
    order = sorted(every, key=nm.get)
    group_of = {b: i for i, g in enumerate(groups) for b in g}
    G, c_max = len(groups), max(len(g) for g in groups)
    rows = max(len(order), 3 * G)
    fig, ax = _canvas(10, 0.42 * rows + 1.2, (0, 100), (-4, 4 * rows + 2))
    top = 4 * rows
    band_y = {}
    for i, b in enumerate(order):
        y = top - 4 * (i + 0.5) * rows / len(order)
        band_y[b] = y
        _box(ax, 2, y - 1.5, 16, 3, f"{b}  {nm[b]:.0f} nm", _group_colour(group_of[b]), size=7, color="white")
    ax.text(10, top + 1, "bands by wavelength", ha="center", fontsize=8)
    for g, members in enumerate(groups):
        y = top - 4 * rows * (g + 0.5) / G
        values = len(members) * p * p
        _box(ax, 30, y - 3, 22, 6, f"group {g}: {' '.join(members)}\nc = {len(members)} bands, p x p patch\n"
             f"-> c p² = {values} values", _group_colour(g), size=7, color="white")
        for b in members:
            _arrow(ax, (18, band_y[b]), (30, y), colour=_group_colour(g))
        _box(ax, 58, y - 2.5, 18, 5, f"patch embedding {g}\nLinear({values} -> {D})", size=7)
        _arrow(ax, (52, y), (58, y))
        _box(ax, 82, y - 2.5, 16, 5, f"+ position n\n+ group embedding {g}", size=7)
        _arrow(ax, (76, y), (82, y))
    ax.text(50, -2.5, f"G = {G} groups: L = G N tokens of width D = {D}. s2lab stores the groups in one tensor, "
            f"zero-padded to c = {c_max} bands (its layout, not SatMAE's)", ha="center", fontsize=7.5)
    ax.set_title(f"SatMAE: {G} band groups, one patch embedding each (p = {p})", fontsize=9)
    return fig


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
    _positive(G=G, N=N)
    L = G * N
    if L > 48:
        raise ValueError(f"L = G x N = {G} x {N} = {L} tokens are too many to draw one by one (at most 48)")
    removed, keep = _draw_mask(G, N, ratio, mask, seed)
    K = len(keep)
    size = 100 / (L + 2)  # one token's square
    fig, ax = _canvas(10, 8.6, (-34, 102), (-6, 104))

    def tokens(y: float, columns, colours, labels, ink=None) -> None:
        for i, (x, colour) in enumerate(zip(columns, colours)):
            ax.add_patch(Rectangle((size * (x + 1), y), 0.85 * size, 0.85 * size, fc=colour, ec="#333333", lw=0.8))
            ax.text(size * (x + 1.425), y + 0.425 * size, labels[i], ha="center", va="center", fontsize=6,
                    color="black" if ink is None else ink[i])

    def row_label(y: float, text: str) -> None:
        ax.text(-1, y + 0.4 * size, text, ha="right", va="center", fontsize=8)

    group = np.arange(L) // N
    colour = [_group_colour(g) for g in group]
    y = 92
    tokens(y, range(L), [REMOVED if r else c for r, c in zip(removed, colour)], [str(l) for l in range(L)])
    row_label(y, f"tokens l = g N + n\n(L = {L}, G = {G}, N = {N})")
    ax.text(50, y + size + 1, f"grey = removed: L - K = {L - K} tokens (ratio {1 - K / L:.2f}); kept K = {K}",
            ha="center", fontsize=8)
    y = 76
    tokens(y, range(K), [colour[i] for i in keep], [str(i) for i in keep])
    row_label(y, "encoder input:\nthe K kept (ids_keep)")
    _arrow(ax, (50, 90), (50, y + size + 0.5))
    enc = f"encoder: {depth} blocks, width D = {embed_dim}" if depth and embed_dim else "encoder (transformer blocks)"
    _box(ax, 0, 62, 100, 7, f"{enc}; runs on the K = {K} visible tokens only", "#cfe2f3", size=9)
    _arrow(ax, (50, y - 0.5), (50, 69))
    y = 48
    tokens(y, range(L), ["#08306b"] * K + ["white"] * (L - K), [str(i) for i in keep] + ["M"] * (L - K),
           ["white"] * K + ["black"] * (L - K))
    row_label(y, f"K encoded + {L - K} mask\ntokens M appended")
    _arrow(ax, (50, 62), (50, y + size + 0.5))
    y = 32
    restored = ["white" if r else "#08306b" for r in removed]
    tokens(y, range(L), restored, ["M" if r else str(l) for l, r in enumerate(removed)],
           ["black" if r else "white" for r in removed])
    row_label(y, "ids_restore: back in\ntoken order (+ positions)")
    _arrow(ax, (50, 48 - 0.5), (50, y + size + 0.5))
    dec = (f"decoder: {decoder_depth} blocks, width {decoder_embed_dim}" if decoder_depth and decoder_embed_dim
           else "decoder (light)")
    _box(ax, 0, 18, 100, 7, f"{dec}; runs on all L = {L} tokens, predicts every token's values", "#d9ead3", size=9)
    _arrow(ax, (50, y - 0.5), (50, 25))
    y = 4
    tokens(y, range(L), [c if r else "white" for r, c in zip(removed, colour)], [str(l) for l in range(L)])
    for l in np.flatnonzero(removed):
        ax.add_patch(Rectangle((size * (l + 1) - 0.4, y - 0.4), 0.85 * size + 0.8, 0.85 * size + 0.8, fill=False,
                               ec=HIGHLIGHT, lw=1.6))
    row_label(y, "prediction of every token")
    _arrow(ax, (50, 18), (50, y + size + 0.5))
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
    fig, ax = _canvas(12, 4.6, (-1, 127), (-8, 46))
    cross = "#D55E00"
    rows = {"S2": 30, "S1": 4}
    for name, y in rows.items():
        optical = name == "S2"
        shape = f"({C}, H, W)" if optical else f"({config.s1_chans}, H, W)"
        _box(ax, 0, y, 14, 9, f"Sentinel-{name[1]}\n{'optical' if optical else 'SAR VV, VH'}\n{shape}",
             "#cfe2f3" if optical else "#fde9d9", size=7)
        tok = (f"{G} x {N} cubes\n(s = {s}, p = {p})" if optical
               else f"1 x {N} tokens\n({config.s1_chans} bands, p = {p})")
        _box(ax, 18, y, 15, 9, tok, size=7)
        _box(ax, 37, y, 15, 9, f"patch embed\n+ position\n+ modality {name}", size=7)
        _box(ax, 56, y, 11, 9, f"keep\nvisible\n(mask {name})", size=7)
        _box(ax, 90, y, 17, 9, f"{name} decoder\n+ mask tokens\n{config.decoder_depth} blocks", "#d9ead3", size=7)
        _box(ax, 111, y, 14, 9, f"{name} prediction\nMSE on the\nremoved {name} tokens", size=7)
        for a, b in ((14, 18), (33, 37), (52, 56), (107, 111)):
            _arrow(ax, (a, y + 4.5), (b, y + 4.5))
        _arrow(ax, (83, y + 4.5), (90, y + 4.5))
    _box(ax, 71, 4, 12, 35, f"shared\nencoder\n{config.depth} blocks\nD = {config.embed_dim}\n\neach\nmodality\n"
         "on its own", "#cfe2f3", size=7)
    for y in rows.values():
        _arrow(ax, (67, y + 4.5), (71, y + 4.5))
    if early:
        _arrow(ax, (66, 30), (66, 13), style="<|-|>", colour=cross)
        ax.text(64.8, 21.5, "early fusion:\ncross-attention\nS2 <-> S1", ha="right", va="center", fontsize=7,
                color=cross)
    if feature:
        _arrow(ax, (84, 30.5), (92, 13), colour=cross, connectionstyle="arc3,rad=0.1")
        _arrow(ax, (84, 12.5), (92, 30), colour=cross, connectionstyle="arc3,rad=-0.1")
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
    _positive(C=C, p=p, D=D, hidden=hidden)
    fig, ax = _canvas(12, 4.6, (-8, 127), (-6, 44))
    _box(ax, 0, 30, 13, 8, f"before\n({C}, H, W)", "#cfe2f3", size=7)
    _box(ax, 0, 14, 13, 8, f"after\n({C}, H, W)", "#fde9d9", size=7)
    _box(ax, 20, 14, 16, 24, "shared\nencoder\n(S2MAE,\nno masking)\n\none set of\nweights", "#cfe2f3", size=7)
    for y in (34, 18):
        _arrow(ax, (13, y), (20, y))
    _box(ax, 42, 30, 16, 8, f"f1 (D = {D},\nH/{p}, W/{p})", size=7)
    _box(ax, 42, 14, 16, 8, f"f2 (D = {D},\nH/{p}, W/{p})", size=7)
    for y in (34, 18):
        _arrow(ax, (36, y), (42, y))
    _box(ax, 63, 20, 17, 12, f"|f1 - f2|, f1 + f2\n({2 * D}, H/{p}, W/{p})", size=7)
    _arrow(ax, (58, 34), (63, 28))
    _arrow(ax, (58, 18), (63, 24))
    _box(ax, 84, 20, 17, 12, f"token head\n1x1 conv, 3x3 conv\n-> ({hidden}, H/{p}, W/{p})\nupsample x {p}", size=7)
    _arrow(ax, (80, 26), (84, 26))
    _box(ax, 42, -2, 38, 9, f"pixel head: scaled before, after, |before - after|\n({3 * C}, H, W) -> 3x3 conv "
         f"-> ({hidden}, H, W)", "#f2f2f2", size=7)
    ax.plot([0, -5, -5], [34, 34, 2.5], color="#333333", lw=1.2)  # before, round the left
    ax.plot([6.5, 6.5], [14, 2.5], color="#333333", lw=1.2)  # after, straight down
    _arrow(ax, (-5, 2.5), (42, 2.5), "both dates", size=7, offset=(0, 0.3))
    _arrow(ax, (80, 2.5), (105, 18), connectionstyle="arc3,rad=0.15")
    _box(ax, 105, 14, 20, 18, f"fuse\nconcat ({2 * hidden}, H, W)\n3x3 conv, 1x1 conv\n\nchange logits (H, W)\n"
         "sigmoid -> probability", "#d9ead3", size=7)
    _arrow(ax, (101, 26), (105, 26))
    _arrow(ax, (80, 2.5), (105, 18), connectionstyle="arc3,rad=0.15")
    ax.set_title("Siamese change detector: the same encoder on both dates; the head decodes their feature difference, "
                 "sharpened by a pixel branch", fontsize=9)
    return fig
