"""Many ``python -m s2lab ARGS`` commands run cheaply: each a forked child of one process that imported s2lab once.

Starting Python and importing torch costs seconds per process, so ``run_commands`` starts one driver process
(``python tests/e2e/_command_driver.py CASES.json RESULTS.json``, the ``__main__`` block at the end) that runs every
case in a forked child: each child is its own process, in its own folder, with its own exit code, stdout and stderr.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import time
import traceback
from pathlib import Path

import s2lab.cli  # noqa: F401  (imported once here: every forked child starts with the command loaded)

CASE_TIMEOUT = 120  # seconds one command may take before it counts as hung


def _child(argv: list[str], cwd: str, stdout: str, stderr: str) -> None:
    """In a forked child: ``python -m s2lab ARGV`` in ``cwd``, stdout and stderr into files; never returns."""
    code = 1
    try:
        os.chdir(cwd)
        for fd, path in ((1, stdout), (2, stderr)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        sys.argv = ["s2lab", *argv]
        try:
            runpy.run_module("s2lab", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # noqa: BLE001  (what the interpreter does: print the traceback, exit 1)
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _serve(cases_file: str, results_file: str) -> None:
    """Run every case of CASES.json ([{"argv", "cwd"}]) in a forked child; write [{"code", "stdout", "stderr"}]."""
    results = []
    for i, case in enumerate(json.loads(Path(cases_file).read_text())):
        out, err = f"{results_file}.{i}.out", f"{results_file}.{i}.err"
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(case["argv"], case["cwd"], out, err)
        deadline = time.monotonic() + CASE_TIMEOUT
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if done[0] == 0:  # hung: kill it and say so
            os.kill(pid, 9)
            done = os.waitpid(pid, 0)
            code = "hung"
        else:
            code = os.waitstatus_to_exitcode(done[1])
        results.append({"code": code, "stdout": Path(out).read_text(), "stderr": Path(err).read_text()})
        Path(out).unlink()
        Path(err).unlink()
    Path(results_file).write_text(json.dumps(results))


def run_commands(cases: list[tuple[str, list, Path]], work: Path) -> list[dict]:
    """Run ``(name, argv, cwd)`` cases through the driver; returns each one's code, stdout and stderr."""
    spec = work / f"cases-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps([{"argv": [str(a) for a in argv], "cwd": str(cwd)} for _, argv, cwd in cases]))
    results = work / f"{spec.stem}-results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # one thread: fast on a busy machine
    driver = subprocess.run([sys.executable, __file__, str(spec), str(results)], env=env, capture_output=True,
                            text=True, timeout=CASE_TIMEOUT * len(cases), check=False)
    assert driver.returncode == 0, driver.stderr
    return json.loads(results.read_text())


if __name__ == "__main__":
    _serve(*sys.argv[1:3])
