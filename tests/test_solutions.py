"""The reference solutions run, and solve the checkable exercises of their notebook.

Each script of notebooks/solutions/ runs in its own Python (cwd notebooks/solutions, MPLBACKEND=Agg, one torch
thread, a time limit) and must exit 0; its own asserts test its claims. A script whose notebook has exercises in
``s2lab.exercises`` must also print a pass for each of them, for a student other than the default one, so a
solution that no longer solves its exercise fails here. S2LAB_SOLUTIONS_QUICK=1 makes the scripts that train (06, 07,
09, 10, 12) train for fewer steps: their code and asserts are tested, not the numbers their comments quote.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from s2lab import exercises

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.py"))
TIME_LIMIT_S = 400
STUDENT = "ci-solutions"


def test_every_notebook_has_a_solution_script():
    notebooks = {path.stem for path in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks and notebooks == {path.stem for path in SOLUTIONS}


@pytest.mark.slow
@pytest.mark.parametrize("script", SOLUTIONS, ids=lambda path: path.stem)
def test_solution_runs_and_passes_its_checks(script):
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), S2LAB_SOLUTIONS_QUICK="1",
               **{exercises.STUDENT_VARIABLE: STUDENT})
    done = subprocess.run([sys.executable, script.name], cwd=script.parent, env=env, capture_output=True, text=True,
                          timeout=TIME_LIMIT_S)
    assert done.returncode == 0, (f"{script.name} exited {done.returncode}:\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    notebook = script.stem[:2]
    for key in sorted(k for k in exercises.REGISTRY if k.split(".")[0] == notebook):
        assert f"[{key}] pass" in done.stdout, f"{script.name} does not pass exercise {key}:\n{done.stdout[-3000:]}"
