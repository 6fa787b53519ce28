"""Benchmarks: how fast and how large s2lab's work is, measured on the machine at hand (``s2lab bench``).

Six parts, each a function returning JSON-ready figures (``PARTS``):

- ``scene``: ``s2lab reconstruct`` and ``s2lab detect-change`` on the whole embedded scene (10 x 1947 x 1933) in a
  child process each, timed from start to exit, with the child's peak resident memory (``run_measured``).
- ``train``: samples per second of S2MAE pretraining steps against the reference MAE of ``bench/reference_mae.py``
  (facebookresearch/mae's structure, explicit attention) at the same width, depth, image size and token count, on the
  same batch with the same optimizer, in alternating rounds so that a load change hits both; the ratio is the
  median of the rounds' ratios.
- ``app``: the explorer's default view, slider change to encoded pictures (``bench/app_latency.py``'s ``run``).
- ``scaling``: whole-image reconstruction time against image size and band count.
- ``notebooks``: every notebook executed by ``jupyter nbconvert --execute`` in a child process: wall time and peak
  memory against Binder's 2 GiB. Slow, so only when asked.
- ``gpu``: where CUDA is present: the pretraining step in float32 and in bf16 autocast, model FLOP utilisation,
  S2MAE against the reference on the GPU, and the fine-tuning step and change map against the CPU.

``run`` runs the parts asked for, writes each part's figures to ``results/<part>.json`` (with the machine, its load
and the date) and rebuilds ``RESULTS.md`` from every part's file there, so one part can be re-run alone. Timings taken
while the 1-minute load average exceeded the core count (more runnable work than cores, the bench's own earlier parts
included) are marked ``loaded``: they are slower than on idle cores.
"""

from __future__ import annotations

import datetime
import functools
import importlib.util
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from s2lab.change import change_map
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.raster import select_bands
from s2lab.data.tiles import random_tiles, to_tensor
from s2lab.device import autocast, describe_device, pick_device
from s2lab.models import ChangeDetector, build
from s2lab.reconstruct import reconstruct_image
from s2lab.scaling import reference_statistics
from s2lab.sensors import S2_10BANDS, S2_12BANDS

PARTS = ("scene", "train", "app", "scaling", "notebooks", "gpu")
DEFAULT_PARTS = ("scene", "train", "app", "scaling", "gpu")  # notebooks only when asked: they take long
GOALS = {  # the goals on two idle CPU cores
    "scene_seconds": 60.0,  # whole embedded scene, reconstruct or detect-change
    "scene_gib": 3.0,  # its peak resident memory
    "train_ratio": 1.5,  # S2MAE samples/s over the reference MAE's
    "app_p95_ms": 150.0,  # the explorer's default view
    "binder_gib": 2.0,  # a notebook's peak memory on Binder
}
BAND_SETS = {4: ("B02", "B03", "B04", "B08"), 10: S2_10BANDS, 12: S2_12BANDS}  # scaling: C -> band names
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}  # dense
TAIL = 2000  # characters of a failed child's stderr kept


# -- where things are and what ran them ----------------------------------------------------------------------------
def bench_dir() -> Path | None:
    """The repository's ``bench/`` folder beside the package (a source checkout), or None when installed elsewhere."""
    folder = Path(__file__).resolve().parent.parent / "bench"
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


def _load_bench_module(name: str) -> ModuleType | None:
    """``bench/<name>.py`` as a module, or None when there is no such file."""
    folder = bench_dir()
    path = folder / f"{name}.py" if folder else None
    if path is None or not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"s2lab_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def _scene_tensor(in_chans: int) -> torch.Tensor:
    """(C, H, W) the embedded scene in a C-band model's bands (``BAND_SETS``, else the 10 bands), kept for reuse."""
    return to_tensor(open_embedded_scene(BAND_SETS.get(in_chans, S2_10BANDS)))


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- scene ---------------------------------------------------------------------------------------------------------
def scene(*, input: str = "embedded", device: str = "auto", timeout: float = 1800.0) -> dict:
    """``s2lab reconstruct`` and ``s2lab detect-change`` on a whole scene, each in a child process.

    Args:
        input: "embedded" or a GeoTIFF / band folder with the shipped models' 10 bands (tests use a small crop);
            detect-change compares it with itself, which costs the same as two dates.
        device: the commands' ``--device``.
        timeout: seconds before a command is killed.

    Returns:
        ``{"input", "reconstruct", "detect_change", "goal"}``: per command its argv, returncode, wall_s, cpu_s,
        peak_gib, the command's own report (windows, shape, ...) and whether it meets the goal.
    """
    out = {"input": input, "goal": {"seconds": GOALS["scene_seconds"], "peak_gib": GOALS["scene_gib"]}}
    with tempfile.TemporaryDirectory(prefix="s2lab-bench-") as tmp:
        commands = {
            "reconstruct": ["reconstruct", input, "-o", str(Path(tmp) / "reconstruction.tif")],
            "detect_change": ["detect-change", input, input, "-o", str(Path(tmp) / "change.tif")],
        }
        for name, args in commands.items():
            argv = [sys.executable, "-m", "s2lab", *args, "--json", "--quiet", "--device", device]
            measured = run_measured(argv, timeout=timeout)
            entry = {"command": "s2lab " + " ".join(args[: args.index("-o")]), **measured}
            report = json.loads(measured["stdout"]) if measured["returncode"] == 0 else None
            entry.pop("stdout")
            if report is not None:
                entry["stderr"] = ""
                entry["report"] = {k: report.get(k) for k in ("model", "shape", "windows", "seconds", "device")}
            entry["meets_goal"] = bool(report is not None and measured["wall_s"] <= GOALS["scene_seconds"]
                                       and measured["peak_gib"] <= GOALS["scene_gib"])
            out[name] = entry
    return out


# -- training throughput -------------------------------------------------------------------------------------------
def _reference_for(model: torch.nn.Module, reference: ModuleType) -> torch.nn.Module:
    """The reference MAE at the S2MAE's width, depth, heads, image size, patch and bands per token."""
    c = model.config
    return reference.MaskedAutoencoderViT(
        img_size=c.img_size, patch_size=c.patch_size, bands_per_token=c.bands_per_token, in_chans=c.in_chans,
        embed_dim=c.embed_dim, depth=c.depth, num_heads=c.num_heads, decoder_embed_dim=c.decoder_embed_dim,
        decoder_depth=c.decoder_depth, decoder_num_heads=c.decoder_num_heads, mlp_ratio=c.mlp_ratio,
    )


def _optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW as s2lab.train sets it up (lr 1.5e-4, betas 0.9 / 0.95, weight decay 0.05)."""
    return torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05)


def _timed_steps(step: Callable[[], torch.Tensor], optimizer, steps: int, device: torch.device, *,
                 cpu_time: bool = False) -> float | tuple[float, float]:
    """Seconds per optimizer step of ``steps`` steps (0.0 for none: a warm-up of zero steps); with ``cpu_time``,
    (wall seconds, this process's CPU seconds) per step."""
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        step().backward()
        optimizer.step()
    _sync(device)
    wall, cpu = ((time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps) if steps else (0.0, 0.0)
    return (wall, cpu) if cpu_time else wall


def train(
    *,
    config: dict | None = None,
    batch_size: int = 32,
    steps: int = 5,
    warmup: int = 2,
    rounds: int = 3,
    mask_ratio: float = 0.75,
    device: str | torch.device = "cpu",
    bf16: bool = False,
) -> dict:
    """Training samples per second: S2MAE against the reference MAE, side by side.

    Both models take the same batch of real tiles from the embedded scene, the same AdamW, ``warmup`` untimed steps,
    then ``rounds`` rounds of ``steps`` timed steps each, alternating models.

    Args:
        config: S2MAE config fields over the lab's defaults (tests use tiny ones).
        batch_size: B of every step.
        steps, warmup, rounds: timed steps per round, untimed steps first, rounds.
        mask_ratio: share of tokens removed.
        device: where both train.
        bf16: both under ``s2lab.device.autocast`` (bf16 on CUDA only).

    Returns:
        ``{"s2mae", "reference"}`` samples/s (median over rounds), ``ratio`` (median of the rounds' ratios of wall
        time), ``rounds_ratio``, ``ratio_cpu_time`` (of this process's CPU time per step: steadier than wall time
        on a loaded machine, and the fair one with one thread), tokens L and kept K, the config, and whether the
        ratio meets the goal; or
        ``{"skipped": reason}`` when ``bench/reference_mae.py`` is not there.
    """
    reference = _load_bench_module("reference_mae")
    if reference is None:
        return {"skipped": "bench/reference_mae.py not found (run from a source checkout)"}
    device = torch.device(device)
    s2mae = build("s2mae", dict(config or {})).to(device)
    ref = _reference_for(s2mae, reference).to(device)
    c = s2mae.config
    tiles = random_tiles(_scene_tensor(c.in_chans), c.img_size, batch_size, torch.Generator().manual_seed(0))
    x = tiles.to(device)  # (B, C, H, W) real reflectance
    generator = torch.Generator().manual_seed(0)

    def s2mae_step() -> torch.Tensor:
        with autocast(device, enabled=bf16):
            return s2mae(x, mask_ratio=mask_ratio, generator=generator).loss

    def ref_step() -> torch.Tensor:
        with autocast(device, enabled=bf16):
            return ref(x, mask_ratio)[0]

    runs = {"s2mae": (s2mae_step, _optimizer(s2mae)), "reference": (ref_step, _optimizer(ref))}
    for step, optimizer in runs.values():
        _timed_steps(step, optimizer, warmup, device)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (step, optimizer) in runs.items():
            wall, cpu = _timed_steps(step, optimizer, steps, device, cpu_time=True)
            seconds[name].append(wall)
            cpu_seconds[name].append(cpu)
    ratios = [r / s for s, r in zip(seconds["s2mae"], seconds["reference"])]
    L = s2mae.tokenizer.G * (c.img_size // c.patch_size) ** 2
    ratio = _median(ratios)
    return {
        "s2mae_samples_per_s": round(batch_size / _median(seconds["s2mae"]), 2),
        "reference_samples_per_s": round(batch_size / _median(seconds["reference"]), 2),
        "ratio": round(ratio, 3),
        "rounds_ratio": [round(r, 3) for r in ratios],
        "ratio_cpu_time": round(_median(cpu_seconds["reference"]) / max(_median(cpu_seconds["s2mae"]), 1e-12), 3),
        "goal_ratio": GOALS["train_ratio"],
        "meets_goal": ratio >= GOALS["train_ratio"],
        "batch_size": batch_size, "steps_per_round": steps, "warmup_steps": warmup, "rounds": rounds,
        "tokens": L, "kept_tokens": round(L * (1 - mask_ratio)), "mask_ratio": mask_ratio,
        "device": str(device), "bf16": bool(bf16 and device.type == "cuda"), "threads": torch.get_num_threads(),
        "config": s2mae.config_dict(),
        "reference": "bench/reference_mae.py: facebookresearch/mae models_mae.py, timm 0.3 Block, explicit attention",
    }


# -- app latency ---------------------------------------------------------------------------------------------------
def app(*, changes: int = 100) -> dict:
    """The explorer's default-view latency from ``bench/app_latency.py``, or ``{"skipped": reason}``."""
    module = _load_bench_module("app_latency")
    if module is None:
        return {"skipped": "bench/app_latency.py not found"}
    return module.run(changes=changes)


# -- cost against image size and band count ------------------------------------------------------------------------
def _reconstruct_seconds(model, image, repeats: int) -> tuple[float, int]:
    """The best of ``repeats`` timings (the least disturbed by other processes) and the windows seen."""
    results = [reconstruct_image(model, image, seed=i, device="cpu") for i in range(repeats)]
    return min(r.seconds for r in results), results[0].windows


def scaling(
    *, sizes: Sequence[int] = (128, 256, 512, 1024), bands: Sequence[int] = (4, 10, 12), size_for_bands: int = 256,
    config: dict | None = None, repeats: int = 3,
) -> dict:
    """Whole-image reconstruction (scores included, as the command computes them) against size and band count.

    Untrained S2MAEs of the lab's default size (or ``config``), one per band count, on crops of the embedded scene's
    centre, on the CPU. Time per megapixel stays flat when the cost grows linearly with the pixels.

    Returns:
        ``{"rows": [{"size_px", "bands", "tokens_per_window", "windows", "seconds", "s_per_mpx"}, ...], ...}``,
        seconds the best of ``repeats``.
    """
    scene_all = open_embedded_scene(BAND_SETS[12])
    rows = []
    cases = [(s, 10) for s in sizes] + [(size_for_bands, c) for c in bands if c != 10]
    models = {}
    for size, count in cases:
        if count not in models:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                mean, std = reference_statistics(BAND_SETS[count])
                models[count] = build("s2mae", {**(config or {}), "in_chans": count, "band_mean": mean,
                                                "band_std": std}).eval()
        model = models[count]
        y0, x0 = (scene_all.sizes["y"] - size) // 2, (scene_all.sizes["x"] - size) // 2
        image = select_bands(scene_all.isel(y=slice(y0, y0 + size), x=slice(x0, x0 + size)), BAND_SETS[count])
        seconds, windows = _reconstruct_seconds(model, image, repeats)
        c = model.config
        rows.append({
            "size_px": size, "bands": count, "tokens_per_window": model.tokenizer.G * (c.img_size // c.patch_size) ** 2,
            "windows": windows, "seconds": round(seconds, 4), "s_per_mpx": round(seconds / (size * size / 1e6), 2),
        })
    return {"what": "reconstruct_image on the CPU, untrained S2MAE, crops of the embedded scene's centre",
            "repeats": repeats, "threads": torch.get_num_threads(), "rows": rows}


# -- notebooks -----------------------------------------------------------------------------------------------------
def notebooks(*, paths: Sequence[str | os.PathLike] | None = None, timeout: float = 1800.0) -> dict:
    """Execute every notebook (default: ``notebooks/*.ipynb`` beside ``bench/``) in a child process each.

    Returns:
        ``{"rows": [{"notebook", "ok", "wall_s", "cpu_s", "peak_gib", "fits_binder"}, ...], "binder_gib"}``, or
        ``{"skipped": reason}`` without notebooks.
    """
    if paths is None:
        folder = bench_dir()
        paths = sorted((folder.parent / "notebooks").glob("*.ipynb")) if folder else []
    if not paths:
        return {"skipped": "no notebooks found"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="s2lab-notebooks-") as tmp:
        for path in map(Path, paths):
            argv = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir",
                    tmp, f"--ExecutePreprocessor.timeout={int(timeout)}", str(path)]
            m = run_measured(argv, timeout=timeout, cwd=path.parent)
            row = {"notebook": path.name, "ok": m["returncode"] == 0, "wall_s": m["wall_s"], "cpu_s": m["cpu_s"],
                   "peak_gib": m["peak_gib"], "fits_binder": m["peak_gib"] <= GOALS["binder_gib"]}
            if not row["ok"]:
                row["error"] = m["stderr"].strip().splitlines()[-1:] or [f"exit code {m['returncode']}"]
            rows.append(row)
    return {"binder_gib": GOALS["binder_gib"], "rows": rows,
            "how": "jupyter nbconvert --execute in a child process; peak = the child's rusage (kernel included)"}


# -- GPU -----------------------------------------------------------------------------------------------------------
def _peak_tflops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def _train_flops(model: torch.nn.Module, x: torch.Tensor, mask_ratio: float) -> int:
    """FLOPs of one forward and backward pass (torch's FlopCounterMode: matmuls and attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(x, mask_ratio=mask_ratio, generator=torch.Generator().manual_seed(0)).loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def _pretrain_step(
    device: torch.device, batch_size: int, bf16: bool, steps: int, warmup: int, config: dict | None
) -> dict:
    model = build("s2mae", dict(config or {})).to(device)
    c = model.config
    x = random_tiles(_scene_tensor(c.in_chans), c.img_size, batch_size, torch.Generator().manual_seed(0)).to(device)
    generator, optimizer = torch.Generator().manual_seed(0), _optimizer(model)

    def step() -> torch.Tensor:
        with autocast(device, enabled=bf16):
            return model(x, mask_ratio=0.75, generator=generator).loss

    _timed_steps(step, optimizer, warmup, device)
    seconds = _timed_steps(step, optimizer, steps, device)
    flops = _train_flops(model, x, 0.75)
    return {"step_ms": round(1000 * seconds, 3), "samples_per_s": round(batch_size / seconds, 1),
            "flops_per_step": flops, "achieved_tflops": round(flops / seconds / 1e12, 3)}


def _finetune_step_seconds(device: torch.device, batch_size: int, steps: int, config: dict | None) -> float:
    """Seconds per change-detection fine-tuning step (siamese S2MAE encoder and head) on ``device``."""
    encoder = build("s2mae", dict(config or {}))
    model = ChangeDetector(encoder=encoder, hidden=32).to(device)
    c = encoder.config
    scene_t = _scene_tensor(c.in_chans)
    g = torch.Generator().manual_seed(0)
    before = random_tiles(scene_t, c.img_size, batch_size, g).to(device)
    after = random_tiles(scene_t, c.img_size, batch_size, g).to(device)
    label = (torch.rand(batch_size, c.img_size, c.img_size, generator=g) < 0.1).float().to(device)
    optimizer = _optimizer(model)

    def step() -> torch.Tensor:
        with autocast(device):
            return model.loss(before, after, label)

    _timed_steps(step, optimizer, 2, device)
    return _timed_steps(step, optimizer, steps, device)


def _change_seconds(device: torch.device, size: int, config: dict | None) -> float:
    encoder = build("s2mae", dict(config or {}))
    model = ChangeDetector(encoder=encoder, hidden=32)
    image = _scene_tensor(encoder.config.in_chans)[:, :size, :size]  # (C, size, size)
    change_map(model, image, image, device=device)  # warm-up
    return change_map(model, image, image, device=device).seconds


def gpu(
    *, device: str | None = None, batch_size: int = 256, steps: int = 10, warmup: int = 3, rounds: int = 3,
    config: dict | None = None, finetune_batch: int = 32, change_size: int = 512,
) -> dict:
    """The CUDA path, where there is one: step time, bf16, FLOP utilisation, speed-ups over the CPU.

    Args:
        device: the accelerator (default "cuda" when available; tests pass "cpu" to run the code path).
        batch_size: B of the pretraining steps.
        steps, warmup: timed steps, and untimed ones before them.
        rounds: alternating rounds of S2MAE against the reference.
        config: S2MAE config fields over the defaults.
        finetune_batch: B of the change fine-tuning steps.
        change_size: side in pixels of the crop the change map is timed on.

    Returns:
        pretraining step in float32 and bf16 (step_ms, samples_per_s, FLOPs, achieved TFLOP/s, MFU against the
        device's dense bf16 peak when known), S2MAE against the reference on the device, and the fine-tuning step and
        change map speed-up over the CPU; or ``{"skipped": reason}`` without CUDA.
    """
    if device is None:
        if not torch.cuda.is_available():
            return {"skipped": "no CUDA device"}
        device = "cuda"
    dev = torch.device(device)
    info = describe_device(dev)
    peak = _peak_tflops(info["name"]) if dev.type == "cuda" else None
    out: dict = {"device": info, "peak_bf16_tflops": peak, "batch_size": batch_size}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        figures = _pretrain_step(dev, batch_size, bf16, steps, warmup, config)
        if peak:
            figures["mfu"] = round(figures["achieved_tflops"] / peak, 4)
        out[f"pretrain_{name}"] = figures
    out["train_vs_reference_bf16"] = train(config=config, batch_size=batch_size, steps=steps, warmup=warmup,
                                           rounds=rounds, device=dev, bf16=True)
    here = _finetune_step_seconds(dev, finetune_batch, steps, config)
    cpu = _finetune_step_seconds(torch.device("cpu"), finetune_batch, max(2, steps // 5), config)
    out["finetune_change"] = {"batch_size": finetune_batch, "device_step_ms": round(1000 * here, 2),
                              "cpu_step_ms": round(1000 * cpu, 2), "speedup": round(cpu / here, 2)}
    here, cpu = _change_seconds(dev, change_size, config), _change_seconds(torch.device("cpu"), change_size, config)
    out["change_map"] = {"size_px": change_size, "device_s": round(here, 3), "cpu_s": round(cpu, 3),
                         "speedup": round(cpu / here, 2)}
    return out


# -- the whole run and its table -----------------------------------------------------------------------------------
def _parts_run(quick: bool, device: str, changes: int | None) -> dict[str, Callable[[], dict]]:
    return {
        "scene": lambda: scene(device=device),
        "train": lambda: train(steps=2 if quick else 3, rounds=2 if quick else 7),
        "app": lambda: app(changes=changes or (20 if quick else 100)),
        "scaling": lambda: scaling(sizes=(128, 256) if quick else (128, 256, 512, 1024), repeats=1 if quick else 3),
        "notebooks": lambda: notebooks(),
        "gpu": lambda: gpu(steps=5 if quick else 10),
    }


def parse_parts(text: str | None, *, notebooks: bool = False) -> tuple[str, ...]:
    """"scene,train" -> ("scene", "train"); None -> ``DEFAULT_PARTS`` (plus "notebooks" when asked)."""
    if text is None:
        return DEFAULT_PARTS + (("notebooks",) if notebooks else ())
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"unknown benchmark parts {', '.join(unknown) or repr(text)}; expected some of "
                         f"{', '.join(PARTS)}, comma-separated")
    return parts + (("notebooks",) if notebooks and "notebooks" not in parts else ())


def run(
    parts: Sequence[str] = DEFAULT_PARTS,
    *,
    out_dir: str | os.PathLike | None = None,
    quick: bool = False,
    device: str = "auto",
    changes: int | None = None,
    runners: dict[str, Callable[[], dict]] | None = None,
) -> dict:
    """Run benchmark parts and write ``results/<part>.json`` and ``RESULTS.md`` in ``out_dir``.

    Args:
        parts: names from ``PARTS``.
        out_dir: where to write (default the repository's ``bench/``; None there and no checkout: nothing written).
        quick: smaller sizes and fewer repeats (a smoke run, not figures to quote).
        device: the scene commands' ``--device``.
        changes: slider changes the app part times (default 100, 20 when quick).
        runners: part name -> function returning its figures, replacing the defaults (tests use tiny sizes).

    Returns:
        ``{"machine": ..., "parts": {name: figures}, "written": [paths]}``.
    """
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown benchmark parts {', '.join(unknown)}; expected some of {', '.join(PARTS)}")
    folder = Path(out_dir) if out_dir is not None else bench_dir()
    table = {**_parts_run(quick, device, changes), **(runners or {})}
    results = {"machine": machine(), "quick": quick, "parts": {}, "written": []}
    for part in parts:
        figures = table[part]()
        results["parts"][part] = figures
        if folder is not None:
            path = folder / "results" / f"{part}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            record = {"part": part, "machine": machine(), "quick": quick, "figures": figures}
            path.write_text(json.dumps(json_safe(record), indent=2) + "\n")
            results["written"].append(str(path))
    if folder is not None:
        md = folder / "RESULTS.md"
        md.write_text(results_markdown(folder / "results"))
        results["written"].append(str(md))
    return results


def json_safe(value: object) -> object:
    """inf / NaN (a perfect PSNR, say) as null, through dicts, lists and tuples, so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# -- RESULTS.md ----------------------------------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]


def _yes(flag) -> str:
    return "yes" if flag else "no"


def _machine_line(m: dict) -> str:
    device = m["device"]
    where = device["name"] if device["type"] == "cpu" else f"{device['name']} ({device['type']}) with {m['cpu']}"
    load = m.get("load_average")
    state = (f"load average {load[0]} on {m['cpu_count']} CPUs: **loaded**, slower than idle" if m.get("loaded")
             else f"load average {load[0] if load else '?'} on {m['cpu_count']} CPUs")
    return (f"{where}; {m['cpu_count']} CPUs, torch {m['torch']} with {m['torch_threads']} threads; {state}; "
            f"{m['date']}")


def _scene_md(f: dict) -> list[str]:
    rows = []
    for name in ("reconstruct", "detect_change"):
        e = f.get(name) or {}
        report = e.get("report") or {}
        rows.append([e.get("command", name), e.get("wall_s"), e.get("cpu_s"), e.get("peak_gib"), report.get("windows"),
                     _yes(e.get("meets_goal")) if e.get("returncode") == 0 else f"failed ({e.get('returncode')})"])
    goal = f.get("goal", {})
    return [f"Input `{f.get('input')}`; goal {goal.get('seconds')} s and {goal.get('peak_gib')} GiB on 2 idle cores.",
            "", *_table(["command", "wall s", "CPU s", "peak GiB", "windows", "meets goal"], rows)]


def _train_md(f: dict) -> list[str]:
    c = f["config"]
    return [
        (f"Batch {f['batch_size']} of {c['img_size']} px x {c['in_chans']} bands, {f['tokens']} tokens "
        f"({f['kept_tokens']} kept), width {c['embed_dim']}, depth {c['depth']}, decoder {c['decoder_embed_dim']} x "
        f"{c['decoder_depth']}; AdamW; {f['rounds']} alternating rounds of {f['steps_per_round']} steps after "
        f"{f['warmup_steps']} warm-up steps; {f['device']}, {f['threads']} threads."), "",
        *_table(["model", "samples/s"], [["S2MAE (s2lab)", f["s2mae_samples_per_s"]],
                                          ["reference MAE (bench/reference_mae.py)", f["reference_samples_per_s"]]]),
        "", (f"Ratio {f['ratio']} (rounds: {', '.join(map(str, f['rounds_ratio']))}); goal >= {f['goal_ratio']}: "
        f"{_yes(f['meets_goal'])}. Ratio of CPU time per step: {f.get('ratio_cpu_time')}."),
    ]


def _app_md(f: dict) -> list[str]:
    rows = [[way, f[way]["p50_ms"], f[way]["p95_ms"], f[way]["n"]] for way in ("state_png", "panel") if f.get(way)]
    return [f"{f.get('what', '')}; goal p95 <= {f.get('goal_p95_ms')} ms: {_yes(f.get('meets_goal'))}.", "",
            *_table(["way", "p50 ms", "p95 ms", "changes"], rows)]


def _scaling_md(f: dict) -> list[str]:
    rows = [[r["size_px"], r["bands"], r["tokens_per_window"], r["windows"], r["seconds"], r["s_per_mpx"]]
            for r in f["rows"]]
    return [f"{f['what']}; best of {f['repeats']}.", "",
            *_table(["size px", "bands", "tokens / window", "windows", "seconds", "s / Mpx"], rows)]


def _notebooks_md(f: dict) -> list[str]:
    rows = [[r["notebook"], _yes(r["ok"]), r["wall_s"], r["peak_gib"], _yes(r["fits_binder"])] for r in f["rows"]]
    return [f"{f['how']}.", "", *_table(["notebook", "ran", "wall s", "peak GiB", f"<= {f['binder_gib']} GiB"], rows)]


def _gpu_md(f: dict) -> list[str]:
    rows = [[name, f[key]["step_ms"], f[key]["samples_per_s"], f[key]["achieved_tflops"], f[key].get("mfu")]
            for name, key in (("float32", "pretrain_fp32"), ("bf16 autocast", "pretrain_bf16"))]
    t, ft, cm = f["train_vs_reference_bf16"], f["finetune_change"], f["change_map"]
    return [f"{f['device']['name']}; pretraining batch {f['batch_size']}; peak bf16 {f['peak_bf16_tflops']} TFLOP/s.",
            "", *_table(["pretraining step", "ms", "samples/s", "TFLOP/s", "MFU"], rows), "",
            (f"S2MAE vs reference on the GPU (bf16): {t.get('s2mae_samples_per_s')} vs "
            f"{t.get('reference_samples_per_s')} samples/s, ratio {t.get('ratio')}."),
            (f"Fine-tuning step (change, batch {ft['batch_size']}): {ft['device_step_ms']} ms vs "
            f"{ft['cpu_step_ms']} ms on the CPU, {ft['speedup']}x."),
            (f"Change map of {cm['size_px']} x {cm['size_px']} px: {cm['device_s']} s vs {cm['cpu_s']} s on the CPU, "
            f"{cm['speedup']}x.")]


SECTIONS = {
    "scene": ("Whole scene", _scene_md),
    "train": ("Training throughput against the reference MAE", _train_md),
    "app": ("App latency (default view)", _app_md),
    "scaling": ("Cost against image size and band count", _scaling_md),
    "notebooks": ("Notebooks", _notebooks_md),
    "gpu": ("GPU", _gpu_md),
}


def results_markdown(results_dir: str | os.PathLike) -> str:
    """``RESULTS.md`` from every ``<part>.json`` in ``results_dir``: a section per part with its machine and date."""
    folder = Path(results_dir)
    lines = ["# s2lab benchmarks", "",
             ("Written by `s2lab bench` (`s2lab/bench.py`); each part's figures are in `results/<part>.json`. "
             "Re-run one part with `s2lab bench --only PART`."), ""]
    for part, (title, render) in SECTIONS.items():
        path = folder / f"{part}.json"
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        figures = record["figures"]
        lines += [f"## {title}", "", f"Machine: {_machine_line(record['machine'])}"
                  + (" (quick run)" if record.get("quick") else "") + ".", ""]
        if "skipped" in figures:
            lines.append(f"Skipped: {figures['skipped']}.")
        else:
            try:
                lines += render(figures)
            except (KeyError, TypeError):  # a file written by an older s2lab
                lines.append(f"`results/{part}.json` is in an older format: re-run `s2lab bench --only {part}`.")
        lines.append("")
    return "\n".join(lines)
