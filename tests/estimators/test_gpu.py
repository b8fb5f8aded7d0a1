"""Every family on CUDA: the CPU's fit, and the same exact entanglement.

Marked ``gpu`` and skipped without CUDA; ``python -m pytest -m gpu`` runs them
on a machine that has one. The networks train in float64 from the same seed
on both devices. Every random draw of a fit comes from the fit's own CPU
generators, so both devices start from the same weights and see the same
batches: a CUDA fit and a CPU fit differ by the rounding of their kernels
alone, and so do their exact entanglement answers. Monte Carlo chains draw on
the network's device, whose random stream differs: there the test compares
with the exact value.
"""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch

import skqcnn
from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier
from skqcnn.exceptions import MonteCarloConvergenceWarning, NotLearningWarning

from _states import SPREAD, family_name, randomise

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

DEVICE = "cuda"
# Nine sites (a 3 x 3 image, nine RAC steps): small enough for every exact method.
FAMILIES = {
    "qcnn": lambda **params: QCNNClassifier(channels=3, **params),
    "convac": lambda **params: OverlappingConvACClassifier(
        channels=(3,), kernel_size=2, pooling=None, **params),
    "rac": lambda **params: DeepRACClassifier(hidden_size=3, n_layers=2, sequence_shape=(9, 1),
                                              **params),
    # One layer: its contiguous cuts go through the matrix-product form.
    "rac1": lambda **params: DeepRACClassifier(hidden_size=3, n_layers=1, sequence_shape=(9, 1),
                                               **params),
}
SETTINGS = dict(max_epochs=4, batch_size=32, random_state=0, dtype=np.float64,
                track_entanglement=True)
# Kernels of the two devices sum in different orders: float64 rounding,
# carried through four epochs of training.
RTOL = 1e-7


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(160, 9))
    y = np.argmax(X @ rng.normal(size=(9, 3)), axis=1)
    return X, y


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted_pair(request, data):
    X, y = data
    make = FAMILIES[request.param]
    on_cpu = make(device="cpu", **SETTINGS).fit(X, y)
    on_gpu = make(device=DEVICE, **SETTINGS).fit(X, y)
    return on_cpu, on_gpu


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=1e-12)


def test_trains_on_the_device(fitted_pair):
    _, on_gpu = fitted_pair
    assert on_gpu.device_.startswith("cuda")
    assert all(p.is_cuda for p in on_gpu.net_.module_.parameters())


def test_cuda_fit_repeats_the_cpu_fit(fitted_pair, data):
    on_cpu, on_gpu = fitted_pair
    X, _ = data
    assert_close(on_gpu.history_[:, "train_loss"], on_cpu.history_[:, "train_loss"])
    assert_close(on_gpu.predict_proba(X), on_cpu.predict_proba(X))
    np.testing.assert_array_equal(on_gpu.predict(X), on_cpu.predict(X))


def test_same_exact_entanglement(fitted_pair):
    on_cpu, on_gpu = fitted_pair
    # The RAC's last three steps: a contiguous cut, its matrix-product form at one layer.
    last_steps = (3,) if isinstance(on_cpu, DeepRACClassifier) else ()
    for partition in (None, "interleaved", [0, 4, 8], *last_steps):
        for alpha in (1, 2, np.inf):
            assert_close(on_gpu.entanglement_entropy(partition, alpha=alpha),
                         on_cpu.entanglement_entropy(partition, alpha=alpha))
        for p_gpu, p_cpu in zip(on_gpu.schmidt_spectrum(partition),
                                on_cpu.schmidt_spectrum(partition), strict=True):
            assert p_gpu.dtype == np.float64
            assert_close(p_gpu, p_cpu)
        assert on_gpu.schmidt_rank_bound(partition) == on_cpu.schmidt_rank_bound(partition)


def test_same_tracked_entropies(fitted_pair):
    on_cpu, on_gpu = fitted_pair
    history_gpu, history_cpu = on_gpu.entanglement_history_, on_cpu.entanglement_history_
    assert history_gpu.partitions == history_cpu.partitions
    for partition in history_cpu.partitions:
        epochs_gpu, table_gpu = history_gpu.as_array(partition)
        epochs_cpu, table_cpu = history_cpu.as_array(partition)
        np.testing.assert_array_equal(epochs_gpu, epochs_cpu)
        assert_close(table_gpu, table_cpu)


def test_monte_carlo_on_cuda(fitted_pair):
    _, on_gpu = fitted_pair
    # A trained state sits near one configuration, where the swap estimator
    # has nothing to measure: random weights make it entangled.
    clf = randomise(copy.deepcopy(on_gpu), SPREAD[family_name(on_gpu)])
    exact = clf.entanglement_entropy("interleaved")
    options = dict(method="monte_carlo", n_samples=2000, random_state=0, return_std=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonteCarloConvergenceWarning)
        estimate, std = clf.entanglement_entropy("interleaved", **options)
    # The chains draw on the device: a seed repeats there, and CUDA's stream
    # is not the CPU's, so only the exact value is common to both.
    np.testing.assert_array_equal(clf.entanglement_entropy("interleaved", **options),
                                  (estimate, std))
    assert np.all(np.abs(estimate - exact) <= 5 * std), (estimate, std, exact)


def test_cuda_model_saves_and_loads_on_either_device(fitted_pair, data, tmp_path):
    _, on_gpu = fitted_pair
    X, y = data
    path = tmp_path / "model.safetensors"
    skqcnn.save(on_gpu, path)
    on_cpu = skqcnn.load(path, device="cpu")
    assert on_cpu.device_ == "cpu"
    assert_close(on_cpu.decision_function(X), on_gpu.decision_function(X))
    assert_close(on_cpu.entanglement_entropy(), on_gpu.entanglement_entropy())
    reloaded = skqcnn.load(path)
    assert reloaded.device_.startswith(DEVICE)
    np.testing.assert_array_equal(reloaded.decision_function(X), on_gpu.decision_function(X))
    unpickled = pickle.loads(pickle.dumps(on_gpu))
    np.testing.assert_array_equal(unpickled.decision_function(X), on_gpu.decision_function(X))
    # A warm start trains where the network is, and continues its history.
    for restored, device in ((reloaded, torch.device(DEVICE).type), (on_cpu, "cpu")):
        restored.set_params(warm_start=True, max_epochs=SETTINGS["max_epochs"] + 1).fit(X, y)
        assert len(restored.history_) == SETTINGS["max_epochs"] + 1
        assert all(p.device.type == device for p in restored.net_.module_.parameters())


@pytest.mark.parametrize("family", ["qcnn", "convac", "rac"])
def test_compiled_training_on_cuda(family, data):
    X, y = data
    params = dict(SETTINGS, max_epochs=2, track_entanglement=False)
    with warnings.catch_warnings():
        # Two epochs are too few to learn; only the two fits' agreement matters.
        warnings.simplefilter("ignore", NotLearningWarning)
        # The fallback warning would mean that torch.compile did not work here.
        warnings.simplefilter("error", RuntimeWarning)
        eager = FAMILIES[family](device=DEVICE, **params).fit(X, y)
        compiled = FAMILIES[family](device=DEVICE, compile=True, **params).fit(X, y)
    assert compiled.net_.compiled_forward_ is not False
    # Fused kernels round differently from the eager ones.
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), rtol=1e-6,
                               atol=1e-10)
