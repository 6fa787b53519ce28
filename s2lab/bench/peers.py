"""The ``peers`` part: s2lab's training steps against the public MAE and SatMAE code as it runs today.

The peers are facebookresearch/mae ``models_mae.py`` (with its ``util/pos_embed.py``) and sustainlab-group/SatMAE
``models_mae_group_channels.py`` (with its own ``util/pos_embed.py``), read unmodified from the folder
``$S2LAB_PEERS_DIR`` (default: ``shared/peers`` in the folder that holds the checkout, where CI puts it), laid out as
``mae/models_mae.py``, ``mae/util/pos_embed.py``, ``satmae/models_mae_group_channels.py`` and
``satmae/util/pos_embed.py``. They were written for timm 0.3.2, which does not import on torch 2; on a current timm
they need the smallest set of patches in ``PATCHES``, applied in memory (nothing is copied into s2lab). Each patch
names the text it replaces and how often that text must occur; a file that differs stops the part with
``PeerPatchError``. The part needs timm, so it runs in the separate environment that ``scripts/peer_env.sh`` makes;
elsewhere it returns ``{"skipped": why}``.

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

import importlib.util
import os
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from s2lab.bench.measure import median, optimizer_for, scene_tensor
from s2lab.data.tiles import random_tiles
from s2lab.device import training_autocast, training_bf16
from s2lab.models import build

PEERS_DIR_ENV = "S2LAB_PEERS_DIR"
PEER_FILES = {  # peer -> (model file, position-embedding file), relative to the peers folder
    "mae": ("mae/models_mae.py", "mae/util/pos_embed.py"),
    "satmae": ("satmae/models_mae_group_channels.py", "satmae/util/pos_embed.py"),
}
PEER_CLASSES = {"mae": "MaskedAutoencoderViT", "satmae": "MaskedAutoencoderGroupChannelViT"}


class PeerPatchError(RuntimeError):
    """A peer file does not contain a patch's text exactly as often as expected: it is not the file the patches
    were written for."""


@dataclass(frozen=True)
class Patch:
    """Replace ``old`` by ``new`` in ``file`` (relative to the peers folder), which must hold ``old`` ``count``
    times."""

    file: str
    old: str
    new: str
    count: int
    why: str


_QK = "Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, qk_scale=None, norm_layer=norm_layer)"
_QK_DEC = ("Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, qk_scale=None, "
           "norm_layer=norm_layer)")
_QK_WHY = "current timm's Block has no qk_scale argument (TypeError); None was its default anyway"
_FLOAT_OLD = "omega = np.arange(embed_dim // 2, dtype=np.float)"
_FLOAT_WHY = "numpy 1.24 removed np.float (AttributeError when the sine-cosine position tables are built)"

PATCHES = (
    Patch("mae/models_mae.py", _QK, _QK.replace("qk_scale=None, ", ""), 1, _QK_WHY),
    Patch("mae/models_mae.py", _QK_DEC, _QK_DEC.replace("qk_scale=None, ", ""), 1, _QK_WHY),
    Patch("mae/models_mae.py", "imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))",
          "imgs.reshape(shape=(imgs.shape[0], imgs.shape[1], h, p, w, p))", 1,
          "patchify builds the loss target for 3 channels and fails with 10 bands; decoder_pred already outputs "
          "p**2 * in_chans values (unpatchify is not used in training and is left alone)"),
    Patch("mae/models_mae.py", "x = x.reshape(shape=(imgs.shape[0], h * w, p**2 * 3))",
          "x = x.reshape(shape=(imgs.shape[0], h * w, p**2 * imgs.shape[1]))", 1,
          "the second reshape of patchify, for the same reason"),
    Patch("mae/util/pos_embed.py", _FLOAT_OLD, _FLOAT_OLD.replace("np.float)", "np.float64)"), 1, _FLOAT_WHY),
    Patch("satmae/models_mae_group_channels.py", _QK, _QK.replace("qk_scale=None, ", ""), 1, _QK_WHY),
    Patch("satmae/models_mae_group_channels.py", _QK_DEC, _QK_DEC.replace("qk_scale=None, ", ""), 1, _QK_WHY),
    Patch("satmae/util/pos_embed.py", _FLOAT_OLD, _FLOAT_OLD.replace("np.float)", "np.float64)"), 1,
          _FLOAT_WHY + "; the torch variant further down is not used and is left alone"),
)


# -- finding and loading the peers ---------------------------------------------------------------------------------
def peers_dir() -> Path:
    """``$S2LAB_PEERS_DIR``, else ``shared/peers`` in the folder that holds the checkout."""
    if os.environ.get(PEERS_DIR_ENV):
        return Path(os.environ[PEERS_DIR_ENV]).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "peers"


def patched_source(folder: Path, file: str) -> str:
    """The text of ``folder / file`` with its ``PATCHES`` applied.

    Raises:
        PeerPatchError: a patch's text occurs another number of times than it should.
    """
    text = (folder / file).read_text()
    for patch in (p for p in PATCHES if p.file == file):
        found = text.count(patch.old)
        if found != patch.count:
            raise PeerPatchError(
                f"{folder / file}: expected {patch.count} occurrence(s) of {patch.old!r} to patch ({patch.why}), "
                f"found {found}; these patches were written for facebookresearch/mae at efb2a80 and "
                "sustainlab-group/SatMAE at e31c11f")
        text = text.replace(patch.old, patch.new)
    return text


def _module(name: str, source: str, filename: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def load_peer(name: str, folder: Path | None = None) -> type[torch.nn.Module]:
    """The patched model class of peer ``name`` ("mae" or "satmae"), executed from its files in ``folder``.

    Each peer imports ``util.pos_embed``: its own copy is put in ``sys.modules`` while its model file runs, and
    taken out again, so that the two peers' ``util`` packages do not meet.
    """
    folder = peers_dir() if folder is None else Path(folder)
    model_file, pos_file = PEER_FILES[name]
    util = types.ModuleType("util")
    util.__path__ = []
    pos = _module("util.pos_embed", patched_source(folder, pos_file), str(folder / pos_file))
    util.pos_embed = pos
    saved = {key: sys.modules.get(key) for key in ("util", "util.pos_embed")}
    sys.modules.update({"util": util, "util.pos_embed": pos})
    try:
        module = _module(f"s2lab_peer_{name}", patched_source(folder, model_file), str(folder / model_file))
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    return getattr(module, PEER_CLASSES[name])


def skip_reason(folder: Path | None = None) -> str | None:
    """Why the peer part cannot run here (no timm, no peer files), or None when it can."""
    folder = peers_dir() if folder is None else Path(folder)
    if importlib.util.find_spec("timm") is None:
        return ("timm is not installed: the peer part runs in the environment that scripts/peer_env.sh makes "
                "(.venv-peers/bin/python -m s2lab bench --only peers)")
    missing = [f for files in PEER_FILES.values() for f in files if not (folder / f).is_file()]
    if missing:
        return (f"the peers' files are not in {folder} (missing {', '.join(missing)}); set {PEERS_DIR_ENV} to a "
                "folder holding facebookresearch/mae and sustainlab-group/SatMAE as mae/ and satmae/")
    return None


# -- the machine's other load --------------------------------------------------------------------------------------
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
