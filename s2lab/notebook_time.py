"""How long a notebook takes to work through: counted from its JSON, estimated at stated rates.

README's section "Time to work through a notebook" states the method; this module is its one implementation, and
the numbers in that section's table, in README's notebook table and in each notebook's "**Time to work through**"
line are what it computes (``python -m s2lab.notebook_time --write`` rewrites them; tests/test_notebooks_content.py
fails when one disagrees).

What is counted, from a notebook's cells (``count``):

- the words of markdown: every markdown cell but the "## References" one, split at white space, with the target of
  each markdown link left out (``[text](target)`` counts the text only);
- the non-blank lines of code;
- the interactive figures: calls of ``live_output`` (``s2lab.widgets``), one figure each;
- the exercises: the numbered items of the markdown cell that opens with "## Exercises"; of them, those checked in
  the notebook: the code cells that call ``exercises.check``;
- the questions: the numbered items of the "## Check your understanding" cell.

The estimate (``estimate``), at rates that are assumptions, not timings of students: prose read at
``WORDS_PER_MINUTE``, code at ``CODE_LINES_PER_MINUTE``, the measured run time (``RUN_SECONDS``),
``MINUTES_PER_FIGURE`` per interactive figure and ``MINUTES_PER_QUESTION`` per question make "reading and running";
``MINUTES_PER_CHECKED_EXERCISE`` per checked and ``MINUTES_PER_OPEN_EXERCISE`` per open exercise make "exercises".
Each part is rounded to ``ROUND_TO_MINUTES`` (halves up) and the total is their sum.

Per exercise (``exercise_items``): each numbered exercise gets ``MINUTES_PER_CHECKED_EXERCISE`` when a code cell checks
it by its key (``exercises.check("NN.k", ...)``, k its number) and ``MINUTES_PER_OPEN_EXERCISE`` otherwise; their sum,
rounded, is the notebook's "exercises" part.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

WORDS_PER_MINUTE = 150
CODE_LINES_PER_MINUTE = 10
MINUTES_PER_FIGURE = 2
MINUTES_PER_QUESTION = 2
MINUTES_PER_CHECKED_EXERCISE = 10  # its data, a few lines, the check's hint loop
MINUTES_PER_OPEN_EXERCISE = 20  # most ask for a new run or a function of 10-40 lines
ROUND_TO_MINUTES = 5

# Wall seconds of `OMP_NUM_THREADS=1 python -m pytest --nbmake notebooks/NN_name.ipynb`, each notebook run alone,
# pytest and kernel start included, on the lab's shared 2-core machine, keyed by the notebook's number.
# 00-09: measured 2026-12-06 at a load average of 3.0-3.9. 12 (ablations) is that day's measurement of the same
# notebook under its former name, 11_ablations. 10 and 11: measured 2026-12-06 after notebook 10 was split into
# 10_hyperspectral and 11_unmixing, once each, at a load average of 1.7-2.1.
RUN_SECONDS = {"00": 18, "01": 18, "02": 13, "03": 30, "04": 16, "05": 83, "06": 111, "07": 76, "08": 29, "09": 88,
               "10": 26, "11": 8, "12": 177}

HEADER = re.compile(r"^\*\*Time to work through\*\*:.*$", re.M)
_LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
_NUMBERED_ITEM = re.compile(r"^\d+\.\s", re.M)
_CHECK_KEY = re.compile(r"""exercises\.check\(\s*["'](\d\d)\.(\d+)["']""")


@dataclass(frozen=True)
class Counts:
    """What a notebook asks of a reader, counted from its cells (see the module docstring)."""

    words: int
    code_lines: int
    figures: int
    exercises: int
    checked_exercises: int
    questions: int


@dataclass(frozen=True)
class Estimate:
    """The estimated minutes to work through one notebook, its counts and its measured run time."""

    counts: Counts
    run_seconds: float

    @property
    def reading_and_running(self) -> int:
        c = self.counts
        minutes = (c.words / WORDS_PER_MINUTE + c.code_lines / CODE_LINES_PER_MINUTE + self.run_seconds / 60
                   + MINUTES_PER_FIGURE * c.figures + MINUTES_PER_QUESTION * c.questions)
        return round_minutes(minutes)

    @property
    def exercises(self) -> int:
        c = self.counts
        return round_minutes(MINUTES_PER_CHECKED_EXERCISE * c.checked_exercises
                             + MINUTES_PER_OPEN_EXERCISE * (c.exercises - c.checked_exercises))

    @property
    def total(self) -> int:
        return self.reading_and_running + self.exercises


def round_minutes(minutes: float) -> int:
    """``minutes`` to the nearest multiple of ``ROUND_TO_MINUTES``, halves up."""
    return _round_to(minutes, ROUND_TO_MINUTES)


def _round_to(value: float, step: int) -> int:
    return int(math.floor(value / step + 0.5)) * step


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def count(notebook: dict) -> Counts:
    """The counts of a notebook (parsed .ipynb JSON).

    Raises:
        ValueError: the notebook has no "## Exercises" cell, or more checked exercises than numbered ones.
    """
    markdown = [_text(c) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    code = [_text(c) for c in notebook["cells"] if c["cell_type"] == "code"]
    exercise_cells = [t for t in markdown if t.lstrip().startswith("## Exercises")]
    if not exercise_cells:
        raise ValueError("no markdown cell opens with '## Exercises'; expected one that numbers the exercises")
    question_cells = [t for t in markdown if "## Check your understanding" in t]
    counts = Counts(
        words=sum(len(_LINK_TARGET.sub("]", t).split()) for t in markdown if not t.startswith("## References")),
        code_lines=sum(1 for t in code for line in t.splitlines() if line.strip()),
        figures=sum(len(re.findall(r"\blive_output\(", t)) for t in code),
        exercises=len(_NUMBERED_ITEM.findall(exercise_cells[0])),
        checked_exercises=sum(1 for t in code if "exercises.check(" in t),
        questions=len(_NUMBERED_ITEM.findall(question_cells[0])) if question_cells else 0,
    )
    if counts.checked_exercises > counts.exercises:
        raise ValueError(f"{counts.checked_exercises} cells check an exercise but only {counts.exercises} exercises "
                         "are numbered under '## Exercises'")
    return counts


@dataclass(frozen=True)
class ExerciseItem:
    """One numbered exercise of a notebook: its number, its text (the numbered item, number left out), whether a
    code cell checks it, and its allowance in minutes."""

    number: int
    text: str
    checked: bool
    minutes: int


def exercise_items(notebook: dict) -> list[ExerciseItem]:
    """The numbered exercises of a notebook (parsed .ipynb JSON), in order, each with its allowance.

    An exercise is checked when a code cell calls ``exercises.check("NN.k", ...)`` with k its number: it gets
    ``MINUTES_PER_CHECKED_EXERCISE``, the others ``MINUTES_PER_OPEN_EXERCISE``. ``estimate(...).exercises`` is the sum
    of the allowances rounded to ``ROUND_TO_MINUTES``.

    Raises:
        ValueError: as ``count``; or a check names an exercise the "## Exercises" cell does not number, or the cells
            that check do not name one exercise each.
    """
    counts = count(notebook)
    cell = next(_text(c) for c in notebook["cells"]
                if c["cell_type"] == "markdown" and _text(c).lstrip().startswith("## Exercises"))
    starts = [m.start() for m in _NUMBERED_ITEM.finditer(cell)]
    texts = [cell[a:b].strip() for a, b in zip(starts, [*starts[1:], len(cell)])]
    texts = [re.sub(r"^\d+\.\s+", "", t) for t in texts]
    code = [_text(c) for c in notebook["cells"] if c["cell_type"] == "code"]
    keys = [int(m.group(2)) for t in code for m in _CHECK_KEY.finditer(t)]
    if len(keys) != counts.checked_exercises or len(set(keys)) != len(keys):
        raise ValueError(f"{counts.checked_exercises} cells call exercises.check but they name the exercises {keys}; "
                         "expected one distinct 'NN.k' key per checking cell")
    unknown = sorted(set(keys) - set(range(1, len(texts) + 1)))
    if unknown:
        raise ValueError(f"exercises {unknown} are checked but the '## Exercises' cell numbers only 1-{len(texts)}")
    return [ExerciseItem(k, text, k in keys,
                         MINUTES_PER_CHECKED_EXERCISE if k in keys else MINUTES_PER_OPEN_EXERCISE)
            for k, text in enumerate(texts, start=1)]


def estimate(notebook: dict, run_seconds: float) -> Estimate:
    """The estimate for a notebook (parsed .ipynb JSON) whose code ran in ``run_seconds``."""
    return Estimate(count(notebook), float(run_seconds))


def estimates(folder: str | Path) -> dict[str, Estimate]:
    """The estimate of every ``NN_name.ipynb`` in ``folder``, by file stem, in order.

    Raises:
        KeyError: a notebook's number has no measured run time in ``RUN_SECONDS``.
    """
    out = {}
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        number = path.stem[:2]
        if number not in RUN_SECONDS:
            raise KeyError(f"{path.name}: no measured run time for notebook {number} in RUN_SECONDS; measure it with "
                           f"`OMP_NUM_THREADS=1 python -m pytest --nbmake {path.name}` and add it")
        out[path.stem] = estimate(json.loads(path.read_text(encoding="utf-8")), RUN_SECONDS[number])
    return out


def run_time_words(seconds: float) -> str:
    """'25 s' under 100 s (to 5 s, at least 5 s), else whole minutes ('3 minutes')."""
    if seconds < 100:
        return f"{max(5, _round_to(seconds, 5))} s"
    return f"{_round_to(seconds / 60, 1)} minutes"


def header_line(e: Estimate) -> str:
    """The notebook's line: '**Time to work through**: about N minutes (estimated: ...)'."""
    return (f"**Time to work through**: about {e.total} minutes (estimated: reading and running "
            f"{e.reading_and_running}, exercises {e.exercises}; the code runs in about {run_time_words(e.run_seconds)} "
            "on a CPU).")


def table_row(stem: str, e: Estimate) -> str:
    """The notebook's row of README's table under "Time to work through a notebook"."""
    c = e.counts
    return (f"| {stem[:2]} | {e.run_seconds:g} | {c.words:,} | {c.code_lines} | {c.figures} | {c.exercises} "
            f"({c.checked_exercises}) | {c.questions} | {e.reading_and_running} | {e.exercises} | **{e.total}** |")


TABLE_HEADER = ("| notebook | run (s, measured) | markdown words | code lines | interactive figures "
                "| exercises (checked) | questions | reading and running (est., min) | exercises (est., min) "
                "| total (est., min) |\n"
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def table(found: dict[str, Estimate]) -> str:
    """README's whole table under "Time to work through a notebook"."""
    return "\n".join([TABLE_HEADER, *(table_row(stem, e) for stem, e in found.items())])


def _notebook_row(stem: str) -> re.Pattern:
    """A row of README's notebook table: it opens with the notebook's link; its last cell is the estimate."""
    return re.compile(rf"^(\| \[{re.escape(stem)}\]\(notebooks/{re.escape(stem)}\.ipynb\) \|.*\| )([^|]*)( \|)$",
                      re.M)


def readme_problems(readme: str, found: dict[str, Estimate]) -> list[str]:
    """Where README disagrees with the estimates: the times table, and the last column of the notebook table."""
    problems = []
    if table(found) not in readme:
        problems.append("README's 'Time to work through a notebook' table is not the computed one")
    for stem, e in found.items():
        row = _notebook_row(stem).search(readme)
        if row is None:
            problems.append(f"README's notebook table has no row for {stem}")
        elif row.group(2).strip() != str(e.total):
            problems.append(f"README's notebook table gives {stem} {row.group(2).strip()} min, computed {e.total}")
    return problems


def header_problems(notebook: dict, e: Estimate) -> list[str]:
    """Where the notebook's first cell disagrees with its estimate."""
    first = _text(notebook["cells"][0])
    found = HEADER.findall(first)
    if len(found) != 1:
        return ["the first cell has no single '**Time to work through**:' line"]
    return [] if found[0] == header_line(e) else [f"its header says {found[0]!r}; computed {header_line(e)!r}"]


def write(root: Path) -> list[str]:
    """Rewrite every notebook's header line and README's two tables under ``root``; return the files changed.

    A header line's words are counted too; its word count does not depend on its numbers, so a second pass over a
    rewritten header changes nothing (the loop stops there).
    """
    folder = root / "notebooks"
    found = estimates(folder)
    changed = []
    for stem in found:
        path = folder / f"{stem}.ipynb"
        notebook = json.loads(path.read_text(encoding="utf-8"))
        first = notebook["cells"][0]
        if len(HEADER.findall(_text(first))) != 1:
            raise ValueError(f"{path.name}: its first cell has no single '**Time to work through**:' line to rewrite")
        rewritten = False
        for _ in range(3):
            found[stem] = estimate(notebook, RUN_SECONDS[stem[:2]])
            new = HEADER.sub(header_line(found[stem]), _text(first))
            if new == _text(first):
                break
            first["source"] = new.splitlines(keepends=True)
            rewritten = True
        if rewritten:
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            changed.append(str(path))
    readme_path = root / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    start = readme.index(TABLE_HEADER.splitlines()[0])
    end = readme.find("\n\n", start)
    updated = readme[:start] + table(found) + (readme[end:] if end != -1 else "\n")
    for stem, e in found.items():
        updated = _notebook_row(stem).sub(lambda m: f"{m.group(1)}{e.total}{m.group(3)}", updated)
    if updated != readme:
        readme_path.write_text(updated, encoding="utf-8")
        changed.append(str(readme_path))
    return changed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the repository (its notebooks/ and README.md)")
    parser.add_argument("--write", action="store_true", help="rewrite the notebooks' header lines and README's tables")
    args = parser.parse_args(argv)
    if args.write:
        print("\n".join(write(args.root)) or "nothing to change")
    else:
        print(table(estimates(args.root / "notebooks")))


if __name__ == "__main__":
    main()
