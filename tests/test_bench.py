"""s2lab.bench and its reference_mae: every part's code path on tiny sizes, the JSON and the results table.

Speed is not tested here (that is what the benchmarks measure); the mechanics are: child processes measured, both
models trained side by side, the tables and files written with the machine they ran on.
"""

import json
import math
import sys

import nbformat
import numpy as np
import pytest
import torch

from s2lab import bench
from s2lab.bench import report
from s2lab.bench.measure import LoadGuard
from s2lab.bench.parts import reference_for
from s2lab.cli import main
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.models import build, load_model
from s2lab.tokenize import patchify
from _tiny import TINY


def test_reference_mae_is_the_mae_recipe_on_s2mae_tokens():
    s2mae = build("s2mae", TINY)
    ref = reference_for(s2mae)
    x = torch.as_tensor(open_embedded_scene().values[None, :, :32, :32])  # (1, 10, 32, 32) real reflectance
    assert torch.equal(ref.patchify(x), patchify(x, 8, 2))  # the same tokens, in the same order
    L = 5 * 4 * 4  # G = 10 / 2 groups of 4 x 4 positions
    assert ref.patch_embed.num_patches == L == s2mae.tokenizer.G * 16
    loss, pred, mask = ref(x.expand(3, -1, -1, -1), mask_ratio=0.75)
    assert loss.ndim == 0 and torch.isfinite(loss) and pred.shape == (3, L, 2 * 8 * 8)
    assert mask.shape == (3, L) and (mask.sum(dim=1) == L - int(L * 0.25)).all()  # int(L * (1 - r)) kept
    assert ref.pos_embed.shape == (1, L + 1, 32) and not ref.pos_embed.requires_grad  # class token, fixed sin-cos
    attention = ref.blocks[0].attn
    q = torch.randn(2, 5, 32)
    qkv = attention.qkv(q).reshape(2, 5, 3, 2, 16).permute(2, 0, 3, 1, 4)
    explicit = torch.softmax(qkv[0] @ qkv[1].transpose(-2, -1) * 16**-0.5, dim=-1) @ qkv[2]
    torch.testing.assert_close(attention(q), attention.proj(explicit.transpose(1, 2).reshape(2, 5, 32)))


def test_train_times_both_models_side_by_side():
    figures = bench.train(config=TINY, batch_size=2, steps=1, warmup=1, rounds=2)
    assert figures["s2mae_samples_per_s"] > 0 and figures["reference_samples_per_s"] > 0
    assert len(figures["rounds_ratio"]) == 2 and figures["ratio"] == pytest.approx(np.median(figures["rounds_ratio"]),
                                                                                   abs=1e-3)
    assert figures["tokens"] == 80 and figures["kept_tokens"] == 20 and figures["config"]["embed_dim"] == 32
    assert figures["meets_goal"] == (figures["ratio"] >= bench.GOALS["train_ratio"])


def test_run_measured_reports_the_childs_own_peak_memory():
    grow = "import numpy as np; a = np.ones(40 * 2**20); print(a.sum())"  # 320 MB of float64, touched
    m = bench.run_measured([sys.executable, "-c", grow])
    assert m["returncode"] == 0 and m["stdout"].strip() == str(float(40 * 2**20))
    assert 0.3 < m["peak_gib"] < 2.0 and m["wall_s"] >= 0 and m["cpu_s"] >= 0
    small = bench.run_measured([sys.executable, "-c", "pass"])
    assert small["peak_gib"] < m["peak_gib"] - 0.2  # the child's own peak, not the largest child so far
    failed = bench.run_measured([sys.executable, "-c", "import sys; sys.exit('bad input')"])
    assert failed["returncode"] == 1 and "bad input" in failed["stderr"]
    killed = bench.run_measured([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert killed["returncode"] == -9 and killed["wall_s"] < 10


def test_scene_runs_both_commands_on_a_small_raster(tmp_path):
    crop = open_embedded_scene().isel(y=slice(900, 996), x=slice(900, 996))  # 96 x 96 px, 10 bands
    path = write_geotiff(crop, tmp_path / "crop.tif")
    figures = bench.scene(input=str(path), device="cpu")
    for name in ("reconstruct", "detect_change"):
        entry = figures[name]
        assert entry["returncode"] == 0, entry["stderr"]
        assert entry["report"]["shape"][-2:] == [96, 96] and entry["report"]["device"] == "cpu"
        assert 0.1 < entry["peak_gib"] < 3 and entry["wall_s"] >= entry["report"]["seconds"] > 0
        assert "crop.tif" in entry["command"] and entry["meets_goal"] == (entry["wall_s"] <= 60)
    side = load_model("s2mae-s2-small")[0].config.img_size  # the shipped model's windows
    assert figures["reconstruct"]["report"]["windows"] == math.ceil(96 / side) ** 2  # padded to whole windows


def test_full_tile_is_made_from_the_scene_and_reconstructed_in_a_child(tmp_path):
    from s2lab.bench.full_tile import make_full_tile
    from s2lab.data.raster import open_raster

    tile = open_raster(make_full_tile(tmp_path / "tile.tif", size=2100))  # larger than the scene: mirrored
    scene = open_embedded_scene()
    assert tile.shape == (10, 2100, 2100) and tile.rio.crs == scene.rio.crs
    assert tile.rio.transform() == scene.rio.transform()
    corner = tile.isel(y=slice(0, 50), x=slice(0, 50)).values
    np.testing.assert_allclose(corner, scene.values[:, :50, :50], atol=0.5e-4)  # DN = reflectance x 10000
    mirrored = tile.isel(y=slice(1947, 1957), x=slice(0, 50)).values  # rows past the bottom edge, reflected
    np.testing.assert_allclose(mirrored, scene.values[:, 1945:1935:-1, :50], atol=0.5e-4)
    figures = bench.full_tile(size=200, device="cpu")
    e = figures["reconstruct"]
    assert e["returncode"] == 0, e["stderr"]
    assert e["report"]["shape"] == [10, 200, 200] and e["report"]["windows"] == 49  # 200 -> 224 px: 7 x 7 windows of 32 px
    assert 0 < e["peak_gib"] < 3 and e["meets_goal"] and e["output_gib"] > 0
    assert "Model MSE" in "\n".join(report._full_tile_md(figures))


def test_scaling_table_covers_sizes_and_band_counts():
    figures = bench.scaling(sizes=(32, 64), bands=(4, 10), size_for_bands=32, config=TINY, repeats=1)
    rows = {(r["size_px"], r["bands"]): r for r in figures["rows"]}
    assert set(rows) == {(32, 10), (64, 10), (32, 4)}
    assert rows[(64, 10)]["windows"] == 4 and rows[(32, 10)]["windows"] == 1
    assert rows[(32, 4)]["tokens_per_window"] == 2 * 16 and rows[(32, 10)]["tokens_per_window"] == 5 * 16
    for r in rows.values():
        assert r["seconds"] > 0 and r["s_per_mpx"] == pytest.approx(r["seconds"] / (r["size_px"] ** 2 / 1e6), rel=1e-2)


def test_notebooks_are_executed_and_measured(tmp_path):
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1")]), good)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('no')")]), bad)
    figures = bench.notebooks(paths=[good, bad], timeout=300)
    rows = {r["notebook"]: r for r in figures["rows"]}
    assert rows["good.ipynb"]["ok"] and not rows["bad.ipynb"]["ok"]
    assert rows["good.ipynb"]["peak_gib"] > 0 and rows["good.ipynb"]["fits_binder"]


def test_gpu_part_runs_its_code_path_on_the_cpu():
    figures = bench.gpu(device="cpu", batch_size=2, steps=1, warmup=0, rounds=1, config=TINY,
                        finetune_batch=2, change_size=32)
    assert figures["pretrain_fp32"]["flops_per_step"] > 0 and figures["pretrain_bf16"]["step_ms"] > 0
    assert figures["peak_bf16_tflops"] is None and "mfu" not in figures["pretrain_fp32"]  # no peak known for a CPU
    assert figures["finetune_change"]["speedup"] > 0 and figures["change_map"]["speedup"] > 0
    assert figures["train_vs_reference_bf16"]["bf16"] is False  # autocast is CUDA only
    if not torch.cuda.is_available():
        assert bench.gpu() == {"skipped": "no CUDA device"}


def test_run_writes_each_part_and_a_table_with_the_machine(tmp_path):
    runners = {
        "train": lambda: bench.train(config=TINY, batch_size=2, steps=1, warmup=0, rounds=1),
        "scaling": lambda: bench.scaling(sizes=(32,), bands=(), config=TINY, repeats=1),
        "gpu": lambda: {"skipped": "no CUDA device"},
    }
    results = bench.run(["train", "scaling", "gpu"], out_dir=tmp_path, runners=runners)
    assert set(results["parts"]) == {"train", "scaling", "gpu"}
    for part in ("train", "scaling", "gpu"):
        record = json.loads((tmp_path / "results" / f"{part}.json").read_text())
        assert record["part"] == part and record["figures"] == results["parts"][part]
        assert record["machine"]["torch"] == torch.__version__ and record["machine"]["cpu_count"] >= 1
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Training throughput against MAE on timm 0.3.2's written-out attention" in md
    assert "| S2MAE (s2lab) |" in md
    assert "## Cost against image size and band count" in md and "Skipped: no CUDA device." in md
    assert f"torch {torch.__version__}" in md and "## Whole scene" not in md
    bench.run(["gpu"], out_dir=tmp_path, runners={"gpu": lambda: {"skipped": "again"}})  # one part re-run alone
    md = (tmp_path / "RESULTS.md").read_text()
    assert "Skipped: again." in md and "| S2MAE (s2lab) |" in md  # the other parts' files still in the table


def test_parts_are_parsed_and_checked():
    assert bench.parse_parts("scene, train") == ("scene", "train")
    assert bench.parse_parts(None) == bench.DEFAULT_PARTS and "notebooks" not in bench.DEFAULT_PARTS
    assert bench.parse_parts(None, notebooks=True)[-1] == "notebooks"
    with pytest.raises(ValueError, match="unknown benchmark parts bogus"):
        bench.parse_parts("scene,bogus")


def test_cli_bench_is_a_thin_call(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "gpu", lambda **kwargs: {"skipped": "stand-in", **kwargs})  # fast on a GPU machine too
    assert main(["bench", "--only", "bogus", "--out", str(tmp_path)]) == 1
    assert "unknown benchmark parts bogus" in capsys.readouterr().err
    assert main(["bench", "--only", "gpu", "--out", str(tmp_path), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parts"] == {"gpu": {"skipped": "stand-in", "steps": 10}} and report["machine"]["cpu_count"] >= 1
    assert (tmp_path / "RESULTS.md").is_file() and (tmp_path / "results" / "gpu.json").is_file()


def test_app_latency_times_a_first_visit_and_a_shared_step():
    pytest.importorskip("panel", reason="the app part needs panel (the lab extra)")
    from s2lab.bench.app_latency import default_view_latency

    figures = default_view_latency(changes=4, warmup=1)
    for way in ("computed", "shared"):
        assert figures[way]["n"] == 4 and 0 < figures[way]["p50_ms"] <= figures[way]["max_ms"]
    assert figures["shared"]["p50_ms"] < figures["computed"]["p50_ms"]  # a look-up, not two models
    assert figures["meets_goal"] == (figures["shared"]["p95_ms"] <= figures["goal_p95_ms"])


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
