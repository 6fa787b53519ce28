"""live_output: one Output drawn once, redrawn in place on a change, never on a float-rounding echo."""

import threading

import pytest

ipywidgets = pytest.importorskip("ipywidgets")

from s2lab import widgets  # noqa: E402


def _recorder():
    calls = []

    def draw(ratio: float = 0.0, strategy: str = "random") -> float:
        calls.append((ratio, strategy))
        return ratio * 2

    return calls, draw


def test_first_draw_once_with_the_controls_values_and_its_result_returned():
    calls, draw = _recorder()
    ratio = ipywidgets.FloatSlider(value=0.75, min=0.0, max=0.95, step=0.05)
    result = widgets.live_output(draw, ratio=ratio, strategy=ipywidgets.Dropdown(options=["random", "tube"]))
    assert calls == [(0.75, "random")] and result == 1.5
    assert ratio.description == "ratio"  # named after the parameter, like interact


def test_a_change_redraws_once_and_an_echo_of_the_same_value_does_not():
    calls, draw = _recorder()
    threshold = ipywidgets.FloatSlider(value=0.48, min=0.02, max=0.98, step=0.02)
    widgets.live_output(draw, ratio=threshold)
    threshold.value = 0.02 + 23 * 0.02  # 0.48000000000000004: what the browser sends back for 0.48
    assert threshold.value != 0.48 and calls == [(0.48, "random")]
    threshold.value = 0.54
    assert calls == [(0.48, "random"), (0.54, "random")]


def test_an_error_in_the_first_draw_is_raised():
    def broken(ratio: float) -> None:
        raise ValueError("ratio out of range")

    with pytest.raises(ValueError, match="ratio out of range"):
        widgets.live_output(broken, ratio=ipywidgets.FloatSlider(value=0.5))


def test_a_redraw_waits_while_the_turn_is_held_elsewhere():
    calls, draw = _recorder()
    slider = ipywidgets.FloatSlider(value=0.5)
    widgets.live_output(draw, ratio=slider)
    entered = threading.Event()
    with widgets._TURN:  # as a running cell holds it
        worker = threading.Thread(target=lambda: (entered.set(), setattr(slider, "value", 0.7)))
        worker.start()
        entered.wait(5)
        worker.join(0.3)
        assert worker.is_alive() and calls == [(0.5, "random")]  # the redraw waits for the cell
    worker.join(5)
    assert calls == [(0.5, "random"), (0.7, "random")]


@pytest.mark.parametrize("draw, controls, message", [
    ("not a function", {"ratio": None}, "draw must be a function"),
    (print, {}, "needs at least one control"),
    (print, {"ratio": 0.75}, "control 'ratio' must be an ipywidgets value widget"),
])
def test_bad_input_names_what_was_wrong(draw, controls, message):
    with pytest.raises(TypeError, match=message):
        widgets.live_output(draw, **controls)


def _free_elsewhere() -> bool:
    """Can another thread take the turn now?"""
    got = []

    def probe():
        if widgets._TURN.acquire(blocking=False):
            widgets._TURN.release()
            got.append(True)

    worker = threading.Thread(target=probe)
    worker.start()
    worker.join(5)
    return bool(got)


def test_a_cell_holds_the_turn_from_pre_to_post_run_cell_and_an_unpaired_post_releases_nothing():
    turn = widgets._CellTurn(held=False)
    turn.post_run_cell()  # an empty cell: IPython fires post_run_cell without pre_run_cell
    assert _free_elsewhere()
    turn.pre_run_cell()
    assert not _free_elsewhere()  # a redraw in another thread waits
    turn.post_run_cell()
    assert _free_elsewhere()
