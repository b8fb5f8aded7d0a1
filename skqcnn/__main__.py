"""``python -m skqcnn``: the same as the ``skqcnn`` console script."""

from ._cli import main

raise SystemExit(main())
