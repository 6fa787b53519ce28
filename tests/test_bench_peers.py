"""s2lab.bench.peers: the peer part skips and says why, and keeps the figures of the last measured run.

The real peers run only where timm and their files are (the environment of ``scripts/peer_env.sh``, with
``S2LAB_PEERS_DIR`` or the default folder); there the last test loads both and takes one training step of each.
"""

import importlib
import importlib.util
import json

import pytest

from s2lab import bench
from s2lab.bench import peer_code

peer_part = importlib.import_module("s2lab.bench.peers")  # the module: s2lab.bench.peers is also the part's function


def test_the_part_is_skipped_without_the_peer_files_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(peer_code.PEERS_DIR_ENV, str(tmp_path / "nowhere"))
    assert peer_code.peers_dir() == tmp_path / "nowhere"
    figures = peer_part.peers()
    assert set(figures) == {"skipped"}
    if importlib.util.find_spec("timm") is not None:
        assert "nowhere" in figures["skipped"] and "S2LAB_PEERS_DIR" in figures["skipped"]
    out = tmp_path / "out"
    bench.run(["peers"], out_dir=out)
    assert "the peers part was skipped: " + figures["skipped"] in capsys.readouterr().err
    assert "Skipped: " in (out / "RESULTS.md").read_text()


def test_a_skipped_run_keeps_the_figures_of_the_last_measured_run(tmp_path, capsys):
    bench.run(["peers"], out_dir=tmp_path, runners={"peers": lambda: {"rows": {}, "ratios": {}}})
    path = tmp_path / "results" / "peers.json"
    measured = path.read_text()
    bench.run(["peers"], out_dir=tmp_path, runners={"peers": lambda: {"skipped": "no timm here"}})
    assert path.read_text() == measured and "skipped: no timm here" in capsys.readouterr().err


@pytest.mark.skipif(peer_code.skip_reason() is not None, reason="the real peers are not here (scripts/peer_env.sh)")
def test_the_real_peers_load_patched_and_train_beside_s2lab():
    figures = peer_part.peers(batch_size=2, steps=1, warmup=1, rounds=1, max_others=1.0, max_wait=0.0,
                              size={"img_size": 16, "embed_dim": 32, "decoder_embed_dim": 32, "depth": 1,
                                    "decoder_depth": 1})
    json.dumps(figures)
    assert set(figures["rows"]) >= {"mae", "mae_p4", "satmae_peer", "s2lab_s2mae_2d", "s2lab_satmae"}
    assert figures["rows"]["mae"]["tokens"] == figures["rows"]["s2lab_s2mae_2d"]["tokens"] == 4
    assert figures["rows"]["satmae_peer"]["tokens"] == figures["rows"]["s2lab_satmae"]["tokens"] == 12
    assert all(r["samples_per_s"] > 0 for r in figures["rows"].values())
