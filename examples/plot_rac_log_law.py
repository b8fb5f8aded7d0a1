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
            for norm in net.norms[layer]:
                norm.weight.fill_(1.0)
                norm.bias.zero_()
                norm.running_mean.zero_()
                norm.running_var.fill_(1.0)
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
    [rac_rank_bound(N_STEPS, LOCAL_DIM, (HIDDEN,) * depth, np.arange(N_STEPS) >= N_STEPS - n_a)
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
# The table: means over seeds, in bits.
header = " |A| | lower |" + "|".join(
    f" depth {depth}: log2 rank   S  upper " for depth in DEPTHS
)
print(header)
for j, n_a in enumerate(sizes):
    row = f"{n_a:4d} | {lower[j]:5.2f} |"
    row += "|".join(
        f" {log_rank[d, :, j].mean():17.2f} {entropy[d, :, j].mean():5.2f} {upper[d, j]:5.2f} "
        for d in range(len(DEPTHS))
    )
    print(row)
print("depth 1, T = 200, mean entropy at |A| = 1, 10, 100:",
      np.round(long_entropy.mean(0)[[0, 9, 99]], 2))

# %%
# Plot
# ----
# Left: log2 of the Schmidt rank (lines: mean over seeds; shading: range),
# with the Theorem-2 lower bound (black) and the min-cut upper bounds
# (dashed). Right: von Neumann entropy, with depth 1 at ``T = 200`` as well.
fig, (ax_rank, ax_ent) = plt.subplots(1, 2, figsize=(10, 4))
for d, depth in enumerate(DEPTHS):
    color = f"C{d}"
    ax_rank.plot(sizes, log_rank[d].mean(0), "o-", color=color, label=f"depth {depth}")
    ax_rank.fill_between(sizes, log_rank[d].min(0), log_rank[d].max(0), color=color,
                         alpha=0.2)
    ax_rank.plot(sizes, upper[d], "--", color=color, label=f"upper bound, depth {depth}")
    ax_ent.plot(sizes, entropy[d].mean(0), "o-", color=color, label=f"depth {depth}")
    ax_ent.fill_between(sizes, entropy[d].min(0), entropy[d].max(0), color=color,
                        alpha=0.2)
ax_rank.plot(sizes, lower, "k-", lw=2, label="lower bound log2 C(min(R,M)+|A|-1, |A|)")
ax_rank.set_xlabel("|A| (last steps)")
ax_rank.set_ylabel("log2 Schmidt rank (bits)")
ax_rank.legend(fontsize="x-small")
ax_ent.plot(long_sizes[:sizes[-1] * 2], long_entropy.mean(0)[:sizes[-1] * 2], ":",
            color="C0", label="depth 1, T = 200")
ax_ent.set_xlabel("|A| (last steps)")
ax_ent.set_ylabel("von Neumann entropy (bits)")
ax_ent.legend(fontsize="small")
fig.tight_layout()

# %%
# Reading the figure
# ------------------
# Depth 1 shows the area law. Its rank stops at ``1 + R = 4`` as soon as
# ``|A| = 2``. Its entropy levels off at about 1.58 bits (``log2 3``: the
# constant channel barely contributes) and stays there out to ``|A| = 100``
# at ``T = 200``. Depths 2 and 3 keep growing and stay above the Theorem-2
# lower bound at every ``|A|``. At these sizes they even stay well above it,
# which the theorem allows: it only says that some weights, and so almost all
# weights, reach at least that rank.
# The depth-2 log-rank rises by ``log2 3`` bits per step up to ``|A| = 3``,
# then by less and less (0.8, 0.5 and 0.4 bits), a bend towards slower
# growth. Depth 3 follows the cap ``M**|A|`` up to ``|A| = 5``, so at
# ``T = 12`` it shows no logarithmic regime at all. For depth 2 and 3 the
# min-cut upper bound is the cap ``M**|A|`` up to ``|A| = 5``, so it cannot
# tell a logarithmic law from a volume law here.
# The depth-2 entropy grows with the rank, up to about 4.6 bits. The depth-3
# entropy is lower and varies from seed to seed. Its third layer multiplies
# vectors of uneven magnitude, so the amplitudes span several orders of
# magnitude and a few configurations dominate. A high rank with a small
# entropy is what that looks like.
