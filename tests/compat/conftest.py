"""Fixtures of the pymodbus-compatibility tests (TLS files and the pty pair are shared ones)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trio_modbus.server import running_servers


@pytest.fixture(autouse=True)
def no_compat_server_left() -> Iterator[None]:
    """Every test starts and ends with no compat server registered (ServerStop is global)."""
    assert running_servers() == [], "a server of an earlier test is still running"
    yield
    assert running_servers() == [], "the test left a compat server running"
