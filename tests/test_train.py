"""s2lab.train: one loop, exact repeats and resumes, clear stops, torchrun, and surviving a SIGKILL."""

import importlib.util
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from s2lab.checkpoints import load_model
from s2lab.train import TrainConfig, TrainingError, fit, learning_rate, step_seeds

WORKER = Path(__file__).with_name("_fit_worker.py")
_spec = importlib.util.spec_from_file_location("_fit_worker", WORKER)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


class _Stop(Exception):
    """Raised by a callback to interrupt a run."""


def _config(**overrides) -> TrainConfig:
    """The settings _fit_worker.py uses."""
    return TrainConfig(**{"steps": 10, "lr": 1e-2, "warmup_steps": 2, "progress": False, "device": "cpu", **overrides})


def _fit(config: TrainConfig, model=None, **kwargs):
    model = worker.make_model() if model is None else model
    return model, fit(model, loss_fn=worker.loss_fn, batch_fn=worker.batch_fn, config=config, **kwargs)


def _equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_seeded_runs_repeat_exactly():
    first, a = _fit(_config())
    second, b = _fit(_config())
    assert a.losses == b.losses and len(a.losses) == 10
    assert _equal(first, second)
    other, c = _fit(_config(seed=1))
    assert c.losses != a.losses and not _equal(first, other)
    assert a.steps_done == 10 and a.start_step == 0 and a.out_dir is None
    assert a.samples_per_second > 0 and a.seconds > 0


def test_training_lowers_the_loss():
    _, result = _fit(_config(steps=40, warmup_steps=5))
    assert sum(result.losses[-10:]) < 0.7 * sum(result.losses[:10])


def test_step_seeds_differ_by_seed_step_and_rank():
    seeds = {step_seeds(s, i, r) for s in range(3) for i in range(50) for r in range(4)}
    assert len(seeds) == 3 * 50 * 4
    assert step_seeds(0, 7, 1) == step_seeds(0, 7, 1)


def test_learning_rate_warms_up_then_decays_to_zero():
    config = _config(steps=100, warmup_steps=10, lr=1.0)
    rates = [learning_rate(i, config) for i in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0) == rates[10]
    assert all(a <= b for a, b in itertools.pairwise(rates[:10]))
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))
    assert 0 < rates[-1] < 1e-3 and learning_rate(100, config) == 0.0


def test_resume_equals_an_uninterrupted_run(tmp_path):
    whole, uninterrupted = _fit(_config(), out_dir=tmp_path / "whole")

    def stop_after_six(step, loss, model):
        if step == 5:
            raise _Stop

    with pytest.raises(_Stop):
        _fit(_config(checkpoint_every=3), out_dir=tmp_path / "split", callback=stop_after_six)
    saved = json.loads((tmp_path / "split" / "last.json").read_text())
    assert saved["step"] == 6 and len(saved["losses"]) == 6
    assert saved["optimizer"]["param_groups"][0]["lr"] == pytest.approx(learning_rate(6, _config()))
    assert not (tmp_path / "split" / "model.json").exists()

    resumed, rest = _fit(_config(checkpoint_every=3), model=worker.make_model(seed=7), out_dir=tmp_path / "split",
                         resume=True)  # fmt: skip
    assert rest.start_step == 6 and rest.steps_done == 10
    assert rest.losses == uninterrupted.losses
    assert _equal(resumed, whole)
    rebuilt, info = load_model(tmp_path / "split" / "model", builders={"Sequential": worker.make_model})
    assert _equal(rebuilt, whole) and info["meta"]["final_loss"] == uninterrupted.losses[-1]


def test_resume_needs_a_state_and_the_same_settings(tmp_path):
    with pytest.raises(TrainingError, match=f"nothing to resume: {tmp_path / 'new'} holds no training state"):
        _fit(_config(), out_dir=tmp_path / "new", resume=True)
    _fit(_config(steps=4, warmup_steps=0), out_dir=tmp_path / "run")
    with pytest.raises(TrainingError, match="already holds a training state; resume it"):
        _fit(_config(steps=4, warmup_steps=0), out_dir=tmp_path / "run")
    with pytest.raises(TrainingError, match="different settings .*lr: saved 0.01, now 0.02"):
        _fit(_config(steps=4, warmup_steps=0, lr=2e-2), out_dir=tmp_path / "run", resume=True)
    with pytest.raises(ValueError, match="needs the out_dir"):
        _fit(_config(), resume=True)


def test_non_finite_loss_stops_with_the_step_and_value(tmp_path):
    def poisoned(step, generator):
        batch = worker.batch_fn(step, generator)
        if step == 4:
            batch["x"][0, 0] = float("nan")
        return batch

    model = worker.make_model()
    with pytest.raises(TrainingError, match=r"loss is nan at step 4 \(of 10\)"):
        fit(model, loss_fn=worker.loss_fn, batch_fn=poisoned, config=_config(checkpoint_every=1), out_dir=tmp_path)
    assert json.loads((tmp_path / "last.json").read_text())["step"] == 4  # the last good state
    assert not (tmp_path / "model.json").exists()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_unwritable_out_dir_is_reported_before_step_0(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    calls = []

    def counting(step, generator):
        calls.append(step)
        return worker.batch_fn(step, generator)

    with pytest.raises(TrainingError, match=f"cannot write checkpoints to {blocker / 'run'}"):
        fit(worker.make_model(), loss_fn=worker.loss_fn, batch_fn=counting, config=_config(), out_dir=blocker / "run")
    assert calls == []


def test_callback_batches_and_loss_checks():
    seen = []
    _, result = _fit(_config(steps=3), callback=lambda step, loss, model: seen.append((step, loss)))
    assert seen == list(enumerate(result.losses))
    tupled = fit(
        worker.make_model(),
        loss_fn=lambda model, batch, g: worker.loss_fn(model, {"x": batch[0], "y": batch[1]}, g),
        batch_fn=lambda step, g: tuple(worker.batch_fn(step, g).values()),
        config=_config(steps=3),
    )
    assert tupled.losses == result.losses
    with pytest.raises(TrainingError, match="scalar tensor"):
        fit(worker.make_model(), loss_fn=lambda m, b, g: m(b["x"]), batch_fn=worker.batch_fn, config=_config())
    with pytest.raises(ValueError, match="warmup_steps must be an integer in \\[0, steps=5\\)"):
        TrainConfig(steps=5, warmup_steps=5)


@pytest.fixture
def spawn_worker():
    """Start tests/_fit_worker.py in a subprocess; any still running at the end of the test is killed."""
    started = []

    def spawn(*args: str, launcher: tuple[str, ...] = ()) -> subprocess.Popen:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, *launcher, str(WORKER), *args]
        started.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        return started[-1]

    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_torchrun_two_ranks_end_identical(tmp_path, spawn_worker):
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    proc = spawn_worker(str(tmp_path / "out"), str(tmp_path / "digests"), "--steps", "6", "--checkpoint-every", "2",
                       launcher=launcher)  # fmt: skip
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    rank0, rank1 = (json.loads((tmp_path / "digests" / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["params"] == rank1["params"]
    assert rank0["losses"] == rank1["losses"] and len(rank0["losses"]) == 6
    assert rank0["batch"] != rank1["batch"]  # each rank drew its own data
    assert json.loads((tmp_path / "out" / "last.json").read_text())["step"] == 6


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_weights(tmp_path, spawn_worker):
    out = tmp_path / "killed"
    proc = spawn_worker(str(out), str(tmp_path / "digests"), "--steps", "12", "--checkpoint-every", "2",
                       "--sleep", "0.15")  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / "last.json").exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "model.json").exists()  # killed before the end

    config = _config(steps=12, checkpoint_every=2)
    resumed, rest = _fit(config, out_dir=out, resume=True)
    assert 2 <= rest.start_step < 12
    whole, uninterrupted = _fit(config)
    assert _equal(resumed, whole)
    assert rest.losses == uninterrupted.losses


@pytest.mark.parametrize("amp", [True, False])
def test_fit_steps_in_bf16_where_the_device_supports_it_unless_amp_is_off(amp):
    from s2lab.device import training_bf16

    seen = []

    def loss_fn(model, batch, generator):
        seen.append(torch.is_autocast_enabled("cpu"))
        return worker.loss_fn(model, batch, generator)

    fit(worker.make_model(), loss_fn=loss_fn, batch_fn=worker.batch_fn, config=_config(steps=3, amp=amp))
    assert seen == [amp and training_bf16("cpu")] * 3
