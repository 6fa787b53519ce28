"""Whole images window by window: what reconstruction (``s2lab.reconstruct``) and change maps (``s2lab.change``) share.

A model never sees a whole scene: it sees square windows of ``window`` pixels (by default its training ``img_size``),
``batch_size`` at a time, so memory is bounded and attention never spans more than one window. The recipe, shared by
both tasks:

    image (C, H, W) reflectance; NaN pixels filled with their band's median       prepare
      -> reflected past the right and bottom edges to a multiple of the window     Rows (s2lab.data.tiles.pad_reflect)
      -> window corners, one every ``window - overlap`` pixels, row by row         WindowPlan
         (s2lab.data.tiles.window_origins); batches of ``batch_size`` windows
         (b, C, w, w) cut from a band of rows read for them                       WindowPlan.batches
      -> each batch through the model, inference_mode, autocast
      -> added back into the image, overlaps averaged                             s2lab.data.tiles.TileSum
      -> rows no later window covers handed on (cropped to H x W) as soon as the batch that finishes them is done
      -> with the input's georeference                                             s2lab.data.raster.from_numpy

A batch reads only the rows its windows cover, and the sums hold only the rows a later window may still reach, so
beyond the input and the output, memory is a few bands of rows whatever the image's height: an image read from a
file a band of rows at a time and written the same way never needs to be in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from s2lab.data.raster import from_numpy
from s2lab.data.tiles import reflect_index, cut, padded_size, to_tensor, window_origins

Image = xr.DataArray | torch.Tensor  # (band, y, x) DataArray or (C, H, W) tensor


# -- validation and preparation ------------------------------------------------------------------------------------
def band_list(image: Image, count: int) -> list[str]:
    if isinstance(image, xr.DataArray) and "band" in image.coords:
        return [str(b) for b in np.atleast_1d(image["band"].values)]
    return [f"band{i + 1}" for i in range(count)]


def _check_bands(image: Image, x: torch.Tensor, in_chans: int, what: str) -> None:
    if x.shape[0] != in_chans:
        names = ", ".join(band_list(image, x.shape[0]))
        raise ValueError(
            f"{what} has {x.shape[0]} bands ({names}) but the model takes {in_chans} (its in_chans); "
            f"select the model's bands first (s2lab.data.raster.select_bands)"
        )


def check_window(window: int, overlap: int, patch: int) -> None:
    if window < patch or window % patch:
        raise ValueError(f"window {window} must be a positive multiple of the model's patch size {patch}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap {overlap} must be in [0, {window}) for a window of {window} px")


def _check_size(x: torch.Tensor, patch: int, what: str) -> None:
    H, W = x.shape[-2:]
    if H < patch or W < patch:
        raise ValueError(f"{what} of {H} x {W} px is smaller than one {patch} x {patch} patch of the model")


def _fill_nan(x: torch.Tensor, names: Sequence[str], what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN values of x (C, H, W) replaced by their band's median; returns (filled x, (H, W) bool NaN pixels).

    The median is ``torch.nanmedian``'s: the lower of the two middle values when the count is even.
    """
    nan = torch.isnan(x)  # (C, H, W)
    if not nan.any():
        return x, torch.zeros(x.shape[-2:], dtype=torch.bool)
    empty = nan.flatten(1).all(dim=1)  # (C,)
    if empty.all():
        raise ValueError(f"{what} is NaN everywhere; nothing to run the model on")
    if empty.any():
        bands = ", ".join(n for n, e in zip(names, empty.tolist()) if e)
        raise ValueError(f"{what} has bands that are NaN everywhere ({bands}); drop them or give a valid image")
    median = torch.nanmedian(x.flatten(1), dim=1).values  # (C,)
    return torch.where(nan, median[:, None, None], x), nan.any(dim=0)


def prepare(image: Image, in_chans: int | None, patch: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (C, H, W) float32 tensor with NaN filled, and its (H, W) bool NaN pixels.

    Args:
        image: (band, y, x) DataArray or (C, H, W) tensor.
        in_chans: the bands the model takes; None for any count.
        patch: the smallest side accepted, in pixels.
        what: the image's name in error messages.
    """
    x = to_tensor(image)
    if in_chans is not None:
        _check_bands(image, x, in_chans, what)
    _check_size(x, patch, what)
    return _fill_nan(x, band_list(image, x.shape[0]), what)


def as_raster(values: torch.Tensor, like: Image) -> xr.DataArray:
    """(C, H, W) values on ``like``'s grid and georeference; plain (band, y, x) when ``like`` is a tensor."""
    if isinstance(like, xr.DataArray):
        return from_numpy(values, like)
    return xr.DataArray(values.numpy(), dims=("band", "y", "x"), coords={"band": band_list(like, values.shape[0])})


def batches(count: int, batch_size: int, progress: bool, desc: str):
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    starts = range(0, count, batch_size)
    return tqdm(starts, desc=desc, unit="batch", disable=not progress)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# -- a band of rows at a time ----------------------------------------------------------------------------------------
class Rows:
    """An image as whole-image work reads it: a band of rows at a time, on the padded grid.

    The image (C, H, W) is reflected past its bottom and right edges to (C, H', W'), multiples of the window
    (``s2lab.data.tiles.pad_reflect``'s padding, computed for the rows asked for only), so it never needs to be in
    memory at once when ``read`` reads from a file.

    Args:
        read: ``read(start, stop)`` -> (values (C, n, W) float32 without NaN, nan (n, W) bool: pixels that were NaN
            in some band before filling) for image rows ``start`` to ``stop``.
        shape: (C, H, W) of the image.
        window: the windows' side w; H' and W' are the next multiples of it.
    """

    def __init__(self, read: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]], shape: Sequence[int],
                 window: int):
        self.read = read
        self.C, self.H, self.W = (int(n) for n in shape)
        self.Hp, self.Wp = padded_size(self.H, self.W, window)
        self._rows, self._cols = reflect_index(self.H, self.Hp), reflect_index(self.W, self.Wp)
        self._last: tuple[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None

    @classmethod
    def of(cls, x: torch.Tensor, nan: torch.Tensor, window: int) -> Rows:
        """An image in memory: x (C, H, W) already filled, nan (H, W) bool."""
        return cls(lambda a, b: (x[:, a:b], nan[a:b]), x.shape, window)

    def padded(self, top: int, bottom: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded rows ``top`` to ``bottom``: values (C, n, W') and real (1, n, W') float, 1 where a pixel is the
        image's own (not padding, not NaN-filled). The last band asked for is kept, so windows of one row of
        windows read the file once."""
        if self._last is not None and self._last[0] == (top, bottom):
            return self._last[1]
        src = self._rows[top:bottom]  # (n,) image rows of the padded rows
        first, last = int(src.min()), int(src.max()) + 1
        values, nan = self.read(first, last)  # (C, m, W), (m, W)
        rows, cols = src - first, self._cols
        values = values[:, rows][:, :, cols]  # (C, n, W')
        inside = (torch.arange(top, bottom) < self.H)[:, None] & (torch.arange(self.Wp) < self.W)[None, :]
        real = (inside & ~nan[rows][:, cols])[None].float()  # (1, n, W')
        self._last = ((top, bottom), (values, real))
        return values, real


@dataclass
class Batch:
    """One batch of windows at the same places of every image."""

    index: int  # k, the batch's number (batch k draws its masks from seed + k)
    origins: torch.Tensor  # (b, 2) top-left (row, column) of each window on the padded grid
    windows: list[torch.Tensor]  # one (b, C, w, w) per image
    real: torch.Tensor  # (b, 1, w, w) 1 where the first image's pixel is its own (not padding, not NaN-filled)
    done: int  # padded rows above this one are covered by no later batch: their sums are final


class WindowPlan:
    """Where the windows of whole images go: one every ``window - overlap`` pixels over the padded grid, row by row
    (``s2lab.data.tiles.window_origins``), and the batches that cut them, a band of rows at a time.

    Args:
        images: ``Rows`` of one or more images of the same size (before and after for a change map).
        window: w, the windows' side in pixels.
        overlap: pixels shared by neighbouring windows.
    """

    def __init__(self, images: Sequence[Rows], window: int, overlap: int):
        self.images, self.window = list(images), window
        self.origins = window_origins(images[0].Hp, images[0].Wp, window, window - overlap)  # (B, 2)

    def __len__(self) -> int:
        return len(self.origins)

    def batches(self, batch_size: int, progress: bool = False, desc: str = "windows") -> Iterator[Batch]:
        w, origins = self.window, self.origins
        for k, i in enumerate(batches(len(origins), batch_size, progress, desc)):
            at = origins[i : i + batch_size]  # (b, 2)
            top, bottom = int(at[:, 0].min()), int(at[:, 0].max()) + w
            local = at - torch.tensor([top, 0])
            bands = [image.padded(top, bottom) for image in self.images]
            done = int(origins[i + batch_size, 0]) if i + batch_size < len(origins) else self.images[0].Hp
            yield Batch(k, at, [cut(values, local, w) for values, _ in bands], cut(bands[0][1], local, w), done)
