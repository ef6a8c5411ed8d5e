"""The exception tree of trio_modbus: every error it raises derives from ModbusError."""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ModbusError",
    "ModbusProtocolError",
]


class ModbusError(Exception):
    """Root of every exception raised by trio_modbus."""


class ModbusProtocolError(ModbusError):
    """The byte stream is not Modbus and cannot be resynchronised.

    Raised by the framers (for example an MBAP header with a protocol id other than 0 or a length
    outside 2..254). The connection layer closes the offending connection; other clients are not
    affected.
    """


class ConfigurationError(ModbusError, ValueError):
    """A server, datastore or identity was configured with an invalid value."""
