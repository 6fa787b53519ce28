"""What every diagram draws with: the group colours, a canvas, rounded boxes with text, labelled arrows."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; one colour per spectral group
GROUP_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
REMOVED = "#d9d9d9"  # a removed token
HIGHLIGHT = "#D55E00"


def positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def group_colour(g: int) -> str:
    return GROUP_COLOURS[g % len(GROUP_COLOURS)]


def tint(colour: str, amount: float) -> tuple[float, float, float]:
    """An opaque colour between white (amount 0) and ``colour`` (amount 1)."""
    return tuple(1 - amount * (1 - np.asarray(to_rgb(colour))))


def canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.set_axis_off()
    return fig, ax


def box(ax, x: float, y: float, w: float, h: float, text: str, colour: str = "#f2f2f2", size: float = 8,
         **text_kw) -> tuple[float, float, float, float]:
    """A rounded box with its centre text; returns (x, y, w, h)."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.6", fc=colour, ec="#333333",
                                lw=1.0, zorder=2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, zorder=3, **text_kw)
    return x, y, w, h


def arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str | None = None, colour="#333333",
           style: str = "-|>", size: float = 7, offset: tuple[float, float] = (0, 1.2), **kw) -> None:
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops={"arrowstyle": style, "color": colour, "lw": 1.2, "shrinkA": 0, "shrinkB": 0, **kw})
    if text:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], text, ha="center",
                va="bottom", fontsize=size, color=colour, zorder=3)
