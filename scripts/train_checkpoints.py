"""Train the small checkpoints that ship inside the package (s2lab/weights/), on real data only.

    python scripts/train_checkpoints.py [--steps N] [--finetune-steps N] [--out s2lab/weights]

- ``s2mae-s2-small`` and ``satmae-s2-small``: S2MAE and SatMAE at a matched size, pretrained on the top half of the
  embedded Sentinel-2 scene (``embedded:train``) and both dates of the OSCD training cities where OSCD is found,
  with one mask ratio per batch drawn from [0.5, 0.95] (the app's slider range).
- ``change-oscd-small``: a change detector on the S2MAE encoder, fine-tuned on the OSCD training cities' labels;
  its threshold is chosen on the training cities.

Held out, never seen by any checkpoint: the bottom half of the embedded scene (``embedded:eval``) and the OSCD
cities in ``EVAL_CITIES``. Deterministic: every run with the same arguments and torch build gives the same weights
on CPU. Each stage runs the ``s2lab`` command in-process, so this script is also a worked example of it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from s2lab.cli import main as s2lab
from s2lab.data.oscd import images_dir, oscd_cities
from s2lab.settings import data_dir

EVAL_CITIES = ("nantes", "abudhabi")
SIZE = ["--embed-dim", "128", "--depth", "4", "--heads", "4", "--decoder-depth", "2", "--decoder-dim", "96"]


def run(args: list[str]) -> None:
    code = s2lab(args)
    if code:
        raise SystemExit(f"s2lab {' '.join(args)} failed with exit code {code}")


def publish(run_dir: Path, name: str, out: Path) -> None:
    """Copy a run's final model into the package folder under ``name``, saying what it never saw.

    Paths of this machine in the record are replaced by the dataset-relative names (``oscd/<city>/imgs_1``).
    """
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "model.safetensors", out / f"{name}.safetensors")
    record = json.loads((run_dir / "model.json").read_text())
    meta = record.setdefault("meta", {})
    if "data" in meta:
        meta["data"] = [d if d.startswith("embedded") else "oscd/" + "/".join(Path(d).parts[-2:]) for d in meta["data"]]
    meta["held_out"] = {"embedded": "embedded:eval (bottom half of the rows)", "oscd_cities": list(EVAL_CITIES)}
    (out / f"{name}.json").write_text(json.dumps(record, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="pretraining steps per model")
    parser.add_argument("--finetune-steps", type=int, default=600, help="change-detection fine-tuning steps")
    parser.add_argument("--runs", type=Path, default=Path("runs/shipped"), help="working folder of the runs")
    parser.add_argument("--out", type=Path, default=Path("s2lab/weights"), help="where the shipped files go")
    args = parser.parse_args()
    if args.runs.exists():
        shutil.rmtree(args.runs)
    data = ["embedded:train"]
    train_cities: list[str] = []
    if data_dir("oscd") is not None:
        train_cities = [c for c in oscd_cities() if c not in EVAL_CITIES]
        data += [str(images_dir() / c / d) for c in train_cities for d in ("imgs_1", "imgs_2")]
    timings = {}
    for kind, strategy in (("s2mae", "random"), ("satmae", "independent")):
        start = time.perf_counter()
        run(["pretrain", "--kind", kind, "--data", *data, "--steps", str(args.steps), "--batch-size", "32",
             "--lr", "1e-3", "--mask-ratio", "0.5:0.95", "--strategy", strategy, "--seed", "0",
             "--out", str(args.runs / kind), "--quiet", *SIZE])
        timings[kind] = time.perf_counter() - start
        publish(args.runs / kind, f"{kind}-s2-small", args.out)
    if train_cities:
        start = time.perf_counter()
        run(["finetune", "--task", "change", "--init", str(args.runs / "s2mae" / "model.safetensors"),
             "--train-cities", *train_cities, "--eval-cities", *EVAL_CITIES, "--steps", str(args.finetune_steps),
             "--seed", "0", "--out", str(args.runs / "change"), "--quiet"])
        timings["change"] = time.perf_counter() - start
        publish(args.runs / "change", "change-oscd-small", args.out)
    (args.runs / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in timings.items()}, indent=2))
    print(json.dumps({k: round(v, 1) for k, v in timings.items()}))


if __name__ == "__main__":
    main()
