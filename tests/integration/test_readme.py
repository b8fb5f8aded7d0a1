"""The code in README.md and in the documentation runs, and its numbers hold.

The README's ```python blocks and the ``.. code-block:: python`` directives of
the user guide and the landing page run in order, each file in one namespace
and in a scratch directory, as a reader would paste them. A statement whose
comment claims a value (``# ~0.98``) is evaluated and the claim checked; an
array printed by a bare expression must not hold NaN; a code block marked
``:class: not-run`` (hardware or launchers the test machine lacks) is skipped.
"""

import ast
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

REPO = Path(__file__).resolve().parents[2]
# "~0.98": within 0.015, about a point and a half of accuracy either way.
CLAIM = re.compile(r"#.*?~\s*(\d+(?:\.\d+)?)")
CLAIM_TOLERANCE = 0.015


def markdown_python_blocks(text):
    """Bodies of the ```python fenced blocks of a Markdown text."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def rst_python_blocks(text):
    """Bodies of the ``.. code-block:: python`` directives to run, in order."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != ".. code-block:: python":
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip()) + 3
        i += 1
        options = []
        while i < len(lines) and lines[i].strip().startswith(":"):
            options.append(lines[i].strip())
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) >= indent):
            body.append(lines[i])
            i += 1
        if ":class: not-run" not in options:
            blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


def run_blocks(blocks, namespace, nonfinite=None):
    """Run ``blocks`` statement by statement; return (source, claimed, value) of each claim.

    A float array shown by a bare expression with a NaN or an infinity fails
    the run, or is appended to the list ``nonfinite`` when one is given.
    """
    claims = []
    for block in blocks:
        for node in ast.parse(block).body:
            source = ast.get_source_segment(block, node)
            line = block.splitlines()[node.end_lineno - 1]
            if isinstance(node, ast.Expr):
                value = eval(compile(ast.Expression(node.value), "<docs>", "eval"), namespace)
                for array in (value if isinstance(value, tuple) else (value,)):
                    if (isinstance(array, np.ndarray) and array.dtype.kind == "f"
                            and not np.isfinite(array).all()):
                        if nonfinite is None:
                            raise AssertionError(f"{source} gave {value!r}")
                        nonfinite.append((source, value))
            else:
                exec(compile(ast.Module([node], []), "<docs>", "exec"), namespace)
                value = None
            match = CLAIM.search(line)
            if match:
                assert isinstance(node, ast.Expr), f"a claim on a statement: {line!r}"
                claims.append((source, float(match.group(1)), value))
    return claims


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_markdown_and_rst_extraction():
    markdown = "text\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = a  # ~1\n```\n"
    assert markdown_python_blocks(markdown) == ["a = 1\n", "b = a  # ~1\n"]
    rst = textwrap.dedent("""
        .. code-block:: python

           a = 1

           b = a
        after

        .. code-block:: python
           :class: not-run

           gpu()

        .. code-block:: python

           c = b
        """)
    assert rst_python_blocks(rst) == ["a = 1\n\nb = a\n", "c = b\n"]
    claims = run_blocks(["x = 0.5\nx + 0.48  # ~0.98\n"], {})
    assert claims == [("x + 0.48", 0.98, 0.98)]
    with pytest.raises(AssertionError, match="gave"):
        run_blocks(["import numpy as np\nnp.array([1.0, np.nan])\n"], {})


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """The README's blocks run once: (text, claims, namespace, non-finite outputs)."""
    import matplotlib

    matplotlib.use("Agg")
    text = (REPO / "README.md").read_text()
    namespace, nonfinite = {}, []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("readme"))
        claims = run_blocks(markdown_python_blocks(text), namespace, nonfinite)
    import matplotlib.pyplot as plt

    plt.close("all")
    return text, claims, namespace, nonfinite


@pytest.mark.slow
def test_readme_code_runs_and_its_numbers_hold(readme_run):
    text, claims, namespace, _ = readme_run
    assert len(markdown_python_blocks(text)) == 3
    # Every "~number" of the README is a checked claim of a code block.
    assert len(claims) == len(re.findall(r"~\s*\d", text)) == 3
    for source, claimed, value in claims:
        assert math.isclose(value, claimed, abs_tol=CLAIM_TOLERANCE), (source, value)

    rac = namespace["rac"]
    # "17**8 amplitudes per class is beyond exact enumeration (2**22)".
    assert rac.local_dim_ ** rac.sequence_shape_[0] == 17**8 > 2**22
    # "(alpha=1 would raise a ValueError)".
    with pytest.raises(ValueError, match="alpha"):
        rac.entanglement_entropy(2, alpha=1)
    # "the last 2 rows vs the rest": a rank bound within M**|A|.
    assert 1 <= rac.schmidt_rank_bound(2) <= 17**2


@pytest.mark.slow
def test_readme_outputs_are_finite(readme_run):
    _, _, namespace, nonfinite = readme_run
    assert nonfinite == []
    entropies, std = namespace["rac"].entanglement_entropy(
        2, alpha=2, n_samples=2000, random_state=0, return_std=True)
    assert entropies.shape == std.shape == (10,)
    # The swap estimator is unbiased in the purity, not in the entropy: an
    # estimate may fall below 0 (documented), but not by more than its errors.
    assert (std > 0).all() and (entropies >= -3 * std).all(), (entropies, std)


@pytest.mark.slow
def test_user_guide_code_runs(scratch):
    blocks = rst_python_blocks((REPO / "docs" / "user_guide.rst").read_text())
    assert len(blocks) >= 2
    namespace = {}
    run_blocks(blocks, namespace)
    accuracy = namespace["accuracy"]
    # "several points below the default's": at least three.
    assert accuracy[False] - accuracy[True] >= 0.03, accuracy
    frame = namespace["frame"]
    assert set(frame["partition"]) == {"left_right", "up_down"}
    assert frame["epoch"].max() == 5


def test_landing_page_quick_start_runs(scratch, capsys):
    blocks = rst_python_blocks((REPO / "docs" / "index.rst").read_text())
    assert len(blocks) == 1
    # "a 6-line quick start": it has to fit on the landing page.
    assert len([line for line in blocks[0].splitlines() if line.strip()]) <= 6
    namespace = {}
    run_blocks(blocks, namespace)
    printed = capsys.readouterr().out
    entropies = namespace["clf"].entanglement_entropy(alpha=1)
    assert entropies.shape == (10,) and np.isfinite(entropies).all()
    assert printed.strip() == str(entropies.round(2))
