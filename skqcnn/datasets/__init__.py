"""Data sets for skqcnn's examples and benchmarks, all scaled to [0, 1].

- :func:`load_digits_images`, :func:`load_digits_split`: scikit-learn's 8x8
  digits, shipped with scikit-learn, and the split the benchmarks use;
- :func:`fetch_mnist`, :func:`fetch_fashion_mnist`: the 28x28 OpenML data
  sets, downloaded once and cached, by default resized to 16x16;
- :func:`make_local_global_task`: digits on a canvas, small (a local task) or
  large (a global one), after Levine et al. (ICLR 2018);
- :func:`area_resize`: the anti-aliased resizing they use.

Only numpy and scikit-learn are needed; torch is not imported.
"""

from ._digits import load_digits_images, load_digits_split
from ._local_global import make_local_global_task
from ._openml import fetch_fashion_mnist, fetch_mnist
from ._resize import area_resize

__all__ = [
    "area_resize",
    "fetch_fashion_mnist",
    "fetch_mnist",
    "load_digits_images",
    "load_digits_split",
    "make_local_global_task",
]
