"""No measured number is copied by hand into the documentation's prose.

A number that a run produced (an accuracy, an entropy, a correlation) goes
stale as soon as the code, the seed or the machine changes, and then the page
contradicts its own output. So the prose of the gallery examples (the module
docstring and the ``# %%`` text blocks) and of the ``.rst`` pages must not
state such numbers: an example prints them, and the text refers to the printed
output, or asserts the claim on the computed values so that the build fails
when the run stops supporting it.

Scanning for numbers, rather than asserting each claim, catches the claim that
nobody thought to check. The scan flags decimal fractions and percentages in
prose. Integers are left alone: they are parameters and structural facts
(``40 epochs``, ``16x16``, ``2**22``), not measurements. Text inside inline
literals, math, code blocks and code is left alone too: that is code or
notation, and the code runs. The few decimals that are not measurements
(version numbers) are listed in ``ALLOWED`` with the reason.
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
EXAMPLES = REPO / "examples"

# (file name, number): why it is not a measured value.
ALLOWED = {
    ("install.rst", "3.10"): "the minimum Python version",
    ("changelog.rst", "0.1.0"): "a release number",
}
# Pages that record measurements rather than explain: each figure there sits
# beside the command that reproduces it (a benchmark or a slow test), and the
# page says when and how it was measured.
RECORDS = {
    "monte_carlo.rst": "the validation battery and benchmarks/bench_monte_carlo.py",
    "convac.rst": "benchmarks/bench_convac.py and bench_convac_entanglement.py",
    "gpu.rst": "benchmarks/gpu_checks.sh and tests/estimators/test_gpu.py",
}
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)+%?|(?<![\w.])\d+%")
INLINE_CODE = re.compile(r"``.*?``|:\w+:`.*?`|`[^`]*`_?")


def example_prose(path):
    """The text blocks of a sphinx-gallery script: docstring and comments."""
    source = path.read_text()
    docstring = re.match(r'\s*"""(.*?)"""', source, flags=re.S)
    lines = docstring.group(1).splitlines() if docstring else []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith(("# %%", "# sphinx_gallery_")):
            lines.append(stripped.lstrip("#"))
    return lines


def rst_prose(path):
    """Lines of an ``.rst`` page outside code blocks, math blocks and comments."""
    lines = []
    skip_indent = None
    for line in path.read_text().splitlines():
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not line.strip() or indent > skip_indent:
                continue
            skip_indent = None
        stripped = line.strip()
        if re.match(r"\.\. (code-block|code|math|literalinclude|highlight|raw)::", stripped) \
                or (stripped.startswith("..") and "::" not in stripped):
            skip_indent = indent
            continue
        if stripped.endswith("::"):
            # A literal block follows.
            lines.append(stripped[:-2])
            skip_indent = indent
            continue
        lines.append(line)
    return lines


def hand_written_numbers(name, lines):
    found = []
    for number, line in ((m.group(0), line) for line in lines
                         for m in NUMBER.finditer(INLINE_CODE.sub(" ", line))):
        if (name, number.lstrip("+-")) not in ALLOWED:
            found.append(f"{name}: {number!r} in {line.strip()!r}")
    return found


PAGES = sorted(p for p in DOCS.glob("*.rst"))
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_scanner_finds_numbers_in_prose_only(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(
        "Accuracy 0.87-0.89, a 10% gain, ``lr=0.01`` and :math:`0.5`.\n\n"
        ".. code-block:: python\n\n   clf.score(X)  # 0.98\n\nAfter::\n\n    x = 0.3\n\n"
        "Epoch 40 of 16x16 images.\n"
    )
    assert [entry.split(" in ")[0] for entry in hand_written_numbers(
        "page.rst", rst_prose(page))] == [
        "page.rst: '0.87'", "page.rst: '0.89'", "page.rst: '10%'"]
    script = tmp_path / "plot_x.py"
    script.write_text('"""\nTitle\n=====\n\nIt reaches 0.98.\n"""\n'
                      "# %%\n# r = -0.42 here\nx = 0.5  # 0.7\n")
    assert len(hand_written_numbers("plot_x.py", example_prose(script))) == 2


@pytest.mark.parametrize("path", [
    path for path in PAGES + SCRIPTS if path.name not in RECORDS
], ids=lambda p: p.name)
def test_no_hand_copied_numbers(path):
    # Pages listed in RECORDS are skipped here, and checked below to say how
    # their figures were measured.
    lines = rst_prose(path) if path.suffix == ".rst" else example_prose(path)
    assert hand_written_numbers(path.name, lines) == []


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_record_pages_name_their_commands(name):
    text = (DOCS / name).read_text()
    assert "benchmarks/" in text and "tests/" in text, (
        f"{name} holds measured figures: it must name the benchmark and the test "
        "that reproduce them."
    )
