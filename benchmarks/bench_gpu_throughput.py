"""Training throughput of skqcnn's torch modules against plain networks, and their bandwidth.

Each family's module is paired with the plain network a user would pick
instead, with about as many parameters: the q-CNN and the ConvAC with a small
CNN, the deep RAC (rows as steps) with a GRU. Prints, from one run on one
device, on 16x16 images (load_digits upsampled):

1. samples per second of a training step (forward, backward, AdamW step) of
   each module, taken from an estimator as a user's fit builds it, at several
   batch sizes, beside its plain counterpart: the median over interleaved
   repeats of each, and their ratio;
2. the aten operators of one step, split into forward plus backward and the
   optimizer step, the memory traffic of the step and the bandwidth it
   achieves, as a fraction of the device's peak. The peak is measured in the
   same run by a large device-to-device copy (``dst.copy_(src)``, which reads
   and writes every byte once: an achievable peak); on CUDA the nominal peak,
   twice the memory clock times the bus width (double data rate) from the
   device properties, is printed too. On CUDA, the share of the step time that
   kernels keep the GPU busy (torch.profiler CUDA time of at most 20 steps
   over their unprofiled wall time) tells launch-bound steps from
   bandwidth-bound ones, and ``--top-kernels N`` prints the N operators whose
   kernels take longest at the largest batch size.

The traffic of a step is counted operator by operator (a TorchDispatchMode
sees every aten operator of the forward pass, the backward pass and the
optimizer step, always of the eager modules): each operator is charged for
reading its input tensors and writing its outputs, views are free, and a
broadcast operand counts its distinct elements once. That is the traffic of an
unfused eager implementation whose tensors all go through memory. The true
DRAM traffic is lower where tensors stay in cache (small batches) and higher
where a kernel reads its operands more than once (convolutions), so the
fractions are estimates.

``--mode compile`` wraps every module in ``torch.compile``; ``--mode
cudagraphs`` (CUDA only) compiles with ``mode="reduce-overhead"``, which
replays each step's kernels as CUDA graphs. ``--optimizer-impl`` picks AdamW's
implementation: ``fused`` (the default, as the estimators train on the CPU and
CUDA), ``foreach``, or torch's ``default`` for the device (a loop over the
parameters on the CPU, ``foreach`` on CUDA).

Run on a GPU: ``python benchmarks/bench_gpu_throughput.py``
(``--batch-sizes 64 256 1024 4096 --repeats 5`` by default), and again with
``--mode cudagraphs``.
Smoke test on a CPU: ``python benchmarks/bench_gpu_throughput.py --device cpu --quick``.
"""

import argparse
import math
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from bench_rac import GRUClassifier, matched_gru, n_parameters

from skqcnn import DeepRACClassifier, OverlappingConvACClassifier, QCNNClassifier

IMAGE_SIDE = 16
FAMILIES = {
    "qcnn": ("q-CNN", QCNNClassifier, "CNN"),
    "convac": ("ConvAC", OverlappingConvACClassifier, "CNN"),
    "rac": ("RAC", DeepRACClassifier, "GRU"),
}
PROFILED_STEPS = 20
OPTIMIZER_IMPLS = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def upsampled_digits(n_samples):
    """load_digits bilinearly upsampled to 16x16 in [0, 1], tiled to n_samples rows."""
    X, y = load_digits(return_X_y=True)
    images = torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16
    images = F.interpolate(images, size=(IMAGE_SIDE, IMAGE_SIDE), mode="bilinear",
                           align_corners=False).clamp_(0, 1)
    reps = math.ceil(n_samples / len(y))
    images = images.repeat(reps, 1, 1, 1)[:n_samples]
    labels = torch.as_tensor(y).repeat(reps)[:n_samples]
    return images.reshape(n_samples, -1), labels


def plain_cnn(width, n_classes):
    """Three 3x3 conv blocks (BatchNorm, ReLU; max-pooling after two), global pooling, linear."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, n_classes),
    )


def matched_plain_cnn(n_target, n_classes):
    """The plain CNN whose parameter count is closest to n_target."""
    widths = range(2, 129)
    best = min(widths, key=lambda w: abs(n_parameters(plain_cnn(w, n_classes)) - n_target))
    return plain_cnn(best, n_classes)


class Model:
    """A module with its loss, optimizer and input layout: one training step at a time."""

    def __init__(self, name, module, loss_fn, inputs, labels, lr, weight_decay, args):
        self.name = name
        self.eager = module.train()
        self.module = module
        if args.mode != "eager":
            self.module = torch.compile(
                module, mode="reduce-overhead" if args.mode == "cudagraphs" else "default")
        self.cudagraphs = args.mode == "cudagraphs"
        self.loss_fn = loss_fn
        self.inputs = inputs
        self.labels = labels
        self.optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay,
                                           **OPTIMIZER_IMPLS[args.optimizer_impl])
        self.last_loss = None

    def step(self, batch_size, index, phases=None, eager=False):
        """One training step; ``phases(name)`` is called as each part starts."""
        phases = phases or (lambda name: None)
        if self.cudagraphs and not eager:
            # Each step is a new graph replay, whose outputs may overwrite the last one's.
            torch.compiler.cudagraph_mark_step_begin()
        # Contiguous slices of a pool on the device: batching costs no copy.
        start = (index * batch_size) % (len(self.labels) - batch_size + 1)
        xb = self.inputs[start:start + batch_size]
        yb = self.labels[start:start + batch_size]
        self.optimizer.zero_grad(set_to_none=True)
        phases("forward and backward")
        loss = self.loss_fn((self.eager if eager else self.module)(xb), yb)
        loss.backward()
        phases("optimizer")
        self.optimizer.step()
        self.last_loss = loss.detach()


def build_pairs(families, device, pool_size, n_fit, args):
    """(tensor-network model, plain model) for each family."""
    images, labels = upsampled_digits(pool_size)
    pairs = []
    for family in families:
        name, estimator, plain_name = FAMILIES[family]
        # The estimator builds and initialises the module exactly as a user's
        # fit would; one epoch on a subset is enough to get it.
        clf = estimator(max_epochs=1, batch_size=256, device=str(device), random_state=0)
        with warnings.catch_warnings():
            # One epoch does not learn much, as the estimator rightly warns.
            warnings.simplefilter("ignore")
            clf.fit(images[:n_fit].numpy(), labels[:n_fit].numpy())
        module = clf.net_.module_
        inputs = torch.as_tensor(clf._scale_inputs(images.double().numpy())).to(device)
        n_classes = clf.classes_.size
        torch.manual_seed(0)
        if plain_name == "CNN":
            plain = matched_plain_cnn(n_parameters(module), n_classes)
            plain_inputs = images.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        else:
            # Rows as steps, as the RAC reads a square image.
            plain = matched_gru(IMAGE_SIDE, n_classes, n_parameters(module))
            plain_inputs = images.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
        on_device = labels.to(device)
        pairs.append((
            Model(name, module, clf.net_.criterion_, inputs, on_device, clf.lr_,
                  clf.weight_decay, args),
            Model(plain_name, plain.to(device), nn.CrossEntropyLoss(), plain_inputs.to(device),
                  on_device, clf.lr_, clf.weight_decay, args),
        ))
    return pairs


def distinct_bytes(tensor):
    # Broadcast dimensions (stride 0) re-read the same elements.
    count = 1
    for size, stride in zip(tensor.shape, tensor.stride()):
        if stride != 0:
            count *= size
    return count * tensor.element_size()


class TrafficCounter(TorchDispatchMode):
    """Bytes read and written, and operators run per phase, at the aten level."""

    def __init__(self):
        super().__init__()
        self.bytes = 0
        self.n_ops = {}
        self.phase = None

    def start(self, phase):
        self.phase = phase
        self.n_ops.setdefault(phase, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # Profiler markers are not operators, and views move no data.
        if not func.is_view and self.phase is not None and func.namespace == "aten":
            tensors = [t for t in tree_flatten((args, kwargs, out))[0]
                       if isinstance(t, torch.Tensor)]
            self.bytes += sum(distinct_bytes(t) for t in tensors)
            self.n_ops[self.phase] += 1
        return out


def step_traffic(model, batch_size, device):
    """Bytes and operators per phase of one eager step."""
    counter = TrafficCounter()
    with counter:
        model.step(batch_size, 0, phases=counter.start, eager=True)
    synchronize(device)
    return counter.bytes, counter.n_ops


def kernel_busy_seconds(model, batch_size, device, n_steps, top_kernels=0):
    """Summed duration of the CUDA kernels and copies of n_steps steps.

    With ``top_kernels``, also prints the operators that keep the GPU busy
    longest, by their own kernels' time.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(n_steps):
            model.step(batch_size, i)
        synchronize(device)
    if top_kernels:
        print(f"\n{model.name} at batch {batch_size}: the {top_kernels} operators with the "
              f"longest kernels over {n_steps} steps")
        print(prof.key_averages().table(sort_by="self_device_time_total",
                                        row_limit=top_kernels))
    micros = sum(e.self_device_time_total for e in prof.events()
                 if e.device_type == DeviceType.CUDA and not e.is_user_annotation)
    return micros * 1e-6


def timed(fn, device, n_calls):
    synchronize(device)
    start = time.perf_counter()
    for i in range(n_calls):
        fn(i)
    synchronize(device)
    return time.perf_counter() - start


def copy_bandwidth(device, n_bytes, repeats):
    """Median bytes per second of dst.copy_(src): each byte read once and written once."""
    src = torch.empty(n_bytes, dtype=torch.uint8, device=device).random_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = [timed(lambda _: dst.copy_(src), device, 5) / 5 for _ in range(repeats)]
    return 2 * n_bytes / statistics.median(seconds)


def nominal_bandwidth(device):
    """Nominal bytes per second of a CUDA device, or None where torch does not say."""
    props = torch.cuda.get_device_properties(device)
    clock_khz = getattr(props, "memory_clock_rate", 0)
    bus_bits = getattr(props, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8


def steps_for(model, batch_size, device, min_seconds):
    """Steps per timed region: enough for min_seconds, judged from one step."""
    one = timed(lambda i: model.step(batch_size, i), device, 1)
    return max(3, min(1000, math.ceil(min_seconds / max(one, 1e-6))))


def describe_device(device):
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, "
                f"{props.multi_processor_count} SMs; TF32 convolutions "
                f"{torch.backends.cudnn.allow_tf32}, TF32 matmul "
                f"{torch.backends.cuda.matmul.allow_tf32}")
    return f"CPU, {torch.get_num_threads()} torch threads"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto",
                        help="'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per model and size")
    parser.add_argument("--min-seconds", type=float, default=0.5,
                        help="length of each timed region")
    parser.add_argument("--copy-mib", type=int, default=1024,
                        help="size of the buffer of the peak-bandwidth copy")
    parser.add_argument("--mode", choices=["eager", "compile", "cudagraphs"], default="eager",
                        help="run the modules eagerly, through torch.compile, or through "
                             "torch.compile with CUDA graphs (mode='reduce-overhead')")
    parser.add_argument("--optimizer-impl", choices=list(OPTIMIZER_IMPLS), default="fused",
                        help="AdamW's implementation; 'fused' is what the estimators use on "
                             "the CPU and CUDA, 'default' torch's choice for the device")
    parser.add_argument("--top-kernels", type=int, default=0, metavar="N",
                        help="on CUDA, print the N operators with the longest kernels of "
                             "each model at the largest batch size")
    parser.add_argument("--quick", action="store_true",
                        help="batch sizes 64 and 256, 3 repeats, short regions, 64 MiB copy")
    args = parser.parse_args()
    if args.quick:
        args.batch_sizes, args.repeats, args.warmup = [64, 256], 3, 2
        args.min_seconds, args.copy_mib = 0.1, 64
    if min(args.batch_sizes) < 1 or args.repeats < 1:
        parser.error("batch sizes and --repeats must be positive")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.mode == "cudagraphs" and not args.device.startswith("cuda"):
        parser.error("--mode cudagraphs needs a CUDA device")
    if args.mode != "eager":
        # A warm-up long enough to compile every shape of the timed steps.
        args.warmup = max(args.warmup, 3)
    return args


def measure_pair(pair, batch, args, device):
    """Median samples/s, traffic and operators of both models of a pair at one batch size."""
    steps = {}
    for model in pair:
        for i in range(args.warmup):
            model.step(batch, i)
        steps[model.name] = steps_for(model, batch, device, args.min_seconds)
    rates = {model.name: [] for model in pair}
    # Interleaved, so that drifting clocks or load affect both alike.
    for _ in range(args.repeats):
        for model in pair:
            n = steps[model.name]
            seconds = timed(lambda i, m=model: m.step(batch, i), device, n)
            rates[model.name].append(batch * n / seconds)
    row = {}
    for model in pair:
        rate = statistics.median(rates[model.name])
        n_bytes, n_ops = step_traffic(model, batch, device)
        busy = None
        if device.type == "cuda":
            # A few steps suffice for a share; the profiler's own work grows with each event.
            n = min(steps[model.name], PROFILED_STEPS)
            top = args.top_kernels if batch == max(args.batch_sizes) else 0
            busy = kernel_busy_seconds(model, batch, device, n, top) / (n * batch / rate)
        row[model.name] = (rate, n_bytes, n_ops, busy)
        loss = float(model.last_loss)
        if not math.isfinite(loss):
            print(f"warning: {model.name} loss became {loss} at batch {batch}")
    return row


def main():
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        # Fixed shapes: let cuDNN pick its fastest convolution for the CNN.
        torch.backends.cudnn.benchmark = True
    pool_size = 2 * max(args.batch_sizes)
    pairs = build_pairs(args.families, device, pool_size, min(pool_size, 1797), args)
    print(f"device: {describe_device(device)}; torch {torch.__version__}; mode {args.mode}, "
          f"AdamW implementation {args.optimizer_impl}")
    print("parameters: " + "; ".join(
        f"{net.name} {n_parameters(net.eager)}, {plain.name} {n_parameters(plain.eager)}"
        for net, plain in pairs) + "; float32, 16x16 inputs, AdamW")

    peak = copy_bandwidth(device, args.copy_mib * 2**20, max(args.repeats, 5))
    nominal = nominal_bandwidth(device) if device.type == "cuda" else None
    print(f"peak bandwidth, {args.copy_mib} MiB copy: {peak / 1e9:.1f} GB/s" + (
        f"; nominal {nominal / 1e9:.0f} GB/s" if nominal else
        "; nominal: not available from torch on this device"))

    rows = [(pair, batch, measure_pair(pair, batch, args, device))
            for pair in pairs for batch in args.batch_sizes]

    print("\nTraining throughput, samples per second (median of "
          f"{args.repeats} interleaved repeats)")
    print(f"{'model':<8} {'plain':<6} {'batch':>6} {'model':>10} {'plain':>10} {'ratio':>7}")
    for (net, plain), batch, row in rows:
        q, c = row[net.name][0], row[plain.name][0]
        print(f"{net.name:<8} {plain.name:<6} {batch:>6} {q:>10.0f} {c:>10.0f} {q / c:>7.3f}")

    print("\nOperators and memory traffic per step (operator-level count, eager), "
          "achieved bandwidth")
    header = (f"{'batch':>6} {'model':<8} {'fwd+bwd':>7} {'optim':>6} {'ops':>5} "
              f"{'MB/step':>9} {'GB/s':>8} {'% of copy':>9}")
    header += f" {'% nominal':>9}" if nominal else ""
    header += f" {'kernel busy':>11}" if device.type == "cuda" else ""
    print(header)
    for pair, batch, row in rows:
        for model in pair:
            rate, n_bytes, n_ops, busy = row[model.name]
            achieved = n_bytes * rate / batch
            model_ops, optimizer_ops = n_ops["forward and backward"], n_ops["optimizer"]
            line = (f"{batch:>6} {model.name:<8} {model_ops:>7} {optimizer_ops:>6} "
                    f"{model_ops + optimizer_ops:>5} {n_bytes / 1e6:>9.2f} "
                    f"{achieved / 1e9:>8.2f} {100 * achieved / peak:>8.1f}%")
            line += f" {100 * achieved / nominal:>8.1f}%" if nominal else ""
            line += f" {100 * busy:>10.0f}%" if busy is not None else ""
            print(line)


if __name__ == "__main__":
    main()
