"""``s2lab finetune``: fine-tune a pretrained encoder with a head (classify, multilabel or change).

The set-ups themselves (data, head, recipe, scoring) are ``s2lab.finetune``'s; this module reads the encoder,
translates the options into their keyword arguments, trains, and saves the evaluation in the checkpoint's meta.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from s2lab.radiometry import NORMALIZATIONS
from s2lab.checkpoints import MAE_KINDS, load_state, save_model
from s2lab.cli._args import _common, _is_rank_zero, _load, _model_bands, _rounded, _train_config, _training
from s2lab.device import pick_device
from s2lab.finetune import (
    DATA_CHOICES,
    SETUPS,
    Finetune,
    change_out_of_fold,
    change_setup,
    classify_setup,
    multilabel_setup,
    seeded,
)
from s2lab.models import build, head_config
from s2lab.models.config import MAEConfig
from s2lab.sensors import S2_10BANDS
from s2lab.train import check_out_dir, fit


def _encoder(args: argparse.Namespace) -> tuple[torch.nn.Module, tuple[str, ...], str | None]:
    """The encoder to fine-tune (--init, or a fresh small S2MAE), its bands, and where it came from."""
    if args.init:
        model, info = _load(args.init, MAE_KINDS, "finetune --init")
        if args.fresh_weights:  # the from-scratch arm of a comparison: the same network, its weights drawn anew
            model = seeded(args.seed, lambda: build(info["kind"], model.config_dict()))
            return model, _model_bands(model, info), f"{args.init} (architecture and scaling only, fresh weights)"
        return model, _model_bands(model, info), args.init
    if args.fresh_weights:
        raise ValueError("--fresh-weights takes the architecture of --init; give --init")
    model = seeded(args.seed, lambda: build("s2mae", {"img_size": args.img_size or MAEConfig.img_size,
                                                      "in_chans": len(S2_10BANDS)}))
    return model, S2_10BANDS, None


def _normalize(args: argparse.Namespace) -> str | None:
    """--normalize as ``change_setup`` takes it: None for "none"."""
    return None if args.normalize == "none" else args.normalize


def _setup(args: argparse.Namespace, encoder: torch.nn.Module, bands: Sequence[str]) -> Finetune:
    """The task's set-up from ``s2lab.finetune``, called with the options it takes."""
    common = {"data": args.data, "seed": args.seed, "batch_size": args.batch_size, "img_size": args.img_size,
              "linear_probe": args.linear_probe, "synthetic_count": args.synthetic_count, "device": args.device}
    if args.task == "change":
        return change_setup(encoder, bands, **common, normalize=_normalize(args),
                            train_cities=args.train_cities, eval_cities=args.eval_cities)
    if args.task == "classify":
        return classify_setup(encoder, bands, **common, limit_per_class=args.limit_per_class)
    return multilabel_setup(encoder, bands, **common)


def run_finetune(args: argparse.Namespace) -> dict:
    """Fine-tune a pretrained encoder with a head; writes ``model.*`` in --out with the evaluation in its meta."""
    if args.data not in DATA_CHOICES[args.task]:
        raise ValueError(f"--data {args.data!r} does not fit --task {args.task}; "
                         f"expected one of {', '.join(DATA_CHOICES[args.task])}")
    if args.cross_fit and (args.task != "change" or args.data == "synthetic"):
        raise ValueError("--cross-fit chooses the change blend on out-of-fold maps of OSCD training cities; "
                         f"it needs --task change on OSCD, got --task {args.task} --data {args.data}")
    train_config = _train_config(args)
    check_out_dir(args.out, resume=args.resume)  # before the encoder and the data are read
    encoder, bands, init = _encoder(args)
    args.img_size = args.img_size or encoder.config.img_size  # the encoder's own tiles unless told otherwise
    model, batch_fn, loss_fn, about, evaluate = _setup(args, encoder, bands)
    if args.cross_fit and about.get("synthetic"):
        raise ValueError("--cross-fit needs the OSCD cities, but OSCD was not found (set S2LAB_DATA_DIR)")
    meta = {"task": args.task, "init": init, "bands": list(bands), **about, "steps": args.steps, "seed": args.seed,
            "batch_size": args.batch_size, "linear_probe": args.linear_probe,
            **({"cross_fit": True} if args.cross_fit else {})}
    result = fit(model, loss_fn=loss_fn, batch_fn=batch_fn, config=train_config, out_dir=args.out,
                 resume=args.resume, model_config=head_config(model), kind=model.kind, meta=meta)
    report = {"model": str(Path(args.out) / "model.safetensors"), **meta, "final_loss": _rounded(result.losses[-1]),
              "seconds": round(result.seconds, 3), "device": str(pick_device(args.device))}
    if not _is_rank_zero():
        return report
    if args.cross_fit:  # one more fine-tuning per training city, each without it: its out-of-fold map
        folds = dataclasses.replace(train_config, checkpoint_every=0, progress=False)
        out_of_fold = change_out_of_fold(lambda: _encoder(args)[0], bands, train_cities=about["train_cities"],
                                         config=folds, normalize=_normalize(args),
                                         seed=args.seed, batch_size=args.batch_size, img_size=args.img_size,
                                         linear_probe=args.linear_probe, device=args.device)
        evaluation = evaluate(model, train_probabilities=out_of_fold)
    else:
        evaluation = evaluate(model)
    _, saved = load_state(Path(args.out) / "model")
    save_model(Path(args.out) / "model", model, kind=model.kind, config=head_config(model),
               meta={**saved["meta"], **evaluation})
    return {**report, **evaluation}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``finetune`` subcommand and its options."""
    p = sub.add_parser("finetune", help="fine-tune a pretrained encoder: classify, multilabel or change")
    p.add_argument("--task", required=True, choices=tuple(SETUPS), help="the task")
    p.add_argument("--init", help="the pretrained S2MAE / SatMAE: a shipped name or a path (default: fresh)")
    p.add_argument("--data", default="auto",
                   help="auto (real when present), oscd (change), eurosat (classify) or synthetic")
    _training(p, out="runs/finetune", steps=500, batch_size=8, lr=5e-4)
    p.add_argument("--linear-probe", action="store_true", help="freeze the encoder; train the head only")
    p.add_argument("--fresh-weights", action="store_true",
                   help="the --init model's architecture and scaling with fresh weights (from scratch, for comparison)")
    p.add_argument("--normalize", choices=("none", *NORMALIZATIONS), default="none",
                   help="change: per-image radiometric normalisation of the after date, no labels (default none)")
    p.add_argument("--train-cities", nargs="+", help="OSCD cities to train on (default: all not evaluated)")
    p.add_argument("--cross-fit", action="store_true",
                   help="change: choose the CVA weight, smoothing and threshold on out-of-fold maps of the training "
                   "cities (one more fine-tuning per city) instead of the model's own maps of them")
    p.add_argument("--eval-cities", nargs="+", help="OSCD cities to evaluate on (default: the last quarter)")
    p.add_argument("--limit-per-class", type=int, default=200, help="EuroSAT images read per class (default 200)")
    p.add_argument("--synthetic-count", type=int, default=64,
                   help="without real data: synthetic change tiles, images per class (classify) or images "
                   "(multilabel) to train on, a quarter as many held out (default 64)")
    _common(p)
    p.set_defaults(run=run_finetune)
