"""Flower: refuses to run without credentials outside development, keeps its state."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orderq.cli.flower import FlowerRefused, flower_arguments, flower_credentials
from orderq.settings import Settings
from tests.support.cli import free_port, orderq, wait_for_port
from tests.support.flower import start_flower

pytestmark = pytest.mark.e2e


def get(url: str, credentials: str | None = None) -> int:
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_flower_refuses_to_start_without_credentials():
    result = orderq("flower", env={"FLOWER_BASIC_AUTH": "", "ORDERQ_DEV_MODE": "false"})

    assert result.returncode == 2
    assert "Flower needs credentials outside local development" in result.stderr
    assert "FLOWER_BASIC_AUTH=user:password" in result.stderr


def test_malformed_credentials_are_refused():
    result = orderq("flower", env={"FLOWER_BASIC_AUTH": "admin-without-password"})

    assert result.returncode == 2
    assert "FLOWER_BASIC_AUTH must be user:password" in result.stderr


def test_development_mode_allows_no_credentials_and_options_keep_state():
    settings = Settings(flower_state_file="/tmp/x/flower.db", flower_basic_auth=None)
    assert flower_credentials(settings, dev=True) is None
    assert flower_credentials(Settings(dev_mode=True, flower_basic_auth=None), dev=False) is None
    with pytest.raises(FlowerRefused):
        flower_credentials(Settings(dev_mode=False, flower_basic_auth=None), dev=False)
    arguments = flower_arguments(settings, port=None, address=None)
    assert {"--persistent=True", "--db=/tmp/x/flower.db", "--enable_events=True"} <= set(arguments)
    assert "--address=127.0.0.1" in arguments


def test_flower_asks_for_the_credentials_and_persists_its_state(migrated_database, tmp_path):
    port, state = free_port(), tmp_path / "state" / "flower.db"
    credentials = "ops:s3cret-pass"
    process = start_flower(port, credentials, state, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, timeout=30)
        base = f"http://127.0.0.1:{port}"
        assert get(f"{base}/") == 401
        assert get(f"{base}/", "ops:wrong") == 401
        assert get(f"{base}/", credentials) == 200
        assert get(f"{base}/workers", credentials) == 200
        # upstream serves these without the login: documented as internal-only
        assert get(f"{base}/metrics") == 200
        assert get(f"{base}/healthcheck") == 200
        # the password travels in the environment, not on the world-readable command line
        assert "s3cret" not in Path(f"/proc/{process.pid}/cmdline").read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert list(state.parent.glob("flower.db*")), f"no state saved; stderr:\n{errors[-2000:]}"
