from __future__ import annotations

import pytest

from orderq.read import Reader


@pytest.fixture
def reader(engine, settings) -> Reader:
    return Reader.from_settings(engine, settings)
