"""Pictures from reflectance: composites with a percentile stretch, masked views, error and angle maps.

The notebooks and the explorer app draw with these, so a picture means the same thing everywhere. Everything here
returns plain numpy arrays (the plotting library is the caller's choice):

    image (C, H, W) reflectance  --composite-->  rgb (H, W, 3) float in [0, 1]  --to_uint8-->  (H, W, 3) uint8

A stretch maps each channel's ``lo``-th percentile to 0 and its ``hi``-th to 1. To compare an original with its
reconstruction, compute the limits once (``stretch_limits`` on the original) and pass them to both, so that the
same reflectance gets the same colour in both pictures.

The drawings the app adds: ``colorize`` (a map through a matplotlib colour map), ``outline`` (a rectangle),
``draw_column`` (one token position's cubes in oblique projection) and ``png`` (a picture's PNG bytes).

One figure style for the lab's matplotlib figures: ``use_style`` applies ``STYLE`` (the notebooks call it in their
import cell); ``CMAPS`` is the colour map of each kind of quantity, all in ``COLOUR_BLIND_SAFE``; every quantity map gets a colorbar labelled with
its quantity and unit from ``colorbar``, every label map a legend from ``label_legend``.
matplotlib and Pillow (the lab extra) are imported by the functions that need them, not here.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from s2lab.metrics import spectral_angle
from s2lab.sensors import band_names

# rcParams of the lab's figures: one type size, no box around plots
STYLE: dict[str, object] = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

# kind of quantity -> colour map, the same in every figure
CMAPS: dict[str, str] = {
    "reflectance": "gray",  # one band
    "error": "inferno",  # RMSE, absolute error
    "angle": "magma",  # spectral angle
    "probability": "magma",  # change probability, CVA magnitude
    "share": "viridis",  # shares, counts, abundances, similarity
    "signed": "RdBu",  # values either side of 0: embeddings, differences
    "index": "BrBG",  # normalised differences such as NDVI, -1 to 1: brown bare ground, green vegetation
}

# The colour maps a figure of the lab may use: perceptually uniform (viridis and its family), single-hue sequences, and
# ColorBrewer's diverging maps marked safe for the common colour-vision deficiencies (not red-green ones like RdYlGn).
# tests/test_viz.py fails when a notebook or the package names another.
COLOUR_BLIND_SAFE = frozenset({"viridis", "cividis", "magma", "inferno", "plasma", "gray", "Greys", "Blues", "Oranges",
                               "Greens", "Purples", "RdBu", "BrBG", "PuOr", "PRGn"})

# name -> the bands shown as (red, green, blue)
COMPOSITES: dict[str, tuple[str, str, str]] = {
    "true colour": ("B04", "B03", "B02"),  # what the eye would see
    "false colour": ("B08", "B04", "B03"),  # near infrared as red: vegetation bright red, water black
    "SWIR": ("B12", "B8A", "B04"),  # shortwave infrared: bare soil and roofs bright, water very dark
}

Image = xr.DataArray | torch.Tensor | np.ndarray  # (band, y, x) DataArray or (C, H, W) tensor / array


def _numpy(x: Image) -> np.ndarray:
    if isinstance(x, xr.DataArray):
        x = x.values
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) array of red, green, blue bands, got shape {tuple(rgb.shape)}")


def _check_percentiles(lo: float, hi: float) -> None:
    if not 0.0 <= lo < hi <= 100.0:
        raise ValueError(f"stretch percentiles must satisfy 0 <= lo < hi <= 100, got lo={lo}, hi={hi}")


def stretch_limits(rgb: Image, lo: float = 2.0, hi: float = 98.0) -> np.ndarray:
    """The ``lo``-th and ``hi``-th percentile of each channel, ignoring NaN.

    Args:
        rgb: (3, H, W) reflectance.
        lo, hi: percentiles in [0, 100], lo < hi.

    Returns:
        (2, 3) float32: row 0 the lows, row 1 the highs, one column per channel.
    """
    rgb = _numpy(rgb)
    _check_rgb(rgb)
    _check_percentiles(lo, hi)
    if not np.isfinite(rgb).any(axis=(1, 2)).all():
        raise ValueError("cannot stretch: a channel of the composite has no finite value (all NaN)")
    return np.nanpercentile(rgb, [lo, hi], axis=(1, 2)).astype(np.float32)  # (2, 3)


def stretch(rgb: Image, lo: float = 2.0, hi: float = 98.0, limits: np.ndarray | None = None) -> np.ndarray:
    """Percentile stretch of three bands to a displayable image.

    Args:
        rgb: (3, H, W) reflectance.
        lo, hi: percentiles mapped to 0 and 1 (ignored when ``limits`` is given).
        limits: (2, 3) lows and highs from ``stretch_limits``, to stretch several images alike.

    Returns:
        (H, W, 3) float32 in [0, 1]; NaN pixels come out black.
    """
    rgb = _numpy(rgb)
    _check_rgb(rgb)
    limits = stretch_limits(rgb, lo, hi) if limits is None else np.asarray(limits, dtype=np.float32)
    if limits.shape != (2, 3):
        raise ValueError(f"stretch limits must have shape (2, 3) (lows, highs per channel), got {limits.shape}")
    low, high = limits[0][:, None, None], limits[1][:, None, None]  # (3, 1, 1) each
    out = (rgb - low) / np.maximum(high - low, np.finfo(np.float32).eps)  # (3, H, W)
    return np.nan_to_num(np.clip(out, 0.0, 1.0), nan=0.0).transpose(1, 2, 0)  # (H, W, 3)


def composite_bands(image: Image, combo: str | Sequence[str] = "true colour", bands: Sequence[str] | None = None):
    """The three bands of a composite, as a (3, H, W) float32 array.

    Args:
        image: (band, y, x) DataArray with band names, or a (C, H, W) tensor / array with ``bands``.
        combo: a key of ``COMPOSITES`` or three band names (red, green, blue).
        bands: the C band names of an array ``image`` (ignored for a DataArray, which carries its own).
    """
    if isinstance(combo, str):
        if combo not in COMPOSITES:
            raise ValueError(f"unknown composite {combo!r}; expected one of {', '.join(COMPOSITES)} or 3 band names")
        combo = COMPOSITES[combo]
    combo = band_names(combo)
    if len(combo) != 3:
        raise ValueError(f"a composite needs 3 bands (red, green, blue), got {len(combo)}: {', '.join(combo)}")
    names = band_names(image["band"].values) if isinstance(image, xr.DataArray) else bands
    if names is None:
        raise ValueError("an array image needs its band names (bands=...) to pick a composite")
    names = band_names(names)
    values = _numpy(image)
    if values.ndim != 3 or values.shape[0] != len(names):
        raise ValueError(f"expected a (C, H, W) image with C = {len(names)} bands, got shape {values.shape}")
    missing = [n for n in combo if n not in names]
    if missing:
        raise ValueError(f"the composite needs bands {', '.join(missing)}, which the image lacks ({', '.join(names)})")
    return values[[names.index(n) for n in combo]]  # (3, H, W)


def composite(
    image: Image,
    combo: str | Sequence[str] = "true colour",
    bands: Sequence[str] | None = None,
    limits: np.ndarray | None = None,
    lo: float = 2.0,
    hi: float = 98.0,
) -> np.ndarray:
    """A stretched colour composite.

    Args:
        image: (band, y, x) DataArray, or (C, H, W) tensor / array with its ``bands`` names.
        combo: a key of ``COMPOSITES`` ("true colour", "false colour", "SWIR") or three band names.
        bands: the band names of an array image.
        limits: (2, 3) stretch limits shared with another picture (see ``stretch_limits``).
        lo, hi: the stretch percentiles when ``limits`` is None.

    Returns:
        (H, W, 3) float32 in [0, 1].
    """
    return stretch(composite_bands(image, combo, bands), lo, hi, limits)


def masked_rgb(rgb: np.ndarray, mask: Image, grey: float = 0.5, alpha: float = 0.8) -> np.ndarray:
    """Grey out the removed pixels of a picture, as the encoder would not see them.

    Args:
        rgb: (H, W, 3) float in [0, 1].
        mask: (H, W), or (C, H, W) reduced over bands; 1 = removed. A pixel counts as removed when any band is.
        grey: the grey level of removed pixels.
        alpha: how much grey covers a removed pixel (1 = solid).

    Returns:
        (H, W, 3) float32 in [0, 1].
    """
    mask = _numpy(mask)
    if mask.ndim == 3:
        mask = mask.max(axis=0)  # (H, W)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask of shape {mask.shape} does not match the picture's {rgb.shape[:2]} pixels")
    removed = (mask > 0)[..., None]  # (H, W, 1)
    return np.where(removed, (1 - alpha) * rgb + alpha * grey, rgb).astype(np.float32)


def _pair(pred: Image, target: Image) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _numpy(pred), _numpy(target)
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"expected two (C, H, W) images of one shape, got {pred.shape} and {target.shape}")
    return pred, target


def error_map(pred: Image, target: Image) -> np.ndarray:
    """Per-pixel root-mean-square error over the bands.

    Args:
        pred, target: (C, H, W) reflectance.

    Returns:
        (H, W) float32, in reflectance units.
    """
    pred, target = _pair(pred, target)
    return np.sqrt(np.mean((pred - target) ** 2, axis=0))  # (H, W)


def angle_map(pred: Image, target: Image) -> np.ndarray:
    """Per-pixel spectral angle between two images.

    Args:
        pred, target: (C, H, W) reflectance.

    Returns:
        (H, W) float32 in degrees, 0 where the spectra are parallel.
    """
    pred, target = _pair(pred, target)
    angle = spectral_angle(torch.from_numpy(pred), torch.from_numpy(target), dim=0)  # (H, W) radians
    return np.degrees(angle.numpy()).astype(np.float32)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> (H, W, 3) uint8, rounded; values outside [0, 1] are clipped."""
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) picture, got shape {rgb.shape}")
    return np.round(np.clip(np.nan_to_num(rgb), 0.0, 1.0) * 255).astype(np.uint8)


def png(picture: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes, compressed lightly (encoding speed matters more than a few kB)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def jpeg(picture: np.ndarray, quality: int = 90) -> bytes:
    """(H, W, 3) uint8 -> JPEG bytes: a photograph in a fifth of its PNG's bytes, for pictures shown as they are."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@functools.lru_cache(maxsize=4)
def _lut(name: str) -> np.ndarray:
    """(256, 3) uint8 colours of a matplotlib colour map."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colorize(values: np.ndarray, vmax: float, cmap: str) -> np.ndarray:
    """(H, W) values in [0, vmax] -> (H, W, 3) uint8 through a colour map; NaN black, above vmax saturated."""
    scaled = np.nan_to_num(np.clip(values / max(vmax, 1e-12), 0.0, 1.0), nan=0.0)
    return _lut(cmap)[np.round(scaled * 255).astype(np.uint8)]


def outline(picture: np.ndarray, top: int, left: int, height: int, width: int, colour=(255, 255, 255)) -> None:
    """Draw a one-pixel rectangle into an (H, W, 3) picture, in place, clipped to it."""
    H, W = picture.shape[:2]
    bottom, right = min(top + height - 1, H - 1), min(left + width - 1, W - 1)
    top, left = max(top, 0), max(left, 0)
    picture[top, left : right + 1] = picture[bottom, left : right + 1] = colour
    picture[top : bottom + 1, left] = picture[top : bottom + 1, right] = colour


def draw_column(column: np.ndarray, s: int, cell: int = 10, depth: int = 6, gap: int = 10) -> np.ndarray:
    """A picture of one token position's p x p x C values as G cubes of s bands, in oblique projection.

    Each band is a p x p slice of ``cell``-pixel squares (grey level = reflectance, scaled per band), drawn back to
    front, each ``depth`` pixels up and to the right of the one before; a new cube starts ``gap`` pixels further.

    Args:
        column: (C, p, p) reflectance.
        s: bands per token.

    Returns:
        (h, w, 3) uint8 on white.
    """
    C, p, _ = column.shape
    lo, hi = column.min(axis=(1, 2), keepdims=True), column.max(axis=(1, 2), keepdims=True)
    grey = (column - lo) / np.maximum(hi - lo, 1e-6)  # (C, p, p) in [0, 1]
    hues = np.array([(66, 133, 244), (219, 68, 55), (244, 180, 0), (15, 157, 88), (171, 71, 188)], dtype=np.float32)
    side = p * cell
    shift = [c * depth + (c // s) * gap for c in range(C)]  # offset of band c
    H = side + shift[-1] + 2
    W = side + shift[-1] + 2
    picture = np.full((H, W, 3), 255, dtype=np.uint8)
    for c in reversed(range(C)):  # the last band at the back, drawn first
        tint = hues[(c // s) % len(hues)]
        face = (0.35 + 0.65 * grey[c])[..., None] * tint  # (p, p, 3)
        face = np.repeat(np.repeat(face, cell, 0), cell, 1).astype(np.uint8)  # (side, side, 3)
        top, left = shift[-1] - shift[c], shift[c]
        picture[top : top + side, left : left + side] = face
        outline(picture, top, left, side, side, (40, 40, 40))
    return picture


def use_style() -> None:
    """Apply the lab's figure style (``STYLE``) to matplotlib's rcParams, for every figure drawn after."""
    import matplotlib

    matplotlib.rcParams.update(STYLE)


def colorbar(image, label: str, unit: str, *, ax=None, **kwargs):
    """A colorbar beside a quantity map, labelled "label (unit)".

    Args:
        image: what ``imshow`` (or another colour-mapped plot) returned.
        label: the quantity, e.g. "RMSE over bands". unit: its unit, e.g. "reflectance", "degrees", "dB"; for a
            number without unit say what it counts or its range, e.g. "bands", "0-1".
        ax: the axes (or list of axes) to steal room from; default the image's own axes.
        **kwargs: passed to ``Figure.colorbar`` (``fraction``, ``shrink``, ...).

    Returns:
        the ``Colorbar``.
    """
    if not str(label).strip() or not str(unit).strip():
        raise ValueError(f"a colorbar needs a quantity and a unit, got label={label!r}, unit={unit!r}")
    ax = image.axes if ax is None else ax
    return image.figure.colorbar(image, ax=ax, label=f"{label} ({unit})", **kwargs)


def label_legend(ax, names: dict, *, image=None, colours: dict | None = None, **kwargs):
    """A legend of coloured squares for a label map: one entry per class value.

    Args:
        ax: the axes of the map.
        names: class value -> class name, e.g. {0: "no change", 1: "change"}; only these values get an entry.
        image: the ``imshow`` of the label map, whose colour map and limits give each value's colour; or
        colours: class value -> a matplotlib colour, for a map drawn as RGB.
        **kwargs: passed to ``Axes.legend`` (``loc``, ``ncols``, ``bbox_to_anchor``, ...).

    Returns:
        the ``Legend``.
    """
    from matplotlib.patches import Patch

    if (image is None) == (colours is None):
        raise ValueError("give the label map's image (its colour map colours the classes) or colours, not both")
    if not names:
        raise ValueError("a label legend needs at least one class: names maps class values to names")
    if colours is None:
        colours = {value: image.cmap(image.norm(value)) for value in names}
    missing = [value for value in names if value not in colours]
    if missing:
        raise ValueError(f"no colour for class values {missing}; colours has {list(colours)}")
    handles = [Patch(facecolor=colours[value], edgecolor="0.3", label=name) for value, name in names.items()]
    return ax.legend(handles=handles, **kwargs)
