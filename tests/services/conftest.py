from __future__ import annotations

import pytest

from tests.services.harness import Harness


@pytest.fixture()
def h() -> Harness:
    return Harness()
