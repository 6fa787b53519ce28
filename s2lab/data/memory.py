"""The memory limit: work that would hold more than ``S2LAB_MEMORY_LIMIT_GIB`` (default 3 GiB) is refused, in one line.

A full Sentinel-2 tile is 10980 x 10980 pixels: 4.8 GB as 10 float32 bands, and reconstructing it in memory would
need several such images. Whole-image work (``s2lab.reconstruct``, ``s2lab.change``) therefore reads a lazily opened
raster a band of rows at a time (``s2lab.windows.image_rows``) and hands finished rows to a writer
(``s2lab.data.export.RowWriter``); its memory depends on the image's width, not its height. What would still not
fit is refused before it starts, naming the image's size and the limit (``check_fits``).
"""

from __future__ import annotations

import os

from s2lab.data.raster import RasterError

MEMORY_LIMIT_GIB = 3.0  # default of S2LAB_MEMORY_LIMIT_GIB
GIB = 2**30


def memory_limit() -> float:
    """The memory limit in bytes: ``S2LAB_MEMORY_LIMIT_GIB`` (a positive number) or ``MEMORY_LIMIT_GIB``."""
    text = os.environ.get("S2LAB_MEMORY_LIMIT_GIB", "")
    try:
        gib = float(text) if text else MEMORY_LIMIT_GIB
    except ValueError:
        gib = -1.0
    if not gib > 0:
        raise ValueError(f"S2LAB_MEMORY_LIMIT_GIB={text!r} is not a positive number of GiB "
                         f"(default {MEMORY_LIMIT_GIB})")
    return gib * GIB


def check_fits(need: float, image: str, what: str) -> None:
    """Refuse, in one line, work that needs ``need`` bytes, more than ``memory_limit()``.

    Args:
        need: the bytes the work would hold at once.
        image: the image's size as the user knows it, e.g. "10 x 100000 x 100000 px".
        what: the work, e.g. "reconstructing it in memory".
    """
    limit = memory_limit()
    if need > limit:
        raise RasterError(f"an image of {image} needs about {_bytes(need)} for {what}, over the memory limit of "
                          f"{_bytes(limit)} (S2LAB_MEMORY_LIMIT_GIB); use a smaller image or raise the limit")


def _bytes(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 2**20:.1f} MiB"


def size_text(shape) -> str:
    """(C, H, W) as "C x H x W px"."""
    return " x ".join(str(int(n)) for n in shape) + " px"
