"""The benchmark parts that run on the CPU: each a function returning JSON-ready figures.

- ``scene``: ``s2lab reconstruct`` and ``s2lab detect-change`` on the whole embedded scene (10 x 1947 x 1933) in a
  child process each, timed from start to exit, with the child's peak resident memory (``measure.run_measured``).
- ``train``: samples per second of S2MAE pretraining steps against MAE on timm 0.3.2's written-out attention
  (``s2lab.bench.reference_mae``: facebookresearch/mae's recipe) at the same width, depth, image size and token
  count, on the same batch with the same optimizer, in alternating rounds so that a load change hits both; the
  ratio is the median of the rounds' ratios.
- ``app``: the explorer's default view, slider change to encoded pictures (``s2lab.bench.app_latency``).
- ``scaling``: whole-image reconstruction time against image size and band count.
- ``notebooks``: every notebook executed by ``jupyter nbconvert --execute`` in a child process: wall time and peak
  memory against Binder's 2 GiB.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from s2lab.bench.measure import (
    BAND_SETS,
    GOALS,
    bench_dir,
    median,
    optimizer_for,
    run_measured,
    scene_tensor,
    timed_steps,
)
from s2lab.bench.reference_mae import MaskedAutoencoderViT
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.raster import select_bands
from s2lab.data.tiles import random_tiles
from s2lab.device import autocast
from s2lab.models import build
from s2lab.reconstruct import reconstruct_image
from s2lab.scaling import reference_statistics

# `jupyter nbconvert` as `python -c NBCONVERT_WAKEFUL <its arguments>`, with nbclient's reply wait mended first
# (s2lab.nbclient_wakeup: otherwise a cell after an interactive figure can wait its whole timeout with the kernel idle).
NBCONVERT_WAKEFUL = ("from s2lab.nbclient_wakeup import install; install(); "
                     "from nbconvert.nbconvertapp import main; main()")

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
def reference_for(model: torch.nn.Module) -> MaskedAutoencoderViT:
    """MAE on timm 0.3.2's written-out attention at the S2MAE's width, depth, heads, image size, patch and bands per
    token."""
    c = model.config
    return MaskedAutoencoderViT(
        img_size=c.img_size, patch_size=c.patch_size, bands_per_token=c.bands_per_token, in_chans=c.in_chans,
        embed_dim=c.embed_dim, depth=c.depth, num_heads=c.num_heads, decoder_embed_dim=c.decoder_embed_dim,
        decoder_depth=c.decoder_depth, decoder_num_heads=c.decoder_num_heads, mlp_ratio=c.mlp_ratio,
    )


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
    """Training samples per second: S2MAE against MAE on timm 0.3.2's written-out attention, side by side.

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
        ratio meets the goal.
    """
    device = torch.device(device)
    s2mae = build("s2mae", dict(config or {})).to(device)
    ref = reference_for(s2mae).to(device)
    c = s2mae.config
    tiles = random_tiles(scene_tensor(c.in_chans), c.img_size, batch_size, torch.Generator().manual_seed(0))
    x = tiles.to(device)  # (B, C, H, W) real reflectance
    generator = torch.Generator().manual_seed(0)

    def s2mae_step() -> torch.Tensor:
        with autocast(device, enabled=bf16):
            return s2mae(x, mask_ratio=mask_ratio, generator=generator).loss

    def ref_step() -> torch.Tensor:
        with autocast(device, enabled=bf16):
            return ref(x, mask_ratio)[0]

    runs = {"s2mae": (s2mae_step, optimizer_for(s2mae)), "reference": (ref_step, optimizer_for(ref))}
    for step, optimizer in runs.values():
        timed_steps(step, optimizer, warmup, device)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (step, optimizer) in runs.items():
            wall, cpu = timed_steps(step, optimizer, steps, device, cpu_time=True)
            seconds[name].append(wall)
            cpu_seconds[name].append(cpu)
    ratios = [r / s for s, r in zip(seconds["s2mae"], seconds["reference"])]
    L = s2mae.tokenizer.G * (c.img_size // c.patch_size) ** 2
    ratio = median(ratios)
    return {
        "s2mae_samples_per_s": round(batch_size / median(seconds["s2mae"]), 2),
        "reference_samples_per_s": round(batch_size / median(seconds["reference"]), 2),
        "ratio": round(ratio, 3),
        "rounds_ratio": [round(r, 3) for r in ratios],
        "ratio_cpu_time": round(median(cpu_seconds["reference"]) / max(median(cpu_seconds["s2mae"]), 1e-12), 3),
        "goal_ratio": GOALS["train_ratio"],
        "meets_goal": ratio >= GOALS["train_ratio"],
        "batch_size": batch_size, "steps_per_round": steps, "warmup_steps": warmup, "rounds": rounds,
        "tokens": L, "kept_tokens": round(L * (1 - mask_ratio)), "mask_ratio": mask_ratio,
        "device": str(device), "bf16": bool(bf16 and device.type == "cuda"), "threads": torch.get_num_threads(),
        "config": s2mae.config_dict(),
        "reference": ("s2lab.bench.reference_mae: facebookresearch/mae models_mae.py on timm 0.3.2's Block, "
                      "written-out attention"),
    }


# -- app latency ---------------------------------------------------------------------------------------------------
def app(*, changes: int = 100) -> dict:
    """The explorer's default-view latency (``s2lab.bench.app_latency.default_view_latency``).

    Imported here, when the part runs: the explorer needs the lab extra (param, matplotlib), the other parts do not.
    """
    from s2lab.bench.app_latency import default_view_latency

    return default_view_latency(changes=changes)


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
            argv = [sys.executable, "-c", NBCONVERT_WAKEFUL, "--to", "notebook", "--execute", "--output-dir",
                    tmp, f"--ExecutePreprocessor.timeout={int(timeout)}", str(path)]
            m = run_measured(argv, timeout=timeout, cwd=path.parent)
            row = {"notebook": path.name, "ok": m["returncode"] == 0, "wall_s": m["wall_s"], "cpu_s": m["cpu_s"],
                   "peak_gib": m["peak_gib"], "fits_binder": m["peak_gib"] <= GOALS["binder_gib"]}
            if not row["ok"]:
                row["error"] = m["stderr"].strip().splitlines()[-1:] or [f"exit code {m['returncode']}"]
            rows.append(row)
    return {"binder_gib": GOALS["binder_gib"], "rows": rows,
            "how": ("jupyter nbconvert --execute in a child process, nbclient's reply wait in slices "
                    "(s2lab.nbclient_wakeup); peak = the child's rusage (kernel included)")}

