"""One training loop for pretraining and fine-tuning: ``fit(model, loss_fn=..., batch_fn=..., config=...)``.

The loop knows nothing about the model. It asks ``batch_fn(step, generator)`` for a batch, hands it to
``loss_fn(model, batch, generator)`` for a scalar loss, and takes an AdamW step with a linear warm-up and a cosine
decay of the learning rate. Weight decay applies to matrices only (``ndim >= 2``), not to biases and norms.

Reproducibility: every step ``i`` on rank ``r`` gets its own randomness,
``numpy.random.SeedSequence([config.seed, i, r]).generate_state(2, numpy.uint64)`` -> two 64-bit words: the first
seeds the CPU ``torch.Generator`` passed to ``batch_fn`` and then to ``loss_fn`` (masking draws from it), the second
seeds torch's global generator for the step (dropout). So a step is a pure function of (weights, optimizer state,
seed, step, rank): a seeded CPU run repeats bit for bit, and a run resumed from a checkpoint ends with the same
weights as one never stopped. The caller's global CPU and CUDA random states are restored when ``fit`` returns.

Distributed: started by ``torchrun`` (``WORLD_SIZE > 1``), ``fit`` joins the process group (gloo on CPU, nccl on
CUDA, one GPU per process from ``LOCAL_RANK``) unless the caller already did, wraps the model in
DistributedDataParallel, lets every rank draw its own batches, reports the loss averaged over ranks, and writes
checkpoints and shows the progress bar on rank 0 only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from s2lab.checkpoints import (
    has_training_state,
    load_training_state,
    save_model,
    save_training_state,
)
from s2lab.device import pick_device, training_autocast
from s2lab.files import check_writable

# Settings that shape the trajectory: a resumed run must use the same ones.
_RUN_DEFINING = ("steps", "lr", "weight_decay", "warmup_steps", "betas", "grad_clip", "seed")


class TrainingError(RuntimeError):
    """Training cannot start or cannot go on: an unwritable folder, nothing to resume, a non-finite loss."""


@dataclass
class TrainConfig:
    """How to train; the same for pretraining and fine-tuning."""

    steps: int  # optimizer steps in total
    lr: float = 1.5e-4  # peak learning rate (AdamW), after linear warm-up, then cosine decay to 0
    weight_decay: float = 0.05  # AdamW decoupled weight decay on matrices (ndim >= 2); biases and norms get none
    warmup_steps: int = 0  # steps of linear warm-up from lr / warmup_steps to lr
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW moment decay rates
    grad_clip: float | None = 1.0  # clip the global gradient norm to this; None = no clipping
    seed: int = 0  # with the step and the rank, seeds every step's generators (see the module docstring)
    checkpoint_every: int = 0  # write a training state every this many steps; 0 = only at the end (with out_dir)
    device: str | None = None  # "cpu", "cuda", "mps", "cuda:N"; None = pick_device()
    amp: bool = True  # bf16 autocast on CUDA and on CPUs with native bf16 (s2lab.device.training_bf16); False:
    #                   float32 everywhere (bit for bit the same on any CPU; the shipped checkpoints' recipe)
    progress: bool = True  # a tqdm.auto bar (a widget in notebooks) showing the loss

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        problems = []
        if not (isinstance(self.steps, int) and self.steps >= 1):
            problems.append(f"steps must be an integer >= 1, got {self.steps!r}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not (isinstance(self.warmup_steps, int) and 0 <= self.warmup_steps < max(self.steps, 1)):
            problems.append(f"warmup_steps must be an integer in [0, steps={self.steps}), got {self.warmup_steps!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            problems.append(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            problems.append(f"seed must be an integer >= 0, got {self.seed!r}")
        if not (isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 0):
            problems.append(f"checkpoint_every must be an integer >= 0, got {self.checkpoint_every!r}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))


@dataclass
class TrainResult:
    """What a call to ``fit`` did."""

    losses: list[float]  # the loss of every step 0 .. steps_done - 1, those before a resume included
    steps_done: int  # optimizer steps done in total
    seconds: float  # wall time of this call's steps
    samples_per_second: float | None  # all ranks together, this call; None when unknown (no tensor in the batch)
    out_dir: Path | None  # where the checkpoints are, if anywhere
    start_step: int = 0  # the step this call began at (> 0 after a resume)


def step_seeds(seed: int, step: int, rank: int = 0) -> tuple[int, int]:
    """The two seeds of one step: (batch and masking generator, torch's global generator).

    ``numpy.random.SeedSequence([seed, step, rank]).generate_state(2, numpy.uint64)``: well mixed, so nearby
    seeds, steps and ranks give unrelated streams.
    """
    words = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint64)
    return int(words[0]), int(words[1])


def learning_rate(step: int, config: TrainConfig) -> float:
    """The learning rate of optimizer step ``step`` (0-based): linear warm-up to ``config.lr``, cosine to 0."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / (config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (a tensor, or tuples / lists / dicts of them) with every tensor moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _batch_size(batch: Any) -> int | None:
    """B: the leading size of the first tensor in ``batch``, or None."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else None
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else ()
    return next((size for size in map(_batch_size, items) if size is not None), None)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: trainable matrices with weight decay, trainable vectors and scalars without."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise TrainingError(f"{type(model).__name__} has no trainable parameter (all have requires_grad=False)")
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def adamw(params, *, lr: float, betas: tuple[float, float], weight_decay: float,
          device: torch.device | str) -> torch.optim.AdamW:
    """AdamW over ``params`` (tensors or groups), fused into one kernel per step on the CPU and CUDA: the same
    update as torch's default (for-each) AdamW, within rounding, in a quarter of the time on the CPU."""
    fused = torch.device(device).type in ("cpu", "cuda")
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused)


def check_out_dir(out_dir: str | os.PathLike, *, resume: bool = False) -> Path:
    """Refuse a run folder that would fail later, before any data is read or any step runs; creates nothing.

    Resuming needs ``out_dir`` to hold a training state. A new run needs ``out_dir`` to hold none and to be
    writable: its nearest existing folder (``out_dir`` itself or a parent, made when the first file is written) is
    proven writable by creating and removing a temporary file there, which holds for root too.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        TrainingError: naming the folder and what is wrong with it.
    """
    path = Path(out_dir).expanduser()
    if resume and not has_training_state(path):
        raise TrainingError(f"nothing to resume: {path} holds no training state (no last.safetensors)")
    if not resume and has_training_state(path):
        raise TrainingError(
            f"{path} already holds a training state; resume it (resume=True, or --resume on the command line) or "
            "choose another folder"
        )
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise TrainingError(f"cannot write checkpoints to {path}: {existing} is a file; expected a folder")
    try:
        check_writable(existing)
    except OSError as err:
        raise TrainingError(f"cannot write checkpoints to {path}: {existing} is not writable ({err.strerror})") from None
    return path


def _check_same_run(saved: dict, config: TrainConfig) -> None:
    """A resumed run must keep the settings that shape the trajectory."""
    now = json.loads(json.dumps(dataclasses.asdict(config)))
    differ = [f"{k}: saved {saved.get(k)!r}, now {now[k]!r}" for k in _RUN_DEFINING if saved.get(k) != now[k]]
    if differ:
        raise TrainingError(
            "cannot resume with different settings (" + "; ".join(differ) + "); use the saved ones or a new out_dir"
        )


def _mean_loss(loss: torch.Tensor, world: int) -> float:
    """The loss as a float, averaged over the ranks of a distributed run."""
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise TrainingError(f"loss_fn must return a scalar tensor, got {getattr(loss, 'shape', type(loss))}")
    value = loss.detach().float()
    if world > 1:
        dist.all_reduce(value)
        value /= world
    return value.item()


def _distributed(config: TrainConfig) -> tuple[torch.device, int, int, bool]:
    """(device, rank, world size, whether this call started the process group)."""
    device = pick_device(config.device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device, 0, 1, False
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device, dist.get_rank(), dist.get_world_size(), created


def fit(
    model: nn.Module,
    *,
    loss_fn: Callable[[nn.Module, Any, torch.Generator], torch.Tensor],
    batch_fn: Callable[[int, torch.Generator], Any],
    config: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    callback: Callable[[int, float, nn.Module], None] | None = None,
    model_config: dict | None = None,
    kind: str | None = None,
    meta: dict | None = None,
) -> TrainResult:
    """Train ``model`` for ``config.steps`` optimizer steps (in place; it stays on the training device).

    Args:
        model: any module; its forward must be what ``loss_fn`` calls (in a distributed run ``loss_fn`` receives
            the DistributedDataParallel wrapper, whose forward synchronises the gradients, and every trainable
            parameter must take part in the loss: freeze the others with ``requires_grad_(False)``).
        loss_fn: ``(model, batch, generator) -> loss``, a scalar tensor; ``batch`` is on the device.
        batch_fn: ``(step, generator) -> batch``: a tensor, or tuples / lists / dicts of tensors, on the CPU.
        config: the settings.
        out_dir: where the training state (``last.*``) and the final model (``model.*``) go; None = nowhere.
            Checked before step 0 (``check_out_dir``) and made when the first file is written, so a run that
            fails before its first checkpoint leaves no folder behind.
        resume: continue from ``out_dir``'s training state at the step after it.
        callback: ``(step, loss, model)`` after every step (and its checkpoint), on rank 0 only (e.g. a live
            loss curve); an exception it raises stops the run, the checkpoints written so far kept.
        model_config: the model's constructor arguments (JSON data), saved with the checkpoints.
        kind: the builder key saved in ``model.json`` for ``checkpoints.load_model``; default the class name.
        meta: what the run trained on (JSON data), saved in ``model.json`` next to the settings.

    Returns:
        A ``TrainResult``.

    Raises:
        TrainingError: ``out_dir`` is not writable, holds a previous run while ``resume`` is False, holds nothing
            to resume, was written with different settings, or the loss is not finite (the step and value are
            named, and nothing is saved).
    """
    if resume and out_dir is None:
        raise ValueError("resume=True needs the out_dir of the run to continue")
    out_dir = check_out_dir(out_dir, resume=resume) if out_dir is not None else None
    device, rank, world, created = _distributed(config)
    try:
        model.to(device).train()
        optimizer = adamw(_param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas,
                          weight_decay=config.weight_decay, device=device)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate(step, config) / config.lr)
        losses: list[float] = []
        start = 0
        if resume:
            record = load_training_state(out_dir, model=model, optimizer=optimizer, scheduler=scheduler)
            _check_same_run(record["train_config"], config)
            start, losses = record["step"], list(record["losses"])
        trained = model
        if world > 1:
            trained = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        params = [p for p in model.parameters() if p.requires_grad]
        writes = out_dir is not None and rank == 0

        def save_state(done: int) -> None:
            save_training_state(
                out_dir,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                step=done,
                config=config,
                model_config=model_config,
                losses=losses,
            )

        batch_size = None
        bar = tqdm(
            total=config.steps, initial=start, desc="train", unit="step", disable=not (config.progress and rank == 0)
        )
        began = time.perf_counter()
        with torch.random.fork_rng(devices=[device.index] if device.type == "cuda" else []), bar:
            for step in range(start, config.steps):
                batch_seed, global_seed = step_seeds(config.seed, step, rank)
                generator = torch.Generator().manual_seed(batch_seed)
                torch.manual_seed(global_seed)
                batch = batch_fn(step, generator)
                batch_size = batch_size or _batch_size(batch)
                with training_autocast(device, enabled=config.amp):
                    loss = loss_fn(trained, _to_device(batch, device), generator)
                value = _mean_loss(loss, world)
                if not math.isfinite(value):
                    raise TrainingError(
                        f"loss is {value} at step {step} (of {config.steps}); stopped without saving this state. "
                        "Try a lower lr, more warmup_steps, or check the batch for NaN / inf."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(params, config.grad_clip)
                optimizer.step()
                scheduler.step()
                losses.append(value)
                bar.set_postfix(loss=f"{value:.4g}", refresh=False)
                bar.update()
                done = step + 1
                if writes and config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps:
                    save_state(done)
                if callback is not None and rank == 0:
                    callback(step, value, model)
        seconds = time.perf_counter() - began
        if writes:
            save_state(config.steps)
            run = {"train_config": dataclasses.asdict(config), "final_loss": losses[-1] if losses else None}
            save_model(
                out_dir / "model",
                model,
                kind=kind or type(model).__name__,
                config=model_config or {},
                meta={**(meta or {}), **run},
            )
        if world > 1:
            # Every rank waits for rank 0's last write: a rank that tears its process group down while a peer is
            # still busy can abort in gloo's teardown ("terminate called without an active exception").
            dist.barrier()
    finally:
        trained = None  # the DDP wrapper holds the process group; release it before the group goes
        if created:
            dist.destroy_process_group()
    ran = config.steps - start
    speed = batch_size * world * ran / seconds if batch_size and ran and seconds > 0 else None
    return TrainResult(
        losses=losses,
        steps_done=config.steps,
        seconds=seconds,
        samples_per_second=speed,
        out_dir=out_dir,
        start_step=start,
    )
