"""Reading orderq's /metrics in tests, and `orderq metrics serve` as a real process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import free_port
from tests.support.eventually import eventually
from tests.support.workers import PROJECT_ROOT


class Samples:
    """One scrape: every sample by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 when absent)."""
        for sample, sample_labels, value in self.samples:
            if sample == name and sample_labels == labels:
                return value
        return 0.0

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples whose labels include these."""
        return sum(
            value
            for sample, sample_labels, value in self.samples
            if sample == name and labels.items() <= sample_labels.items()
        )

    def has(self, name: str) -> bool:
        return any(sample == name for sample, _, _ in self.samples)


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        return Samples(response.read().decode())


class MetricsServerProcess:
    """`orderq metrics serve` on a free port, as a child process group."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.env = {**os.environ, **env}
        self.log_path = Path(tempfile.mkstemp(prefix="orderq-metrics-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orderq.cli", "metrics", "serve", f"--port={self.port}"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        eventually(self._answers, what=f"the metrics server answering on {self.url}", timeout=60)

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log_text()
        with contextlib.suppress(OSError, urllib.error.URLError):
            scrape(self.url)
            return True
        return False

    def scrape(self) -> Samples:
        return scrape(self.url)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log_path.unlink(missing_ok=True)
