"""The public MAE and SatMAE code, found, patched in memory and loaded as it runs today.

The peers are facebookresearch/mae ``models_mae.py`` (with its ``util/pos_embed.py``) and sustainlab-group/SatMAE
``models_mae_group_channels.py`` (with its own ``util/pos_embed.py``), read unmodified from the folder
``$S2LAB_PEERS_DIR`` (default: ``shared/peers`` in the folder that holds the checkout, where CI puts it), laid out as
``mae/models_mae.py``, ``mae/util/pos_embed.py``, ``satmae/models_mae_group_channels.py`` and
``satmae/util/pos_embed.py``. They were written for timm 0.3.2, which does not import on torch 2; on a current timm
they need the smallest set of patches in ``PATCHES``, applied in memory (nothing is copied into s2lab). Each patch
names the text it replaces and how often that text must occur; a file that differs stops with ``PeerPatchError``.
Loading needs timm; ``skip_reason`` says why it cannot run here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import torch

PEERS_DIR_ENV = "S2LAB_PEERS_DIR"
PEER_FILES = {  # peer -> (model file, position-embedding file), relative to the peers folder
    "mae": ("mae/models_mae.py", "mae/util/pos_embed.py"),
    "satmae": ("satmae/models_mae_group_channels.py", "satmae/util/pos_embed.py"),
}
PEER_CLASSES = {"mae": "MaskedAutoencoderViT", "satmae": "MaskedAutoencoderGroupChannelViT"}


class PeerPatchError(RuntimeError):
    """A peer file does not contain a patch's text exactly as often as expected: it is not the file the patches
    were written for."""


@dataclass(frozen=True)
class Patch:
    """Replace ``old`` by ``new`` in ``file`` (relative to the peers folder), which must hold ``old`` ``count``
    times."""

    file: str
    old: str
    new: str
    count: int
    why: str


_QK = "Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, qk_scale=None, norm_layer=norm_layer)"
_QK_DEC = ("Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, qk_scale=None, "
           "norm_layer=norm_layer)")
_QK_WHY = "current timm's Block has no qk_scale argument (TypeError); None was its default anyway"
_FLOAT_OLD = "omega = np.arange(embed_dim // 2, dtype=np.float)"
_FLOAT_WHY = "numpy 1.24 removed np.float (AttributeError when the sine-cosine position tables are built)"

PATCHES = (
    Patch("mae/models_mae.py", _QK, _QK.replace("qk_scale=None, ", ""), 1, _QK_WHY),
    Patch("mae/models_mae.py", _QK_DEC, _QK_DEC.replace("qk_scale=None, ", ""), 1, _QK_WHY),
    Patch("mae/models_mae.py", "imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))",
          "imgs.reshape(shape=(imgs.shape[0], imgs.shape[1], h, p, w, p))", 1,
          "patchify builds the loss target for 3 channels and fails with 10 bands; decoder_pred already outputs "
          "p**2 * in_chans values (unpatchify is not used in training and is left alone)"),
    Patch("mae/models_mae.py", "x = x.reshape(shape=(imgs.shape[0], h * w, p**2 * 3))",
          "x = x.reshape(shape=(imgs.shape[0], h * w, p**2 * imgs.shape[1]))", 1,
          "the second reshape of patchify, for the same reason"),
    Patch("mae/util/pos_embed.py", _FLOAT_OLD, _FLOAT_OLD.replace("np.float)", "np.float64)"), 1, _FLOAT_WHY),
    Patch("satmae/models_mae_group_channels.py", _QK, _QK.replace("qk_scale=None, ", ""), 1, _QK_WHY),
    Patch("satmae/models_mae_group_channels.py", _QK_DEC, _QK_DEC.replace("qk_scale=None, ", ""), 1, _QK_WHY),
    Patch("satmae/util/pos_embed.py", _FLOAT_OLD, _FLOAT_OLD.replace("np.float)", "np.float64)"), 1,
          _FLOAT_WHY + "; the torch variant further down is not used and is left alone"),
)


def peers_dir() -> Path:
    """``$S2LAB_PEERS_DIR``, else ``shared/peers`` in the folder that holds the checkout."""
    if os.environ.get(PEERS_DIR_ENV):
        return Path(os.environ[PEERS_DIR_ENV]).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "peers"


def patched_source(folder: Path, file: str) -> str:
    """The text of ``folder / file`` with its ``PATCHES`` applied.

    Raises:
        PeerPatchError: a patch's text occurs another number of times than it should.
    """
    text = (folder / file).read_text()
    for patch in (p for p in PATCHES if p.file == file):
        found = text.count(patch.old)
        if found != patch.count:
            raise PeerPatchError(
                f"{folder / file}: expected {patch.count} occurrence(s) of {patch.old!r} to patch ({patch.why}), "
                f"found {found}; these patches were written for facebookresearch/mae at efb2a80 and "
                "sustainlab-group/SatMAE at e31c11f")
        text = text.replace(patch.old, patch.new)
    return text


def _module(name: str, source: str, filename: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def load_peer(name: str, folder: Path | None = None) -> type[torch.nn.Module]:
    """The patched model class of peer ``name`` ("mae" or "satmae"), executed from its files in ``folder``.

    Each peer imports ``util.pos_embed``: its own copy is put in ``sys.modules`` while its model file runs, and
    taken out again, so that the two peers' ``util`` packages do not meet.
    """
    folder = peers_dir() if folder is None else Path(folder)
    model_file, pos_file = PEER_FILES[name]
    util = types.ModuleType("util")
    util.__path__ = []
    pos = _module("util.pos_embed", patched_source(folder, pos_file), str(folder / pos_file))
    util.pos_embed = pos
    saved = {key: sys.modules.get(key) for key in ("util", "util.pos_embed")}
    sys.modules.update({"util": util, "util.pos_embed": pos})
    try:
        module = _module(f"s2lab_peer_{name}", patched_source(folder, model_file), str(folder / model_file))
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    return getattr(module, PEER_CLASSES[name])


def skip_reason(folder: Path | None = None) -> str | None:
    """Why the peer part cannot run here (no timm, no peer files), or None when it can."""
    folder = peers_dir() if folder is None else Path(folder)
    if importlib.util.find_spec("timm") is None:
        return ("timm is not installed: the peer part runs in the environment that scripts/peer_env.sh makes "
                "(.venv-peers/bin/python -m s2lab bench --only peers)")
    missing = [f for files in PEER_FILES.values() for f in files if not (folder / f).is_file()]
    if missing:
        return (f"the peers' files are not in {folder} (missing {', '.join(missing)}); set {PEERS_DIR_ENV} to a "
                "folder holding facebookresearch/mae and sustainlab-group/SatMAE as mae/ and satmae/")
    return None
