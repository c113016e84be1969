"""docker-compose.yml, the Procfile, the Dockerfile and the docs describe the same
processes, and the compose file would start (no Docker engine runs here: it is validated
by parsing it).

The documented services table is read from SERVICES_DOC (between the
`<!-- services:start -->` and `<!-- services:end -->` markers).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from sqlalchemy.engine import make_url

from orderq.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SERVICES_DOC = ROOT / "README.md"
INFRASTRUCTURE = {"postgres", "redis"}
#: opt-in compose profiles (`docker compose --profile pgbouncer up`)
OPT_IN = {"pgbouncer"}
ORDERQ_SERVICES = {"migrate", "worker", "maintenance", "beat", "flower", "api", "metrics"}


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
    orderq_services = set(compose()["services"]) - INFRASTRUCTURE - OPT_IN
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
    assert procfile()["release"][:2] == ["orderq", "migrate"]
    services = compose()["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in set(services) - INFRASTRUCTURE - OPT_IN - {"migrate"}:
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


def parse_orderq(command: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse `orderq …` with the installed CLI exactly as it would run, without running
    it: (the subcommand's path, its converted parameters). An unknown command, an
    unknown option or a bad value raises, as it would make the container exit 2."""
    assert command[0] == "orderq", command
    cli = typer.main.get_command(app)
    context = cli.make_context("orderq", list(command[1:]))
    current = cli
    while hasattr(current, "commands"):  # a group: descend into the named subcommand
        rest = [*context._protected_args, *context.args]
        name, current, rest = current.resolve_command(context, rest)
        assert current is not None, f"no subcommand in {command}"
        context = current.make_context(name, rest, parent=context)
    return context.command_path, context.params


def parses(command: list[str]) -> bool:
    try:
        parse_orderq(command)
    except Exception:
        return False
    return True


def test_a_typo_or_a_bad_value_in_a_command_would_be_caught():
    assert parses(["orderq", "worker", "--concurrency", "2"])
    assert not parses(["orderq", "worker", "--concurency", "2"])
    assert not parses(["orderq", "worker", "--concurrency", "two"])
    assert not parses(["orderq", "maintenance", "wroker"])
    assert not parses(["orderq", "health", "--queue", "command"])
    assert not parses(["orderq", "migrate", "--wait", "soon"])


def test_the_parser_reads_what_a_container_would_run():
    path, params = parse_orderq(["orderq", "health", "--queue", "maintenance", "--timeout", "5"])

    assert path == "orderq health"
    assert params["queues"] == "maintenance" and params["timeout"] == 5.0


@pytest.mark.parametrize("process", sorted(procfile()))
def test_procfile_commands_are_real_orderq_commands(process):
    parse_orderq(procfile()[process])


def test_the_orderq_command_is_the_installed_entry_point():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["orderq"] == "orderq.cli.main:main"


# -- docker-compose.yml as Docker would read it ------------------------------------------


def orderq_commands_of(name: str, service: dict) -> list[list[str]]:
    """Every `orderq …` the service runs: its command and its healthcheck."""
    commands = []
    if compose_command(service)[:1] == ["orderq"]:
        commands.append(compose_command(service))
    test = service.get("healthcheck", {}).get("test")
    if isinstance(test, list) and test[0] == "CMD" and test[1] == "orderq":
        commands.append(test[1:])
    elif (isinstance(test, list) and test[0] == "CMD-SHELL") or isinstance(test, str):
        shell = test[1] if isinstance(test, list) else test
        if shell.split()[0] == "orderq":
            commands.append(shlex.split(shell))
    return commands


def test_compose_runs_the_stack_and_nothing_else():
    assert set(compose()["services"]) == INFRASTRUCTURE | ORDERQ_SERVICES | OPT_IN
    for name in OPT_IN:
        assert compose()["services"][name].get("profiles"), f"{name} must be opt-in"


@pytest.mark.parametrize("name", sorted(ORDERQ_SERVICES))
def test_every_orderq_command_in_compose_exists_in_the_cli(name):
    service = compose()["services"][name]
    commands = orderq_commands_of(name, service)

    assert commands, f"{name} runs no orderq command"
    for command in commands:
        parse_orderq(command)


@pytest.mark.parametrize("name", sorted(ORDERQ_SERVICES))
def test_every_orderq_service_runs_the_image_with_both_urls_naming_compose_services(name):
    services = compose()["services"]
    service = services[name]
    environment = service["environment"]

    assert service["build"] == "." and service["image"] == compose()["x-orderq"]["image"]
    database, broker = make_url(environment["DATABASE_URL"]), environment["CELERY_BROKER_URL"]
    assert database.host == "postgres" and "postgres" in services
    assert broker.startswith("redis://redis:") and "redis" in services


def test_every_dependency_exists_and_none_is_circular():
    services = compose()["services"]
    graph = {name: set(service.get("depends_on", {})) for name, service in services.items()}

    for name, targets in graph.items():
        assert targets <= set(services), f"{name} depends on missing {targets - set(services)}"
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        pytest.fail(f"circular depends_on: {cycle.args[1]}")
    assert order.index("migrate") > max(order.index(s) for s in INFRASTRUCTURE)


def test_servers_healthy_then_migrate_completed_then_the_rest():
    services = compose()["services"]
    for name in INFRASTRUCTURE:
        assert "depends_on" not in services[name]
        assert "healthcheck" in services[name], name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ORDERQ_SERVICES - {"migrate"}:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name


def test_conditions_fit_the_services_they_wait_for():
    services = compose()["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}"
            elif condition == "service_completed_successfully":
                # a one-shot: restarting it would re-run it forever
                assert services[target].get("restart") == "no", target
            else:
                pytest.fail(f"{name} waits only for {target} to be {condition}, not ready")
    # what Docker reports on: the servers, and every long-running service that can tell
    # (beat answers nothing a healthcheck could ask; the log shows its sends)
    for name in INFRASTRUCTURE | {"worker", "maintenance", "flower"}:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_migrate_waits_bounded_for_a_database_still_starting():
    command = compose_command(compose()["services"]["migrate"])
    _, params = parse_orderq(command)

    assert command[:2] == ["orderq", "migrate"] and "--wait" in command
    assert 0 < params["wait"] <= 600


def test_postgres_is_checked_over_tcp():
    test = compose()["services"]["postgres"]["healthcheck"]["test"]
    words = test[1:] if isinstance(test, list) else shlex.split(test)
    words = shlex.split(words[0]) if len(words) == 1 else words

    assert words[0] == "pg_isready"
    assert words[words.index("-h") + 1] == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "queue"), [("worker", "commands"), ("maintenance", "maintenance")]
)
def test_each_worker_container_checks_the_queue_it_serves(name, queue):
    service = compose()["services"][name]
    [_, healthcheck] = orderq_commands_of(name, service)
    path, params = parse_orderq(healthcheck)

    assert path == "orderq health"
    assert params["queues"] == queue
    # every check of `orderq health` must fit in the container's healthcheck timeout
    timeout = int(service["healthcheck"]["timeout"].removesuffix("s"))
    assert 3 * params["timeout"] < timeout


def test_named_volumes_are_declared():
    spec = compose()
    for name, service in spec["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in spec["volumes"], f"{name} mounts undeclared volume {source}"


# -- the image -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    source = (ROOT / "Dockerfile").read_text().splitlines()
    text = "\n".join(line for line in source if not line.strip().startswith("#"))
    lines = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line]


def test_the_image_is_a_production_install_of_this_repository():
    instructions = dockerfile_instructions()
    runs = " && ".join(arguments for kind, arguments in instructions if kind == "RUN")
    installs = [c for c in re.split(r"&&|;", runs) if "pip install" in c or "pip wheel" in c]

    assert installs, "the image installs nothing"
    for command in installs:
        assert " -e " not in f" {command} " and "--editable" not in command, command
        assert "[" not in command, f"the image must install no extras: {command}"
    assert compose()["x-orderq"]["build"] == "."
