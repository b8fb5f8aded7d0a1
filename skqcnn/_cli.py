"""The ``skqcnn`` command line."""

import argparse
import sys
import time


def _demo(args):
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import train_test_split

    from . import QCNNClassifier, save

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    params = {"random_state": args.random_state, "verbose": 1}
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    clf = QCNNClassifier(**params)
    print(f"Training {clf!r} on load_digits: {len(X_train)} train / {len(X_test)} test images (8x8).")
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    y_pred = clf.predict(X_test)
    accuracy = float(np.mean(y_pred == y_test))
    print(f"\nTest accuracy: {accuracy:.4f}   (fit time {fit_time:.1f} s on {clf.device_})")

    matrix = confusion_matrix(y_test, y_pred, labels=clf.classes_)
    recall = matrix.diagonal() / matrix.sum(axis=1)
    print("\nWorst classes (recall, most frequent confusions):")
    for k in np.argsort(recall)[:3]:
        row = matrix[k].copy()
        row[k] = 0
        confusions = ", ".join(
            f"{clf.classes_[j]} x{row[j]}" for j in np.argsort(row)[::-1] if row[j] > 0
        )
        print(f"  class {clf.classes_[k]}: recall {recall[k]:.3f}   confused with: {confusions or 'none'}")

    for partition in ("left_right", "up_down"):
        entropies = clf.entanglement_entropy(partition)
        values = "  ".join(f"{c}:{s:.3f}" for c, s in zip(clf.classes_, entropies))
        print(f"\nEntanglement entropy ({partition}, nats) per class:\n  {values}")

    save(clf, args.output)
    print(f"\nSaved the fitted model to {args.output}; skqcnn.load reads it back "
          f"(JSON and safetensors: loading runs no code).")
    return 0


def _int_in(low, high, expected):
    """An argparse type: an int in ``[low, high)``, else a usage error saying ``expected``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value >= high):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
        return value

    return parse


def main(argv=None):
    """Entry point of the ``skqcnn`` console script.

    Parameters
    ----------
    argv : list of str or None
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    status : int
        Process exit status.
    """
    parser = argparse.ArgumentParser(prog="skqcnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train a QCNNClassifier on load_digits, print accuracy and entropies",
    )
    demo.add_argument("--max-epochs", type=_int_in(1, None, "a positive int"), default=None,
                      help="training epochs (default: the estimator's default)")
    demo.add_argument("--random-state", type=_int_in(0, 2**32, "an int in [0, 2**32 - 1]"),
                      default=0)
    demo.add_argument("--output", default="skqcnn-digits.safetensors",
                      help="where to save the fitted model (default: %(default)s)")
    args = parser.parse_args(argv)
    from ._persistence._format import check_save_path

    try:
        # Before training, not after it.
        check_save_path(args.output)
    except (ValueError, FileNotFoundError) as error:
        demo.error(f"argument --output: {error}")
    return _demo(args)


if __name__ == "__main__":
    sys.exit(main())
