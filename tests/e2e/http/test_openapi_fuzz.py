"""Schemathesis against the running server's own /openapi.json: generated requests
(valid and invalid) to every operation never get a 5xx, and every answer — status,
content type, headers, body — is one the document describes.

Driven through schemathesis' Python API and hypothesis directly (its pytest plugin
does not run on pytest 9); every operation and mode is tried, then every failure is
reported together.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orderq.http.api_keys import create_api_key
from tests.support.ids import unique

pytestmark = pytest.mark.e2e

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 12  # per operation and mode: bounded, CI runs it on every push


def test_every_operation_answers_as_documented(api_server, engine):
    # an operator key: the operator-only reads (the ledger) are fuzzed past their 403 too
    token = create_api_key(engine, unique("fuzz").lower(), operator=True).token
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for found in schema.get_all_operations():
        operation = found.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            operations += 1

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,  # nothing left behind in .hypothesis/
                suppress_health_check=list(HealthCheck),
            )
            def answers_as_documented(case: schemathesis.Case) -> None:
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

            try:
                answers_as_documented()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as failure:  # collect: one report naming every operation
                failures.append(f"{operation.label} ({mode.value}):\n{failure}")

    assert not failures, "\n\n".join(failures)[:20_000]
    assert operations >= 2 * 35  # every command, alias and read, in both modes
