"""Whole images window by window: what reconstruction (``s2lab.reconstruct``) and change maps (``s2lab.change``) share.

A model never sees a whole scene: it sees square windows of ``window`` pixels (by default its training ``img_size``),
``batch_size`` at a time, so memory is bounded and attention never spans more than one window. The recipe, shared by
both tasks:

    image (C, H, W) reflectance; NaN pixels filled with their band's median       image_rows
      -> reflected past the right and bottom edges to a multiple of the window     Rows (s2lab.data.tiles.pad_reflect)
      -> window corners, one every ``window - overlap`` pixels, row by row         WindowPlan
         (s2lab.data.tiles.window_origins); batches of ``batch_size`` windows
         (b, C, w, w) cut from a band of rows read for them                       WindowPlan.batches
      -> each batch through the model, inference_mode, autocast
      -> added back into the image, overlaps averaged                             s2lab.data.tiles.TileSum
      -> rows no later window covers handed on (cropped to H x W) as soon as the batch that finishes them is done
      -> with the input's georeference                                             s2lab.data.export.from_numpy

A batch reads only the rows its windows cover, and the sums hold only the rows a later window may still reach, so
beyond the input and the output, memory is a few bands of rows whatever the image's height: an image read from a
file a band of rows at a time and written the same way never needs to be in memory at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from s2lab.data.export import from_numpy
from s2lab.data.memory import check_fits, size_text
from s2lab.data.tiles import reflect_index, cut, padded_size, to_tensor, window_origins

Image = xr.DataArray | torch.Tensor  # (band, y, x) DataArray or (C, H, W) tensor
MEDIAN_SAMPLE = 4_000_000  # pixels per band at most in the sample of the band medians that fill NaN
SAMPLE_ROWS = 256  # rows read at a time for that sample
IN_MEMORY_COPIES = 6  # (C, H, W) float32 images held by whole-image work in memory: input, filled, outputs, sums
BAND_WINDOWS = 4  # Rows reads at least this many windows' height of rows at a time
ROWS_HELD = 24  # rows of (C, W) float32 per window row held by work a band of rows at a time (reads, pads, sums)


# -- validation and preparation ------------------------------------------------------------------------------------
def band_list(image: Image, count: int) -> list[str]:
    if isinstance(image, xr.DataArray) and "band" in image.coords:
        return [str(b) for b in np.atleast_1d(image["band"].values)]
    return [f"band{i + 1}" for i in range(count)]


def check_window(window: int, overlap: int, patch: int) -> None:
    if window < patch or window % patch:
        raise ValueError(f"window {window} must be a positive multiple of the model's patch size {patch}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap {overlap} must be in [0, {window}) for a window of {window} px")


def _check_size(H: int, W: int, patch: int, what: str) -> None:
    if H < patch or W < patch:
        raise ValueError(f"{what} of {H} x {W} px is smaller than one {patch} x {patch} patch of the model")


def image_shape(image: Image, in_chans: int | None, patch: int, what: str) -> tuple[int, int, int]:
    """(C, H, W) of a (band, y, x) DataArray or (C, H, W) tensor, checked against the model, without reading it.

    Args:
        in_chans: the bands the model takes; None for any count.
        patch: the smallest side accepted, in pixels.
        what: the image's name in error messages.
    """
    if isinstance(image, xr.DataArray):
        if image.dims != ("band", "y", "x"):
            raise ValueError(f"{what}: expected a DataArray with dims (band, y, x), got {image.dims}")
        shape = tuple(image.shape)
    else:
        shape = tuple(image.shape)
        if len(shape) != 3:
            raise ValueError(f"{what}: expected a (C, H, W) image, got shape {shape}")
    C, H, W = shape
    if in_chans is not None and C != in_chans:
        names = ", ".join(band_list(image, C))
        raise ValueError(
            f"{what} has {C} bands ({names}) but the model takes {in_chans} (its in_chans); "
            f"select the model's bands first (s2lab.data.raster.select_bands)"
        )
    _check_size(H, W, patch, what)
    return C, H, W


def rows_of(image: Image, start: int | None = None, stop: int | None = None) -> torch.Tensor:
    """Rows ``start`` to ``stop`` of the image as (C, n, W) float32, NaN kept; a lazily opened raster reads only
    these rows from disk."""
    if isinstance(image, xr.DataArray):
        return to_tensor(image.isel(y=slice(start, stop)))
    return image[:, start:stop].float()


def _sample(image: Image) -> torch.Tensor:
    """(C, n) an evenly strided sample of at most ``MEDIAN_SAMPLE`` pixels per band (every pixel of a smaller image)."""
    H, W = image.shape[-2:]
    step = max(1, math.ceil(math.sqrt(H * W / MEDIAN_SAMPLE)))
    rows = step * max(1, SAMPLE_ROWS // step)  # read a band of rows at a time: a strided read may read them all
    return torch.cat([rows_of(image, top, top + rows)[:, ::step, ::step].flatten(1) for top in range(0, H, rows)], dim=1)


def band_medians(image: Image, what: str, sample: torch.Tensor | None = None) -> torch.Tensor:
    """(C,) band medians that fill NaN pixels: ``torch.nanmedian``'s (the lower middle value for an even count) over
    the image, or over an evenly strided sample of at most ``MEDIAN_SAMPLE`` pixels of a larger image.

    Raises:
        ValueError: the image, or one of its bands, is NaN everywhere (in the sample).
    """
    sample = _sample(image) if sample is None else sample  # (C, n)
    empty = torch.isnan(sample).all(dim=1)  # (C,)
    if empty.all():
        raise ValueError(f"{what} is NaN everywhere; nothing to run the model on")
    if empty.any():
        bands = ", ".join(n for n, e in zip(band_list(image, len(empty)), empty.tolist()) if e)
        raise ValueError(f"{what} has bands that are NaN everywhere ({bands}); drop them or give a valid image")
    return torch.nanmedian(sample, dim=1).values


def _fill(values: torch.Tensor, image: Image, medians: list, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """values (C, n, W) with NaN replaced by the image's band medians (computed once, at the first NaN, into
    ``medians``), and the (n, W) bool pixels that had NaN in some band."""
    nan = torch.isnan(values)
    if not nan.any():
        return values, torch.zeros(values.shape[1:], dtype=torch.bool)
    if not medians:
        medians.append(band_medians(image, what))
    return torch.where(nan, medians[0][:, None, None], values), nan.any(dim=0)


def prepare(image: Image, in_chans: int | None, patch: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole image in memory: a validated (C, H, W) float32 tensor with NaN filled, and its (H, W) bool NaN
    pixels. Refused in one line when it would not fit the memory limit (``s2lab.data.memory.check_fits``).

    Args:
        image: (band, y, x) DataArray or (C, H, W) tensor.
        in_chans: the bands the model takes; None for any count.
        patch: the smallest side accepted, in pixels.
        what: the image's name in error messages.
    """
    shape = image_shape(image, in_chans, patch, what)
    check_fits(IN_MEMORY_COPIES * 4 * math.prod(shape), size_text(shape), f"{what} in memory")
    return _fill(to_tensor(image), image, [], what)


def image_rows(image: Image, in_chans: int | None, patch: int, window: int, what: str) -> Rows:
    """The image read a band of rows at a time (a lazily opened raster stays on disk), validated, NaN filled.

    The strided sample of ``band_medians`` is read first (an image or band NaN everywhere is refused before any
    window) and kept, NaN filled, as ``Rows.sample`` (C, n): whole-image statistics of an image too large for memory
    are taken on it (every pixel of an image up to ``MEDIAN_SAMPLE`` pixels).

    Args: as ``prepare``; window: the windows' side w.
    """
    shape = image_shape(image, in_chans, patch, what)
    C, H, W = shape
    check_fits(ROWS_HELD * window * W * C * 4, size_text(shape), "a band of rows of it")
    sample = _sample(image)  # (C, n)
    nan = torch.isnan(sample)
    medians = [band_medians(image, what, sample)] if nan.any() else []
    rows = Rows(lambda start, stop: _fill(rows_of(image, start, stop), image, medians, what), shape, window)
    rows.sample = torch.where(nan, medians[0][:, None], sample) if medians else sample
    return rows


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
        self.band = BAND_WINDOWS * window  # rows read at least at a time: the batches of the next rows come from them
        self._last: tuple[int, int, torch.Tensor, torch.Tensor] | None = None  # top, bottom, values, real
        self.transform: Callable[[torch.Tensor], torch.Tensor] | None = None  # applied to every band of rows read,
        # (C, n, W) -> (C, n, W), after the filling (a change pair's radiometric normalisation)
        self.sample: torch.Tensor | None = None  # (C, n) NaN-filled strided sample (``image_rows``)
        self.nan_rows: dict[int, torch.Tensor] = {}  # image row -> (W,) bool NaN pixels, for rows read that had any

    @classmethod
    def of(cls, x: torch.Tensor, nan: torch.Tensor, window: int) -> Rows:
        """An image in memory: x (C, H, W) already filled, nan (H, W) bool."""
        return cls(lambda a, b: (x[:, a:b], nan[a:b]), x.shape, window)

    def nan_fraction(self, *others: Rows) -> float:
        """Share of the image's pixels that were NaN in some band (of this image or of ``others``) among the rows
        read so far (all of them once every window was cut)."""
        rows = set(self.nan_rows).union(*(o.nan_rows for o in others))
        empty = torch.zeros(self.W, dtype=torch.bool)
        count = sum(int(torch.stack([r.nan_rows.get(i, empty) for r in (self, *others)]).any(dim=0).sum())
                    for i in rows)
        return count / (self.H * self.W)

    def padded(self, top: int, bottom: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded rows ``top`` to ``bottom``: values (C, n, W') and real (1, n, W') float, 1 where a pixel is the
        image's own (not padding, not NaN-filled). At least ``band`` rows are read at once and kept, so the batches
        that follow, a few rows further down, are views of them: each row is read about once."""
        if self._last is None or not self._last[0] <= top < bottom <= self._last[1]:
            self._last = self._read(top, min(max(bottom, top + self.band), self.Hp))
        first, _, values, real = self._last
        return values[:, top - first : bottom - first], real[:, top - first : bottom - first]

    def _read(self, top: int, bottom: int) -> tuple[int, int, torch.Tensor, torch.Tensor]:
        src = self._rows[top:bottom]  # (n,) image rows of the padded rows
        first, last = int(src.min()), int(src.max()) + 1
        values, nan = self.read(first, last)  # (C, m, W), (m, W)
        if self.transform is not None:
            values = self.transform(values)
        for i in nan.any(dim=1).nonzero().flatten().tolist():
            self.nan_rows[first + i] = nan[i]
        rows, cols = src - first, self._cols
        values = values[:, rows][:, :, cols]  # (C, n, W')
        inside = (torch.arange(top, bottom) < self.H)[:, None] & (torch.arange(self.Wp) < self.W)[None, :]
        real = (inside & ~nan[rows][:, cols])[None].float()  # (1, n, W')
        return top, bottom, values, real


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
