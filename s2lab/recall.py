"""Prose-free "recall" copies of the notebooks (fastbook's ``clean/`` notebooks): the code, the headings, the
exercises and the questions, without the explanations or the answers.

A student who has worked through a notebook opens its recall copy and, before running each cell, says what it does
and what it will print; then answers the questions without the answers folded under them. What a copy keeps of the
notebook (parsed .ipynb JSON), cell by cell (``recall_copy``):

- every code cell, its source unchanged, its outputs cleared;
- of a markdown cell: its heading lines (``#``), or the whole cell when it opens the exercises ("## Exercises" or a
  "**Exercise k" prompt); the "## Check your understanding" cell keeps its questions and loses each
  ``<details>...</details>`` answer; the "## References" cell and every other line of prose are dropped;
- a first cell saying it is a recall copy and which notebook it was made from.

``python -m s2lab.recall`` writes a copy of every ``notebooks/NN_*.ipynb`` to ``build/recall/`` (``--out`` to
change it); the copies are made, never committed, so they cannot go stale. They open from any folder: the notebooks
read data through ``s2lab``, not by relative paths.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import secrets
from pathlib import Path

_ANSWER = re.compile(r"\s*<details>.*?</details>\s*", re.S)
_ROOT = Path(__file__).resolve().parents[1]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _markdown(cell: dict) -> str | None:
    """What a recall copy keeps of a markdown cell's text, or None when nothing."""
    text = _text(cell)
    head = text.lstrip()
    if head.startswith("## References"):
        return None
    if head.startswith("## Check your understanding"):
        return _ANSWER.sub("\n\n", text).rstrip() + "\n"
    if head.startswith("## Exercises") or head.startswith("**Exercise"):
        return text
    headings = [line.rstrip("\n") for line in _lines(text) if line.startswith("#")]
    return "\n\n".join(headings) if headings else None


def recall_copy(notebook: dict, name: str) -> dict:
    """The recall copy of ``notebook`` (parsed .ipynb JSON), made from the file called ``name``.

    Raises:
        ValueError: the notebook has no cells list.
    """
    if not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{name}: not a notebook (no 'cells' list); expected parsed .ipynb JSON")
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            kept = copy.deepcopy(cell)
            kept["outputs"], kept["execution_count"] = [], None
            cells.append(kept)
        elif cell["cell_type"] == "markdown" and (text := _markdown(cell)) is not None:
            cells.append({**copy.deepcopy(cell), "source": _lines(text)})
    note = (f"*Recall copy of `{name}`: the prose and the answers are removed. Before you run each cell, say what it "
            "does and what it will print; then answer the questions at the end. The full notebook explains every "
            "step.*")
    first = {"cell_type": "markdown", "id": secrets.token_hex(4), "metadata": {}, "source": _lines(note)}
    return {**{k: v for k, v in notebook.items() if k != "cells"}, "cells": [first, *cells]}


def write_recall_copies(folder: Path, out: Path) -> list[Path]:
    """Write the recall copy of every ``NN_*.ipynb`` in ``folder`` to ``out``; returns the paths written.

    Raises:
        FileNotFoundError: ``folder`` holds no NN_*.ipynb notebook.
        ValueError: ``out`` is ``folder`` (the notebooks would be overwritten).
    """
    notebooks = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no NN_name.ipynb notebook in {folder}")
    if Path(out).resolve() == Path(folder).resolve():
        raise ValueError(f"the recall copies would overwrite the notebooks in {folder}; give another --out folder")
    Path(out).mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        target = Path(out) / path.name
        target.write_text(json.dumps(recall_copy(json.loads(path.read_text(encoding="utf-8")), path.name), indent=1,
                                     ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m s2lab.recall", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=Path, default=_ROOT / "notebooks", help="folder of NN_*.ipynb notebooks")
    parser.add_argument("--out", type=Path, default=_ROOT / "build" / "recall", help="folder for the copies")
    args = parser.parse_args(argv)
    for path in write_recall_copies(args.notebooks, args.out):
        print(path)


if __name__ == "__main__":
    main()
