"""Fixtures of the engine tests (helpers live in engine_testkit.py: a unique module name)."""
from __future__ import annotations

import pytest

from engine_testkit import HFCausalVLA, make_vla


@pytest.fixture(scope="session")
def vlas() -> list[HFCausalVLA]:
    """Three tiny VLAs with different seeds, shared across tests (read-only models)."""
    return [make_vla(seed) for seed in (0, 1, 2)]
