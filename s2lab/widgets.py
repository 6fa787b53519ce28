"""One output that follows its controls: the notebooks' interactive figures.

``live_output(draw, **controls)`` shows the controls (ipywidgets) above one ``Output`` and calls
``draw(**values)`` once inside it; each time a control's value changes, the ``Output`` is cleared and ``draw`` runs
again inside it. So a live JupyterLab shows exactly one figure, redrawn in place, and a headless run (nbmake,
nbconvert) runs the first draw once, with the controls' initial values. Whatever ``draw`` shows (``plt.show()``,
``display(...)``, ``print``) goes into the ``Output``; its return value is not displayed: ``live_output`` returns the
first draw's result, for the cell to check.

Two things ``ipywidgets.interact`` does not do:

- **No redraw without a change.** A slider whose value is off its grid (``0.48`` with ``min=0.02, step=0.02`` is
  ``0.48000000000000004`` on the grid) gets the grid value back from the browser once its view renders. A value
  equal to the last drawn one up to float rounding does not redraw.
- **Cells and redraws take turns.** JupyterLab 4 sends widget messages to a kernel subshell, a second thread, so a
  redraw can run while a cell draws with pyplot; the two share pyplot's current figure, and one picture comes out
  blank or cut off. Here a redraw waits for the running cell to finish (a lock held by the kernel's main thread from
  ``pre_run_cell`` to ``post_run_cell``), and a cell waits for a redraw in progress.

ipywidgets is imported by ``live_output``, not here, so the library imports without the lab extra.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

_TURN = threading.RLock()  # held by the main thread while a cell runs, and by a redraw while it draws
_HOOKED: set[int] = set()  # the IPython shells whose cells take the lock


class _CellTurn:
    """IPython hooks: a cell holds ``_TURN`` from ``pre_run_cell`` to ``post_run_cell`` (both on the main thread).

    ``post_run_cell`` also fires for empty cells, which fire no ``pre_run_cell``, and for the cell that registered
    the hooks; ``held`` makes each release match an acquire.
    """

    def __init__(self, held: bool):
        self.held = held

    def pre_run_cell(self, info=None) -> None:
        if not self.held:
            _TURN.acquire()
            self.held = True

    def post_run_cell(self, result=None) -> None:
        if self.held:
            self.held = False
            _TURN.release()


def _hook_cells() -> None:
    """Make the running IPython shell's cells take turns with redraws (once per shell; nothing outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or id(shell) in _HOOKED:
        return
    _TURN.acquire()  # called from a running cell: it holds the lock from now until its post_run_cell
    turn = _CellTurn(held=True)
    shell.events.register("pre_run_cell", turn.pre_run_cell)
    shell.events.register("post_run_cell", turn.post_run_cell)
    _HOOKED.add(id(shell))


def _same(a: Any, b: Any) -> bool:
    """Equal, or both floats equal up to float rounding (a slider's value snapped to its grid)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays: compare as different, and redraw
        return False


def live_output(draw: Callable[..., Any], /, **controls) -> Any:
    """Display ``controls`` above one ``Output``; draw into it now and again on every change of a control's value.

    Args:
        draw: called as ``draw(**{name: control.value})``; it shows what it draws (``plt.show()``, ``display``).
        **controls: ipywidgets value widgets (sliders, dropdowns, checkboxes), named after ``draw``'s parameters.
            A control without a description gets its name as description.

    Returns:
        What the first ``draw`` returned. An error in the first draw is raised (so a headless run fails); an error
        in a later redraw is shown inside the ``Output``.

    Raises:
        TypeError: ``draw`` is not callable, no control was given, or a control is not a value widget.
    """
    if not callable(draw):
        raise TypeError(f"draw must be a function, got {type(draw).__name__}")
    if not controls:
        raise TypeError(f"live_output({getattr(draw, '__name__', 'draw')}) needs at least one control, got none")
    import ipywidgets
    from IPython.display import display

    for name, control in controls.items():
        if not isinstance(control, ipywidgets.ValueWidget):
            raise TypeError(f"control {name!r} must be an ipywidgets value widget (a slider, dropdown, ...), "
                            f"got {type(control).__name__}")
        if not control.description:
            control.description = name
    _hook_cells()
    out = ipywidgets.Output()
    display(ipywidgets.VBox([*controls.values(), out]))
    drawn: dict[str, Any] = {}  # the values of the last draw

    def values() -> dict[str, Any]:
        return {name: control.value for name, control in controls.items()}

    def redraw(change=None) -> None:
        with _TURN:
            now = values()
            if all(_same(now[k], drawn[k]) for k in now):
                return
            drawn.update(now)
            with out:  # an error is shown here, under the controls
                out.clear_output(wait=True)
                draw(**now)

    drawn.update(values())
    with out:
        try:
            first = draw(**drawn)
        except BaseException as err:  # noqa: BLE001 - raised again below, outside the Output that would swallow it
            failed = err
        else:
            failed = None
    if failed is not None:
        raise failed
    for control in controls.values():
        control.observe(redraw, names="value")
    return first
