"""The recall copies (s2lab.recall): the code, headings, exercises and questions of a notebook, no prose, no answers."""

import json
import re
from pathlib import Path

import pytest

from s2lab import notebook_time
from s2lab.recall import recall_copy, write_recall_copies

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _text(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("name", ["03_masking.ipynb", "08_change_detection.ipynb"])
def test_a_recall_copy_keeps_code_headings_exercises_and_questions_only(name):
    notebook = json.loads((NOTEBOOKS / name).read_text())
    recall = recall_copy(notebook, name)
    code = [_text(c) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert [_text(c) for c in recall["cells"] if c["cell_type"] == "code"] == code  # every code cell, in order
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in recall["cells"] if c["cell_type"] == "code")
    markdown = "\n".join(_text(c) for c in recall["cells"] if c["cell_type"] == "markdown")
    assert "<details>" not in markdown and "## References" not in markdown
    assert f"Recall copy of `{name}`" in _text(recall["cells"][0])
    headings = [line for c in notebook["cells"] if c["cell_type"] == "markdown" for line in _text(c).splitlines()
                if line.startswith("#") and not line.startswith("## References")]
    assert all(h in markdown for h in headings)
    # the questions and the exercises are counted as in the notebook
    assert notebook_time.count(recall).questions == notebook_time.count(notebook).questions >= 6
    assert notebook_time.count(recall).exercises == notebook_time.count(notebook).exercises >= 1
    # the opening prose is gone: its first sentence after the title is nowhere in the copy
    intro = next(line for line in _text(notebook["cells"][0]).splitlines()[1:] if len(line) > 40)
    assert intro not in markdown
    assert notebook_time.count(recall).words < notebook_time.count(notebook).words / 2


def test_recall_copies_are_written_beside_never_over_the_notebooks(tmp_path):
    written = write_recall_copies(NOTEBOOKS, tmp_path / "recall")
    assert sorted(p.name for p in written) == sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert all(json.loads(p.read_text())["nbformat"] == 4 for p in written)
    with pytest.raises(ValueError, match="would overwrite the notebooks"):
        write_recall_copies(NOTEBOOKS, NOTEBOOKS)
    with pytest.raises(FileNotFoundError, match="no NN_name.ipynb notebook"):
        write_recall_copies(tmp_path / "recall" / "none", tmp_path / "out")
    with pytest.raises(ValueError, match=re.escape("x.ipynb: not a notebook")):
        recall_copy({"metadata": {}}, "x.ipynb")
