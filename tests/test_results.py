"""scripts/results.py: its functions on tiny inputs (the full tables take minutes and are not run here)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from s2lab.baselines import FILL_NAMES, gaussian_fill
from s2lab.data.embedded import open_embedded_scene
from s2lab.models import S2MAE
from s2lab.reconstruct import reconstruct_tiles
from s2lab.scaling import scale_unit

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "results.py"
spec = importlib.util.spec_from_file_location("results", SCRIPT)
results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results)


@pytest.fixture(scope="module")
def crop():
    """A real (10, 136, 200) crop of the embedded scene's held-out half."""
    return open_embedded_scene().isel(y=slice(1200, 1336), x=slice(400, 600))


def test_windows_are_whole_non_overlapping_and_in_order(crop):
    x = results.windows(crop, 64)
    assert x.shape == (2 * 3, 10, 64, 64)
    image = torch.as_tensor(crop.values)
    assert torch.equal(x[4], image[:, 64:128, 64:128])  # row 1, column 1
    with pytest.raises(ValueError, match="no whole 64 x 64 window"):
        results.windows(image[:, :32], 64)


def test_flat_floor_is_each_cells_band_mean(crop):
    x01 = scale_unit(results.windows(crop, 64)[:2])[0]
    flat = results.flat_floor(x01, 8)
    assert flat.shape == x01.shape
    assert torch.allclose(flat[1, 3, 8:16, 16:24], x01[1, 3, 8:16, 16:24].mean().expand(8, 8), atol=1e-6)
    # the cell mean is the best constant: no other flat fill of a cell has a smaller squared error
    cell = x01[0, 0, :8, :8]
    assert ((cell - flat[0, 0, 0, 0]) ** 2).sum() <= ((cell - cell.median()) ** 2).sum()


def test_pool_weights_by_counts():
    parts = [{"m": {"mse": 0.1, "sam_deg": 10.0, "values": 10, "pixels": 1}},
             {"m": {"mse": 0.4, "sam_deg": 40.0, "values": 30, "pixels": 3}}]
    pooled = results.pool(parts)["m"]
    assert pooled["mse"] == pytest.approx((0.1 * 10 + 0.4 * 30) / 40)
    assert pooled["sam_deg"] == pytest.approx(32.5) and pooled["values"] == 40
    assert pooled["psnr"] == pytest.approx(-10 * torch.log10(torch.tensor(pooled["mse"])).item())


def test_score_windows_scores_model_baselines_and_floor_on_the_same_masks(crop):
    torch.manual_seed(0)
    model = S2MAE(img_size=64, in_chans=10, embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=32,
                  decoder_depth=1).eval()
    x = results.windows(crop, 64)
    scores = results.score_windows(model, x, ratio=0.75, strategy="random", batch_size=4)
    fills = [*FILL_NAMES, "cross_band"]
    assert set(scores) == {"model", *fills, "flat_floor"} and results.fill_names(scores) == fills
    counts = {(s["values"], s["pixels"]) for s in scores.values()}
    assert len(counts) == 1  # every method scored on the same removed values
    values, _ = counts.pop()
    assert values == pytest.approx(0.75 * x.numel(), rel=0.02)
    # the floor (true cell means) beats every flat token fill, which only sees the visible tokens
    assert all(scores["flat_floor"]["mse"] < scores[b]["mse"] for b in ("band_mean", "nearest", "neighbourhood"))
    squared, removed = 0.0, 0
    for k, start in enumerate(range(0, len(x), 4)):  # by hand, in reflectance: batch k masked with seed SEED + k
        batch = x[start:start + 4]
        mask = reconstruct_tiles(model, batch, mask_ratio=0.75, seed=results.SEED + k)["mask"]
        squared += float(((gaussian_fill(batch, mask, 4.0) - batch)[mask.bool()] ** 2).sum())
        removed += int(mask.sum())
    assert scores["gaussian_4px"]["mse"] == pytest.approx(squared / removed, rel=1e-4)
    again = results.score_windows(model, x, ratio=0.75, strategy="random", batch_size=4)
    assert again["model"]["mse"] == scores["model"]["mse"]  # fixed seeds
    summary = results.summarise(scores)
    best = min(scores[b]["mse"] for b in fills)
    assert summary["model_to_best"] == pytest.approx(scores["model"]["mse"] / best)


def test_coverage_splits_the_same_removed_values_that_score_windows_scores(crop):
    torch.manual_seed(0)
    model = S2MAE(img_size=64, in_chans=10, embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=32,
                  decoder_depth=1).eval()
    x = results.windows(crop, 64)
    for ratio in (0.5, 0.9):
        split = results.coverage(model, x, ratio=ratio, strategy="random", batch_size=4)
        whole = results.score_windows(model, x, ratio=ratio, strategy="random", batch_size=4)
        covered, uncovered = split["covered"], split["uncovered"]
        assert covered["share"] + uncovered["share"] == pytest.approx(1.0)
        for method, name in (("model", "model"), ("gaussian", "gaussian_4px"), ("flat_floor", "flat_floor")):
            pooled = covered["share"] * covered[method] + uncovered["share"] * uncovered[method]
            assert pooled == pytest.approx(whole[name]["mse"], rel=1e-4)  # the two parts make up the whole
    # with 5 band groups, a pixel keeps some group at 0.5 far more often than at 0.9 (1 - r^4 of the time)
    low = results.coverage(model, x, ratio=0.5, strategy="random", batch_size=4)["covered"]["share"]
    assert low > 0.85 and split["covered"]["share"] < 0.5


def test_ridge_probe_separates_separable_classes_and_not_noise():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    centres = torch.randn(3, 8, generator=g) * 5
    x = centres[y] + torch.randn(60, 8, generator=g)
    assert results.ridge_probe(x[:45], y[:45], x[45:], y[45:], 3) == 1.0
    noise = torch.randn(300, 8, generator=g)
    labels = torch.randint(0, 3, (300,), generator=g)
    assert results.ridge_probe(noise[:200], labels[:200], noise[200:], labels[200:], 3) < 0.6


def test_replace_block_touches_only_the_block():
    text = f"# t\nbefore\n{results.BEGIN}\nold\n{results.END}\nafter\n"
    new = results.replace_block(text, "new figures")
    assert new == f"# t\nbefore\n{results.BEGIN}\nnew figures\n{results.END}\nafter\n"
    for broken in ("no markers", f"{results.END}\n{results.BEGIN}", f"{results.BEGIN}{results.BEGIN}{results.END}"):
        with pytest.raises(ValueError, match="expected one"):
            results.replace_block(broken, "x")


def test_render_and_readme_block_show_the_measured_numbers():
    scores = {m: {"mse": v, "psnr": 20.0, "sam_deg": 5.0, "values": 1, "pixels": 1}
              for m, v in {"model": 0.001, "band_mean": 0.005, "nearest": 0.004, "neighbourhood": 0.003,
                           "gaussian_2px": 0.0031, "gaussian_4px": 0.0032, "flat_floor": 0.0006}.items()}
    rows = [{"images": images, "windows": 2, "window": 32, "model": m, "strategy": "random", "ratio": 0.9,
             "scores": scores, **results.summarise(scores)}
            for images in ("embedded:eval", "oscd:b+c") for m in ("s2mae-s2-small", "satmae-s2-small")]
    pooled = {"precision": 0.1, "recall": 0.2, "f1": 0.123, "iou": 0.1}
    change = {"train_cities": ["a"], "eval_cities": ["b", "c"], "paper_f1": 53.28, "seeds": [0, 1, 2],
              "rows": {"CVA, threshold tuned on training cities": {"threshold": 0.5, "pooled": pooled,
                                                                   "per_city": {"b": {"f1": 0.456}, "c": {"f1": 0.789}}},
                       "change-oscd-small + CVA": {"threshold": 0.5, "pooled": {**pooled, "f1": 0.2}, "weight": 0.1,
                                                   "per_city": {"b": {"f1": 0.3}, "c": {"f1": 0.1}}}},
              "default": "change-oscd-small + CVA", "default_method": "model + cva", "arm_steps": 300,
              "arms": {"pretrained": {"f1": [0.2, 0.22, 0.21], "mean": 0.21, "sd": 0.01},
                       "from scratch": {"f1": [0.15, 0.16, 0.17], "mean": 0.16, "sd": 0.01}}}
    data = {"reconstruction": {"rows": rows}, "change": change}
    text = results.render(json.loads(json.dumps(data)))
    assert "**0.33**" in text and "0.20" in text  # 0.001 / 0.003 and 0.0006 / 0.003
    assert "| s2mae-s2-small | 0.90 | 10.00 | 50.00 | 40.00 | 30.00 | 31.00 | 32.00 | **0.33** |" in text
    assert "**0.123**" in text and "0.789" in text and "53.28" in text
    assert "+0.077" in text and "0.210 ± 0.010" in text and "more than the spread" in text
    block = results.readme_block(data)
    assert "| oscd:b+c | 0.90 | 10.00 | 30.00 | **0.33** | 0.33 |" in block and "docs/results.md" in block
    assert "worst 0.33, met" in block and "+0.077, met" in block and "+0.050 against 0.010, met" in block


def test_cell_features_average_every_window_that_holds_a_square():
    """Squares lie on a STRIDE lattice; a square's feature is the mean of its token in every window holding it."""
    torch.manual_seed(0)
    model = S2MAE(img_size=16, in_chans=10, patch_size=8, embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=16,
                  decoder_depth=1, bands_per_token=2).eval()
    image = torch.rand(10, 24, 24)
    cells = results.cell_features(model, image, window=16)
    stride = results.STRIDE
    assert list(cells) == sorted(cells) and all(r % stride == 0 and c % stride == 0 for r, c in cells)
    assert len(cells) == ((24 - 8) // stride + 1) ** 2  # every 8 px square on the lattice, from corner to corner
    with torch.no_grad():
        corner = model.feature_map(image[None, :, :16, :16])[0, :, 0, 0]  # (0, 0) is in the top-left window only
        middle = torch.stack([model.feature_map(image[None, :, r:r + 16, c:c + 16])[0, :, (8 - r) // 8, (8 - c) // 8]
                              for r in (0, 8) for c in (0, 8)]).mean(0)  # (8, 8) is in the windows at 0 and 8
    assert torch.allclose(cells[(0, 0)], corner, atol=1e-6)
    assert torch.allclose(cells[(8, 8)], middle, atol=1e-6)
    small = S2MAE(img_size=16, in_chans=10, patch_size=4, embed_dim=32, depth=1, num_heads=2, decoder_embed_dim=16,
                  decoder_depth=1).eval()  # 4 px tokens: a square is the mean of the 2 x 2 tokens tiling it
    fine = results.cell_features(small, image, window=16)
    with torch.no_grad():
        tokens = small.feature_map(image[None, :, :16, :16])[0, :, :2, :2]  # (D, 2, 2): the top-left square's
    assert torch.allclose(fine[(0, 0)], tokens.mean((1, 2)), atol=1e-6) and set(cells) <= set(fine)


def test_land_cover_probe_scores_real_jasper_ridge_squares():
    if results.data_dir("hyperspectral") is None:
        pytest.skip("the Jasper Ridge cube is not on this machine (S2LAB_DATA_DIR)")
    image, abundances, names = results.jasper_ridge_s2()
    assert image.shape == (10, 100, 100) and abundances.shape == (4, 100, 100) and names[1] == "water"
    assert torch.isfinite(image).all() and 0 <= float(image.min()) and float(image.max()) < 1.5
    real = results.land_cover()
    assert real["synthetic"] is False and real["train_squares"] > 200 and real["test_squares"] > 200
    acc = real["accuracy"]
    assert acc["mean spectrum of the square (no encoder)"] > 0.8  # four spectrally distinct materials
    assert all(acc["majority class of the train squares"] < v for k, v in acc.items() if "majority" not in k)
    text = results.classification_markdown({"train_images": 1, "eval_images": 1, "classes": ["a"],
                                            "probe": "p", "accuracy": {}, "land_cover": real})
    assert "**real**" in text and f"{acc['s2mae-s2-small pretrained']:.3f}" in text


def test_ablations_markdown_shows_coverage_and_no_paper_figure_for_settings_the_paper_lacks():
    def row(ratio, bands, value, share, covered):
        return {"ratio": ratio, "patch_size": 8, "target": "unit", "bands_per_token": bands, "model_to_best": value,
                "floor_to_best": 0.25, "covered_share": share, "covered_model_to_baseline": covered,
                "probe_accuracy": 0.5}
    result = {"steps": 300, "data": ["embedded:train"], "seed": 0, "eval_windows": 128,
              "paper": {"mask_ratio_map": {"0.9": 85.59}, "patch_size_map": {"16": 78.42}},
              "rows": {"ratio 0.9": row(0.9, 2, 1.12, 0.34, 1.11), "1 band per token, ratio 0.9": row(0.9, 1, 0.8, 0.61, 0.5)}}
    text = results.ablations_markdown(result)
    assert "| ratio 0.9 | 1.12 | 0.34 | 1.11 | 0.500 | 85.59 |" in text
    assert "| 1 band per token, ratio 0.9 | 0.80 | 0.61 | 0.50 | 0.500 | - |" in text
    assert "61% of the removed values" in text and "against 34%" in text
    assert "learnt late" not in text  # the 1-band model does borrow here (0.50 on covered against 0.80 overall)


def test_loss_fusion_and_cross_band_sections_state_what_was_measured():
    loss = {"steps": 800, "init": "x", "rows": [
        {"loss": name, "images": "embedded:eval", "windows": 5, "ratio": 0.9, "mse": mse, "model_to_best": ratio}
        for name, mse, ratio in (("scaled", 2e-4, 0.57), ("reflectance", 1.8e-4, 0.54))]}
    text = results.loss_markdown(loss)
    assert "| reflectance | embedded:eval (5 windows) | 0.90 | 1.80 | **0.54** |" in text
    assert "ahead in 1 of 1 rows" in text
    row = {"mask_ratio": 0.9, "seeds": [0, 1], "mean": {"own": 1e-4, "another patch's": 1.5e-4, "constant": 2e-4},
           "minus_own": {"another patch's": {"mean": 0.5e-4, "sd": 0.1e-4}, "constant": {"mean": 1e-4, "sd": 2e-4}},
           "best_fill": "gaussian_2px", "best_fill_mse": 3e-4}
    fusion = {"patches": ["p", "q"], "trained_on": ["a", "b"], "steps": 9, "modality_masking": "independent",
              "rows": [row]}
    text = results.fusion_markdown(fusion)
    assert "| 0.90 | 1.00 | 1.50 | 2.00 | +0.50 ± 0.10 | +1.00 ± 2.00 | gaussian_2px 3.00 |" in text
    assert "not better with its own radar by more than the spread" in text  # the constant case is within its spread
    assert "with its own S1" in results.readme_block({"fusion": fusion})
    borrow = {"0.75": {"as drawn": 1e-4, "same pixel hidden": 2e-4, "elsewhere hidden": 1.2e-4, "windows": 3,
                       "hidden_per_window": 4.0, "ratio": 0.75}}
    pair = {"models": ["a", "b"], "rows": {"embedded:eval": [
        {"ratio": 0.9, "mse": {"a": 1e-4, "b": 3e-4, "band_mean": 4e-4, "gaussian_2px": 2e-4}, "best_fill": "gaussian_2px",
         "windows": 3}]}}
    text = results.reconstruction_markdown({"rows": [], "cross_band": borrow, "paired": pair})
    assert "+100% against +20% for the control: the bands of the same pixel matter more" in text
    assert "| embedded:eval | 0.90 | 1.00 | 3.00 | Gaussian 2 px 2.00 | **0.50** | **1.50** |" in text
