"""The ``s2lab`` command, run as users run it (a subprocess) and in-process where that saves time.

The end-to-end path a user walks: pretrain, fine-tune change detection, then detect change on a real OSCD city,
all through the command line. Models here are tiny (a few steps, small widths): the tests check what the command
writes and reports, not how good the models are.
"""

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from s2lab.change import change_map, chosen_threshold
from s2lab.checkpoints import shipped_models
from s2lab.cli import main
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.data.oscd import IMAGES, LABELS
from s2lab.data.raster import open_raster
from s2lab.models import load_model
from s2lab.sensors import S2_10BANDS
from s2lab.settings import data_dir
from _tiny import TINY_FLAGS

TRAIN_CITY, TEST_CITY = "bercy", "paris"  # two of the smallest OSCD cities
COMMAND = [shutil.which("s2lab")] if shutil.which("s2lab") else [sys.executable, "-m", "s2lab"]


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*COMMAND, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def s2lab(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the command; (exit code, stdout, stderr)."""
    process = start(*args, cwd=cwd)
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def report(*args: str, cwd: Path) -> dict:
    """Run the command with --json and return the JSON it printed (failing with its stderr otherwise)."""
    code, out, err = s2lab(*args, "--json", cwd=cwd)
    assert code == 0, err
    return json.loads(out)


def oscd_paths(city: str) -> tuple[Path, Path, Path]:
    root = data_dir("oscd")
    if root is None:
        pytest.skip("OSCD is absent (set S2LAB_OSCD_DIR or S2LAB_DATA_DIR)")
    city_dir = root / IMAGES / city
    return city_dir / "imgs_1", city_dir / "imgs_2", root / LABELS[0] / city / "cm" / f"{city}-cm.tif"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def crop(work) -> Path:
    """A 128 x 128 crop of the embedded real scene, 10 bands, as a georeferenced GeoTIFF."""
    path = work / "crop.tif"
    write_geotiff(open_embedded_scene().isel(y=slice(900, 1028), x=slice(800, 928)), path)
    return path


@pytest.fixture(scope="module")
def pretrained(work) -> tuple[Path, dict]:
    """A tiny S2MAE from `s2lab pretrain` (5 steps on the embedded scene) and the JSON it printed."""
    out = report("pretrain", "--steps", "5", "--batch-size", "2", "--img-size", "64", *TINY_FLAGS, "--out", "pre",
                 "--quiet", cwd=work)
    return work / "pre" / "model.safetensors", out


def test_info_lists_versions_device_and_data(work):
    info = report("info", cwd=work)
    assert info["versions"]["s2lab"] and info["versions"]["torch"]
    assert info["device"]["type"] in ("cuda", "mps", "cpu") and "cpu" in info["device"]["available"]
    assert info["data"]["embedded"]["found"] is True and Path(info["data"]["embedded"]["path"]).is_dir()
    assert len(info["data"]["bigearthnet_embedded"]["patches"]) == 6
    oscd = info["data"]["oscd"]
    assert oscd["found"] == (data_dir("oscd") is not None)
    assert ("cities" in oscd) if oscd["found"] else ("S2LAB_OSCD_DIR" in oscd["hint"])
    assert not oscd["found"] or set(oscd["labelled"]) <= set(oscd["cities"])
    assert isinstance(info["models"], list)


def test_pretrain_writes_a_loadable_checkpoint(pretrained):
    path, out = pretrained
    assert out["steps"] == 5 and out["data"] == ["embedded"] and math.isfinite(out["final_loss"])
    model, info = load_model(path)
    assert info["kind"] == "s2mae" and model.config.embed_dim == 32 and model.config.img_size == 64
    meta = info["meta"]
    assert meta["bands"] == list(S2_10BANDS) and meta["data"] == ["embedded"] and meta["mask_ratio"] == [0.5, 0.95]
    assert meta["final_loss"] == pytest.approx(out["final_loss"], rel=1e-5)
    assert model.config.target == "unit"  # the default: every value predicted from the visible tokens only


def test_pretrain_stores_the_band_statistics_of_its_own_data(pretrained):
    path, out = pretrained
    model, info = load_model(path)
    assert model.config.scaling == "dataset" and out["augment"] == "flips and 90-degree turns"
    scene = torch.as_tensor(open_embedded_scene().values, dtype=torch.float64).flatten(1)  # (10, H * W)
    np.testing.assert_allclose(info["config"]["band_mean"], scene.mean(1).numpy(), atol=2e-6)
    np.testing.assert_allclose(info["config"]["band_std"], scene.std(1, correction=0).numpy(), atol=2e-6)


def test_pretrain_scaling_and_init_continue_a_model_on_other_data(work, pretrained):
    report("pretrain", "--steps", "1", "--batch-size", "2", "--img-size", "32", *TINY_FLAGS, "--scaling", "window",
           "--out", "window", "--quiet", cwd=work)
    window, info = load_model(work / "window" / "model.safetensors")
    assert window.config.scaling == "window" and info["config"]["band_mean"] is None
    out = report("pretrain", "--init", pretrained[0], "--data", "bigearthnet", "--steps", "2", "--batch-size", "2",
                 "--img-size", "64", "--out", "stage2", "--quiet", cwd=work)
    stage2, info = load_model(work / "stage2" / "model.safetensors")
    first, _ = load_model(pretrained[0])
    assert out["init"] == str(pretrained[0]) and info["meta"]["data"] == ["bigearthnet"]
    assert stage2.config == first.config  # the size and the band statistics of stage 1 are kept
    assert not torch.equal(stage2.embed.weight, first.embed.weight)  # and it trained on
    out = report("pretrain", "--init", work / "window" / "model.safetensors", "--steps", "1", "--batch-size", "2",
                 "--loss", "reflectance", "--out", "stage3", "--quiet", cwd=work)
    stage3, info = load_model(work / "stage3" / "model.safetensors")
    assert stage3.config.loss == "reflectance" and window.config.loss == "scaled"  # the loss may change, nothing else
    assert {**info["config"], "loss": "scaled"} == window.config_dict()
    assert out["img_size"] == 32  # without --img-size, the tiles the model learned on (not the default 64)
    code, _, err = s2lab("pretrain", "--init", str(pretrained[0]), "--embed-dim", "64", "--out", "bad", cwd=work)
    assert code == 1 and "--init continues a model as it is; drop --embed-dim" in err and not (work / "bad").exists()


def test_pretrain_target_chooses_what_the_decoder_predicts(work):
    report("pretrain", "--steps", "1", "--batch-size", "2", "--img-size", "64", *TINY_FLAGS, "--target", "patch",
           "--out", "normpix", "--quiet", cwd=work)
    model, _ = load_model(work / "normpix" / "model.safetensors")
    assert model.config.target == "patch"
    code, _, err = s2lab("pretrain", "--steps", "1", "--target", "pixels", "--out", "bad", cwd=work)
    assert code != 0 and "pixels" in err and not (work / "bad").exists()


def test_pretrain_bands_per_token_sets_s2maes_token_depth(work):
    report("pretrain", "--steps", "1", "--batch-size", "2", "--img-size", "64", *TINY_FLAGS, "--bands-per-token", "1",
           "--out", "bpt1", "--quiet", cwd=work)
    model, _ = load_model(work / "bpt1" / "model.safetensors")
    assert model.config.bands_per_token == 1 and model.tokenizer.G == 10  # one token per band at each place
    code, _, err = s2lab("pretrain", "--kind", "satmae", "--steps", "1", "--bands-per-token", "1", "--out", "sat",
                         cwd=work)
    assert code != 0 and "--bands-per-token" in err and "satmae" in err and not (work / "sat").exists()


def test_reconstruct_writes_the_reconstruction_with_the_input_georeference(work, crop, pretrained):
    out = report("reconstruct", crop, "-o", "rec.tif", "--model", pretrained[0], "--mask-ratio", "0.75",
                 "--seed", "3", cwd=work)
    for method in ("model", *out["baselines"]):
        scores = out if method == "model" else out["baselines"][method]
        assert scores["mse"] > 0 and scores["psnr"] > 0 and 0 < scores["sam_deg"] < 90
    assert set(out["baselines"]) and out["model"] == str(pretrained[0]) and out["seconds"] > 0
    assert out["bands"] == list(S2_10BANDS) and out["shape"] == [10, 128, 128]
    with rasterio.open(crop) as src, rasterio.open(work / "rec.tif") as rec:
        assert rec.crs == src.crs and rec.transform == src.transform and rec.dtypes[0] == "float32"
        assert rec.descriptions == src.descriptions
        kept = np.isclose(rec.read(), src.read(), rtol=0, atol=0)
    assert 0.15 < kept.mean() < 0.4  # the visible quarter is the input itself; the rest is predicted


def test_pretrain_finetune_change_then_detect_change_on_a_real_city(work, pretrained):
    before, after, labels = oscd_paths(TEST_CITY)
    tuned = report("finetune", "--task", "change", "--init", pretrained[0], "--steps", "3", "--batch-size", "2",
                   "--img-size", "64", "--train-cities", TRAIN_CITY, "--eval-cities", TEST_CITY, "--out", "tuned",
                   "--quiet", cwd=work)
    assert tuned["data"] == "oscd" and tuned["synthetic"] is False and tuned["eval_cities"] == [TEST_CITY]
    assert 0 < tuned["threshold"] < 1 and all(0 <= tuned[k] <= 1 for k in ("precision", "recall", "f1"))
    model = work / "tuned" / "model.safetensors"
    _, info = load_model(model)
    assert info["kind"] == "change" and info["meta"]["threshold"] == tuned["threshold"]
    assert info["meta"]["train_cities"] == [TRAIN_CITY] and info["meta"]["init"] == str(pretrained[0])
    blend = info["meta"]["blend"]  # the CVA blend: weight, smoothing and threshold chosen on the training city
    assert 0 <= blend["cva_weight"] and 0 < blend["threshold"] < 1 and set(blend["train_f1"]) >= {"0.0"}
    assert blend["train_f1"][str(blend["cva_weight"])] == max(blend["train_f1"].values())
    assert blend["chosen_on"] == "in-fit" and blend["sigma"] >= 0 and "cross_fit" not in info["meta"]
    chose_blend = blend["cva_weight"] > 0 or blend["sigma"] > 0
    assert info["meta"]["method"] == ("model + cva" if chose_blend else "model") == tuned["method"]

    found = report("detect-change", before, after, "-o", "change.tif", "--model", model, "--labels", labels,
                   "--probability", "prob.tif", "--no-cva", cwd=work)
    assert found["method"] == "model" and found["threshold"] == tuned["threshold"]
    default = report("detect-change", before, after, "-o", "default.tif", "--model", model, cwd=work)
    assert default["method"] == info["meta"]["method"]
    assert default["threshold"] == (blend["threshold"] if chose_blend else tuned["threshold"])
    assert all(0 <= found[k] <= 1 for k in ("precision", "recall", "f1", "iou"))
    assert found["labels"]["encoding"] in ("1/2", "0/1")
    with rasterio.open(next(before.glob("*_B02.tif"))) as src, rasterio.open(work / "change.tif") as cm:
        assert cm.crs == src.crs and cm.transform == src.transform and cm.dtypes[0] == "uint8"
        change = cm.read(1)
    assert set(np.unique(change).tolist()) <= {0, 1}
    assert change.mean() == pytest.approx(found["changed_fraction"])
    with rasterio.open(work / "prob.tif") as prob:
        assert prob.dtypes[0] == "float32"
        assert np.array_equal(prob.read(1) >= found["threshold"], change.astype(bool))


def test_finetune_cross_fit_chooses_the_blend_on_out_of_fold_maps(work, pretrained, capsys):
    cities = [TRAIN_CITY, "rennes"]
    tuned = report("finetune", "--task", "change", "--init", pretrained[0], "--steps", "2", "--batch-size", "2",
                   "--img-size", "64", "--train-cities", *cities, "--eval-cities", TEST_CITY, "--cross-fit",
                   "--out", "crossfit", "--quiet", cwd=work)
    _, info = load_model(work / "crossfit" / "model.safetensors")
    assert info["meta"]["cross_fit"] is True and info["meta"]["train_cities"] == cities
    assert info["meta"]["blend"]["chosen_on"] == "out-of-fold" == tuned["blend"]["chosen_on"]
    assert main(["finetune", "--task", "classify", "--data", "synthetic", "--cross-fit", "--out",
                 str(work / "nothing")]) == 1
    assert "--cross-fit chooses the change blend" in capsys.readouterr().err and not (work / "nothing").exists()


def test_finetune_is_deterministic_whatever_ran_before_it(work, pretrained):
    args = ["finetune", "--task", "change", "--init", str(pretrained[0]), "--steps", "2", "--batch-size", "2",
            "--img-size", "64", "--train-cities", TRAIN_CITY, "--eval-cities", TEST_CITY, "--quiet", "--json"]
    digests = []
    for name, noise in (("first", 1), ("second", 2)):
        torch.manual_seed(noise)  # another state of torch's global generator, as after other work in one process
        assert main([*args, "--out", str(work / name)]) == 0
        digests.append(hashlib.sha256((work / name / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]  # the head's initial weights come from --seed, not from what ran before


def test_detect_change_applies_the_radiometric_normalisation_the_model_was_trained_with(work, pretrained):
    before, after, _ = oscd_paths(TEST_CITY)
    report("finetune", "--task", "change", "--init", pretrained[0], "--steps", "2", "--batch-size", "2",
           "--img-size", "64", "--train-cities", TRAIN_CITY, "--eval-cities", TEST_CITY, "--normalize", "quantiles",
           "--out", "matched", "--quiet", cwd=work)
    model, info = load_model(work / "matched" / "model.safetensors")
    assert info["meta"]["normalize"] == "quantiles"
    found = report("detect-change", before, after, "-o", "change.tif", "--model",
                   work / "matched" / "model.safetensors", "--probability", "prob.tif", "--no-cva", cwd=work)
    assert found["normalize"] == "quantiles"
    b, a = (open_raster(p, bands=S2_10BANDS) for p in (before, after))
    with rasterio.open(work / "prob.tif") as prob:
        written = prob.read(1)
    matched = change_map(model, b, a, normalize="quantiles").probability.values
    plain = change_map(model, b, a).probability.values
    assert np.allclose(written, matched, atol=1e-5) and not np.allclose(written, plain, atol=1e-3)


def test_detect_change_defaults_to_the_shipped_model_and_offers_cva(work, capsys):
    before, after, labels = oscd_paths(TEST_CITY)
    shipped = [m for m in shipped_models() if m["kind"] == "change"]
    assert main(["detect-change", str(before), str(after), "-o", str(work / "default.tif"), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    if shipped:  # the method and threshold the shipped model's training cities chose
        meta = shipped[0]["meta"]
        assert default["model"] == shipped[0]["name"] and default["method"] == meta.get("method", "model")
        assert default["threshold"] == pytest.approx(chosen_threshold(meta))
    else:
        assert default["model"] == "cva" and "note" in default
    assert main(["detect-change", str(before), str(after), "-o", str(work / "cva.tif"), "--model", "cva",
                 "--labels", str(labels), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["method"].startswith("cva") and found["model"] == "cva"
    assert 0 < found["threshold"] < 1 and 0 < found["f1"] <= 1
    assert main(["detect-change", str(before), str(after), "-o", str(work / "cva9.tif"), "--model", "cva",
                 "--threshold", "0.99", "--json"]) == 0
    strict = json.loads(capsys.readouterr().out)
    assert strict["threshold"] == 0.99 and strict["changed_fraction"] < found["changed_fraction"]


def test_dn_offset_reads_a_baseline_04_file_as_its_original_and_a_missing_one_is_warned(work, capsys):
    """Two real crops as uint16 DN, then the same with DN + 1000 (processing baseline 04.00): detect-change with
    --dn-offset -1000 writes the very map of the originals; without it, one warning line per input."""
    scene = open_embedded_scene()  # (10, H, W) reflectance
    grid = {"driver": "GTiff", "count": 10, "height": 96, "width": 96, "dtype": "uint16", "crs": scene.rio.crs,
            "transform": scene.isel(y=slice(900, None), x=slice(800, None)).rio.transform()}  # both dates on it
    paths = {}
    for name, shift in (("orig", 0), ("pb04", 1000)):
        for date, (y, x) in (("a", (900, 800)), ("b", (1000, 700))):
            window = scene.isel(y=slice(y, y + 96), x=slice(x, x + 96)).values  # (10, 96, 96)
            path = work / f"dn_{name}_{date}.tif"
            with rasterio.open(path, "w", **grid) as out:
                out.write(np.rint(window * 10000).astype(np.uint16) + shift)
                for i, band in enumerate(S2_10BANDS):
                    out.set_band_description(i + 1, band)
            paths[name, date] = str(path)
    cva = ["--model", "cva", "--threshold", "0.5", "--json"]
    assert main(["detect-change", paths["orig", "a"], paths["orig", "b"], "-o", str(work / "dn_orig.tif"), *cva]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["detect-change", paths["pb04", "a"], paths["pb04", "b"], "-o", str(work / "dn_pb04.tif"),
                 "--dn-offset", "-1000", *cva]) == 0
    assert "warning" not in capsys.readouterr().err
    with rasterio.open(work / "dn_orig.tif") as a, rasterio.open(work / "dn_pb04.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
    assert main(["detect-change", paths["pb04", "a"], paths["pb04", "b"], "-o", str(work / "dn_bright.tif"),
                 *cva]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("s2lab: warning: ")]
    assert len(warnings) == 2 and all("1st-percentile DN of" in w and "--dn-offset -1000" in w for w in warnings)
    assert main(["detect-change", "embedded", paths["pb04", "b"], "-o", str(work / "dn_x.tif"), "--dn-offset",
                 "-1000", *cva]) == 1
    assert "--dn-offset is for an input file" in capsys.readouterr().err


def test_unlabelled_oscd_cities_are_imagery_for_change_maps_and_refused_as_labels(work, pretrained, capsys):
    from s2lab.data.oscd import oscd_cities

    oscd_paths(TEST_CITY)  # skips where OSCD is absent
    unlabelled = oscd_cities(labelled=False)
    if not unlabelled:
        pytest.skip("this OSCD copy has no unlabelled (test) city")
    city = min(unlabelled, key=lambda c: np.prod(open_raster(data_dir("oscd") / IMAGES / c / "imgs_1",
                                                             bands=["B02"]).shape))
    before, after = (data_dir("oscd") / IMAGES / city / d for d in ("imgs_1", "imgs_2"))
    assert main(["detect-change", str(before), str(after), "-o", str(work / f"{city}.tif"), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert "f1" not in found and 0 <= found["changed_fraction"] <= 1  # a change map, no score without a label
    assert main(["finetune", "--task", "change", "--init", str(pretrained[0]), "--steps", "1", "--train-cities",
                 TRAIN_CITY, "--eval-cities", city, "--out", str(work / "never"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("s2lab: error: ") and f"OSCD cities {city} have no change label" in err
    assert TRAIN_CITY in err and not (work / "never").exists()


def test_bad_inputs_fail_with_one_line_and_leave_nothing(work, crop, pretrained):
    (work / "notes.txt").write_text("not a raster\n")
    model = str(pretrained[0])
    cases = {
        "missing input": (["reconstruct", work / "missing.tif", "-o", "out.tif", "--model", model], "does not exist"),
        "text file": (["reconstruct", work / "notes.txt", "-o", "out.tif", "--model", model], "not a readable raster"),
        "mask ratio 1": (["reconstruct", crop, "-o", "out.tif", "--model", model, "--mask-ratio", "1.0"], "[0, 1)"),
        "output is input": (["reconstruct", "crop.tif", "-o", "crop.tif", "--model", model], "is the input"),
        "unknown model": (["reconstruct", crop, "-o", "out.tif", "--model", "no-such-model"], "no-such-model"),
    }
    folders = {name: work / f"bad-{i}" for i, name in enumerate(cases)}
    for folder in folders.values():
        folder.mkdir()
    shutil.copy(crop, folders["output is input"] / "crop.tif")
    digest = hashlib.sha256(crop.read_bytes()).hexdigest()
    running = {name: start(*args, cwd=folders[name]) for name, (args, _) in cases.items()}
    for name, process in running.items():
        out, err = process.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert process.returncode == 1, (name, err)
        assert len(lines) == 1 and lines[0].startswith("s2lab: error: "), (name, err)
        assert cases[name][1] in lines[0] and "Traceback" not in err and out == "", (name, err)
        left = sorted(p.name for p in folders[name].iterdir())
        assert left == (["crop.tif"] if name == "output is input" else []), (name, left)
    assert hashlib.sha256((folders["output is input"] / "crop.tif").read_bytes()).hexdigest() == digest


def test_bad_bands_labels_and_settings_are_named(work, crop, pretrained, capsys):
    rgb = work / "rgb.tif"
    write_geotiff(open_embedded_scene(("B02", "B03", "B04")).isel(y=slice(0, 64), x=slice(0, 64)), rgb)
    small = work / "small-label.tif"
    write_geotiff(np.ones((1, 10, 10), dtype=np.uint8), small, dtype="uint8")
    cases = [
        (["reconstruct", str(rgb), "-o", str(work / "x.tif"), "--model", str(pretrained[0])], "B05"),
        (["reconstruct", str(crop), "-o", str(work / "x.tif"), "--model", str(pretrained[0]), "--strategy", "zz"],
         "unknown masking strategy"),
        (["detect-change", str(crop), str(crop), "-o", str(work / "x.tif"), "--labels", str(small)], "10 x 10"),
        (["detect-change", str(crop), str(crop), "-o", str(work / "x.tif"), "--model", str(pretrained[0])],
         "needs one of: change"),
        (["pretrain", "--mask-ratio", "0.9:0.5", "--out", str(work / "never")], "LO:HI"),
        (["finetune", "--task", "change", "--data", "eurosat", "--out", str(work / "never")], "does not fit"),
        (["reconstruct", str(crop), "-o", str(work / "nofolder" / "x.tif"), "--model", str(pretrained[0])],
         "does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("s2lab: error: ") and message in err[0], (argv, err)
    assert not (work / "x.tif").exists() and not (work / "never").exists()


def test_usage_errors_keep_exit_code_2_and_every_command_has_help(capsys):
    for argv in (["reconstruct"], ["finetune", "--task", "segment"], ["bogus"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    for command in ("info", "reconstruct", "detect-change", "pretrain", "finetune", "bench"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0 and "--json" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("task", "scores"),
    [("classify", ("accuracy",)), ("multilabel", ("map_macro", "map_micro")), ("change", ("precision", "f1"))],
)
def test_finetune_on_synthetic_data_says_so(work, pretrained, task, scores, capsys):
    out = work / f"synthetic-{task}"
    assert main(["finetune", "--task", task, "--data", "synthetic", "--init", str(pretrained[0]), "--steps", "2",
                 "--batch-size", "2", "--synthetic-count", "2", "--out", str(out), "--quiet", "--json"]) == 0
    tuned = json.loads(capsys.readouterr().out)
    assert tuned["synthetic"] is True and "synthetic" in tuned["data"].lower()
    assert all(0 <= tuned[k] <= 1 for k in scores)
    _, info = load_model(out / "model.safetensors")
    assert info["meta"]["synthetic"] is True and all(info["meta"][k] == tuned[k] for k in scores)
    assert info["kind"] == ("change" if task == "change" else "classifier")


def test_pretrain_float32_turns_bf16_off_and_the_run_records_it(work):
    for flags, out in ((["--float32"], "fp32"), ([], "default")):
        report("pretrain", "--steps", "1", "--batch-size", "2", "--img-size", "64", *TINY_FLAGS, *flags, "--out", out,
               "--quiet", "--device", "cpu", cwd=work)
        _, info = load_model(work / out / "model.safetensors")
        assert info["meta"]["train_config"]["amp"] is (out == "default")
