"""The notebooks as course material: every notebook cites its sources and sets the paper beside its own result.

Each notebook must end with a "## References" markdown cell holding at least one http(s) link, carry an "In the
paper" box (a markdown blockquote starting "> **In the paper") followed by the code cell that prints the lab's
measured number beside the paper's, and hold a "Check your understanding" cell of 6 to 10 numbered questions, each
with its answer folded in <details>. The time to work through each notebook, estimated by ``s2lab.notebook_time``
from its counts, must be what its header line and README's tables say. The checks read the notebooks' JSON; nothing
is executed.
"""

import json
import re
from pathlib import Path

import pytest

from s2lab import notebook_time

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
LINK = re.compile(r"\[[^\]]+\]\((https?://[^\s)]+)\)")
QUESTION = re.compile(r"^(\d+)\.\s", re.M)  # a numbered item at the start of a line, as s2lab.notebook_time counts
QUESTIONS = range(6, 11)  # how many questions a notebook asks (fastbook-style questionnaires)


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
    else:
        problems += question_problems(_source(questions[0]))
    return problems


def question_problems(text: str) -> list[str]:
    """What a "Check your understanding" cell's text lacks: 6 to 10 numbered questions, each answered in <details>."""
    starts = list(QUESTION.finditer(text))
    problems = []
    if len(starts) not in QUESTIONS:
        problems.append(f"the 'Check your understanding' cell has {len(starts)} numbered questions, "
                        f"not {QUESTIONS.start} to {QUESTIONS.stop - 1}")
    for start, end in zip(starts, [*starts[1:], None]):
        answer = text[start.end():end.start() if end else len(text)]  # up to the next question
        if "<details>" not in answer or "</details>" not in answer:
            problems.append(f"question {start.group(1)} has no answer in <details>...</details>")
    return problems


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 12


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cites_and_compares_with_the_paper(path):
    assert content_problems(json.loads(path.read_text())) == [], path.name


def _questions(count: int) -> str:
    return "## Check your understanding\n" + "".join(
        f"\n{n}. Why?\n\n<details><summary>Answer</summary>\n\nBecause.\n\n</details>\n" for n in range(1, count + 1))


def test_the_check_catches_a_notebook_without_the_sections():
    bare = {"cells": [{"cell_type": "markdown", "source": ["# A title\n"]},
                      {"cell_type": "code", "source": ["print(1)\n"]}]}
    problems = content_problems(bare)
    assert len(problems) == 3, problems
    unlinked = {"cells": [{"cell_type": "markdown", "source": ["> **In the paper.** Table 1.\n"]},
                          {"cell_type": "code", "source": ["print(1)\n"]},
                          {"cell_type": "markdown", "source": _questions(6).splitlines(keepends=True)},
                          {"cell_type": "markdown", "source": ["## References\n\n- A paper, no link.\n"]}]}
    assert content_problems(unlinked) == ["the References section has no markdown link to an http(s) address"]
    boxed_only = {"cells": unlinked["cells"][:1] + unlinked["cells"][2:]}
    assert any("followed by the code cell" in problem for problem in content_problems(boxed_only))


# Alt text: MyST-NB gives every image a code cell outputs (and the book's widget views, book/widget_outputs.py) the
# alt text of the cell's metadata {"mystnb": {"image": {"alt": "..."}}}. Which cells draw a figure is known only by
# running them, so completeness is the book's check (book/check_links.py fails on a built page's image without alt
# text); here, without running anything, every alt text given must be text.


def alt_text_problems(notebook: dict) -> list[str]:
    """The cells of the notebook (parsed .ipynb JSON) whose MyST-NB image metadata lacks usable alt text."""
    problems = []
    for i, cell in enumerate(notebook.get("cells", [])):
        options = cell.get("metadata", {}).get("mystnb", {})
        if "image" not in options:
            continue
        where = f"cell {i} ({cell.get('id', 'no id')})"
        alt = options["image"].get("alt") if isinstance(options["image"], dict) else None
        if cell.get("cell_type") != "code":
            problems.append(f"{where}: image options on a {cell.get('cell_type')} cell, which has no outputs")
        if not isinstance(alt, str) or not alt.strip():
            problems.append(f"{where}: mystnb.image has no alt text")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_alt_text_given_is_text(path):
    notebook = json.loads(path.read_text())
    assert alt_text_problems(notebook) == [], path.name
    assert any("alt" in c["metadata"].get("mystnb", {}).get("image", {}) for c in notebook["cells"]), \
        f"{path.name}: no cell has alt text for its figures"


def test_the_alt_text_check_catches_empty_and_misplaced_alt_text():
    def cell(kind: str, image) -> dict:
        return {"cell_type": kind, "id": "c", "metadata": {"mystnb": {"image": image}}, "source": []}

    notebook = {"cells": [cell("code", {"alt": "Loss falls, then flattens."}), cell("code", {"alt": " "}),
                          cell("code", {"width": "50%"}), cell("code", "alt"), cell("markdown", {"alt": "A map."}),
                          {"cell_type": "code", "metadata": {}, "source": []}]}
    assert alt_text_problems(notebook) == [
        "cell 1 (c): mystnb.image has no alt text", "cell 2 (c): mystnb.image has no alt text",
        "cell 3 (c): mystnb.image has no alt text", "cell 4 (c): image options on a markdown cell, which has no outputs",
    ]


def test_the_check_counts_the_questions_and_their_answers():
    assert question_problems(_questions(6)) == [] and question_problems(_questions(10)) == []
    too_few = "the 'Check your understanding' cell has 3 numbered questions, not 6 to 10"
    assert question_problems(_questions(3)) == [too_few]
    assert question_problems(_questions(11)) == [too_few.replace("3", "11", 1)]
    # question 4 loses its answer: the answers of its neighbours must not count for it
    unanswered = _questions(7).replace("4. Why?\n\n<details><summary>Answer</summary>\n\nBecause.\n\n</details>\n",
                                       "4. Why?\n")
    assert unanswered != _questions(7)
    assert question_problems(unanswered) == ["question 4 has no answer in <details>...</details>"]
    cell = {"cell_type": "markdown", "source": unanswered.splitlines(keepends=True)}
    notebook = {"cells": [{"cell_type": "markdown", "source": ["> **In the paper.** Table 1.\n"]},
                          {"cell_type": "code", "source": ["print(1)\n"]}, cell,
                          {"cell_type": "markdown", "source": ["## References\n\n[arXiv](https://arxiv.org/abs/1)\n"]}]}
    assert content_problems(notebook) == ["question 4 has no answer in <details>...</details>"]
    # a continuation line indented under its question is no new question
    wrapped = _questions(6).replace("1. Why?\n", "1. Why,\n   on two lines?\n")
    assert question_problems(wrapped) == []


# The time to work through a notebook: one computation (s2lab.notebook_time), shown in README and in each header.

ROOT = Path(__file__).resolve().parents[1]
ESTIMATES = notebook_time.estimates(ROOT / "notebooks")


def test_every_notebook_has_a_measured_run_time_and_an_estimate():
    assert list(ESTIMATES) == [path.stem for path in NOTEBOOKS]
    assert all(e.counts.exercises >= 3 and e.counts.questions >= 3 and e.counts.checked_exercises >= 1
               for e in ESTIMATES.values()), {stem: e.counts for stem, e in ESTIMATES.items()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_header_gives_the_computed_time(path):
    assert notebook_time.header_problems(json.loads(path.read_text()), ESTIMATES[path.stem]) == []


def test_readme_gives_the_computed_times():
    assert notebook_time.readme_problems((ROOT / "README.md").read_text(encoding="utf-8"), ESTIMATES) == []


def _toy_notebook(header: str = "**Time to work through**: about 0 minutes.") -> dict:
    def cell(kind, text):
        return {"cell_type": kind, "source": text.splitlines(keepends=True)}

    return {"cells": [
        cell("markdown", f"# 99 · Toy\n\nSee [notebook 00](00_meet_the_data.ipynb) first.\n{header}\n"),
        cell("code", "x = 1\n\n\nlive_output(draw, ratio=slider)\n"),
        cell("markdown", "## Exercises\n\n1. One.\n2. Two,\n   on two lines.\n3. Three.\n"),
        cell("code", "exercises.check(\"99.3\", answer)\n"),
        cell("markdown", "## Check your understanding\n\n1. Why?\n\n<details>Because.</details>\n\n2. How?\n"),
        cell("markdown", "## References\n\n- A paper. [arXiv](https://arxiv.org/abs/1)\n"),
    ]}


def test_the_counts_follow_the_stated_method():
    counts = notebook_time.count(_toy_notebook())
    # words split at white space: 15 in the first cell (the link's target left out, "#" and "·" are words), 11 under
    # Exercises, 9 under the questions; none of the references
    assert counts == notebook_time.Counts(words=15 + 11 + 9, code_lines=3, figures=1, exercises=3,
                                          checked_exercises=1, questions=2)
    e = notebook_time.Estimate(counts, run_seconds=90)
    # 35/150 + 3/10 + 90/60 + 2 + 2 * 2 = 8.03 -> 10; 10 + 2 * 20 = 50
    assert (e.reading_and_running, e.exercises, e.total) == (10, 50, 60)
    assert notebook_time.round_minutes(7.5) == 10 and notebook_time.round_minutes(7.4) == 5
    assert notebook_time.header_line(e) == ("**Time to work through**: about 60 minutes (estimated: reading and "
                                            "running 10, exercises 50; the code runs in about 90 s on a CPU).")


def test_each_exercise_gets_its_allowance_and_they_add_up_to_the_estimate():
    items = notebook_time.exercise_items(_toy_notebook())
    assert [(i.number, i.checked, i.minutes) for i in items] == [(1, False, 20), (2, False, 20), (3, True, 10)]
    assert items[1].text == "Two,\n   on two lines."
    assert notebook_time.round_minutes(sum(i.minutes for i in items)) == notebook_time.estimate(
        _toy_notebook(), 0).exercises
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text())
        total = sum(i.minutes for i in notebook_time.exercise_items(notebook))
        assert notebook_time.round_minutes(total) == ESTIMATES[path.stem].exercises, path.name
    unnumbered = _toy_notebook()
    unnumbered["cells"][3]["source"] = ["exercises.check(\"99.4\", answer)\n"]
    with pytest.raises(ValueError, match=r"exercises \[4\] are checked"):
        notebook_time.exercise_items(unnumbered)


def test_a_stale_header_or_readme_is_caught():
    e = notebook_time.estimate(_toy_notebook(), 600)
    assert notebook_time.header_problems(_toy_notebook(), e) != []
    assert notebook_time.header_problems(_toy_notebook(notebook_time.header_line(e)), e) == []
    assert notebook_time.header_problems(_toy_notebook("**Time to learn**: about 20 minutes."), e) != []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stem, first = next(iter(ESTIMATES.items()))
    row = notebook_time.table_row(stem, first)
    stale = readme.replace(row, row.replace(f"**{first.total}**", f"**{first.total + 5}**"))
    assert stale != readme and notebook_time.readme_problems(stale, ESTIMATES)
    link = f"| [{stem}](notebooks/{stem}.ipynb) |"
    line = next(line for line in readme.splitlines() if line.startswith(link))
    stale = readme.replace(line, line[: line.rindex("|", 0, -1)] + f"| {first.total + 5} |")
    assert notebook_time.readme_problems(stale, ESTIMATES) == [
        f"README's notebook table gives {stem} {first.total + 5} min, computed {first.total}"]


# Binder: each notebook's header opens that notebook on mybinder.org, from the repository CITATION.cff names (README's
# badge opens the folder from the same repository).
def binder_link(repository: str, notebook: str) -> str:
    owner_name = re.fullmatch(r"https://github\.com/([^/]+/[^/]+)", repository).group(1)
    return f"https://mybinder.org/v2/gh/{owner_name}/HEAD?labpath=notebooks%2F{notebook}"


def _repository() -> str:
    citation = (Path(__file__).resolve().parents[1] / "CITATION.cff").read_text()
    return re.search(r'^repository-code:\s*"([^"]+)"', citation, re.M).group(1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_header_opens_itself_on_binder(path):
    header = _source(json.loads(path.read_text())["cells"][0])
    assert f"[on Binder]({binder_link(_repository(), path.name)})" in header


def test_readme_badge_opens_the_same_repository_on_binder():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    folder = binder_link(_repository(), "x").replace("labpath=notebooks%2Fx", "urlpath=lab/tree/notebooks")
    assert f"[![Binder](https://mybinder.org/badge_logo.svg)]({folder})" in readme
