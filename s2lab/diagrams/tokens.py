"""How an image becomes tokens: S2MAE's p x p x s cubes and SatMAE's band groups, each drawn from its sizes."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

from s2lab.diagrams._draw import HIGHLIGHT, arrow, box, canvas, group_colour, positive, tint
from s2lab.sensors import S2_10BANDS, SATMAE_GROUPS, band_names, wavelengths


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
    positive(C=C, s=s, p=p, H=H, W=W)
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
    fig, ax = canvas(10, 5.2, (-0.35 * W, cube_x + scale * (p + ex * s * 2.2) + 0.45 * W),
                      (-0.5 * H, H + ey * depth + 0.3 * H))

    for g in reversed(range(G)):  # back to front: a slab nearer the viewer is drawn above the ones behind
        colour, z = group_colour(g), 1 + 0.01 * (G - g)
        z0 = start[g]
        for k in reversed(range(s)):
            c = g * s + k
            za, zb = z0 + k * unit, z0 + (k + 1) * unit
            pad = c >= C
            face = {"fc": "white" if pad else tint(colour, 0.55), "ec": "#333333", "lw": 0.4,
                    "hatch": "////" if pad else None, "zorder": z}
            ax.add_patch(Polygon([at(0, H, za), at(W, H, za), at(W, H, zb), at(0, H, zb)], **face))  # top
            ax.add_patch(Polygon([at(W, 0, za), at(W, H, za), at(W, H, zb), at(W, 0, zb)], **face))  # side
        ax.add_patch(Polygon([at(0, 0, z0), at(W, 0, z0), at(W, H, z0), at(0, H, z0)], fc=tint(colour, 0.75),
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
                          (bx + ex * thick, by + side + ey * thick)], fc=group_colour(g0), alpha=0.55, ec=HIGHLIGHT))
    ax.add_patch(Polygon([(bx + side, by), (bx + side, by + side), (bx + side + ex * thick, by + side + ey * thick),
                          (bx + side + ex * thick, by + ey * thick)], fc=group_colour(g0), alpha=0.55, ec=HIGHLIGHT))
    ax.add_patch(Rectangle((bx, by), side, side, fc=group_colour(g0), alpha=0.75, ec=HIGHLIGHT, lw=2))
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
    positive(p=p, D=D)
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
    fig, ax = canvas(10, 0.42 * rows + 1.2, (0, 100), (-4, 4 * rows + 2))
    top = 4 * rows
    band_y = {}
    for i, b in enumerate(order):
        y = top - 4 * (i + 0.5) * rows / len(order)
        band_y[b] = y
        box(ax, 2, y - 1.5, 16, 3, f"{b}  {nm[b]:.0f} nm", group_colour(group_of[b]), size=7, color="white")
    ax.text(10, top + 1, "bands by wavelength", ha="center", fontsize=8)
    for g, members in enumerate(groups):
        y = top - 4 * rows * (g + 0.5) / G
        values = len(members) * p * p
        box(ax, 30, y - 3, 22, 6, f"group {g}: {' '.join(members)}\nc = {len(members)} bands, p x p patch\n"
             f"-> c p² = {values} values", group_colour(g), size=7, color="white")
        for b in members:
            arrow(ax, (18, band_y[b]), (30, y), colour=group_colour(g))
        box(ax, 58, y - 2.5, 18, 5, f"patch embedding {g}\nLinear({values} -> {D})", size=7)
        arrow(ax, (52, y), (58, y))
        box(ax, 82, y - 2.5, 16, 5, f"+ position n\n+ group embedding {g}", size=7)
        arrow(ax, (76, y), (82, y))
    ax.text(50, -2.5, f"G = {G} groups: L = G N tokens of width D = {D}. s2lab stores the groups in one tensor, "
            f"zero-padded to c = {c_max} bands (its layout, not SatMAE's)", ha="center", fontsize=7.5)
    ax.set_title(f"SatMAE: {G} band groups, one patch embedding each (p = {p})", fontsize=9)
    return fig
