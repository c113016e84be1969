"""The benchmark scripts start and describe their options (no run, no timing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["bench.py", "roundtrips.py"])
def test_help_lists_the_batching_and_json_options(script: str) -> None:
    shown = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    for option in ("--quick", "--json", "--no-batching", "--batch-size", "--batch-wait-ms"):
        assert option in shown
