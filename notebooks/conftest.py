"""``pytest --nbmake notebooks``: every cell's reply is read as soon as it comes.

nbmake runs the notebooks with nbclient, which now and then reads a cell's reply only when the cell's timeout runs
out, after the cell drew into an ipywidgets ``Output`` as every interactive figure does (jupyter/nbclient#312):
a notebook then waits minutes with its kernel idle. ``book/nbclient_wakeup.py`` says why and mends it for the book;
the same mend is installed here for nbmake, which runs nbclient in this pytest process.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book"))
import nbclient_wakeup  # noqa: E402

nbclient_wakeup.install()
