"""Training faults through the command users run: ``s2lab pretrain`` with a real S2MAE on a crop of the real scene.

test_train.py proves the loop's contract on a small MLP (resume equals an uninterrupted run, SIGKILL of a worker, a
NaN loss, an unwritable folder). Here the same faults hit the whole command: the model, the optimizer, the masking
and the data sampling of pretraining, checkpoints in safetensors, and the command's error line. Everything runs
with one torch thread (the subprocess too), so that the killed run and the runs it is compared with compute alike
and fast on a busy machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from s2lab.checkpoints import load_state
from s2lab.cli import finetune as finetune_command
from s2lab.cli import main
from s2lab.cli import pretrain as pretrain_command
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.train import TrainConfig, TrainingError, check_out_dir, fit
from _tiny import TINY_FLAGS

STEPS, EVERY = 60, 5


@pytest.fixture(scope="module")
def crop(tmp_path_factory) -> Path:
    """64 x 64 px of the real scene, 10 bands, as a GeoTIFF: the pretraining data."""
    path = tmp_path_factory.mktemp("resume") / "crop.tif"
    write_geotiff(open_embedded_scene().isel(y=slice(1200, 1264), x=slice(700, 764)), path)
    return path


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pretrain(crop: Path, out: Path, *more: str) -> list[str]:
    return ["pretrain", "--data", str(crop), "--img-size", "32", "--batch-size", "2", "--steps", str(STEPS),
            "--checkpoint-every", str(EVERY), "--seed", "1", *TINY_FLAGS, "--out", str(out), "--quiet", "--json", *more]


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder nothing can be written to: /sys for root (permission bits do not stop root), else a 0o500 one."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("s2lab: error: ") and captured.out == "", captured
    return lines[0]


def test_sigkilled_pretraining_resumes_to_the_weights_of_an_uninterrupted_run(crop, tmp_path, one_thread, capsys):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "s2lab", *pretrain(crop, killed)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (killed / "last.json").exists():  # the first checkpoint: kill it now, mid-run
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "model.json").exists(), "the run ended before it was killed"
    saved = json.loads((killed / "last.json").read_text())
    assert 0 < saved["step"] < STEPS and saved["step"] % EVERY == 0

    assert main(pretrain(crop, killed, "--resume")) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert main(pretrain(crop, whole)) == 0
    uninterrupted = json.loads(capsys.readouterr().out)
    assert resumed["start_step"] >= saved["step"] and uninterrupted["start_step"] == 0
    weights, info = load_state(killed / "model")
    expected, expected_info = load_state(whole / "model")
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[k], expected[k]) for k in expected)  # bit for bit
    assert info["meta"]["final_loss"] == expected_info["meta"]["final_loss"]
    curves = [json.loads((run / "last.json").read_text())["losses"] for run in (killed, whole)]
    assert curves[0] == curves[1] and len(curves[0]) == STEPS

    assert main(pretrain(crop, killed, "--resume", "--lr", "1e-3")) == 1  # a resume must keep the run's settings
    assert "cannot resume with different settings (lr: saved 0.00015, now 0.001)" in one_error_line(capsys)


def test_nan_loss_stops_the_run_naming_the_step(crop, tmp_path, one_thread, capsys):
    run = tmp_path / "run"
    assert main(pretrain(crop, run, "--lr", "1e30", "--checkpoint-every", "1")) == 1  # weights blow up at step 0
    line = one_error_line(capsys)
    found = re.search(r"loss is (nan|inf) at step (\d+) \(of 60\); stopped without saving this state", line)
    assert found, line
    assert json.loads((run / "last.json").read_text())["step"] == int(found[2])  # the last good state, kept
    assert not (run / "model.json").exists()
    never = tmp_path / "never"
    assert main(pretrain(crop, never, "--lr", "1e30", "--checkpoint-every", "0")) == 1
    assert "loss is" in one_error_line(capsys) and not never.exists()  # no checkpoint yet: no folder left


def test_unwritable_checkpoint_folder_is_reported_before_training(crop, tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("data was read or training started")

    for command, name in ((pretrain_command, "pretraining_images"), (pretrain_command, "fit"),
                          (finetune_command, "_encoder"), (finetune_command, "fit")):
        monkeypatch.setattr(command, name, never)
    blocked = unwritable_folder(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "last.safetensors").write_bytes(b"")
    cases = [
        (pretrain(crop, blocked / "run"), rf"cannot write checkpoints to {blocked}/run: {blocked} is not writable"),
        (["finetune", "--task", "classify", "--out", str(blocked / "run")], r"cannot write checkpoints to .*run"),
        (pretrain(crop, tmp_path / "a_file" / "run"), r"a_file/run: .*a_file is a file; expected a folder"),
        (pretrain(crop, tmp_path / "fresh", "--resume"), r"nothing to resume: .*fresh holds no training state"),
        (pretrain(crop, tmp_path / "done"), r"done already holds a training state; resume it"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        line = one_error_line(capsys)
        assert re.search(message, line), line
    made = {"a_file", "done"} | ({blocked.name} if blocked.parent == tmp_path else set())
    assert {p.name for p in tmp_path.iterdir()} == made  # nothing created by the refused runs


def test_fit_checks_the_folder_first_and_makes_it_only_to_write(tmp_path):
    blocked = unwritable_folder(tmp_path)
    calls = []

    def batch_fn(step, generator):
        calls.append(step)
        return torch.randn(2, 3, generator=generator)

    def nan_loss(model, batch, generator):
        return model(batch).sum() * float("nan")

    config = TrainConfig(steps=3, progress=False, device="cpu")
    with pytest.raises(TrainingError, match=rf"cannot write checkpoints to {blocked}/run: .*not writable"):
        fit(torch.nn.Linear(3, 1), loss_fn=nan_loss, batch_fn=batch_fn, config=config, out_dir=blocked / "run")
    assert calls == []  # refused before step 0
    with pytest.raises(TrainingError, match="loss is nan at step 0"):
        fit(torch.nn.Linear(3, 1), loss_fn=nan_loss, batch_fn=batch_fn, config=config, out_dir=tmp_path / "new" / "run")
    assert not (tmp_path / "new").exists()  # failed before its first checkpoint: nothing left behind
    assert check_out_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run" and not (tmp_path / "new").exists()
