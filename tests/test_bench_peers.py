"""s2lab.bench.peers: the peer part skips and says why, the patches check their targets, the load guard measures.

The real peers run only where timm and their files are (the environment of ``scripts/peer_env.sh``, with
``S2LAB_PEERS_DIR`` or the default folder); there the last test loads both and takes one training step of each.
"""

import importlib
import importlib.util
import json

import pytest
import torch

from s2lab import bench
from s2lab.bench.peers import PATCHES, PEER_FILES, LoadGuard, PeerPatchError, patched_source

peer_part = importlib.import_module("s2lab.bench.peers")  # the module: s2lab.bench.peers is also the part's function


def _fake_peers(folder, *, repeat: str | None = None):
    """A peers folder whose files hold every patch target exactly as often as expected (``repeat``: one twice)."""
    for files in PEER_FILES.values():
        for name in files:
            text = "".join(p.old * p.count + "\n" for p in PATCHES if p.file == name)
            if repeat is not None and repeat in text:
                text += repeat + "\n"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text("# a stand-in\n" + text)
    return folder


def test_patches_apply_when_every_target_occurs_as_expected(tmp_path):
    folder = _fake_peers(tmp_path)
    for patch in PATCHES:
        text = patched_source(folder, patch.file)
        assert patch.old not in text and patch.new in text
    assert all(p.why for p in PATCHES)  # every patch says why it is needed


@pytest.mark.parametrize("index", range(len(PATCHES)))
def test_a_target_found_too_often_or_not_at_all_stops_with_a_clear_message(tmp_path, index):
    patch = PATCHES[index]
    folder = _fake_peers(tmp_path, repeat=patch.old)
    with pytest.raises(PeerPatchError, match=rf"expected {patch.count} occurrence\(s\).*found {patch.count + 1}"):
        patched_source(folder, patch.file)
    (folder / patch.file).write_text("# changed upstream\n")
    with pytest.raises(PeerPatchError, match="found 0"):
        patched_source(folder, patch.file)


def test_the_part_is_skipped_without_the_peer_files_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(peer_part.PEERS_DIR_ENV, str(tmp_path / "nowhere"))
    assert peer_part.peers_dir() == tmp_path / "nowhere"
    figures = peer_part.peers()
    assert set(figures) == {"skipped"}
    if importlib.util.find_spec("timm") is not None:
        assert "nowhere" in figures["skipped"] and "S2LAB_PEERS_DIR" in figures["skipped"]
    out = tmp_path / "out"
    bench.run(["peers"], out_dir=out)
    assert "the peers part was skipped: " + figures["skipped"] in capsys.readouterr().err
    assert "Skipped: " in (out / "RESULTS.md").read_text()


def test_without_timm_the_part_names_the_environment_to_make(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a))
    reason = peer_part.skip_reason(_fake_peers(tmp_path))
    assert "timm is not installed" in reason and "scripts/peer_env.sh" in reason


def test_a_skipped_run_keeps_the_figures_of_the_last_measured_run(tmp_path, capsys):
    bench.run(["peers"], out_dir=tmp_path, runners={"peers": lambda: {"rows": {}, "ratios": {}}})
    path = tmp_path / "results" / "peers.json"
    measured = path.read_text()
    bench.run(["peers"], out_dir=tmp_path, runners={"peers": lambda: {"skipped": "no timm here"}})
    assert path.read_text() == measured and "skipped: no timm here" in capsys.readouterr().err


def test_the_load_guard_counts_other_processes_not_this_one():
    guard = LoadGuard()
    guard.start()
    a = torch.randn(300, 300)
    for _ in range(200):  # busy in this process only
        a = (a @ a).tanh()
    others = guard.others()
    if others is None:
        pytest.skip("no /proc/stat on this system")
    assert 0.0 <= others <= 1.0
    assert guard.wait_quiet(cores=guard.cpus, max_wait=5.0, probe=0.1) < 1.0  # any load is quiet enough: no wait
    assert guard.wait_quiet(cores=-1.0, max_wait=0.3, probe=0.1) < 1.0  # never quiet: gives up after max_wait


@pytest.mark.skipif(peer_part.skip_reason() is not None, reason="the real peers are not here (scripts/peer_env.sh)")
def test_the_real_peers_load_patched_and_train_beside_s2lab():
    figures = peer_part.peers(batch_size=2, steps=1, warmup=1, rounds=1, max_others=1.0, max_wait=0.0,
                              size={"img_size": 16, "embed_dim": 32, "decoder_embed_dim": 32, "depth": 1,
                                    "decoder_depth": 1})
    json.dumps(figures)
    assert set(figures["rows"]) >= {"mae", "mae_p4", "satmae_peer", "s2lab_s2mae_2d", "s2lab_satmae"}
    assert figures["rows"]["mae"]["tokens"] == figures["rows"]["s2lab_s2mae_2d"]["tokens"] == 4
    assert figures["rows"]["satmae_peer"]["tokens"] == figures["rows"]["s2lab_satmae"]["tokens"] == 12
    assert all(r["samples_per_s"] > 0 for r in figures["rows"].values())
