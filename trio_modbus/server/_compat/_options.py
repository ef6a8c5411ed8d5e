"""pymodbus's spellings of server options, and how they map onto the native ones."""

from __future__ import annotations

from typing import Any

from trio_modbus._framer_type import FramerType
from trio_modbus.server._options import DEFAULT_HOST

__all__ = [
    "COMMON_OPTIONS",
    "DEFAULT_COMPAT_BACKLOG",
    "SERIAL_OPTIONS",
    "TCP_OPTIONS",
    "compat_framer",
    "host_port",
    "socket_url",
]

DEFAULT_COMPAT_BACKLOG = 20  # the seed's default listen queue

# pymodbus 2.x framer classes, by name, for scripts that still pass them.
_FRAMER_CLASS_NAMES = {
    "ModbusSocketFramer": FramerType.SOCKET,
    "ModbusTlsFramer": FramerType.TLS,
    "ModbusRtuFramer": FramerType.RTU,
    "ModbusAsciiFramer": FramerType.ASCII,
}

# The keywords every compat server takes (beyond context, framer, identity).
COMMON_OPTIONS = frozenset(
    {
        "handler",
        "ignore_missing_slaves",
        "ignore_missing_devices",
        "broadcast_enable",
        "timeout",
        "trace_packet",
        "trace_pdu",
        "trace_connect",
        "custom_functions",
        "custom_pdu",
        "loop",
        "network_listen_only",  # trio_modbus's own: see DatastoreService
    }
)
TCP_OPTIONS = frozenset(
    {"address", "allow_reuse_address", "allow_reuse_port", "defer_start", "backlog"}
)
SERIAL_OPTIONS = frozenset(
    {
        "port",
        "stopbits",
        "bytesize",
        "parity",
        "baudrate",
        "handle_local_echo",
        "auto_open",
        "auto_close",
        "reconnect_delay",
        "allow_multiple_devices",
        "defer_start",
    }
)


def compat_framer(framer: Any, default: FramerType) -> FramerType:
    """A FramerType from pymodbus's spellings: None, FramerType, "rtu", or a 2.x framer class.

    Raises:
        ValueError: Not a framer (pymodbus raises ValueError too).
    """
    if framer is None:
        return default
    if isinstance(framer, type):
        name = framer.__name__
        if name in _FRAMER_CLASS_NAMES:
            return _FRAMER_CLASS_NAMES[name]
        raise ValueError(f"unknown framer class {name}; use trio_modbus.FramerType")
    try:
        return FramerType(framer)
    except ValueError:
        choices = ", ".join(repr(f.value) for f in FramerType)
        raise ValueError(f"framer must be a FramerType ({choices}), not {framer!r}") from None


def host_port(address: tuple[str, int] | None, default_port: int) -> tuple[str, int]:
    """``address`` with pymodbus's defaults filled in ("" means our default host)."""
    if address is None:
        return DEFAULT_HOST, default_port
    host, port = address
    return (host or DEFAULT_HOST, int(port))


def socket_url(port: str) -> tuple[str, int] | None:
    """``socket://host:port`` → (host, port); None for a serial device.

    Raises:
        ValueError: It starts with ``socket://`` but is not ``socket://host:port``.
    """
    if not port.startswith("socket://"):
        return None
    rest = port[len("socket://") :]
    host, sep, number = rest.rpartition(":")
    if not sep or not number.isdigit():
        raise ValueError(f"port must be socket://host:port, not {port!r}")
    return (host or DEFAULT_HOST, int(number))
