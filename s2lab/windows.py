"""Whole images window by window: what reconstruction (``s2lab.reconstruct``) and change maps (``s2lab.change``) share.

A model never sees a whole scene: it sees square windows of ``window`` pixels (by default its training ``img_size``),
``batch_size`` at a time, so memory is bounded and attention never spans more than one window. The recipe, shared by
both tasks:

    image (C, H, W) reflectance; NaN pixels filled with their band's median       _fill_nan
      -> pad the right and bottom edges by reflection to a multiple of the window  pad_reflect
      -> window corners, one every ``window - overlap`` pixels, as ``tile`` lays  s2lab.data.tiles.window_origins
         them out; batches of ``batch_size`` windows (b, C, w, w) cut as needed   cut
      -> each batch through the model, inference_mode, autocast
      -> summed into running sums over the padded image, overlaps averaged        s2lab.reconstruct._Stitcher
      -> cropped to (H, W) with the input's georeference                           s2lab.data.export.from_numpy

Memory is the image, its padded copy and a few image-sized sums, whatever the number of windows: the embedded
scene (10 x 1947 x 1933) reconstructs in about 1.5 GiB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from s2lab.data.export import from_numpy
from s2lab.data.tiles import to_tensor

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


def _reflect_index(n: int, size: int) -> torch.Tensor:
    """Indices 0 .. size - 1 reflected into 0 .. n - 1 (mirror without repeating the edge, as often as needed)."""
    if n == 1:
        return torch.zeros(size, dtype=torch.int64)
    period = 2 * (n - 1)
    i = torch.arange(size) % period
    return torch.where(i >= n, period - i, i)


def _padded_size(x: torch.Tensor, window: int) -> tuple[int, int]:
    """(H', W'): the image's H and W rounded up to multiples of ``window``."""
    H, W = x.shape[-2:]
    return math.ceil(H / window) * window, math.ceil(W / window) * window


def pad_reflect(x: torch.Tensor, window: int) -> torch.Tensor:
    """(C, H, W) -> (C, H', W'), H' and W' the next multiples of ``window``, right and bottom mirrored."""
    H, W = x.shape[-2:]
    Hp, Wp = _padded_size(x, window)
    return x[:, _reflect_index(H, Hp)][:, :, _reflect_index(W, Wp)]


def pad_zero(x: torch.Tensor, window: int) -> torch.Tensor:
    """(C, H, W) -> (C, H', W') padded with zeros to the same size as ``pad_reflect``."""
    H, W = x.shape[-2:]
    Hp, Wp = _padded_size(x, window)
    return torch.nn.functional.pad(x, (0, Wp - W, 0, Hp - H))


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


# -- window geometry -----------------------------------------------------------------------------------------------
def cut(image: torch.Tensor, origins: torch.Tensor, window: int) -> torch.Tensor:
    """The windows of ``image`` (C, H', W') with top-left corners ``origins`` (b, 2): (b, C, w, w), one batch."""
    return torch.stack([image[:, r : r + window, c : c + window] for r, c in origins.tolist()])


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
