"""Window geometry, in one place: scenes to tensors, cutting windows and adding them back into an image.

A scene ``(band, y, x)`` becomes a ``(C, H, W)`` float32 tensor; ``tile`` cuts it into ``(B, C, size, size)``
windows (the last row and column of windows sit flush with the far edges, so every pixel is covered
whatever the stride) and ``untile`` puts them back, averaging where windows overlap. Whole-image reconstruction and
change maps (``s2lab.windows``) pad the image by reflection to a multiple of the window instead (``pad_reflect``),
lay windows out with ``window_origins`` and ``cut`` them batch by batch.

``TileSum`` is the one place where windows go back into an image: a running weighted sum of windows and of their
weights, over a band of image rows that can move down the image, so that a scene larger than memory is stitched a
band of rows at a time. ``untile``, reconstruction and change maps all add their windows to one.

Scaling for the models lives in ``s2lab.scaling`` (``scale_unit``, ``unscale_unit``, ``standardize``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from s2lab.scaling import check_finite

__all__ = ["TileSum", "cut", "pad_reflect", "pad_zero", "random_tiles", "tile", "to_tensor", "untile",
           "window_origins"]


def to_tensor(da: xr.DataArray | np.ndarray | torch.Tensor) -> torch.Tensor:
    """A (band, y, x) or (y, x) scene as a (C, H, W) float32 tensor (a copy; NaN kept).

    Args:
        da: DataArray with dims (band, y, x) or (y, x); a (C, H, W) numpy array or tensor also works.

    Returns:
        (C, H, W) float32 tensor, C = 1 for a (y, x) input.
    """
    if isinstance(da, xr.DataArray):
        if da.dims == ("y", "x"):
            da = da.expand_dims("band")
        if da.dims != ("band", "y", "x"):
            raise ValueError(f"expected a DataArray with dims (band, y, x) or (y, x), got {da.dims}")
        return torch.tensor(np.asarray(da.values), dtype=torch.float32)
    x = torch.as_tensor(da, dtype=torch.float32).clone()
    if x.ndim != 3:
        raise ValueError(f"expected a (C, H, W) image, got shape {tuple(x.shape)}")
    return x


def _as_image(x: xr.DataArray | torch.Tensor) -> torch.Tensor:
    x = to_tensor(x) if isinstance(x, xr.DataArray) else x
    if x.ndim != 3:
        raise ValueError(f"expected a (C, H, W) image, got shape {tuple(x.shape)}")
    return x


def _check_size(size: int, H: int, W: int) -> None:
    if size < 1:
        raise ValueError(f"tile size must be at least 1, got {size}")
    if size > H or size > W:
        raise ValueError(f"tile size {size} is larger than the image of {H} x {W} pixels; expected at most {min(H, W)}")


def _starts(n: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis: every ``stride`` pixels, plus one flush with the far edge if needed."""
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] + size < n:
        starts.append(n - size)
    return starts


def window_origins(H: int, W: int, size: int, stride: int) -> torch.Tensor:
    """(B, 2) int64 top-left (row, column) of the windows ``tile`` lays out on an H x W image, row by row."""
    grid = torch.cartesian_prod(torch.tensor(_starts(H, size, stride)), torch.tensor(_starts(W, size, stride)))
    return grid.reshape(-1, 2).to(torch.int64)


def _gather(x: torch.Tensor | Sequence[torch.Tensor], rows: torch.Tensor, cols: torch.Tensor, size: int,
            which: torch.Tensor | None = None) -> torch.Tensor:
    """Windows with top-left corners (rows, cols), each (B,) -> (B, C, size, size).

    ``x`` is one (C, H, W) image, or a sequence of them with ``which`` (B,) naming each window's image. Each window
    is a slice, stacked: a few times faster than one advanced-indexing gather over the image.
    """
    images = [x] if which is None else x
    which = [0] * len(rows) if which is None else which.tolist()
    return torch.stack([images[i][:, r:r + size, c:c + size]
                        for i, r, c in zip(which, rows.tolist(), cols.tolist())])


def tile(
    x: xr.DataArray | torch.Tensor, size: int, *, stride: int | None = None, drop_nan: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut an image into square windows.

    Windows start every ``stride`` pixels; when that leaves pixels uncovered at the bottom or the right,
    one more row / column of windows is placed flush with that edge, so H and W need not be multiples of
    anything.

    Args:
        x: (C, H, W) tensor or a (band, y, x) DataArray.
        size: window side in pixels, at most min(H, W).
        stride: step between windows (default ``size``: no overlap).
        drop_nan: leave out windows holding any NaN (nodata).

    Returns:
        tiles (B, C, size, size) and origins (B, 2) int64, the (row, column) of each window's top-left pixel.
    """
    x = _as_image(x)
    H, W = x.shape[-2:]
    _check_size(size, H, W)
    stride = size if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    origins = window_origins(H, W, size, stride)  # (B, 2)
    tiles = _gather(x, origins[:, 0], origins[:, 1], size)  # (B, C, size, size)
    if drop_nan:
        keep = ~torch.isnan(tiles).flatten(1).any(dim=1)  # (B,)
        if not keep.any():
            raise ValueError(f"all {len(tiles)} tiles of {size} x {size} px hold NaN; fill the nodata first")
        tiles, origins = tiles[keep], origins[keep.to(origins.device)]
    return tiles, origins


def untile(tiles: torch.Tensor, origins: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Put windows back into an image; ``untile(*tile(x, ...), x.shape) == x`` where no tile was dropped.

    Args:
        tiles: (B, C, size, size) windows.
        origins: (B, 2) (row, column) of each window's top-left pixel, as returned by ``tile``.
        shape: (H, W) or (C, H, W) of the image.

    Returns:
        (C, H, W) image, the mean of the windows covering each pixel; pixels no window covers are NaN.
    """
    if tiles.ndim != 4 or tiles.shape[-1] != tiles.shape[-2]:
        raise ValueError(f"expected tiles (B, C, size, size), got shape {tuple(tiles.shape)}")
    B, C, size, _ = tiles.shape
    if tuple(origins.shape) != (B, 2):
        raise ValueError(f"expected origins of shape ({B}, 2) for {B} tiles, got {tuple(origins.shape)}")
    H, W = (int(v) for v in shape[-2:])
    if len(shape) == 3 and shape[0] != C:
        raise ValueError(f"shape {tuple(shape)} has {shape[0]} bands, the tiles {C}")
    if B and ((origins < 0).any() or (origins[:, 0] + size > H).any() or (origins[:, 1] + size > W).any()):
        raise ValueError(f"some {size} x {size} tiles reach outside the {H} x {W} image; check origins and shape")
    sums = TileSum(C, W, dtype=tiles.dtype, device=tiles.device)
    sums.add(tiles, origins)
    return sums.mean(H)


def random_tiles(x: torch.Tensor | Sequence[torch.Tensor], size: int, count: int, generator: torch.Generator, *,
                 check_nan: bool = True) -> torch.Tensor:
    """``count`` windows at uniformly random positions (overlaps allowed).

    Args:
        x: (C, H, W) image without NaN, or a sequence of such images with the same C and any H, W: each window
            then comes from one image, chosen with probability proportional to its area, so that every pixel of
            every image is equally likely to be drawn.
        size: window side in pixels, at most min(H, W) of every image.
        count: number of windows B.
        generator: the source of randomness (no global seed is touched).
        check_nan: scan the images for NaN first (one pass over every value). A caller that draws many batches
            from images it has already checked passes False: on a whole scene the scan costs most of a training
            step.

    Returns:
        (B, C, size, size) windows.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if isinstance(x, (torch.Tensor, xr.DataArray)):
        x = _as_image(x)
        H, W = x.shape[-2:]
        _check_size(size, H, W)
        if check_nan:
            check_finite(x, "the image")
        rows = torch.randint(0, H - size + 1, (count,), generator=generator, device=generator.device)  # (B,)
        cols = torch.randint(0, W - size + 1, (count,), generator=generator, device=generator.device)  # (B,)
        return _gather(x, rows, cols, size)
    images = [_as_image(image) for image in x]
    if not images:
        raise ValueError("no images to draw windows from")
    if len({image.shape[0] for image in images}) > 1:
        raise ValueError(f"the images must share their band count C, got {sorted({i.shape[0] for i in images})}")
    for i, image in enumerate(images):
        _check_size(size, *image.shape[-2:])
        if check_nan:
            check_finite(image, f"image {i}")
    area = torch.tensor([float(image.shape[-2] * image.shape[-1]) for image in images])
    which = torch.multinomial(area, count, replacement=True, generator=generator)  # (B,) the image of each window
    corner = torch.rand(count, 2, generator=generator).double()  # (B, 2) row and column in [0, 1)
    room = torch.tensor([[image.shape[-2] - size + 1, image.shape[-1] - size + 1] for image in images])  # (N, 2)
    origins = (corner * room[which]).long()  # (B, 2) top-left (row, column) within its image
    return _gather(images, origins[:, 0], origins[:, 1], size, which)  # (B, C, size, size)


# -- whole images: padding, cutting, stitching ---------------------------------------------------------------------
def reflect_index(n: int, size: int) -> torch.Tensor:
    """Indices 0 .. size - 1 reflected into 0 .. n - 1 (mirror without repeating the edge, as often as needed)."""
    if n == 1:
        return torch.zeros(size, dtype=torch.int64)
    period = 2 * (n - 1)
    i = torch.arange(size) % period
    return torch.where(i >= n, period - i, i)


def padded_size(H: int, W: int, window: int) -> tuple[int, int]:
    """(H', W'): H and W rounded up to multiples of ``window``."""
    return math.ceil(H / window) * window, math.ceil(W / window) * window


def pad_reflect(x: torch.Tensor, window: int) -> torch.Tensor:
    """(C, H, W) -> (C, H', W'), H' and W' the next multiples of ``window``, right and bottom mirrored."""
    H, W = x.shape[-2:]
    Hp, Wp = padded_size(H, W, window)
    return x[:, reflect_index(H, Hp)][:, :, reflect_index(W, Wp)]


def pad_zero(x: torch.Tensor, window: int) -> torch.Tensor:
    """(C, H, W) -> (C, H', W') padded with zeros to the same size as ``pad_reflect``."""
    H, W = x.shape[-2:]
    Hp, Wp = padded_size(H, W, window)
    return torch.nn.functional.pad(x, (0, Wp - W, 0, Hp - H))


def cut(image: torch.Tensor, origins: torch.Tensor, window: int) -> torch.Tensor:
    """The windows of ``image`` (C, H, W) with top-left corners ``origins`` (b, 2): (b, C, w, w), one batch."""
    return torch.stack([image[:, r : r + window, c : c + window] for r, c in origins.tolist()])


class TileSum:
    """Windows added back into an image: running sums of weighted values and of weights, ``mean`` their ratio.

    The sums cover image rows ``top`` onwards, as far down as the windows added so far reach, over the whole width.
    ``take(stop)`` hands over rows ``top`` to ``stop`` and forgets them, so an image is stitched a band of rows at a
    time when windows come row by row; memory is then a few bands of rows, whatever the image's height.

    Args:
        channels: C, the windows' channels.
        width: W, the image's width in pixels.
        weight_channels: channels of the weights: 1 (one weight per pixel) or C (one per value).
        top: the image row of the first row of the sums.
    """

    def __init__(self, channels: int, width: int, *, weight_channels: int = 1, top: int = 0,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        if weight_channels not in (1, channels):
            raise ValueError(f"weight_channels must be 1 or {channels} (the channels), got {weight_channels}")
        self.top = top
        self.total = torch.zeros(channels, 0, width, dtype=dtype, device=device)  # (C, h, W) weighted values
        self.weight = torch.zeros(weight_channels, 0, width, dtype=dtype, device=device)  # (1 or C, h, W)

    def _reach(self, bottom: int) -> None:
        """Grow the sums with zero rows down to image row ``bottom``."""
        more = bottom - self.top - self.total.shape[1]
        if more > 0:
            grow = lambda t: torch.cat([t, t.new_zeros(t.shape[0], more, t.shape[2])], dim=1)  # noqa: E731
            self.total, self.weight = grow(self.total), grow(self.weight)

    def add(self, values: torch.Tensor, origins: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """Add windows ``values`` (b, C, s, s) at top-left corners ``origins`` (b, 2) (image rows and columns).

        ``weight``: None (1 everywhere), one (s, s) weight for every window, or (b, 1 or C, s, s) per window.
        """
        s = values.shape[-1]
        at = origins.tolist()
        if not at:
            return
        if min(r for r, _ in at) < self.top:
            raise ValueError(f"a window starts at row {min(r for r, _ in at)}, above the sums' first row {self.top}")
        self._reach(max(r for r, _ in at) + s)
        for i, (r, c) in enumerate(at):
            w = 1.0 if weight is None else weight if weight.ndim == 2 else weight[i]
            rows, cols = slice(r - self.top, r - self.top + s), slice(c, c + s)
            self.total[:, rows, cols] += values[i] * w
            self.weight[:, rows, cols] += w

    def take(self, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sums and weights of image rows ``top`` to ``stop`` ((C, n, W) and (1 or C, n, W)), then forgotten."""
        self._reach(stop)
        n = stop - self.top
        total, weight = self.total[:, :n], self.weight[:, :n]
        self.total, self.weight, self.top = self.total[:, n:], self.weight[:, n:], stop
        return total, weight

    def mean(self, stop: int) -> torch.Tensor:
        """(C, n, W) mean of the windows over rows ``top`` to ``stop`` (NaN where none covers); then forgotten."""
        total, weight = self.take(stop)
        return total / weight
