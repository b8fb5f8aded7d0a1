"""OverlappingConvACClassifier on load_digits at 8x8, 16x16 or 32x32: accuracy and fit time.

Prints, from one run on this machine, on the stratified 75/25 split of
load_digits with random_state=0, the images upsampled to ``--size`` by
bilinear interpolation (:func:`torch.nn.functional.interpolate`,
``mode="bilinear"``, ``align_corners=False``; ``--size 8`` keeps the
original images):

1. for every seed, the test accuracy and fit time of QCNNClassifier and of
   OverlappingConvACClassifier with their default hyperparameters (and the
   ConvAC options given), fitted one after the other so that both see the
   same load on a shared machine, with the CPU time of the process; with
   ``--rounds R``, every seed is fitted ``R`` times over (after one warm-up
   fit of each, which pays for the imports);
2. the mean and standard deviation of the accuracies over seeds, the median
   fit times, and a PASS/FAIL line for the target of the size: mean test
   accuracy >= 0.973 (8x8), 0.97 (16x16) or 0.95 (32x32), and a fit time at
   most 1.2 (8x8) or 2 (larger) times the q-CNN's, as the median over all
   seeds and rounds of each ConvAC fit's time over that of the q-CNN fit
   right after it. This VM's speed drifts by 10 to 40 percent within
   minutes; adjacent fits see the same speed, and several rounds show the
   spread.

The networks train on the CPU (``device="cpu"``) so that the fit times are
comparable between machines with and without a GPU.

Run from the repository root with skqcnn importable::

    OMP_NUM_THREADS=1 python benchmarks/bench_convac.py --size 16 [--seeds 3] \\
        [--rounds 1] [--threads 1] [--loss cross_entropy] [--pooling 4] [--kernel-size 2] \\
        [--channels 8] [--max-epochs 20]

``--profile`` fits nothing: it prints the CPU time of one training step of
each network (batch 32, or ``--batch``, after a one-epoch fit on 64 images), where the
ConvAC's step goes (its forward pass split into offset columns, batch statistics
and window products, its backward pass and optimizer, and the bare arithmetic of
its window products on the same shapes), and its operators
(:mod:`torch.profiler`).
``--baseline DIR`` adds, interleaved with it, the training step of the
ConvAC network of another checkout (``DIR/skqcnn/nn/_convac.py``, built with
the same shape and initial values), so that a change is timed against the
code before it in one run::

    OMP_NUM_THREADS=1 python benchmarks/bench_convac.py --size 16 --threads 1 \\
        --profile --baseline /path/to/other/checkout

``--compile-repeats N`` fits only ConvACs (seed 0, the options given),
``compile=False`` and ``compile=True`` in ``N`` interleaved pairs, and prints
their fit and epoch times, the compiler's cost and the epochs it needs to pay
off (as ``bench_qcnn.py --compile-repeats`` does for the q-CNN). Run it with an
empty ``TORCHINDUCTOR_CACHE_DIR`` to time a first compilation.

``--compare --baseline DIR`` fits nothing either: on six small networks in
float64 it prints the largest relative differences between this checkout's
training-mode network and the other's, with the same parameters and batch
(scores, gradients, running statistics after the step).
"""

import argparse
import collections
import contextlib
import importlib.util
import statistics
import time
import unittest.mock
import warnings

import numpy as np
import torch

from _digits import compile_comparison, digits_split, timed_fit

from skqcnn import OverlappingConvACClassifier, QCNNClassifier
from skqcnn.exceptions import NotLearningWarning
from skqcnn.nn import LocalBasis
import skqcnn.nn._convac as convac_module
from skqcnn.nn._convac import OverlappingConvACNetwork

TARGETS = {8: (0.973, 1.2), 16: (0.97, 2.0), 32: (0.95, 2.0)}


def upsample(X, size):
    """8 x 8 digits as ``size x size`` images, bilinear, flattened row-major."""
    if size == 8:
        return X
    images = torch.tensor(X.reshape(-1, 1, 8, 8), dtype=torch.float64)
    resized = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                              align_corners=False)
    return resized.reshape(len(X), -1).numpy()


def step_seconds(model, X, y, batch_size, n_steps=20):
    """CPU seconds of one training step (forward, backward, optimizer) of a
    fitted estimator's module on a batch of ``batch_size`` samples."""
    module = model.net_.module_.train()
    inputs = torch.tensor(model._scale_inputs(X[:batch_size]))
    targets = torch.tensor(np.searchsorted(model.classes_, y[:batch_size]))
    criterion = model.net_.criterion_
    # The estimator's implementation (fused or foreach).
    implementation = {key: model.net_.optimizer_.defaults[key] for key in ("fused", "foreach")}
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, **implementation)

    def step():
        loss = criterion(module(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return cpu_seconds(step, repeats=1, n_calls=n_steps)


def network_step_seconds(networks, features, targets, criterion, repeats=7, n_steps=10):
    """CPU seconds of one training step of each network module, interleaved;
    the median over ``repeats`` rounds of ``n_steps`` steps each."""
    steps = []
    for network in networks:
        optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, fused=True)

        def step(network=network, optimizer=optimizer):
            loss = criterion(network.train()(features), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        for _ in range(3):
            step()
        steps.append(step)
    times = [[] for _ in steps]
    for _ in range(repeats):
        for step, record in zip(steps, times):
            start = time.process_time()
            for _ in range(n_steps):
                step()
            record.append((time.process_time() - start) / n_steps)
    return [statistics.median(record) for record in times]


def baseline_network(directory, network):
    """The ConvAC network of the checkout in ``directory``, with the shape and
    initial values of ``network`` (the parameters are copied)."""
    spec = importlib.util.spec_from_file_location(
        "skqcnn.nn._convac_baseline", f"{directory}/skqcnn/nn/_convac.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    other = module.OverlappingConvACNetwork(network.image_shape, network.local_dim,
                                            network.channels, network.kernel_size,
                                            network.n_classes, pooling=network.pooling)
    other = other.to(next(network.parameters()).dtype)
    other.load_state_dict(network.state_dict())
    return other


# (image shape, channels, kernel size, pooling, batch): 1-D and 2-D maps,
# clipped pooling, a kernel of 4, pooling to one position on a batch of 3
# (the divisor from its running value), no pooling, and a 1 x 1 image.
COMPARED_NETWORKS = [((8, 8), (6, 5), 3, 2, 12), ((5, 7), (4, 3), 3, 2, 9),
                     ((9,), (3, 3), 4, 3, 7), ((4, 4), (3,), 3, 4, 3),
                     ((6, 5), (3, 3, 3), 2, None, 5), ((1, 1), (2,), 1, None, 1)]


def compare(baseline):
    """Largest differences, in float64, between the training-mode networks of
    this checkout and of ``baseline`` with the same parameters and batch:
    scores, gradients (of the summed squared scores, for the input features
    and every parameter) and running statistics after the step."""
    generator = torch.Generator().manual_seed(0)
    for image_shape, channels, kernel_size, pooling, batch in COMPARED_NETWORKS:
        ours = OverlappingConvACNetwork(image_shape, 3, channels, kernel_size, 4,
                                        pooling=pooling, generator=generator).double()
        with torch.no_grad():
            for parameter in ours.parameters():
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator,
                                                 dtype=parameter.dtype))
        theirs = baseline_network(baseline, ours)
        features = LocalBasis("fourier", 1)(
            torch.rand(batch, ours.n_sites, generator=generator, dtype=torch.float64))
        results = []
        for network in (ours, theirs):
            inputs = features.clone().requires_grad_()
            scores = network.train()(inputs)
            grads = torch.autograd.grad(scores.square().sum(),
                                        [inputs] + list(network.parameters()))
            results.append((scores.detach(), grads, list(network.state_dict().values())))
        (scores, grads, state), (base_scores, base_grads, base_state) = results

        def relative(a, b):
            return ((a - b).abs().max() / b.abs().max().clamp(min=1e-300)).item()

        print(f"  {image_shape}, channels {channels}, kernel {kernel_size}, pooling {pooling}, "
              f"batch {batch}: scores {relative(scores, base_scores):.1e}, gradients "
              f"{max(relative(a, b) for a, b in zip(grads, base_grads)):.1e}, running "
              f"statistics {max(relative(a, b) for a, b in zip(state, base_state)):.1e}")


def profile(size, X, y, options, baseline=None, batch_size=32):
    """Per-step CPU time of both networks, where the ConvAC's step goes, and its operators."""
    models = {"convac": OverlappingConvACClassifier(random_state=0, device="cpu",
                                                    **{**options, "max_epochs": 1}),
              "qcnn": QCNNClassifier(random_state=0, device="cpu", max_epochs=1)}
    for model in models.values():
        model.fit(X[:64], y[:64])
    steps = {key: step_seconds(model, X, y, batch_size) for key, model in models.items()}
    print(f"training step, batch {batch_size}, CPU time: ConvAC {1e3 * steps['convac']:.1f} ms, "
          f"q-CNN {1e3 * steps['qcnn']:.1f} ms, ratio {steps['convac'] / steps['qcnn']:.2f}")
    clf = models["convac"]
    if baseline is not None:
        network = clf.net_.module_.network
        features = clf.net_.module_.basis(torch.tensor(clf._scale_inputs(X[:batch_size])))
        targets = torch.tensor(np.searchsorted(clf.classes_, y[:batch_size]))
        ours, theirs = network_step_seconds(
            [network, baseline_network(baseline, network)], features, targets,
            clf.net_.criterion_)
        print(f"ConvAC network training step, median of 7 x 10 interleaved: this checkout "
              f"{1e3 * ours:.2f} ms, {baseline} {1e3 * theirs:.2f} ms, ratio {ours / theirs:.2f}")
    print_step_split(clf, X[:batch_size], y[:batch_size], steps["qcnn"])
    network = clf.net_.module_.network.train()
    features = clf.net_.module_.basis(torch.tensor(clf._scale_inputs(X[:batch_size])))
    with torch.profiler.profile() as prof:
        for _ in range(5):
            network(features).sum().backward()
    # The profiler's own cost per operator inflates small operators: the split
    # above is the measure of time, this table the list of operators.
    print("ConvAC operators under torch.profiler, 5 steps:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def cpu_seconds(function, repeats=7, n_calls=10):
    """CPU seconds of one call of ``function``: the median over ``repeats``
    rounds of ``n_calls`` calls, after 3 calls not timed."""
    for _ in range(3):
        function()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(n_calls):
            function()
        times.append((time.process_time() - start) / n_calls)
    return statistics.median(times)


def print_step_split(model, X, y, qcnn_step, n_steps=50):
    """Where a ConvAC training step goes, timed inside ``n_steps`` real steps.

    The forward pass, backward pass and optimizer of the module; within the
    forward pass, the offset columns, batch statistics (the factor
    normalisation, ``_batch_folded_rows``) and window-and-pool products
    of all layers, timed by wrapping those calls; and the arithmetic that the
    window products need whatever the code around them, on the same shapes,
    timed alone: the factors (a batched matrix product), their product over
    the window, and in the gradient one division and the matrix products back
    to the maps and the input.
    """
    module = model.net_.module_.train()
    inputs = torch.tensor(model._scale_inputs(X))
    targets = torch.tensor(np.searchsorted(model.classes_, y))
    criterion = model.net_.criterion_
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, fused=True)
    totals = collections.Counter()
    shapes = []

    def timed(name, function, record_shapes=False):
        def call(*args, **kwargs):
            start = time.process_time()
            result = function(*args, **kwargs)
            totals[name] += time.process_time() - start
            if record_shapes and len(shapes) < len(module.network.channels):
                shapes.append((args[0].detach(), args[1].detach(), len(shapes) > 0))
            return result
        return call

    with contextlib.ExitStack() as patches:
        for attribute, name in (("_offset_columns", "offset columns"),
                                ("_batch_folded_rows", "statistics"),
                                ("_window_pool_product", "window products")):
            patches.enter_context(unittest.mock.patch.object(
                convac_module, attribute, timed(name, getattr(convac_module, attribute),
                                                record_shapes=name == "window products")))
        for step in range(3 + n_steps):
            if step == 3:
                totals.clear()
            start = time.process_time()
            loss = criterion(module(inputs), targets)
            middle = time.process_time()
            optimizer.zero_grad()
            loss.backward()
            end = time.process_time()
            optimizer.step()
            totals["forward"] += middle - start
            totals["backward"] += end - middle
            totals["optimizer"] += time.process_time() - end

    def arithmetic():
        for rows, columns, input_gradient in shapes:
            factors = torch.bmm(rows, columns)
            gradient = factors.prod(dim=0).unsqueeze(0) / factors
            torch.bmm(gradient, columns.transpose(1, 2))
            if input_gradient:
                torch.bmm(rows.transpose(1, 2), gradient)

    floor = cpu_seconds(arithmetic)
    ms = {name: 1e3 * seconds / n_steps for name, seconds in totals.items()}
    print(f"ConvAC training step split (CPU ms per step, {n_steps} steps): forward "
          f"{ms['forward']:.2f} (of which offset columns {ms['offset columns']:.2f}, "
          f"statistics {ms['statistics']:.2f}, window products {ms['window products']:.2f}), "
          f"backward {ms['backward']:.2f}, optimizer {ms['optimizer']:.2f}; the window "
          f"products' own arithmetic, timed alone: {1e3 * floor:.2f} ms "
          f"({floor / qcnn_step:.2f} times the q-CNN's whole step)")


def report(name, accuracy, seconds, cpu_seconds):
    print(f"{name:<52} {accuracy:>14.4f} {seconds:>13.1f} {cpu_seconds:>13.1f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8, choices=sorted(TARGETS),
                        help="image side after bilinear upsampling")
    parser.add_argument("--seeds", type=int, default=3,
                        help="random_state values 0..seeds-1 of both networks")
    parser.add_argument("--rounds", type=int, default=1,
                        help="fit every seed this many times over (the fit time ratio is "
                             "the median over all the pairs)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--loss", default=None, help="ConvAC loss (default: its default)")
    parser.add_argument("--pooling", type=int, default=None,
                        help="ConvAC pooling (default: its default)")
    parser.add_argument("--kernel-size", type=int, default=None,
                        help="ConvAC kernel_size (default: its default)")
    parser.add_argument("--channels", type=int, default=None,
                        help="ConvAC channels of every layer (default: its default)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="ConvAC max_epochs (default: its default)")
    parser.add_argument("--compile-repeats", type=int, default=0,
                        help="only fit the ConvAC (seed 0) with compile=False and True, this "
                             "many interleaved pairs")
    parser.add_argument("--no-qcnn", action="store_true",
                        help="skip the q-CNN baseline (no time ratio)")
    parser.add_argument("--profile", action="store_true",
                        help="only time training steps and profile the ConvAC's operators")
    parser.add_argument("--batch", type=int, default=32,
                        help="with --profile: the batch of the timed training steps")
    parser.add_argument("--baseline", default=None,
                        help="with --profile: a checkout whose ConvAC step is timed beside")
    parser.add_argument("--compare", action="store_true",
                        help="with --baseline: only compare the training-mode networks in "
                             "float64")
    args = parser.parse_args()
    if args.compare:
        if args.baseline is None:
            parser.error("--compare needs --baseline DIR")
        print(f"largest relative differences, this checkout against {args.baseline}:")
        compare(args.baseline)
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    options = {name: getattr(args, name) for name in ("loss", "pooling", "kernel_size",
                                                      "max_epochs")
               if getattr(args, name) is not None}
    if args.channels is not None:
        options["channels"] = ("constant", args.channels)

    X_train, X_test, y_train, y_test = digits_split()
    X_train, X_test = upsample(X_train, args.size), upsample(X_test, args.size)
    print(f"images {args.size} x {args.size}; ConvAC options {options or 'defaults'}\n")
    if args.profile:
        profile(args.size, X_train, y_train, options, args.baseline, args.batch)
        return
    if args.compile_repeats:
        compile_comparison(
            lambda compile_: OverlappingConvACClassifier(compile=compile_, random_state=0,
                                                         device="cpu", **options),
            X_train, y_train, X_test, y_test, args.compile_repeats)
        return
    # One epoch on 64 images first: the first fit of a process also pays for
    # imports and first calls, which would count against whichever ran first.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotLearningWarning)
        for make in (OverlappingConvACClassifier, QCNNClassifier):
            make(max_epochs=1, random_state=0, device="cpu").fit(X_train[:64], y_train[:64])
    print(f"{'model':<52} {'test accuracy':>14} {'fit time (s)':>13} {'CPU time (s)':>13}")

    results = {"qcnn": ([], [], []), "convac": ([], [], [])}
    for round_ in range(args.rounds):
        for seed in range(args.seeds):
            models = {"convac": OverlappingConvACClassifier(random_state=seed, device="cpu",
                                                             **options)}
            if not args.no_qcnn:
                models["qcnn"] = QCNNClassifier(random_state=seed, device="cpu")
            for key, model in models.items():
                # CPU time of this process as well: on a shared machine the wall
                # clock also counts other jobs' use of the cores.
                cpu_start = time.process_time()
                seconds = timed_fit(model, X_train, y_train)
                cpu_seconds = time.process_time() - cpu_start
                scores, times, cpu_times = results[key]
                scores.append(model.score(X_test, y_test))
                times.append(seconds)
                cpu_times.append(cpu_seconds)
                report(f"{type(model).__name__}(random_state={seed})", scores[-1], seconds,
                       cpu_seconds)
            if seed == 0 and round_ == 0:
                clf = models["convac"]
                network = clf.net_.module_.network
                print(f"  ConvAC: channels {clf.channels_}, kernel_size {clf.kernel_size_}, "
                      f"pooling {clf.pooling}, maps {network.map_shapes}, "
                      f"{sum(p.numel() for p in network.parameters())} parameters", flush=True)

    print()
    medians, cpu_medians = {}, {}
    for key, (scores, times, cpu_times) in results.items():
        if not scores:
            continue
        # Every round refits the same seeds, to the same scores.
        scores = scores[:args.seeds]
        medians[key] = float(np.median(times))
        cpu_medians[key] = float(np.median(cpu_times))
        print(f"{key}: test accuracy mean {np.mean(scores):.4f} std {np.std(scores):.4f} "
              f"(min {min(scores):.4f}) over {len(scores)} seeds; fit time median "
              f"{medians[key]:.1f} s, CPU time median {cpu_medians[key]:.1f} s")
    accuracy_target, time_target = TARGETS[args.size]
    mean_score = float(np.mean(results["convac"][0][:args.seeds]))
    line = f"target: mean ConvAC accuracy {mean_score:.4f} >= {accuracy_target}"
    passed = mean_score >= accuracy_target
    if "qcnn" in medians:
        # Each ConvAC fit against the q-CNN fit right after it: the machine's
        # speed drifts by more than the gap between runs a minute apart.
        pairs = np.array(results["convac"][1]) / np.array(results["qcnn"][1])
        ratio = float(np.median(pairs))
        line += (f", fit time ratio ConvAC / q-CNN {ratio:.2f} <= {time_target} (median of "
                 f"{len(pairs)} paired fits, {pairs.min():.2f} to {pairs.max():.2f}; ratio of "
                 f"medians {medians['convac'] / medians['qcnn']:.2f}, of CPU time medians "
                 f"{cpu_medians['convac'] / cpu_medians['qcnn']:.2f})")
        passed = passed and ratio <= time_target
    print(f"{line}: {'PASS' if passed else 'FAIL'}")

if __name__ == "__main__":
    main()
