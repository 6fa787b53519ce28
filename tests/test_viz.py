import re
from pathlib import Path

import numpy as np
import pytest
import torch

from s2lab import viz
from s2lab.data.embedded import open_embedded_scene
from s2lab.sensors import S2_10BANDS


@pytest.fixture(scope="module")
def crop():
    return open_embedded_scene().isel(y=slice(1200, 1264), x=slice(800, 880))  # (10, 64, 80) real reflectance


def test_composite_shape_range_and_stretch_clips_two_percent(crop):
    rgb = viz.composite(crop, "true colour")
    assert rgb.shape == (64, 80, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert np.allclose((rgb == 1).mean(axis=(0, 1)), 0.02, atol=0.015)


def test_composite_takes_the_named_bands_in_order(crop):
    rgb = viz.composite(crop, ("B08", "B04", "B03"))
    by_hand = viz.stretch(crop.sel(band=["B08", "B04", "B03"]).values)
    np.testing.assert_array_equal(rgb, by_hand)
    np.testing.assert_array_equal(viz.composite(crop, "false colour"), rgb)


def test_array_input_needs_band_names_and_matches_dataarray(crop):
    x = torch.from_numpy(crop.values)
    np.testing.assert_array_equal(viz.composite(x, "SWIR", bands=S2_10BANDS), viz.composite(crop, "SWIR"))
    with pytest.raises(ValueError, match="band names"):
        viz.composite(x, "SWIR")
    with pytest.raises(ValueError, match="B01"):
        viz.composite(crop, ("B01", "B02", "B03"))
    with pytest.raises(ValueError, match="unknown composite"):
        viz.composite(crop, "infrared")


def test_shared_limits_colour_the_same_reflectance_alike(crop):
    rgb = crop.sel(band=["B04", "B03", "B02"]).values
    limits = viz.stretch_limits(rgb)
    assert limits.shape == (2, 3) and (limits[1] > limits[0]).all()
    brighter = rgb * 1.5
    assert not np.array_equal(viz.stretch(brighter, limits=limits), viz.stretch(brighter))
    np.testing.assert_array_equal(viz.stretch(rgb, limits=limits), viz.stretch(rgb))


def test_stretch_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        viz.stretch(np.zeros((4, 5, 5)))
    with pytest.raises(ValueError, match="lo < hi"):
        viz.stretch(np.random.rand(3, 5, 5), lo=90, hi=10)
    with pytest.raises(ValueError, match="all NaN"):
        viz.stretch(np.full((3, 5, 5), np.nan))


def test_masked_rgb_greys_only_removed_pixels():
    rgb = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    mask = np.zeros((8, 8))
    mask[:4] = 1
    out = viz.masked_rgb(rgb, mask, grey=0.5, alpha=1.0)
    assert np.all(out[:4] == 0.5)
    np.testing.assert_array_equal(out[4:], rgb[4:])
    band_mask = np.zeros((3, 8, 8))
    band_mask[1, :4] = 1  # removed in one band only counts as removed
    np.testing.assert_array_equal(viz.masked_rgb(rgb, band_mask, alpha=1.0), out)
    with pytest.raises(ValueError, match="does not match"):
        viz.masked_rgb(rgb, np.zeros((4, 4)))


def test_error_and_angle_maps(crop):
    target = crop.values
    pred = target.copy()
    pred[:, :10] *= 2.0  # same direction, twice as bright: RMSE > 0, angle 0
    err, ang = viz.error_map(pred, target), viz.angle_map(pred, target)
    assert err.shape == ang.shape == (64, 80)
    assert (err[:10] > 0).all() and (err[10:] == 0).all()
    np.testing.assert_allclose(err[:10], np.sqrt(np.mean(target[:, :10] ** 2, axis=0)), rtol=1e-5)
    assert np.abs(ang).max() < 1e-2
    swapped = target[::-1].copy()
    assert viz.angle_map(swapped, target).mean() > 1.0
    with pytest.raises(ValueError, match="one shape"):
        viz.error_map(pred[:, :5], target)


def test_to_uint8_rounds_and_clips():
    rgb = np.array([[[0.0, 0.5, 1.0], [-1.0, 2.0, np.nan]]], dtype=np.float32)  # (1, 2, 3)
    out = viz.to_uint8(rgb)
    assert out.dtype == np.uint8
    assert out.tolist() == [[[0, 128, 255], [0, 255, 0]]]


def test_colorbar_labels_quantity_and_unit():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    image = ax.imshow(np.random.default_rng(0).random((4, 4)), cmap=viz.CMAPS["error"])
    bar = viz.colorbar(image, "RMSE over bands", "reflectance")
    assert bar.ax.get_ylabel() == "RMSE over bands (reflectance)"
    assert image.get_cmap().name == "inferno"
    with pytest.raises(ValueError, match="quantity and a unit"):
        viz.colorbar(image, "RMSE", " ")


def test_label_legend_uses_the_maps_own_colours():
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    image = ax.imshow(np.array([[0, 3], [7, 3]]), cmap="tab20", vmin=0, vmax=19)
    legend = viz.label_legend(ax, {0: "urban", 3: "forest", 7: "water"}, image=image)
    assert [t.get_text() for t in legend.get_texts()] == ["urban", "forest", "water"]
    for patch, value in zip(legend.get_patches(), (0, 3, 7)):
        np.testing.assert_allclose(patch.get_facecolor(), image.cmap(image.norm(value)))
    legend = viz.label_legend(ax, {1: "change"}, colours={1: "crimson"})
    np.testing.assert_allclose(legend.get_patches()[0].get_facecolor(), to_rgba("crimson"))
    with pytest.raises(ValueError, match="not both"):
        viz.label_legend(ax, {1: "change"})
    with pytest.raises(ValueError, match="no colour for class values"):
        viz.label_legend(ax, {1: "change", 2: "new"}, colours={1: "crimson"})


def test_use_style_sets_the_labs_rcparams():
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcParams["font.size"] = 20
        viz.use_style()
        assert matplotlib.rcParams["font.size"] == viz.STYLE["font.size"]
        assert matplotlib.rcParams["axes.spines.top"] is False


# a categorical map of many classes has no colour-blind-safe palette; where one is used, a legend names every colour
CATEGORICAL_WITH_LEGEND = {"07_multilabel.ipynb": {"tab20"}}  # 19 land-cover classes, with viz.label_legend


def test_every_colour_map_of_the_lab_is_colour_blind_safe():
    root = Path(__file__).resolve().parents[1]
    assert set(viz.CMAPS.values()) <= viz.COLOUR_BLIND_SAFE
    named = re.compile(r"""cmap=\\?["']([A-Za-z0-9_]+)\\?["']""")
    files = sorted((root / "notebooks").glob("*.ipynb")) + sorted((root / "s2lab").rglob("*.py")) + [
        root / "apps" / "explorer.py"]
    found = {}
    for path in files:
        for name in named.findall(path.read_text()):
            if name not in viz.COLOUR_BLIND_SAFE | CATEGORICAL_WITH_LEGEND.get(path.name, set()):
                found.setdefault(path.name, set()).add(name)
    assert found == {}, f"colour maps not in viz.COLOUR_BLIND_SAFE: {found}"
    assert named.findall('imshow(x, cmap="RdYlGn")') == ["RdYlGn"]  # the pattern sees a named map


def test_the_label_maps_drawn_in_tab20_carry_a_legend():
    source = (Path(__file__).resolve().parents[1] / "notebooks" / "07_multilabel.ipynb").read_text()
    assert "tab20" in source and "label_legend" in source
