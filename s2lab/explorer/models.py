"""The shipped models the explorer runs, by role, loaded once per process and shared read-only by every session."""

from __future__ import annotations

import functools

import torch

from s2lab.device import pick_device
from s2lab.explorer.sources import BANDS
from s2lab.models import load_model

MODELS = {"s2mae": "s2mae-s2-small", "satmae": "satmae-s2-small", "change": "change-oscd-small"}  # role -> shipped


@functools.lru_cache(maxsize=1)
def device() -> torch.device:
    """Where the models run (``s2lab.device.pick_device``: CUDA, then MPS, then the CPU)."""
    return pick_device()


@functools.cache
def model(role: str) -> tuple[torch.nn.Module, dict]:
    """A shipped model of ``MODELS`` by role, in eval mode on ``device()``, with its checkpoint description."""
    loaded, info = load_model(MODELS[role])
    return loaded.to(device()).eval(), info


def describe_groups() -> list[str]:
    """The band groups SatMAE's tokens take, as text ("B02 B03 B04 B08", ...)."""
    satmae = model("satmae")[0].tokenizer
    return [" ".join(BANDS[i] for i in group) for group in satmae.bands_of_group]
