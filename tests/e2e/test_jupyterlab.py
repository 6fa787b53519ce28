"""The notebooks in a real JupyterLab, driven in Debian's chromium with Playwright, as a student meets them.

One JupyterLab server on 127.0.0.1 (a free port, a random token) serves copies of the notebooks in a temporary folder,
so nothing in the repository is written. For each notebook the test opens it, runs all cells, and moves the first
slider of each central interactive cell with the keyboard (its handle focused, arrow keys). It asserts:

- every code cell ran, and no cell shows an error or a stderr output (in the cell or in a widget's output);
- an interactive cell shows one picture, not a second copy that does not follow the slider;
- moving the slider changes exactly one picture in the whole notebook, that cell's, and adds or removes none;
- the browser console shows no error.

The server gets its own throw-away config, runtime, IPython, settings and workspace folders; the user settings render
every cell (windowing mode ``none``, so offscreen outputs exist in the page) and turn off JupyterLab's news.
"""

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _app_server import CHROMIUM, CHROMIUM_ARGS, free_port, require_browser, watch_problems

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one chromium at a time under -n 2

sync_api = require_browser(needs=("jupyterlab", "ipywidgets"))

ROOT = Path(__file__).resolve().parents[2]
START_S = 120  # the server answering, then the page and the kernel ready
RUN_S = 300  # Run All of one notebook on a busy machine (about 5-15 s alone)
REDRAW_S = 90  # one slider move redrawn (04's comparison reconstructs with two models per step)
SETTLE_S = 2.0  # kernel idle and pictures unchanged this long: the page has settled
VIEWPORT = {"width": 1400, "height": 1000}
# notebook -> the draw functions of its interactive cells whose first slider is moved, and by how many steps (arrow
# key presses, up from the lower half of the slider's range, down from the upper half)
SLIDERS = {
    "03_masking.ipynb": {"show_mask": 3},  # mask ratio 0.75 -> 0.90
    "04_live_reconstruction.ipynb": {"compare": 1, "patch_target": 1},  # mask ratio 0.75 -> 0.70 (a redraw: 2-5 s)
    "08_change_detection.ipynb": {"show_threshold": 3, "show_overlay": 3},  # threshold 3 steps of 0.02
}
SETTINGS = {  # user settings of the throw-away JupyterLab
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
}

# The open notebook as the page's JupyterLab sees it: the kernel's status and, per code cell, its execution count,
# its error outputs and its first line.
_STATE_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  const model = panel.content.model.cells;
  for (let i = 0; i < model.length; i++) {
    const c = model.get(i);
    if (c.type !== 'code') continue;
    const errors = c.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue);
    cells.push({index: i, count: c.executionCount, errors: errors, source: c.sharedModel.getSource()});
  }
  return {kernel: kernel ? kernel.status : null, ready: panel.context.isReady, cells: cells};
}"""
# Per cell of the open notebook: the data of each picture (matplotlib's PNGs) and the text of each stderr output.
_OUTPUTS_JS = """() => {
  const notebook = window.jupyterapp.shell.currentWidget.content.node;
  return [...notebook.querySelectorAll('.jp-Cell')].map(cell => ({
  pictures: [...cell.querySelectorAll('.jp-OutputArea img')].map(img => img.getAttribute('src') || ''),
  stderr: [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(e => e.textContent.slice(0, 500)),
  }));
}"""


class Lab:
    """``jupyter lab`` on 127.0.0.1 over ``folder``, started by the constructor; ``stop`` ends it."""

    def __init__(self, folder: Path, scratch: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        for name, values in SETTINGS.items():
            path = scratch / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's inline backend, not Agg
        env.update(
            JUPYTER_CONFIG_DIR=str(scratch / "config"), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
            IPYTHONDIR=str(scratch / "ipython"), JUPYTERLAB_SETTINGS_DIR=str(scratch / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(scratch / "workspaces"), OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),  # this checkout's s2lab
        )
        root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        self.log = scratch / "jupyterlab.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                 f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={folder}",
                 "--LabApp.expose_app_in_browser=True",
                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", *root],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder,
            )

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def wait(self) -> None:
        deadline = time.monotonic() + START_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.tail()}")
            try:
                self.api("status")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer within {START_S} s:\n{self.tail()}") from None
                time.sleep(0.5)

    def shut_kernels(self) -> None:
        """Shut down every kernel (through the REST API), so one notebook's models are gone before the next."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    """Copies of the tested notebooks, told to use the python3 kernel (so no kernel dialog opens)."""
    folder = tmp_path_factory.mktemp("notebooks")
    for name in SLIDERS:
        notebook = json.loads((ROOT / "notebooks" / name).read_text())
        notebook["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                              "language": "python"}
        (folder / name).write_text(json.dumps(notebook))
    return folder


@pytest.fixture(scope="module")
def lab(notebooks, tmp_path_factory):
    server = Lab(notebooks, tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.wait()
    except RuntimeError as err:
        server.stop()
        pytest.fail(str(err))
    yield server
    try:
        server.shut_kernels()
    except OSError:
        pass
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _digest(pictures: list[str]) -> list[str]:
    return [hashlib.sha1(p.encode()).hexdigest()[:12] for p in pictures]


def _pictures(page) -> list[list[str]]:
    """Per cell of the page, a digest of each picture's data."""
    return [_digest(cell["pictures"]) for cell in page.evaluate(_OUTPUTS_JS)]


def _settle(page, what: str, timeout_s: float = REDRAW_S) -> list[list[str]]:
    """Wait until the kernel is idle and no picture changed for ``SETTLE_S``; return the pictures then."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        state = page.evaluate(_STATE_JS)
        now = _pictures(page)
        if now != last or state is None or state["kernel"] != "idle":
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLE_S:
            return now
        page.wait_for_timeout(250)
    raise AssertionError(f"{what}: the page did not settle within {timeout_s:.0f} s")


def _run_all(page, name: str) -> list[dict]:
    """Run all cells; wait until every code cell has run (fail early on an error). Returns the code cells."""
    deadline = time.monotonic() + START_S
    while not ((state := page.evaluate(_STATE_JS)) and state["ready"] and state["kernel"] == "idle"):
        assert time.monotonic() < deadline, f"{name}: the kernel was not ready within {START_S} s: {state}"
        page.wait_for_timeout(250)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    deadline = time.monotonic() + RUN_S
    while True:
        state = page.evaluate(_STATE_JS)
        errors = [f"cell {c['index']}: {e}" for c in state["cells"] for e in c["errors"]]
        assert not errors, f"{name}: " + "; ".join(errors)
        if state["kernel"] == "idle" and all(c["count"] is not None for c in state["cells"]):
            return state["cells"]
        assert time.monotonic() < deadline, (
            f"{name}: Run All did not finish within {RUN_S} s; not run: "
            f"{[c['index'] for c in state['cells'] if c['count'] is None]}")
        page.wait_for_timeout(500)


def _interactive_cell(cells: list[dict], draw: str) -> int:
    found = [c["index"] for c in cells if re.search(rf"live_output\(\s*{draw}\b", c["source"])]
    assert len(found) == 1, f"expected one cell calling live_output({draw}, ...), found cells {found}"
    return found[0]


@pytest.mark.parametrize("name", list(SLIDERS))
def test_notebook_in_jupyterlab(name, lab, browser, screenshots):
    problems = []
    stem = Path(name).stem
    page = browser.new_page(viewport=VIEWPORT)
    watch_problems(page, problems)
    try:
        # a workspace of its own, reset: no tab of another notebook is restored (nor its kernel started)
        page.goto(f"{lab.url}/lab/workspaces/{stem}/tree/{name}?reset&token={lab.token}", timeout=START_S * 1000)
        cells = _run_all(page, name)
        pictures = _settle(page, f"{name} after Run All")
        page.screenshot(path=screenshots / f"{stem}-1-after-run.png")
        panel = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
        for draw, presses in SLIDERS[name].items():
            index = _interactive_cell(cells, draw)
            assert len(pictures[index]) == 1, f"{name}: {draw}'s cell shows {len(pictures[index])} pictures, not 1"
            cell = page.locator(f'[id="{panel}"] .jp-Cell').nth(index)
            slider = cell.locator(".widget-slider").first
            before_value = slider.locator(".widget-readout").inner_text()
            handle = slider.locator(".noUi-handle").first
            low, value, high = (float(handle.get_attribute(f"aria-value{k}")) for k in ("min", "text", "max"))
            key = "ArrowRight" if value < (low + high) / 2 else "ArrowLeft"  # away from the nearer end
            handle.focus()
            for _ in range(presses):
                handle.press(key)
            after_value = slider.locator(".widget-readout").inner_text()
            assert after_value != before_value, f"{name}: {draw}'s slider did not move ({before_value})"
            deadline = time.monotonic() + REDRAW_S
            while _pictures(page)[index] == pictures[index]:
                assert time.monotonic() < deadline, f"{name}: {draw}'s picture did not follow its slider"
                page.wait_for_timeout(250)
            after = _settle(page, f"{name} after moving {draw}'s slider")
            counts = [len(c) for c in after]
            assert counts == [len(c) for c in pictures], (
                f"{name}: moving {draw}'s slider changed the number of pictures per cell")
            changed = [(i, j) for i, (old, new) in enumerate(zip(pictures, after))
                       for j, (a, b) in enumerate(zip(old, new)) if a != b]
            assert changed == [(index, 0)], f"{name}: moving {draw}'s slider changed pictures {changed}"
            pictures = after
            cell.screenshot(path=screenshots / f"{stem}-2-{draw}-after-slider.png")
        stderr = [(i, text) for i, c in enumerate(page.evaluate(_OUTPUTS_JS)) for text in c["stderr"]]
        assert not stderr, f"{name}: stderr or error output in cells {stderr}"
    except AssertionError:
        page.screenshot(path=screenshots / f"{stem}-failed.png")
        raise
    finally:
        page.close()
        lab.shut_kernels()
    assert not problems, f"{name}: " + "\n".join(problems)
