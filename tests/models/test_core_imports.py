"""The model core reads without the data layer: importing it loads neither ``s2lab.data`` nor rasterio.

xarray is not asserted absent: ``s2lab.sensors`` imports it at module level for ``response_functions``.
"""

import json
import subprocess
import sys

CORE = ("s2lab.tokenize", "s2lab.masking", "s2lab.pos_embed", "s2lab.blocks", "s2lab.scaling", "s2lab.sensors")
GEO = ("s2lab.data", "rasterio")

CHILD = f"""
import importlib, json, pkgutil, sys
import s2lab.models
names = [f"s2lab.models.{{m.name}}" for m in pkgutil.iter_modules(s2lab.models.__path__)] + {list(CORE)!r}
for name in names:
    importlib.import_module(name)
print(json.dumps({{"imported": names, "loaded": sorted(m for m in {list(GEO)!r} if m in sys.modules)}}))
"""


def test_models_and_core_import_no_data_layer():
    """Every module of s2lab.models and the core, in a fresh interpreter, leaves s2lab.data and rasterio unloaded."""
    run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"s2lab.models.mae", "s2lab.models.fusmae", "s2lab.models.heads"} <= set(out["imported"])
    assert out["loaded"] == [], f"importing the model core loaded {out['loaded']}"
