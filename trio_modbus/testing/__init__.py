"""Tools for testing Modbus clients and servers: fake devices, recording, faults, a raw client."""

from __future__ import annotations

__all__: list[str] = []
