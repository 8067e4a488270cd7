"""Sphinx configuration of the clvbayes documentation (``make docs``).

Sphinx + pydata-sphinx-theme + MyST-NB + napoleon: see ``about.md`` for why. Nothing here
executes a notebook or reaches the network: the notebooks are rendered from their
stored outputs and MathJax is served from the build (sphinx-mathjax-offline).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document this checkout's clvbayes

import clvbayes  # noqa: E402

project = "clvbayes"
author = "clvbayes developers"
copyright = "clvbayes developers, MIT licence"
release = version = clvbayes.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
]

exclude_patterns = ["_build", "_templates", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
# Words of numpy type descriptions ("ndarray, shape (customer,)") are looked up as
# Python objects; a word naming two attributes of different classes is no broken link.
suppress_warnings = ["ref.python"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# --- notebooks: rendered from their stored outputs, never executed -------------------------
nb_execution_mode = "off"
nb_merge_streams = True
# Progress-bar widgets (tqdm in Jupyter) in stored outputs are shown by their text form:
# no widget JavaScript from a CDN (the site works offline, as its browser test checks).
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# --- API reference from the numpy-style docstrings --------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = True  # a name is documented where it is defined, once
autodoc_typehints = "none"  # the docstrings give the types
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes" as fields: no second description of a member
napoleon_custom_sections = [("Class attributes", "params_style")]

# --- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"clvbayes {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
# a first visit (nothing in localStorage) would otherwise start from mode "" and log a
# console error ("Got invalid theme mode")
html_context = {"default_mode": "auto"}
html_show_sourcelink = False
html_copy_source = False


def _copy_notebooks(app) -> None:
    """``notebooks/*.ipynb`` -> ``docs/notebooks/`` (ignored by git) so Sphinx, whose
    source is this folder, renders the committed notebooks as they are."""
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    for stale in target.glob("*.ipynb"):
        if not (ROOT / "notebooks" / stale.name).exists():
            stale.unlink()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        copy = target / notebook.name
        if not copy.exists() or copy.read_bytes() != notebook.read_bytes():
            shutil.copyfile(notebook, copy)


def setup(app) -> None:
    app.connect("builder-inited", _copy_notebooks)
