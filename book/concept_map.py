"""The learning path of the notebooks, read from the notebooks themselves and drawn with matplotlib.

Each notebook opens with a ``**Prerequisites**:`` paragraph that links the notebooks it builds on; those links are
the edges of the map, so the map follows the notebooks whenever their prerequisites change. A notebook's column is
the length of the longest chain of prerequisites below it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

_PREREQ = re.compile(r"\*\*Prerequisites\*\*:(.*?)(?:\n\s*\n|\n\*\*|\Z)", re.S)
_LINK = re.compile(r"\]\(([0-9]{2}_[A-Za-z0-9_]+)\.ipynb\)")
_TITLE = re.compile(r"^#\s+(.+)$", re.M)
_STEP = 1.5  # columns apart, in data units: room for an arrow between boxes 1.1 wide


@dataclass(frozen=True)
class Notebook:
    """One notebook of the path: its file stem, its title and the stems of the notebooks it requires."""

    stem: str
    title: str
    requires: tuple[str, ...]


def read_path(folder: Path) -> list[Notebook]:
    """Read every ``NN_name.ipynb`` in ``folder``: its first ``#`` title and its prerequisite links.

    Raises:
        FileNotFoundError: ``folder`` holds no notebook.
        ValueError: a notebook has no ``#`` title, or links a prerequisite that is not in ``folder``.
    """
    files = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not files:
        raise FileNotFoundError(f"no NN_name.ipynb notebook in {folder}")
    stems = {f.stem for f in files}
    notebooks = []
    for f in files:
        cells = json.loads(f.read_text(encoding="utf-8"))["cells"]
        text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        title = _TITLE.search(text)
        if title is None:
            raise ValueError(f"{f.name}: no '# title' line in its markdown cells; expected one per notebook")
        prereq = _PREREQ.search(text)
        requires = tuple(dict.fromkeys(_LINK.findall(prereq.group(1)))) if prereq else ()
        unknown = [r for r in requires if r not in stems]
        if unknown:
            raise ValueError(f"{f.name}: prerequisites {unknown} are not notebooks in {folder}; found {sorted(stems)}")
        notebooks.append(Notebook(f.stem, title.group(1).strip(), requires))
    return notebooks


def depths(notebooks: list[Notebook]) -> dict[str, int]:
    """The length of the longest prerequisite chain below each notebook (0 for one that requires nothing).

    Raises:
        ValueError: the prerequisites form a cycle.
    """
    by_stem = {nb.stem: nb for nb in notebooks}
    depth: dict[str, int] = {}

    def visit(stem: str, seen: tuple[str, ...]) -> int:
        if stem in seen:
            raise ValueError(f"prerequisites form a cycle: {' -> '.join(seen + (stem,))}")
        if stem not in depth:
            depth[stem] = 1 + max((visit(r, seen + (stem,)) for r in by_stem[stem].requires), default=-1)
        return depth[stem]

    for nb in notebooks:
        visit(nb.stem, ())
    return depth


def closure(notebooks: list[Notebook]) -> dict[str, frozenset[str]]:
    """Every notebook a notebook builds on: its prerequisites, theirs, and so on (itself not included).

    Raises:
        ValueError: the prerequisites form a cycle.
    """
    depths(notebooks)  # refuses a cycle, with the cycle in its message
    by_stem = {nb.stem: nb for nb in notebooks}
    found: dict[str, frozenset[str]] = {}

    def below(stem: str) -> frozenset[str]:
        if stem not in found:
            found[stem] = frozenset().union(*({r} | below(r) for r in by_stem[stem].requires))
        return found[stem]

    return {nb.stem: below(nb.stem) for nb in notebooks}


def direct(notebooks: list[Notebook]) -> dict[str, tuple[str, ...]]:
    """Each notebook's prerequisites less those reached through another of its prerequisites (transitive reduction)."""
    below = closure(notebooks)
    return {nb.stem: tuple(r for r in nb.requires if not any(r in below[o] for o in nb.requires if o != r))
            for nb in notebooks}


def draw(notebooks: list[Notebook], *, width: float = 11.0) -> Figure:
    """Draw the path left to right: a box per notebook in the column of its depth, an arrow per direct prerequisite.

    A prerequisite reached through another prerequisite gets no arrow of its own (see :func:`direct`).
    """
    depth = depths(notebooks)
    edges = direct(notebooks)
    columns: dict[int, list[Notebook]] = {}
    for nb in notebooks:
        columns.setdefault(depth[nb.stem], []).append(nb)
    rows = max(len(c) for c in columns.values())
    fig, ax = plt.subplots(figsize=(width, 1.1 * rows + 0.6))
    ax.set_xlim(-0.7, _STEP * max(columns) + 0.7)
    ax.axis("off")
    place: dict[str, tuple[float, float]] = {}
    for x in sorted(columns):
        # each box as near the mean row of its direct prerequisites as the others in its column allow
        wanted = sorted((sum(place[r][1] for r in edges[nb.stem]) / max(len(edges[nb.stem]), 1), nb.stem)
                        for nb in columns[x])
        ys = [wanted[0][0]]
        for y, _ in wanted[1:]:
            ys.append(max(y, ys[-1] + 1))
        shift = sum(w for w, _ in wanted) / len(wanted) - sum(ys) / len(ys)
        for (_, stem), y in zip(wanted, ys):
            place[stem] = (_STEP * x, y + shift)
    low = min(y for _, y in place.values())
    high = max(y for _, y in place.values())
    ax.set_ylim(high + 0.6, low - 0.6)  # the first notebook of each column on top
    for nb in notebooks:
        for r in edges[nb.stem]:
            (x0, y0), (x1, y1) = place[r], place[nb.stem]
            ax.add_patch(FancyArrowPatch((x0 + 0.57, y0), (x1 - 0.57, y1), arrowstyle="-|>", mutation_scale=12,
                                         connectionstyle="arc3,rad=0.12", color="0.45", lw=1.0, zorder=1))
    for nb in notebooks:
        x, y = place[nb.stem]
        number, _, name = nb.title.partition("·")
        label = f"{number.strip()}\n{_wrap(name.split(':')[0].strip(), 13)}" if name else _wrap(nb.title, 13)
        ax.add_patch(FancyBboxPatch((x - 0.55, y - 0.32), 1.1, 0.64, boxstyle="round,pad=0.02", fc="#e8f0fa",
                                    ec="#2f5d8a", lw=1.2, zorder=2))
        ax.text(x, y, label, ha="center", va="center", fontsize=9.5, zorder=3)
    ax.set_title("Learning path: an arrow from A to B means B builds on A", fontsize=11)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> str:
    """Break ``text`` into lines of at most about ``width`` characters, at spaces."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)
