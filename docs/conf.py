"""Sphinx configuration for the RePy2 book.

Build (offline, warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Three things are generated at build time, so no page can drift from the code:

- the reading guide's tables, from the ``Erlang:`` lines of the docstrings
  (``repg2.tools.xref``), by the local extension ``_ext/repg2_docs.py``;
- the message pictures of "How a join travels" (``_static/figures/*.svg``),
  by ``_scripts/make_figures.py``;
- the notebooks section, from the notebooks of ``../notebooks`` (rendered,
  never executed).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the repg2 of this checkout, installed or not
sys.path.insert(0, str(DOCS / "_ext"))

# -- Project -------------------------------------------------------------------------

project = "RePy2"
author = "the RePy2 authors"
copyright = "the RePy2 authors; Erlang/OTP is Copyright Ericsson AB, Apache-2.0"
try:
    release = metadata.version("repg2")
except metadata.PackageNotFoundError:  # not installed: read from the source tree
    release = "0.1.0"
version = release

# -- Extensions ------------------------------------------------------------------------

extensions = [
    "myst_nb",  # MyST Markdown pages and notebooks (brings myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "repg2_docs",  # _ext/repg2_docs.py: reading guide, Erlang: fields, figures, notebooks
]

root_doc = "index"
exclude_patterns = [
    "_build",
    "_ext",
    "_scripts",
    "_generated",  # pieces included by other pages, not pages themselves
    "jupyter_execute",
    ".jupyter_cache",
    "**.ipynb_checkpoints",
]
templates_path: list[str] = []

# -- MyST and notebooks -------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist", "attrs_inline", "attrs_block"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # notebooks are executed by the test suite, never by the docs build
nb_merge_streams = True

# -- autodoc and napoleon --------------------------------------------------------------------

autodoc_default_options = {
    "members": True,
    # Private definitions that translate Erlang (gen_server:send_nodes/4 is
    # _do_multi_call) are documented, because the reading guide links to them;
    # _ext/repg2_docs.py skips the private helpers that exist only for Python.
    "private-members": True,
    "ignore-module-all": True,  # __all__ is the public API; the book documents the whole translation
    "member-order": "bysource",  # the Erlang file's order, which the modules keep
    "show-inheritance": True,
}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = False  # True re-parses every function's source: a third of the build time
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False  # "How it works\n------" is a heading, not a NumPy section
napoleon_use_rtype = False
napoleon_use_ivar = True

# -- viewcode ------------------------------------------------------------------------------

viewcode_line_numbers = True
toc_object_entries = False  # "On this page" lists sections, not the hundreds of documented functions
viewcode_enable_epub = False
# Follow nothing: a property has no __module__, and following it would drop its [source] anchor.
viewcode_follow_imported_members = False

# -- HTML -----------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"RePy2 {release}"
html_static_path = ["_static"]
html_css_files = ["repg2.css"]
html_theme_options = {
    "source_repository": "",
    "navigation_with_keys": True,
}
html_show_sourcelink = False  # viewcode is the source link that matters here
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# intersphinx is not used: the build must work offline. Python's own names
# (Hashable, Callable...) are shown without links.
