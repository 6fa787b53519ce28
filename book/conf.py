"""Sphinx configuration of the s2lab book: the notebooks executed and rendered with their outputs.

Build it with ``make book``, which runs ``python -m sphinx -c book -n -W --keep-going . book/_build/html``: the
source folder is the repository root, so the notebooks are read in place from ``notebooks/`` and the book's own
pages from ``book/``; nothing is copied. Everything here works offline: the theme (alabaster) ships with Sphinx and
no page loads anything from the internet.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parent


def _inputs_key() -> str:
    """A short hash of the library's files (code and weights) and of the S2LAB_* environment variables."""
    digest = hashlib.sha256()
    for path in sorted((BOOK.parent / "s2lab").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(BOOK.parent).as_posix().encode())
            digest.update(path.read_bytes())
    for name in sorted(k for k in os.environ if k.startswith("S2LAB_")):
        digest.update(f"{name}={os.environ[name]}".encode())
    return digest.hexdigest()[:16]

project = "s2lab"
author = "the s2lab authors"
copyright = "the s2lab authors, MIT licence"  # noqa: A001 (Sphinx's name)

extensions = ["myst_nb"]

# The repository root is the source folder; only the book's pages, the notebooks and the lab's measured results
# (docs/results.md, which the notebooks link to) are documents.
root_doc = "book/index"
include_patterns = ["book/**", "notebooks/*.ipynb", "docs/results.md"]
exclude_patterns = ["book/_build/**", "**/.ipynb_checkpoints/**"]

# MyST: $...$ maths as the notebooks write it, ::: fences and definition lists in the book's pages.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Execution: every notebook runs headless at build time, into a cache keyed by its code cells, so a rebuild only
# re-runs the notebooks whose code changed. The cache sits in a folder named by everything else a notebook's outputs
# depend on (the library, its shipped weights, the S2LAB_* data variables), so that a change there runs them all again.
# `-D nb_execution_mode=force` runs every notebook whatever the cache holds (CI does). A cell error is a warning that fails the build (-W), with its traceback
# in the log; the build goes on to run the other notebooks (--keep-going) and reports every failure at the end.
nb_execution_mode = "cache"
nb_execution_cache_path = str(BOOK / "_build" / ".jupyter_cache" / _inputs_key())
nb_execution_timeout = 900  # seconds per cell; the slowest cells train for a minute on a CPU
# nbclient, which runs the notebooks, now and then reads a cell's reply only at that timeout when the cell wrote into an
# ipywidgets Output (every interactive figure does): 15 minutes of an idle kernel per such cell (jupyter/nbclient#312).
# s2lab/nbclient_wakeup.py says why, and makes the client wait for each reply in slices of a tenth of a second.
nb_execution_raise_on_error = False
nb_execution_show_tb = True
# Markdown that a cell displays (the learning path's table) is read as GitHub-flavoured Markdown: tables included.
nb_render_markdown_format = "gfm"
# Widgets are shown by their static output: no widget JavaScript is loaded, so the page shows no sliders that a
# reader could move without effect, and a widget view is drawn as what its Output widgets hold (the figure at the
# widgets' starting values; book/widget_outputs.py).
nb_ipywidgets_js = {}
sys.path.insert(0, str(BOOK))  # the book's own helpers
import widget_outputs  # noqa: E402

from s2lab import nbclient_wakeup  # noqa: E402

nbclient_wakeup.install()
widget_outputs.install()
# HoloViews and Panel outputs carry, beside their HTML, mime types of their own (vnd.holoviews_load / _exec) that
# only a live notebook reads. Not warning about those is safe: an output with no renderable mime type at all still
# fails the build (mystnb.mime_priority). The bokeh figures of those outputs load BokehJS from its CDN when the page
# is viewed, so they need a network connection to draw; every matplotlib figure is an image in the site.
suppress_warnings = ["mystnb.unknown_mime_type"]

# Figures inline in the executed notebooks: ipykernel chooses its inline backend only when MPLBACKEND is unset, and
# CI and the tests set MPLBACKEND=Agg, which would leave every figure out of the book.
os.environ.pop("MPLBACKEND", None)

html_theme = "alabaster"
html_title = "s2lab: spatial-spectral masked autoencoders, hands on"
html_theme_options = {
    "description": "A teaching lab for masked autoencoders on Sentinel-2 imagery",
    "page_width": "1200px",  # a window narrower than this gets alabaster's small-screen layout; long code lines scroll
    "sidebar_width": "260px",
    "fixed_sidebar": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
# The site's front page, book/index.html, is also reached from the top of the built folder.
html_extra_path = ["root"]
html_show_sourcelink = False
html_copy_source = False  # the notebooks are in the repository; the site need not carry their stripped copies


def _always_redraw(app, env, added, changed, removed) -> list[str]:
    """The learning path and the instructors' page are computed from the notebooks (and the instructors' page from
    the checks' tried answers and the measured runs): read (and run) them on every build."""
    return ["book/learning_path", "book/instructors"]


def setup(app) -> None:
    app.connect("env-get-outdated", _always_redraw)
