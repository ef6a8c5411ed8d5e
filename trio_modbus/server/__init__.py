"""Servers: the Trio-native ``serve_*`` functions and their server classes.

The pymodbus-compatible names (``StartTcpServer``, ``ModbusTcpServer``, …) join this module
with the compatibility layer.
"""

from trio_modbus.server._engine import BaseServer, ServerStatistics
from trio_modbus.server._serial import SerialServer, serve_serial
from trio_modbus.server._tcp import (
    TcpServer,
    TlsServer,
    make_server_ssl_context,
    serve_tcp,
    serve_tls,
)
from trio_modbus.server._udp import UdpServer, serve_udp

__all__ = [
    "BaseServer",
    "SerialServer",
    "ServerStatistics",
    "TcpServer",
    "TlsServer",
    "UdpServer",
    "make_server_ssl_context",
    "serve_serial",
    "serve_tcp",
    "serve_tls",
    "serve_udp",
]
