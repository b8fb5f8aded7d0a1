"""
Entanglement during training
============================

Anagiannis & Cheng (figures 2 and 3) watched the entanglement entropy of the
q-CNN's class states while it trained: after the first epochs it rises as the
loss falls. This example records it with ``track_entanglement`` on
scikit-learn's digits, plots it per class and against the training loss, and
measures how strongly the two anti-correlate. Every number quoted below is
printed by this run; the claims the text makes are checked by ``assert``
statements, so the page cannot be built if the run contradicts them.
"""

# %%
# Train with tracking
# -------------------
# ``track_entanglement`` takes partitions (here both halvings of the image);
# after every ``track_every`` epochs the tracker folds the network with the
# BatchNorm statistics of that moment and computes each class's Renyi-2
# entropy exactly, from the Schmidt spectrum of each cut (the default order of
# ``entanglement_entropy``; an ``EntanglementTracker`` passed through
# ``callbacks=`` takes another ``alpha``). Epoch 0 is the untrained network. The run trains for the
# default 40 epochs; ``FULL = True`` trains for 80.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skqcnn import QCNNClassifier
from skqcnn.plotting import plot_entropy_history, plot_entropy_vs_loss

FULL = False
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
clf = QCNNClassifier(
    track_entanglement=["left_right", "up_down"],
    random_state=0,
    **({"max_epochs": 80} if FULL else {}),
)
clf.fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

history = clf.entanglement_history_
CUT_NAMES = {"left_right": "left half | right half", "up_down": "upper half | lower half"}
for partition in history.partitions:
    epochs, entropies = history.as_array(partition)
    print(f"{partition:>10}: largest entropy of a class state at epoch 0: "
          f"{np.abs(entropies[0]).max():.1e} nats")
    # The untrained network's class states are product states.
    assert np.abs(entropies[0]).max() < 1e-8

# %%
# Entropy per class against epoch
# -------------------------------
# Thin lines are the ten classes, the thick line their mean (the paper's
# figure 2c/d). Before training every class state is a product state: the
# entropies printed above are zero to rounding. The entropy grows within the
# first epochs and then settles.
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8), sharey=True, layout="constrained")
for ax, partition in zip(axes, history.partitions):
    plot_entropy_history(history, partition=partition, ax=ax)
    ax.set_title(f"cut: {CUT_NAMES[partition]}")
# One legend for both panels, outside the right one.
axes[0].get_legend().remove()
axes[1].set_ylabel("")

# %%
# Entropy against the training loss
# ---------------------------------
# Each point is one trained epoch (the paper's figure 3a), coloured by the
# epoch; the dashed line is the least-squares fit and its legend gives the
# Pearson correlation ``r`` between the mean entropy and the loss. A negative
# ``r`` is the trend the paper reports: entropy up, loss down.
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8), sharey=True, layout="constrained")
for ax, partition in zip(axes, history.partitions):
    plot_entropy_vs_loss(history, partition=partition, trend=True,
                         colorbar=ax is axes[-1], ax=ax)
    ax.set_title(f"cut: {CUT_NAMES[partition]}")
axes[1].set_ylabel("")

EARLY = 5
losses = np.asarray(clf.history_[:, "train_loss"])
for partition in history.partitions:
    epochs, entropies = history.as_array(partition)
    mean_entropy = entropies.mean(axis=1)
    trained = epochs > 0
    pearson = np.corrcoef(mean_entropy[trained], losses[epochs[trained] - 1])[0, 1]
    early_gain = mean_entropy[epochs == EARLY][0] - mean_entropy[0]
    late_change = mean_entropy[-1] - mean_entropy[epochs == EARLY][0]
    late_loss = losses[epochs[-1] - 1] - losses[EARLY - 1]
    last = epochs[-1]
    print(f"{partition}:")
    print(f"  mean entropy, epochs 0 -> {EARLY}: {early_gain:+.3f} nats (train loss "
          f"{losses[0]:.4f} after epoch 1, {losses[EARLY - 1]:.4f} after {EARLY})")
    print(f"  mean entropy, epochs {EARLY} -> {last}: {late_change:+.3f} nats "
          f"(train loss changes by {late_loss:+.4f})")
    print(f"  Pearson r(mean entropy, train loss) over epochs 1-{last}: {pearson:+.2f}")
    # The paper's early phase: the entropy rises while the loss falls.
    assert early_gain > 0 and losses[EARLY - 1] < losses[0]
    if pearson < 0:
        verdict = "anti-correlated with the loss over the whole run"
    else:
        verdict = "not anti-correlated with the loss over the whole run"
        if late_change < 0 < -late_loss:
            verdict += (f":\n     after epoch {EARLY} it falls while the loss "
                        "keeps falling")
    print(f"  -> the {partition} entropy is {verdict}")

# %%
# What this run shows: the mean entropy of both cuts rises within the first
# five epochs, while the loss falls (the first printed line of each
# cut; the rise is asserted). Over all trained epochs the sign of ``r``, in the
# legends above and in the printed lines, says whether the anti-correlation the
# paper reports lasts beyond that early phase; the last line of each cut
# spells out the verdict of this run, and the line "epochs 5 -> 40" (or 80)
# shows what the entropy does once the early rise is over.

# %%
# How much tracking costs
# -----------------------
# The tracker times itself. ``left_right`` is the tree's top split: each class
# needs a matrix of the top bond's size only. ``up_down`` cuts two bonds one
# level below, so each class needs the SVD of a matrix whose side is the
# product of their sizes: it dominates the cost. ``track_every`` thins it out.
tracker = dict(clf.net_.callbacks_)["entanglement_tracker"]
train_seconds = float(np.sum(clf.history_[:, "dur"]))
print(f"tracking took {tracker.seconds_:.1f} s next to {train_seconds:.1f} s of training")
plt.show()
