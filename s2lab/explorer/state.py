"""``Explorer``, one session of the explorer app: what every view of ``apps/explorer.py`` shows, without panel.

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
    tab                              -> nothing computed: the app's tab shown, here so that a link can name it

``apply_query`` sets the parameters a link's URL query names (``?tab=reconstruct&ratio=0.9``, ``presets``).

Images are (C, H, W) float32 reflectance of the 10 bands ``S2_10BANDS``; pictures are (H, W, 3) uint8.

The reconstruct view must follow the mask-ratio slider, so it works on a small crop (``CROP`` pixels, cut into
windows of the models' own ``img_size``), runs the models in ``torch.inference_mode`` without the naive baselines,
and reuses the crop's stretch limits and error scale; everything else waits for the slider.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from types import SimpleNamespace

import numpy as np
import pandas as pd
import param
import torch

from s2lab import viz
from s2lab.change import chosen_threshold
from s2lab.device import describe_device
from s2lab.evaluate import score_change
from s2lab.explorer.models import MODELS, device, model
from s2lab.explorer.pairs import ScoredPair, change_future, run_later
from s2lab.explorer.presets import Preset, read_query
from s2lab.explorer.reconstruction import crop_data, crop_limits, picture, reconstruction_view
from s2lab.explorer.shared import SharedViews, freeze
from s2lab.explorer.sources import BANDS, Source, UploadError, embedded_source, read_upload
from s2lab.explorer.views import ChangeView, ReconstructionView, SceneView, SpectrumView, TokenView
from s2lab.masking import STRATEGIES
from s2lab.metrics import spectral_angle
from s2lab.sensors import band, wavelengths
from s2lab.spectra import materials
from s2lab.tokenize import CubeTokenizer, patchify

SCENE_SIDE = 512  # longest side in pixels of the scene picture (the image is subsampled to fit)
PATCH_SIZES = (2, 4, 8, 16, 32)  # the token sizes the tokens view offers (each divides CROP)
PROBABILITY_CMAP = "viridis"  # colour map of the change-probability picture
OVERLAY = {"hit": (255, 215, 0), "false alarm": (230, 30, 30), "missed": (0, 200, 255)}  # change overlay colours
CHANGE_PICTURE_SIDE = 384  # longest side in pixels of the change pictures (a larger pair is subsampled for them)
TABS = ("scene", "tokens", "reconstruct", "change")  # the app's tabs in order, as a link names them (?tab=...)


def _picture_step(shape: tuple[int, int]) -> int:
    """The subsampling step that brings an (H, W) pair within ``CHANGE_PICTURE_SIDE`` for its pictures."""
    return max(1, math.ceil(max(shape) / CHANGE_PICTURE_SIDE))


# Views that depend only on their inputs, shared by every session of the process (the reconstructions have their own
# store, s2lab.explorer.reconstruction.VIEWS): scene, spectrum, tokens and change views by (view, source key, inputs).
VIEWS = SharedViews(256, run_later)


class Explorer(param.Parameterized):
    """The state of one explorer session. Set the input parameters; read the outputs (see the module docstring).

    The output parameters (``source`` to ``busy``, precedence -1) are set by watchers, never by a view: they are a
    cache shared by the panes, so that what several panes draw (the seven pictures of one reconstruction) is computed
    once per input change. Panel's guide would have each pane compute from the inputs, and allows watchers that update
    shared state as the exception; these outputs are that exception.
    """

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
    tab = param.Selector(default=TABS[0], objects=list(TABS), doc="the app's tab shown (TABS)")

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
        self._change_future: Future | None = None  # the change pair computing, started by refresh_change
        self._pair: ScoredPair | None = None
        self._set_source(embedded_source())

    def apply_query(self, query: str) -> Preset:
        """Set the parameters a link's URL query names (``?tab=reconstruct&ratio=0.9&strategy=tube``, keys in
        ``presets.QUERY``); each key refused keeps its default, and ``message`` says what was wrong and what was
        expected.

        Returns:
            What the query set and what it refused (``presets.Preset``).
        """
        preset = read_query(query, self)
        self.param.update(preset.values)
        if preset.problems:
            self.message = preset.message
        return preset

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
        crop_data(source)  # the crop's windows for each model and its error scale, once per source
        row, col = source.crop_origin
        side = source.crop.shape[-1]
        self._pair = None
        self._change_future = change_future(source)  # queued on the background thread before the slider's prefill
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
        return crop_limits(self.source, self.bands())

    def _picture(self, image, limits: np.ndarray | None = None) -> np.ndarray:
        return picture(image, self.bands(), limits)

    def _shared(self, view: str, *inputs, compute):
        """A view computed once per process for this source and ``inputs`` (``VIEWS``), its pictures read-only."""
        def frozen():
            out = compute()
            freeze(*getattr(out, "pictures", {}).values(), *([out.picture] if hasattr(out, "picture") else []))
            return out

        return VIEWS.get((view, self.source.key, *inputs), frozen)

    # -- outputs ---------------------------------------------------------------------------------------------------
    @param.depends("source", "composite", "red", "green", "blue", watch=True)
    def _update_scene(self) -> None:
        self.scene = self._shared("scene", self.bands(), compute=self._scene_view)

    def _scene_view(self) -> SceneView:
        image = self.source.image
        H, W = image.sizes["y"], image.sizes["x"]
        step = max(1, math.ceil(max(H, W) / SCENE_SIDE))
        picture = self._picture(image.values[:, ::step, ::step])
        row, col = self.source.crop_origin
        side = self.source.crop.shape[-1]
        viz.outline(picture, row // step, col // step, max(1, side // step), max(1, side // step))
        return SceneView(picture=picture, shape=(H, W), step=step)

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
        self.spectrum = self._shared("spectrum", row, col, compute=lambda: self._spectrum_view(row, col))

    def _spectrum_view(self, row: int, col: int) -> SpectrumView:
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
        return SpectrumView(pixel=(row, col), wavelength_nm=wavelengths(BANDS), values=values, nearest=nearest)

    @param.depends("source", "patch_size", "bands_per_token", "composite", "red", "green", "blue", watch=True)
    def _update_tokens(self) -> None:
        p, s = int(self.patch_size), int(self.bands_per_token)
        self.tokens = self._shared("tokens", p, s, self.bands(), compute=lambda: self._token_view(p, s))

    def _token_view(self, p: int, s: int) -> TokenView:
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
            viz.outline(grid, top, left, side, side, (255, 40, 40))
        column = crop[:, cell[0] * p : (cell[0] + 1) * p, cell[1] * p : (cell[1] + 1) * p].numpy()  # (C, p, p)
        return TokenView(pictures={"grid": grid, "cube": viz.draw_column(column, s)}, counts=counts)

    @param.depends("source", "mask_ratio", "strategy", "seed", "composite", "red", "green", "blue", watch=True)
    def _update_reconstruction(self) -> None:
        self.reconstructed = reconstruction_view(self.source, self.bands(), self.strategy, int(self.seed),
                                                 float(self.mask_ratio))

    def _change_job(self) -> Future:
        """The source's change pair computing on the background thread (started on the first call)."""
        if self._change_future is None:
            self._change_future = change_future(self.source)
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
        if self._pair is None:
            self.changed = None
            return
        threshold, side = round(float(self.threshold), 4), CHANGE_PICTURE_SIDE
        self.changed = self._shared("change", self.bands(), threshold, side,
                                    compute=lambda: self._change_view(self._pair, threshold))

    def _change_view(self, scored: ScoredPair, threshold: float) -> ChangeView:
        """The pair cut at ``threshold``; its before, after and probability pictures are shared by every threshold."""
        pair, probability = scored.pair, scored.probability
        fixed = self._shared("change pictures", self.bands(), CHANGE_PICTURE_SIDE,
                             compute=lambda: SimpleNamespace(pictures=self._change_pictures(scored)))
        truth = np.asarray(pair.label.values, dtype=bool)  # (H, W)
        step = _picture_step(truth.shape)
        cut, shown = probability[::step, ::step] >= threshold, truth[::step, ::step]  # as the pictures show them
        overlay = fixed.pictures["after"].copy()
        for name, where in (("hit", cut & shown), ("false alarm", cut & ~shown), ("missed", ~cut & shown)):
            overlay[where] = (0.35 * overlay[where] + 0.65 * np.array(OVERLAY[name])).astype(np.uint8)
        return ChangeView(
            name=pair.name, synthetic=pair.synthetic, description=pair.description, threshold=threshold,
            pictures={**fixed.pictures, "overlay": overlay}, scores=score_change(probability, pair.label, threshold),
            changed_share=float(truth.mean()), step=step)

    def _change_pictures(self, scored: ScoredPair) -> dict[str, np.ndarray]:
        pair = scored.pair
        limits = viz.stretch_limits(viz.composite_bands(pair.before, self.bands()))
        step = _picture_step(scored.probability.shape)
        before, after = (np.asarray(image.values[:, ::step, ::step]) for image in (pair.before, pair.after))
        return {"before": self._picture(before, limits), "after": self._picture(after, limits),
                "probability": viz.colorize(scored.probability[::step, ::step], 1.0, PROBABILITY_CMAP)}

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
