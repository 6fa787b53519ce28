"""The concepts the notebooks declare in their metadata (book/concept_graph.py): the lab's own, and every fault the
check finds, each on a small folder of made-up notebooks."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    """A module of book/ under its own name, as the book imports it (conf.py puts book/ on the path)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "book" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses, and concept_graph's import of concept_map, look it up there
        spec.loader.exec_module(module)
    return sys.modules[name]


concept_map = _load("concept_map")
concept_graph = _load("concept_graph")

GLOSSARY = ("# Glossary\n\n```{glossary}\nalpha\n  The first.\n\nbeta\n  The second.\n\ngamma, delta\n"
            "  Two names.\n```\n")


def _lab(folder: Path, notebooks: dict[str, tuple[str, dict | None]]) -> tuple[Path, Path]:
    """Write made-up notebooks (stem: (prerequisite stems, s2lab metadata or None)) and the glossary above."""
    for stem, (requires, entry) in notebooks.items():
        links = ", ".join(f"[{r[:2]}]({r}.ipynb)" for r in requires) or "none"
        cell = {"cell_type": "markdown", "metadata": {}, "source": [f"# {stem[:2]} · {stem[3:]}\n\n",
                                                                     f"**Prerequisites**: {links}.\n"]}
        metadata = {} if entry is None else {"s2lab": entry}
        nb = {"cells": [cell], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
        (folder / f"{stem}.ipynb").write_text(json.dumps(nb))
    (folder / "glossary.md").write_text(GLOSSARY)
    return folder, folder / "glossary.md"


def _entry(introduces=(), necessary=(), helpful=()) -> dict:
    return {"introduces": list(introduces), "uses": {"helpful": list(helpful), "necessary": list(necessary)}}


def _faults(folder: Path, glossary: Path) -> list[str]:
    notebooks, concepts = concept_map.read_path(folder), concept_graph.read_concepts(folder)
    return concept_graph.check(notebooks, concepts, concept_graph.glossary_terms(glossary))


# --- the lab's own notebooks and glossary ---------------------------------------------------------------------------


def test_the_lab_notebooks_declare_concepts_that_fit_their_path():
    notebooks, concepts = concept_graph.read_checked(ROOT / "notebooks", ROOT / "book" / "glossary.md")
    assert len(concepts) == len(notebooks) == 13
    assert all(c.introduces for c in concepts), "every notebook introduces at least one concept"


def test_every_glossary_term_is_introduced_and_its_entry_links_the_notebook():
    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    block = re.search(r"^```\{glossary\}\n(.*?)^```", text, re.M | re.S).group(1)
    entries = dict(re.findall(r"^(\S[^\n]*)\n((?:[ \t]+[^\n]*\n?)+)", block, re.M))
    source = concept_graph.introducers(concept_graph.read_concepts(ROOT / "notebooks"))
    assert set(entries) == set(concept_graph.glossary_terms(ROOT / "book" / "glossary.md"))
    assert set(entries) == set(source), "every glossary term is a concept some notebook introduces"
    for term, definition in entries.items():
        assert f"{{doc}}`/notebooks/{source[term][0]}`" in definition, f"'{term}' links {source[term][0]}"


def test_the_learning_path_page_reads_the_checked_concepts():
    page = (ROOT / "book" / "learning_path.md").read_text(encoding="utf-8")
    assert "read_checked(" in page and "draw_matrix(" in page and "prerequisite_table(" in page


# --- the check, on made-up notebooks ---------------------------------------------------------------------------------


def test_concepts_that_fit_the_path_pass_through_a_chain_of_prerequisites(tmp_path):
    folder, glossary = _lab(tmp_path, {
        "00_a": ((), _entry(["alpha"])),
        "01_b": (("00_a",), _entry(["beta"], necessary=["alpha"])),
        "02_c": (("01_b",), _entry(["gamma, delta"], necessary=["beta"], helpful=["alpha"])),  # alpha through 01_b
    })
    assert _faults(folder, glossary) == []
    notebooks, concepts = concept_graph.read_checked(folder, glossary)
    assert concepts[2] == concept_graph.Concepts("02_c", ("gamma, delta",), ("beta",), ("alpha",))


def test_a_concept_that_is_no_glossary_term_is_named(tmp_path):
    folder, glossary = _lab(tmp_path, {"00_a": ((), _entry(["alpha", "betta"]))})
    assert _faults(folder, glossary) == [
        "00_a: 'betta' (introduces) is not a glossary term (the glossary has 'beta'); expected a term of the "
        "{glossary} block of book/glossary.md, or a new entry there"]


def test_a_concept_introduced_twice_names_both_notebooks(tmp_path):
    folder, glossary = _lab(tmp_path, {
        "00_a": ((), _entry(["alpha"])),
        "01_b": ((), _entry(["alpha", "beta"])),
    })
    assert _faults(folder, glossary) == [
        "'alpha' is introduced by 00_a, 01_b; expected exactly one notebook to introduce it"]


def test_a_concept_no_notebook_introduces_is_named(tmp_path):
    folder, glossary = _lab(tmp_path, {"00_a": ((), _entry(["alpha"], helpful=["beta"]))})
    assert _faults(folder, glossary) == [
        "00_a: uses 'beta' (helpful), which no notebook introduces; expected one notebook to list it under introduces"]


@pytest.mark.parametrize("role", ["necessary", "helpful"])
def test_a_concept_from_outside_the_prerequisites_names_where_it_is_introduced(tmp_path, role):
    folder, glossary = _lab(tmp_path, {
        "00_a": ((), _entry(["alpha"])),
        "01_b": ((), _entry(["beta"])),  # not linked by 02_c, nor by 00_a
        "02_c": (("00_a",), _entry(["gamma, delta"], **{role: ["alpha", "beta"]})),
    })
    assert _faults(folder, glossary) == [
        f"02_c: uses 'beta' ({role}), introduced in 01_b, which is not among its prerequisites (00_a); expected "
        "01_b linked in its Prerequisites line, or in the line of a notebook it links"]


def test_a_concept_a_later_notebook_introduces_is_refused(tmp_path):
    folder, glossary = _lab(tmp_path, {
        "00_a": ((), _entry(["alpha"], necessary=["beta"])),
        "01_b": (("00_a",), _entry(["beta"], necessary=["alpha"])),
    })
    assert _faults(folder, glossary) == [
        "00_a: uses 'beta' (necessary), introduced in 01_b, which is not among its prerequisites (none); expected "
        "01_b linked in its Prerequisites line, or in the line of a notebook it links"]


def test_a_concept_listed_twice_in_one_notebook_is_named(tmp_path):
    folder, glossary = _lab(tmp_path, {"00_a": ((), _entry(["alpha"], necessary=["alpha"]))})
    assert _faults(folder, glossary) == [
        "00_a: 'alpha' is listed 2 times (introduces, necessary); expected it once: under introduces, or under uses "
        "as necessary or helpful"]


def test_a_prerequisite_that_teaches_nothing_used_is_named(tmp_path):
    folder, glossary = _lab(tmp_path, {
        "00_a": ((), _entry(["alpha"])),
        "01_b": ((), _entry(["beta"])),
        "02_c": (("00_a", "01_b"), _entry(["gamma, delta"], necessary=["alpha"])),
    })
    assert _faults(folder, glossary) == [
        "02_c: its Prerequisites line links 01_b, but it uses none of the concepts 01_b introduces (beta); expected "
        "one of them under uses, or the link removed"]


def test_every_fault_is_reported_at_once(tmp_path):
    folder, glossary = _lab(tmp_path, {
        "00_a": ((), _entry(["alpha", "omega"])),
        "01_b": (("00_a",), _entry(["alpha"], necessary=["beta"])),
    })
    with pytest.raises(ValueError, match=r"4 fault\(s\)") as raised:
        concept_graph.read_checked(folder, glossary)
    assert "'omega' (introduces) is not a glossary term" in str(raised.value)
    assert "'alpha' is introduced by 00_a, 01_b" in str(raised.value)
    assert "01_b: uses 'beta' (necessary), which no notebook introduces" in str(raised.value)
    assert "01_b: its Prerequisites line links 00_a, but it uses none" in str(raised.value)


@pytest.mark.parametrize(("entry", "expected"), [
    (None, "00_a.ipynb: no 's2lab' entry in its notebook metadata"),
    ({"introduces": ["alpha"]}, "00_a.ipynb: metadata 's2lab' is"),
    ({"introduces": ["alpha"], "uses": {"necessary": []}}, "00_a.ipynb: metadata 's2lab' is"),
    ({"introduces": "alpha", "uses": {"necessary": [], "helpful": []}}, "'s2lab.introduces' is \"alpha\""),
    ({"introduces": [], "uses": {"necessary": [1], "helpful": []}}, "'s2lab.uses.necessary' is \\[1\\]"),
])
def test_metadata_not_of_the_schema_is_refused(tmp_path, entry, expected):
    folder, _ = _lab(tmp_path, {"00_a": ((), entry)})
    with pytest.raises(ValueError, match=expected):
        concept_graph.read_concepts(folder)


def test_glossary_terms_are_its_unindented_lines(tmp_path):
    assert concept_graph.glossary_terms(_lab(tmp_path, {})[1]) == ("alpha", "beta", "gamma, delta")
    (tmp_path / "empty.md").write_text("# Glossary\n\nNo block.\n")
    with pytest.raises(ValueError, match="no ```{glossary} block"):
        concept_graph.glossary_terms(tmp_path / "empty.md")


# --- what the learning-path page draws --------------------------------------------------------------------------------


def test_the_table_gives_necessary_concepts_first_with_where_they_are_introduced(tmp_path):
    folder, glossary = _lab(tmp_path, {
        "00_a": ((), _entry(["alpha", "beta"])),
        "01_b": ((), _entry(["gamma, delta"])),
        "02_c": (("00_a", "01_b"), _entry([], necessary=["gamma, delta", "beta"], helpful=["alpha"])),
    })
    notebooks, concepts = concept_graph.read_checked(folder, glossary)
    table = concept_graph.prerequisite_table("02_c", notebooks, concepts, href="nb/{}.html", glossary="g#{}")
    assert table.splitlines() == [
        "**[02 · c](nb/02_c.html)**",
        "",
        "Builds on: [00 · a](nb/00_a.html) (necessary), [01 · b](nb/01_b.html) (necessary). "
        "Introduces: no new concept.",
        "",
        "| concept | necessary / helpful | introduced in |",
        "| --- | --- | --- |",
        "| [beta](g#term-beta) | necessary | [00 · a](nb/00_a.html) |",  # in the order the path introduces them
        "| [gamma, delta](g#term-gamma-delta) | necessary | [01 · b](nb/01_b.html) |",
        "| [alpha](g#term-alpha) | helpful | [00 · a](nb/00_a.html) |",
    ]
    first = concept_graph.prerequisite_table("00_a", notebooks, concepts, glossary="g#{}")
    assert first.splitlines()[2] == ("Builds on: no other notebook. "
                                     "Introduces: [alpha](g#term-alpha); [beta](g#term-beta).")
    assert "|" not in first


@pytest.mark.parametrize(("term", "anchor"), [("masked MSE", "term-masked-MSE"), ("group-major order",
                         "term-group-major-order"), ("ids_keep, ids_restore", "term-ids_keep-ids_restore")])
def test_a_concept_links_the_anchor_sphinx_gives_its_glossary_entry(term, anchor):
    assert concept_graph.term_anchor(term) == anchor  # as read from the built book's glossary.html


def test_the_matrix_marks_every_declared_concept_once(tmp_path):
    folder, glossary = _lab(tmp_path, {
        "00_a": ((), _entry(["alpha", "beta"])),
        "01_b": (("00_a",), _entry(["gamma, delta"], necessary=["alpha"], helpful=["beta"])),
    })
    notebooks, concepts = concept_graph.read_checked(folder, glossary)
    ax = concept_graph.draw_matrix(notebooks, concepts).axes[0]
    marks = [c.get_offsets().tolist() for c in ax.collections]
    assert marks == [[[0, 0], [0, 1], [1, 2]], [[1, 0]], [[1, 1]]]  # introduced, necessary, helpful: (notebook, row)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["alpha", "beta", "gamma, delta"]
