"""Where the tensors live: pick a device (CUDA, then Apple MPS, then CPU) and its mixed-precision context.

Everything in s2lab runs on the CPU out of the box; a GPU is used when one is found. ``pick_device`` is the one
place that decides, ``autocast`` the one place that turns on bf16 (CUDA only: on CPU and MPS it does nothing, so
numbers there are plain float32 and seeded CPU runs repeat bit for bit), and ``describe_device`` says what was
found, for ``s2lab info``.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The device types this machine can use, best first: a subset of ``["cuda", "mps", "cpu"]``."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    return [*found, "cpu"]


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to compute on.

    Args:
        prefer: ``None`` or ``"auto"`` for the best available (CUDA, then MPS, then CPU); ``"cpu"``, ``"cuda"``,
            ``"mps"`` to insist on one, or ``"cuda:N"`` for one GPU of several.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: ``prefer`` is not one of the choices, or names a device this machine does not have.
    """
    choice = "auto" if prefer is None else str(prefer).strip().lower()
    kind, _, index = choice.partition(":")
    if kind not in CHOICES or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"unknown device {prefer!r}; expected one of {', '.join(CHOICES)} or 'cuda:N'")
    available = available_devices()
    if kind == "auto":
        return torch.device(available[0])
    if kind not in available:
        raise ValueError(
            f"device {kind!r} was asked for but this machine has no {kind.upper()} device that torch "
            f"{torch.__version__} can use; available: {', '.join(available)}"
        )
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(
            f"device {choice!r} was asked for but this machine has {torch.cuda.device_count()} CUDA GPU(s)"
        )
    return torch.device(choice)


def autocast(device: torch.device | str, *, enabled: bool = True) -> contextlib.AbstractContextManager:
    """The mixed-precision context for ``device``: bf16 ``torch.autocast`` on CUDA, a no-op on CPU and MPS.

    Args:
        device: where the forward pass runs.
        enabled: False gives the no-op everywhere (full float32).
    """
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _system_memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def describe_device(device: torch.device | str) -> dict:
    """What ``device`` is, as plain JSON-ready values.

    Returns:
        ``{"type", "name", "memory_gib", ...}``: memory is the GPU's own for CUDA, the recommended maximum for
        MPS where torch reports it, the machine's RAM for CPU, and None where unknown. CUDA adds ``index``,
        ``capability`` and ``bf16``; CPU adds ``threads`` (torch's intra-op threads).
    """
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return {
            "type": "cuda",
            "index": index,
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "bf16": torch.cuda.is_bf16_supported(),
        }
    if device.type == "mps":
        recommended = getattr(getattr(torch, "mps", None), "recommended_max_memory", None)
        memory = round(recommended() / 2**30, 1) if recommended is not None else None
        return {"type": "mps", "name": f"Apple MPS ({platform.machine()})", "memory_gib": memory}
    return {
        "type": device.type,
        "name": _cpu_name(),
        "memory_gib": _system_memory_gib(),
        "threads": torch.get_num_threads(),
    }
