"""Sphinx configuration of the trio_modbus documentation (``nox -s docs`` builds it)."""

from __future__ import annotations

import trio_modbus

project = "trio_modbus"
author = "the trio_modbus developers"
copyright = "2026, the trio_modbus developers"
release = trio_modbus.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]

# Every reference must resolve: a broken one is a warning, and the build treats warnings as
# errors (nox -s docs runs sphinx-build -W).
nitpicky = True

# MyST: ```{directive} fences, ::: fences, definition lists, and anchors for the headings
# that the Markdown pages link to (pymodbus-compat.md links into pymodbus-differences.md).
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc + napoleon: the docstrings are Google style, with two sections of our own.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = ["Cancellation"]

# The inventories of the projects we link into are files in the repository, so that the
# build needs no network (docs/_inventories/README.md says how each was made); the links
# still point at the projects' public documentation.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", "_inventories/python.inv"),
    "trio": ("https://trio.readthedocs.io/en/stable/", "_inventories/trio.inv"),
    "pymodbus": ("https://pymodbus.readthedocs.io/en/latest/", "_inventories/pymodbus.inv"),
}

html_theme = "furo"
html_title = f"trio_modbus {release}"

# napoleon renders the Attributes sections as fields, so that a dataclass's fields are not
# described twice (once there, once as the members autodoc finds).
napoleon_use_ivar = True

# Private names (a module or a name starting with "_") have no page; the signatures that
# mention them (a private base class, a private type variable) are not broken references.
nitpick_ignore_regex = [
    (r"py:.*", r"trio_modbus(\.\w+)*\._\w+(\.\w+)*"),
    # cryptography (the security extra) publishes no inventory we keep here.
    (r"py:class", r"(cryptography\.)?x509\.\w+"),
]
