"""Test configuration: point s2lab at the project's shared real data when it sits beside the checkout."""

import os
from pathlib import Path

_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "S2LAB_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["S2LAB_DATA_DIR"] = str(_SHARED_DATA)
