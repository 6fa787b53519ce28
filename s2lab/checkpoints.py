"""Checkpoints are data, never code: tensors in safetensors, everything else in JSON.

A saved model is two files side by side:

- ``<stem>.safetensors``: the ``state_dict``, every tensor contiguous (tensors that share memory, such as tied
  weights, are stored once each under their own name).
- ``<stem>.json``: ``{"format_version", "kind", "config", "meta", "tensors": {name: [shape, dtype]}, "sha256"}``;
  ``kind`` names the builder that rebuilds the model from ``config`` (``load_model``), ``meta`` says what it was
  trained on, ``sha256`` is the checksum of the safetensors file, checked on every load.

Nothing here unpickles: ``torch.load`` and ``pickle`` are never called. A pickle-based file (``.pt``, ``.pth``,
``.ckpt``, ``.bin``, ``.pkl``, or any file that starts like a pickle or a zip archive, which is what ``torch.save``
writes) is refused with a message, because unpickling a file can run any code in it.

A training state (for resuming a run) is ``last.safetensors`` + ``last.json`` in the run's folder: the model's
tensors under ``model.<name>``, the optimizer's and scheduler's tensors under ``optimizer.<...>`` and
``scheduler.<...>``, and the rest (step, losses, settings, param_groups) as JSON, both in ``last.json`` and in the
safetensors header, so the tensors file alone is complete. Every file is written atomically (a temporary file in
the same folder, then a rename), so a run killed at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from s2lab.files import atomic_path

FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")
WEIGHTS_FOLDER = "weights"  # inside the s2lab package: the models that ship with it
TRAINING_STATE = "last"  # <out_dir>/last.safetensors + last.json
_HEADER_KEY = "s2lab"  # the safetensors header entry that holds a training state's JSON record
_SHOWN = 20  # at most this many names per list in an error message


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, does not match its checksum, or does not fit the model."""


def _pickle_refusal(path: Path) -> CheckpointError:
    return CheckpointError(
        f"{path} is a pickle-based file (torch.save / pickle); s2lab does not load it, because unpickling can run "
        "any code the file holds. Checkpoints must be safetensors: <name>.safetensors with its <name>.json, as "
        "written by s2lab.checkpoints.save_model. To convert a file you trust: "
        "save_model(stem, model_with_state_loaded, kind=..., config=...)."
    )


def _looks_pickled(head: bytes) -> bool:
    """True for the first bytes of a pickle (protocol 2 to 5) or a zip archive (torch.save's default)."""
    return head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or head[:4] == b"PK\x03\x04"


def _check_safetensors_bytes(data: bytes, path: Path) -> None:
    """Refuse pickles and anything else that does not start with a safetensors header."""
    if _looks_pickled(data[:8]):
        raise _pickle_refusal(path)
    if len(data) < 10 or data[8:9] != b"{" or int.from_bytes(data[:8], "little") > len(data) - 8:
        raise CheckpointError(f"{path} is not a safetensors file: it does not start with a safetensors header")


def _header_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` entry of a safetensors file's JSON header."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _json_bytes(obj: object, what: str) -> bytes:
    try:
        return json.dumps(obj, indent=1, allow_nan=True).encode()
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{what} must be JSON data (dicts, lists, str, numbers, bool, None): {err}") from err


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper, or the model itself."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def _file_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors; a tensor sharing memory with an earlier one is copied."""
    out, seen = {}, set()
    for name, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen:
            tensor = tensor.clone()
        seen.add(storage)
        out[name] = tensor
    return out


def _listing(tensors: Mapping[str, torch.Tensor]) -> dict[str, list]:
    """{name: [shape, dtype]} as JSON data, e.g. {"head.weight": [[10, 64], "float32"]}."""
    return {name: [list(t.shape), str(t.dtype).removeprefix("torch.")] for name, t in tensors.items()}


def _sidecar(path: Path, suffix: str) -> Path:
    """``path`` with ``suffix`` appended to its stem (``run/model`` -> ``run/model.json``)."""
    return path.with_name(path.name + suffix)


def save_model(
    path_stem: str | os.PathLike, model: nn.Module, *, kind: str, config: dict, meta: dict | None = None
) -> Path:
    """Save a model's weights as ``<stem>.safetensors`` and its description as ``<stem>.json``.

    Args:
        path_stem: the path without suffix (a trailing ``.safetensors`` or ``.json`` is dropped); folders are made.
        model: the module (a DistributedDataParallel wrapper is unwrapped).
        kind: the key of the builder that rebuilds it in ``load_model`` (e.g. ``"s2mae"``).
        config: the keyword arguments of that builder, as JSON data.
        meta: what it was trained on and how, as JSON data (shown by ``shipped_models``).

    Returns:
        The path of the ``.safetensors`` file.
    """
    if not isinstance(kind, str) or not kind:
        raise CheckpointError(f"kind must be a non-empty string naming the model's builder, got {kind!r}")
    stem = Path(path_stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    tensors = _file_tensors(_unwrap(model).state_dict())
    info = {"format_version": FORMAT_VERSION, "kind": kind, "config": config, "meta": meta or {}}
    text = _json_bytes(info, f"config and meta of {stem.name}")
    data = safetensors.torch.save(tensors, metadata={"format": "pt"})
    info = {**json.loads(text), "tensors": _listing(tensors), "sha256": hashlib.sha256(data).hexdigest()}
    tensors_path = _sidecar(stem, ".safetensors")
    _atomic_write(tensors_path, data)
    _atomic_write(_sidecar(stem, ".json"), _json_bytes(info, stem.name))
    return tensors_path


def _checkpoint_files(path: Path) -> tuple[Path, Path]:
    """(``<stem>.safetensors``, ``<stem>.json``) for a stem, either file, or refuse a pickle-based path."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise _pickle_refusal(path)
    if suffix in (".safetensors", ".json"):
        stem = path.with_suffix("")
    elif path.is_file():
        with path.open("rb") as file:
            if _looks_pickled(file.read(8)):
                raise _pickle_refusal(path)
        raise CheckpointError(f"{path} is not a checkpoint: expected <name>.safetensors with <name>.json beside it")
    elif path.is_dir() and not _sidecar(path, ".safetensors").is_file():
        raise CheckpointError(
            f"{path} is a folder; expected a checkpoint file <name>.safetensors (a training run's folder holds "
            "model.safetensors)"
        )
    else:
        stem = path
    tensors_path, json_path = _sidecar(stem, ".safetensors"), _sidecar(stem, ".json")
    if not tensors_path.is_file():
        pickled = [p for p in (_sidecar(stem, s) for s in PICKLE_SUFFIXES) if p.is_file()]
        if pickled:
            raise _pickle_refusal(pickled[0])
        raise CheckpointError(f"no checkpoint at {tensors_path}")
    if not json_path.is_file():
        raise CheckpointError(f"{tensors_path} has no {json_path.name} beside it (it holds kind, config and sha256)")
    return tensors_path, json_path


def _read_checkpoint(tensors_path: Path, json_path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    data = tensors_path.read_bytes()
    _check_safetensors_bytes(data, tensors_path)
    try:
        info = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{json_path} is not valid JSON: {err}") from err
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{json_path} has format_version {version!r}; this s2lab reads {FORMAT_VERSION}")
    found = hashlib.sha256(data).hexdigest()
    if found != info.get("sha256"):
        raise CheckpointError(
            f"{tensors_path} does not match the sha256 recorded in {json_path.name} (recorded "
            f"{info.get('sha256')}, found {found}): the file was changed or damaged after it was written"
        )
    return safetensors.torch.load(data), info


def load_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by ``save_model``, checking its sha256.

    Args:
        path: the stem, the ``.safetensors`` file or the ``.json`` file.

    Returns:
        (state_dict of CPU tensors, the JSON description: kind, config, meta, tensors, sha256).

    Raises:
        CheckpointError: a pickle-based file (refused without being read past its first bytes), a file that is
            not safetensors, a missing JSON, or a checksum that does not match.
    """
    return _read_checkpoint(*_checkpoint_files(Path(path).expanduser()))


def _names(items: Iterable[str]) -> str:
    items = list(items)
    more = f" ... and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy ``state_dict`` into ``model``, refusing any mismatch (never a silent ``strict=False``).

    Raises:
        CheckpointError: listing the missing keys, the unexpected keys and (name, expected shape, found shape)
            for every tensor whose shape differs.
    """
    target = _unwrap(model)
    expected = target.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = sorted(k for k in state_dict if k not in expected)
    shapes = [
        f"({k}, expected {tuple(expected[k].shape)}, found {tuple(state_dict[k].shape)})"
        for k in expected
        if k in state_dict and tuple(expected[k].shape) != tuple(state_dict[k].shape)
    ]
    if missing or unexpected or shapes:
        name = type(target).__name__
        lines = [f"checkpoint does not fit {name}: {len(missing)} missing, {len(unexpected)} unexpected, "]
        lines[0] += f"{len(shapes)} of a different shape"
        if missing:
            lines.append(f"  missing keys (in the model, not in the checkpoint): {_names(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys (in the checkpoint, not in the model): {_names(unexpected)}")
        if shapes:
            lines.append(f"  different shapes (name, expected, found): {_names(shapes)}")
        raise CheckpointError("\n".join(lines))
    target.load_state_dict(state_dict, strict=True)


def _weights_root() -> resources.abc.Traversable:
    return resources.files("s2lab") / WEIGHTS_FOLDER


def shipped_models() -> list[dict]:
    """The models that ship inside the package (``s2lab/weights/``), by name.

    Returns:
        ``[{"name", "kind", "config", "meta"}, ...]`` sorted by name; ``meta`` says what each was trained on.
        Empty when none ship.
    """
    root = _weights_root()
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        if entry.name.endswith(".json") and not entry.name.startswith("."):
            info = json.loads(entry.read_text())
            name = entry.name.removesuffix(".json")
            found.append(
                {"name": name, "kind": info.get("kind"), "config": info.get("config"), "meta": info.get("meta")}
            )
    return sorted(found, key=lambda m: m["name"])


def _is_name(name_or_path: str | os.PathLike) -> bool:
    text = os.fspath(name_or_path)
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return not any(s in text for s in separators) and Path(text).suffix == ""


def load_model(
    name_or_path: str | os.PathLike, *, builders: Mapping[str, Callable[..., nn.Module]]
) -> tuple[nn.Module, dict]:
    """Build a model from a checkpoint and load its weights.

    Args:
        name_or_path: a shipped model's name (no path separator, no suffix; see ``shipped_models``) or a path
            accepted by ``load_state``.
        builders: ``kind -> constructor`` taking the checkpoint's ``config`` as keyword arguments
            (``s2lab.models.BUILDERS``).

    Returns:
        (the model in eval mode on the CPU, the checkpoint's JSON description).
    """
    if _is_name(name_or_path):
        name = os.fspath(name_or_path)
        available = [m["name"] for m in shipped_models()]
        if name not in available:
            raise CheckpointError(
                f"no shipped model named {name!r}; available: {', '.join(available) or 'none'} "
                "(or pass the path of a .safetensors checkpoint)"
            )
        root = _weights_root()
        with (
            resources.as_file(root / f"{name}.safetensors") as tensors_path,
            resources.as_file(root / f"{name}.json") as json_path,
        ):
            state, info = _read_checkpoint(Path(tensors_path), Path(json_path))
    else:
        state, info = load_state(name_or_path)
    kind, config = info.get("kind"), _scaling_of_old_checkpoints(info.get("kind"), info.get("config") or {})
    if kind not in builders:
        raise CheckpointError(f"checkpoint kind {kind!r} has no builder; known kinds: {', '.join(builders) or 'none'}")
    try:
        model = builders[kind](**config)
    except TypeError as err:
        raise CheckpointError(f"cannot build {kind!r} from the checkpoint's config {config}: {err}") from err
    load_into(model, state)
    return model.eval(), info


MAE_KINDS = ("s2mae", "satmae")  # the kinds whose config holds an input scaling (s2lab.scaling)


def _scaling_of_old_checkpoints(kind: str | None, config: dict) -> dict:
    """Checkpoints written before ``s2lab.scaling`` existed were trained on per-window min-max scaling: their
    config (or their encoder's, for a head) without ``scaling`` means ``"window"``."""
    if kind in MAE_KINDS and "scaling" not in config:
        return {**config, "scaling": "window"}
    encoder = config.get("encoder")
    if isinstance(encoder, dict) and encoder.get("kind") in MAE_KINDS and "scaling" not in encoder.get("config", {}):
        return {**config, "encoder": {**encoder, "config": {**encoder["config"], "scaling": "window"}}}
    return config


def _encode(obj: object, prefix: str, tensors: dict[str, torch.Tensor]) -> object:
    """JSON data for ``obj``; every tensor goes to ``tensors[prefix...]`` and leaves ``{"__tensor__": key}``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, int) for k in obj):
            return {"__int_keys__": {str(k): _encode(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}}
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"cannot store {type(obj).__name__} at {prefix} without pickle")


def _decode(obj: object, tensors: Mapping[str, torch.Tensor]) -> object:
    """The inverse of ``_encode``."""
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if obj.keys() == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if obj.keys() == {"__tuple__"}:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        if obj.keys() == {"__int_keys__"}:
            return {int(k): _decode(v, tensors) for k, v in obj["__int_keys__"].items()}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    return obj


def has_training_state(out_dir: str | os.PathLike) -> bool:
    """True when ``out_dir`` holds a training state (``last.safetensors``)."""
    return _sidecar(Path(out_dir) / TRAINING_STATE, ".safetensors").is_file()


def save_training_state(
    out_dir: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    step: int,
    config: object,
    model_config: dict | None,
    losses: Iterable[float] = (),
) -> Path:
    """Write everything needed to resume a run at ``step`` to ``out_dir/last.safetensors`` + ``last.json``.

    Args:
        out_dir: the run's folder.
        model: the model (unwrapped if wrapped in DistributedDataParallel).
        optimizer: its state (AdamW's ``exp_avg``, ``exp_avg_sq``, ``step``) is stored as tensors,
            its ``param_groups`` as JSON.
        scheduler: the learning-rate scheduler, or None.
        step: optimizer steps done; a resumed run continues at this step.
        config: the training settings, a dataclass or a dict of JSON data.
        model_config: the model's constructor arguments, JSON data.
        losses: the loss of every step done, kept so a resumed run reports the whole curve.

    Returns:
        The path of ``last.json``.
    """
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in _unwrap(model).state_dict().items()}
    record = {
        "format_version": FORMAT_VERSION,
        "kind": "training_state",
        "step": int(step),
        "train_config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config,
        "model_config": model_config,
        "optimizer": _encode(optimizer.state_dict(), "optimizer", tensors),
        "scheduler": _encode(scheduler.state_dict(), "scheduler", tensors) if scheduler is not None else None,
        "losses": [float(v) for v in losses],
    }
    text = _json_bytes(record, "training state").decode()
    tensors = _file_tensors(tensors)
    data = safetensors.torch.save(tensors, metadata={"format": "pt", _HEADER_KEY: text})
    stem = Path(out_dir) / TRAINING_STATE
    for stale in Path(out_dir).glob(f".{TRAINING_STATE}.*.tmp"):  # left by a run killed while writing
        stale.unlink(missing_ok=True)
    _atomic_write(_sidecar(stem, ".safetensors"), data)
    info = {**json.loads(text), "tensors": _listing(tensors), "sha256": hashlib.sha256(data).hexdigest()}
    json_path = _sidecar(stem, ".json")
    _atomic_write(json_path, _json_bytes(info, "training state"))
    return json_path


def load_training_state(
    out_dir: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> dict:
    """Load ``out_dir/last.*`` into ``model`` (and ``optimizer``, ``scheduler`` when given).

    ``last.json`` is checked against the safetensors file's sha256. If a run was killed between writing the two
    files, ``last.json`` is one checkpoint behind; then the record in the safetensors header (written with the
    tensors, in one atomic rename) is used, with a warning.

    Returns:
        The JSON record: ``step`` (steps done), ``losses``, ``train_config``, ``model_config``, ...

    Raises:
        CheckpointError: no training state in ``out_dir``, a checksum that does not match, or a model that
            does not fit.
    """
    stem = Path(out_dir) / TRAINING_STATE
    tensors_path, json_path = _sidecar(stem, ".safetensors"), _sidecar(stem, ".json")
    if not tensors_path.is_file():
        raise CheckpointError(f"{out_dir} holds no training state (no {tensors_path.name})")
    data = tensors_path.read_bytes()
    _check_safetensors_bytes(data, tensors_path)
    header = _header_metadata(data)
    if _HEADER_KEY not in header:
        raise CheckpointError(f"{tensors_path} is not an s2lab training state (its header has no {_HEADER_KEY!r})")
    record = json.loads(header[_HEADER_KEY])
    saved = json.loads(json_path.read_text()) if json_path.is_file() else None
    if saved is not None and {k: v for k, v in saved.items() if k not in ("tensors", "sha256")} == record:
        found = hashlib.sha256(data).hexdigest()
        if found != saved.get("sha256"):
            raise CheckpointError(
                f"{tensors_path} does not match the sha256 recorded in {json_path.name} (recorded "
                f"{saved.get('sha256')}, found {found}): the file was changed or damaged after it was written"
            )
    else:
        warnings.warn(
            f"{json_path} is missing or belongs to an earlier checkpoint (the run was stopped between writing "
            f"the two files); resuming from {tensors_path.name}'s own record, step {record['step']}",
            stacklevel=2,
        )
    tensors = safetensors.torch.load(data)
    load_into(model, {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        optimizer.load_state_dict(_decode(record["optimizer"], tensors))
    if scheduler is not None and record.get("scheduler") is not None:
        scheduler.load_state_dict(_decode(record["scheduler"], tensors))
    return record
