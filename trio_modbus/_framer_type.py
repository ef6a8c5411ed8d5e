"""The framer names shared by the native and the pymodbus-compatible API."""

from __future__ import annotations

import enum

__all__ = ["FramerType"]


class FramerType(enum.StrEnum):
    """Which framing a server speaks (pymodbus's ``FramerType``, same values)."""

    SOCKET = "socket"
    """MBAP (Modbus/TCP), for TCP and UDP."""
    TLS = "tls"
    """MBAP inside TLS (Modbus/TCP Security)."""
    RTU = "rtu"
    """RTU: address, PDU, CRC-16."""
    ASCII = "ascii"
    """ASCII: ':' hex LRC CR LF."""
