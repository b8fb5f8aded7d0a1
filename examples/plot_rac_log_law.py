"""
Deep recurrent networks: area law versus logarithmic growth
===========================================================

Theorem 2 of Levine, Sharir, Cohen and Shashua (PRL 2019): a depth-1
recurrent arithmetic circuit (RAC) is a matrix product state of bond
dimension ``1 + R``, so the entanglement between the last ``|A|`` steps and
the rest saturates at once (an area law). From depth 2 on, inputs are re-used
and some weights reach a Schmidt rank of at least
``C(min(R, M) + |A| - 1, |A|)`` (for ``|A| <= T / 2``), whose logarithm keeps
growing, like ``log |A|``.

Below, random RACs of depth 1, 2 and 3 are enumerated exactly and their
entanglement is compared with that lower bound
(:func:`~skqcnn.entanglement.rac_rank_lower_bound`) and with the min-cut
upper bound (:func:`~skqcnn.entanglement.rac_rank_bound`).
"""

# %%
# Setting
# -------
# ``T = 12`` steps with ``M = 3`` states each (``3**12`` = 531441 amplitudes)
# and ``R = 3`` hidden channels per layer. Block A is the last ``|A|`` steps,
# ``|A| = 1 .. T / 2``. Set ``FULL = True`` to average over 8 random draws
# instead of 3.
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from skqcnn.entanglement import (
    entropy_from_spectrum,
    enumerate_amplitudes,
    rac_mps_entropies,
    rac_rank_bound,
    rac_rank_lower_bound,
)
from skqcnn.nn import DeepRACNetwork

FULL = False
N_STEPS, LOCAL_DIM, HIDDEN = 12, 3, 3
N_SEEDS = 8 if FULL else 3
DEPTHS = (1, 2, 3)
torch.set_num_threads(1)
sizes = np.arange(1, N_STEPS // 2 + 1)

# %%
# Random weights that keep the state well spread
# ----------------------------------------------
# A product over ``T`` steps magnifies any spread in the magnitude of the
# factors, and a state dominated by a few configurations has a tiny
# entropy. So the hidden maps ``W^H`` (and the input maps ``W^I`` of layers
# 2 and 3) get a random orthogonal block on the non-constant channels, and
# the first layer's ``W^I`` maps the ``M`` input states to random sign
# vectors with a common last sign, so that no two are equal or opposite. A
# depth-1 RAC then keeps the norm of the non-constant part of its hidden
# state for every configuration. Deeper layers still multiply vectors of
# varying magnitude, so their amplitudes spread over several orders of magnitude.
# The BatchNorms are identities.


def random_orthogonal(n, gen):
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def random_rac(depth, seed, n_steps=N_STEPS):
    net = DeepRACNetwork(n_steps, LOCAL_DIM, (HIDDEN,) * depth, n_classes=1).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in range(depth):
            hidden = net.hidden_weights[layer]
            hidden.zero_()
            hidden[:, 1:] = random_orthogonal(HIDDEN, gen)
            inputs = net.input_weights[layer]
            if layer == 0:
                codes = torch.randperm(2 ** (HIDDEN - 1), generator=gen)[:LOCAL_DIM]
                bits = (codes >> torch.arange(HIDDEN).unsqueeze(1)) & 1
                inputs.copy_(1.0 - 2.0 * bits)
            else:
                inputs.zero_()
                inputs[:, 1:] = random_orthogonal(HIDDEN, gen)
            net.initial_states[layer].fill_(1.0)
            norms = net.norms[layer]
            norms.weight.fill_(1.0)
            norms.bias.zero_()
            norms.running_mean.zero_()
            norms.running_var.fill_(1.0)
        net.readout.weight.copy_(torch.randn(net.readout.weight.shape, generator=gen,
                                             dtype=torch.float64))
    return net.eval()


# %%
# Exact entanglement by enumeration
# ---------------------------------
# With the steps in C order (the last step fastest) the cut "first ``T - |A|``
# steps | last ``|A|`` steps" is a plain reshape. As in the volume-law
# example, the rank counts singular values above ``1e-10`` of the largest,
# and the entropy (bits) is that of the same truncated spectrum.
RANK_TOL = 1e-10
start = time.perf_counter()
log_rank = np.zeros((len(DEPTHS), N_SEEDS, sizes.size))
entropy = np.zeros_like(log_rank)
for d, depth in enumerate(DEPTHS):
    for seed in range(N_SEEDS):
        psi = enumerate_amplitudes(random_rac(depth, seed), N_STEPS, LOCAL_DIM)[0]
        for j, n_a in enumerate(sizes):
            s = np.linalg.svd(psi.reshape(-1, LOCAL_DIM**n_a), compute_uv=False)
            kept = s[s > RANK_TOL * s[0]] / s[0]
            log_rank[d, seed, j] = math.log2(kept.size)
            entropy[d, seed, j] = entropy_from_spectrum(kept**2, base=2)
print(f"enumeration of {len(DEPTHS) * N_SEEDS} networks: "
      f"{time.perf_counter() - start:.1f} s")

lower = np.log2([rac_rank_lower_bound(HIDDEN, LOCAL_DIM, n_a) for n_a in sizes])
upper = np.log2([
    [rac_rank_bound(N_STEPS, LOCAL_DIM, (HIDDEN,) * depth,
                    np.arange(N_STEPS) >= N_STEPS - n_a)
     for n_a in sizes]
    for depth in DEPTHS
])

# %%
# A depth-1 RAC is an MPS, so :func:`~skqcnn.entanglement.rac_mps_entropies`
# gives its entropies at any length without enumeration: here ``T = 200``.
long_sizes = np.arange(1, 101)
long_entropy = np.array([
    rac_mps_entropies(random_rac(1, seed, n_steps=200), n_a=long_sizes)[0]
    for seed in range(N_SEEDS)
]) / math.log(2)

# %%
# The tables: means over seeds, in bits, one quantity per table. The first
# column of the rank table is the Theorem-2 lower bound, which concerns depth
# 2 and more only.
def print_table(title, columns):
    print(title)
    print(" |A| " + "".join(f"{name:>10}" for name in columns))
    for j, n_a in enumerate(sizes):
        print(f"{n_a:4d} " + "".join(f"{values[j]:10.2f}" for values in columns.values()))
    print()


depth_names = [f"depth {depth}" for depth in DEPTHS]
print_table("log2 Schmidt rank", {"Thm 2": lower, **{
    name: log_rank[d].mean(0) for d, name in enumerate(depth_names)}})
print_table("min-cut upper bound, log2", dict(zip(depth_names, upper)))
print_table("von Neumann entropy (bits)", {
    name: entropy[d].mean(0) for d, name in enumerate(depth_names)})

# %%
# The claims the text below makes, checked on this run. Depth 1 is a matrix
# product state of bond dimension ``1 + R``; deeper networks reach the
# Theorem-2 lower bound; no rank exceeds its min-cut bound.
assert (log_rank[0] <= math.log2(1 + HIDDEN) + 1e-9).all()
assert (log_rank[1:] >= lower - 1e-9).all()
assert (log_rank <= upper[:, None, :] + 1e-9).all()
cap = sizes * math.log2(LOCAL_DIM)
for d, depth in enumerate(DEPTHS):
    at_cap = np.isclose(log_rank[d].mean(0), cap)
    reach = sizes[at_cap.argmin()] - 1 if not at_cap.all() else sizes[-1]
    print(f"depth {depth}: log2 rank grows by "
          f"{np.round(np.diff(log_rank[d].mean(0)), 2).tolist()} bits per added step,\n"
          f"         equals log2 M**|A| up to |A| = {reach}")
plateau = long_entropy.mean(0)
print(f"depth 1, T = 200: mean entropy {plateau[0]:.2f} bits at |A| = 1, "
      f"{plateau[9]:.2f} at |A| = 10, {plateau[99]:.2f} at |A| = 100;\n"
      f"         largest over all |A| and seeds {long_entropy.max():.2f} bits, "
      f"log2(1 + R) = {math.log2(1 + HIDDEN):.2f}")
assert long_entropy.max() <= math.log2(1 + HIDDEN) + 1e-9

# %%
# Plot
# ----
# Left: log2 of the Schmidt rank (markers: mean over seeds; shading: range),
# the min-cut upper bounds (wide pale bands, drawn behind: where a network
# reaches its bound the markers sit on the band; grey where several depths
# share it) and the Theorem-2 lower bound
# (black), which applies to depth 2 and 3 only. Right: von Neumann entropy.
fig, (ax_rank, ax_ent) = plt.subplots(1, 2, figsize=(9, 5.2), layout="constrained")
# Depths with the same bound share one band, which would otherwise hide the
# first under the last.
same_bound = {}
for d, depth in enumerate(DEPTHS):
    same_bound.setdefault(tuple(upper[d]), []).append(depth)
for bound, depths in same_bound.items():
    color = f"C{DEPTHS.index(depths[0])}" if len(depths) == 1 else "0.5"
    ax_rank.plot(sizes, bound, "-", color=color, lw=7, alpha=0.3, zorder=1,
                 label=f"depth {' and '.join(map(str, depths))}: min-cut upper bound")
for d, depth in enumerate(DEPTHS):
    color = f"C{d}"
    ax_rank.plot(sizes, log_rank[d].mean(0), "o-", color=color, ms=5, zorder=3,
                 label=f"depth {depth}: measured")
    ax_rank.fill_between(sizes, log_rank[d].min(0), log_rank[d].max(0), color=color,
                         alpha=0.2, zorder=2)
    ax_ent.plot(sizes, entropy[d].mean(0), "o-", color=color, label=f"depth {depth}")
    ax_ent.fill_between(sizes, entropy[d].min(0), entropy[d].max(0), color=color,
                        alpha=0.2)
ax_rank.plot(sizes, lower, "k:", lw=2.5, zorder=4,
             label="Theorem 2 lower bound (depth >= 2 only)")
ax_rank.set_xlabel("|A| (last steps)")
ax_rank.set_ylabel("log2 Schmidt rank (bits)")
ax_rank.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1, fontsize="small")
ax_ent.set_xlabel("|A| (last steps)")
ax_ent.set_ylabel("von Neumann entropy (bits)")
ax_ent.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1, fontsize="small")
for ax in (ax_rank, ax_ent):
    ax.set_title(f"T = {N_STEPS}, M = {LOCAL_DIM}, R = {HIDDEN}, {N_SEEDS} draws")
    ax.grid(alpha=0.3)

# %%
# Depth 1 at ``T = 200``, out to ``|A| = 100``: the entropy of the matrix
# product state against ``log2(1 + R)``, the most its bond dimension allows.
fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
ax.plot(long_sizes, long_entropy.mean(0), "-", color="C0",
        label="depth 1, mean over seeds")
ax.fill_between(long_sizes, long_entropy.min(0), long_entropy.max(0), color="C0",
                alpha=0.2)
ax.axhline(math.log2(1 + HIDDEN), color="C0", ls="--",
           label="log2(1 + R): bond dimension")
ax.set_xlabel("|A| (last steps)")
ax.set_ylabel("von Neumann entropy (bits)")
ax.set_ylim(0, math.log2(1 + HIDDEN) * 1.15)
ax.set_title("depth-1 RAC, T = 200")
ax.legend(loc="lower right", fontsize="small")

# %%
# Reading the figures
# -------------------
# Depth 1 shows the area law: its rank never exceeds ``1 + R`` (asserted
# above), and at ``T = 200`` its entropy levels off after the first steps and
# stays below ``log2(1 + R)`` out to ``|A| = 100`` (the printed values).
# Depths 2 and 3 keep growing and stay at or above the Theorem-2 lower bound
# at every ``|A|`` (asserted). At these sizes they stay well above it, which
# the theorem allows: it says that some weights, and so almost all weights,
# reach at least that rank. The printed increments show how the log-rank of
# each depth grows step by step: following the cap ``M**|A|`` (the min-cut
# bound, which at these sizes is the cap itself for depth 2 and 3, so it
# cannot tell a logarithmic law from a volume law), then bending away from
# it. The depth-3 entropy can be much lower than its rank allows: its third
# layer multiplies vectors of uneven magnitude, so the amplitudes span
# several orders of magnitude and a few configurations dominate. A high rank
# with a small entropy is what that looks like.
