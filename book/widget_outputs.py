"""Widget views shown in the book by what their Output widgets hold.

An interactive cell that draws into an ``ipywidgets.Output`` (``interactive_output``, ``interact``, or an ``Output``
of its own) leaves no figure in the cell's outputs when the notebook runs headless: the figure is stored in the
notebook's widget state, inside the Output widget. A static page has no widget manager to draw it, so the book
renders each widget view as the outputs stored in the Output widgets it contains, in display order: the figure at
the widgets' starting values. An image the cell also shows among its own outputs is not shown twice. An error
stored there fails the build, as an error in a cell does.
"""

from __future__ import annotations

import json
from typing import Any

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_MODEL_PREFIX = "IPY_MODEL_"


def stored_outputs(state: dict[str, Any], model_id: str) -> list[dict[str, Any]]:
    """The outputs held by the Output widgets in the widget ``model_id`` and its children, depth first.

    Args:
        state: the ``state`` mapping of a notebook's widget state (model id -> {"model_name", "state", ...}).
        model_id: the id of the displayed widget.

    Returns:
        The stored outputs (nbformat output dicts), in the order the widgets are laid out; empty when the view holds
        no Output widget or the model is not in ``state``.
    """
    found: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(model: str) -> None:
        if model in seen or model not in state:
            return
        seen.add(model)
        entry = state[model]
        values = entry.get("state", {})
        if entry.get("model_name") == "OutputModel":
            found.extend(values.get("outputs", []))
        for child in values.get("children", []):
            if isinstance(child, str) and child.startswith(_MODEL_PREFIX):
                visit(child[len(_MODEL_PREFIX):])

    visit(model_id)
    return found


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def _images(output: dict[str, Any]) -> set[str]:
    return {_text(v) for m, v in output.get("data", {}).items() if m.startswith("image/")}


def shown_images(outputs: list[dict[str, Any]]) -> set[str]:
    """The images (their encoded data) among a cell's own outputs."""
    return set().union(*(_images(o) for o in outputs))


def install(logger_name: str = "s2lab.book") -> None:
    """Make MyST-NB render a widget view as its stored outputs (see the module docstring).

    MyST-NB picks its renderers through entry points only, so its widget-view method is replaced here; the
    original is kept for a view that holds no Output widget (its HTML is an empty placeholder without widget
    JavaScript).
    """
    from myst_nb.core.render import MimeData, NbElementRenderer
    from sphinx.util import logging

    logger = logging.getLogger(logger_name)
    original = NbElementRenderer.render_widget_view
    priority = ("image/svg+xml", "image/png", "image/jpeg", "text/html", "text/markdown", "text/latex", "text/plain")

    def render_widget_view(self, data):
        metadata = self.renderer.nb_client.nb_metadata
        state = metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
        view = data.content if isinstance(data.content, dict) else json.loads(data.string)  # {"model_id": ...}
        outputs = stored_outputs(state, view.get("model_id", ""))
        if not outputs:
            return original(self, data)
        shown = shown_images(self.renderer.nb_client.notebook.cells[data.cell_index].get("outputs", []))
        rendered = []
        for output in outputs:
            if _images(output) & shown:
                continue  # the cell also drew this very figure itself (an interact cell that calls its function)
            kind = output.get("output_type")
            if kind == "stream":
                rendered += self.render_stdout(output, data.cell_metadata, data.cell_index, data.line)
            elif kind == "error":
                logger.warning(f"cell {data.cell_index}: an Output widget holds an error: {output.get('ename')}: "
                               f"{output.get('evalue')}", location=(self.renderer.document["source"], data.line))
                rendered += self.render_error(output, data.cell_metadata, data.cell_index, data.line)
            elif kind in ("display_data", "execute_result"):
                mime = next((m for m in priority if m in output.get("data", {})), None)
                if mime is not None:
                    content = _text(output["data"][mime])
                    rendered += self.render_mime_type(MimeData(mime, content, data.cell_metadata,
                                                               output.get("metadata", {}), data.cell_index,
                                                               data.output_index, data.line))
        return rendered

    NbElementRenderer.render_widget_view = render_widget_view
