"""Measuring on the machine at hand: what it is, a command's cost in a child process, and timed training steps.

- ``machine``: the device, CPU count, torch and its threads, the load average (``loaded`` when it exceeds the core
  count) and the date, recorded with every part's figures.
- ``run_measured``: a command's wall and CPU seconds and its own peak resident memory, from a child process.
- ``timed_steps``: seconds per optimizer step, the device synchronised around them; ``optimizer_for`` gives every
  timed model the same AdamW, ``scene_tensor`` the same real pixels.
- ``LoadGuard``: the share of the CPUs that other processes used while a measurement ran (``/proc/stat``).
- ``GOALS``: what the figures are held against, on two idle CPU cores.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.tiles import to_tensor
from s2lab.device import describe_device, pick_device
from s2lab.sensors import S2_10BANDS, S2_12BANDS

GOALS = {  # the lab's speed and memory goals on two idle CPU cores
    "scene_seconds": 60.0,  # whole embedded scene, reconstruct or detect-change
    "scene_gib": 3.0,  # its peak resident memory
    "full_tile_gib": 3.0,  # peak resident memory of s2lab reconstruct on a full 10980 x 10980 px tile
    "train_ratio": 1.5,  # S2MAE samples/s over those of MAE on timm 0.3.2's written-out attention
    "app_p95_ms": 40.0,  # the explorer's default view, server side, slider positions shared and prefilled
    "binder_gib": 2.0,  # a notebook's peak memory on Binder
}
BAND_SETS = {4: ("B02", "B03", "B04", "B08"), 10: S2_10BANDS, 12: S2_12BANDS}  # scaling: C -> band names
TAIL = 2000  # characters of a failed child's stderr kept


# -- where things are and what ran them ----------------------------------------------------------------------------
def bench_dir() -> Path | None:
    """The repository's ``bench/`` folder beside the package (a source checkout), or None when installed elsewhere."""
    folder = Path(__file__).resolve().parents[2] / "bench"
    return folder if folder.is_dir() else None


def machine() -> dict:
    """The machine and its state: device, CPU count, torch and its threads, load average, loaded or not, the date."""
    cpus = os.cpu_count() or 1
    load = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {
        "device": describe_device(pick_device()),
        "cpu": describe_device("cpu")["name"],
        "cpu_count": cpus,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": load,
        "loaded": bool(load and load[0] > cpus),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# -- a command in a child process ----------------------------------------------------------------------------------
# A small Python process between the caller and the command: a child forked from a large process (a notebook, a
# test run) starts with the parent's resident pages on its books, so its peak would be the parent's. Forked from this
# wrapper instead, the command's peak is its own; the wrapper reports it with its exit code in a JSON file.
_WRAPPER = """
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    json.dump({"returncode": code, "maxrss_kib": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, f)
"""


def run_measured(argv: Sequence[str], *, timeout: float | None = None, cwd: str | os.PathLike | None = None) -> dict:
    """Run a command in a child process; its wall and CPU seconds and its peak resident memory.

    The peak is ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` seen by a small wrapper process that starts the
    command: the largest of the command and the processes it waited for (a notebook's kernel, say).

    Returns:
        ``{"returncode", "wall_s", "cpu_s", "peak_gib", "stdout", "stderr"}`` (stderr's last ``TAIL`` characters);
        returncode -9 when the command ran past ``timeout`` seconds and was killed (with its children).
    """
    with (tempfile.TemporaryDirectory(prefix="s2lab-measure-") as tmp, open(Path(tmp) / "out", "w+") as out,
          open(Path(tmp) / "err", "w+") as err):
        usage_file = Path(tmp) / "usage.json"
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, str(usage_file), *argv], stdout=out, stderr=err,
                                cwd=cwd, text=True, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and the command: one session, one process group
            proc.wait()
        wall = time.perf_counter() - start
        usage = json.loads(usage_file.read_text()) if usage_file.is_file() else {}
        out.seek(0)
        err.seek(0)
        return {
            "returncode": usage.get("returncode", -signal.SIGKILL),
            "wall_s": round(wall, 2),
            "cpu_s": round(usage.get("cpu_s", float("nan")), 2),
            "peak_gib": round(usage.get("maxrss_kib", 0) / 2**20, 3),  # ru_maxrss is in KiB on Linux
            "stdout": out.read(),
            "stderr": err.read()[-TAIL:],
        }


# -- timed training steps ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def scene_tensor(in_chans: int) -> torch.Tensor:
    """(C, H, W) the embedded scene in a C-band model's bands (``BAND_SETS``, else the 10 bands), kept for reuse."""
    return to_tensor(open_embedded_scene(BAND_SETS.get(in_chans, S2_10BANDS)))


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; elsewhere nothing to wait for)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def optimizer_for(model: torch.nn.Module, *, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW as s2lab.train sets it up (lr 1.5e-4, betas 0.9 / 0.95, weight decay 0.05); ``fused``: as
    ``s2lab.train.adamw`` runs it (one fused kernel), else torch's default for-each AdamW, as the peers run it."""
    if fused:
        from s2lab.train import adamw

        return adamw(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05,
                     device=next(model.parameters()).device)
    return torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05)


def timed_steps(step: Callable[[], torch.Tensor], optimizer, steps: int, device: torch.device, *,
                cpu_time: bool = False) -> float | tuple[float, float]:
    """Seconds per optimizer step of ``steps`` steps (0.0 for none: a warm-up of zero steps); with ``cpu_time``,
    (wall seconds, this process's CPU seconds) per step."""
    synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        step().backward()
        optimizer.step()
    synchronize(device)
    wall, cpu = ((time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps) if steps else (0.0, 0.0)
    return (wall, cpu) if cpu_time else wall


def busy_seconds() -> float | None:
    """CPU seconds all processes on the machine have been busy since boot (``/proc/stat``), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class LoadGuard:
    """The share of the machine's CPUs that other processes used since ``start()``: busy time minus our own."""

    def __init__(self) -> None:
        self.cpus = os.cpu_count() or 1

    def start(self) -> None:
        self.busy, self.own, self.wall = busy_seconds(), time.process_time(), time.perf_counter()

    def others(self) -> float | None:
        """Others' share of all CPUs since ``start()``, in [0, 1]; None without ``/proc/stat``."""
        busy = busy_seconds()
        if busy is None or self.busy is None:
            return None
        wall = max(time.perf_counter() - self.wall, 1e-9)
        return max(0.0, (busy - self.busy) - (time.process_time() - self.own)) / (wall * self.cpus)

    def wait_quiet(self, *, cores: float, max_wait: float, probe: float = 1.0) -> float:
        """Wait until others use at most ``cores`` CPUs over a ``probe`` second window, or ``max_wait`` seconds
        passed; returns the seconds waited."""
        began = time.perf_counter()
        while time.perf_counter() - began < max_wait:
            self.start()
            time.sleep(probe)
            share = self.others()
            if share is None or share * self.cpus <= cores:
                break
        return round(time.perf_counter() - began, 1)
