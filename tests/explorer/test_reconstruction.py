"""The reconstruct view: one computation per set of inputs, shared by sessions, and every slider position prefilled."""

import numpy as np
import pytest

pytest.importorskip("param", reason="the explorer's state needs param (the lab extra)")
pytest.importorskip("matplotlib", reason="the explorer's colour maps come from matplotlib (the lab extra)")

from s2lab.explorer import Explorer, embedded_source
from s2lab.explorer.reconstruction import RATIOS, VIEWS, _compute, prefill, reconstruction_view
from s2lab.explorer.shared import encoded
from s2lab.viz import COMPOSITES, png



def test_the_slider_positions_are_the_widgets():
    ratio = Explorer.param.mask_ratio
    assert RATIOS[0] == ratio.bounds[0] and RATIOS[-1] == ratio.bounds[1]
    assert np.allclose(np.diff(RATIOS), ratio.step)


def test_two_sessions_on_the_same_inputs_share_one_view_equal_to_a_fresh_computation():
    first, second = Explorer(), Explorer()
    first.seed = second.seed = 7
    first.mask_ratio = second.mask_ratio = 0.35
    assert first.reconstructed is second.reconstructed
    fresh = _compute(embedded_source(), COMPOSITES["true colour"], "random", 7, 0.35)
    shared = first.reconstructed
    assert shared.pictures.keys() == fresh.pictures.keys()
    for name, picture in fresh.pictures.items():
        np.testing.assert_array_equal(shared.pictures[name], picture, err_msg=name)
        assert not shared.pictures[name].flags.writeable
        assert encoded(shared.pictures[name]) == png(picture)
    for role, scores in fresh.scores.items():
        assert shared.scores[role] == pytest.approx(scores)
    first.composite = "false colour"
    assert first.reconstructed is not second.reconstructed  # other bands, another view
    assert not np.array_equal(first.reconstructed.pictures["original"], second.reconstructed.pictures["original"])


def test_every_slider_position_is_computed_ahead_and_a_step_is_a_look_up():
    source, bands = embedded_source(), COMPOSITES["true colour"]
    reconstruction_view(source, bands, "tube", 11, 0.5, prefetch=False)
    job = prefill(source, bands, "tube", 11, near=0.5)
    assert job is not None
    job.result(timeout=600)
    assert prefill(source, bands, "tube", 11) is None  # nothing left to compute
    hits = VIEWS.hits
    for ratio in RATIOS:
        view = reconstruction_view(source, bands, "tube", 11, ratio)
        assert view.mask_ratio == pytest.approx(ratio) and view.strategy == "tube" and view.seed == 11
    assert VIEWS.hits - hits == len(RATIOS)
