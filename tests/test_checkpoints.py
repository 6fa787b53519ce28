"""s2lab.checkpoints: safetensors + JSON, checksums, refusing pickles, exact fits, training states; the bad
checkpoints of the error tests (pickled, disguised, tampered, of another width) through ``s2lab.models.load_model``."""

import hashlib
import json
import pickle
import re
import shutil

import pytest
import torch
from torch import nn

from s2lab import checkpoints
from s2lab.checkpoints import (
    CheckpointError,
    load_into,
    load_model,
    load_state,
    load_training_state,
    save_model,
    save_training_state,
    shipped_models,
)
from s2lab.models import load_model as load_s2lab_model


class TiedMLP(nn.Module):
    """A decoder and a head whose weights are tied (one tensor under two names), plus a transposed buffer."""

    def __init__(self, *, width: int = 4, hidden: int = 6):
        super().__init__()
        self.encoder = nn.Linear(width, hidden)
        self.decoder = nn.Linear(hidden, width)
        self.head = nn.Linear(hidden, width, bias=False)
        self.head.weight = self.decoder.weight
        self.register_buffer("mix", torch.arange(width * width, dtype=torch.float32).reshape(width, width).T)

    def forward(self, x):
        hidden = torch.relu(self.encoder(x))
        return (self.decoder(hidden) + self.head(hidden)) @ self.mix


def _model(seed: int = 0, **config) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(config.get("width", 4), config.get("hidden", 6)), nn.ReLU(), nn.Linear(6, 2))


class _ForbiddenUnpickler(pickle.Unpickler):
    def __init__(self, *args, **kwargs):
        raise AssertionError("unpickling was attempted")


def _forbidden(*args, **kwargs):
    raise AssertionError("unpickling was attempted")


@pytest.fixture
def no_unpickling(monkeypatch):
    """Make every way of unpickling fail loudly, so a test proves it is never reached."""
    monkeypatch.setattr(pickle, "Unpickler", _ForbiddenUnpickler)
    for module, name in [(pickle, "load"), (pickle, "loads"), (torch, "load"), (torch.serialization, "load")]:
        monkeypatch.setattr(module, name, _forbidden)


def test_save_and_load_round_trip(tmp_path):
    model = _model(seed=1)
    path = save_model(tmp_path / "sub" / "mlp", model, kind="mlp", config={"width": 4}, meta={"data": "unit test"})
    assert path == tmp_path / "sub" / "mlp.safetensors"
    info = json.loads((tmp_path / "sub" / "mlp.json").read_text())
    assert info["kind"] == "mlp" and info["config"] == {"width": 4} and info["meta"] == {"data": "unit test"}
    assert info["format_version"] == checkpoints.FORMAT_VERSION
    assert info["tensors"]["0.weight"] == [[6, 4], "float32"]
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    for given in (tmp_path / "sub" / "mlp", path, tmp_path / "sub" / "mlp.json", str(path)):
        state, read_info = load_state(given)
        assert read_info == info
        assert state.keys() == model.state_dict().keys()
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_shared_and_non_contiguous_tensors_are_saved(tmp_path):
    model = TiedMLP()
    assert model.state_dict()["head.weight"].data_ptr() == model.state_dict()["decoder.weight"].data_ptr()
    assert not model.mix.is_contiguous()
    save_model(tmp_path / "tied", model, kind="tied", config={"width": 4, "hidden": 6})
    rebuilt, info = load_model(tmp_path / "tied.safetensors", builders={"tied": TiedMLP})
    assert info["kind"] == "tied" and not rebuilt.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], tensor), name
    x = torch.randn(3, 4)
    assert torch.equal(rebuilt(x), model(x))


def test_load_model_needs_a_builder_for_the_kind(tmp_path):
    save_model(tmp_path / "m", _model(), kind="mlp", config={})
    with pytest.raises(CheckpointError, match="kind 'mlp' has no builder; known kinds: s2mae"):
        load_model(tmp_path / "m", builders={"s2mae": _model})
    with pytest.raises(CheckpointError, match="cannot build 'mlp'"):
        load_model(tmp_path / "m", builders={"mlp": lambda *, depth: _model()})


def test_names_are_looked_up_among_shipped_models(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "_weights_root", lambda: tmp_path)
    assert shipped_models() == []
    with pytest.raises(CheckpointError, match="no shipped model named 'tiny'; available: none"):
        load_model("tiny", builders={"mlp": _model})
    model = _model(seed=3)
    save_model(tmp_path / "tiny", model, kind="mlp", config={"width": 4}, meta={"trained_on": "nothing"})
    assert shipped_models() == [
        {"name": "tiny", "kind": "mlp", "config": {"width": 4}, "meta": {"trained_on": "nothing"}}
    ]
    loaded, _ = load_model("tiny", builders={"mlp": _model})
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters()))
    with pytest.raises(CheckpointError, match="available: tiny"):
        load_model("small", builders={"mlp": _model})


def test_shipped_models_of_the_package_are_listed():
    for entry in shipped_models():
        assert {"name", "kind", "meta"} <= entry.keys()


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".bin", ".pkl"])
def test_pickle_files_are_refused_by_name(tmp_path, suffix, no_unpickling):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x80\x04not read")
    with pytest.raises(CheckpointError, match="pickle-based.*must be safetensors"):
        load_state(path)
    with pytest.raises(CheckpointError, match="pickle-based"):
        load_model(path, builders={"mlp": _model})


@pytest.mark.parametrize("zipfile_format", [True, False])
def test_torch_save_files_are_refused_without_unpickling(tmp_path, zipfile_format, no_unpickling):
    torch.save(_model().state_dict(), tmp_path / "real.pt", _use_new_zipfile_serialization=zipfile_format)
    save_model(tmp_path / "honest", _model(), kind="mlp", config={})
    shutil.copy(tmp_path / "real.pt", tmp_path / "disguised.safetensors")
    shutil.copy(tmp_path / "honest.json", tmp_path / "disguised.json")
    shutil.copy(tmp_path / "real.pt", tmp_path / "odd.weights")
    for path in ("real.pt", "real", "disguised.safetensors", "disguised", "odd.weights"):
        with pytest.raises(CheckpointError, match="pickle-based.*must be safetensors"):
            load_state(tmp_path / path)
    with pytest.raises(CheckpointError, match="pickle-based"):
        load_model(tmp_path / "disguised.json", builders={"mlp": _model})


def test_other_files_are_not_checkpoints(tmp_path):
    (tmp_path / "noise.safetensors").write_bytes(bytes(range(200)))
    (tmp_path / "noise.json").write_text("{}")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_state(tmp_path / "noise")
    with pytest.raises(CheckpointError, match="no checkpoint at .*absent.safetensors"):
        load_state(tmp_path / "absent")
    shutil.copy(save_model(tmp_path / "real", _model(), kind="mlp", config={}), tmp_path / "real.weights")
    with pytest.raises(CheckpointError, match="real.weights is not a checkpoint: expected <name>.safetensors"):
        load_state(tmp_path / "real.weights")
    save_model(tmp_path / "lonely", _model(), kind="mlp", config={})
    (tmp_path / "lonely.json").unlink()
    with pytest.raises(CheckpointError, match="has no lonely.json beside it"):
        load_state(tmp_path / "lonely")


def test_tampered_file_is_refused(tmp_path):
    path = save_model(tmp_path / "m", _model(), kind="mlp", config={})
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit of the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the sha256 recorded in m.json"):
        load_state(path)


def test_mismatched_checkpoint_lists_keys_and_shapes(tmp_path):
    source = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2), nn.Linear(2, 2))
    target = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    target.add_module("extra", nn.Linear(2, 3))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    save_model(tmp_path / "m", source, kind="mlp", config={})
    state, _ = load_state(tmp_path / "m")
    with pytest.raises(CheckpointError) as caught:
        load_into(target, state)
    message = str(caught.value)
    assert "2 missing, 2 unexpected, 3 of a different shape" in message
    assert "missing keys (in the model, not in the checkpoint): extra.weight, extra.bias" in message
    assert "unexpected keys (in the checkpoint, not in the model): 3.bias, 3.weight" in message
    assert "(0.weight, expected (8, 4), found (6, 4))" in message
    assert "(2.weight, expected (2, 8), found (2, 6))" in message
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_checkpoints_are_data_never_code(lab):
    models, marker = lab / "models", lab / "UNPICKLED"
    pickle.loads((models / "evil.pt").read_bytes())  # the payload is live: unpickling it creates the marker ...
    assert marker.exists()
    marker.unlink()
    for path in ("evil.pt", "disguised.safetensors", "disguised.json", "disguised"):
        with pytest.raises(CheckpointError, match="pickle-based"):
            load_s2lab_model(models / path)
    assert not marker.exists()  # ... and s2lab never unpickled it
    with pytest.raises(CheckpointError, match=r"does not match the sha256 recorded in tampered\.json"):
        load_s2lab_model(models / "tampered")
    with pytest.raises(CheckpointError) as caught:
        load_s2lab_model(models / "wide")
    message = str(caught.value)
    assert "checkpoint does not fit S2MAE: 0 missing, 0 unexpected" in message
    assert re.search(r"\(embed\.weight, expected \(\d+, 48\), found \(\d+, 32\)\)", message)
    with pytest.raises(CheckpointError, match=r"models is a folder; expected a checkpoint file"):
        load_s2lab_model(models)


def _trained(seed: int, steps: int):
    model = _model(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5**i)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(5, 4, generator=generator)).square().mean().backward()
        optimizer.step()
        scheduler.step()
    return model, optimizer, scheduler


def test_training_state_round_trip_is_exact(tmp_path, no_unpickling):
    model, optimizer, scheduler = _trained(seed=0, steps=3)
    json_path = save_training_state(
        tmp_path, model=model, optimizer=optimizer, scheduler=scheduler, step=3,
        config={"steps": 10}, model_config={"width": 4}, losses=[3.0, 2.0, 1.0],
    )  # fmt: skip
    assert json_path == tmp_path / "last.json"
    fresh, fresh_optimizer, fresh_scheduler = _trained(seed=5, steps=1)
    record = load_training_state(tmp_path, model=fresh, optimizer=fresh_optimizer, scheduler=fresh_scheduler)
    assert record["step"] == 3 and record["losses"] == [3.0, 2.0, 1.0] and record["model_config"] == {"width": 4}
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), model.parameters()))
    want, got = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert got["param_groups"] == want["param_groups"]
    assert got["param_groups"][0]["betas"] == (0.9, 0.95)
    for index, slots in want["state"].items():
        for name, value in slots.items():
            assert torch.equal(got["state"][index][name], value), (index, name)
    assert fresh_scheduler.state_dict() == scheduler.state_dict()


def test_training_state_survives_a_stop_between_its_two_files(tmp_path):
    model, optimizer, scheduler = _trained(seed=0, steps=2)
    kwargs = {"optimizer": optimizer, "scheduler": scheduler, "config": {}, "model_config": None}
    save_training_state(tmp_path, model=model, step=2, **kwargs)
    older_json = (tmp_path / "last.json").read_bytes()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    save_training_state(tmp_path, model=model, step=4, **kwargs)
    (tmp_path / "last.json").write_bytes(older_json)  # as if killed after the tensors' rename, before the JSON's
    leftover = tmp_path / ".last.safetensors.x1y2.tmp"  # as if killed while writing
    leftover.write_bytes(b"partial")
    fresh = _model(seed=9)
    with pytest.warns(UserWarning, match="earlier checkpoint.*step 4"):
        record = load_training_state(tmp_path, model=fresh)
    assert record["step"] == 4
    assert torch.equal(fresh[0].weight, model[0].weight)
    save_training_state(tmp_path, model=model, step=6, **kwargs)
    assert not leftover.exists()
    assert load_training_state(tmp_path, model=fresh)["step"] == 6


def test_training_state_tampered_or_absent(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path} holds no training state"):
        load_training_state(tmp_path, model=_model())
    model, optimizer, scheduler = _trained(seed=0, steps=2)
    save_training_state(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler, step=2, config={},
                        model_config=None)  # fmt: skip
    path = tmp_path / "last.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the sha256 recorded in last.json"):
        load_training_state(tmp_path, model=_model())
