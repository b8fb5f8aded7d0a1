"""Sphinx configuration for skqcnn."""


import skqcnn

project = "skqcnn"
author = "the skqcnn developers"
copyright = "2026, the skqcnn developers"
release = version = skqcnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # A copy of MathJax 3 served from _static, so that formulas typeset on a
    # machine without network access (the default loads MathJax from a CDN).
    "sphinx-mathjax-offline",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
templates_path = ["_templates"]
autodoc_default_options = {"members": True}
numpydoc_show_inherited_class_members = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    # Only the figures and printed output of an example belong on its page:
    # the repr of the last expression of a block (a Legend, a list of Line2D)
    # is noise.
    "capture_repr": (),
    # "# sphinx_gallery_thumbnail_number = 2" configures the page; it is not
    # code for the reader.
    "remove_config_comments": True,
    # The execution-times page loads jQuery and DataTables from CDNs, and its
    # timings change with every build; the pages must work offline.
    "write_computation_times": False,
}

html_theme = "alabaster"
html_static_path = ["_static"]
html_css_files = ["skqcnn.css"]
html_theme_options = {
    # Wider text column than alabaster's 940 px, so that code, printed output
    # and tables fit; narrower screens scroll them instead of clipping.
    "page_width": "1100px",
    "body_max_width": "none",
    # alabaster links Google Fonts by default; the system fonts render offline.
    "font_family": "-apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif",
    "head_font_family": "-apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif",
    "code_font_family": "'DejaVu Sans Mono', Menlo, Consolas, monospace",
    "code_font_size": "0.85em",
}
exclude_patterns = ["_build"]

# Pages written on other branches, listed in the index's toctree. Until a
# page exists its entry is dropped, so that the build passes either way; once
# all of them are merged this list and the hook below can go.
def setup(app):
    # sphinx-mathjax-offline selects MathJax's CHTML output, whose web fonts a
    # browser refuses to load into a page opened from file://; the SVG output
    # draws glyphs as paths and needs no font. This runs after the extensions.
    app.config.mathjax_path = "mathjax/tex-svg.js"
