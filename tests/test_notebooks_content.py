"""The notebooks as course material: every notebook cites its sources and sets the paper beside its own result.

Each notebook must end with a "## References" markdown cell holding at least one http(s) link, carry an "In the
paper" box (a markdown blockquote starting "> **In the paper") followed by the code cell that prints the lab's
measured number beside the paper's, and hold a "Check your understanding" cell whose answers are folded in
<details>. The checks read the notebooks' JSON; nothing is executed.
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
LINK = re.compile(r"\[[^\]]+\]\((https?://[^\s)]+)\)")


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def content_problems(notebook: dict) -> list[str]:
    """What the notebook (parsed .ipynb JSON) lacks of the course-material sections; empty when it has them all."""
    cells = notebook.get("cells")
    if not isinstance(cells, list) or not cells:
        return ["no cells"]
    problems = []
    last = cells[-1]
    if last["cell_type"] != "markdown" or not _source(last).startswith("## References"):
        problems.append("the last cell is not a markdown '## References' section")
    elif not LINK.search(_source(last)):
        problems.append("the References section has no markdown link to an http(s) address")
    boxes = [i for i, c in enumerate(cells)
             if c["cell_type"] == "markdown" and _source(c).lstrip().startswith("> **In the paper")]
    if not boxes:
        problems.append("no 'In the paper' box (a markdown cell starting '> **In the paper')")
    elif not any(i + 1 < len(cells) and cells[i + 1]["cell_type"] == "code" for i in boxes):
        problems.append("the 'In the paper' box is not followed by the code cell that prints the lab's number")
    questions = [c for c in cells if c["cell_type"] == "markdown" and "## Check your understanding" in _source(c)]
    if not questions or "<details>" not in _source(questions[0]):
        problems.append("no 'Check your understanding' cell with answers in <details>")
    return problems


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 12


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cites_and_compares_with_the_paper(path):
    assert content_problems(json.loads(path.read_text())) == [], path.name


def test_the_check_catches_a_notebook_without_the_sections():
    bare = {"cells": [{"cell_type": "markdown", "source": ["# A title\n"]},
                      {"cell_type": "code", "source": ["print(1)\n"]}]}
    problems = content_problems(bare)
    assert len(problems) == 3, problems
    unlinked = {"cells": [{"cell_type": "markdown", "source": ["> **In the paper.** Table 1.\n"]},
                          {"cell_type": "code", "source": ["print(1)\n"]},
                          {"cell_type": "markdown", "source": ["## Check your understanding\n<details>x</details>\n"]},
                          {"cell_type": "markdown", "source": ["## References\n\n- A paper, no link.\n"]}]}
    assert content_problems(unlinked) == ["the References section has no markdown link to an http(s) address"]
    boxed_only = {"cells": unlinked["cells"][:1] + unlinked["cells"][2:]}
    assert any("followed by the code cell" in problem for problem in content_problems(boxed_only))
