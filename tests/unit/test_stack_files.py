"""docker-compose.yml, the Procfile and the docs describe the same processes.

The documented services table is read from SERVICES_DOC (between the
`<!-- services:start -->` and `<!-- services:end -->` markers).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orderq.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SERVICES_DOC = ROOT / "README.md"
INFRASTRUCTURE = {"postgres", "redis", "pgbouncer"}


def procfile() -> dict[str, list[str]]:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            assert name.strip() not in processes, f"Procfile defines {name} twice"
            processes[name.strip()] = shlex.split(command)
    return processes


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_command(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def documented_services() -> list[tuple[str, str, list[str]]]:
    """(compose service, Procfile process, command) rows of the docs' services table."""
    text = SERVICES_DOC.read_text()
    section = re.search(r"<!-- services:start -->(.*?)<!-- services:end -->", text, re.S)
    assert section, f"{SERVICES_DOC} has no services table"
    rows = []
    for line in section.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("service", "") or set(cells[0]) <= {"-", ":"}:
            continue
        rows.append((cells[0].strip("`"), cells[1].strip("`"), shlex.split(cells[2].strip("`"))))
    return rows


def test_every_documented_service_runs_the_same_command_everywhere():
    services, processes = compose()["services"], procfile()
    documented = documented_services()

    assert documented
    for service, process, command in documented:
        assert service in services, f"docs name {service}, compose has no such service"
        assert compose_command(services[service]) == command, service
        assert process in processes, f"docs name Procfile process {process}, Procfile lacks it"
        assert processes[process] == command, process


def test_nothing_runs_that_the_docs_do_not_name():
    documented = documented_services()
    assert set(procfile()) == {process for _, process, _ in documented}
    orderq_services = set(compose()["services"]) - INFRASTRUCTURE
    assert orderq_services == {service for service, _, _ in documented}


def test_beat_may_run_on_every_host():
    """Beats claim each run in PostgreSQL (worker/entrypoints/beat_scheduler.py): the
    beat service is no longer pinned to one replica."""
    beats = [name for name, command in procfile().items() if command[:2] == ["orderq", "beat"]]
    assert beats == ["beat"]
    services = compose()["services"]
    assert "replicas" not in services["beat"].get("deploy", {})


def test_pgbouncer_is_an_opt_in_profile_in_transaction_mode():
    bouncer = compose()["services"]["pgbouncer"]
    assert bouncer["profiles"] == ["pgbouncer"]
    assert bouncer["environment"]["POOL_MODE"] == "transaction"
    assert "healthcheck" in bouncer


def test_migrations_run_before_any_worker_starts():
    assert procfile()["release"] == ["orderq", "migrate"]
    services = compose()["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in set(services) - INFRASTRUCTURE - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_every_awaited_service_has_a_healthcheck():
    services = compose()["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}"
    assert all("healthcheck" in services[name] for name in ("worker", "flower", "api"))


def test_flower_is_only_published_on_localhost_and_gets_its_credentials():
    flower = compose()["services"]["flower"]
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert any(volume.endswith("/app/.orderq/flower") for volume in flower["volumes"])


def _parses(command: list[str]) -> tuple[int, str]:
    """Parse `orderq …` with the real CLI without running it (`--help` is appended: an
    unknown command or option still fails to parse first)."""
    assert command[0] == "orderq"
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    return result.exit_code, result.output


def test_a_typo_in_a_command_would_be_caught():
    assert _parses(["orderq", "worker", "--concurency", "2"])[0] != 0
    assert _parses(["orderq", "maintenance", "wroker"])[0] != 0


@pytest.mark.parametrize("process", sorted(procfile()))
def test_procfile_commands_are_real_orderq_commands(process):
    code, output = _parses(procfile()[process])
    assert code == 0, output


def test_the_image_builds_from_this_repository():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert compose()["x-orderq"]["build"] == "."
    for needed in ("producers", "worker", "orderq", "migrations", "alembic.ini"):
        assert needed in dockerfile
