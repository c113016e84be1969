"""Fault tests: each gets a private rig (queue, workers, publisher) torn down after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.rig import FaultRig


@pytest.fixture
def rig(migrated_database: str) -> Iterator[FaultRig]:
    rig = FaultRig()
    yield rig
    rig.close()
