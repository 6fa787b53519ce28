#!/usr/bin/env bash
# The peer benchmark's virtual environment: the public MAE and SatMAE code as anyone runs it today.
#
#   scripts/peer_env.sh            # makes .venv-peers/ (ignored by git) beside the checkout
#   .venv-peers/bin/python -m s2lab bench --only peers
#
# pip picks current, unpinned torch, torchvision and timm (timm 1.0 runs the peers' attention through the same
# fused kernel as s2lab; the peers pin timm 0.3.2, which does not import on torch 2). s2lab goes in editable with
# --no-deps, then its own light runtime dependencies, so that both s2lab and the peers run under that one torch.
# The peers' files are not installed: the bench reads them from S2LAB_PEERS_DIR (see s2lab/bench/peer_code.py).
# Set PEER_VENV to put the environment elsewhere; run it again to update.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PEER_VENV:-.venv-peers}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip
$PIP install --quiet torch torchvision timm
$PIP install --quiet --no-deps -e .
# s2lab's runtime dependencies other than torch, read from pyproject.toml so that they are written once.
mapfile -t DEPS < <("$VENV/bin/python" - <<'PY'
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if not d.replace(" ", "").startswith("torch")))
PY
)
$PIP install --quiet "${DEPS[@]}"
"$VENV/bin/python" -c "import torch, timm, s2lab; print('peer env:', '$VENV', 'torch', torch.__version__, 'timm', timm.__version__)"
