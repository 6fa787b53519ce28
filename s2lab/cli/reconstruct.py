"""``s2lab reconstruct``: mask a scene, reconstruct it with a masked autoencoder and write the reconstruction.

Shapes follow the glossary: C bands, H, W pixels.
"""

from __future__ import annotations

import argparse

from s2lab.checkpoints import MAE_KINDS, CheckpointError
from s2lab.cli._args import (
    BANDS_HELP,
    _assumed_note,
    _check_input,
    _check_output,
    _check_ratio,
    _check_strategy,
    _common,
    _dn_offset,
    _load,
    _model_bands,
    _open_input,
    _shipped,
)
from s2lab.masking import STRATEGIES
from s2lab.reconstruct import reconstruct_image


def run_reconstruct(args: argparse.Namespace) -> dict:
    """Mask a scene, reconstruct it, write the pasted reconstruction with the input's georeference."""
    _check_input(args.input)
    out = _check_output(args.output, args.input)
    ratio, strategy = _check_ratio(args.mask_ratio), _check_strategy(args.strategy)
    name = args.model or _shipped(MAE_KINDS)
    if name is None:
        raise CheckpointError(
            "no S2MAE / SatMAE model ships with this install; pass --model PATH, e.g. the model.safetensors that "
            "`s2lab pretrain --out DIR` writes in DIR"
        )
    model, info = _load(name, MAE_KINDS, "reconstruct")
    bands = _model_bands(model, info)
    image = _open_input(args.input, bands, args.bands, args.dn_offset)  # (C, H, W) reflectance
    result = reconstruct_image(model, image, mask_ratio=ratio, strategy=strategy, seed=args.seed,
                               batch_size=args.batch_size, device=args.device, progress=not args.quiet, out=out)
    scores = dict(result.scores)
    mine = scores.pop("model")
    best = min(scores, key=lambda b: scores[b]["mse"]) if scores else None
    return {
        **mine,
        "space": "reflectance (MSE over the removed values, PSNR with peak 1.0, angle between reflectance spectra)",
        "baselines": scores,
        **({"best_baseline": best, "model_to_best": mine["mse"] / scores[best]["mse"]} if best else {}),
        "model": name,
        "kind": info["kind"],
        "input": args.input,
        "bands": list(bands),
        "shape": [int(n) for n in image.shape],
        **{k: v for k, v in result.summary().items() if k != "scores"},
        **_assumed_note(image),
    }


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``reconstruct`` subcommand and its options."""
    p = sub.add_parser("reconstruct", help="mask a scene and reconstruct it with a masked autoencoder")
    p.add_argument("input", help="a multi-band GeoTIFF, a folder of one-GeoTIFF-per-band files, or 'embedded'")
    p.add_argument("-o", "--output", required=True, help="the GeoTIFF to write (float32 reflectance)")
    p.add_argument("--model", help="a shipped model name or a checkpoint path (default: the shipped S2MAE)")
    p.add_argument("--mask-ratio", type=float, default=0.75, help="share of tokens removed, in [0, 1)")
    p.add_argument("--strategy", default="random", help=f"masking strategy: {', '.join(STRATEGIES)} (default random)")
    p.add_argument("--seed", type=int, default=0, help="seeds the mask (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="tiles per forward pass (default 16)")
    p.add_argument("--bands", help=BANDS_HELP)
    _dn_offset(p)
    _common(p)
    p.set_defaults(run=run_reconstruct)
