"""A small training run in its own process, for the torchrun and SIGKILL tests in test_train.py.

    python tests/_fit_worker.py OUT_DIR DIGEST_DIR [--steps N] [--checkpoint-every K] [--sleep S] [--resume]

Trains ``make_model()`` on ``batch_fn`` / ``loss_fn`` (the same ones test_train.py uses in-process) and writes
``DIGEST_DIR/rank<r>.json``: ``{"params": sha256 of the final weights, "batch": sha256 of the first batch this
rank drew, "losses": [...]}``. Under ``torchrun`` every rank writes its own file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from s2lab.train import TrainConfig, fit


def make_model(seed: int = 0) -> nn.Module:
    """A 2-layer MLP (8 -> 16 -> 1) with dropout, its initial weights fixed by ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Dropout(0.1), nn.Linear(16, 1))


def batch_fn(step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """B = 16 random inputs (16, 8) and a smooth target tanh(sum / 4) (16, 1)."""
    x = torch.randn(16, 8, generator=generator)
    return {"x": x, "y": torch.tanh(x.sum(dim=1, keepdim=True) / 4)}


def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """MSE on inputs with a random quarter of the values masked out, the mask drawn from ``generator``."""
    keep = (torch.rand(batch["x"].shape, generator=generator) > 0.25).to(batch["x"].device)
    return nn.functional.mse_loss(model(batch["x"] * keep), batch["y"])


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and bytes of ``tensors``: equal only when every value is bitwise equal."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("digest_dir", type=Path)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds added to every step")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    first_batch = {}

    def recording_batch_fn(step, generator):
        batch = batch_fn(step, generator)
        first_batch.setdefault("digest", digest(batch))
        return batch

    def slow_loss(model, batch, generator):
        time.sleep(args.sleep)
        return loss_fn(model, batch, generator)

    config = TrainConfig(
        steps=args.steps, lr=1e-2, warmup_steps=2, checkpoint_every=args.checkpoint_every, progress=False, device="cpu"
    )
    model = make_model()
    result = fit(
        model,
        loss_fn=slow_loss,
        batch_fn=recording_batch_fn,
        config=config,
        out_dir=args.out_dir,
        resume=args.resume,
        model_config={},
        kind="mlp",
    )
    args.digest_dir.mkdir(parents=True, exist_ok=True)
    record = {"params": digest(model.state_dict()), "batch": first_batch["digest"], "losses": result.losses}
    (args.digest_dir / f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1:])
