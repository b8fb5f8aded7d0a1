"""The layers import only what they need: the entanglement engine runs without torch."""

import subprocess
import sys

import pytest


def modules_after_import(module):
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    return set(result.stdout.split())


@pytest.mark.parametrize("module", ["skqcnn", "skqcnn.entanglement", "skqcnn.plotting"])
def test_light_layers_do_not_import_torch(module):
    loaded = modules_after_import(module)
    heavy = sorted(name for name in loaded
                   if name in ("torch", "skorch") or name.startswith("skqcnn.nn")
                   or name.startswith("skqcnn.callbacks"))
    assert heavy == [], f"import {module} loads {heavy}"


def test_persistence_is_a_package_with_save_and_load():
    import skqcnn

    loaded = modules_after_import("skqcnn._persistence")
    assert {"skqcnn._persistence._codec", "skqcnn._persistence._format",
            "skqcnn._persistence._estimator"} <= loaded
    assert skqcnn.save.__module__ == skqcnn.load.__module__ == "skqcnn._persistence._estimator"
