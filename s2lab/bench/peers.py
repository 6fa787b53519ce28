"""The ``peers`` part: s2lab's training steps against the public MAE and SatMAE code as it runs today.

The peers' code is found, patched and loaded by ``s2lab.bench.peer_code`` (read it for the patches and why each is
needed). The part needs timm, so it runs in the separate environment that ``scripts/peer_env.sh`` makes; elsewhere it
returns ``{"skipped": why}``.

What is timed, in one process, the same torch threads, the same batch of real tiles (32 x 10 bands x 64 x 64 px),
width 128, depth 4, 4 heads, decoder 96 x 2, AdamW as ``s2lab bench``'s train part sets it:

| row | model | tokens L (kept) |
| --- | --- | --- |
| ``mae`` | facebookresearch/mae, 2D patches of 8 px over all 10 bands, on current timm (fused attention) | 64 (16) |
| ``s2lab_s2mae_2d`` | s2lab S2MAE with ``bands_per_token=10``: the same tokens | 64 (16) |
| ``mae_p4`` | facebookresearch/mae, 2D patches of 4 px | 256 (64) |
| ``s2lab_s2mae_p4_2d`` | s2lab S2MAE, ``patch_size=4, bands_per_token=10`` | 256 (64) |
| ``satmae_peer`` | sustainlab-group/SatMAE, 3 band groups, independent masking (its default) | 192 (48) |
| ``s2lab_satmae`` | s2lab SatMAE, the same 3 groups | 192 (48) |
| ``s2lab_s2mae`` | s2lab S2MAE at its defaults, 8 px x 2 bands per token | 320 (80) |

The peers run as they are, in float32 with torch's default AdamW; s2lab runs its training step as
``s2lab.train.fit`` does by default (``s2lab.device.training_autocast``: bf16 autocast where the CPU computes bf16
natively; ``s2lab.train.adamw``: the fused AdamW). Each row gets warm-up steps,
then rounds of timed steps, the rows in a fixed order every round, so that a change of load hits every row. A round
counts only if the other processes on the machine used at most ``max_others`` of the CPUs while it ran (measured as
the busy time of ``/proc/stat`` minus this process's own CPU time); before a round the part waits, at most
``max_wait`` seconds, for the machine to be quiet. Ratios are medians of the per-round ratios, with their range.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from s2lab.bench.measure import LoadGuard, median, optimizer_for, scene_tensor
from s2lab.bench.peer_code import PATCHES, load_peer, peers_dir, skip_reason
from s2lab.data.tiles import random_tiles
from s2lab.device import training_autocast, training_bf16
from s2lab.models import build

# -- the models ----------------------------------------------------------------------------------------------------
SIZE = {"img_size": 64, "in_chans": 10, "embed_dim": 128, "depth": 4, "num_heads": 4, "decoder_embed_dim": 96,
        "decoder_depth": 2, "decoder_num_heads": 4, "mlp_ratio": 4.0}


def _peer_models(folder: Path, size: dict) -> dict[str, torch.nn.Module]:
    """The peers at ``size``, with the LayerNorm eps their model factories pass."""
    mae, satmae = load_peer("mae", folder), load_peer("satmae", folder)
    norm = partial(torch.nn.LayerNorm, eps=1e-6)
    common = {k: size[k] for k in ("img_size", "in_chans", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
                                   "decoder_depth", "decoder_num_heads", "mlp_ratio")}
    from s2lab.sensors import satmae_group_indices

    return {
        "mae": mae(patch_size=8, norm_layer=norm, **common),
        "mae_p4": mae(patch_size=4, norm_layer=norm, **common),
        # SatMAE's channel embeddings (256 / 128 by default) must fit inside the widths: a quarter of each.
        "satmae_peer": satmae(patch_size=8, channel_groups=satmae_group_indices(), spatial_mask=False,
                              channel_embed=size["embed_dim"] // 4,
                              decoder_channel_embed=size["decoder_embed_dim"] // 4, norm_layer=norm, **common),
    }


def _s2lab_models(size: dict) -> dict[str, torch.nn.Module]:
    return {
        "s2lab_s2mae_2d": build("s2mae", {**size, "patch_size": 8, "bands_per_token": size["in_chans"]}),
        "s2lab_s2mae_p4_2d": build("s2mae", {**size, "patch_size": 4, "bands_per_token": size["in_chans"]}),
        "s2lab_satmae": build("satmae", {**size, "patch_size": 8}),
        "s2lab_s2mae": build("s2mae", {**size, "patch_size": 8}),
    }


PAIRS = {  # ratio name -> (s2lab row, peer row): the same token sequences
    "s2mae_2d_over_mae_64_tokens": ("s2lab_s2mae_2d", "mae"),
    "s2mae_p4_2d_over_mae_p4_256_tokens": ("s2lab_s2mae_p4_2d", "mae_p4"),
    "satmae_over_satmae_peer_192_tokens": ("s2lab_satmae", "satmae_peer"),
}
GOAL = 1.5  # s2lab's samples/s over the peer's at the same tokens


def _tokens(name: str, model: torch.nn.Module, size: dict) -> int:
    if name.startswith("s2lab"):
        c = model.config
        return model.tokenizer.G * (c.img_size // c.patch_size) ** 2
    patch = model.patch_embed[0] if isinstance(model.patch_embed, torch.nn.ModuleList) else model.patch_embed
    groups = len(model.patch_embed) if isinstance(model.patch_embed, torch.nn.ModuleList) else 1
    return groups * patch.num_patches


def peers(
    *,
    folder: str | os.PathLike | None = None,
    batch_size: int = 32,
    steps: int = 10,
    warmup: int = 3,
    rounds: int = 7,
    max_rounds: int | None = None,
    mask_ratio: float = 0.75,
    threads: int = 2,
    max_others: float = 0.03,
    max_wait: float = 60.0,
    size: dict | None = None,
    rows: tuple[str, ...] | None = None,
) -> dict:
    """Training samples/s and CPU time per sample of s2lab's models against the real peers (module docstring).

    Args:
        folder: the peers' files (default ``peers_dir()``).
        batch_size, steps, warmup: B, timed steps per row per round, untimed steps per row first.
        rounds: clean rounds wanted; ``max_rounds`` (default 2 x rounds) bounds the rounds run in all.
        mask_ratio: share of tokens removed.
        threads: torch's intra-op threads for every row (restored afterwards).
        max_others: a round counts when other processes used at most this share of the CPUs during it.
        max_wait: seconds at most to wait for a quiet machine before each round.
        size: model fields over ``SIZE`` (tests use tiny ones). rows: only these rows (default all).

    Returns:
        ``{"skipped": why}`` where the part cannot run; else per row samples/s, CPU ms per sample and tokens, the
        ratios of ``PAIRS`` (median of per-round ratios of samples/s and of CPU time, with their range), whether
        each meets ``GOAL``, the rounds kept and discarded with others' share, and what each row is.
    """
    folder = peers_dir() if folder is None else Path(folder)
    reason = skip_reason(folder)
    if reason is not None:
        return {"skipped": reason}
    import timm

    size = {**SIZE, **(size or {})}
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            models = {**_peer_models(folder, size), **_s2lab_models(size)}
        if rows is not None:
            models = {k: v for k, v in models.items() if k in rows}
        x = random_tiles(scene_tensor(size["in_chans"]), size["img_size"], batch_size,
                         torch.Generator().manual_seed(0))  # (B, C, H, W) real reflectance
        generator = torch.Generator().manual_seed(0)
        bf16 = training_bf16("cpu")

        def step_of(name: str, model: torch.nn.Module) -> Callable[[], torch.Tensor]:
            if name.startswith("s2lab"):
                def s2lab_step() -> torch.Tensor:
                    with training_autocast("cpu"):
                        return model(x, mask_ratio=mask_ratio, generator=generator).loss
                return s2lab_step
            return lambda: model(x, mask_ratio)[0]

        runs = {name: (step_of(name, m), optimizer_for(m, fused=name.startswith("s2lab")))
                for name, m in models.items()}

        def run_steps(name: str, n: int) -> tuple[float, float]:
            step, optimizer = runs[name]
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                optimizer.zero_grad(set_to_none=True)
                step().backward()
                optimizer.step()
            return time.perf_counter() - wall, time.process_time() - cpu

        for name in runs:
            run_steps(name, warmup)
        guard = LoadGuard()
        wall: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        kept, discarded, waited = [], [], []
        for _ in range(max_rounds or 2 * rounds):
            if len(kept) >= rounds:
                break
            waited.append(guard.wait_quiet(cores=0.1 * guard.cpus, max_wait=max_wait))
            guard.start()
            this = {name: run_steps(name, steps) for name in runs}
            others = guard.others()
            if others is not None and others > max_others:
                discarded.append(round(others, 4))
                continue
            kept.append(None if others is None else round(others, 4))
            for name, (w, c) in this.items():
                wall[name].append(w)
                cpu[name].append(c)
        if not kept:
            return {"skipped": (f"no round was clean: other processes used {min(discarded):.1%} to "
                                f"{max(discarded):.1%} of the CPUs (at most {max_others:.0%} wanted); "
                                "re-run on a quiet machine")}
        samples = steps * batch_size
        table = {
            name: {
                "samples_per_s": round(samples / median(wall[name]), 2),
                "samples_per_s_range": [round(samples / max(wall[name]), 2), round(samples / min(wall[name]), 2)],
                "cpu_ms_per_sample": round(1e3 * median(cpu[name]) / samples, 3),
                "tokens": _tokens(name, models[name], size),
                "precision": "bf16 autocast" if name.startswith("s2lab") and bf16 else "float32",
            }
            for name in runs
        }
        ratios = {}
        for pair, (ours, theirs) in PAIRS.items():
            if ours not in runs or theirs not in runs:
                continue
            per_round = [t / o for o, t in zip(wall[ours], wall[theirs])]
            per_round_cpu = [t / o for o, t in zip(cpu[ours], cpu[theirs])]
            ratios[pair] = {
                "samples_per_s": round(median(per_round), 3),
                "range": [round(min(per_round), 3), round(max(per_round), 3)],
                "cpu_time": round(median(per_round_cpu), 3),
                "cpu_time_range": [round(min(per_round_cpu), 3), round(max(per_round_cpu), 3)],
                "meets_goal": median(per_round) >= GOAL,
            }
        return {
            "rows": table, "ratios": ratios, "goal": GOAL,
            "rounds": {"kept": len(kept), "discarded": len(discarded), "others_kept": kept,
                       "others_discarded": discarded, "waited_s": waited, "max_others": max_others},
            "batch_size": batch_size, "steps_per_round": steps, "warmup_steps": warmup, "mask_ratio": mask_ratio,
            "threads": threads, "size": size, "s2lab_bf16": bf16,
            "versions": {"torch": torch.__version__, "timm": timm.__version__},
            "patches": [f"{p.file}: {p.why}" for p in PATCHES],
            "what": {
                "mae": "facebookresearch/mae models_mae.py (efb2a80) on current timm, patched as listed, float32",
                "mae_p4": "the same with 4 px patches",
                "satmae_peer": ("sustainlab-group/SatMAE models_mae_group_channels.py (e31c11f) on current timm, "
                                "3 groups, independent masking, float32"),
                "s2lab_s2mae_2d": "s2lab S2MAE with bands_per_token = 10: MAE's 2D tokens",
                "s2lab_s2mae_p4_2d": "s2lab S2MAE, 4 px x 10 bands per token",
                "s2lab_satmae": "s2lab SatMAE, the same 3 groups",
                "s2lab_s2mae": "s2lab S2MAE at its defaults (8 px x 2 bands per token)",
            },
        }
    finally:
        torch.set_num_threads(previous_threads)
