"""
Quick start: fit, score, entanglement, persistence
===================================================

Train a :class:`~skqcnn.QCNNClassifier` on scikit-learn's 8x8 digits, measure
the entanglement entropy of every class's network state across two cuts of the
image, and save and reload the model.
"""

# %%
# Fit and score
# -------------
# ``max_epochs=20``, half the default, keeps this example short (set
# ``FULL = True`` for the default 40 epochs); the test accuracy it reaches is
# printed below.
import tempfile
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skqcnn import QCNNClassifier

FULL = False
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
clf = QCNNClassifier(random_state=0, **({} if FULL else {"max_epochs": 20}))
clf.fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# Entanglement of the class states
# --------------------------------
# ``left_right`` (the default partition) cuts the image into its left and
# right halves, the network's top split, where the entropy is exact at any
# size. ``up_down`` cuts through two bonds and is exact too. ``alpha=1``
# asks for the von Neumann entropy (the default order is Renyi-2, which every
# family answers at every size). Values are in nats.
left_right = clf.entanglement_entropy("left_right", alpha=1)
up_down = clf.entanglement_entropy("up_down", alpha=1)
for label, s_lr, s_ud in zip(clf.classes_, left_right, up_down):
    print(f"class {label}: S(left | right) = {s_lr:.3f} nats, "
          f"S(up | down) = {s_ud:.3f} nats")
positions = np.arange(clf.classes_.size)
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
ax.bar(positions - 0.2, left_right, width=0.4, label="left | right")
ax.bar(positions + 0.2, up_down, width=0.4, label="up | down")
ax.set_xticks(positions, clf.classes_)
ax.set_xlabel("class")
ax.set_ylabel("von Neumann entropy (nats)")
ax.legend(title="cut")

# %%
# The minimum-cut bound says how large the Schmidt rank could be, and which
# bonds the cheapest cut crosses; its logarithm bounds every entropy across
# that cut. The trained states stay far below it (less than half of it,
# asserted below).
bound, cut = clf.schmidt_rank_bound("left_right", return_cut=True)
print("Schmidt-rank bound:", bound, "through", cut)
print(f"log of the bound: {np.log(bound):.3f} nats; largest entropy across the cut: "
      f"{left_right.max():.3f} nats")
rank = clf.schmidt_spectrum("left_right", classes=[0])[0].size
print("rank of class 0:", rank)
# The bound holds: no rank above it, no entropy above its logarithm.
assert rank <= bound and left_right.max() < np.log(bound) / 2

# %%
# Persistence
# -----------
# :func:`skqcnn.save` writes one safetensors file: hyperparameters, fitted
# attributes and histories as JSON, weights as raw tensors. :func:`skqcnn.load`
# reads it without unpickling anything, so a shared file cannot run code.
# joblib works too, but load pickles only from sources you trust.
import skqcnn

path = Path(tempfile.mkdtemp()) / "qcnn.safetensors"
skqcnn.save(clf, path)
loaded = skqcnn.load(path)
assert (loaded.predict(X_test) == clf.predict(X_test)).all()
assert np.array_equal(loaded.entanglement_entropy("left_right", alpha=1), left_right)

joblib.dump(clf, path.with_suffix(".joblib"))
reloaded = joblib.load(path.with_suffix(".joblib"))
assert (reloaded.predict(X_test) == clf.predict(X_test)).all()
