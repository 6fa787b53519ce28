"""The models: S2MAE, SatMAE and FUS-MAE, and the heads that use a pretrained encoder.

``build(kind, config)`` makes any of them from the JSON config a checkpoint stores; ``BUILDERS`` maps each
``kind`` to its constructor; ``load_model(name_or_path)`` reads a shipped or saved model with them.
"""

from __future__ import annotations

from s2lab import checkpoints
from s2lab.models.fusmae import FUSMAE, FUSMAEConfig
from s2lab.models.heads import ChangeDetector, SceneClassifier
from s2lab.models.config import MAEConfig
from s2lab.models.mae import MAEOutput, MaskedAutoencoder, Reconstruction
from s2lab.models.s2mae import S2MAE, S2MAEConfig
from s2lab.models.satmae import SatMAE, SatMAEConfig

ENCODERS = {"s2mae": S2MAE, "satmae": SatMAE}


def _tuple_fields(config: dict) -> dict:
    """JSON turns tuples into lists; configs want tuples back."""
    return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
            for k, v in config.items()}


def _encoder(encoder: dict) -> MaskedAutoencoder:
    kind = encoder.get("kind")
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder kind {kind!r}; expected one of {', '.join(ENCODERS)}")
    return ENCODERS[kind](**_tuple_fields(encoder["config"]))


BUILDERS = {
    "s2mae": lambda **config: S2MAE(**_tuple_fields(config)),
    "satmae": lambda **config: SatMAE(**_tuple_fields(config)),
    "fusmae": lambda **config: FUSMAE(**_tuple_fields(config)),
    "classifier": lambda *, encoder, **config: SceneClassifier(encoder=_encoder(encoder), **config),
    "change": lambda *, encoder, **config: ChangeDetector(encoder=_encoder(encoder), **config),
}


def build(kind: str, config: dict):
    """Make a model of ``kind`` (a key of ``BUILDERS``) from its JSON config."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(BUILDERS)}")
    return BUILDERS[kind](**config)


def load_model(name_or_path) -> tuple:
    """A shipped model by name, or any s2lab checkpoint by path, built and loaded: ``(model in eval mode on the CPU,
    its JSON description)``. ``s2lab.checkpoints.load_model`` with this package's ``BUILDERS``."""
    return checkpoints.load_model(name_or_path, builders=BUILDERS)


def head_config(model) -> dict:
    """The JSON config of a head: its own arguments, with its encoder's kind and config nested."""
    return {"encoder": {"kind": model.encoder.kind, "config": model.encoder.config_dict()}, **model.config}

__all__ = [
    "BUILDERS",
    "ENCODERS",
    "FUSMAE",
    "S2MAE",
    "ChangeDetector",
    "FUSMAEConfig",
    "MAEConfig",
    "MAEOutput",
    "MaskedAutoencoder",
    "Reconstruction",
    "S2MAEConfig",
    "SatMAE",
    "SatMAEConfig",
    "SceneClassifier",
    "build",
    "head_config",
    "load_model",
]
