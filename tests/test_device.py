"""s2lab.device: choosing the device, the autocast context, describing what was found."""

import json
import warnings

import pytest
import torch

from s2lab.device import autocast, available_devices, describe_device, pick_device


def test_pick_device_auto_is_the_best_available():
    best = available_devices()[0]
    assert pick_device() == torch.device(best)
    assert pick_device("auto") == torch.device(best)
    assert available_devices()[-1] == "cpu"


def test_pick_device_cpu_always_works():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("absent", [k for k in ("cuda", "mps") if k not in available_devices()])
def test_pick_device_refuses_an_absent_device(absent):
    with pytest.raises(ValueError, match=f"{absent}.*available: .*cpu"):
        pick_device(absent)


@pytest.mark.parametrize("bad", ["tpu", "gpu", "cpu:1", "cuda:x", ""])
def test_pick_device_refuses_unknown_names(bad):
    with pytest.raises(ValueError, match="unknown device .*auto, cpu, cuda, mps"):
        pick_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_pick_device_refuses_a_gpu_index_without_cuda():
    with pytest.raises(ValueError, match="cuda"):
        pick_device("cuda:0")


def test_autocast_is_a_no_op_on_cpu():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
        out = a @ b
    assert out.dtype == torch.float32
    assert torch.equal(out, a @ b)


def test_autocast_is_bf16_on_cuda():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CPU-only torch warns that CUDA autocast is disabled
        ctx = autocast("cuda")
    assert isinstance(ctx, torch.autocast)
    assert ctx.fast_dtype == torch.bfloat16
    assert not isinstance(autocast("cuda", enabled=False), torch.autocast)


def test_describe_device_cpu_is_json_ready():
    info = describe_device("cpu")
    assert info["type"] == "cpu"
    assert isinstance(info["name"], str) and info["name"]
    assert info["threads"] == torch.get_num_threads()
    assert info["memory_gib"] is None or info["memory_gib"] > 0
    assert json.loads(json.dumps(info)) == info


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_describe_device_cuda():
    info = describe_device(pick_device("cuda"))
    assert info["type"] == "cuda" and info["memory_gib"] > 0 and isinstance(info["bf16"], bool)


def test_training_runs_bf16_on_cuda_and_on_cpus_with_native_bf16_only(monkeypatch):
    from s2lab import device

    assert device.training_bf16("cuda") and not device.training_bf16("cuda", enabled=False)
    assert not device.training_bf16("mps")
    monkeypatch.setattr(device, "_cpu_flags", lambda: {"avx512f", "avx2"})  # AVX-512 without its bf16 extension
    assert not device.training_bf16("cpu")
    assert not isinstance(device.training_autocast("cpu"), torch.autocast)
    monkeypatch.setattr(device, "_cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert device.training_bf16("cpu") == torch.backends.mkldnn.is_available()
    assert not device.training_bf16("cpu", enabled=False)
    if device.training_bf16("cpu"):
        ctx = device.training_autocast("cpu")
        assert isinstance(ctx, torch.autocast)
        with ctx:
            assert torch.is_autocast_enabled("cpu")
    assert not isinstance(device.training_autocast("cpu", enabled=False), torch.autocast)
