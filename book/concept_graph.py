"""The lab's concepts: which notebook introduces each, which notebooks use it, and whether that fits the path.

Each notebook declares its concepts in its notebook metadata, under the key ``s2lab``::

    "s2lab": {"introduces": ["cube", "group-major order"],
              "uses": {"helpful": ["band"], "necessary": ["token", "patch"]}}

``introduces`` lists what the notebook explains for the first time. ``uses`` lists what it builds on: ``necessary``
when the notebook cannot be followed without it, ``helpful`` when it deepens a part, an aside or an exercise. Every
name is a term of the ``{glossary}`` block of ``book/glossary.md``. :func:`check` holds the declarations against the
learning path that :mod:`concept_map` reads from the notebooks' ``**Prerequisites**:`` lines, both ways: a notebook
uses only what the notebooks it builds on introduce, and every notebook it links introduces something it uses. The
learning-path page draws the concepts against the notebooks (:func:`draw_matrix`) and gives each notebook a table of
what it builds on (:func:`prerequisite_table`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from concept_map import Notebook, closure, read_path

KEY = "s2lab"
_EXAMPLE = '{"introduces": [...], "uses": {"helpful": [...], "necessary": [...]}}'
_GLOSSARY = re.compile(r"^```\{glossary\}\s*\n(.*?)^```", re.M | re.S)
_NOT_IN_ID = re.compile(r"[^a-zA-Z0-9._]+")


@dataclass(frozen=True)
class Concepts:
    """The concepts one notebook declares: those it introduces, and those it uses, necessary or helpful."""

    stem: str
    introduces: tuple[str, ...]
    necessary: tuple[str, ...]
    helpful: tuple[str, ...]

    def roles(self) -> list[tuple[str, str]]:
        """Every declared (concept, role) pair, role one of "introduces", "necessary", "helpful"."""
        return ([(c, "introduces") for c in self.introduces] + [(c, "necessary") for c in self.necessary]
                + [(c, "helpful") for c in self.helpful])


def glossary_terms(path: Path) -> tuple[str, ...]:
    """The terms of the ``{glossary}`` block of a MyST page: its lines that start in the first column.

    Raises:
        ValueError: the page has no ``{glossary}`` block.
    """
    block = _GLOSSARY.search(Path(path).read_text(encoding="utf-8"))
    if block is None:
        raise ValueError(f"{path}: no ```{{glossary}} block; expected one, with a term per unindented line")
    return tuple(line.strip() for line in block.group(1).splitlines() if line.strip() and not line[0].isspace())


def term_anchor(term: str) -> str:
    """The HTML id Sphinx gives a glossary term: "term-" and the term, every run of other characters than ASCII
    letters, digits, "." and "_" made one "-" ("masked MSE" -> "term-masked-MSE")."""
    return "term-" + _NOT_IN_ID.sub("-", term).strip("-")


def read_concepts(folder: Path) -> list[Concepts]:
    """Read the ``s2lab`` metadata of every ``NN_name.ipynb`` in ``folder``, in file order.

    Raises:
        ValueError: a notebook has no ``s2lab`` entry, or one not of the form in the module docstring.
    """
    found = []
    for f in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        entry = json.loads(f.read_text(encoding="utf-8"))["metadata"].get(KEY)
        if entry is None:
            raise ValueError(f"{f.name}: no '{KEY}' entry in its notebook metadata; expected {_EXAMPLE}")
        uses = entry.get("uses") if isinstance(entry, dict) else None
        if set(entry) != {"introduces", "uses"} or not isinstance(uses, dict) or set(uses) != {"necessary", "helpful"}:
            raise ValueError(f"{f.name}: metadata '{KEY}' is {json.dumps(entry)}; expected {_EXAMPLE}")
        lists = {"introduces": entry["introduces"], "uses.necessary": uses["necessary"],
                 "uses.helpful": uses["helpful"]}
        for where, names in lists.items():
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                raise ValueError(f"{f.name}: metadata '{KEY}.{where}' is {json.dumps(names)}; expected a list of "
                                 "concept names (glossary terms)")
        found.append(Concepts(f.stem, *(tuple(names) for names in lists.values())))
    return found


def introducers(concepts: list[Concepts]) -> dict[str, list[str]]:
    """Each concept and the notebooks that introduce it, in notebook order (one, when :func:`check` passes)."""
    found: dict[str, list[str]] = {}
    for c in concepts:
        for name in c.introduces:
            found.setdefault(name, []).append(c.stem)
    return found


def check(notebooks: list[Notebook], concepts: list[Concepts], terms: tuple[str, ...]) -> list[str]:
    """Everything wrong with the notebooks' concepts, one message per fault; empty when all is well.

    Checks that every declared concept is a glossary term; that a notebook lists each concept once; that every concept
    is introduced by exactly one notebook; that every concept a notebook uses, necessary or helpful, is introduced by a
    notebook in its prerequisite closure (its Prerequisites links, theirs, and so on), so that every notebook that
    introduces a necessary concept of X is among X's prerequisites; and that every notebook X links introduces at
    least one concept X uses.
    """
    stems = [nb.stem for nb in notebooks]
    if stems != [c.stem for c in concepts]:
        return [f"the notebooks read for the path ({', '.join(stems)}) are not those read for the concepts "
                f"({', '.join(c.stem for c in concepts)}); expected the same folder for both"]
    errors = []
    for c in concepts:
        for name, role in c.roles():
            if name not in terms:
                near = difflib.get_close_matches(name, terms, n=1, cutoff=0.8)
                hint = f" (the glossary has '{near[0]}')" if near else ""
                errors.append(f"{c.stem}: '{name}' ({role}) is not a glossary term{hint}; expected a term of the "
                              "{glossary} block of book/glossary.md, or a new entry there")
        for name, count in Counter(name for name, _ in c.roles()).items():
            if count > 1:
                where = ", ".join(role for n, role in c.roles() if n == name)
                errors.append(f"{c.stem}: '{name}' is listed {count} times ({where}); expected it once: under "
                              "introduces, or under uses as necessary or helpful")
    source = introducers(concepts)
    for name, by in source.items():
        if len(by) > 1:
            errors.append(f"'{name}' is introduced by {', '.join(by)}; expected exactly one notebook to introduce it")
    below = closure(notebooks)
    for c in concepts:
        for name, role in c.roles():
            if role == "introduces":
                continue
            if name not in source:
                errors.append(f"{c.stem}: uses '{name}' ({role}), which no notebook introduces; expected one notebook "
                              "to list it under introduces")
            elif source[name][0] != c.stem and source[name][0] not in below[c.stem]:
                reach = ", ".join(sorted(below[c.stem])) or "none"
                errors.append(f"{c.stem}: uses '{name}' ({role}), introduced in {source[name][0]}, which is not among "
                              f"its prerequisites ({reach}); expected {source[name][0]} linked in its Prerequisites "
                              "line, or in the line of a notebook it links")
    declared = {c.stem: c for c in concepts}
    for nb in notebooks:
        used = set(declared[nb.stem].necessary) | set(declared[nb.stem].helpful)
        for r in nb.requires:
            if not used & set(declared[r].introduces):
                errors.append(f"{nb.stem}: its Prerequisites line links {r}, but it uses none of the concepts {r} "
                              f"introduces ({', '.join(declared[r].introduces) or 'none'}); expected one of them "
                              "under uses, or the link removed")
    return errors


def read_checked(folder: Path, glossary: Path) -> tuple[list[Notebook], list[Concepts]]:
    """The path and the concepts of the notebooks in ``folder``, checked against each other and ``glossary``.

    Raises:
        ValueError: :func:`check` found faults; the message lists them all.
    """
    notebooks, concepts = read_path(folder), read_concepts(folder)
    errors = check(notebooks, concepts, glossary_terms(glossary))
    if errors:
        raise ValueError(f"{len(errors)} fault(s) in the notebooks' concepts:\n" + "\n".join(errors))
    return notebooks, concepts


def _short(nb: Notebook) -> str:
    """A notebook's title up to its colon: "08 · Change detection"."""
    return nb.title.split(":")[0].strip()


def prerequisite_table(stem: str, notebooks: list[Notebook], concepts: list[Concepts], *,
                       href: str = "../notebooks/{}.html", glossary: str = "glossary.html#{}") -> str:
    """A notebook's prerequisites as Markdown: its links, what it introduces, and a table of the concepts it uses.

    The table (concept | necessary / helpful | introduced in) gives necessary concepts first, each group in the order
    the notebooks introduce them; "introduced in" links that notebook (``href`` with its file stem) and every concept
    links its glossary entry (``glossary`` with :func:`term_anchor`). The defaults are the pages of the built book
    seen from a page of book/: Sphinx does not resolve the links of Markdown that a cell displays. A linked
    prerequisite is called necessary when it introduces a necessary concept of the notebook, helpful otherwise.
    """
    by_stem = {nb.stem: nb for nb in notebooks}
    declared = {c.stem: c for c in concepts}
    order = {name: i for i, name in enumerate(name for c in concepts for name in c.introduces)}
    source = {name: by[0] for name, by in introducers(concepts).items()}
    me = declared[stem]

    def link(s: str) -> str:
        return f"[{_short(by_stem[s])}]({href.format(s)})"

    def term(name: str) -> str:
        return f"[{name}]({glossary.format(term_anchor(name))})"

    links = [f"{link(r)} ({'necessary' if set(declared[r].introduces) & set(me.necessary) else 'helpful'})"
             for r in by_stem[stem].requires]
    lines = [f"**{link(stem)}**", "",
             f"Builds on: {', '.join(links) or 'no other notebook'}. "
             f"Introduces: {'; '.join(map(term, me.introduces)) or 'no new concept'}.", ""]
    rows = sorted((rank, order[name], name, role)
                  for rank, (role, names) in enumerate((("necessary", me.necessary), ("helpful", me.helpful)))
                  for name in names)
    if rows:
        lines += ["| concept | necessary / helpful | introduced in |", "| --- | --- | --- |"]
        lines += [f"| {term(name)} | {role} | {link(source[name])} |" for _, _, name, role in rows]
    return "\n".join(lines)


def draw_matrix(notebooks: list[Notebook], concepts: list[Concepts], *, width: float = 8.0) -> Figure:
    """Concepts (rows, in the order they are introduced) against notebooks (columns): a square where a concept is
    introduced, a filled circle where a notebook needs it, an open circle where it helps."""
    stems = [nb.stem for nb in notebooks]
    rows = [(name, c.stem) for c in concepts for name in c.introduces]
    y = {name: i for i, (name, _) in enumerate(rows)}
    fig, ax = plt.subplots(figsize=(width, 0.17 * len(rows) + 1.4))
    shade = False
    for i, (_, s) in enumerate(rows):  # a light band behind the concepts of every other notebook
        if i == 0 or rows[i - 1][1] != s:
            shade = not shade
        if shade:
            ax.axhspan(i - 0.5, i + 0.5, color="#eef3f9", zorder=0, lw=0)
    points: dict[str, list[tuple[int, int]]] = {"introduces": [], "necessary": [], "helpful": []}
    for c in concepts:
        for name, role in c.roles():
            if name in y:
                points[role].append((stems.index(c.stem), y[name]))
    styles = {"introduces": dict(marker="s", s=46, c="#2f5d8a", label="introduced"),
              "necessary": dict(marker="o", s=30, c="#d55e00", label="used: necessary"),
              "helpful": dict(marker="o", s=30, facecolors="none", edgecolors="#d55e00", label="used: helpful")}
    for role, xy in points.items():
        ax.scatter([x for x, _ in xy], [v for _, v in xy], zorder=2, linewidths=1.1, **styles[role])
    ax.set_xticks(range(len(stems)), [s[:2] for s in stems])
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8.5)
    ax.set_xlim(-0.6, len(stems) - 0.4)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", color="0.88", lw=0.8, zorder=1)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False, fontsize=9)
    ax.set_title("Concepts by notebook: where each is introduced and where it is used", fontsize=11, pad=22)
    fig.tight_layout()
    return fig
