"""The package's types hold: ``mypy --strict`` accepts an example that uses them."""

from __future__ import annotations

import pathlib
import subprocess
import sys


def test_mypy_strict_accepts_the_example() -> None:
    example = pathlib.Path(__file__).with_name("typing_example.py")
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(example)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
