# Sphinx configuration of the student's book (`make book`; fusionlib/study/book.py assembles the sources
# in book/_src from the executed notebooks and builds them with this file).
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "fusionlib: four IR–VIS fusion papers, derived and reproduced"
author = "the fusionlib team"
extensions = [
    "myst_nb",                   # notebooks with their stored outputs
    "sphinx.ext.autodoc",        # the package's API page
    "sphinx.ext.viewcode",       # ... with links to the source of every function
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",    # MathJax 3 vendored from PyPI: equations render with no network
]
nb_execution_mode = "off"        # never run a notebook: the book shows executed copies
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
html_theme = "sphinx_book_theme"
html_title = "fusionlib — the book"
html_theme_options = {"show_navbar_depth": 1, "use_download_button": False, "use_fullscreen_button": False}
html_last_updated_fmt = None
autodoc_member_order = "bysource"
autodoc_mock_imports = ["open_clip", "transformers", "sentence_transformers"]
suppress_warnings = ["myst.header", "misc.highlighting_failure", "autodoc", "ref.python"]
exclude_patterns = ["_build"]


def _plain_docstring(app, what, name, obj, options, lines):
    """The package's docstrings are plain text (|x| is an absolute value, not an rST substitution): show them verbatim."""
    if lines:
        lines[:] = ["::", ""] + ["    " + line for line in lines] + [""]


def setup(app):
    app.connect("autodoc-process-docstring", _plain_docstring)
