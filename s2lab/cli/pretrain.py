"""``s2lab pretrain``: masked-autoencoder pretraining on real imagery, or progressive pretraining of a checkpoint.

Shapes follow the glossary: B batch, C bands, H, W pixels, D model width.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from s2lab.checkpoints import MAE_KINDS
from s2lab.cli._args import (
    _check_ratio,
    _check_strategy,
    _common,
    _dn_offset,
    _load,
    _model_bands,
    _rounded,
    _train_config,
    _training,
    _warn_offset,
)
from s2lab.device import pick_device
from s2lab.finetune import seeded
from s2lab.masking import STRATEGIES
from s2lab.models import build
from s2lab.models.config import LOSSES, TARGETS, MAEConfig
from s2lab.scaling import SCALINGS, band_statistics
from s2lab.sensors import S2_10BANDS
from s2lab.data.pretraining import NAMED_SOURCES, pretraining_images, raster_paths
from s2lab.tasks import pretrain_task
from s2lab.train import check_out_dir, fit

SLIDER_RANGE = "0.5:0.95"  # the app's mask-ratio slider: pretraining covers all of it by default
SIZE_FLAGS = ("embed_dim", "depth", "heads", "decoder_depth", "decoder_dim", "patch_size", "target", "scaling",
              "bands_per_token")


def _parse_ratio(text: str) -> float | tuple[float, float]:
    """ "0.75" -> 0.75; "0.5:0.95" -> (0.5, 0.95), each in [0, 1) and lo <= hi."""
    parts = str(text).split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--mask-ratio takes a number R or a range LO:HI in [0, 1), got {text!r}") from None
    if len(values) == 1:
        return _check_ratio(values[0])
    if len(values) != 2 or not 0.0 <= values[0] <= values[1] < 1.0:
        raise ValueError(f"--mask-ratio range must be LO:HI with 0 <= LO <= HI < 1, got {text!r}")
    return values[0], values[1]


def _mae_config(args: argparse.Namespace, bands: Sequence[str]) -> dict:
    """The MAE constructor arguments: the defaults with the command line's size overrides."""
    config = {"img_size": args.img_size or MAEConfig.img_size, "in_chans": len(bands)}
    overrides = {"embed_dim": args.embed_dim, "depth": args.depth, "num_heads": args.heads,
                 "decoder_depth": args.decoder_depth, "decoder_embed_dim": args.decoder_dim}
    config.update({k: v for k, v in overrides.items() if v is not None})
    if args.patch_size is not None:
        config["patch_size"] = args.patch_size
    if args.target is not None:
        config["target"] = args.target
    if args.scaling is not None:
        config["scaling"] = args.scaling
    if args.loss is not None:
        config["loss"] = args.loss
    if args.bands_per_token is not None:
        if args.kind != "s2mae":
            raise ValueError(f"--bands-per-token sets S2MAE's 3D tokens; {args.kind} groups its bands itself")
        config["bands_per_token"] = args.bands_per_token
    return config


def _pretraining_images(args: argparse.Namespace, bands: Sequence[str]) -> list:
    """``pretraining_images`` of --data with --dn-offset; a warning for each raster path that looks 0.1 too bright
    when no offset is given."""
    images = pretraining_images(args.data, bands, dn_offset=args.dn_offset)
    if args.dn_offset is None:
        for source in args.data:
            if source not in NAMED_SOURCES:
                for path in raster_paths(Path(source)):
                    _warn_offset(path)
    return images


def run_pretrain(args: argparse.Namespace) -> dict:
    """Masked-autoencoder pretraining on real images; writes ``model.safetensors`` / ``model.json`` in --out."""
    ratio, strategy = _parse_ratio(args.mask_ratio), _check_strategy(args.strategy)
    train_config = _train_config(args)
    check_out_dir(args.out, resume=args.resume)  # before the data is read
    if args.init:
        given = [f"--{k.replace('_', '-')}" for k in SIZE_FLAGS if getattr(args, k) is not None]
        if given:
            raise ValueError(f"--init continues a model as it is; drop {', '.join(given)}")
        model, info = _load(args.init, (args.kind,), "pretrain --init")
        if args.loss is not None:  # the loss is a training choice, not part of the model's shape
            model.config.loss = args.loss
            model.config.validate()
        bands = _model_bands(model, info)
        images = _pretraining_images(args, bands)  # (C, H, W) reflectance tensors
    else:
        bands = S2_10BANDS
        images = _pretraining_images(args, bands)
        config = _mae_config(args, bands)
        if config.get("scaling", "dataset") == "dataset":  # statistics of exactly the data it trains on
            config["band_mean"], config["band_std"] = band_statistics(images)
        model = seeded(args.seed, lambda: build(args.kind, config))
    args.img_size = args.img_size or model.config.img_size  # a continued model keeps the tiles it learned on
    batch_fn, loss_fn = pretrain_task(model, images, batch_size=args.batch_size, img_size=args.img_size,
                                      mask_ratio=ratio, strategy=strategy, augment=not args.no_augment)
    meta = {"task": "pretrain", "data": [str(d) for d in args.data], "bands": list(bands), "synthetic": False,
            "images": len(images), "pixels": int(sum(x.shape[-2] * x.shape[-1] for x in images)),
            "steps": args.steps, "seed": args.seed, "batch_size": args.batch_size, "img_size": args.img_size,
            "mask_ratio": list(ratio) if isinstance(ratio, tuple) else ratio, "strategy": strategy,
            "augment": "none" if args.no_augment else "flips and 90-degree turns", "init": args.init}
    result = fit(model, loss_fn=loss_fn, batch_fn=batch_fn, config=train_config, out_dir=args.out,
                 resume=args.resume, model_config=model.config_dict(), kind=args.kind, meta=meta)
    return {
        "model": str(Path(args.out) / "model.safetensors"),
        "kind": args.kind,
        "config": model.config_dict(),
        **{k: v for k, v in meta.items() if k != "bands"},
        "final_loss": _rounded(result.losses[-1]),
        "first_loss": _rounded(result.losses[0]),
        "start_step": result.start_step,
        "seconds": round(result.seconds, 3),
        "samples_per_second": _rounded(result.samples_per_second, 2),
        "device": str(pick_device(args.device)),
    }


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``pretrain`` subcommand and its options."""
    p = sub.add_parser("pretrain", help="masked-autoencoder pretraining on real imagery")
    p.add_argument("--kind", choices=MAE_KINDS, default="s2mae", help="the model (default s2mae)")
    p.add_argument("--data", nargs="+", default=["embedded"],
                   help="'embedded' ('embedded:train' its top half), 'oscd', 'bigearthnet', GeoTIFFs or folders "
                        "(default embedded)")
    _training(p, out="runs/pretrain", steps=1000, batch_size=16, lr=1.5e-4)
    p.add_argument("--mask-ratio", default=SLIDER_RANGE, help="R, or LO:HI drawn per batch (default %(default)s)")
    p.add_argument("--strategy", default="random", help=f"masking strategy: {', '.join(STRATEGIES)} (default random)")
    p.add_argument("--patch-size", type=int, help="p, pixels per token side (default 8)")
    p.add_argument("--bands-per-token", type=int,
                   help="s, adjacent bands in one S2MAE token (default 2; s2mae only)")
    p.add_argument("--embed-dim", type=int, help="D, encoder width (default 128)")
    p.add_argument("--depth", type=int, help="encoder blocks (default 4)")
    p.add_argument("--heads", type=int, help="encoder attention heads (default 4)")
    p.add_argument("--decoder-depth", type=int, help="decoder blocks (default 2)")
    p.add_argument("--decoder-dim", type=int, help="decoder width (default 96)")
    p.add_argument("--target", choices=TARGETS,
                   help="what the decoder predicts: unit (the scaled image, default) or patch (each token "
                        "standardised, MAE's norm_pix_loss)")
    p.add_argument("--scaling", choices=SCALINGS,
                   help="input and target scaling: dataset (fixed per-band statistics of --data, default), window "
                        "(each window's band min-max) or none (reflectance)")
    p.add_argument("--loss", choices=LOSSES,
                   help="where the masked MSE is taken: scaled (the target space, as the papers; default), "
                        "reflectance (each band weighted by its squared scaling range: the error the lab scores) or "
                        "balanced (those weights divided by each band's batch mean); may change with --init")
    p.add_argument("--init", help="continue this checkpoint (a shipped name or a path) on --data: progressive "
                                  "pretraining; its size and scaling are kept")
    p.add_argument("--no-augment", action="store_true", help="no random flips and 90-degree turns of the tiles")
    _dn_offset(p)
    _common(p)
    p.set_defaults(run=run_pretrain)
