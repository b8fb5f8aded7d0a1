"""The ``skqcnn`` command line."""

import re
import subprocess
import sys

import pytest

from skqcnn import load
from skqcnn._cli import main


def test_demo_prints_accuracy_confusions_entropies_and_saves(tmp_path, capsys):
    output = tmp_path / "model.safetensors"
    assert main(["demo", "--max-epochs", "2", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "Test accuracy: 0." in printed
    assert "Worst classes" in printed and "confused with" in printed
    assert "Entanglement entropy (left_right, nats)" in printed
    assert "Entanglement entropy (up_down, nats)" in printed
    assert load(output).classes_.tolist() == list(range(10))


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "skqcnn", "--help"],
                            capture_output=True, text=True, check=True)
    assert "demo" in result.stdout


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (["--max-epochs", "0"], "--max-epochs: must be a positive int"),
    (["--max-epochs", "abc"], "--max-epochs: must be a positive int, got 'abc'"),
    (["--random-state", "-1"], r"--random-state: must be an int in \[0, 2\*\*32 - 1\]"),
    (["--output", "{tmp}"], "--output: Cannot save to .*: it is a directory"),
    (["--output", "{tmp}/absent/model.safetensors"], "--output: .* no directory"),
])
def test_bad_options_exit_with_usage_before_training(options, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo"] + [option.format(tmp=tmp_path) for option in options])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert re.search(message, captured.err) and "Training" not in captured.out
