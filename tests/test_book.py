"""The book's helpers (book/): the learning path read from the notebooks, the instructors' page and its tried answers,
and the offline link check of the site."""

import ast
import asyncio
import importlib.util
import json
import math
import re
import sys
import time
from pathlib import Path
from queue import Empty

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"book_{name}", ROOT / "book" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


from s2lab import nbclient_wakeup  # noqa: E402

concept_map = _load("concept_map")
check_links = _load("check_links")
widget_outputs = _load("widget_outputs")
tried_answers = _load("tried_answers")
sys.modules.setdefault("tried_answers", tried_answers)  # instructor_pack imports it by name, as the page does
instructor_pack = _load("instructor_pack")


def _notebook(folder: Path, stem: str, markdown: str) -> None:
    cell = {"cell_type": "markdown", "metadata": {}, "source": markdown.splitlines(keepends=True)}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / f"{stem}.ipynb").write_text(json.dumps(nb))


def test_the_lab_notebooks_form_one_path_from_the_first():
    notebooks = concept_map.read_path(ROOT / "notebooks")
    depth = concept_map.depths(notebooks)
    first = notebooks[0]
    assert first.requires == () and depth[first.stem] == 0
    assert all(nb.requires for nb in notebooks[1:]), "every notebook after the first names its prerequisites"
    assert all(depth[r] < depth[nb.stem] for nb in notebooks for r in nb.requires)


def test_prerequisites_are_read_from_the_links_and_reduced(tmp_path):
    _notebook(tmp_path, "00_a", "# 00 · A\n\n**Prerequisites**: none.\n")
    _notebook(tmp_path, "01_b", "# 01 · B\n\n**Prerequisites**: [00](00_a.ipynb).\n**Time**: 5 min\n")
    _notebook(tmp_path, "02_c", "# 02 · C\n\n**Prerequisites**: [00](00_a.ipynb), [01](01_b.ipynb);\nnumpy.\n")
    notebooks = concept_map.read_path(tmp_path)
    assert [nb.requires for nb in notebooks] == [(), ("00_a",), ("00_a", "01_b")]
    assert concept_map.depths(notebooks) == {"00_a": 0, "01_b": 1, "02_c": 2}
    assert concept_map.direct(notebooks)["02_c"] == ("01_b",)  # 00 is reached through 01
    assert len(concept_map.draw(notebooks).axes[0].patches) == 3 + 2  # a box per notebook, an arrow per direct edge


def test_a_prerequisite_that_is_no_notebook_is_named(tmp_path):
    _notebook(tmp_path, "00_a", "# 00 · A\n\n**Prerequisites**: [99](99_gone.ipynb).\n")
    with pytest.raises(ValueError, match="99_gone"):
        concept_map.read_path(tmp_path)


def test_a_cycle_of_prerequisites_is_refused(tmp_path):
    _notebook(tmp_path, "00_a", "# 00 · A\n\n**Prerequisites**: [01](01_b.ipynb).\n")
    _notebook(tmp_path, "01_b", "# 01 · B\n\n**Prerequisites**: [00](00_a.ipynb).\n")
    with pytest.raises(ValueError, match="cycle"):
        concept_map.depths(concept_map.read_path(tmp_path))


def test_every_notebook_is_a_chapter_of_the_book():
    index = (ROOT / "book" / "index.md").read_text(encoding="utf-8")
    chapters = set(re.findall(r"^/notebooks/(\S+)$", index, re.M))
    assert chapters == {f.stem for f in (ROOT / "notebooks").glob("*.ipynb")}


def _code_cells(page: Path) -> list[str]:
    """The code of every ``{code-cell}`` of a MyST notebook page, its option lines (``:tags: ...``) left out."""
    cells = re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
    return ["\n".join(line for line in cell.splitlines() if not line.startswith(":")) for cell in cells]


def test_the_instructors_page_runs_and_shows_every_exercise(monkeypatch):
    """The page's cells, run in order from book/ as the build runs them: every exercise of every notebook gets its
    row and its rubric (the page's own cells refuse an exercise without one, and a notebook without a section)."""
    monkeypatch.chdir(ROOT / "book")
    monkeypatch.syspath_prepend(str(ROOT / "book"))
    namespace: dict = {}
    shown = []
    for i, code in enumerate(_code_cells(ROOT / "book" / "instructors.md")):
        tree = ast.parse(code)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, f"instructors.md cell {i}", "exec"), namespace)
        if last is not None:
            shown.append(eval(compile(ast.Expression(last.value), f"instructors.md cell {i}", "eval"), namespace))
    text = "\n".join(getattr(out, "data", "") for out in shown)
    for e in instructor_pack.exercises():
        assert f"| {e.key} |" in text and f"**{e.key}**" in text, e.key
    assert "| 12_ablations |" in text  # the overview of the notebooks


def test_every_exercise_has_a_rubric_and_every_rubric_an_exercise():
    found = instructor_pack.exercises()
    assert instructor_pack.problems(found) == []
    assert [e.key for e in found] == list(instructor_pack.RUBRIC)  # in the notebooks' order
    assert all(r.asks and r.full and r.partial for r in instructor_pack.RUBRIC.values())


def test_a_new_or_changed_exercise_is_named():
    found = instructor_pack.exercises()
    new = instructor_pack.Exercise("99.1", "99_new", "Do something new.", False, 20)
    assert instructor_pack.problems([*found, new]) == [
        "99.1: no rubric for this exercise of 99_new (it opens 'Do something new.')"]
    first = found[0]
    reworded = [instructor_pack.Exercise(first.key, first.notebook, "Something else.", first.checked, first.minutes),
                *found[1:]]
    assert any("now opens 'Something else.'" in p for p in instructor_pack.problems(reworded))
    unchecked = [instructor_pack.Exercise(e.key, e.notebook, e.text, False, e.minutes) if e.checked else e
                 for e in found]
    assert sum("does not check it" in p for p in instructor_pack.problems(unchecked)) == sum(e.checked for e in found)
    assert instructor_pack.problems(found[:-1]) == ["12.4: a rubric for an exercise that no notebook numbers"]


def test_the_checked_exercises_are_the_registered_ones_and_all_were_tried():
    from s2lab import exercises

    tried = json.loads(instructor_pack.TRIED.read_text(encoding="utf-8"))
    checked = {e.key for e in instructor_pack.exercises() if e.checked}
    assert checked == set(exercises.REGISTRY) == set(tried_answers.TRIALS) == set(tried["exercises"])


def _current_hyperspectral() -> str:
    from s2lab.data.hyperspectral import open_hyperspectral

    return str(open_hyperspectral().cube.attrs["source"])


@pytest.mark.parametrize("key", [k for k, trial in tried_answers.TRIALS.items() if trial.quick])
def test_the_tried_answers_still_get_the_verdicts_the_page_shows(key):
    recorded = json.loads(instructor_pack.TRIED.read_text(encoding="utf-8"))
    if key == "11.3" and recorded["hyperspectral"] != _current_hyperspectral():
        pytest.skip(f"the answers were tried on the {recorded['hyperspectral']} cube; this run finds another")
    again = tried_answers.try_exercise(key)
    assert [(r["seed"], [(a["answer"], a["passed"]) for a in r["answers"]]) for r in again] == \
        [(r["seed"], [(a["answer"], a["passed"]) for a in r["answers"]]) for r in recorded["exercises"][key]], \
        f"run `python book/tried_answers.py` and read the rubric of {key} again"


def test_the_counts_of_different_data_the_page_shows_hold():
    recorded = json.loads(instructor_pack.TRIED.read_text(encoding="utf-8"))["draws"]
    for key, count in recorded["distinct"].items():
        if key != "04.1":  # its draw opens the scene each time: 200 draws take half a minute
            assert tried_answers.distinct_draws(key, recorded["seeds"]) == count, key


def test_every_answer_that_passes_says_why_and_every_solution_passes():
    recorded = json.loads(instructor_pack.TRIED.read_text(encoding="utf-8"))
    for key, records in recorded["exercises"].items():
        because = tried_answers.TRIALS[key].passes_because
        described = {a["answer"] for r in records for a in r["answers"]}
        assert set(because) <= described, key
        for r in records:
            assert r["answers"][0]["passed"], f"{key}: the solution's answer fails for {r['student']}"
            assert all(a["answer"] in because for a in r["answers"][1:] if a["passed"]), key


def test_the_counts_the_rubric_quotes_hold():
    """The rubric states a few counts over the students' draws; they are recomputed here from the checks' own
    draws, and the rubric must still quote them."""
    from s2lab import exercises, masking
    from s2lab.exercises.hyperspectral_and_ablations import sensor_wavelengths

    rubric = instructor_pack.RUBRIC
    # 03.1: ratio^G against the exact share, over every grid and ratio drawn
    grids = {(d["G"], d["N"], d["ratio"]) for d in (exercises.data("03.1", seed=s) for s in range(300))}
    assert len(grids) == 3 * 5
    gap = max(abs(r**G - math.comb(G * N - G, G * N - masking.num_kept(G * N, r) - G)
                  / math.comb(G * N, G * N - masking.num_kept(G * N, r))) for G, N, r in grids)
    assert gap < 0.002 < 0.015 and "less than 0.002" in rubric["03.1"].pitfalls[0]

    # 03.3: where counting kept tokens with int instead of round moves the smallest side
    def rounded(L: int, r: float) -> int:
        try:
            return masking.num_kept(L, r)
        except ValueError:  # keeps no token
            return 0

    def side(D: int, r: float, kept) -> int:  # the smallest multiple of p = 8 whose kept tokens reach K = 6 D (G = 5)
        s = 8
        while kept(5 * (s // 8) ** 2, r) < 6 * D:
            s += 8
        return s

    pairs = {(d["D"], d["ratio"]) for d in (exercises.data("03.3", seed=s) for s in range(300))}
    moved = {(D, r) for D, r in pairs if side(D, r, rounded) != side(D, r, lambda L, r: int(L * (1 - r)))}
    assert len(pairs) == 15 and moved == {(96, 0.8), (192, 0.9)}
    assert "D = 96 at 0.8, D = 192 at 0.9" in rubric["03.3"].pitfalls[0]

    # 06.4: how often the class that takes the largest confusion is also the least precise
    same = 0
    for s in range(100):
        d = exercises.data("06.4", seed=s)
        matrix = np.zeros((10, 10), dtype=np.int64)
        np.add.at(matrix, (d["truth"], d["logits"].argmax(axis=1)), 1)
        precision = np.diag(matrix) / matrix.sum(axis=0)  # (10,)
        confused = np.unravel_index((matrix - np.diag(np.diag(matrix))).argmax(), matrix.shape)  # (truth, prediction)
        same += int(precision.argmin() == confused[1])
    assert same == 16 and "16 students" in rubric["06.4"].pitfalls[0]

    # 10.3: how often one group holds the last band below the window and the first above (it straddles the window),
    # how often the check then rejects the similarity 1 of that reading, and how often the group's mean falls inside
    straddle = rejected = inside = 0
    for s in range(300):
        d = exercises.data("10.3", seed=s)
        nm, low, high = sensor_wavelengths(d), *d["removed_nm"]
        below = int(np.flatnonzero(nm < low)[-1])
        if below // d["s"] == (below + 1) // d["s"]:
            G = math.ceil(len(nm) / d["s"])
            straddle += 1
            rejected += not exercises.check("10.3", (G, G * (d["tile"] // d["p"]) ** 2, 1.0), seed=s)
            group = nm[below // d["s"] * d["s"]:(below // d["s"] + 1) * d["s"]]
            inside += bool(low < group.mean() < high)
    assert straddle == rejected == 220 and "for 220 of seeds 0-299" in rubric["10.3"].pitfalls[0]
    assert "for every one of them; for the other 80" in rubric["10.3"].pitfalls[0]
    assert inside == 217 and "217 of the 220 seeds of 0-299" in rubric["10.3"].full


def test_broken_internal_links_are_found_and_external_ones_left(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/page.html#nowhere">bad anchor</a>'
        '<img src="missing.png"> <a href="https://example.org/x">external</a> <a href="#top" id="top">self</a>'
    )
    (tmp_path / "sub" / "page.html").write_text('<h1 id="here">here</h1><a href="../index.html">back</a>')
    broken, external = check_links.broken_links(tmp_path)
    assert broken == [
        "index.html: sub/page.html#nowhere (no anchor #nowhere in sub/page.html)",
        "index.html: missing.png (no file missing.png)",
    ]
    assert external == 1
    assert check_links.main([str(tmp_path)]) == 1


def test_images_without_alt_text_are_named_with_their_page(tmp_path, capsys):
    (tmp_path / "_images").mkdir()
    for name in ("a.png", "b c.png", "d.svg", "e.png", "f.png"):
        (tmp_path / "_images" / name).write_bytes(b"")
    (tmp_path / "ok.html").write_text('<img src="_images/a.png" alt="Loss falls, then flattens.">')
    (tmp_path / "bad.html").write_text(
        '<img src="_images/a.png"> <img alt="  " src="_images/e.png"> <img src="_images/f.png" alt="">'
        '<img src="_images/b%20c.png" alt="_images/b c.png">'  # docutils' fallback: the address as the alt
        '<img src="_images/d.svg" alt="_images/d.svg"> <IMG SRC="_images/a.png" ALT="A map of the scene.">'
    )
    assert check_links.images_without_alt(tmp_path) == [
        "bad.html: _images/a.png", "bad.html: _images/e.png", "bad.html: _images/f.png", "bad.html: _images/b%20c.png",
        "bad.html: _images/d.svg",
    ]
    assert check_links.broken_links(tmp_path) == ([], 0)
    assert check_links.main([str(tmp_path)]) == 1  # no broken link, but images without alt text fail the check
    assert "image without alt text: bad.html: _images/d.svg" in capsys.readouterr().err
    (tmp_path / "bad.html").unlink()
    assert check_links.main([str(tmp_path)]) == 0


def test_a_folder_without_pages_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="make book"):
        check_links.broken_links(tmp_path)
    with pytest.raises(FileNotFoundError, match="make book"):
        check_links.images_without_alt(tmp_path)


def test_a_widget_view_is_drawn_by_the_outputs_its_output_widgets_hold():
    figure = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}
    printed = {"output_type": "stream", "name": "stdout", "text": "drawing 1.0\n"}
    state = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out", "IPY_MODEL_x"]}},
        "slider": {"model_name": "FloatSliderModel", "state": {"value": 1.0}},
        "out": {"model_name": "OutputModel", "state": {"outputs": [printed, figure]}},
    }
    assert widget_outputs.stored_outputs(state, "box") == [printed, figure]  # the missing child x is skipped
    assert widget_outputs.stored_outputs(state, "slider") == []
    assert widget_outputs.stored_outputs(state, "gone") == []


def test_a_figure_the_cell_shows_itself_is_recognised():
    own = [{"output_type": "display_data", "data": {"image/png": ["iVB", "OR"], "text/plain": "<Figure>"}}]
    stored = {"output_type": "display_data", "data": {"image/png": "iVBOR"}}
    assert widget_outputs._images(stored) & widget_outputs.shown_images(own)
    assert not widget_outputs._images(stored) & widget_outputs.shown_images([])


def _deaf_channel(arrives_on_call: float):
    """A shell channel's ``get_msg`` that is never woken: it reads a message only when its timeout ends (the way
    nbclient's reply wait behaves after an Output widget's update; s2lab/nbclient_wakeup.py). The reply is there from
    the ``arrives_on_call``-th call on (counted, not timed, so a loaded machine gives the same calls)."""
    calls: list[float | None] = []

    async def get_msg(timeout=None):
        calls.append(timeout)
        await asyncio.sleep(timeout)
        if len(calls) >= arrives_on_call:
            return {"msg_type": "execute_reply"}
        raise Empty

    return get_msg, calls


def test_a_reply_that_wakes_no_one_is_read_within_a_slice():
    get_msg, calls = _deaf_channel(arrives_on_call=3)
    start = time.monotonic()
    msg = asyncio.run(nbclient_wakeup.in_slices(get_msg, step=0.02)(timeout=30))
    assert msg == {"msg_type": "execute_reply"}
    assert time.monotonic() - start < 5  # not the 30 s a single wait takes
    assert len(calls) == 3 and max(calls) <= 0.02


def test_the_callers_timeout_is_kept_across_slices():
    get_msg, calls = _deaf_channel(arrives_on_call=math.inf)
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(nbclient_wakeup.in_slices(get_msg, step=0.02)(timeout=0.1))
    assert time.monotonic() - start >= 0.1
    # slices of at most one step, never asking past the caller's timeout (a loaded machine oversleeps: fewer slices)
    assert calls and max(calls) <= 0.02 and sum(calls) <= 0.1 + 1e-9


def test_a_slice_must_last():
    with pytest.raises(ValueError, match="step must be a positive"):
        nbclient_wakeup.in_slices(lambda timeout=None: None, step=0)


@pytest.mark.slow
def test_cells_after_output_widgets_run_without_waiting_out_the_timeout(monkeypatch):
    """A real kernel: cells that draw a figure into an ipywidgets Output, then more cells. Without the slices, nbclient
    now and then reads one of these replies only at the cell timeout (60 s here)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipywidgets")
    pytest.importorskip("ipykernel")
    for name in ("async_start_new_kernel_client", "start_new_kernel_client"):  # restored after the test
        monkeypatch.setattr(nbclient.NotebookClient, name, getattr(nbclient.NotebookClient, name))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the inline backend: figures go into the Output, as in the book
    nbclient_wakeup.install()
    setup = "import ipywidgets, matplotlib.pyplot as plt\nfrom IPython.display import display"
    draw = "out = ipywidgets.Output()\ndisplay(out)\nwith out:\n    plt.plot([0, 1, {}])\n    plt.show()"
    cells = [setup, *(draw.format(i) for i in range(8)), "print('done')"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    start = time.monotonic()
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert time.monotonic() - start < 60, "a cell's reply was read only at the cell timeout"
    assert nb.cells[-1].outputs[0]["text"] == "done\n"
    outputs = [o for state in nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"].values()
               if state["model_name"] == "OutputModel" for o in state["state"]["outputs"]]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 8  # each Output holds its figure
