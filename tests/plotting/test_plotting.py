"""Tests of skqcnn.plotting: the data drawn, input checks, optional matplotlib."""

import importlib.util
import math
import subprocess
import sys

import numpy as np
import pytest

from skqcnn.plotting import (
    plot_entropy_history,
    plot_entropy_vs_loss,
    plot_rank_vs_bound,
    plot_schmidt_spectra,
)

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
if HAVE_MATPLOTLIB:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="needs matplotlib")


def entropy_of(epoch, label, partition="left_right"):
    """A distinct, known entropy per cell, so a mixed-up cell shows."""
    shift = 0.0 if partition == "left_right" else 10.0
    return shift + 0.1 * epoch + label**2 + 0.01 * label * epoch


def make_history(epochs=(1, 2, 3, 4), classes=(0, 1, 2), partitions=("left_right",),
                 valid=True):
    return [
        {"epoch": epoch, "partition": partition, "class": label,
         "entropy": entropy_of(epoch, label, partition),
         "train_loss": 2.0 / epoch,
         "valid_loss": 3.0 / epoch if valid else float("nan")}
        for epoch in epochs for partition in partitions for label in classes
    ]


class FakeEstimator:
    """Stands in for an estimator fitted with or without tracking."""

    def __init__(self, history=None):
        if history is not None:
            self.entanglement_history_ = history

    def fit(self, X, y):
        return self


@pytest.fixture
def ax():
    if not HAVE_MATPLOTLIB:
        pytest.skip("needs matplotlib")
    # A bare Figure: no pyplot state to clean up.
    return Figure().subplots()


# --- plot_entropy_history ---------------------------------------------------


@needs_matplotlib
def test_history_lines_are_class_entropies_and_their_mean(ax):
    history = make_history()
    rng = np.random.default_rng(0)
    shuffled = [history[i] for i in rng.permutation(len(history))]
    out = plot_entropy_history(shuffled, ax=ax)
    assert out is ax
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["0", "1", "2", "mean"]
    epochs = np.array([1, 2, 3, 4])
    expected = np.array([[entropy_of(e, c) for c in (0, 1, 2)] for e in epochs])
    for j, line in enumerate(lines[:3]):
        np.testing.assert_array_equal(line.get_xdata(), epochs)
        np.testing.assert_allclose(line.get_ydata(), expected[:, j])
    np.testing.assert_allclose(lines[3].get_ydata(), expected.mean(axis=1))
    assert lines[3].get_linewidth() > lines[0].get_linewidth()
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "entanglement entropy (nats)"


@needs_matplotlib
def test_history_legend_outside_the_axes_and_unit(ax):
    # Eleven entries inside the Axes would hide the curves: the legend's left
    # edge is right of the Axes' right edge.
    plot_entropy_history(make_history(), unit="bits", ax=ax)
    assert ax.get_ylabel() == "entanglement entropy (bits)"
    canvas = FigureCanvasAgg(ax.figure)
    renderer = canvas.get_renderer()
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert legend_box.x0 > ax.get_window_extent(renderer).x1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "mean"]


@needs_matplotlib
def test_history_partition_and_class_selection(ax):
    history = make_history(partitions=("left_right", "up_down"))
    plot_entropy_history(history, partition="up_down", classes=[2, 0], ax=ax)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["2", "0", "mean"]
    expected = np.array([[entropy_of(e, c, "up_down") for c in (2, 0)] for e in (1, 2, 3, 4)])
    np.testing.assert_allclose(lines[0].get_ydata(), expected[:, 0])
    np.testing.assert_allclose(lines[2].get_ydata(), expected.mean(axis=1))
    assert "up_down" in ax.get_title()


@needs_matplotlib
def test_history_single_label_and_string_classes(ax):
    history = [dict(row, **{"class": ("cat", "dog")[row["class"]]})
               for row in make_history(classes=(0, 1))]
    plot_entropy_history(history, classes="dog", ax=ax)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["dog", "mean"]
    np.testing.assert_allclose(lines[1].get_ydata(), lines[0].get_ydata())


@needs_matplotlib
def test_history_from_estimator_attribute(ax):
    class History(list):
        def to_frame(self):
            raise AssertionError("plotting must not need pandas")

    estimator = FakeEstimator(History(make_history(classes=(0, 1))))
    plot_entropy_history(estimator, ax=ax)
    assert len(ax.get_lines()) == 3


@needs_matplotlib
def test_history_new_figure_when_ax_is_none():
    import matplotlib.pyplot as plt

    ax = plot_entropy_history(make_history())
    try:
        assert len(ax.get_lines()) == 4
        assert ax.figure in [plt.figure(n) for n in plt.get_fignums()]
    finally:
        plt.close(ax.figure)


@needs_matplotlib
@pytest.mark.parametrize("history, error, match", [
    ([], ValueError, "empty"),
    (FakeEstimator([]), ValueError, "empty"),
    (FakeEstimator(), ValueError, "track_entanglement="),
    (42, TypeError, "sequence of dict rows"),
    ({"epoch": 1}, TypeError, "sequence of dict rows"),
    ("left_right", TypeError, "sequence of dict rows"),
    ([("epoch", 1)], TypeError, "row 0 is a tuple"),
    ([{"epoch": 1, "partition": "a", "class": 0}], ValueError, r"lacks the key\(s\) \['entropy'\]"),
    ([{"epoch": -1, "partition": "a", "class": 0, "entropy": 1.0}], ValueError, "integers >= 0"),
    ([{"epoch": 1.5, "partition": "a", "class": 0, "entropy": 1.0}], ValueError, "integers >= 0"),
    ([{"epoch": 1, "partition": "a", "class": 0, "entropy": "high"}], TypeError, "real number"),
])
def test_history_rejects_bad_input(ax, history, error, match):
    with pytest.raises(error, match=match):
        plot_entropy_history(history, ax=ax)


@needs_matplotlib
def test_history_partition_and_class_errors(ax):
    two = make_history(partitions=("left_right", "up_down"))
    with pytest.raises(ValueError, match=r"2 partitions .*choose one with partition="):
        plot_entropy_history(two, ax=ax)
    with pytest.raises(ValueError, match="'checkerboard' is not in the history"):
        plot_entropy_history(two, partition="checkerboard", ax=ax)
    with pytest.raises(ValueError, match=r"Classes \[7\] are not in the history"):
        plot_entropy_history(two, partition="up_down", classes=[0, 7], ax=ax)
    with pytest.raises(ValueError, match="classes is empty"):
        plot_entropy_history(two, partition="up_down", classes=[], ax=ax)
    assert len(ax.get_lines()) == 0


@needs_matplotlib
def test_history_needs_one_row_per_epoch_and_class(ax):
    history = make_history()
    with pytest.raises(ValueError, match="two rows for epoch 2, class 1"):
        plot_entropy_history(history + [history[4]], ax=ax)
    gappy = [row for row in history if (row["epoch"], row["class"]) != (3, 2)]
    with pytest.raises(ValueError, match="no row for epoch 3, class 2"):
        plot_entropy_history(gappy, ax=ax)


@needs_matplotlib
def test_history_rejects_non_axes():
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot_entropy_history(make_history(), ax="left")


# --- plot_entropy_vs_loss ---------------------------------------------------


@needs_matplotlib
def test_vs_loss_points_are_mean_entropy_at_each_loss(ax):
    plot_entropy_vs_loss(make_history(), ax=ax)
    points = ax.collections[0]
    epochs = np.array([1, 2, 3, 4])
    mean = [np.mean([entropy_of(e, c) for c in (0, 1, 2)]) for e in epochs]
    np.testing.assert_allclose(points.get_offsets(), np.column_stack([2.0 / epochs, mean]))
    np.testing.assert_array_equal(points.get_array(), epochs)
    assert len(ax.figure.axes) == 2  # the plot and its colourbar
    assert ax.get_xlabel() == "train loss"


@needs_matplotlib
def test_vs_loss_validation_loss_per_class_and_no_colorbar(ax):
    plot_entropy_vs_loss(make_history(classes=(0, 1)), loss="valid_loss", per_class=True,
                         colorbar=False, ax=ax)
    epochs = np.array([1, 2, 3, 4])
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 0], 3.0 / epochs)
    class_lines = ax.get_lines()[1:]
    assert [line.get_label() for line in class_lines] == ["0", "1"]
    np.testing.assert_allclose(class_lines[1].get_ydata(), [entropy_of(e, 1) for e in epochs])
    np.testing.assert_allclose(class_lines[1].get_xdata(), 3.0 / epochs)
    assert len(ax.figure.axes) == 1


@needs_matplotlib
def test_vs_loss_trend_is_the_least_squares_line(ax):
    plot_entropy_vs_loss(make_history(), trend=True, colorbar=False, ax=ax)
    epochs = np.array([1, 2, 3, 4])
    losses = 2.0 / epochs
    mean = np.array([np.mean([entropy_of(e, c) for c in (0, 1, 2)]) for e in epochs])
    slope, intercept = np.polyfit(losses, mean, 1)
    trend = ax.get_lines()[-1]
    np.testing.assert_allclose(trend.get_xdata(), [losses.min(), losses.max()])
    np.testing.assert_allclose(trend.get_ydata(), slope * trend.get_xdata() + intercept)
    pearson = np.corrcoef(losses, mean)[0, 1]
    assert pearson < 0
    assert trend.get_label() == f"least-squares line, r = {pearson:+.2f}"
    assert trend.get_label() in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_ylabel() == "mean entanglement entropy (nats)"


@needs_matplotlib
def test_vs_loss_skips_epochs_without_a_loss(ax):
    history = make_history()
    for row in history:
        if row["epoch"] == 1:
            row["valid_loss"] = float("nan")
    plot_entropy_vs_loss(history, loss="valid_loss", ax=ax)
    np.testing.assert_array_equal(ax.collections[0].get_array(), [2, 3, 4])


@needs_matplotlib
def test_epoch_zero_before_training(ax):
    # The tracker records the untrained network as epoch 0, with no loss yet.
    history = make_history(epochs=(1, 2)) + [
        {"epoch": 0, "partition": "left_right", "class": label, "entropy": 0.0,
         "train_loss": float("nan"), "valid_loss": float("nan")}
        for label in (0, 1, 2)
    ]
    plot_entropy_history(history, ax=ax)
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [0, 1, 2])
    other = Figure().subplots()
    plot_entropy_vs_loss(history, ax=other)
    np.testing.assert_array_equal(other.collections[0].get_array(), [1, 2])


@needs_matplotlib
def test_vs_loss_errors(ax):
    with pytest.raises(ValueError, match="NaN at every epoch.*early_stopping=True"):
        plot_entropy_vs_loss(make_history(valid=False), loss="valid_loss", ax=ax)
    with pytest.raises(ValueError, match="loss must be one of"):
        plot_entropy_vs_loss(make_history(), loss="accuracy", ax=ax)
    history = make_history()
    history[5]["train_loss"] += 1.0
    with pytest.raises(ValueError, match="rows of epoch 2 disagree on train_loss"):
        plot_entropy_vs_loss(history, ax=ax)
    history = [{key: value for key, value in row.items() if key != "train_loss"}
               for row in make_history()]
    with pytest.raises(ValueError, match="lack the key 'train_loss'"):
        plot_entropy_vs_loss(history, ax=ax)
    one_epoch = make_history(epochs=(1,))
    with pytest.raises(ValueError, match="trend=True .* two distinct losses"):
        plot_entropy_vs_loss(one_epoch, trend=True, ax=ax)
    with pytest.raises(TypeError, match="unit must be a str"):
        plot_entropy_vs_loss(make_history(), unit=2, ax=ax)
    with pytest.raises(TypeError, match="unit must be a str"):
        plot_entropy_history(make_history(), unit=None, ax=ax)
    assert len(ax.collections) == 0
    assert len(ax.get_lines()) == 0


# --- plot_schmidt_spectra ---------------------------------------------------


def bar_centres(container):
    return np.array([bar.get_x() + bar.get_width() / 2 for bar in container])


@needs_matplotlib
def test_spectra_single_spectrum(ax):
    spectrum = np.array([0.6, 0.25, 0.1, 0.05])
    out = plot_schmidt_spectra(spectrum, ax=ax)
    assert out is ax
    assert len(ax.containers) == 1
    np.testing.assert_array_equal([bar.get_height() for bar in ax.containers[0]], spectrum)
    np.testing.assert_allclose(bar_centres(ax.containers[0]), [1, 2, 3, 4])
    assert ax.get_legend() is None
    assert ax.get_yscale() == "linear"


@needs_matplotlib
def test_spectra_grouped_bars_sorted_and_labelled(ax):
    spectra = [np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.9]), [0.7, 0.2, 0.05, 0.05]]
    plot_schmidt_spectra(spectra, labels=["a", "b", "c"], log=True, ax=ax)
    assert len(ax.containers) == 3
    heights = [[bar.get_height() for bar in c] for c in ax.containers]
    assert heights == [[0.5, 0.3, 0.2], [0.9, 0.1], [0.7, 0.2, 0.05, 0.05]]
    # The group of Schmidt index i is centred on x = i.
    centres = [bar_centres(c) for c in ax.containers]
    np.testing.assert_allclose((centres[0] + centres[2][:3]) / 2, [1, 2, 3])
    np.testing.assert_allclose(centres[1], [1, 2])
    widths = [bar.get_width() for c in ax.containers for bar in c]
    np.testing.assert_allclose(widths, 0.8 / 3)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert ax.get_yscale() == "log"


@needs_matplotlib
def test_spectra_dict_2d_array_and_n_values(ax):
    plot_schmidt_spectra({"zero": [0.5, 0.3, 0.2], 1: [0.4, 0.35, 0.25]}, n_values=2, ax=ax)
    assert [len(c) for c in ax.containers] == [2, 2]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "1"]
    other = Figure().subplots()
    plot_schmidt_spectra(np.array([[0.5, 0.5], [0.75, 0.25]]), ax=other)
    assert [[bar.get_height() for bar in c] for c in other.containers] == [
        [0.5, 0.5], [0.75, 0.25]]
    assert [t.get_text() for t in other.get_legend().get_texts()] == ["0", "1"]


@needs_matplotlib
@pytest.mark.parametrize("spectra, kwargs, error, match", [
    ([0.5, -0.1], {}, ValueError, "non-negative"),
    ([0.5, np.nan], {}, ValueError, "finite"),
    ([], {}, ValueError, "empty"),
    ({}, {}, ValueError, "empty"),
    ([[0.5, 0.5], []], {}, ValueError, r"spectra\[1\] must be a non-empty 1-D"),
    ([np.ones((2, 2))], {}, ValueError, r"spectra\[0\] must be a non-empty 1-D"),
    (np.ones((2, 2, 2)), {}, ValueError, "1-D or 2-D"),
    ("0.5", {}, TypeError, "spectra must be"),
    ([["a", "b"]], {}, TypeError, "real numbers"),
    ([[0.5, 0.5], [1.0]], {"labels": ["x"]}, ValueError, "labels has 1 entries for 2"),
    ([[0.5, 0.5], [1.0]], {"labels": "xy"}, TypeError, "not a str"),
    ([0.5, 0.5], {"n_values": 0}, ValueError, "positive integer"),
    ([0.5, 0.5], {"n_values": 1.5}, ValueError, "positive integer"),
])
def test_spectra_rejects_bad_input(ax, spectra, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_schmidt_spectra(spectra, ax=ax, **kwargs)
    assert len(ax.containers) == 0


# --- plot_rank_vs_bound -----------------------------------------------------


@needs_matplotlib
def test_rank_vs_bound_log2(ax):
    out = plot_rank_vs_bound([1, 2, 3], [3, 9, 20], upper_bound=[3, 9, 27],
                             lower_bound=[3, 6, 10], ax=ax)
    assert out is ax
    measured, upper, lower = ax.get_lines()
    np.testing.assert_allclose(measured.get_ydata(), np.log2([3, 9, 20]))
    np.testing.assert_allclose(upper.get_ydata(), np.log2([3, 9, 27]))
    np.testing.assert_allclose(lower.get_ydata(), np.log2([3, 6, 10]))
    np.testing.assert_array_equal(measured.get_xdata(), [1, 2, 3])
    assert [line.get_label() for line in ax.get_lines()] == [
        "measured", "upper bound", "lower bound"]
    assert upper.get_color() == measured.get_color() == lower.get_color()
    assert (upper.get_linestyle(), lower.get_linestyle()) == ("--", ":")
    assert ax.get_ylabel() == "log2 Schmidt rank (bits)"
    assert ax.get_xlabel() == "block size |A|"


@needs_matplotlib
def test_rank_vs_bound_keeps_huge_bounds_exact(ax):
    # 3**2000 overflows a float64; its log2 does not.
    plot_rank_vs_bound([1, 2], [2, 4], upper_bound=[3**1000, 3**2000], ax=ax)
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(),
                               [1000 * math.log2(3), 2000 * math.log2(3)], rtol=1e-12)
    with pytest.raises(ValueError, match="too large for a float; plot it with log2=True"):
        plot_rank_vs_bound([1, 2], [2, 4], upper_bound=[3, 3**2000], log2=False, ax=ax)


@needs_matplotlib
def test_rank_vs_bound_linear_and_runs(ax):
    runs = np.array([[1, 4, 8], [3, 4, 16]])
    plot_rank_vs_bound([2, 4, 6], runs, log2=False, label="depth 2", color="red", ax=ax)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [2, 4, 12])
    assert line.get_label() == "depth 2"
    assert ax.get_ylabel() == "Schmidt rank"
    (band,) = ax.collections
    vertices = band.get_paths()[0].vertices
    # The band spans min to max of the runs at every size.
    for x, low, high in zip([2, 4, 6], [1, 4, 8], [3, 4, 16], strict=True):
        at_x = vertices[np.isclose(vertices[:, 0], x), 1]
        assert (at_x.min(), at_x.max()) == (low, high)


@needs_matplotlib
def test_rank_vs_bound_runs_average_log2_ranks(ax):
    plot_rank_vs_bound([1, 2], [[2, 4], [8, 64]], ax=ax)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [2.0, 4.0])


@needs_matplotlib
def test_rank_vs_bound_entropy_against_log2_bound(ax):
    plot_rank_vs_bound([1, 2], [0.9, 1.7], upper_bound=[2, 4], quantity="entropy",
                       label="q-CNN", ax=ax)
    measured, upper = ax.get_lines()
    np.testing.assert_allclose(measured.get_ydata(), [0.9, 1.7])
    np.testing.assert_allclose(upper.get_ydata(), [1.0, 2.0])
    assert upper.get_label() == "upper bound, q-CNN (log2 rank)"
    assert ax.get_ylabel() == "entropy (bits)"


@needs_matplotlib
@pytest.mark.parametrize("args, kwargs, error, match", [
    (([1, 2], [1, 2, 3]), {}, ValueError, "3 values per run for 2 sizes"),
    (([1, 2], [1, 2]), {"upper_bound": [1]}, ValueError, "upper_bound has 1 values for 2"),
    (([1, 2], [0, 2]), {}, ValueError, "a Schmidt rank is at least 1"),
    (([1, 2], [1, 2]), {"lower_bound": [0.5, 2]}, ValueError, "at least 1"),
    (([1, 2], [1, np.inf]), {}, ValueError, "finite"),
    (([1, np.nan], [1, 2]), {}, ValueError, "sizes must be finite"),
    (([1, 2], [1, "2"]), {}, TypeError, "real numbers"),
    (([1, 2], [True, 2]), {}, TypeError, "real numbers"),
    (([[1, 2]], [1, 2]), {}, ValueError, r"sizes must have shape \(n_sizes,\)"),
    (([1, 2], np.ones((2, 2, 2))), {}, ValueError, r"\(n_runs, n_sizes\)"),
    (([1, 2], [1, 2]), {"quantity": "purity"}, ValueError, "quantity must be one of"),
    (([1, 2], [0.5, 1.0]), {"quantity": "entropy", "log2": False}, ValueError,
     "use log2=True"),
    (([1, 2], [0.5, 1.0]), {"quantity": "entropy", "lower_bound": [1, 2]}, ValueError,
     "does not bound the entropy"),
])
def test_rank_vs_bound_rejects_bad_input(ax, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_rank_vs_bound(*args, ax=ax, **kwargs)
    assert len(ax.get_lines()) == 0


# --- without matplotlib -----------------------------------------------------


CALLS = [
    lambda: plot_entropy_history(make_history()),
    lambda: plot_entropy_vs_loss(make_history()),
    lambda: plot_schmidt_spectra([0.5, 0.5]),
    lambda: plot_rank_vs_bound([1, 2], [2, 4]),
]


@pytest.mark.parametrize("call", CALLS, ids=["history", "vs_loss", "spectra", "bound"])
def test_missing_matplotlib_names_the_extra(monkeypatch, call):
    # None in sys.modules makes the import fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "skqcnn\[plot\]"'):
        call()


def test_import_without_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import skqcnn.plotting as p\n"
        "assert sorted(p.__all__) == ['plot_entropy_history', 'plot_entropy_vs_loss',"
        " 'plot_rank_vs_bound', 'plot_schmidt_spectra']\n"
        "try:\n"
        "    p.plot_schmidt_spectra([1.0])\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert 'pip install "skqcnn[plot]"' in result.stdout
