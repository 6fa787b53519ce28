"""Fine-tuning set-ups: a pretrained encoder, a task's head, its data and how to score it.

``s2lab finetune`` calls these, and notebooks and scripts can call them too, without the command line. Each set-up
takes the encoder to fine-tune and its C band names and returns a ``Finetune`` tuple: the model with its head, the
``(batch_fn, loss_fn)`` recipe ``s2lab.train.fit`` takes, what it trains on and an ``evaluate`` function.

- ``change_setup``: change detection on OSCD cities (the threshold chosen on the training cities, scored on the
  others) or on synthetic pairs planted in the embedded scene.
- ``classify_setup``: scene classification on EuroSAT (a seeded fifth held out) or the synthetic EuroSAT-like set.
- ``multilabel_setup``: multi-label classification trained on synthetic BigEarthNet-19-like images, scored on the
  6 real BigEarthNet patches of bigearthnet-common.

``data`` picks the images: ``"auto"`` (the real dataset when its folder is present, else synthetic), the real
dataset by name, or ``"synthetic"``; ``DATA_CHOICES`` lists them per task.
Shapes follow the glossary: B batch, C bands, H, W pixels, N images, K classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from s2lab import settings
from s2lab.classification_metrics import accuracy, mean_average_precision
from s2lab.data.bigearthnet import EMBEDDED, bigearthnet_patches, load_bigearthnet_patch
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.eurosat import eurosat_available, load_eurosat
from s2lab.data.oscd import load_oscd_city, oscd_cities
from s2lab.data.synthetic import synthetic_change_dataset, synthetic_multilabel, synthetic_scene_classification
from s2lab.data.tiles import to_tensor
from s2lab.device import pick_device
from s2lab.evaluate import change_probabilities, evaluate_blend
from s2lab.models import ChangeDetector, SceneClassifier
from s2lab.tasks import change_task, classification_task, multilabel_task
from s2lab.train import TrainConfig, fit

DATA_CHOICES = {"change": ("auto", "oscd", "synthetic"), "classify": ("auto", "eurosat", "synthetic"),
                "multilabel": ("auto", "synthetic")}


class Finetune(NamedTuple):
    """What a fine-tuning task sets up: the model, its training recipe, its data and how to score it."""

    model: torch.nn.Module  # the encoder with the task's head
    batch_fn: Callable  # s2lab.tasks recipe: (step, generator) -> batch
    loss_fn: Callable  # s2lab.tasks recipe: (model, batch, generator) -> loss
    about: dict  # what it trains on (JSON data, saved in the checkpoint's meta)
    evaluate: Callable[[torch.nn.Module], dict]  # the trained model -> its scores on held-out data


def seeded(seed: int, make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``make()`` with torch's global generator seeded for it and then restored (reproducible initial weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def split_cities(cities: Sequence[str], held_out: Sequence[str] | None,
                 kept: Sequence[str] | None) -> tuple[list, list]:
    """(training, evaluation) cities: those named, else the last quarter of ``cities`` (at least one) held out."""
    cities = list(cities)
    unknown = [c for c in [*(held_out or []), *(kept or [])] if c not in cities]
    if unknown:
        raise ValueError(f"unknown OSCD cities {', '.join(unknown)}; present: {', '.join(cities)}")
    if held_out is None:
        held_out = [c for c in cities[-max(1, len(cities) // 4):] if c not in (kept or [])]
    train = list(kept) if kept is not None else [c for c in cities if c not in held_out]
    both = sorted(set(train) & set(held_out))
    if both:
        raise ValueError(f"cities {', '.join(both)} are both trained and evaluated on; keep the two lists apart")
    if not train or not held_out:
        raise ValueError(f"need at least one training and one evaluation city, got {train} and {list(held_out)}")
    return train, list(held_out)


def predict(model: torch.nn.Module, x: torch.Tensor, device: str | None, batch: int = 64) -> torch.Tensor:
    """Logits (N, K) of images x (N, C, H, W), in batches, without gradients, on ``device``."""
    target = pick_device(device)
    model.to(target).eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch].to(target)).float().cpu() for i in range(0, len(x), batch)])


def _check_data(task: str, data: str) -> None:
    """Refuse a ``data`` choice that ``task`` does not offer (``DATA_CHOICES``)."""
    if data not in DATA_CHOICES[task]:
        raise ValueError(f"data {data!r} does not fit the {task} task; "
                         f"expected one of {', '.join(DATA_CHOICES[task])}")


def _real(task: str, data: str, dataset: str, present: bool) -> bool:
    """Whether ``task`` trains on the real ``dataset``: asked for, or ``data="auto"`` and present."""
    _check_data(task, data)
    return data == dataset or (data == "auto" and present)


def _change_data(bands: Sequence[str], *, data: str, seed: int, img_size: int, train_cities: Sequence[str] | None,
                 eval_cities: Sequence[str] | None, synthetic_count: int) -> tuple[list, list, dict]:
    """(training pairs, evaluation pairs, what they are): OSCD cities when present, else synthetic tiles.

    A pair is an ``OSCDPair`` or a (before (C, H, W), after (C, H, W), label (H, W) 0/1) tuple of tiles.
    """
    if _real("change", data, "oscd", settings.data_dir("oscd") is not None):
        unlabelled = [c for c in [*(eval_cities or []), *(train_cities or [])] if c in oscd_cities(labelled=False)]
        if unlabelled:
            raise ValueError(f"OSCD cities {', '.join(unlabelled)} have no change label (OSCD's test cities); "
                             f"labelled: {', '.join(oscd_cities(labelled=True))}")
        train, held = split_cities(oscd_cities(labelled=True), eval_cities, train_cities)

        def load(cities: Sequence[str]) -> list:
            return [load_oscd_city(c, bands=bands) for c in cities]

        return load(train), load(held), {"data": "oscd", "synthetic": False, "train_cities": train,
                                         "eval_cities": held}
    generator = torch.Generator().manual_seed(seed)
    scene, size = open_embedded_scene(bands), max(128, img_size)
    sets = [synthetic_change_dataset(count, size, rng=generator, scene=scene, split=split)
            for count, split in ((synthetic_count, "train"), (max(1, synthetic_count // 4), "eval"))]
    pairs = [list(zip(t.before, t.after, t.label)) for t in sets]
    return pairs[0], pairs[1], {"data": sets[0].description + "; scored on eval-split tiles", "synthetic": True}


def change_setup(encoder: torch.nn.Module, bands: Sequence[str], *, data: str = "auto", seed: int = 0,
                 batch_size: int = 8, img_size: int | None = None, normalize: str | None = None,
                 linear_probe: bool = False, train_cities: Sequence[str] | None = None,
                 eval_cities: Sequence[str] | None = None, synthetic_count: int = 64,
                 device: str | None = None) -> Finetune:
    """Change detection: OSCD (threshold chosen on the training cities, scored on the others) or synthetic pairs.

    Args:
        encoder: the pretrained masked autoencoder, taking (B, C, H, W) images of ``bands``.
        data: "auto", "oscd" or "synthetic".
        img_size: the side of the (B, C, img_size, img_size) training windows; default the encoder's own.
        normalize: one of ``s2lab.radiometry.NORMALIZATIONS``, a per-image radiometric normalisation of the after date
            that uses no labels, or None.
        train_cities, eval_cities: labelled OSCD cities; default: the last quarter evaluated, the rest trained on.
        synthetic_count: synthetic training pairs when OSCD is not used (a quarter as many held out).
    """
    img_size = img_size or encoder.config.img_size
    train_pairs, eval_pairs, about = _change_data(bands, data=data, seed=seed, img_size=img_size,
                                                  train_cities=train_cities, eval_cities=eval_cities,
                                                  synthetic_count=synthetic_count)
    about["normalize"] = normalize
    share = float(np.mean(np.concatenate([np.asarray(label).ravel() for _, _, label in train_pairs])))
    pos_weight = min((1 - share) / share, 10.0) if share > 0 else None  # change is rare: up-weigh it, at most 10x
    model = seeded(seed, lambda: ChangeDetector(encoder=encoder, linear_probe=linear_probe))
    batch_fn, loss_fn = change_task(model, train_pairs, batch_size=batch_size, img_size=img_size,
                                    pos_weight=pos_weight, normalize=normalize)

    def evaluate(model: torch.nn.Module, train_probabilities: Sequence[np.ndarray] | None = None) -> dict:
        # The model alone and its default for detect-change: alone, or blended with CVA and smoothed where that
        # scores better on the training cities (weight, smoothing and thresholds chosen there, on the model's own
        # maps or on out-of-fold ones: change_out_of_fold; the eval cities only scored).
        blend = evaluate_blend(model, train_pairs, eval_pairs, eval_names=about.get("eval_cities"),
                               normalize=normalize, device=device, train_probabilities=train_probabilities)
        scores = blend["alone"]
        chosen = blend["weight"] > 0 or blend["sigma"] > 0
        return {"threshold": scores["threshold"], "pos_weight": pos_weight,
                "scored_on": "eval cities" if not about["synthetic"] else "eval-split synthetic tiles",
                **scores["pooled"], "per_city": scores["per_pair"] if not about["synthetic"] else None,
                "method": "model + cva" if chosen else "model",
                "blend": {"cva_weight": blend["weight"], "sigma": blend["sigma"], "threshold": blend["threshold"],
                          "chosen_on": blend["chosen_on"], "train_f1": blend["train_f1"],
                          "sigma_f1": blend["sigma_f1"], **blend["pooled"],
                          "per_city": blend["per_pair"] if not about["synthetic"] else None}}

    return Finetune(model, batch_fn, loss_fn, about, evaluate)


def change_out_of_fold(make_encoder: Callable[[], torch.nn.Module], bands: Sequence[str], *,
                       train_cities: Sequence[str], config: TrainConfig, normalize: str | None = None,
                       **setup) -> list[np.ndarray]:
    """Out-of-fold change maps of the training cities (cross-fitting, leave one city out): each city mapped by a
    model fine-tuned with the same recipe on the other training cities only.

    ``evaluate_blend`` chooses the CVA weight, the smoothing and the threshold on these instead of the final model's
    maps of cities it was fitted to, which flatter it. Costs one fine-tuning per city.

    Args:
        make_encoder: a fresh copy of the pretrained encoder per call (fine-tuning changes it in place).
        bands: its C band names. train_cities: the labelled OSCD cities (at least 2).
        config: the fine-tuning run (``s2lab.train.TrainConfig``), as for the final model.
        normalize, setup: as ``change_setup`` (batch_size, img_size, seed, linear_probe, device).

    Returns:
        One (H, W) change probability map per city, in the order of ``train_cities``.
    """
    if len(train_cities) < 2:
        raise ValueError(f"cross-fitting needs at least 2 training cities, got {list(train_cities)}")
    maps = []
    for city in train_cities:
        others = [c for c in train_cities if c != city]
        model, batch_fn, loss_fn, _, _ = change_setup(make_encoder(), bands, data="oscd", train_cities=others,
                                                      eval_cities=[city], normalize=normalize, **setup)
        fit(model, loss_fn=loss_fn, batch_fn=batch_fn, config=config)
        pair = load_oscd_city(city, bands=bands)
        maps += change_probabilities(model, [(pair.before, pair.after, pair.label)], normalize=normalize,
                                     device=config.device)
    return maps


def classify_setup(encoder: torch.nn.Module, bands: Sequence[str], *, data: str = "auto", seed: int = 0,
                   batch_size: int = 8, img_size: int | None = None, linear_probe: bool = False,
                   limit_per_class: int = 200, synthetic_count: int = 64, device: str | None = None) -> Finetune:
    """Scene classification: EuroSAT (a seeded fifth held out) or the synthetic EuroSAT-like set (eval split).

    Args:
        encoder: the pretrained masked autoencoder, taking (B, C, H, W) images of ``bands``.
        data: "auto", "eurosat" or "synthetic".
        img_size: the side of the synthetic (N, C, img_size, img_size) images; default the encoder's own.
        limit_per_class: EuroSAT images read per class.
        synthetic_count: synthetic training images per class when EuroSAT is not used (a quarter as many held out).
    """
    img_size = img_size or encoder.config.img_size
    generator = torch.Generator().manual_seed(seed)
    if _real("classify", data, "eurosat", eurosat_available()):
        x, y, classes = load_eurosat(bands=bands, limit_per_class=limit_per_class, generator=generator)
        order = torch.randperm(len(x), generator=generator)
        held, kept = order[: max(1, len(x) // 5)], order[max(1, len(x) // 5):]  # a seeded fifth held out
        train, test = (x[kept], y[kept]), (x[held], y[held])
        about = {"data": "eurosat", "synthetic": False}
    else:
        sets = [synthetic_scene_classification(count, size=img_size, rng=generator, bands=bands, split=split)
                for count, split in ((synthetic_count, "train"), (max(1, synthetic_count // 4), "eval"))]
        train, test, classes = (sets[0].x, sets[0].y), (sets[1].x, sets[1].y), sets[0].classes
        about = {"data": sets[0].description + "; scored on eval-split images", "synthetic": True}
    model = seeded(seed, lambda: SceneClassifier(encoder=encoder, num_classes=len(classes), linear_probe=linear_probe))
    batch_fn, loss_fn = classification_task(model, *train, batch_size=batch_size)

    def evaluate(model: torch.nn.Module) -> dict:
        return {"accuracy": accuracy(predict(model, test[0], device), test[1]), "eval_images": len(test[0]),
                "classes": list(classes)}

    return Finetune(model, batch_fn, loss_fn, about, evaluate)


def multilabel_setup(encoder: torch.nn.Module, bands: Sequence[str], *, data: str = "auto", seed: int = 0,
                     batch_size: int = 8, img_size: int | None = None, linear_probe: bool = False,
                     synthetic_count: int = 64, device: str | None = None) -> Finetune:
    """Multi-label classification: synthetic BigEarthNet-19-like training, scored on the 6 real patches.

    Args:
        encoder: the pretrained masked autoencoder, taking (B, C, H, W) images of ``bands``.
        data: "auto" or "synthetic" (both train on synthetic images: no BigEarthNet training set is read).
        img_size: the side of the synthetic (N, C, img_size, img_size) images; default the encoder's own.
        synthetic_count: synthetic training images.
    """
    _check_data("multilabel", data)
    img_size = img_size or encoder.config.img_size
    generator = torch.Generator().manual_seed(seed)
    images = synthetic_multilabel(synthetic_count, size=img_size, rng=generator, bands=bands)
    x, y, classes = images
    about = {"data": images.description + "; scored on the 6 real BigEarthNet patches of bigearthnet-common",
             "synthetic": True}
    model = seeded(seed, lambda: SceneClassifier(encoder=encoder, num_classes=len(classes), multilabel=True,
                                                 linear_probe=linear_probe))
    batch_fn, loss_fn = multilabel_task(model, x, y, batch_size=batch_size)

    def evaluate(model: torch.nn.Module) -> dict:
        patches = [load_bigearthnet_patch(n, root=EMBEDDED, bands=bands) for n in bigearthnet_patches(EMBEDDED)]
        real_x = torch.stack([to_tensor(p.s2) for p in patches])  # (6, C, 120, 120)
        real_y = torch.stack([torch.as_tensor(p.multi_hot) for p in patches])  # (6, 19)
        scores = predict(model, real_x, device)  # (6, 19) logits
        return {"scored_on": f"{len(patches)} real BigEarthNet patches (bigearthnet-common)",
                "map_macro": mean_average_precision(scores, real_y, skip_empty=True),
                "map_micro": mean_average_precision(scores, real_y, average="micro"),
                "classes": list(classes)}

    return Finetune(model, batch_fn, loss_fn, about, evaluate)


SETUPS: dict[str, Callable[..., Finetune]] = {"change": change_setup, "classify": classify_setup,
                                              "multilabel": multilabel_setup}
