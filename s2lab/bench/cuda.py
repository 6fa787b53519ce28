"""The ``gpu`` benchmark part: the CUDA path, where there is one.

The pretraining step in float32 and in bf16 autocast with its FLOPs (torch's ``FlopCounterMode``) and model FLOP
utilisation against the device's dense bf16 peak, S2MAE against MAE on timm 0.3.2's written-out attention on the
device (``parts.train``), and the change fine-tuning step and change map against the CPU. Tests run the same code
on the CPU.
"""

from __future__ import annotations

import torch

from s2lab.bench.measure import optimizer_for, scene_tensor, timed_steps
from s2lab.bench.parts import train
from s2lab.change import change_map
from s2lab.data.tiles import random_tiles
from s2lab.device import autocast, describe_device
from s2lab.models import ChangeDetector, build

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}  # dense


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
    x = random_tiles(scene_tensor(c.in_chans), c.img_size, batch_size, torch.Generator().manual_seed(0)).to(device)
    generator, optimizer = torch.Generator().manual_seed(0), optimizer_for(model)

    def step() -> torch.Tensor:
        with autocast(device, enabled=bf16):
            return model(x, mask_ratio=0.75, generator=generator).loss

    timed_steps(step, optimizer, warmup, device)
    seconds = timed_steps(step, optimizer, steps, device)
    flops = _train_flops(model, x, 0.75)
    return {"step_ms": round(1000 * seconds, 3), "samples_per_s": round(batch_size / seconds, 1),
            "flops_per_step": flops, "achieved_tflops": round(flops / seconds / 1e12, 3)}


def _finetune_step_seconds(device: torch.device, batch_size: int, steps: int, config: dict | None) -> float:
    """Seconds per change-detection fine-tuning step (siamese S2MAE encoder and head) on ``device``."""
    encoder = build("s2mae", dict(config or {}))
    model = ChangeDetector(encoder=encoder, hidden=32).to(device)
    c = encoder.config
    scene_t = scene_tensor(c.in_chans)
    g = torch.Generator().manual_seed(0)
    before = random_tiles(scene_t, c.img_size, batch_size, g).to(device)
    after = random_tiles(scene_t, c.img_size, batch_size, g).to(device)
    label = (torch.rand(batch_size, c.img_size, c.img_size, generator=g) < 0.1).float().to(device)
    optimizer = optimizer_for(model)

    def step() -> torch.Tensor:
        with autocast(device):
            return model.loss(before, after, label)

    timed_steps(step, optimizer, 2, device)
    return timed_steps(step, optimizer, steps, device)


def _change_seconds(device: torch.device, size: int, config: dict | None) -> float:
    encoder = build("s2mae", dict(config or {}))
    model = ChangeDetector(encoder=encoder, hidden=32)
    image = scene_tensor(encoder.config.in_chans)[:, :size, :size]  # (C, size, size)
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
        rounds: alternating rounds of S2MAE against MAE on timm 0.3.2's written-out attention.
        config: S2MAE config fields over the defaults.
        finetune_batch: B of the change fine-tuning steps.
        change_size: side in pixels of the crop the change map is timed on.

    Returns:
        pretraining step in float32 and bf16 (step_ms, samples_per_s, FLOPs, achieved TFLOP/s, MFU against the
        device's dense bf16 peak when known), S2MAE against MAE on written-out attention on the device, and the
        fine-tuning step and change map speed-up over the CPU; or ``{"skipped": reason}`` without CUDA.
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
