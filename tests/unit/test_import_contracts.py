"""The package boundaries in pyproject's [tool.importlinter] hold, and a deliberate
violation breaks them (so `lint-imports` in .ci/run would catch a new one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=project,
        # the packages under `project` come first on the path, before the installed ones
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_hold():
    result = lint_imports(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_producers_importing_the_cli_breaks_them(tmp_path):
    for package in ("producers", "worker", "orderq"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    wire = tmp_path / "producers" / "wire.py"
    wire.write_text(wire.read_text() + "\nimport orderq.cli.main  # noqa: E402,F401\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1
    assert "Dependencies point one way: orderq (operator) -> worker -> producers BROKEN" in (
        result.stdout
    )
    assert (
        "Upstream code imports producers: no CLI, server, UI or migration tooling in it BROKEN"
        in (result.stdout)
    )
    assert "producers.wire -> orderq.cli.main" in result.stdout
