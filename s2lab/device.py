"""Where the tensors live: pick a device (CUDA, then Apple MPS, then CPU) and its mixed-precision context.

Everything in s2lab runs on the CPU out of the box; a GPU is used when one is found. ``pick_device`` is the one
place that decides; ``autocast`` turns on bf16 for inference (CUDA only: on CPU and MPS it does nothing, so
reconstructions there are plain float32) and ``training_autocast`` for training steps (CUDA, and CPUs that compute
bf16 natively: ``cpu_bf16_native``); ``describe_device`` says what was found, for ``s2lab info``.
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


BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bf16 matrix arithmetic


def _cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def cpu_bf16_native() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (Intel AMX-BF16 or AVX512-BF16, read from /proc/cpuinfo)
    and torch's oneDNN uses it. Elsewhere (no such flags, another OS) bf16 would be emulated and slower than float32."""
    if not any(flag in _cpu_flags() for flag in BF16_CPU_FLAGS):
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and (check is None or check()))


def training_bf16(device: torch.device | str, *, enabled: bool = True) -> bool:
    """Whether training steps on ``device`` run in bf16 autocast: on CUDA, and on CPUs with ``cpu_bf16_native``."""
    kind = torch.device(device).type
    return bool(enabled and (kind == "cuda" or (kind == "cpu" and cpu_bf16_native())))


def training_autocast(device: torch.device | str, *, enabled: bool = True) -> contextlib.AbstractContextManager:
    """The mixed-precision context of a training step: bf16 ``torch.autocast`` where ``training_bf16`` says so, a
    no-op elsewhere or with ``enabled=False`` (float32).

    On the CPU, autocast runs the matrix products in bf16 (AMX tiles) and keeps the weights, the optimizer, the
    softmax, the norms and the loss in float32; ``s2lab.blocks.Attention`` then writes attention out, as the fused
    kernel's bf16 path is slower on the CPU than its float32 one.
    """
    if not training_bf16(device, enabled=enabled):
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


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
