"""Sphinx configuration of the flask-apikeys documentation.

Build it with ``scripts/docs`` (``sphinx-build -W``: every warning is an error).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Document the package next to these docs (a checkout or an unpacked sdist), not
# whichever flask_apikeys happens to be installed.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import flask_apikeys  # noqa: E402

project = "flask-apikeys"
author = "The flask-apikeys developers"
copyright = "2026, The flask-apikeys developers"
release = flask_apikeys.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx_click",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: anchors for headings (``pages.md#configuration``), ::: fences, definition lists.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# autodoc: document the public names as ``flask_apikeys.X``, in source order.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
add_module_names = False

html_theme = "furo"
html_title = f"flask-apikeys {release}"
html_static_path = ["_static"]
html_theme_options = {
    "source_repository": "https://github.com/flask-apikeys/flask-apikeys/",
    "source_branch": "main",
    "source_directory": "docs/",
}
