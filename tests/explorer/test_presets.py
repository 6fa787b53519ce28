"""Links that preset the explorer (``?tab=reconstruct&ratio=0.9&strategy=tube``): read, checked, applied, and the
links the notebooks, the book and the README give."""

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("param", reason="the explorer's state needs param (the lab extra)")

from s2lab.explorer import QUERY, TABS, Explorer, read_query  # noqa: E402
from s2lab.masking import STRATEGIES  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"http://localhost:5006/explorer(\?[^\s)>\]`]*)?")  # a link to the app, with its query


def test_every_query_key_sets_an_input_of_the_explorer():
    assert len(set(QUERY.values())) == len(QUERY)
    for name in QUERY:
        assert name in Explorer.param and Explorer.param[name].precedence != -1, name
    assert list(Explorer.param["tab"].objects) == list(TABS)


def test_a_link_sets_every_value_it_names_typed():
    preset = read_query("?tab=reconstruct&ratio=0.9&strategy=tube&seed=3&threshold=0.4&p=16&s=5"
                        "&composite=false+colour", Explorer)
    assert preset.problems == () and preset.message == ""
    assert preset.values == {"tab": "reconstruct", "mask_ratio": 0.9, "strategy": "tube", "seed": 3,
                             "threshold": 0.4, "patch_size": 16, "bands_per_token": 5, "composite": "false colour"}
    assert type(preset.values["patch_size"]) is int and type(preset.values["mask_ratio"]) is float


def test_the_query_may_come_without_its_question_mark_or_percent_encoded():
    preset = read_query("composite=false%20colour&ratio=0.5", Explorer)
    assert preset.values == {"composite": "false colour", "mask_ratio": 0.5} and not preset.problems


def test_choices_ignore_case_and_a_repeated_key_counts_once_its_last_value():
    preset = read_query("strategy=Tube&composite=swir&ratio=0.5&ratio=0.9", Explorer)
    assert preset.values == {"strategy": "tube", "composite": "SWIR", "mask_ratio": 0.9}


@pytest.mark.parametrize("query, expected", [
    ("ratio=2", "`ratio=2`: expected a number from 0 to 0.95; showing the default, 0.75"),
    ("ratio=nan", "`ratio=nan`: expected a number from 0 to 0.95"),
    ("ratio=-inf", "`ratio=-inf`: expected a number from 0 to 0.95"),
    ("ratio=0,9", "`ratio=0,9`: expected a number from 0 to 0.95"),
    ("ratio=", "`ratio=`: expected a number from 0 to 0.95"),
    ("threshold=1.5", "`threshold=1.5`: expected a number from 0 to 1; showing the default, 0.5"),
    ("seed=1.5", "`seed=1.5`: expected a whole number from 0 to 2147483647; showing the default, 0"),
    ("seed=-1", "`seed=-1`: expected a whole number from 0 to 2147483647"),
    ("s=11", "`s=11`: expected a whole number from 1 to 10; showing the default, 2"),
    ("p=3", "`p=3`: expected one of 2, 4, 8, 16, 32; showing the default, 8"),
    ("strategy=checkerboard", f"`strategy=checkerboard`: expected one of {', '.join(STRATEGIES)}; "
                              "showing the default, random"),
    ("tab=nope", "`tab=nope`: expected one of scene, tokens, reconstruct, change; showing the default, scene"),
    ("composite=natural", "`composite=natural`: expected one of true colour, false colour, SWIR, custom"),
    ("ration=0.9", "`ration=0.9`: not a key the explorer reads (it reads tab, ratio, strategy, seed, threshold, p, "
                   "s, composite)"),
])
def test_a_refused_key_says_what_was_wrong_and_what_was_expected(query, expected):
    preset = read_query(query, Explorer)
    assert preset.values == {}
    assert len(preset.problems) == 1 and preset.problems[0].startswith(expected)
    assert preset.message == f"**Not taken from the link:**\n\n- {preset.problems[0]}"


def test_a_refused_key_leaves_the_others_taken():
    # Panel's location.sync would drop all three: it sets them in one param.update, which one bad value stops.
    preset = read_query("tab=reconstruct&ratio=2&strategy=tube", Explorer)
    assert preset.values == {"tab": "reconstruct", "strategy": "tube"}
    assert [p.split(":")[0] for p in preset.problems] == ["`ratio=2`"]


@pytest.fixture(scope="module")
def session():
    return Explorer()


def test_a_session_opens_as_the_link_says(session):
    shown = session.message
    preset = session.apply_query("?tab=reconstruct&ratio=0.9&strategy=tube")
    assert not preset.problems and session.message == shown  # nothing refused: the message is left alone
    assert (session.tab, session.mask_ratio, session.strategy) == ("reconstruct", 0.9, "tube")
    assert (session.reconstructed.mask_ratio, session.reconstructed.strategy) == (0.9, "tube")


def test_a_bad_link_opens_with_the_defaults_and_says_why():
    session = Explorer()  # a new session: the link is read as the page opens
    threshold = session.threshold  # the shipped change model's own, not the parameter's 0.5
    session.apply_query("?tab=nope&ratio=2&strategy=checkerboard&threshold=7")
    assert (session.tab, session.mask_ratio, session.strategy, session.threshold) == (
        "scene", 0.75, "random", threshold)
    assert session.reconstructed.mask_ratio == 0.75 and session.reconstructed.strategy == "random"
    for problem in ("`tab=nope`: expected one of scene", "`ratio=2`: expected a number from 0 to 0.95",
                    "`strategy=checkerboard`: expected one of random", f"showing the default, {threshold:g}"):
        assert problem in session.message


def _documents() -> dict[str, str]:
    """The text of every notebook's markdown, the README and the book's pages, by name."""
    texts = {p.name: "".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                             if c["cell_type"] == "markdown") for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    texts.update({p.name: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]})
    return texts


def test_every_link_to_the_explorer_in_the_notebooks_book_and_readme_opens_without_a_refused_key():
    links = {(name, m.group(0)) for name, text in _documents().items() for m in LINK.finditer(text)}
    for name, link in links:
        assert not read_query(link.partition("?")[2], Explorer).problems, (name, link)
    with_presets = {name for name, link in links if "?" in link}
    assert {"03_masking.ipynb", "04_live_reconstruction.ipynb", "08_change_detection.ipynb"} <= with_presets


def test_the_readme_states_every_query_key_with_its_values():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The explorer app"):readme.index("## Serving a class")]
    for name, key in QUERY.items():
        row = re.search(rf"^\| `{key}` \|.*$", section, re.M)
        assert row, f"README's table of query keys has no row for `{key}`"
        parameter = Explorer.param[name]
        if hasattr(parameter, "objects"):
            values = [f"`{choice}`" for choice in parameter.objects]
        else:
            values = [" to ".join(f"{b:g}" if isinstance(b, float) else str(b) for b in parameter.bounds)]
        assert all(value in row.group(0) for value in values), (row.group(0), values)
