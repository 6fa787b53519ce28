"""The s2lab explorer: ``panel serve apps/explorer.py``.

A thin view on ``s2lab.explorer.Explorer``: every widget sets one of its parameters and every picture, plot and
table draws one of its outputs; nothing is computed here. Panel runs this script once per browser session, so each
session has its own ``Explorer`` (its own upload); the scene and the models are loaded once per process.

Uploads travel over the websocket as base64 in one message. Files up to ``s2lab.explorer.MAX_UPLOAD_MB`` are taken;
larger ones that still fit bokeh's default message size (20 MiB of base64: about 15 MB of file) are refused with a
message. A file larger still does not fit: the server closes that session's connection (no other session's) and the
page says so in a notification.

A link can preset the state, ``/explorer?tab=reconstruct&ratio=0.9&strategy=tube`` (keys in
``s2lab.explorer.presets.QUERY``); the page's URL then follows the widgets, so it can be copied and shared.
"""

import numpy as np
import panel as pn
from bokeh.core.properties import value
from bokeh.events import Tap
from bokeh.models import ColumnDataSource, Legend, LegendItem
from bokeh.plotting import figure

from s2lab.explorer import BANDS, MAX_UPLOAD_MB, QUERY, TABS, Explorer, describe_groups
from s2lab.explorer.panes import PICTURE, Drawn, immediate, keep_url_in_step, lazy_tabs

pn.extension(sizing_mode="fixed", disconnect_notification=(
    f"Lost the connection to the server: an upload far over {MAX_UPLOAD_MB} MB closes it. Reload the page."))

SPECTRUM_COLOURS = ("#d62728", "#2ca02c", "#1f77b4")  # the nearest library materials
NEAREST = len(SPECTRUM_COLOURS)  # library materials drawn beside the pixel's spectrum

state = Explorer()
state.apply_query(pn.state.location.search)  # a link's presets, before any widget is made from the state


def captioned(pane: pn.viewable.Viewable, caption) -> pn.Column:
    """A pane with a small caption under it (text, or a function bound to the state)."""
    return pn.Column(pane, pn.pane.Markdown(caption, margin=(0, 6), styles={"font-size": "12px"}))


# -- sidebar: source, composite, device ----------------------------------------------------------------------------
upload = pn.widgets.FileInput(accept=".tif,.tiff", multiple=False, name="GeoTIFF", css_classes=["upload"])


def _on_upload(event) -> None:
    if event.new:
        state.upload(event.new, upload.filename or "upload.tif")


upload.param.watch(_on_upload, "value")
reset = pn.widgets.Button(name="Back to the embedded scene", button_type="default")
reset.on_click(lambda _: state.use_default())

custom = pn.Row(*(pn.widgets.Select.from_param(state.param[c], width=70) for c in ("red", "green", "blue")),
                visible=pn.bind(lambda c: c == "custom", state.param.composite))


def _about(_source) -> str:
    info = state.info()
    dev = info["device"]
    lines = [f"**Device:** {dev['type']} ({dev['name']})", "", "**Models:**"]
    lines += [f"- {role}: `{m['name']}` ({m['kind']}, {m['steps']} steps)" for role, m in info["models"].items()]
    return "\n".join(lines)


# This session's long work only: pn.state.busy is one flag for the whole server, so every session's spinner would
# turn whenever any session computes (and each session would be sent those changes).
busy = pn.indicators.LoadingSpinner(value=state.param.busy, width=28, height=28, css_classes=["busy"])
message = pn.pane.Alert(pn.bind(lambda m: m or " ", state.param.message),
                        alert_type="info", width=280, css_classes=["message"])
sidebar = pn.Column(
    pn.Row(pn.pane.Markdown("## s2lab explorer", margin=(0, 6)), busy),
    pn.pane.Markdown(pn.bind(lambda s: f"**Image:** {s.name}", state.param.source), width=280),
    pn.widgets.Select.from_param(state.param.composite, name="Composite", width=260),
    custom,
    pn.pane.Markdown(f"**Your own image:** a multi-band GeoTIFF (up to {MAX_UPLOAD_MB} MB) holding "
                     f"{', '.join(BANDS)}", width=280),
    upload,
    reset,
    message,
    pn.pane.Markdown(pn.bind(_about, state.param.source), width=280),
    width=300,
)

# -- scene and spectra ---------------------------------------------------------------------------------------------


def _rgba(picture: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (h, w) uint32 RGBA, rows flipped: bokeh draws an image's first row at the bottom."""
    rgba = np.dstack([picture, np.full(picture.shape[:2], 255, np.uint8)])
    return np.ascontiguousarray(rgba[::-1]).view(np.uint32)[:, :, 0]


# The scene: a plain bokeh figure (a HoloViews plot costs several times more to build, and each session builds its
# own). Image pixel (row, col) spans x in [col, col + 1] and y in [-row - 1, -row]; a tap picks that pixel.
scene_image = ColumnDataSource({"image": [], "x": [], "y": [], "dw": [], "dh": []})
scene_marker = ColumnDataSource({"x": [], "y": []})
scene_plot = figure(width=520, height=520, tools="tap", toolbar_location=None, match_aspect=True,
                    title="tap a pixel (white box: the crop of the other views)", x_axis_location=None,
                    y_axis_location=None)
scene_plot.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh", source=scene_image)
scene_plot.scatter("x", "y", source=scene_marker, marker="x", color="red", size=14, line_width=3)
scene_plot.grid.visible = False
scene_plot.on_event(Tap, lambda event: state.pick(-event.y, event.x))


def _draw_scene(*_) -> None:
    scene, (row, col) = state.scene, state.pixel
    H, W = scene.shape
    with pn.io.hold():
        scene_image.data = {"image": [_rgba(scene.picture)], "x": [0], "y": [-H], "dw": [W], "dh": [H]}
        scene_plot.height = max(120, int(520 * H / W))
        scene_plot.x_range.start, scene_plot.x_range.end = 0, W
        scene_plot.y_range.start, scene_plot.y_range.end = -H, 0
        scene_marker.data = {"x": [col + 0.5], "y": [-row - 0.5]}


state.param.watch(_draw_scene, ["scene", "pixel"])
_draw_scene()

# The spectrum: the pixel's line and the nearest library materials', their data replaced when the pixel changes.
spectrum_plot = figure(width=520, height=300, toolbar_location=None, x_axis_label="wavelength (nm)",
                       y_axis_label="reflectance", title="the pixel and the nearest library materials (spectral angle)")
spectrum_lines = [ColumnDataSource({"x": [], "y": []}) for _ in range(1 + NEAREST)]
spectrum_legend = Legend(location="top_left", items=[
    LegendItem(label="", renderers=[spectrum_plot.line("x", "y", source=source, color=colour, line_width=width,
                                                      line_dash=dash)])
    for source, (colour, width, dash) in zip(spectrum_lines, [("black", 3, "solid")] + [
        (c, 2, "dashed") for c in SPECTRUM_COLOURS])])
spectrum_plot.add_layout(spectrum_legend, "center")


def _draw_spectrum(*_) -> None:
    view = state.spectrum
    lines = [(view.values, f"pixel {view.pixel}")] + [
        (near["values"], f"{near['material']} ({near['angle_deg']:.1f}°)") for near in view.nearest[:NEAREST]]
    with pn.io.hold():
        for source, item, (values, label) in zip(spectrum_lines, spectrum_legend.items, lines):
            source.data = {"x": view.wavelength_nm, "y": values}
            item.label = value(label)


state.param.watch(_draw_spectrum, "spectrum")
_draw_spectrum()


def _angles(view) -> str:
    rows = [f"| {n['material']} | {n['angle_deg']:.1f}° | {n['what']} |" for n in view.nearest]
    return f"**Pixel {view.pixel}** (row, column) against the library:\n\n| material | angle | spectrum |\n|---|---|---|\n" + "\n".join(rows) + (
        "\n\nLibrary spectra are surface reflectance; the scene is top-of-atmosphere, so haze lifts its blue bands.")


scene_tab = pn.Row(
    pn.Column(pn.pane.Bokeh(scene_plot), css_classes=["scene"]),
    pn.Column(
        pn.pane.Bokeh(spectrum_plot),
        pn.pane.Markdown(pn.bind(_angles, state.param.spectrum), width=520, css_classes=["spectrum-angles"]),
        pn.pane.DataFrame(state.band_table(), index=False, width=520),
    ),
)

# -- tokens --------------------------------------------------------------------------------------------------------


def _counts(view) -> str:
    c = view.counts
    return (
        f"Crop (C, H, W) = ({c['C']}, {c['H']}, {c['W']}); cube tokens of p = {c['p']} px by s = {c['s']} bands.\n\n"
        f"- spectral groups G = ceil(C / s) = **{c['G']}**\n- spatial tokens N = (H / p)(W / p) = **{c['N']}**\n"
        f"- tokens L = G N = **{c['L']}**, each P = s p p = **{c['P']}** values: patchify gives "
        f"`{c['tokens_shape']}`\n"
        f"- SatMAE's {c['satmae_G']} band groups ({'; '.join(describe_groups())}) at p = {c['p']}: "
        f"L = **{c['satmae_L']}**"
    )


tokens = Drawn(state, "tokens")
tokens_tab = pn.Column(
    pn.Row(pn.widgets.DiscreteSlider.from_param(state.param.patch_size, name="patch size p", width=260),
           immediate(pn.widgets.IntSlider.from_param(state.param.bands_per_token, name="bands per token s",
                                                     width=260))),
    pn.Row(
        captioned(tokens.picture("grid", 384), "The token grid; the red cell is drawn on the right."),
        captioned(tokens.picture("cube", 200), "That cell's column: G cubes of s bands"),
        tokens.markdown(_counts, width=420),
    ),
)

# -- mask and reconstruct ------------------------------------------------------------------------------------------
ratio = immediate(pn.widgets.FloatSlider.from_param(state.param.mask_ratio, name="mask ratio", width=320,
                                                    css_classes=["mask-ratio"]))


def _scores(view) -> str:
    rows = [f"| {m} | {s['mse'] * 1e4:.2f} | {s['psnr']:.2f} | {s['sam_deg']:.2f}° | {view.removed[m]:.1%} |"
            for m, s in view.scores.items()]
    return (
        "| model | masked MSE (1e-4) | PSNR (dB) | spectral angle | values removed |\n|---|---|---|---|---|\n"
        + "\n".join(rows) +
        "\n\nScored in reflectance over the removed values (PSNR with peak 1.0 reflectance, the angle between "
        f"reflectance spectra); strategy `{view.strategy}`, "
        f"ratio {view.mask_ratio:.2f}, seed {view.seed}; computed in {view.seconds * 1000:.0f} ms. "
        f"Error maps: RMSE over bands, colour scale 0 to {view.error_max:.3f} reflectance."
    )


reconstructed = Drawn(state, "reconstructed")
reconstruct_tab = pn.Column(
    pn.Row(immediate(pn.widgets.RadioButtonGroup.from_param(state.param.strategy, css_classes=["strategy"])), ratio,
           pn.widgets.IntInput.from_param(state.param.seed, width=100)),
    pn.Row(captioned(reconstructed.picture("original"), pn.bind(
               lambda s: f"original ({'held-out crop' if s.held_out else 'crop'} of {s.name})", state.param.source)),
           captioned(reconstructed.picture("masked s2mae"), "S2MAE input (grey: removed)"),
           captioned(reconstructed.picture("s2mae"), "S2MAE reconstruction"),
           captioned(reconstructed.picture("error s2mae"), "S2MAE error")),
    pn.Row(pn.Spacer(width=PICTURE + 8),
           captioned(reconstructed.picture("masked satmae"), "SatMAE input (grey: removed)"),
           captioned(reconstructed.picture("satmae"), "SatMAE reconstruction"),
           captioned(reconstructed.picture("error satmae"), "SatMAE error")),
    reconstructed.markdown(_scores, width=900, css_classes=["recon-scores"]),
)

# -- change --------------------------------------------------------------------------------------------------------


def _change_text(view) -> str:
    if view is None:
        return "Computing the change map ..."
    s = view.scores
    badge = "**SYNTHETIC pair** (planted changes) — " if view.synthetic else ""
    return (
        f"{badge}**{view.name}**: {view.description}.\n\n"
        f"| threshold | precision | recall | F1 | IoU |\n|---|---|---|---|---|\n"
        f"| {view.threshold:.2f} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['iou']:.3f} |\n\n"
        f"Overlay: yellow hit, red false alarm, cyan missed; {view.changed_share:.1%} of pixels changed."
    )


changed = Drawn(state, "changed")
change_width = 330
change_tab = pn.Column(
    immediate(pn.widgets.FloatSlider.from_param(state.param.threshold, name="threshold", width=320,
                                                css_classes=["threshold"])),
    changed.markdown(_change_text, width=900, css_classes=["change-scores"]),
    pn.GridBox(*(captioned(changed.picture(name, change_width, photo=True), name) for name in
                 ("before", "after", "probability", "overlay")), ncols=2),
)


def _poll_change() -> None:
    if state.refresh_change():
        poll.stop()


poll = pn.state.add_periodic_callback(_poll_change, period=500)
state.param.watch(lambda _: poll.start() if not poll.running else None, "source")  # an upload's map computes anew

# A page is sent with the tab it opens on (the first, or a link's ?tab=); each other tab is built when first opened
# (so thirty pages open in seconds).
tabs = lazy_tabs(("Scene and spectra", scene_tab), ("Tokens", tokens_tab), ("Mask and reconstruct", reconstruct_tab),
                 ("Change", change_tab), active=TABS.index(state.tab), css_classes=["tabs"])  # in the order of TABS
tabs.param.watch(lambda event: setattr(state, "tab", TABS[event.new]), "active")
state.param.watch(lambda event: setattr(tabs, "active", TABS.index(event.new)), "tab")
keep_url_in_step(pn.state.location, state, QUERY)
pn.Row(sidebar, tabs).servable(title="s2lab explorer")
