"""Training recipes shared by the notebooks and ``s2lab pretrain`` / ``s2lab finetune``.

Each task returns the pair ``(batch_fn, loss_fn)`` that ``s2lab.train.fit`` takes:

    batch_fn(step, generator) -> batch        drawn on the CPU from ``generator`` only (no global seed)
    loss_fn(model, batch, generator) -> loss  calls the model's forward (so DistributedDataParallel syncs)

- ``pretrain_task``: random (B, C, img_size, img_size) tiles of real images, masked and reconstructed; a mask-ratio
  range draws one ratio per batch (``mask_ratios``: the slider's 0.05 steps), so a model serves every ratio of the
  app's slider.
- ``change_task``: aligned random windows of (before, after, label) pairs, flipped and turned identically.
- ``classification_task`` / ``multilabel_task``: random batches of (x, y) tensors, flipped and turned.
- ``fusion_task``: aligned random windows of Sentinel-2 / Sentinel-1 pairs (FUS-MAE), flipped and turned together.

The images pretraining draws from are gathered by ``s2lab.data.pretraining.pretraining_images``.
Shapes follow the glossary: B batch, C bands, H, W pixels, K classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import xarray as xr
from torch.nn import functional as F

from s2lab.data.pretraining import refuse_nodata
from s2lab.data.tiles import random_tiles, to_tensor
from s2lab.masking import STRATEGIES
from s2lab.radiometry import NORMALIZATIONS, match_radiometry

BatchFn = Callable[[int, torch.Generator], Any]
LossFn = Callable[[torch.nn.Module, Any, torch.Generator], torch.Tensor]
MaskRatio = float | tuple[float, float]


# -- shared helpers ------------------------------------------------------------------------------------------------
def _check_batch_size(batch_size: int) -> None:
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def _check_sizes(images: Sequence[torch.Tensor], img_size: int, batch_size: int, what: str) -> None:
    _check_batch_size(batch_size)
    if not images:
        raise ValueError(f"no {what} to draw from")
    small = [tuple(x.shape[-2:]) for x in images if min(x.shape[-2:]) < img_size]
    if small:
        raise ValueError(f"{len(small)} {what} are smaller than img_size {img_size} (e.g. {small[0]}); "
                         "use a smaller --img-size")


def _flip_turn(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each window of x (B, C, S, S) turned by a random multiple of 90 degrees and maybe mirrored.

    Everything stacked in one window's channels (both dates and the label) moves together.
    """
    turns = torch.randint(0, 4, (x.shape[0],), generator=generator).tolist()
    flips = torch.randint(0, 2, (x.shape[0],), generator=generator).tolist()
    return torch.stack([torch.rot90(w, k, dims=(-2, -1)).flip(-1) if f else torch.rot90(w, k, dims=(-2, -1))
                        for w, k, f in zip(x, turns, flips)])


RATIO_STEP = 0.05  # a mask-ratio range is drawn from ratios about this far apart: the app's slider step


def mask_ratios(mask_ratio: MaskRatio) -> tuple[float, ...]:
    """The ratios a task draws from: ``(r,)`` for one ratio r; for a range (lo, hi), evenly spaced ratios from lo to
    hi about ``RATIO_STEP`` apart (0.6 to 0.9: 0.6, 0.65, ..., 0.9).

    A few ratios give a few token counts K, so each step's shapes repeat. A CPU that trains in bf16 (oneDNN's AMX
    kernels, ``s2lab.device.training_bf16``) builds and keeps kernels for every shape it meets: with a ratio drawn
    uniformly every step met a new K. Measured on notebook 05's 64 px stage (80 steps, bf16, Intel Xeon with AMX,
    December 2026): the process peaked at 1.64 GB with a uniform draw, 0.93 GB with these ratios (float32: 0.83 GB).

    Raises:
        ValueError: not 0 <= lo <= hi < 1.
    """
    lo, hi = (mask_ratio, mask_ratio) if isinstance(mask_ratio, (int, float)) else tuple(mask_ratio)
    if not 0.0 <= lo <= hi < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), or a range lo <= hi within it; got {mask_ratio}")
    count = 1 if hi == lo else max(2, round((hi - lo) / RATIO_STEP) + 1)
    return tuple(round(float(r), 6) for r in torch.linspace(lo, hi, count, dtype=torch.float64))


def _draw_ratio(ratios: tuple[float, ...], generator: torch.Generator) -> float:
    """One of ``ratios``, uniformly, from ``generator``. A single ratio still takes the one draw it always took, so a
    fixed ratio's masks (and the shipped checkpoints' recipe) stay what they were before ranges were drawn on a grid."""
    if len(ratios) == 1:
        torch.rand((), generator=generator)
        return ratios[0]
    return ratios[int(torch.randint(len(ratios), (), generator=generator))]


# -- the tasks -----------------------------------------------------------------------------------------------------
def pretrain_task(
    model: torch.nn.Module,
    images: Sequence[torch.Tensor],
    *,
    batch_size: int,
    img_size: int,
    mask_ratio: MaskRatio = 0.75,
    strategy: str = "random",
    augment: bool = False,
) -> tuple[BatchFn, LossFn]:
    """Masked-image pretraining on random tiles.

    Args:
        model: a ``MaskedAutoencoder`` (S2MAE or SatMAE) taking C bands.
        images: (C, H, W) reflectance tensors, e.g. from ``pretraining_images``.
        batch_size: B tiles per step.
        img_size: tile side in pixels, a multiple of the model's patch size.
        mask_ratio: the share of tokens removed, or (lo, hi) to draw one ratio per batch from ``mask_ratios``.
        strategy: a key of ``s2lab.masking.STRATEGIES``.
        augment: turn each tile by a random multiple of 90 degrees and maybe mirror it.

    Returns:
        ``batch_fn -> x (B, C, img_size, img_size)`` and ``loss_fn -> the masked-token MSE``.
    """
    ratios = mask_ratios(mask_ratio)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown masking strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    _check_sizes(images, img_size, batch_size, "images")
    for i, image in enumerate(images):  # scanned once here, not on every step
        refuse_nodata(image, f"pretraining image {i}")

    def batch_fn(step: int, generator: torch.Generator) -> torch.Tensor:
        tiles = random_tiles(images, img_size, batch_size, generator, check_nan=False)  # (B, C, img_size, img_size)
        return _flip_turn(tiles, generator) if augment else tiles

    def loss_fn(model: torch.nn.Module, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return model(x, mask_ratio=_draw_ratio(ratios, generator), strategy=strategy, generator=generator).loss

    return batch_fn, loss_fn


def _pair_tensors(pair: Any) -> torch.Tensor:
    """A ``ChangePair`` or a (before, after, label) tuple -> one (2C + 1, H, W) stack (label last, 0/1)."""
    before, after, label = pair
    if label is None:
        raise ValueError("a change pair without a label cannot be trained on")
    before, after = to_tensor(before), to_tensor(after)
    label = torch.as_tensor(label.values if isinstance(label, xr.DataArray) else label, dtype=torch.float32)
    if before.shape != after.shape or label.shape != before.shape[-2:]:
        raise ValueError(f"before {tuple(before.shape)}, after {tuple(after.shape)} and label {tuple(label.shape)} "
                         "must share one (H, W) grid")
    return torch.cat([before, after, label[None]])


def change_task(
    model: torch.nn.Module,
    pairs: Sequence[Any],
    *,
    batch_size: int,
    img_size: int,
    pos_weight: float | None = None,
    normalize: str | None = None,
) -> tuple[BatchFn, LossFn]:
    """Change detection on random aligned windows of bitemporal pairs.

    Args:
        model: a ``ChangeDetector``.
        pairs: ``s2lab.data.pairs.ChangePair`` (OSCD cities, planted changes) or (before (C, H, W), after (C, H, W),
            label (H, W) in {0, 1}) tuples of tensors or DataArrays.
        batch_size: B windows per step.
        img_size: window side in pixels, a multiple of the encoder's patch size.
        pos_weight: weight of the change class in the binary cross-entropy (change is rare); None = 1.
        normalize: None, or a key of ``s2lab.radiometry.NORMALIZATIONS``: each whole pair's after image is first
            matched to its before image (no labels used); ``change_map`` must then get the same setting.

    Returns:
        ``batch_fn -> (before (B, C, S, S), after (B, C, S, S), label (B, S, S))`` with S = img_size, the same
        random flip and turn applied to all three; ``loss_fn -> binary cross-entropy of the change logits``.
    """
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown radiometric normalisation {normalize!r}; expected None or one of "
                         f"{', '.join(NORMALIZATIONS)}")
    stacks = [refuse_nodata(_pair_tensors(p), f"change pair {i}") for i, p in enumerate(pairs)]  # (2C + 1, H, W) each
    _check_sizes(stacks, img_size, batch_size, "change pairs")
    C = (stacks[0].shape[0] - 1) // 2
    if normalize is not None:
        stacks = [torch.cat([s[:C], match_radiometry(s[:C], s[C:2 * C], normalize), s[2 * C:]]) for s in stacks]
    weight = None if pos_weight is None else torch.tensor(float(pos_weight))

    def batch_fn(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = random_tiles(stacks, img_size, batch_size, generator, check_nan=False)  # (B, 2C + 1, S, S)
        w = _flip_turn(w, generator)
        return w[:, :C], w[:, C:2 * C], w[:, 2 * C]

    def loss_fn(model: torch.nn.Module, batch: tuple, generator: torch.Generator) -> torch.Tensor:
        before, after, label = batch
        logits = model(before, after)  # (B, S, S)
        pw = None if weight is None else weight.to(logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), label, pos_weight=pw)

    return batch_fn, loss_fn


def _labelled_batch_fn(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> BatchFn:
    """Random (B, C, H, W) images of x (N, C, H, W), flipped and turned, with their targets y (N, ...)."""
    if x.ndim != 4 or len(x) != len(y):
        raise ValueError(f"expected x (N, C, H, W) and y with N rows, got {tuple(x.shape)} and {tuple(y.shape)}")
    _check_batch_size(batch_size)
    refuse_nodata(x, "the images")

    def batch_fn(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, len(x), (batch_size,), generator=generator)  # (B,)
        return _flip_turn(x[index], generator), y[index]

    return batch_fn


def classification_task(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int
) -> tuple[BatchFn, LossFn]:
    """Scene classification (one class per image, e.g. EuroSAT).

    Args:
        model: a ``SceneClassifier`` with ``multilabel=False``.
        x: (N, C, H, W) reflectance. y: (N,) int64 class indices.
        batch_size: B images per step.

    Returns:
        ``batch_fn -> (x (B, C, H, W), y (B,))`` and ``loss_fn -> cross-entropy of the logits (B, K)``.
    """

    def loss_fn(model: torch.nn.Module, batch: tuple, generator: torch.Generator) -> torch.Tensor:
        images, target = batch
        return F.cross_entropy(model(images).float(), target)

    return _labelled_batch_fn(x, y.long(), batch_size), loss_fn


def multilabel_task(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int
) -> tuple[BatchFn, LossFn]:
    """Multi-label classification (several classes per image, e.g. BigEarthNet's 19).

    Args:
        model: a ``SceneClassifier`` with ``multilabel=True``.
        x: (N, C, H, W) reflectance. y: (N, K) multi-hot targets in {0, 1}.
        batch_size: B images per step.

    Returns:
        ``batch_fn -> (x (B, C, H, W), y (B, K))`` and ``loss_fn -> binary cross-entropy of the logits (B, K)``.
    """

    def loss_fn(model: torch.nn.Module, batch: tuple, generator: torch.Generator) -> torch.Tensor:
        images, target = batch
        return F.binary_cross_entropy_with_logits(model(images).float(), target)

    return _labelled_batch_fn(x, y.float(), batch_size), loss_fn


def _fusion_tensors(pair: Any, i: int) -> tuple[torch.Tensor, int]:
    """(s2, s1) or an object with ``s2`` and ``s1`` fields -> one (C + C1, H, W) stack (S1 last) and C."""
    s2, s1 = (pair.s2, pair.s1) if hasattr(pair, "s2") else pair
    if s1 is None:
        raise ValueError(f"fusion pair {i} has no Sentinel-1 image; FUS-MAE needs both modalities")
    s2, s1 = to_tensor(s2), to_tensor(s1)
    if s2.shape[-2:] != s1.shape[-2:]:
        raise ValueError(f"fusion pair {i}: S2 {tuple(s2.shape)} and S1 {tuple(s1.shape)} must share one (H, W) grid")
    return refuse_nodata(torch.cat([s2, s1]), f"fusion pair {i}"), s2.shape[0]


def fusion_task(
    model: torch.nn.Module,
    pairs: Sequence[Any],
    *,
    batch_size: int,
    img_size: int,
    mask_ratio: MaskRatio = 0.75,
) -> tuple[BatchFn, LossFn]:
    """FUS-MAE pretraining on random aligned windows of Sentinel-2 / Sentinel-1 pairs.

    Args:
        model: a ``FUSMAE``.
        pairs: (s2 (C, H, W), s1 (C1, H, W)) tensors or DataArrays on one grid, or objects with ``s2`` and ``s1``
            fields (``s2lab.data.bigearthnet.BigEarthNetPatch``); every pair with the same C and C1.
        batch_size: B windows per step.
        img_size: window side S in pixels, a multiple of the model's patch size.
        mask_ratio: the share of tokens removed in each modality, or (lo, hi) to draw one ratio per batch from
            ``mask_ratios``.

    Returns:
        ``batch_fn -> (s2 (B, C, S, S), s1 (B, C1, S, S))``, both cut at the same place and given the same random
        flip and turn; ``loss_fn -> the FUS-MAE loss`` (masked-token MSE of S2 plus that of S1).
    """
    ratios = mask_ratios(mask_ratio)
    parts = [_fusion_tensors(p, i) for i, p in enumerate(pairs)]
    stacks = [stack for stack, _ in parts]  # (C + C1, H, W) each
    _check_sizes(stacks, img_size, batch_size, "fusion pairs")
    counts = sorted({(c, stack.shape[0] - c) for stack, c in parts})  # (C, C1) of each pair
    if len(counts) > 1:
        raise ValueError(f"fusion pairs hold different band counts (S2, S1): {counts}; expected one for all")
    C = counts[0][0]

    def batch_fn(step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        w = random_tiles(stacks, img_size, batch_size, generator, check_nan=False)  # (B, C + C1, S, S)
        w = _flip_turn(w, generator)
        return w[:, :C], w[:, C:]

    def loss_fn(model: torch.nn.Module, batch: tuple, generator: torch.Generator) -> torch.Tensor:
        s2, s1 = batch
        return model(s2, s1, mask_ratio=_draw_ratio(ratios, generator), generator=generator).loss

    return batch_fn, loss_fn
